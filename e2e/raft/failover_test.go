package raft

import (
	"flag"
	"strings"
	"testing"
	"time"
)

// kills is how many times TestLeaderKilledUnderRevocationBurst kills the
// leader (go test ./e2e/raft -args -kills 50).
var kills = flag.Int("kills", 20, "leader SIGKILLs in TestLeaderKilledUnderRevocationBurst")

// revokers is the burst's concurrency.
const revokers = 32

// TestLeaderKilledUnderRevocationBurst: 32 revokers create and revoke
// tokens on random replicas while the leader is SIGKILLed, again and
// again (the victim is whoever leads, so it rotates), and restarted.
// Afterwards every acknowledged revocation is in every replica's log
// (identical logs: no gap, no divergence) and refused by every replica and
// the gateway, whose sequence number never went backwards; the write
// outage after each kill (until the first revocation acknowledged that
// was attempted after it) has p99 under 3s.
func TestLeaderKilledUnderRevocationBurst(t *testing.T) {
	c := newCluster(t, 3)
	g := c.gateway(t)
	watch := watchSeq(g)
	l := startLoad(t, c, revokers)
	var outages []time.Duration
	victims := map[string]int{}
	for k := range *kills {
		time.Sleep(700 * time.Millisecond)
		lead := c.leader(t, 20*time.Second)
		victims[lead.id]++
		at := time.Now()
		lead.d.Kill()
		lead.up.Store(false)
		d, ok := l.outageAfter(at, 20*time.Second)
		if !ok {
			t.Fatalf("kill %d (%s): no revocation acknowledged within 20s", k+1, lead.id)
		}
		outages = append(outages, d)
		lead.d.StartAgain(t)
		lead.up.Store(true)
	}
	acks := l.finish(t)
	watch.finish(t)
	c.verify(t, acks, g)
	lat := append([]time.Duration(nil), l.latencies...)
	p99 := percentile(append([]time.Duration(nil), outages...), 0.99)
	t.Logf("%d kills (victims %v), %d revocations acknowledged, %d retried attempts", len(outages), victims, len(acks), l.failures)
	t.Logf("write outage after a kill: min %v p50 %v p99 %v max %v", percentile(outages, 0), percentile(outages, 0.5), p99, percentile(outages, 1))
	t.Logf("revocation latency incl. retries: p50 %v p99 %v max %v", percentile(lat, 0.5), percentile(lat, 0.99), percentile(lat, 1))
	if p99 >= 3*time.Second {
		t.Errorf("write outage p99 %v, want < 3s (all: %v)", p99, outages)
	}
	if len(victims) < 2 && *kills > 1 {
		t.Errorf("the leader never moved: victims %v", victims)
	}
}

// TestAllKilledAndRestarted: every replica SIGKILLed at once in the
// middle of a burst, then started again: the cluster elects a leader and
// serves, and nothing acknowledged before the kill is lost.
func TestAllKilledAndRestarted(t *testing.T) {
	c := newCluster(t, 3)
	g := c.gateway(t)
	watch := watchSeq(g)
	l := startLoad(t, c, revokers)
	time.Sleep(2 * time.Second)
	for _, r := range c.reps {
		r.d.Kill()
	}
	// Acknowledgements the workers still record come from requests
	// answered before the kill; stop them while the cluster is down.
	acks := l.finish(t)
	for _, r := range c.reps {
		r.up.Store(false)
	}
	if len(acks) == 0 {
		t.Fatal("nothing acknowledged before the kill")
	}
	for _, r := range c.reps {
		r.d.StartAgain(t)
		r.up.Store(true)
	}
	c.leader(t, 20*time.Second)
	// It serves: a new user, a new token, revoked.
	l2 := startLoad(t, c, 4)
	time.Sleep(time.Second)
	acks = append(acks, l2.finish(t)...)
	watch.finish(t)
	c.verify(t, acks, g)
	t.Logf("%d revocations acknowledged across the restart", len(acks))
}

// TestRollingRestart: each replica in turn is stopped (SIGTERM: a leader
// hands leadership to another first) and started again, under load.
// Clients see no failure beyond retries; the gateway never goes back.
func TestRollingRestart(t *testing.T) {
	c := newCluster(t, 3, "--log-level", "info")
	g := c.gateway(t)
	watch := watchSeq(g)
	l := startLoad(t, c, revokers)
	transferred := 0
	for round := range 2 {
		for _, r := range c.reps {
			time.Sleep(500 * time.Millisecond)
			h, _ := health(r)
			r.up.Store(false)
			r.d.Stop()
			if h.State == "leader" && strings.Contains(r.d.Logs(), "raft leadership transferred") {
				transferred++
			}
			r.d.StartAgain(t)
			r.up.Store(true)
			c.leader(t, 20*time.Second)
			_ = round
		}
	}
	acks := l.finish(t)
	watch.finish(t)
	c.verify(t, acks, g)
	lat := append([]time.Duration(nil), l.latencies...)
	t.Logf("%d revocations acknowledged, %d attempts retried, %d leader stops with leadership transferred; latency p50 %v p99 %v max %v",
		len(acks), l.failures, transferred, percentile(lat, 0.5), percentile(lat, 0.99), percentile(lat, 1))
	if transferred == 0 {
		t.Error("no stopped leader handed leadership over")
	}
	// Measured p99 70–130ms on a quiet machine, 2.2s at load 15; only a
	// stall that long means something is wrong.
	if p99 := percentile(lat, 0.99); p99 > 10*time.Second {
		t.Errorf("revocation latency p99 %v during a rolling restart, want < 10s", p99)
	}
}
