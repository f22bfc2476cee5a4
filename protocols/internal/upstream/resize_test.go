package upstream

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPoolResize: growing lets a waiting Get dial at once; shrinking below
// what is open closes nothing but replaces nothing until fewer are open,
// for keys already seen and keys seen later; the wait changes too; a size
// above the capacity is refused; Resize under concurrent Get/Discard keeps
// the count within the size (race detector).
func TestPoolResize(t *testing.T) {
	var dials atomic.Int32
	p := NewPool(PoolOptions{Size: 1, Wait: 5 * time.Second}, func(ctx context.Context, k Key) (*fakeConn, error) {
		return &fakeConn{id: int(dials.Add(1))}, nil
	}, nil)
	defer p.Close()
	k := Key{Role: Read, Database: "main"}
	ctx := context.Background()
	a, _ := p.Get(ctx, k)
	got := make(chan error, 1)
	go func() { _, err := p.Get(ctx, k); got <- err }()
	time.Sleep(50 * time.Millisecond)
	if err := p.Resize(3, 7*time.Second); err != nil {
		t.Fatal(err)
	}
	if p.Wait() != 7*time.Second {
		t.Fatalf("Wait is %v after a resize to 7s", p.Wait())
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Second):
		t.Fatal("a waiting Get did not get a connection after the pool grew")
	}
	c, err := p.Get(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if st := p.Stats()[k]; st[0] != 3 {
		t.Fatalf("open %d, want 3", st[0])
	}
	// Shrink to 1 with 3 open, a short wait: nothing closed, no new one.
	if err := p.Resize(1, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if a.closed.Load() || c.closed.Load() {
		t.Fatal("shrinking closed an open connection")
	}
	start := time.Now()
	if _, err := p.Get(ctx, k); !errors.Is(err, ErrExhausted) || time.Since(start) > time.Second {
		t.Fatalf("Get past the lowered size: %v after %s (want ErrExhausted after the new 100ms wait)", err, time.Since(start))
	}
	p.Discard(k, a)
	p.Discard(k, c)
	if _, err := p.Get(ctx, k); !errors.Is(err, ErrExhausted) {
		t.Fatalf("one still open at size 1: Get gave %v", err)
	}
	if st := p.Stats()[k]; st[0] != 1 {
		t.Fatalf("open %d after two discards, want 1", st[0])
	}
	// A key seen after the resize has the new size.
	k2 := Key{Role: Write, Database: "main"}
	if _, err := p.Get(ctx, k2); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Get(ctx, k2); !errors.Is(err, ErrExhausted) {
		t.Fatalf("second connection of a new key at size 1: %v", err)
	}
	if err := p.Resize(minCapacity+1, time.Second); err == nil {
		t.Fatal("a size above the capacity was accepted")
	}

	// Concurrent use while resizing.
	if err := p.Resize(8, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	k3 := Key{Role: Owner, Database: "main"}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var over atomic.Int32
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := p.Get(ctx, k3)
				if err != nil {
					continue
				}
				if p.Stats()[k3][0] > 8 {
					over.Add(1)
				}
				p.Discard(k3, c)
			}
		}()
	}
	for i := range 200 {
		_ = p.Resize(2+i%6, 20*time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if over.Load() > 0 {
		t.Fatalf("%d times more than the largest size open", over.Load())
	}
	if err := p.Resize(4, time.Second); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats()[k3]; st[0] != 0 {
		t.Fatalf("open %d after every connection was discarded", st[0])
	}
	for range 4 {
		if _, err := p.Get(ctx, k3); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Get(context.Background(), k3); !errors.Is(err, ErrExhausted) {
		t.Fatalf("fifth at size 4: %v", err)
	}
}
