package bench

import (
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testdaemon"
)

// Target is one protocol front end (or the raw-TCP ceiling) under load.
type Target struct {
	// Name labels the sub-benchmark ("postgres-wire").
	Name string
	// Listener is the heliosd flag naming its listen address ("pg-listen");
	// empty means the target brings its own server (Server).
	Listener string
	// Server, when set, starts the target's own server and returns its
	// address (the raw-TCP ceiling).
	Server func(tb testing.TB) string
	// Handshake connects to addr, authenticates with token, runs one
	// command and closes.
	Handshake func(addr, token string) error
	// Open connects and authenticates, for the persistent and idle
	// benchmarks; nil when the target has no persistent form.
	Open func(addr, token string) (Client, error)
}

// Client is an authenticated persistent connection.
type Client interface {
	// Do runs one command and waits for its answer.
	Do() error
	Close() error
}

var targets []Target

// register adds a target; each bench/<protocol>_test.go calls it from init.
func register(t Target) { targets = append(targets, t) }

func TestMain(m *testing.M) {
	if os.Getenv(rawServerEnv) != "" {
		runRawServer()
		return
	}
	raiseFDLimit()
	code := m.Run()
	stopAll()
	testdaemon.RemoveBuilds()
	os.Exit(code)
}

// raiseFDLimit lifts the soft descriptor limit to the hard one (the idle
// benchmark holds thousands of connections).
func raiseFDLimit() {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) == nil && r.Cur < r.Max {
		r.Cur = r.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	}
}

func fdLimit() int {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) != nil {
		return 1024
	}
	return int(r.Cur)
}

var (
	stopMu  sync.Mutex
	stopper []func()
)

func atStop(f func()) {
	stopMu.Lock()
	stopper = append(stopper, f)
	stopMu.Unlock()
}

func stopAll() {
	stopMu.Lock()
	defer stopMu.Unlock()
	for i := len(stopper) - 1; i >= 0; i-- {
		stopper[i]()
	}
	stopper = nil
}

// Daemon is a heliosd the benchmarks share (internal/testdaemon), with a
// live token of every scope.
type Daemon struct {
	*testdaemon.Daemon
	Token string
}

// benchFlags lift the daemon's limits for load: thousands of connections
// from one address, slow handshakes under load, quiet logs.
var benchFlags = []string{"--max-conns", "30000", "--max-conns-per-ip", "30000", "--handshake-timeout", "30s", "--log-level", "error"}

// startDaemon builds heliosd and starts it on free loopback ports with
// limits high enough for the benchmarks, until the end of the run. extra
// adds flags.
func startDaemon(tb testing.TB, extra ...string) *Daemon {
	tb.Helper()
	d := testdaemon.Start(tb, testdaemon.Shared(), testdaemon.WithArgs(append(append([]string(nil), benchFlags...), extra...)...))
	atStop(func() { d.Stop(); os.RemoveAll(d.DataDir) })
	return &Daemon{Daemon: d, Token: d.Mint(tb, core.Claims{Scopes: core.AllScopes})}
}

var (
	shared   *Daemon
	sharedMu sync.Mutex
)

// sharedDaemon is one heliosd for every benchmark of the run.
func sharedDaemon(tb testing.TB) *Daemon {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil {
		shared = startDaemon(tb)
	}
	return shared
}

func waitListen(addr string, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return true
		}
	}
	return false
}

// addrOf returns where target t listens, starting its server if needed.
func addrOf(tb testing.TB, t Target) (addr, token string) {
	if t.Server != nil {
		return t.Server(tb), ""
	}
	d := sharedDaemon(tb)
	a := d.Addr(t.Listener)
	if !waitListen(a, 2*time.Second) {
		tb.Skipf("heliosd does not serve --%s", t.Listener)
	}
	return a, d.Token
}

// concurrencies are the client counts each rate is measured with.
var concurrencies = []int{8, 32}

// results keeps each sub-benchmark's rate, to print ratios to the ceiling.
var results sync.Map // "Handshake/raw-tcp/c=8" → float64 per second

// runWorkers runs n operations on c goroutines and returns operations per
// second; the first error fails the benchmark.
func runWorkers(b *testing.B, c int, op func(worker int) error) float64 {
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) && failed.Load() == nil {
				if err := op(w); err != nil {
					failed.Store(&err)
				}
			}
		}(w)
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	if e := failed.Load(); e != nil {
		b.Fatal(*e)
	}
	return float64(b.N) / el.Seconds()
}

