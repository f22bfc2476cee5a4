package netio

import (
	"sync"
	"testing"
)

// TestLimiterSetLimitsWhileAcquiring changes the limits while goroutines
// take and release slots (the race detector fails it on plain fields), and
// checks a lowered cap holds for new connections at once and a raised one
// admits more.
func TestLimiterSetLimitsWhileAcquiring(t *testing.T) {
	l := newConnLimiter(100, 50)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := addr(g)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if l.acquire(a) {
					l.releaseTotal()
					l.releaseIP(a)
				}
			}
		}()
	}
	for i := range 200 {
		l.setLimits(50+i%50, 10+i%20)
	}
	close(stop)
	wg.Wait()
	limiterEmpty(t, l)

	l.setLimits(100, 3)
	if n := fill(l, addr(1), 10); n != 3 {
		t.Fatalf("per-address limit 3: %d acquired", n)
	}
	l.setLimits(100, 5)
	if n := fill(l, addr(1), 10); n != 2 {
		t.Fatalf("raised to 5: %d more acquired, want 2", n)
	}
	l.setLimits(100, 1) // lowered below what is held: nothing new
	if l.acquire(addr(1)) {
		t.Fatal("acquired past a lowered per-address limit")
	}
}
