package issuer

import (
	"errors"
	"net/http"
	"sync/atomic"
)

// Replicator is the consensus layer a replicated store submits through
// (issuer/replica's Node on hashicorp/raft). The store then applies
// commands only as they come back committed, through ApplyReplicated, on
// every replica in the same order.
type Replicator interface {
	// Propose commits the serialized command through the cluster's
	// leader (forwarding it when this replica is not the leader) and
	// returns what applying it produced.
	Propose(cmd []byte) (Result, error)
	// ReadFence returns once this replica has applied every command
	// committed before the call (a read index confirmed by the leader),
	// so a read after it is as fresh as one on the leader.
	ReadFence() error
	// IsLeader reports whether this replica leads the cluster now.
	IsLeader() bool
}

// CodeNoQuorum is a write or fresh read refused because this replica
// cannot reach a leader with a quorum: 503.
const CodeNoQuorum = "NO_QUORUM"

// ErrNoQuorum matches (errors.Is) a ReplicaError.
var ErrNoQuorum = errors.New("no issuer leader with a quorum is reachable")

// ReplicaError is a command or fresh read the replicated store could not
// complete because the cluster had no reachable leader with a quorum in
// time. A write that timed out may still commit: retrying it is safe (a
// revocation retried answers that the token is already revoked).
type ReplicaError struct{ Cause string }

func (e *ReplicaError) Error() string { return "issuer cluster: " + e.Cause }

// Is matches ErrNoQuorum.
func (e *ReplicaError) Is(target error) bool { return target == ErrNoQuorum }

// As fills an **APIError with the REST answer (503 NO_QUORUM).
func (e *ReplicaError) As(target any) bool {
	p, ok := target.(**APIError)
	if ok {
		*p = &APIError{Status: http.StatusServiceUnavailable, Code: CodeNoQuorum,
			Message: "the issuer cluster has no leader this replica can reach (" + e.Cause + "); retry shortly or " +
				"on another replica: a write that timed out may have been saved, and retrying it is safe; tokens " +
				"already issued keep working on every protocol"}
	}
	return ok
}

// replicaState is the replicated store's part of Store.
type replicaState struct {
	// on: the store was opened with StoreOptions.Replicated.
	on bool
	// repl is set once by SetReplicator.
	repl atomic.Pointer[replicatorBox]
	// applied is the raft index of the last command applied (persisted
	// as keyApplied in the same batch; FSM goroutine writes it).
	applied atomic.Uint64
	// ring is the keyring kept in step with the replicated one
	// (AttachKeyring).
	ring atomic.Pointer[ringBox]
}

type replicatorBox struct{ r Replicator }

// errNotReady is a Submit on a replicated store before SetReplicator.
var errNotReady = &ReplicaError{Cause: "this replica is still starting"}

// SetReplicator connects a store opened with StoreOptions.Replicated to
// its consensus layer; Submit goes through it from then on.
func (s *Store) SetReplicator(r Replicator) { s.rep.repl.Store(&replicatorBox{r}) }

// Replicated reports whether the store was opened as a raft replica.
func (s *Store) Replicated() bool { return s.rep.on }

// AppliedIndex is the raft index of the last command the store applied
// (0 on a store that is not replicated).
func (s *Store) AppliedIndex() uint64 { return s.rep.applied.Load() }

// leads reports whether this store may run the writes its upkeep makes
// (refreshed tokens' revocations, compaction): always when it is not
// replicated, on the leader only when it is.
func (s *Store) leads() bool {
	if !s.rep.on {
		return true
	}
	b := s.rep.repl.Load()
	return b != nil && b.r.IsLeader()
}

// ReadFence makes the next read as fresh as the leader's (login checks,
// token lists); a no-op on a store that is not replicated.
func (s *Store) ReadFence() error {
	if !s.rep.on {
		return nil
	}
	b := s.rep.repl.Load()
	if b == nil {
		return errNotReady
	}
	return b.r.ReadFence()
}

// propose is Submit on a replicated store: the free-space reserve is
// checked on the replica taking the command (the replicas apply whatever
// commits, identically), then the command goes through consensus.
func (s *Store) propose(cmd *Command, b []byte) (Result, error) {
	rb := s.rep.repl.Load()
	if rb == nil {
		return Result{}, errNotReady
	}
	if s.reserve > 0 {
		if free, err := freeBytes(s.dir); err == nil {
			if serr := s.admit(cmd.Op, free, true); serr != nil {
				return Result{}, serr
			}
		}
	}
	return rb.r.Propose(b)
}

// Applied is one replicated command's outcome.
type Applied struct {
	Result Result
	Err    error
}

// ApplyReplicated applies commands committed by consensus, the last of
// which has raft index index, in one batch (not synced: the raft log is
// the durable record, and the applied index written with the batch tells
// a restarted replica where to resume). It is called by the FSM only,
// from one goroutine. Sequence numbers are assigned here, so they are
// dense and identical on every replica.
func (s *Store) ApplyReplicated(index uint64, cmds [][]byte) []Applied {
	group := make([]*request, len(cmds))
	for i, c := range cmds {
		group[i] = &request{cmd: c, done: make(chan struct{})}
	}
	s.commitAt(group, index)
	out := make([]Applied, len(group))
	for i, r := range group {
		out[i] = Applied{r.res, r.err}
	}
	return out
}
