// Package replica runs the issuer on a raft cluster (hashicorp/raft):
// three or five replicas, each with its own Pebble store, apply the same
// serialized commands in the same order. A command taken by any replica
// is forwarded to the leader over mutual TLS (authenticated with the
// cluster key) and answered once committed and applied there; fresh reads
// wait for a read index confirmed by the leader. Gateways are not members:
// they follow any replica's revocation feed.
package replica

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/heliosdb/auth/issuer"
	"github.com/heliosdb/auth/issuer/raftstore"
)

// Peer is one replica: its raft id and raft address (host:port).
type Peer struct {
	ID   string
	Addr string
}

// ParsePeers parses "id=host:port,id=host:port".
func ParsePeers(s string) ([]Peer, error) {
	var out []Peer
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, addr, ok := strings.Cut(part, "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("raft peer %q: write id=host:port", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("raft peer %q: %w", part, err)
		}
		if seen[id] {
			return nil, fmt.Errorf("raft peer %q named twice", id)
		}
		seen[id] = true
		out = append(out, Peer{ID: id, Addr: addr})
	}
	return out, nil
}

// Config configures a Node.
type Config struct {
	// ID is this replica's raft id; Listen its raft address (mutual TLS;
	// the forwarding of commands shares it). Advertise is the address the
	// others dial (default: this replica's address in Peers, else Listen).
	ID, Listen, Advertise string
	// Peers is the initial voter set, this replica included. It is used
	// once, to bootstrap a replica without raft state; afterwards the
	// membership lives in the raft log (see AddVoter, Remove). An empty
	// Peers starts a replica that waits to be added by the leader.
	Peers []Peer
	// Dir holds the raft log (Pebble) and snapshots.
	Dir string
	// ClusterKey authenticates the replicas to each other (heliosd binds
	// the keyring to it).
	ClusterKey string
	// Store is the replica's issuer store, opened with Replicated.
	Store *issuer.Store
	// ElectionTimeout is raft's heartbeat and election timeout (default
	// 300ms: one region).
	ElectionTimeout time.Duration
	// ApplyTimeout bounds a write or fresh read (default 5s).
	ApplyTimeout time.Duration
	// SnapshotThreshold is how many log entries trigger a snapshot
	// (default raft's 8192); TrailingLogs how many stay after it.
	SnapshotThreshold, TrailingLogs uint64
	// SnapshotInterval is how often raft checks whether to snapshot
	// (default 10s; a snapshot is taken only past SnapshotThreshold).
	SnapshotInterval time.Duration
	Logger           *slog.Logger
}

// Node is one running replica.
type Node struct {
	cfg   Config
	raft  *raft.Raft
	fsm   *fsm
	logs  *raftstore.Store
	trans *raft.NetworkTransport
	layer *streamLayer
	pool  fwdPool
	log   *slog.Logger

	// ready is true on the leader once its first barrier (an entry of its
	// own term) has applied: its commit index is then current.
	ready    atomic.Bool
	stopping atomic.Bool
	done     chan struct{}
	// started is closed once raft runs: the listener (which raft's
	// transport needs first) takes forwarding connections before that.
	started chan struct{}
}

