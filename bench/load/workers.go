package load

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// opTimeout bounds one request.
const opTimeout = 30 * time.Second

// failPause is how long a client waits after a failed request before the
// next (closed loop), so a refusing server is not hammered in a busy loop.
const failPause = 5 * time.Millisecond

// slicePlan is one endpoint's turn: a time or a number of requests.
type slicePlan struct {
	dur      time.Duration
	requests int64
}

// workers are the clients of one endpoint in one cell.
type workers struct {
	r        *runner
	wl       Workload
	d        driver
	st       *stats
	sessions []session // point and mixed: one per client, kept across slices
	writes   atomic.Int64
}

// closeAll closes the sessions.
func (w *workers) closeAll() {
	for i, s := range w.sessions {
		if s != nil {
			s.close()
			w.sessions[i] = nil
		}
	}
}

// openAll opens every client's session before the measured time (a
// failure is left for the clients' first request, which counts it).
func (w *workers) openAll(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range w.sessions {
		if w.sessions[i] != nil {
			continue
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			octx, cancel := context.WithTimeout(ctx, opTimeout)
			defer cancel()
			if s, err := w.d.open(octx, w.r.tokens[i]); err == nil {
				w.sessions[i] = s
			}
		}(i)
	}
	wg.Wait()
}

// op is one request of client i.
func (w *workers) op(ctx context.Context, i int) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	cfg := w.r.cfg
	if w.wl == Connect {
		return w.d.connectOnce(ctx, w.r.tokens[i])
	}
	s := w.sessions[i]
	if s == nil {
		var err error
		if s, err = w.d.open(ctx, w.r.tokens[i]); err != nil {
			return err
		}
		w.sessions[i] = s
	}
	key := rand.IntN(cfg.Keys) + 1
	var err error
	if w.wl == Mixed && rand.IntN(100) >= cfg.ReadPercent {
		err = s.write(ctx, key, value(key, int(w.writes.Add(1))))
	} else {
		err = s.read(ctx, key)
	}
	if err != nil && !serverError(err) {
		// The connection is in an unknown state: the next request opens
		// a new one.
		s.close()
		w.sessions[i] = nil
	}
	return err
}

// serverError reports whether err is the server's answer to a command (the
// session is still usable) rather than a broken connection.
func serverError(err error) bool {
	var pe *pgconn.PgError
	var me *mysql.MySQLError
	var ce mongo.CommandError
	var we mongo.WriteException
	var re redis.Error
	var he *restError
	return errors.Is(err, errMissing) || errors.As(err, &pe) || errors.As(err, &me) || errors.As(err, &ce) ||
		errors.As(err, &we) || errors.As(err, &re) || (errors.As(err, &he) && he.Status != 401)
}

// slice runs every client of the endpoint for one turn and samples its
// throughput each second.
func (w *workers) slice(ctx context.Context, plan slicePlan, snap Snapshot) {
	cfg := w.r.cfg
	if w.wl != Connect {
		w.openAll(ctx)
	}
	start := time.Now()
	var end time.Time
	if plan.dur > 0 {
		end = start.Add(plan.dur)
	}
	var budget atomic.Int64
	budget.Store(plan.requests)
	var wg sync.WaitGroup
	for i := 0; i < cfg.Clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if cfg.Rate > 0 {
				w.openLoop(ctx, i, start, end, plan.requests > 0, &budget)
			} else {
				w.closedLoop(ctx, i, end, plan.requests > 0, &budget)
			}
		}(i)
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last, lastN := start, w.st.ok.Load()
	atStart := w.st.ok.Load() + w.st.failed.Load()
	sample := func(now time.Time) {
		n := w.st.ok.Load()
		dt := now.Sub(last).Seconds()
		if dt < 0.2 {
			return
		}
		rate := float64(n-lastN) / dt
		w.st.mu.Lock()
		w.st.timeline = append(w.st.timeline, Sample{From: last.Sub(w.r.start).Seconds(), T: now.Sub(w.r.start).Seconds(), Rate: rate})
		w.st.mu.Unlock()
		last, lastN = now, n
		if cfg.Progress != nil {
			s := snap
			s.Elapsed, s.Total, s.Rate, s.P99 = now.Sub(start), plan.dur, rate, w.st.takeWindow()
			s.Requests, s.Failed = w.st.ok.Load()+w.st.failed.Load(), w.st.failed.Load()
			s.Fraction = fraction(s, plan, s.Requests-atStart)
			cfg.Progress.Tick(s)
		}
	}
	for {
		select {
		case now := <-tick.C:
			sample(now)
			continue
		case <-finished:
		}
		break
	}
	now := time.Now()
	sample(now)
	w.st.mu.Lock()
	w.st.active += now.Sub(start)
	w.st.mu.Unlock()
}

