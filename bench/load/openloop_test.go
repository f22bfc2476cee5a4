package load

import (
	"syscall"
	"testing"
	"time"
)

// TestOpenLoopCountsStalls: with --rate the clients keep to their schedule
// and measure each request from its intended start, so a server that
// stalls for 600 ms shows in the percentiles (every request due during
// the stall waited for it) and the request count still meets the rate. A
// closed loop would have sent two requests into the stall and measured
// one slow request each.
func TestOpenLoopCountsStalls(t *testing.T) {
	d := gateway(t)
	cfg := config(t, d, Point, Redis)
	cfg.Rate, cfg.Duration = 200, 2*time.Second
	stall := 600 * time.Millisecond
	go func() {
		time.Sleep(700 * time.Millisecond)
		pid := rdb.PID()
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Error(err)
			return
		}
		time.Sleep(stall)
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Error(err)
		}
	}()
	res := run(t, cfg)
	e := res.Cells[0].Endpoints[0]
	checkSane(t, "redis point", e)
	// 400 are due; on a loaded machine a few may still be due at the end
	// (counted as missed, never dropped).
	if n := e.Requests + e.Missed; n < 380 || n > 420 || e.Requests < 340 {
		t.Errorf("%d requests and %d missed at 200/s for 2s", e.Requests, e.Missed)
	}
	// ~120 of ~400 requests were due during the stall, waiting 0–600 ms:
	// p90 is about 300 ms.
	if e.Latency.Max < 500 || e.Latency.P90 < 150 {
		t.Errorf("the stall is hidden: %+v", e.Latency)
	}
}

// TestClosedLoopWithoutRate is the control: the same stall without a rate
// leaves p90 small, which is what the open loop exists to avoid.
func TestClosedLoopWithoutRate(t *testing.T) {
	d := gateway(t)
	cfg := config(t, d, Point, Redis)
	cfg.Duration = 2 * time.Second
	go func() {
		time.Sleep(700 * time.Millisecond)
		pid := rdb.PID()
		_ = syscall.Kill(pid, syscall.SIGSTOP)
		time.Sleep(600 * time.Millisecond)
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}()
	res := run(t, cfg)
	e := res.Cells[0].Endpoints[0]
	if e.Latency.Max < 500 || e.Latency.P90 > 100 {
		t.Errorf("closed loop: want one slow request per client and a small p90: %+v", e.Latency)
	}
}
