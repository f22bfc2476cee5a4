package replica

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// membershipRequest changes the voter set (on the leader).
type membershipRequest struct {
	Action string `json:"action"` // "add" (non-voter, then voter once caught up) or "remove"
	ID     string `json:"id"`
	Addr   string `json:"addr,omitempty"`
}

// ChangeMembership adds a replica (first as a non-voter; it becomes a voter
// once it has caught up with the leader's log, from a snapshot if it is
// far behind) or removes one. It is forwarded to the leader when this
// replica does not lead.
func (n *Node) ChangeMembership(action, id, addr string) error {
	m := membershipRequest{Action: action, ID: id, Addr: addr}
	if action != "add" && action != "remove" {
		return fmt.Errorf("raft membership: unknown action %q", action)
	}
	if action == "add" && addr == "" {
		return errors.New("raft membership: adding a replica needs its raft address")
	}
	deadline := time.Now().Add(5 * time.Minute)
	leader, err := n.leaderAddr(time.Now().Add(n.cfg.ApplyTimeout))
	if err != nil {
		return err
	}
	if leader == "" {
		return n.changeLocal(m)
	}
	b, _ := json.Marshal(m)
	_, err = n.call(leader, opMembership, b, deadline)
	return err
}

// changeLocal applies a membership change on the leader.
func (n *Node) changeLocal(m membershipRequest) error {
	if n.raft.State() != raft.Leader {
		return raft.ErrNotLeader
	}
	switch m.Action {
	case "remove":
		return n.raft.RemoveServer(raft.ServerID(m.ID), 0, n.cfg.ApplyTimeout).Error()
	case "add":
		if err := n.raft.AddNonvoter(raft.ServerID(m.ID), raft.ServerAddress(m.Addr), 0, n.cfg.ApplyTimeout).Error(); err != nil {
			return err
		}
		n.log.Info("raft: replica added as a non-voter; promoting it once it has caught up", "id", m.ID, "addr", m.Addr)
		// Caught up: it has applied everything committed when it was added
		// (it asks itself over the forwarding channel).
		target := n.raft.CommitIndex()
		deadline := time.Now().Add(5 * time.Minute)
		for {
			applied, err := n.appliedOf(m.Addr)
			if err == nil && applied >= target {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("raft: replica %s did not catch up within 5 minutes (applied %d of %d); it stays a non-voter", m.ID, applied, target)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err := n.raft.AddVoter(raft.ServerID(m.ID), raft.ServerAddress(m.Addr), 0, n.cfg.ApplyTimeout).Error(); err != nil {
			return err
		}
		n.log.Info("raft: replica promoted to voter", "id", m.ID)
		return nil
	}
	return fmt.Errorf("raft membership: unknown action %q", m.Action)
}

// appliedOf asks the replica at addr for its applied index.
func (n *Node) appliedOf(addr string) (uint64, error) {
	out, err := n.call(addr, opApplied, nil, time.Now().Add(2*time.Second))
	if err != nil {
		return 0, err
	}
	if len(out) != 8 {
		return 0, errors.New("raft: bad applied-index answer")
	}
	return binary.BigEndian.Uint64(out), nil
}
