package load

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Revoke-storm timing.
const (
	// stormTimeout is how long after a revocation a node may still accept
	// the token, or a session of it live, before that counts as a failure.
	stormTimeout = 10 * time.Second
	// stormPoll is how often a session sends a command, and a prober
	// tries to connect: the resolution of the storm's latencies.
	stormPoll = 5 * time.Millisecond
	// stormRate is the default revocations per second.
	stormRate = 10
)

// StormResult is what a revoke-storm measured.
type StormResult struct {
	// Tokens were revoked at Rate per second while a session of each ran
	// on every node.
	Tokens int     `json:"tokens"`
	Rate   float64 `json:"revocations_per_s"`
	// PollMS is the resolution of the latencies: sessions send a command
	// and probers connect every PollMS.
	PollMS float64 `json:"poll_ms"`
	// Checks counts what was to be seen (per token and node: a refusal and
	// a session's end); Failed those not seen, or not measurable.
	Checks int64        `json:"checks"`
	Failed int64        `json:"failed"`
	Nodes  []StormNode  `json:"nodes"`
	Errors []ErrorCount `json:"errors,omitempty"`
}

// StormNode is one gateway node's side of a revoke-storm.
type StormNode struct {
	Node string `json:"node"`
	// Refusal is the time from the revocation request to the node's
	// first refused connection with the token; SessionEnd to the end of
	// the session that was open with it.
	Refusal    Percentiles `json:"revocation_to_refusal"`
	SessionEnd Percentiles `json:"revocation_to_session_end"`
	// NotRefused and NotEnded count tokens the node still accepted, and
	// sessions still alive, stormTimeout after the revocation.
	NotRefused int `json:"not_refused"`
	NotEnded   int `json:"not_ended"`
	// RefusedBy and EndedBy say how the refusals and ends looked.
	RefusedBy []ErrorCount `json:"refused_by,omitempty"`
	EndedBy   []ErrorCount `json:"ended_by,omitempty"`
}

// stormCheck is one token on one node.
type stormCheck struct {
	sess      session
	ended     time.Time
	endErr    error
	refused   time.Time
	refuseErr error
}