// Start opens the raft log in cfg.Dir, listens on cfg.Listen and joins
// (or bootstraps) the cluster. The store's Submit goes through the node
// from then on.
func Start(cfg Config) (*Node, error) {
	if cfg.ID == "" || cfg.Listen == "" {
		return nil, errors.New("raft: a replica needs --raft-id and --raft-listen")
	}
	if cfg.ElectionTimeout <= 0 {
		cfg.ElectionTimeout = 300 * time.Millisecond
	}
	if cfg.ApplyTimeout <= 0 {
		cfg.ApplyTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Advertise == "" {
		cfg.Advertise = cfg.Listen
		for _, p := range cfg.Peers {
			if p.ID == cfg.ID {
				cfg.Advertise = p.Addr
			}
		}
	}
	if len(cfg.Peers) > 0 && !containsID(cfg.Peers, cfg.ID) {
		return nil, fmt.Errorf("raft: --raft-peers does not name this replica (%s)", cfg.ID)
	}
	adv, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
	if err != nil {
		return nil, fmt.Errorf("raft advertise address: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("raft_id", cfg.ID), fsm: newFSM(cfg.Store), done: make(chan struct{}),
		started: make(chan struct{})}
	srvTLS, cliTLS, err := tlsConfigs(cfg.ClusterKey)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("raft listen %s: %w", cfg.Listen, err)
	}
	n.layer = newStreamLayer(ln, adv, srvTLS, cliTLS, n.serveForward, n.log)
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Info, Output: slogWriter{n.log},
		DisableTime: true})
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: n.layer, MaxPool: 4,
		Timeout: 2 * time.Second, Logger: hlog})
	fail := func(err error) (*Node, error) {
		n.trans.Close()
		if n.logs != nil {
			n.logs.Close()
		}
		return nil, err
	}
	if n.logs, err = raftstore.Open(filepath.Join(cfg.Dir, "log"), n.log); err != nil {
		return fail(err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, hlog)
	if err != nil {
		return fail(err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout, rc.ElectionTimeout = cfg.ElectionTimeout, cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.ElectionTimeout / 2
	// Followers learn the commit index within 5-10ms of the last write (a
	// write forwarded by a follower waits for it: read your writes).
	rc.CommitTimeout = 5 * time.Millisecond
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
	}
	rc.SnapshotInterval = 10 * time.Second
	if cfg.SnapshotInterval > 0 {
		rc.SnapshotInterval = cfg.SnapshotInterval
	}
	if cfg.TrailingLogs > 0 {
		rc.TrailingLogs = cfg.TrailingLogs
	}
	rc.Logger = hlog
	notify := make(chan bool, 16)
	rc.NotifyCh = notify
	existing, err := raft.HasExistingState(n.logs, n.logs, snaps)
	if err != nil {
		return fail(err)
	}
	if !existing && cfg.Store.LastSeq() > 0 && cfg.Store.AppliedIndex() == 0 {
		return fail(errors.New("raft: this data directory holds a single issuer's store; a replica starts on an empty " +
			"issuer store (with the cluster's cluster.key and keyring.json): moving a single issuer's accounts into a cluster is not supported yet"))
	}
	if !existing && len(cfg.Peers) > 0 {
		var c raft.Configuration
		for _, p := range cfg.Peers {
			c.Servers = append(c.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr)})
		}
		if err := raft.BootstrapCluster(rc, n.logs, n.logs, snaps, n.trans, c); err != nil {
			return fail(fmt.Errorf("raft bootstrap: %w", err))
		}
		n.log.Info("raft cluster bootstrapped", "peers", len(cfg.Peers))
	}
	if n.raft, err = raft.NewRaft(rc, n.fsm, n.logs, n.logs, snaps, n.trans); err != nil {
		return fail(err)
	}
	close(n.started)
	cfg.Store.SetReplicator(n)
	go n.watchLeadership(notify)
	n.log.Info("raft replica started", "listen", cfg.Listen, "advertise", cfg.Advertise, "existing_state", existing,
		"election_timeout", cfg.ElectionTimeout)
	return n, nil
}

func containsID(peers []Peer, id string) bool {
	for _, p := range peers {
		if p.ID == id {
			return true
		}
	}
	return false
}

// watchLeadership makes a new leader current (a barrier: every entry of
// earlier terms applied) before it serves fresh reads, and has it create
// the default database once per cluster.
func (n *Node) watchLeadership(notify <-chan bool) {
	for {
		select {
		case <-n.done:
			return
		case leader := <-notify:
			n.ready.Store(false)
			if !leader {
				continue
			}
			n.log.Info("raft: this replica leads the cluster")
			go func() {
				if err := n.raft.Barrier(n.cfg.ApplyTimeout).Error(); err != nil {
					n.log.Warn("raft barrier after election", "err", err)
					return
				}
				if n.raft.State() == raft.Leader {
					n.ready.Store(true)
				}
				if err := n.cfg.Store.EnsureDefaultDatabase(); err != nil && !n.stopping.Load() {
					n.log.Warn("creating the default database", "err", err)
				}
			}()
		}
	}
}

