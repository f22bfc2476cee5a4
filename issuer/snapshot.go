package issuer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// snapshotMagic starts a replica state snapshot: the magic, the raft
// index it was taken at (8 bytes, big-endian), then every key and value
// of the store, each uvarint-length-prefixed, then a zero-length key.
const snapshotMagic = "HDBSNAP1"

// State is a point-in-time copy of a replicated store (a Pebble
// snapshot), taken on the FSM's goroutine and written out on another.
type State struct {
	snap  *pebble.Snapshot
	index uint64
}

// TakeState snapshots the store as of the last applied command (FSM
// goroutine, between applies).
func (s *Store) TakeState() (*State, error) {
	db, release, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer release()
	return &State{snap: db.NewSnapshot(), index: s.AppliedIndex()}, nil
}

// Index is the raft index the state was taken at.
func (st *State) Index() uint64 { return st.index }

// WriteTo writes the state to w.
func (st *State) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriterSize(w, 256<<10)
	var n int64
	hdr := binary.BigEndian.AppendUint64([]byte(snapshotMagic), st.index)
	if _, err := bw.Write(hdr); err != nil {
		return 0, err
	}
	n += int64(len(hdr))
	it, err := st.snap.NewIter(nil)
	if err != nil {
		return n, err
	}
	defer it.Close()
	var buf []byte
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return n, err
		}
		buf = binary.AppendUvarint(buf[:0], uint64(len(it.Key())))
		buf = append(buf, it.Key()...)
		buf = binary.AppendUvarint(buf, uint64(len(v)))
		buf = append(buf, v...)
		if _, err := bw.Write(buf); err != nil {
			return n, err
		}
		n += int64(len(buf))
	}
	if err := it.Error(); err != nil {
		return n, err
	}
	if err := bw.WriteByte(0); err != nil {
		return n, err
	}
	return n + 1, bw.Flush()
}

// Release frees the Pebble snapshot.
func (st *State) Release() { st.snap.Close() }

// restoreChunk bounds one batch of a restore.
const restoreChunk = 4 << 20

// RestoreState replaces the store's contents with a state read from r
// (FSM goroutine). A state no newer than what the store has applied is
// skipped: the store is persistent, and raft hands it its latest snapshot
// again at every start. The applied index is written with the last batch,
// so a restore cut short is done again after a restart. The in-memory
// views are rebuilt, then swapped in. restored is false when the state
// was skipped.
func (s *Store) RestoreState(r io.Reader) (restored bool, err error) {
	br := bufio.NewReaderSize(r, 256<<10)
	hdr := make([]byte, len(snapshotMagic)+8)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return false, fmt.Errorf("restore: header: %w", err)
	}
	if string(hdr[:len(snapshotMagic)]) != snapshotMagic {
		return false, errors.New("restore: not an issuer state snapshot")
	}
	index := binary.BigEndian.Uint64(hdr[len(snapshotMagic):])
	if index <= s.AppliedIndex() {
		s.log.Info("raft snapshot already applied", "snapshot_index", index, "applied", s.AppliedIndex())
		return false, nil
	}
	if err := s.restoreStream(br, index, nil); err != nil {
		return false, err
	}
	return true, nil
}

