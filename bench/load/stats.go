package load

import (
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: 1 µs to 5 minutes, 3 significant digits.
const (
	histLowest  = 1
	histHighest = int64(5 * time.Minute / time.Microsecond)
	histDigits  = 3
)

func newHist() *hdr.Histogram { return hdr.New(histLowest, histHighest, histDigits) }

// Percentiles summarises a histogram, in milliseconds.
type Percentiles struct {
	Count int64   `json:"count"`
	Min   float64 `json:"min_ms"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
}

func ms(us int64) float64 { return float64(us) / 1000 }

// summarize reads the percentiles of h (microseconds).
func summarize(h *hdr.Histogram) Percentiles {
	if h.TotalCount() == 0 {
		return Percentiles{}
	}
	return Percentiles{Count: h.TotalCount(), Min: ms(h.Min()), Mean: h.Mean() / 1000,
		P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)), P99: ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max())}
}

// record adds d to h, clamped to the histogram's range.
func record(h *hdr.Histogram, d time.Duration) {
	us := int64(d / time.Microsecond)
	if us < histLowest {
		us = histLowest
	}
	if us > histHighest {
		us = histHighest
	}
	_ = h.RecordValue(us)
}

// Sample is one sample of throughput over time: the requests completed per
// second between From and T, in seconds since the run started.
type Sample struct {
	From float64 `json:"from_s"`
	T    float64 `json:"t_s"`
	Rate float64 `json:"per_s"`
}

// stats is what one endpoint of a cell measured; every client adds to it.
type stats struct {
	mu     sync.Mutex
	hist   *hdr.Histogram
	errs   map[string]int64
	ok     atomic.Int64
	failed atomic.Int64
	// missed counts open-loop requests that were due before a slice ended
	// but never started.
	missed atomic.Int64
	// active is the measured time so far; timeline the samples.
	active   time.Duration
	timeline []Sample
	// window is the live display's recent latencies (reset each tick).
	window *hdr.Histogram
}

func newStats() *stats {
	return &stats{hist: newHist(), window: newHist(), errs: map[string]int64{}}
}

// done records one request: its latency, or its error's kind.
func (s *stats) done(lat time.Duration, err error) {
	if err != nil {
		s.failed.Add(1)
		k := errorKind(err)
		s.mu.Lock()
		s.errs[k]++
		s.mu.Unlock()
		return
	}
	s.ok.Add(1)
	s.mu.Lock()
	record(s.hist, lat)
	record(s.window, lat)
	s.mu.Unlock()
}

// takeWindow returns the p99 of the latencies since the last call (ms) and
// starts a new window.
func (s *stats) takeWindow() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := ms(s.window.ValueAtQuantile(99))
	s.window.Reset()
	return p
}

// ErrorCount is one kind of error and how often it happened.
type ErrorCount struct {
	Kind  string `json:"kind"`
	Count int64  `json:"count"`
}

// EndpointResult is what one endpoint measured in one cell.
type EndpointResult struct {
	Endpoint
	// Requests counts every request that ended (succeeded or failed);
	// Failed those that failed, FailedPercent their share.
	Requests      int64   `json:"requests"`
	Failed        int64   `json:"failed"`
	FailedPercent float64 `json:"failed_percent"`
	// Missed counts open-loop requests due but never started (the server
	// could not keep up with the rate).
	Missed int64 `json:"missed,omitempty"`
	// Seconds is the measured time; Throughput the successful requests per
	// second over it.
	Seconds    float64      `json:"seconds"`
	Throughput float64      `json:"throughput_per_s"`
	Latency    Percentiles  `json:"latency"`
	Errors     []ErrorCount `json:"errors,omitempty"`
	Timeline   []Sample     `json:"timeline,omitempty"`
	// Version is the server's version as the endpoint reports it.
	Version string `json:"server_version,omitempty"`
}

// result freezes s.
func (s *stats) result(e Endpoint) EndpointResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := EndpointResult{Endpoint: e, Failed: s.failed.Load(), Missed: s.missed.Load(), Seconds: s.active.Seconds(),
		Latency: summarize(s.hist), Timeline: append([]Sample(nil), s.timeline...)}
	ok := s.ok.Load()
	r.Requests = ok + r.Failed
	if r.Requests > 0 {
		r.FailedPercent = 100 * float64(r.Failed) / float64(r.Requests)
	}
	if r.Seconds > 0 {
		r.Throughput = float64(ok) / r.Seconds
	}
	for k, n := range s.errs {
		r.Errors = append(r.Errors, ErrorCount{Kind: k, Count: n})
	}
	sortErrors(r.Errors)
	return r
}