// IsLeader implements issuer.Replicator.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Propose implements issuer.Replicator: applied here on the leader,
// forwarded to it otherwise. A leader that steps down before the command
// is appended makes it go to the new leader; one that steps down after
// leaves the outcome unknown, reported as a ReplicaError.
func (n *Node) Propose(cmd []byte) (issuer.Result, error) {
	deadline := time.Now().Add(n.cfg.ApplyTimeout)
	for {
		addr, err := n.leaderAddr(deadline)
		if err != nil {
			return issuer.Result{}, err
		}
		if addr == "" { // this replica leads
			res, _, err := n.proposeLocal(cmd)
			var re *issuer.ReplicaError
			if errors.As(err, &re) && re.Cause == notLeader && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond) // until raft names the new leader
				continue
			}
			return res, err
		}
		out, err := n.call(addr, opApply, cmd, deadline)
		var unsent errUnsent
		if errors.As(err, &unsent) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err != nil {
			return issuer.Result{}, asReplicaError(err)
		}
		var w wireApplied
		if err := json.Unmarshal(out, &w); err != nil {
			return issuer.Result{}, fmt.Errorf("raft forward: %w", err)
		}
		if w.Err != nil && w.Err.Replica && w.Err.Msg == notLeader && time.Now().Before(deadline) {
			// The leader stepped down before appending it: not applied.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		// Read your writes: a revocation acknowledged here is refused by
		// this replica's own gateway from now on.
		n.waitApplied(w.Index, deadline)
		return w.Result, w.Err.err()
	}
}

// notLeader is the cause of a command refused by a replica that is not
// the leader (nothing was appended: it may be retried anywhere).
const notLeader = "not the leader"

// proposeLocal applies cmd through raft on this replica (the leader) and
// returns its result and raft index.
func (n *Node) proposeLocal(cmd []byte) (issuer.Result, uint64, error) {
	f := n.raft.Apply(cmd, n.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return issuer.Result{}, 0, &issuer.ReplicaError{Cause: notLeader}
		}
		return issuer.Result{}, 0, asReplicaError(err)
	}
	a, _ := f.Response().(issuer.Applied)
	return a.Result, f.Index(), a.Err
}

// waitApplied waits (until deadline) for this replica's store to apply
// the command at index (raft's own applied index moves when entries are
// handed to the FSM, before they are applied: the store's is exact).
func (n *Node) waitApplied(index uint64, deadline time.Time) {
	for n.cfg.Store.AppliedIndex() < index {
		ch := n.fsm.applied()
		if n.cfg.Store.AppliedIndex() >= index {
			return
		}
		select {
		case <-ch:
		case <-time.After(time.Until(deadline)):
			return
		}
	}
}

// asReplicaError reports a consensus or network failure as a 503.
func asReplicaError(err error) error {
	var re *issuer.ReplicaError
	if errors.As(err, &re) {
		return err
	}
	return &issuer.ReplicaError{Cause: err.Error()}
}

