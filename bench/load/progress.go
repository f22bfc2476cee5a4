package load

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// barScale is a progress bar's total: fractions are shown in 1/1000s.
const barScale = 1000

// TerminalProgress shows a live bar per endpoint of the running cell on a
// terminal: protocol, workload, endpoint, requests per second, p99 over the
// last second and errors so far.
type TerminalProgress struct {
	p    *mpb.Progress
	mu   sync.Mutex
	bars map[string]*mpb.Bar
	info map[string]*Snapshot
}

// NewTerminalProgress draws on w, a terminal.
func NewTerminalProgress(w io.Writer) *TerminalProgress {
	return &TerminalProgress{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(32), mpb.WithRefreshRate(200*time.Millisecond)),
		bars: map[string]*mpb.Bar{}, info: map[string]*Snapshot{}}
}

// Cell adds a bar for each endpoint of the cell.
func (t *TerminalProgress) Cell(p Protocol, w Workload, endpoints []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range endpoints {
		key := string(p) + " " + string(w) + " " + e
		snap := &Snapshot{Protocol: p, Workload: w, Endpoint: e}
		t.info[key] = snap
		t.bars[key] = t.p.New(barScale, mpb.BarStyle(),
			mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-5s %-12s %-10s", p, w, e))),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
				t.mu.Lock()
				defer t.mu.Unlock()
				return line(snap)
			})))
	}
}

// line is a snapshot's figures for people.
func line(s *Snapshot) string {
	if s.Workload == RevokeStorm {
		return fmt.Sprintf("revoked %d/%d", s.Requests, s.Rounds)
	}
	warm := ""
	if s.Warmup {
		warm = " (warmup)"
	}
	return fmt.Sprintf("%8.0f req/s  p99 %7.2f ms  errors %d%s", s.Rate, s.P99, s.Failed, warm)
}

// Tick updates the running endpoint's bar.
func (t *TerminalProgress) Tick(s Snapshot) {
	t.mu.Lock()
	defer t.mu.Unlock()
	key := string(s.Protocol) + " " + string(s.Workload) + " " + s.Endpoint
	if s.Workload == RevokeStorm {
		for k, b := range t.bars {
			if info := t.info[k]; info.Protocol == s.Protocol && info.Workload == RevokeStorm {
				info.Requests, info.Rounds = s.Requests, s.Rounds
				b.SetCurrent(int64(barScale * float64(s.Requests) / float64(max(1, s.Rounds))))
			}
		}
		return
	}
	b, ok := t.bars[key]
	if !ok {
		return
	}
	*t.info[key] = s
	if !s.Warmup {
		b.SetCurrent(int64(s.Fraction * barScale))
	}
}

// Done completes the cell's bars.
func (t *TerminalProgress) Done(c *Cell) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, b := range t.bars {
		if info := t.info[k]; info.Protocol == c.Protocol && info.Workload == c.Workload {
			b.SetTotal(-1, true)
			delete(t.bars, k)
		}
	}
}

// Wait ends the display (call it once the run returned).
func (t *TerminalProgress) Wait() {
	t.mu.Lock()
	for k, b := range t.bars {
		b.Abort(false)
		delete(t.bars, k)
	}
	t.mu.Unlock()
	t.p.Wait()
}

// LineProgress writes a quiet line now and then, for logs and pipes: at
// most one per endpoint every Every, and one per cell when it ends.
type LineProgress struct {
	W     io.Writer
	Every time.Duration
	mu    sync.Mutex
	last  map[string]time.Time
}

// NewLineProgress writes to w every 5 s at most per endpoint.
func NewLineProgress(w io.Writer) *LineProgress {
	return &LineProgress{W: w, Every: 5 * time.Second, last: map[string]time.Time{}}
}

// Cell says the cell starts.
func (l *LineProgress) Cell(p Protocol, w Workload, endpoints []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.W, "bench: %s %s: %v\n", p, w, endpoints)
}

// Tick writes a line when the endpoint's last one is old enough.
func (l *LineProgress) Tick(s Snapshot) {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := string(s.Protocol) + " " + string(s.Workload) + " " + s.Endpoint
	if time.Since(l.last[key]) < l.Every {
		return
	}
	l.last[key] = time.Now()
	fmt.Fprintf(l.W, "bench: %s %s %s %3.0f%%: %s\n", s.Protocol, s.Workload, s.Endpoint, 100*s.Fraction, line(&s))
}

// Done writes the cell's figures in one line per endpoint.
func (l *LineProgress) Done(c *Cell) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range Summary(c) {
		fmt.Fprintln(l.W, "bench: "+s)
	}
}

// Summary is a cell's figures in a line per endpoint (or node).
func Summary(c *Cell) []string {
	if c.Error != "" {
		return []string{fmt.Sprintf("%s: could not run: %s", c, c.Error)}
	}
	var out []string
	for _, e := range c.Endpoints {
		out = append(out, fmt.Sprintf("%s %s: %.0f req/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms, %d requests, %d failed (%.2f%%)",
			c, e.Name, e.Throughput, e.Latency.P50, e.Latency.P99, e.Latency.P999, e.Latency.Max, e.Requests, e.Failed, e.FailedPercent))
	}
	if s := c.Storm; s != nil {
		for _, n := range s.Nodes {
			out = append(out, fmt.Sprintf("%s %s: revocation→refusal p50 %.1f ms p99 %.1f ms max %.1f ms; revocation→session end p50 %.1f ms p99 %.1f ms max %.1f ms; %d not refused, %d sessions not ended",
				c, n.Node, n.Refusal.P50, n.Refusal.P99, n.Refusal.Max, n.SessionEnd.P50, n.SessionEnd.P99, n.SessionEnd.Max, n.NotRefused, n.NotEnded))
		}
	}
	for _, r := range c.Ratios() {
		out = append(out, fmt.Sprintf("%s gateway/%s: throughput ×%.2f, p50 ×%.2f, p99 ×%.2f", c, r.Endpoint, r.Throughput, r.P50, r.P99))
	}
	return out
}