// fraction is how much of the endpoint's cell (or warmup) is done, 0–1,
// done requests into this turn.
func fraction(s Snapshot, plan slicePlan, done int64) float64 {
	var in float64
	switch {
	case plan.dur > 0:
		in = min(1, float64(s.Elapsed)/float64(plan.dur))
	case plan.requests > 0:
		in = min(1, float64(done)/float64(plan.requests))
	}
	if s.Rounds == 0 {
		return in
	}
	return (float64(s.Round-1) + in) / float64(s.Rounds)
}

// more reports whether client may start another request: the slice's time
// or its request budget is not used up.
func more(end time.Time, counted bool, budget *atomic.Int64) bool {
	if counted {
		return budget.Add(-1) >= 0
	}
	return time.Now().Before(end)
}

// closedLoop sends the next request as soon as the last one ends.
func (w *workers) closedLoop(ctx context.Context, i int, end time.Time, counted bool, budget *atomic.Int64) {
	for ctx.Err() == nil && more(end, counted, budget) {
		t0 := time.Now()
		err := w.op(ctx, i)
		if ctx.Err() != nil {
			return // interrupted: the request did not end on its own
		}
		w.st.done(time.Since(t0), err)
		if err != nil {
			time.Sleep(failPause)
		}
	}
}

// openLoop sends client i's requests on a fixed schedule (its share of the
// rate) and measures each from its intended start, so time spent waiting
// for a slow server counts as latency (no coordinated omission).
func (w *workers) openLoop(ctx context.Context, i int, start, end time.Time, counted bool, budget *atomic.Int64) {
	cfg := w.r.cfg
	interval := time.Duration(float64(time.Second) * float64(cfg.Clients) / cfg.Rate)
	next := start.Add(interval * time.Duration(i) / time.Duration(cfg.Clients))
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for ctx.Err() == nil {
		if !counted && !next.Before(end) {
			return
		}
		if counted && budget.Add(-1) < 0 {
			return
		}
		if d := time.Until(next); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if !counted && time.Now().After(end) {
			// Behind schedule at the end: the requests still due were
			// never sent.
			w.st.missed.Add(int64(end.Sub(next)/interval) + 1)
			return
		}
		err := w.op(ctx, i)
		if ctx.Err() != nil {
			return
		}
		w.st.done(time.Since(next), err)
		next = next.Add(interval)
	}
}

// Snapshot is what the live display shows of the endpoint that runs.
type Snapshot struct {
	Protocol Protocol
	Workload Workload
	Endpoint string
	// Warmup is true while the endpoint warms up (not measured).
	Warmup bool
	// Round of Rounds is the endpoint's turn.
	Round, Rounds int
	// Elapsed of Total is the turn's time (Total 0: a request count).
	Elapsed, Total time.Duration
	// Rate is the requests per second over the last second, P99 their
	// 99th percentile latency in ms.
	Rate, P99 float64
	// Requests and Failed count the endpoint's requests in the cell so far.
	Requests, Failed int64
	// Fraction is how much of the endpoint's share of the cell is done.
	Fraction float64
}

// Progress shows a run as it goes.
type Progress interface {
	// Cell says a cell starts with these endpoints.
	Cell(p Protocol, w Workload, endpoints []string)
	// Tick shows the running endpoint, once a second.
	Tick(s Snapshot)
	// Done says a cell ended, with its figures.
	Done(c *Cell)
}