// leaderAddr waits (until deadline) for a known leader and returns its
// address, or "" when it is this replica.
func (n *Node) leaderAddr(deadline time.Time) (string, error) {
	for {
		if n.stopping.Load() {
			return "", &issuer.ReplicaError{Cause: "this replica is shutting down"}
		}
		addr, id := n.raft.LeaderWithID()
		if id == raft.ServerID(n.cfg.ID) {
			return "", nil
		}
		if addr != "" {
			return string(addr), nil
		}
		if time.Now().After(deadline) {
			return "", &issuer.ReplicaError{Cause: "no leader elected"}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leaderReadIndex is the read index on the leader: the index of the last
// command its store applied (every write acknowledged so far is at or
// below it: the leader answers a write once applied), read before a round
// of heartbeats confirms it still leads (VerifyLeader), once an entry of
// its own term has applied (so every earlier term's writes are in).
func (n *Node) leaderReadIndex() (uint64, error) {
	deadline := time.Now().Add(n.cfg.ApplyTimeout)
	for !n.ready.Load() {
		if n.raft.State() != raft.Leader || time.Now().After(deadline) {
			return 0, &issuer.ReplicaError{Cause: "not the leader"}
		}
		time.Sleep(5 * time.Millisecond)
	}
	idx := n.cfg.Store.AppliedIndex()
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return 0, asReplicaError(err)
	}
	return idx, nil
}

// ReadFence implements issuer.Replicator: the read index from the leader
// (this replica's own when it leads), then a wait until this replica has
// applied up to it.
func (n *Node) ReadFence() error {
	deadline := time.Now().Add(n.cfg.ApplyTimeout)
	var idx uint64
	for {
		addr, err := n.leaderAddr(deadline)
		if err != nil {
			return err
		}
		if addr == "" {
			idx, err = n.leaderReadIndex()
		} else {
			var out []byte
			if out, err = n.call(addr, opReadIndex, nil, deadline); err == nil && len(out) == 8 {
				idx = binary.BigEndian.Uint64(out)
			}
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return asReplicaError(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n.waitApplied(idx, deadline); n.cfg.Store.AppliedIndex() < idx {
		return &issuer.ReplicaError{Cause: "this replica is behind the leader"}
	}
	return nil
}

// errOutOfContact is a replica that has not heard from a leader lately.
var errOutOfContact = errors.New("this replica has no contact with a raft leader")

// InContact returns nil while this replica leads, or follows a leader it
// heard from within two election timeouts: its state is then at most
// moments old. A replica cut off from the cluster (a partition) returns
// an error, and its feed stops so gateways move to another replica.
func (n *Node) InContact() error {
	switch n.raft.State() {
	case raft.Leader:
		return nil
	case raft.Follower:
		if _, id := n.raft.LeaderWithID(); id != "" && time.Since(n.raft.LastContact()) < 2*n.cfg.ElectionTimeout {
			return nil
		}
	}
	return errOutOfContact
}

// Status is a replica's raft state, as /healthz reports it.
type Status struct {
	State   string `json:"state"`
	Leader  string `json:"leader"`
	Applied uint64 `json:"applied"`
	Commit  uint64 `json:"commit"`
	Term    string `json:"term"`
	ID      string `json:"id"`
	Voters  int    `json:"voters"`
	Members []struct {
		ID      string `json:"id"`
		Address string `json:"address"`
		Voter   bool   `json:"voter"`
	} `json:"members,omitempty"`
}

// Status returns the replica's raft state.
func (n *Node) Status() Status {
	_, leader := n.raft.LeaderWithID()
	st := Status{State: strings.ToLower(n.raft.State().String()), Leader: string(leader), Applied: n.raft.AppliedIndex(),
		Commit: n.raft.CommitIndex(), Term: n.raft.Stats()["term"], ID: n.cfg.ID}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			m := struct {
				ID      string `json:"id"`
				Address string `json:"address"`
				Voter   bool   `json:"voter"`
			}{string(s.ID), string(s.Address), s.Suffrage == raft.Voter}
			if m.Voter {
				st.Voters++
			}
			st.Members = append(st.Members, m)
		}
	}
	return st
}

// Shutdown hands leadership to another replica when this one leads (so a
// rolling restart costs no election timeout), then stops raft and the
// transport. The store is left open: the caller closes it after.
func (n *Node) Shutdown() error {
	if !n.stopping.CompareAndSwap(false, true) {
		return nil
	}
	if n.raft.State() == raft.Leader {
		if err := n.raft.LeadershipTransfer().Error(); err != nil {
			n.log.Warn("raft leadership transfer", "err", err)
		} else {
			n.log.Info("raft leadership transferred")
		}
	}
	close(n.done)
	f := n.raft.Shutdown()
	stopped := make(chan error, 1)
	go func() { stopped <- f.Error() }()
	var err error
	select {
	case err = <-stopped:
	case <-time.After(2 * time.Second):
		// A replication pipeline can wait forever on a peer that stopped
		// reading (hashicorp/raft): closing raft's connections ends it.
		n.log.Warn("raft shutdown is waiting on a peer: closing raft's connections")
		n.layer.closeConns()
		err = <-stopped
	}
	n.pool.closeAll()
	n.trans.Close()
	n.layer.Close()
	if cerr := n.logs.Close(); err == nil {
		err = cerr
	}
	return err
}
