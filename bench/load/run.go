package load

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Result is everything a run measured.
type Result struct {
	Setup    Setup     `json:"setup"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Interrupted is true when the run was stopped (Ctrl-C) before its
	// end: the figures are what was measured until then.
	Interrupted bool   `json:"interrupted,omitempty"`
	Cells       []Cell `json:"cells"`
}

// Cell is one protocol under one workload.
type Cell struct {
	Protocol  Protocol         `json:"protocol"`
	Workload  Workload         `json:"workload"`
	Endpoints []EndpointResult `json:"endpoints,omitempty"`
	Storm     *StormResult     `json:"revoke_storm,omitempty"`
	// Error is why the cell could not run (its setup failed).
	Error string `json:"error,omitempty"`
}

// Failed counts the cell's failed requests (revoke-storm: checks not
// seen) and all of them.
func (c *Cell) Failed() (failed, requests int64) {
	for _, e := range c.Endpoints {
		failed += e.Failed
		requests += e.Requests
	}
	if c.Storm != nil {
		failed += c.Storm.Failed
		requests += c.Storm.Checks
	}
	return failed, requests
}

// FailedPercent is the share of the run's requests that failed.
func (r *Result) FailedPercent() float64 {
	var f, n int64
	for i := range r.Cells {
		cf, cn := r.Cells[i].Failed()
		f += cf
		n += cn
	}
	if n == 0 {
		return 0
	}
	return 100 * float64(f) / float64(n)
}

// Run runs every cell of cfg, one after another, until the end or until
// ctx is cancelled; an interrupted run returns what it measured so far
// (Interrupted set). It fails only when the run cannot start (no tokens).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	res := &Result{Setup: describe(&cfg), Started: time.Now()}
	defer func() { res.Finished, res.Setup.LoadEnd = time.Now(), loadAverage() }()
	r := &runner{cfg: &cfg, res: res, start: res.Started}
	a := &api{base: cfg.APIURL, http: cfg.HTTP, bearer: cfg.Creator}
	r.api = a
	if cfg.Token != "" {
		for i := 0; i < cfg.Clients; i++ {
			r.tokens = append(r.tokens, cfg.Token)
		}
	} else if slices.ContainsFunc(cfg.Workloads, func(w Workload) bool { return w != RevokeStorm }) {
		toks, err := a.createTokens(ctx, "helios-bench-"+res.Started.UTC().Format("20060102T150405"), cfg.Clients)
		defer a.revokeAll(toks)
		if err != nil {
			return nil, err
		}
		for _, t := range toks {
			r.tokens = append(r.tokens, t.Token)
		}
	}
	r.setup = cfg.Token
	if r.setup == "" {
		r.setup = cfg.Creator
	}
	for _, w := range cfg.Workloads {
		for _, p := range cfg.Protocols {
			if ctx.Err() != nil {
				break
			}
			var c Cell
			if w == RevokeStorm {
				c = r.storm(ctx, p)
			} else {
				c = r.cell(ctx, p, w)
			}
			res.Cells = append(res.Cells, c)
			if cfg.Progress != nil {
				cfg.Progress.Done(&res.Cells[len(res.Cells)-1])
			}
		}
	}
	res.Interrupted = ctx.Err() != nil
	return res, nil
}

// runner is one run's state.
type runner struct {
	cfg    *Config
	res    *Result
	api    *api
	start  time.Time
	tokens []string // one per client
	setup  string   // the token that prepares the data set
}

// rounds is how many slices each endpoint's share of a cell is cut into.
func (r *runner) rounds(endpoints int) int {
	if endpoints < 2 {
		return 1
	}
	if r.cfg.Rounds > 0 {
		return r.cfg.Rounds
	}
	if r.cfg.Requests > 0 {
		return 4
	}
	n := int(r.cfg.Duration / (2 * time.Second))
	return max(n, 2)
}

// cell runs one protocol's connect, point or mixed workload on every
// endpoint, interleaved.
func (r *runner) cell(ctx context.Context, p Protocol, wl Workload) Cell {
	c := Cell{Protocol: p, Workload: wl}
	eps := r.cfg.endpoints(p)
	drivers := make([]driver, len(eps))
	versions := make([]string, len(eps))
	for i, e := range eps {
		d, err := newDriver(r.cfg, e)
		if err != nil {
			c.Error = err.Error()
			return c
		}
		drivers[i] = d
		// The data set (which the connect workload does not read, but
		// preparing it is cheap and idempotent) and the server's version.
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		v, err := d.prepare(pctx, r.setup, r.cfg.Keys)
		cancel()
		if err != nil && ctx.Err() == nil {
			// The clients will meet the same refusal: count it there,
			// by kind, rather than stopping the cell.
			v = "(prepare failed: " + errorKind(err) + ")"
		}
		versions[i] = v
	}
	names := make([]string, len(eps))
	for i, e := range eps {
		names[i] = e.Name
	}
	if r.cfg.Progress != nil {
		r.cfg.Progress.Cell(p, wl, names)
	}
	ws := make([]*workers, len(eps))
	for i := range eps {
		ws[i] = &workers{r: r, wl: wl, d: drivers[i], st: newStats(), sessions: make([]session, r.cfg.Clients)}
		defer ws[i].closeAll()
	}
	if r.cfg.Warmup > 0 {
		for i, w := range ws {
			warm := &workers{r: r, wl: wl, d: w.d, st: newStats(), sessions: w.sessions}
			warm.slice(ctx, slicePlan{dur: r.cfg.Warmup}, Snapshot{Protocol: p, Workload: wl, Endpoint: names[i], Warmup: true})
		}
	}
	n := r.rounds(len(eps))
	plan := slicePlan{dur: r.cfg.Duration / time.Duration(n)}
	if r.cfg.Requests > 0 {
		plan = slicePlan{requests: r.cfg.Requests / int64(n)}
	}
	for round := 0; round < n && ctx.Err() == nil; round++ {
		for i, w := range ws {
			if ctx.Err() != nil {
				break
			}
			pl := plan
			if pl.requests > 0 && round == n-1 {
				pl.requests += r.cfg.Requests % int64(n) // the remainder
			}
			w.slice(ctx, pl, Snapshot{Protocol: p, Workload: wl, Endpoint: names[i], Round: round + 1, Rounds: n})
		}
	}
	for i, e := range eps {
		er := ws[i].st.result(e)
		er.Version = versions[i]
		c.Endpoints = append(c.Endpoints, er)
	}
	return c
}

// Ratio compares the gateway with another endpoint of the same cell.
type Ratio struct {
	Endpoint string `json:"endpoint"`
	// Throughput is the gateway's throughput over the endpoint's;
	// P50 and P99 the gateway's latency over the endpoint's.
	Throughput float64 `json:"throughput"`
	P50        float64 `json:"p50"`
	P99        float64 `json:"p99"`
}

// Ratios compares the cell's gateway with each other endpoint.
func (c *Cell) Ratios() []Ratio {
	if len(c.Endpoints) < 2 {
		return nil
	}
	gw := c.Endpoints[0]
	var out []Ratio
	for _, e := range c.Endpoints[1:] {
		out = append(out, Ratio{Endpoint: e.Name, Throughput: div(gw.Throughput, e.Throughput),
			P50: div(gw.Latency.P50, e.Latency.P50), P99: div(gw.Latency.P99, e.Latency.P99)})
	}
	return out
}

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// String names the cell for people.
func (c *Cell) String() string { return fmt.Sprintf("%s %s", c.Protocol, c.Workload) }