// restoreStream replaces the store's contents with the records of a state
// read from br (after its header), writes index as the applied index when
// the state has none, and extra (more keys, e.g. a backup's new sequence
// floor; it may replace the applied index) with the last batch; then
// rebuilds the views.
func (s *Store) restoreStream(br *bufio.Reader, index uint64, extra map[string][]byte) error {
	db, release, err := s.acquire()
	if err != nil {
		return err
	}
	defer release()
	b := db.NewBatch()
	if err := b.DeleteRange([]byte{0}, []byte{0xff, 0xff, 0xff, 0xff}, nil); err != nil {
		b.Close()
		return err
	}
	var applied []byte
	for {
		k, err := readChunk(br)
		if err != nil {
			b.Close()
			return fmt.Errorf("restore: %w", err)
		}
		if len(k) == 0 {
			break
		}
		v, err := readChunk(br)
		if err != nil {
			b.Close()
			return fmt.Errorf("restore: %w", err)
		}
		if string(k) == string(keyApplied) {
			applied = v
			continue
		}
		if err := b.Set(k, v, nil); err != nil {
			b.Close()
			return err
		}
		if b.Len() > restoreChunk {
			if err := b.Commit(pebble.Sync); err != nil {
				b.Close()
				return err
			}
			b.Close()
			b = db.NewBatch()
		}
	}
	if applied == nil {
		applied = u64(nil, index)
	}
	if err := b.Set(keyApplied, applied, nil); err != nil {
		b.Close()
		return err
	}
	for k, v := range extra { // after the applied index: extra may replace it
		if err := b.Set([]byte(k), v, nil); err != nil {
			b.Close()
			return err
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		b.Close()
		return err
	}
	b.Close()
	return s.reload()
}

func readChunk(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > 64<<20 {
		return nil, fmt.Errorf("a %d-byte record", n)
	}
	b := make([]byte, n)
	_, err = io.ReadFull(r, b)
	return b, err
}

// reload rebuilds the in-memory views from the database after a restore
// and swaps them in under viewMu (so a feed snapshot sees old or new,
// never half), then wakes the feed's followers.
func (s *Store) reload() error {
	fresh := &Store{db: s.db, revs: NewRevocations(), pol: newPolicyView(), pending: map[[12]byte]pendingRevoke{}, log: s.log}
	if err := fresh.load(); err != nil {
		return err
	}
	// A replica's snapshot carries the cluster's keyring: take it before
	// the feed shows the restored log.
	if err := s.installStoredKeyring(); err != nil {
		return err
	}
	s.viewMu.Lock()
	s.seq = fresh.seq
	s.compacted.Store(fresh.compacted.Load())
	s.rep.applied.Store(fresh.rep.applied.Load())
	s.revs.replace(fresh.revs)
	s.pol.replace(fresh.pol)
	s.pendingMu.Lock()
	s.pending = fresh.pending
	s.pendingMu.Unlock()
	s.lastSeq.Store(s.seq)
	s.viewMu.Unlock()
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	s.log.Info("issuer state restored from a raft snapshot", "seq", s.seq, "applied", s.AppliedIndex())
	return nil
}

// replace takes next's contents (next is discarded).
func (r *Revocations) replace(next *Revocations) {
	r.mu.Lock()
	r.tokens, r.notBefore, r.keys = next.tokens, next.notBefore, next.keys
	r.mu.Unlock()
}

// replace makes the view next's: the policy set gets every change.
func (p *policyView) replace(next *policyView) {
	p.mu.Lock()
	oldIPs, oldDBs := p.ips, p.dbs
	p.ips, p.dbs = maps.Clone(next.ips), maps.Clone(next.dbs)
	p.mu.Unlock()
	for id := range oldIPs {
		if _, ok := next.ips[id]; !ok {
			p.set.DeleteIPs(id)
		}
	}
	for name := range oldDBs {
		if _, ok := next.dbs[name]; !ok {
			p.set.DeleteDatabase(name)
		}
	}
	for id, rec := range next.ips {
		p.set.SetIPs(id, parsePrefixes(rec.list), rec.expires)
	}
	for _, d := range next.dbs {
		p.set.SetDatabase(d.Name, d.Test)
	}
}

// EnsureDefaultDatabase creates the default database through consensus
// unless the registry was initialized before (the leader calls it once
// elected; the command is a no-op when another leader did it first).
func (s *Store) EnsureDefaultDatabase() error {
	if found, err := s.has(keyDBInit); err != nil || found {
		return err
	}
	_, err := s.Submit(&Command{Op: OpCreateDatabase, At: time.Now().Unix(), Database: DefaultDatabase, Init: true})
	return err
}