// BenchmarkHandshake measures connect + authenticate + one command + close
// per second for every target, the raw-TCP ceiling first, and logs each
// target's share of the ceiling.
func BenchmarkHandshake(b *testing.B) {
	for _, t := range orderedTargets() {
		for _, c := range concurrencies {
			name := fmt.Sprintf("%s/c=%d", t.Name, c)
			b.Run(name, func(b *testing.B) {
				addr, tok := addrOf(b, t)
				rate := runWorkers(b, c, func(int) error { return t.Handshake(addr, tok) })
				b.ReportMetric(rate, "conn/s")
				results.Store("Handshake/"+name, rate)
			})
		}
	}
	logRatios(b, "Handshake", "raw-tcp")
}

// BenchmarkPersistent measures commands per second on already
// authenticated connections, one per client.
func BenchmarkPersistent(b *testing.B) {
	for _, t := range orderedTargets() {
		if t.Open == nil {
			continue
		}
		for _, c := range concurrencies {
			name := fmt.Sprintf("%s/c=%d", t.Name, c)
			b.Run(name, func(b *testing.B) {
				addr, tok := addrOf(b, t)
				clients := make([]Client, c)
				for i := range clients {
					cl, err := t.Open(addr, tok)
					if err != nil {
						b.Fatal(err)
					}
					clients[i] = cl
				}
				rate := runWorkers(b, c, func(w int) error { return clients[w].Do() })
				for _, cl := range clients {
					cl.Close()
				}
				b.ReportMetric(rate, "cmd/s")
				results.Store("Persistent/"+name, rate)
			})
		}
	}
}

// orderedTargets returns the raw-TCP ceiling first, then the rest by name.
func orderedTargets() []Target {
	ts := append([]Target{rawTarget}, targets...)
	sort.SliceStable(ts[1:], func(i, j int) bool { return ts[1+i].Name < ts[1+j].Name })
	return ts
}

func logRatios(b *testing.B, kind, base string) {
	var lines []string
	results.Range(func(k, v any) bool {
		key := k.(string)
		if !strings.HasPrefix(key, kind+"/") || strings.Contains(key, "/"+base+"/") {
			return true
		}
		parts := strings.Split(key, "/")
		if ceil, ok := results.Load(kind + "/" + base + "/" + parts[len(parts)-1]); ok {
			lines = append(lines, fmt.Sprintf("%s: %.0f/s = %.0f%% of %s %.0f/s", key, v.(float64), 100*v.(float64)/ceil.(float64), base, ceil.(float64)))
		}
		return true
	})
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l) // b.Log of a parent benchmark is not printed
	}
}

// closeNow closes a TCP connection with SO_LINGER 0 (no TIME_WAIT), so that
// tens of thousands of short connections do not exhaust ephemeral ports.
func closeNow(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// readFull reads exactly len(b) bytes.
func readFull(c net.Conn, b []byte) error {
	_, err := io.ReadFull(c, b)
	return err
}

// rateFor runs op on c goroutines for d and returns operations per second.
func rateFor(c int, d time.Duration, op func() error) (float64, error) {
	var done atomic.Int64
	var failed atomic.Pointer[error]
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) && failed.Load() == nil {
				if err := op(); err != nil {
					failed.Store(&err)
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	if e := failed.Load(); e != nil {
		return 0, *e
	}
	return float64(done.Load()) / time.Since(start).Seconds(), nil
}

// BenchmarkHandshakeRatio measures the handshake rate of every target and
// of the raw-TCP ceiling in interleaved rounds (ceiling, target, ceiling,
// …), so that a machine shared with other work shifts both alike, and
// reports each target's median rate and its median share of the ceiling.
// It runs once whatever b.N is (use -benchtime 1x).
func BenchmarkHandshakeRatio(b *testing.B) {
	const rounds, slice = 9, 300 * time.Millisecond
	for _, t := range orderedTargets()[1:] {
		for _, c := range concurrencies {
			b.Run(fmt.Sprintf("%s/c=%d", t.Name, c), func(b *testing.B) {
				rawAddr, _ := addrOf(b, rawTarget)
				addr, tok := addrOf(b, t)
				var rates, ratios []float64
				for r := 0; r < rounds; r++ {
					ceil, err := rateFor(c, slice, func() error { return rawTarget.Handshake(rawAddr, "") })
					if err != nil {
						b.Fatal(err)
					}
					rate, err := rateFor(c, slice, func() error { return t.Handshake(addr, tok) })
					if err != nil {
						b.Fatal(err)
					}
					rates = append(rates, rate)
					ratios = append(ratios, rate/ceil)
				}
				sort.Float64s(rates)
				sort.Float64s(ratios)
				b.ReportMetric(rates[rounds/2], "conn/s")
				b.ReportMetric(100*ratios[rounds/2], "%ceiling")
			})
		}
	}
}
