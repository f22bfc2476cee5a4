package bench

import (
	"bufio"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestIdleMemory holds HELIOS_BENCH_IDLE (default 10000, bounded by the
// descriptor limit) authenticated plaintext connections per target on a
// fresh heliosd and reports the daemon's resident memory per connection.
func TestIdleMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("HELIOS_BENCH_IDLE"))
	if n <= 0 {
		if testing.Short() || os.Getenv("HELIOS_BENCH_IDLE") == "" {
			t.Skip("set HELIOS_BENCH_IDLE=10000 to measure memory per idle connection")
		}
	}
	if limit := fdLimit() - 200; n > limit {
		t.Logf("descriptor limit %d: holding %d connections", fdLimit(), limit)
		n = limit
	}
	for _, tg := range targets {
		if tg.Open == nil || tg.Listener == "" {
			continue
		}
		t.Run(tg.Name, func(t *testing.T) {
			d := startDaemon(t)
			addr := d.Addr(tg.Listener)
			if !waitListen(addr, 2*time.Second) {
				t.Skipf("heliosd does not serve --%s", tg.Listener)
			}
			warm := make([]Client, 0, 64)
			for i := 0; i < 64; i++ { // let the loops and their buffers exist
				if c, err := tg.Open(addr, d.Token); err == nil {
					warm = append(warm, c)
				}
			}
			time.Sleep(500 * time.Millisecond)
			before, heapBefore := rss(t, d.PID()), heapInuse(d)
			held := make([]Client, 0, n)
			defer func() {
				for _, c := range append(held, warm...) {
					c.Close()
				}
			}()
			var mu sync.Mutex
			var wg sync.WaitGroup
			var firstErr atomic.Pointer[error]
			per := (n + 15) / 16
			for w := 0; w < 16; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := w * per; i < min(n, (w+1)*per); i++ {
						c, err := tg.Open(addr, d.Token)
						if err != nil {
							firstErr.CompareAndSwap(nil, &err)
							return
						}
						mu.Lock()
						held = append(held, c)
						mu.Unlock()
					}
				}(w)
			}
			wg.Wait()
			if e := firstErr.Load(); e != nil {
				t.Fatalf("after %d connections: %v", len(held), *e)
			}
			time.Sleep(time.Second)
			after := rss(t, d.PID())
			per1 := float64(after-before) / float64(len(held))
			t.Logf("%s: %d idle authenticated connections: daemon RSS %d → %d KiB, %.0f bytes per connection",
				tg.Name, len(held), before>>10, after>>10, per1)
			if heapAfter := heapInuse(d); heapBefore > 0 && heapAfter > 0 {
				t.Logf("%s: Go heap in use %d → %d KiB, %.0f bytes per connection", tg.Name,
					heapBefore>>10, heapAfter>>10, float64(heapAfter-heapBefore)/float64(len(held)))
			}
		})
	}
}

// heapInuse reads go_memstats_heap_inuse_bytes from the daemon's
// /metrics (0 when it is not served).
func heapInuse(d *Daemon) int64 {
	resp, err := http.Get("http://" + d.Addr("http-listen") + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(resp.Body)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "go_memstats_heap_inuse_bytes "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int64(f)
		}
	}
	return 0
}

// rss returns a process's resident set size in bytes.
func rss(t *testing.T, pid int) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Skip("no /proc")
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
