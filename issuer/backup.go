package issuer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2"
)

// BackupGap is how far a restored store's sequence jumps past the backup's
// (RestoreBackup): the issuer that was backed up may have gone on writing
// after the backup, and a sequence number it handed out then must never
// name a different revocation in the restored log. Gateway nodes that
// applied those lost numbers see a log whose compacted watermark is above
// what they applied and load a full snapshot (feed.Server sends one when
// after < Compacted), so none of them keeps a state the restored issuer
// does not have.
const BackupGap = 1 << 32

// Seq is the sequence number of the last write the state holds.
func (st *State) Seq() (uint64, error) {
	v, closer, err := st.snap.Get(keySeq)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("m/seq holds %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// RestoreBackup replaces the contents of s, a store just opened on an
// empty directory, with a state written by State.WriteTo (a backup taken
// with TakeState on a running issuer). The restored log continues at
// floor+1: floor is written as both the sequence number and the compacted
// watermark, so every follower resyncs from a snapshot (see BackupGap).
// The applied raft index is reset: the restored store is a single issuer.
// A stream cut short or malformed is an error and leaves s to be thrown
// away.
func (s *Store) RestoreBackup(r io.Reader, floor uint64) error {
	br := bufio.NewReaderSize(r, 256<<10)
	hdr := make([]byte, len(snapshotMagic)+8)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return fmt.Errorf("restore: header: %w", err)
	}
	if string(hdr[:len(snapshotMagic)]) != snapshotMagic {
		return errors.New("restore: not an issuer state")
	}
	extra := map[string][]byte{string(keySeq): u64(nil, floor), string(keyCompacted): u64(nil, floor),
		string(keyApplied): u64(nil, 0)}
	return s.restoreStream(br, 0, extra)
}
