package raftstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func entry(i uint64) *raft.Log {
	return &raft.Log{Index: i, Term: i / 3, Type: raft.LogCommand, Data: []byte(fmt.Sprintf("cmd-%d", i)),
		Extensions: []byte{byte(i)}, AppendedAt: time.Unix(1700000000, int64(i))}
}

// TestLogStore checks the expectations raft has of a LogStore (the ones
// raft-boltdb's tests check): 0 indexes when empty, first/last after
// writes, GetLog round trips every field and answers raft.ErrLogNotFound
// for a missing index, DeleteRange removes both ends, and it all survives
// a reopen.
func TestLogStore(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	for _, f := range []func() (uint64, error){s.FirstIndex, s.LastIndex} {
		if i, err := f(); err != nil || i != 0 {
			t.Fatalf("empty store: index %d, %v; want 0", i, err)
		}
	}
	var l raft.Log
	if err := s.GetLog(1, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog on an empty store: %v, want raft.ErrLogNotFound", err)
	}
	if err := s.StoreLog(entry(1)); err != nil {
		t.Fatal(err)
	}
	var batch []*raft.Log
	for i := uint64(2); i <= 300; i++ { // past 255: big-endian keys sort numerically
		batch = append(batch, entry(i))
	}
	if err := s.StoreLogs(batch); err != nil {
		t.Fatal(err)
	}
	check := func(first, last uint64) {
		t.Helper()
		if f, err := s.FirstIndex(); err != nil || f != first {
			t.Fatalf("FirstIndex %d, %v; want %d", f, err, first)
		}
		if l, err := s.LastIndex(); err != nil || l != last {
			t.Fatalf("LastIndex %d, %v; want %d", l, err, last)
		}
	}
	check(1, 300)
	for _, i := range []uint64{1, 2, 256, 300} {
		var got raft.Log
		if err := s.GetLog(i, &got); err != nil {
			t.Fatal(err)
		}
		want := entry(i)
		if got.Index != want.Index || got.Term != want.Term || got.Type != want.Type || !bytes.Equal(got.Data, want.Data) ||
			!bytes.Equal(got.Extensions, want.Extensions) || !got.AppendedAt.Equal(want.AppendedAt) {
			t.Fatalf("GetLog(%d) = %+v, want %+v", i, got, *want)
		}
	}
	if err := s.GetLog(301, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog past the end: %v", err)
	}
	// Compaction from the front, then a conflicting suffix removed.
	if err := s.DeleteRange(1, 100); err != nil {
		t.Fatal(err)
	}
	check(101, 300)
	if err := s.DeleteRange(250, 300); err != nil {
		t.Fatal(err)
	}
	check(101, 249)
	for _, i := range []uint64{100, 250} {
		if err := s.GetLog(i, &l); !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("GetLog(%d) after DeleteRange: %v", i, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	check(101, 249)
	if err := s.DeleteRange(101, 249); err != nil {
		t.Fatal(err)
	}
	check(0, 0)
}

// TestStableStore: Get of a missing key fails with "not found" (the text
// raft compares against), GetUint64 of one is 0, and values survive a
// reopen.
func TestStableStore(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if _, err := s.Get([]byte("CurrentTerm")); err == nil || err.Error() != "not found" {
		t.Fatalf("Get of a missing key: %v, want \"not found\"", err)
	}
	if v, err := s.GetUint64([]byte("LastVoteTerm")); err != nil || v != 0 {
		t.Fatalf("GetUint64 of a missing key: %d, %v", v, err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("node-2")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 42); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir)
	defer s.Close()
	if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "node-2" {
		t.Fatalf("Get after reopen: %q, %v", v, err)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 42 {
		t.Fatalf("GetUint64 after reopen: %d, %v", v, err)
	}
	// A log index and a stable key never collide.
	if err := s.StoreLog(entry(7)); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 42 {
		t.Fatalf("stable key after a log write: %d, %v", v, err)
	}
}

// listFSM records the commands it applies.
type listFSM struct {
	mu   sync.Mutex
	cmds []string
}

func (f *listFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, string(l.Data))
	return len(f.cmds)
}
func (f *listFSM) Snapshot() (raft.FSMSnapshot, error) { return nil, errors.New("no snapshots here") }
func (f *listFSM) Restore(io.ReadCloser) error         { return errors.New("no snapshots here") }

// TestRaftOnStore runs raft itself on the store: a single voter bootstraps,
// elects itself, commits commands, and after a restart on the same store
// keeps its term and log and replays the commands into a fresh FSM.
func TestRaftOnStore(t *testing.T) {
	dir := t.TempDir()
	start := func(bootstrap bool) (*raft.Raft, *Store, *listFSM) {
		s := open(t, dir)
		conf := raft.DefaultConfig()
		conf.LocalID = "a"
		conf.HeartbeatTimeout, conf.ElectionTimeout, conf.LeaderLeaseTimeout = 100*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond
		conf.LogOutput = io.Discard
		addr, trans := raft.NewInmemTransport("a")
		fsm := &listFSM{}
		if bootstrap {
			if err := raft.BootstrapCluster(conf, s, s, raft.NewInmemSnapshotStore(), trans,
				raft.Configuration{Servers: []raft.Server{{ID: "a", Address: addr}}}); err != nil {
				t.Fatal(err)
			}
		}
		r, err := raft.NewRaft(conf, fsm, s, s, raft.NewInmemSnapshotStore(), trans)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for r.State() != raft.Leader {
			if time.Now().After(deadline) {
				t.Fatal("no leader")
			}
			time.Sleep(10 * time.Millisecond)
		}
		return r, s, fsm
	}
	r, s, _ := start(true)
	for i := range 20 {
		if err := r.Apply([]byte(fmt.Sprintf("c%d", i)), time.Second).Error(); err != nil {
			t.Fatal(err)
		}
	}
	term := r.Stats()["term"]
	if err := r.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	s.Close()

	r, s, fsm := start(false)
	defer s.Close()
	defer r.Shutdown()
	if err := r.Barrier(5 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	fsm.mu.Lock()
	got := append([]string(nil), fsm.cmds...)
	fsm.mu.Unlock()
	if len(got) != 20 || got[0] != "c0" || got[19] != "c19" {
		t.Fatalf("replayed %d commands %v, want c0..c19", len(got), got)
	}
	before, _ := strconv.ParseUint(term, 10, 64)
	after, _ := strconv.ParseUint(r.Stats()["term"], 10, 64)
	if before == 0 || after <= before {
		t.Fatalf("term %d after restart, was %d: it must have been kept and raised", after, before)
	}
}
