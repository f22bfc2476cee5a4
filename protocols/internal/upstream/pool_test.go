package upstream

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
)

type fakeConn struct {
	id     int
	closed atomic.Bool
	dead   bool
}

func (c *fakeConn) Close() error { c.closed.Store(true); return nil }

// TestPoolBoundsWaitsAndReuses: at most Size connections per key, a wait
// that ends in ErrExhausted (never a hang), a returned connection handed to
// the next client, a discarded or unhealthy one closed and replaced.
func TestPoolBoundsWaitsAndReuses(t *testing.T) {
	var dials atomic.Int32
	p := NewPool(PoolOptions{Size: 2, Wait: 100 * time.Millisecond}, func(ctx context.Context, k Key) (*fakeConn, error) {
		return &fakeConn{id: int(dials.Add(1))}, nil
	}, func(c *fakeConn) bool { return !c.dead })
	defer p.Close()
	k := Key{Role: Read, Database: "main"}
	ctx := context.Background()
	a, _ := p.Get(ctx, k)
	b, _ := p.Get(ctx, k)
	start := time.Now()
	if _, err := p.Get(ctx, k); !errors.Is(err, ErrExhausted) || time.Since(start) < 90*time.Millisecond {
		t.Fatalf("third Get: %v after %v", err, time.Since(start))
	}
	// Another key has its own places.
	if c, err := p.Get(ctx, Key{Role: Write, Database: "main"}); err != nil || c.id != 3 {
		t.Fatalf("other key: %v %v", c, err)
	}
	got := make(chan *fakeConn)
	go func() { c, _ := p.Get(ctx, k); got <- c }()
	time.Sleep(20 * time.Millisecond)
	p.Put(k, a)
	if c := <-got; c != a {
		t.Fatalf("the waiter got %v, want the returned connection", c)
	}
	p.Discard(k, b)
	if !b.closed.Load() {
		t.Fatal("Discard did not close")
	}
	c, err := p.Get(ctx, k)
	if err != nil || c.id != 4 {
		t.Fatalf("after Discard: %v %v", c, err)
	}
	c.dead = true
	p.Put(k, c)
	p.Put(k, a)
	d, err := p.Get(ctx, k) // c is unhealthy: closed, then a
	if err != nil || d != a || !c.closed.Load() {
		t.Fatalf("unhealthy idle connection: got %v %v, closed %v", d, err, c.closed.Load())
	}
	if st := p.Stats()[k]; st[0] != 1 || st[1] != 0 {
		t.Fatalf("stats %v", st)
	}
}

func TestRoleFor(t *testing.T) {
	for _, c := range []struct {
		scopes core.ScopeSet
		typ    core.TokenType
		want   string
	}{
		{core.AllScopes, core.TypeLive, "helios_owner"},
		{core.ScopeSet(0).With(core.ScopeSchemaWrite), core.TypeLive, "helios_owner"},
		{core.ScopeSet(0).With(core.ScopeDatabaseWrite).With(core.ScopeDatabaseRead), core.TypeService, "helios_write"},
		{core.ScopeSet(0).With(core.ScopeDatabaseRead), core.TypeLive, "helios_read"},
		{core.ScopeSet(0).With(core.ScopeDatabaseRead), core.TypeTest, "helios_test_read"},
		{core.AllScopes, core.TypeTest, "helios_test_owner"},
	} {
		r, err := RoleFor(&core.Claims{Scopes: c.scopes, Type: c.typ})
		if err != nil || r.Name() != c.want {
			t.Errorf("%v %v: %s %v", c.scopes, c.typ, r.Name(), err)
		}
	}
	if _, err := RoleFor(&core.Claims{Scopes: core.ScopeSet(0).With(core.ScopeMetricsRead)}); err == nil || err.Error() == "" {
		t.Error("a token without database scopes got a role")
	}
}

func TestPasswordsMadeOnceAndPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pg-roles.json")
	p, err := LoadPasswords(path)
	if err != nil || len(p) != len(Roles) || len(p.For(Test|Owner)) != 48 {
		t.Fatalf("%v %v", p, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	q, err := LoadPasswords(path)
	if err != nil || q.For(Read) != p.For(Read) {
		t.Fatal("passwords changed on the second load")
	}
	_ = os.Chmod(path, 0o644)
	if _, err := LoadPasswords(path); err == nil {
		t.Fatal("a world-readable passwords file was accepted")
	}
}

// TestPoolBacksOffAnUnreachableServer: after a dial that could not reach
// the server, Get answers the same error without dialling for a while
// (100ms, doubling), then tries again; a refused login does not back off.
func TestPoolBacksOffAnUnreachableServer(t *testing.T) {
	var dials atomic.Int32
	down := errors.New("connection refused")
	refused := errors.New("password authentication failed")
	var next atomic.Value
	next.Store(down)
	p := NewPool(PoolOptions{Size: 4, Wait: time.Second, Unreachable: func(err error) bool { return err == down }},
		func(ctx context.Context, k Key) (*fakeConn, error) {
			dials.Add(1)
			if err := next.Load().(error); err != nil && err != errNone {
				return nil, err
			}
			return &fakeConn{}, nil
		}, nil)
	defer p.Close()
	k := Key{Database: "main"}
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if _, err := p.Get(ctx, k); err != down {
			t.Fatalf("get %d: %v", i, err)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d dials within the backoff, want 1", n)
	}
	time.Sleep(150 * time.Millisecond)
	next.Store(errNone)
	if _, err := p.Get(ctx, k); err != nil || dials.Load() != 2 {
		t.Fatalf("after the backoff: %v, %d dials", err, dials.Load())
	}
	next.Store(refused)
	for i := 0; i < 3; i++ {
		if _, err := p.Get(ctx, k); err != refused {
			t.Fatalf("refused login %d: %v", i, err)
		}
	}
	if n := dials.Load(); n != 5 {
		t.Fatalf("a refused login backed off: %d dials, want 5", n)
	}
}

// errNone stands for "the dial succeeds" in an atomic.Value (which holds no nil).
var errNone = errors.New("none")

// TestPoolReclaim: a Get that must wait because every connection of its
// key is open asks PoolOptions.Reclaim for one kept outside the pool (and
// again while it waits), reports itself in Waiting, and takes what is Put;
// with a free place it dials without asking.
func TestPoolReclaim(t *testing.T) {
	kept := &fakeConn{id: 100} // an idle connection kept elsewhere (an event loop)
	var p *Pool[*fakeConn]
	var asks atomic.Int32
	var dials atomic.Int32
	p = NewPool(PoolOptions{Size: 1, Wait: 2 * time.Second, Reclaim: func(k Key) {
		if asks.Add(1) == 2 { // the second ask finds it (the first came too early)
			go p.Put(k, kept)
		}
	}}, func(ctx context.Context, k Key) (*fakeConn, error) {
		return &fakeConn{id: int(dials.Add(1))}, nil
	}, nil)
	defer p.Close()
	k := Key{Role: Read, Database: "main"}
	ctx := context.Background()
	if _, err := p.Get(ctx, k); err != nil || asks.Load() != 0 {
		t.Fatalf("first Get: %v, %d reclaims", err, asks.Load())
	}
	if p.Waiting(k) {
		t.Fatal("Waiting with nobody waiting")
	}
	waiting := make(chan bool, 1)
	go func() {
		time.Sleep(20 * time.Millisecond)
		waiting <- p.Waiting(k)
	}()
	start := time.Now()
	c, err := p.Get(ctx, k)
	if err != nil || c != kept || time.Since(start) > time.Second {
		t.Fatalf("Get with every place taken: %v %v after %v", c, err, time.Since(start))
	}
	if !<-waiting {
		t.Fatal("Waiting was false while a Get waited")
	}
	if p.Waiting(k) || dials.Load() != 1 {
		t.Fatalf("after the wait: waiting %v, %d dials", p.Waiting(k), dials.Load())
	}
}
