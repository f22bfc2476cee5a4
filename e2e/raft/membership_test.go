package raft

import (
	"flag"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heliosdb/auth/internal/testdaemon"
)

// replaceRevocations is how many revocations exist when
// TestReplaceWipedReplica replaces a replica (the issue asks for 100k:
// go test ./e2e/raft -run Replace -args -replace-revocations 100000).
var replaceRevocations = flag.Int("replace-revocations", 3000, "revocations made before TestReplaceWipedReplica wipes a replica")

// heliosd runs `heliosd args...` (the CLI side of the binary).
func heliosd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(testdaemon.Build(t, "heliosd"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("heliosd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestReplaceWipedReplica: with revocations in the log (compacted into a
// snapshot: small snapshot threshold), a replica loses its disk. It is
// removed (heliosd raft remove), started again empty without
// --raft-peers, and added (heliosd raft add): it joins as a non-voter,
// installs the leader's snapshot, and is promoted to voter once caught
// up, while writes go on and a gateway keeps following; afterwards its log
// is the others' and it refuses every acknowledged revocation.
func TestReplaceWipedReplica(t *testing.T) {
	snap := []string{"--raft-snapshot-threshold", "512", "--raft-trailing-logs", "128"}
	c := newCluster(t, 3, snap...)
	g := c.gateway(t)
	watch := watchSeq(g)
	l := startLoad(t, c, revokers)
	for {
		l.mu.Lock()
		n := len(l.acks)
		l.mu.Unlock()
		if n >= *replaceRevocations {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Wait for a snapshot on every replica (raft checks every 10–20s, at
	// random: a fixed 12s sleep sometimes ended before it).
	c.waitSnapshots(t)

	lead := c.leader(t, 20*time.Second)
	victim := c.followers(lead)[0]
	victim.d.Kill()
	victim.up.Store(false)
	url := "http://" + lead.d.HTTP
	c.raft(t, url, "remove", victim.id)
	if st := c.raft(t, url, "status"); strings.Contains(st, `"id":"`+victim.id+`"`) {
		t.Fatalf("%s still a member after remove: %s", victim.id, st)
	}

	// Its disk is gone: a new data directory (with the cluster's key and
	// keyring), the same raft address, no --raft-peers.
	old := victim.d.DataDir
	c.start(t, victim, "", append(snap, "--log-level", "info")...)
	if victim.d.DataDir == old {
		t.Fatal("the replica restarted on its old data directory")
	}
	if err := os.RemoveAll(old); err != nil {
		t.Fatal(err)
	}
	// Watch the membership from the leader while it is added.
	var sawNonVoter atomic.Bool
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if h, err := health(lead); err == nil {
				for _, m := range h.Members {
					if m.ID == victim.id && !m.Voter {
						sawNonVoter.Store(true)
					}
				}
			}
		}
	}()
	c.raft(t, url, "add", victim.id, victim.raftAddr)
	close(stop)
	if !sawNonVoter.Load() {
		t.Error("the added replica was never seen as a non-voter")
	}
	h, err := health(lead)
	if err != nil {
		t.Fatal(err)
	}
	voter := false
	for _, m := range h.Members {
		voter = voter || (m.ID == victim.id && m.Voter)
	}
	if !voter || h.Voters != 3 {
		t.Fatalf("after add: %+v", h)
	}
	acks := l.finish(t)
	watch.finish(t)
	if !strings.Contains(victim.d.Logs(), "issuer state restored from a raft snapshot") {
		t.Error("the wiped replica caught up without installing a snapshot")
	}
	c.verify(t, acks, g)
	t.Logf("%d revocations acknowledged; replica %s replaced", len(acks), victim.id)
}
