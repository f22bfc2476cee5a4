package netio

import (
	"bufio"
	"context"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
)

// TestOffloadCarriesPendingBytes: the lines sent behind OFFLOAD in the same
// write reach the same session on its goroutine, before and after AUTH.
func TestOffloadCarriesPendingBytes(t *testing.T) {
	f := startLine(t, Config{}, lineProto{})
	c, r := dialLine(t, f.addr)
	c.Write([]byte("WHERE\nOFFLOAD\nWHERE\nADDR\nAUTH " + f.token + "\nping\n"))
	expect(t, r, "loop")
	expect(t, r, "OK offload")
	expect(t, r, "goroutine")
	expect(t, r, c.LocalAddr().String()+" true") // the ConnInfo came along
	expect(t, r, "OK")
	expect(t, r, "ping")
	// Offload on the goroutine is a Continue.
	c.Write([]byte("OFFLOAD\nWHERE\n"))
	expect(t, r, "OK offload")
	expect(t, r, "goroutine")
	waitOpen(t, f.gw, 1) // the slot is held by the goroutine
	c.Write([]byte("QUIT\n"))
	expect(t, r, "BYE")
	waitOpen(t, f.gw, 0)

	// An authenticated session offloaded mid-stream.
	c2, r2 := dialLine(t, f.addr)
	c2.Write([]byte("AUTH " + f.token + "\nOFFLOAD\nx\n"))
	expect(t, r2, "OK")
	expect(t, r2, "OK offload")
	expect(t, r2, "x")
	c2.Write([]byte("WHERE\n"))
	expect(t, r2, "goroutine")
}

// TestOffloadWithoutTLS: Offload needs no TLS configuration.
func TestOffloadWithoutTLS(t *testing.T) {
	ring := core.GenerateKeyring(time.Now())
	gw, err := Serve(Config{Keyring: ring, Revocations: core.NewMemoryRevocations(), Loops: 1}, []Listener{{Addr: "127.0.0.1:0", Protocol: lineProto{}}})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Stop(context.Background())
	c, r := dialLine(t, gw.Addr("line").String())
	c.Write([]byte("OFFLOAD\nWHERE\n"))
	expect(t, r, "OK offload")
	expect(t, r, "goroutine")
	c.Write([]byte("STARTTLS\n")) // refused: no TLS; output written, closed
	expect(t, r, "OK tls")
	if _, err := r.ReadByte(); err == nil {
		t.Fatal("connection open after a refused upgrade")
	}
	waitOpen(t, gw, 0)
}

// offloaded opens a session authenticated with tok and moved off its loop.
func offloaded(t *testing.T, addr, tok string) *lineClient {
	t.Helper()
	c, r := dialLine(t, addr)
	c.Write([]byte("OFFLOAD\nAUTH " + tok + "\nWHERE\n"))
	expect(t, r, "OK offload")
	expect(t, r, "OK")
	expect(t, r, "goroutine")
	return &lineClient{c, r}
}

// TestOffloadRevoked: an offloaded session is found by revocations (the
// goroutine index), authenticated before or after the hand-off.
func TestOffloadRevoked(t *testing.T) {
	f := startLine(t, revokeCfg(), lineProto{})
	other, _ := f.mint(t, nil)
	a := offloaded(t, f.addr, f.token)
	// Authenticated on the loop, then offloaded: moves between indexes.
	a2, ra2 := dialLine(t, f.addr)
	a2.Write([]byte("AUTH " + f.token + "\nOFFLOAD\nWHERE\n"))
	expect(t, ra2, "OK")
	expect(t, ra2, "OK offload")
	expect(t, ra2, "goroutine")
	b := offloaded(t, f.addr, other)
	f.revs.RevokeToken(f.id, f.exp)
	f.gw.Revoke(Revocation{Kind: RevokeToken, Token: f.id})
	a.ended(t, core.ErrRevoked, revokeBound)
	(&lineClient{a2, ra2}).ended(t, core.ErrRevoked, revokeBound)
	b.alive(t)
	waitOpen(t, f.gw, 1)
}

