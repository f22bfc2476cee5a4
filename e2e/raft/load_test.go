package raft

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testdaemon"
)

// ack is one acknowledged revocation.
type ack struct {
	id, token string
	// sent is when the acknowledged attempt was sent, at when it was
	// answered.
	sent, at time.Time
}

// load is a burst of concurrent revokers: each creates a token on a live
// replica and revokes it on another, retrying either on any error or
// refusal until acknowledged (a revocation answered "already revoked" is
// acknowledged: a retry found the first attempt applied).
type load struct {
	c     *cluster
	users []user

	mu        sync.Mutex
	acks      []ack
	failures  int             // attempts that failed and were retried
	latencies []time.Duration // first attempt → acknowledgement, per revocation
	problems  []string

	stop chan struct{}
	wg   sync.WaitGroup
}

// startLoad runs workers revokers until stop.
func startLoad(t *testing.T, c *cluster, workers int) *load {
	t.Helper()
	l := &load{c: c, stop: make(chan struct{})}
	live := c.live()
	for i := range 4 {
		l.users = append(l.users, newUser(t, live[i%len(live)], live[(i+1)%len(live)], fmt.Sprintf("load%d-%d@example.com", i, rand.Int())))
	}
	for w := range workers {
		l.wg.Add(1)
		go l.worker(w)
	}
	return l
}

// pick returns a replica believed up (the test's view; a request to one
// just killed fails and is retried elsewhere).
func (l *load) pick() *replica {
	live := l.c.live()
	return live[rand.IntN(len(live))]
}

func (l *load) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

func (l *load) fail() {
	l.mu.Lock()
	l.failures++
	l.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
}

func (l *load) worker(w int) {
	defer l.wg.Done()
	u := l.users[w%len(l.users)]
	for !l.stopped() {
		var created struct {
			Token string `json:"token"`
			ID    string `json:"id"`
		}
		for !l.stopped() {
			status, body := do(l.pick(), "POST", "/v1/auth/tokens", u.bearer, map[string]any{"name": "burst"})
			if status == http.StatusCreated && json.Unmarshal(body, &created) == nil {
				break
			}
			l.fail()
		}
		if created.ID == "" {
			return
		}
		start := time.Now()
		for {
			sent := time.Now()
			status, body := do(l.pick(), "DELETE", "/v1/auth/tokens/"+created.ID, u.bearer, nil)
			if status == http.StatusOK || (status == http.StatusNotFound && strings.Contains(string(body), "already revoked")) {
				now := time.Now()
				l.mu.Lock()
				l.acks = append(l.acks, ack{created.ID, created.Token, sent, now})
				l.latencies = append(l.latencies, now.Sub(start))
				l.mu.Unlock()
				break
			}
			if status == http.StatusNotFound {
				l.mu.Lock()
				l.problems = append(l.problems, fmt.Sprintf("token %s, acknowledged as created, is unknown: %s", created.ID, body))
				l.mu.Unlock()
				break
			}
			if l.stopped() {
				break // stopped while the cluster is down: not acknowledged
			}
			if time.Since(start) > 60*time.Second {
				l.mu.Lock()
				l.problems = append(l.problems, fmt.Sprintf("revocation of %s not acknowledged within 60s: %d %s", created.ID, status, body))
				l.mu.Unlock()
				break
			}
			l.fail()
		}
	}
}

// finish stops the workers and returns the acknowledged revocations.
func (l *load) finish(t *testing.T) []ack {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	for _, p := range l.problems {
		t.Error(p)
	}
	return l.acks
}

// outageAfter is the write outage after a kill at at: the time until the
// first revocation acknowledged whose attempt was sent after the kill
// (one sent before may have committed before it).
func (l *load) outageAfter(at time.Time, within time.Duration) (time.Duration, bool) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		best := time.Duration(-1)
		for i := len(l.acks) - 1; i >= 0 && l.acks[i].at.After(at); i-- {
			if a := l.acks[i]; a.sent.After(at) && (best < 0 || a.at.Sub(at) < best) {
				best = a.at.Sub(at)
			}
		}
		l.mu.Unlock()
		if best >= 0 {
			return best, true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, false
}

// percentile of ds (sorted in place).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	i := int(float64(len(ds)-1) * p)
	return ds[i]
}

// verify checks that every acknowledged revocation is in every replica's
// log (and their logs are identical, with the same watermark), that
// every replica and gateway refuses each token, and that the gateways
// reached the replicas' watermark.
func (c *cluster) verify(t *testing.T, acks []ack, gateways ...*testdaemon.Daemon) {
	t.Helper()
	// Let every replica apply what the leader committed.
	lead := c.leader(t, 20*time.Second)
	want, _ := health(lead)
	deadline := time.Now().Add(20 * time.Second)
	for _, r := range c.reps {
		for {
			h, err := health(r)
			if err == nil && h.Applied >= want.Commit {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not catch up: %+v, leader %+v", r.id, h, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	ref, refSeq := c.sameLogs(t, 20*time.Second)
	revoked := map[core.TokenID]bool{}
	for _, e := range ref {
		revoked[e.Token] = true
	}
	for _, a := range acks {
		id, err := core.ParseTokenID(a.id)
		if err != nil {
			t.Fatal(err)
		}
		if !revoked[id] {
			t.Fatalf("acknowledged revocation of %s is not in the replicas' log", a.id)
		}
	}
	// Every gateway reaches the watermark and refuses every token; the
	// replicas' own gateways too (a sample: the log check covers them all).
	for _, g := range gateways {
		for {
			if h := gatewayHealth(g); h.AppliedSeq >= refSeq {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("gateway at seq %d, replicas at %d", gatewayHealth(g).AppliedSeq, refSeq)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	check := func(name string, d *testdaemon.Daemon, list []ack) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		ch := make(chan ack)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for a := range ch {
					if ok, _ := accepts(d, a.token); ok {
						mu.Lock()
						t.Errorf("%s accepts token %s whose revocation was acknowledged", name, a.id)
						mu.Unlock()
					}
				}
			}()
		}
		for _, a := range list {
			ch <- a
		}
		close(ch)
		wg.Wait()
	}
	for i, g := range gateways {
		check(fmt.Sprintf("gateway %d", i), g, acks)
	}
	sample := acks
	if len(sample) > 200 {
		sample = sample[len(sample)-200:]
	}
	for _, r := range c.reps {
		check(r.id, r.d, sample)
	}
}

// sameLogs reads every replica's revocation log until all are at the same
// sequence number (background writes, such as a gateway's last-used flush,
// may land between two reads), checks that they are identical, and
// returns it.
func (c *cluster) sameLogs(t *testing.T, within time.Duration) (map[uint64]logEntry, uint64) {
	t.Helper()
	deadline := time.Now().Add(within)
	var logs []map[uint64]logEntry
	var seqs []uint64
	for {
		logs, seqs = logs[:0], seqs[:0]
		for _, r := range c.reps {
			l, seq := c.feedLog(t, r)
			logs, seqs = append(logs, l), append(seqs, seq)
		}
		if slices.Min(seqs) == slices.Max(seqs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas at different sequence numbers: %v", seqs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ref := logs[0]
	for i, r := range c.reps[1:] {
		got := logs[i+1]
		if len(got) != len(ref) {
			t.Fatalf("%s: %d log entries up to seq %d; %s: %d", r.id, len(got), seqs[0], c.reps[0].id, len(ref))
		}
		for s, e := range ref {
			if got[s] != e {
				t.Fatalf("%s log entry %d = %+v, %s has %+v", r.id, s, got[s], c.reps[0].id, e)
			}
		}
	}
	return ref, seqs[0]
}
