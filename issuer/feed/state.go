package feed

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"github.com/heliosdb/auth/core/atomicfile"
	"github.com/heliosdb/auth/core/revset"
)

// saveState writes the node's revocation set as of seq to path, in the feed's
// own snapshot framing, atomically (a temporary file renamed over it).
func saveState(path string, seq uint64, entries []revset.Entry) error {
	return atomicfile.Write(path, 0o600, func(w io.Writer) error {
		var buf []byte
		buf = AppendFrame(buf[:0], &Event{Kind: KindSnapshotBegin, Seq: seq, Count: uint64(len(entries))})
		if _, err := w.Write(buf); err != nil {
			return err
		}
		for _, en := range entries {
			var e Event
			switch en.Kind {
			case revset.KindToken:
				e = Event{Kind: KindToken, Token: en.ID, Expires: en.Expires}
			case revset.KindAccount:
				e = Event{Kind: KindAccount, Account: en.Account, NotBefore: en.NotBefore}
			case revset.KindKey:
				e = Event{Kind: KindKey, KeyID: en.KeyID}
			}
			buf = AppendFrame(buf[:0], &e)
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		_, err := w.Write(AppendFrame(buf[:0], &Event{Kind: KindSnapshotEnd, Seq: seq}))
		return err
	})
}

// loadState reads what saveState wrote.
func loadState(path string) (uint64, []revset.Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	var (
		buf []byte
		e   Event
	)
	if buf, err = ReadFrame(r, buf, &e); err != nil || e.Kind != KindSnapshotBegin {
		return 0, nil, fmt.Errorf("feed state %s: no snapshot header", path)
	}
	entries := make([]revset.Entry, 0, min(e.Count, 1<<24))
	for {
		if buf, err = ReadFrame(r, buf, &e); err != nil {
			return 0, nil, fmt.Errorf("feed state %s: truncated: %w", path, err)
		}
		if e.Kind == KindSnapshotEnd {
			return e.Seq, entries, nil
		}
		if en, ok := entryOf(&e); ok {
			entries = append(entries, en)
		}
	}
}