// TestOffloadDeadlines: an offloaded session keeps its idle deadline, and
// its handshake deadline counted from accept.
func TestOffloadDeadlines(t *testing.T) {
	f := startLine(t, Config{IdleTimeout: 300 * time.Millisecond, HandshakeTimeout: 400 * time.Millisecond}, lineProto{})
	a := offloaded(t, f.addr, f.token)
	start := time.Now()
	expect(t, a.r, "ERR limit idle_timeout")
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Fatalf("idle timeout after %v", d)
	}
	c, r := dialLine(t, f.addr)
	start = time.Now()
	c.Write([]byte("OFFLOAD\npar")) // then stalls before authenticating
	expect(t, r, "OK offload")
	expect(t, r, "ERR limit handshake_timeout")
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("handshake timeout after %v", d)
	}
	waitOpen(t, f.gw, 0)
}

// TestOffloadKeepsLoopResponsive: with one event loop, a session blocked
// on its goroutine does not delay another connection's answer, while the
// same block on the loop does (the control).
func TestOffloadKeepsLoopResponsive(t *testing.T) {
	f := startLine(t, Config{Loops: 1}, lineProto{})
	other := authPlain(t, f.addr, f.token)
	ping := func() time.Duration {
		start := time.Now()
		other.alive(t)
		return time.Since(start)
	}
	block := func(off bool) *lineClient {
		c, r := dialLine(t, f.addr)
		if off {
			c.Write([]byte("OFFLOAD\n"))
			expect(t, r, "OK offload")
		}
		c.Write([]byte("SLEEP 400\n"))
		time.Sleep(50 * time.Millisecond) // the session is asleep now
		return &lineClient{c, r}
	}

	s := block(true)
	if d := ping(); d > 100*time.Millisecond {
		t.Fatalf("ping took %v while an offloaded session blocked", d)
	}
	expect(t, s.r, "SLEPT")

	s = block(false)
	if d := ping(); d < 250*time.Millisecond {
		t.Fatalf("control: ping took %v while a session blocked its loop", d)
	}
	expect(t, s.r, "SLEPT")
}

// TestOffloadNoLeaks: offloaded connections, ended every way, give back
// their descriptors, goroutines and slots.
func TestOffloadNoLeaks(t *testing.T) {
	f := startLine(t, Config{HandshakeTimeout: 300 * time.Millisecond}, lineProto{})
	run := func() {
		for i := range 200 {
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(c)
			switch i % 4 {
			case 0:
				c.Write([]byte("OFFLOAD\nAUTH " + f.token + "\nQUIT\n"))
				r.ReadString('\n')
				r.ReadString('\n')
				r.ReadString('\n')
			case 1:
				c.Write([]byte("OFFLOAD\n")) // then hang up
				r.ReadString('\n')
			case 2:
				c.Write([]byte("OFFLOAD\npar")) // then stall: handshake timeout
			case 3:
				c.Write([]byte("OFFLOAD\n")) // hang up before the answer
			}
			c.Close()
		}
		waitOpen(t, f.gw, 0)
	}
	run()
	runtime.GC()
	fd0, g0 := fdCount(t), runtime.NumGoroutine()
	run()
	time.Sleep(100 * time.Millisecond)
	fd1, g1 := fdCount(t), runtime.NumGoroutine()
	if fd1 > fd0+2 || g1 > g0+2 {
		t.Fatalf("leak: fds %d → %d, goroutines %d → %d", fd0, fd1, g0, g1)
	}

	// Stop ends offloaded sessions still open.
	open := make([]*lineClient, 0, 5)
	for range 5 {
		open = append(open, offloaded(t, f.addr, f.token))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f.gw.Stop(ctx)
	for _, lc := range open {
		_ = lc.c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := lc.r.ReadByte(); err == nil {
			t.Fatal("offloaded session open after Stop")
		}
	}
	if n := f.gw.Open(); n != 0 {
		t.Fatalf("open %d after Stop", n)
	}
}
