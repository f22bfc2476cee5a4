package replica

import (
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/heliosdb/auth/issuer"
)

// fsm applies committed raft entries to the issuer store: each batch of
// commands goes to the store's one-writer apply path as one Pebble batch,
// exactly as a single issuer's group commit would, with the sequence
// numbers assigned there. Entries at or below the store's persisted
// applied index are skipped (they were applied before a restart).
type fsm struct {
	store *issuer.Store

	mu      sync.Mutex
	changed chan struct{} // closed and replaced after each batch
	// restores counts snapshots installed (not skipped as already applied).
	restores atomic.Int64
}

var _ raft.BatchingFSM = (*fsm)(nil)

func newFSM(s *issuer.Store) *fsm { return &fsm{store: s, changed: make(chan struct{})} }

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch implements raft.BatchingFSM: the response of each entry is
// an issuer.Applied.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	done := f.store.AppliedIndex()
	var (
		cmds [][]byte
		at   []int
		last uint64
	)
	for i, l := range logs {
		out[i] = issuer.Applied{}
		if l.Type != raft.LogCommand || l.Index <= done {
			continue
		}
		cmds, at, last = append(cmds, l.Data), append(at, i), l.Index
	}
	if len(cmds) > 0 {
		for j, a := range f.store.ApplyReplicated(last, cmds) {
			out[at[j]] = a
		}
	}
	f.mu.Lock()
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
	return out
}

// applied returns a channel closed after the next batch.
func (f *fsm) applied() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// Snapshot implements raft.FSM: a Pebble snapshot of the store, written
// out by Persist on raft's snapshot goroutine.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	st, err := f.store.TakeState()
	if err != nil {
		return nil, err
	}
	return &snapshot{st}, nil
}

// Restore implements raft.FSM.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	restored, err := f.store.RestoreState(rc)
	if restored {
		f.restores.Add(1)
	}
	f.mu.Lock()
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
	return err
}

type snapshot struct{ st *issuer.State }

// Persist implements raft.FSMSnapshot.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.st.WriteTo(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *snapshot) Release() { s.st.Release() }