// storm runs protocol p's revoke-storm.
func (r *runner) storm(ctx context.Context, p Protocol) Cell {
	c := Cell{Protocol: p, Workload: RevokeStorm}
	rate := r.cfg.Rate
	if rate <= 0 {
		rate = stormRate
	}
	n := r.cfg.Clients
	sr := &StormResult{Tokens: n, Rate: rate, PollMS: float64(stormPoll) / float64(time.Millisecond)}
	c.Storm = sr
	errs := map[string]int64{}
	var mu sync.Mutex
	fail := func(what string, err error) {
		mu.Lock()
		defer mu.Unlock()
		sr.Failed++
		if err != nil {
			what += errorKind(err)
		}
		errs[what]++
	}
	defer func() {
		for k, v := range errs {
			sr.Errors = append(sr.Errors, ErrorCount{Kind: k, Count: v})
		}
		sortErrors(sr.Errors)
	}()

	toks, err := r.api.createTokens(ctx, fmt.Sprintf("helios-bench-storm-%s-%d", p, time.Now().Unix()), n)
	defer r.api.revokeAll(toks)
	if err != nil {
		c.Error = errorKind(err)
		return c
	}
	nodes := r.cfg.Nodes
	drivers := make([]driver, len(nodes))
	names := make([]string, len(nodes))
	for j, node := range nodes {
		names[j] = node[p]
		if drivers[j], err = newDriver(r.cfg, Endpoint{Name: names[j], Protocol: p, Addr: node[p], Gateway: true}); err != nil {
			c.Error = err.Error()
			return c
		}
	}
	if r.cfg.Progress != nil {
		r.cfg.Progress.Cell(p, RevokeStorm, names)
	}
	sr.Checks = int64(2 * n * len(nodes))
	checks := make([][]stormCheck, n)
	var wg sync.WaitGroup
	for i := range checks {
		checks[i] = make([]stormCheck, len(nodes))
		for j := range nodes {
			wg.Add(1)
			go func(ck *stormCheck, d driver, tok string) {
				defer wg.Done()
				octx, cancel := context.WithTimeout(ctx, opTimeout)
				defer cancel()
				s, err := d.open(octx, tok)
				if err != nil {
					fail("session did not open: ", err)
					return
				}
				ck.sess = s
			}(&checks[i][j], drivers[j], toks[i].Token)
		}
	}
	wg.Wait()

	// Every open session sends a command every stormPoll until it fails.
	stop := make(chan struct{})
	var sessions sync.WaitGroup
	for i := range checks {
		for j := range checks[i] {
			ck := &checks[i][j]
			if ck.sess == nil {
				continue
			}
			sessions.Add(1)
			go func() {
				defer sessions.Done()
				defer ck.sess.close()
				for {
					octx, cancel := context.WithTimeout(ctx, stormTimeout)
					err := ck.sess.ping(octx)
					cancel()
					if err != nil {
						if ctx.Err() == nil {
							ck.ended, ck.endErr = time.Now(), err
						}
						return
					}
					select {
					case <-stop:
						return
					case <-ctx.Done():
						return
					case <-time.After(stormPoll):
					}
				}
			}()
		}
	}

	// Revoke at the rate; after each revocation, probe every node.
	revoked := make([]time.Time, n)
	var probes sync.WaitGroup
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	for i := 0; i < n && ctx.Err() == nil; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
			if ctx.Err() != nil {
				break
			}
		}
		t0 := time.Now()
		if err := r.api.revoke(ctx, toks[i].ID); err != nil {
			if ctx.Err() == nil {
				fail("revocation failed: ", err)
			}
			continue
		}
		revoked[i] = t0
		for j := range nodes {
			probes.Add(1)
			go func(ck *stormCheck, d driver, tok string) {
				defer probes.Done()
				for time.Since(t0) < stormTimeout && ctx.Err() == nil {
					octx, cancel := context.WithTimeout(ctx, stormTimeout)
					err := d.connectOnce(octx, tok)
					cancel()
					if err != nil && ctx.Err() == nil {
						ck.refused, ck.refuseErr = time.Now(), err
						return
					}
					time.Sleep(stormPoll)
				}
			}(&checks[i][j], drivers[j], toks[i].Token)
		}
		if r.cfg.Progress != nil {
			r.cfg.Progress.Tick(Snapshot{Protocol: p, Workload: RevokeStorm, Endpoint: "revoked", Round: i + 1, Rounds: n,
				Elapsed: time.Since(start), Requests: int64(i + 1), Fraction: float64(i+1) / float64(n)})
		}
	}
	probes.Wait()
	// Sessions get stormTimeout after the last revocation to end.
	var last time.Time
	for _, t := range revoked {
		if t.After(last) {
			last = t
		}
	}
	if last.IsZero() {
		last = time.Now()
	}
	ended := make(chan struct{})
	go func() { sessions.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-ctx.Done():
	case <-time.After(time.Until(last.Add(stormTimeout))):
	}
	close(stop)
	sessions.Wait()

	for j := range nodes {
		sn := StormNode{Node: names[j]}
		refusal, end := newHist(), newHist()
		refusedBy, endedBy := map[string]int64{}, map[string]int64{}
		for i := range checks {
			ck := &checks[i][j]
			if revoked[i].IsZero() {
				continue // never revoked (interrupted or the API refused)
			}
			switch {
			case !ck.refused.IsZero():
				record(refusal, ck.refused.Sub(revoked[i]))
				refusedBy[errorKind(ck.refuseErr)]++
			case ctx.Err() == nil:
				sn.NotRefused++
				fail("token still accepted by "+names[j]+" after 10s", nil)
			}
			switch {
			case ck.sess == nil && ck.ended.IsZero():
				// never opened: counted when it failed
			case ck.ended.IsZero():
				if ctx.Err() == nil {
					sn.NotEnded++
					fail("session on "+names[j]+" still alive 10s after revocation", nil)
				}
			case ck.ended.Before(revoked[i]):
				fail("session ended before its token was revoked: ", ck.endErr)
			default:
				record(end, ck.ended.Sub(revoked[i]))
				endedBy[errorKind(ck.endErr)]++
			}
		}
		sn.Refusal, sn.SessionEnd = summarize(refusal), summarize(end)
		sn.RefusedBy, sn.EndedBy = counts(refusedBy), counts(endedBy)
		sr.Nodes = append(sr.Nodes, sn)
	}
	return c
}

// counts turns a map of kinds into a sorted list.
func counts(m map[string]int64) []ErrorCount {
	var out []ErrorCount
	for k, v := range m {
		out = append(out, ErrorCount{Kind: k, Count: v})
	}
	sortErrors(out)
	return out
}

func sortErrors(es []ErrorCount) {
	sort.Slice(es, func(i, j int) bool {
		if es[i].Count != es[j].Count {
			return es[i].Count > es[j].Count
		}
		return es[i].Kind < es[j].Kind
	})
}
