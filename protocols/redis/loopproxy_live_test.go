package redis

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/tlsfile"
	"github.com/heliosdb/auth/internal/testupstream"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/internal/upstream"
	"github.com/heliosdb/auth/protocols/internal/upstream/upstreamtest"
)

// liveConn is a raw RESP client of the gateway.
type liveConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialLive(t *testing.T, addr string) *liveConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &liveConn{t: t, c: c, r: bufio.NewReaderSize(c, 64<<10)}
}

// send writes the commands in one write.
func (c *liveConn) send(cmds ...[]string) {
	c.t.Helper()
	var b []byte
	for _, cmd := range cmds {
		b = appendCommand(b, cmd...)
	}
	if _, err := c.c.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// read reads one reply, shown as fmt.Sprint shows readReply's value.
func (c *liveConn) read() string {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	v, err := readReply(c.r)
	if err != nil {
		c.t.Fatalf("reading a reply: %v", err)
	}
	return fmt.Sprint(v)
}

// expect reads one reply per entry of want.
func (c *liveConn) expect(want ...string) {
	c.t.Helper()
	for i, w := range want {
		if got := c.read(); got != w {
			c.t.Fatalf("reply %d: %q, want %q", i, got, w)
		}
	}
}

func (c *liveConn) do(args ...string) string {
	c.t.Helper()
	c.send(args)
	return c.read()
}

// eof reports whether the gateway closes the connection (nothing more to
// read) within 5s.
func (c *liveConn) eof() bool {
	_ = c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.r.ReadByte()
	return err != nil && !strings.Contains(err.Error(), "timeout")
}

func waitFor(t *testing.T, msg string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
	}
}

// TestLoopProxyLive runs proxy mode on the event loop (loopproxy.go) in
// this process, under the race detector, against a real Redis, on one
// event loop so that a server connection parked by one client is the one
// the next client takes: parking and taking, a pipeline across SELECT
// (the loop stops reading the client until SELECT's reply), RESET of a
// dirty connection before it is parked and a reset that fails closing it,
// QUIT behind a pipeline, the gateway's replies written with the server's
// next (not behind a blocking command), a TLS client on the goroutine
// proxy, the server killing the connection, revocation
// while blocked, a slow reader of large replies, and concurrent clients.
func TestLoopProxyLive(t *testing.T) {
	srv, err := testupstream.StartRedis()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	ctx := context.Background()
	up, err := NewUpstream(UpstreamOptions{AdminURL: srv.AdminURL, PasswordsFile: filepath.Join(t.TempDir(), "upstream-redis.json"),
		PoolSize: 4, PoolWait: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	if err := up.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	tlsCfg, _, _, err := tlsfile.LoadOrGenerate(t.TempDir(), "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	g := upstreamtest.Serve(t, netio.Config{Loops: 1, TLS: tlsCfg}, "redis", New(Options{Upstream: up}))
	opts, err := redis.ParseURL(srv.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClient(opts)
	t.Cleanup(func() { admin.Close() })
	var noScopes core.ScopeSet
	tok, _ := g.Mint(t, noScopes.With(core.ScopeDatabaseRead).With(core.ScopeDatabaseWrite))
	pk := parkKey{up, upstream.Key{Role: upstream.Write}}
	parked := func() int { return netio.Parked(pk) }
	// settle waits until the clients of the subtests before have gone and
	// their server connections are parked or closed.
	settle := func(t *testing.T) {
		waitFor(t, "clients of an earlier subtest are still open", func() bool { return g.GW.Open() == 0 })
		time.Sleep(50 * time.Millisecond) // their Closed, right after
	}
	serverHas := func(id string) bool {
		list, err := admin.ClientList(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(list, "id="+id+" ")
	}

	t.Run("parked and taken by the next client", func(t *testing.T) {
		settle(t)
		a := dialLive(t, g.Addr)
		a.send([]string{"AUTH", tok}, []string{"CLIENT", "ID"})
		a.expect("OK")
		id := a.read()
		before := parked()
		idle := up.Health().Idle
		a.c.Close()
		waitFor(t, "the server connection was not parked on the loop", func() bool { return parked() == before+1 })
		if got := up.Health().Idle; got != idle+1 {
			t.Fatalf("/healthz idle %d, want %d: the parked connection is idle", got, idle+1)
		}
		b := dialLive(t, g.Addr)
		b.send([]string{"AUTH", tok}, []string{"CLIENT", "ID"})
		b.expect("OK", id)
		if n := parked(); n != before {
			t.Fatalf("%d parked while the next client holds it, want %d", n, before)
		}
		b.c.Close()
		waitFor(t, "not parked again", func() bool { return parked() == before+1 })
	})

	t.Run("pipeline across SELECT", func(t *testing.T) {
		settle(t)
		c := dialLive(t, g.Addr)
		c.send([]string{"AUTH", tok}, []string{"SET", "live:k", "v0"}, []string{"SELECT", "1"}, []string{"GET", "live:k"},
			[]string{"SET", "live:k", "v1"}, []string{"SELECT", "0"}, []string{"GET", "live:k"}, []string{"SELECT", "1"}, []string{"GET", "live:k"})
		c.expect("OK", "OK", "OK", "<nil>", "OK", "OK", "v0", "OK", "v1")
		before := parked()
		c.c.Close()
		waitFor(t, "the connection was not reset and parked", func() bool { return parked() == before+1 })
		n := dialLive(t, g.Addr)
		n.send([]string{"AUTH", tok}, []string{"GET", "live:k"})
		n.expect("OK", "v0") // database 0 again
	})

	t.Run("dirty connection reset before it is parked", func(t *testing.T) {
		settle(t)
		c := dialLive(t, g.Addr)
		c.send([]string{"HELLO", "3", "AUTH", "default", tok, "SETNAME", "dirty"})
		if got := c.read(); !strings.Contains(got, "proto 3") {
			t.Fatalf("HELLO 3: %s", got)
		}
		id := c.do("CLIENT", "ID")
		c.send([]string{"SELECT", "2"}, []string{"SUBSCRIBE", "live:ch"})
		c.expect("OK", "[subscribe live:ch 1]")
		before := parked()
		c.c.Close()
		waitFor(t, "the connection was not reset and parked", func() bool { return parked() == before+1 })
		n := dialLive(t, g.Addr)
		n.send([]string{"AUTH", tok}, []string{"CLIENT", "ID"}, []string{"CLIENT", "INFO"})
		n.expect("OK", id)
		info := n.read()
		for _, want := range []string{" db=0 ", " sub=0 ", " name= ", " resp=2"} {
			if !strings.Contains(info, want) {
				t.Errorf("the reused connection: %s lacks %q", info, want)
			}
		}
		if err := admin.Publish(ctx, "live:ch", "leak").Err(); err != nil {
			t.Fatal(err)
		}
		if got := n.do("PING"); got != "PONG" {
			t.Fatalf("PING on the reused connection: %s", got)
		}
	})

	t.Run("a reset that fails closes the connection", func(t *testing.T) {
		settle(t)
		c := dialLive(t, g.Addr)
		c.send([]string{"AUTH", tok}, []string{"SELECT", "1"}, []string{"CLIENT", "ID"})
		c.expect("OK", "OK")
		id := c.read()
		before := parked()
		// AUTH after RESET is then refused (WRONGPASS).
		user := up.login(upstream.Write).user
		if err := admin.Do(ctx, "ACL", "SETUSER", user, "resetpass", ">not-the-gateways").Err(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := up.Provision(ctx); err != nil {
				t.Fatal(err)
			}
		}()
		c.c.Close()
		waitFor(t, "the connection whose reset failed is still open on the server", func() bool { return !serverHas(id) })
		if n := parked(); n != before {
			t.Fatalf("%d parked, want %d: the connection whose reset failed was parked", n, before)
		}
	})

	t.Run("QUIT behind a pipeline", func(t *testing.T) {
		c := dialLive(t, g.Addr)
		c.send([]string{"AUTH", tok}, []string{"CLIENT", "ID"}, []string{"SET", "live:q", "1"}, []string{"GET", "live:q"},
			[]string{"QUIT"}, []string{"PING"})
		c.expect("OK")
		id := c.read()
		c.expect("OK", "1", "OK")
		if !c.eof() {
			t.Fatal("the connection stayed open after QUIT")
		}
		// It was parked when the gateway closed the client: the next
		// client takes it.
		n := dialLive(t, g.Addr)
		n.send([]string{"AUTH", tok}, []string{"CLIENT", "ID"})
		n.expect("OK", id)
	})

	t.Run("the gateway's reply goes out with the server's next", func(t *testing.T) {
		settle(t)
		// With a connection parked on the loop (taken at once), and with
		// none (a read token's first: got from the pool on a goroutine).
		waitFor(t, "no connection parked", func() bool { return parked() > 0 })
		readTok, _ := g.Mint(t, noScopes.With(core.ScopeDatabaseRead))
		for _, tk := range []string{tok, readTok} {
			c := dialLive(t, g.Addr)
			c.send([]string{"AUTH", tk}, []string{"PING"})
			c.expect("OK")
			// +PONG came in the same write as +OK (one read took both).
			if n := c.r.Buffered(); n != len("+PONG\r\n") {
				t.Fatalf("%d bytes buffered behind +OK, want +PONG's 7", n)
			}
			c.expect("PONG")
		}
	})

	t.Run("the gateway's reply is not held behind a blocking command", func(t *testing.T) {
		c := dialLive(t, g.Addr)
		start := time.Now()
		c.send([]string{"AUTH", tok}, []string{"BLPOP", "live:none", "2"})
		c.expect("OK")
		if d := time.Since(start); d > time.Second {
			t.Fatalf("AUTH's reply came after %v, behind BLPOP's", d)
		}
		c.expect("<nil>")
	})

	t.Run("the server kills the connection", func(t *testing.T) {
		c := dialLive(t, g.Addr)
		c.send([]string{"AUTH", tok}, []string{"CLIENT", "ID"})
		c.expect("OK")
		id := c.read()
		c.send([]string{"BLPOP", "live:none", "0"})
		time.Sleep(100 * time.Millisecond)
		if err := admin.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err != nil {
			t.Fatal(err)
		}
		if got := c.read(); !strings.Contains(got, "upstream Redis server closed the connection") {
			t.Fatalf("BLPOP when the server closed: %s", got)
		}
		if got := c.do("PING"); !strings.Contains(got, "upstream Redis server closed the connection") {
			t.Fatalf("the next command: %s", got)
		}
		if !c.eof() {
			t.Fatal("the session stayed open")
		}
	})

	t.Run("revocation while blocked", func(t *testing.T) {
		rtok, claims := g.Mint(t, core.AllScopes)
		c := dialLive(t, g.Addr)
		c.send([]string{"AUTH", rtok}, []string{"CLIENT", "ID"})
		c.expect("OK")
		id := c.read()
		c.send([]string{"BLPOP", "live:none", "0"})
		time.Sleep(100 * time.Millisecond)
		g.Revoke(claims)
		if got := c.read(); !strings.HasPrefix(got, "NOAUTH") || !strings.Contains(got, "revoked") {
			t.Fatalf("after the revocation: %s", got)
		}
		if !c.eof() {
			t.Fatal("the revoked session stayed open")
		}
		waitFor(t, "the revoked session's server connection is still open", func() bool { return !serverHas(id) })
	})

	t.Run("slow reader", func(t *testing.T) {
		const size, gets = 4 << 20, 40
		c := dialLive(t, g.Addr)
		c.send([]string{"AUTH", tok}, []string{"SET", "live:big", strings.Repeat("x", size)})
		c.expect("OK", "OK")
		var m0, m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		peak := m0.HeapInuse
		cmds := make([][]string, gets)
		for i := range cmds {
			cmds[i] = []string{"GET", "live:big"}
		}
		c.send(cmds...)
		want := gets * (size + len("$4194304\r\n\r\n"))
		buf := make([]byte, 64<<10)
		for n, i := 0, 0; n < want; i++ {
			_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			k, err := c.r.Read(buf)
			if err != nil {
				t.Fatalf("after %d bytes: %v", n, err)
			}
			n += k
			if i%64 == 0 {
				time.Sleep(20 * time.Millisecond)
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapInuse)
			}
		}
		if grew := int64(peak) - int64(m0.HeapInuse); grew > 48<<20 {
			t.Fatalf("the heap grew by %d MB while a client read %d MB slowly", grew>>20, want>>20)
		}
		if got := c.do("PING"); got != "PONG" {
			t.Fatalf("after the large replies: %s", got)
		}
	})

	t.Run("a TLS client keeps the goroutine proxy", func(t *testing.T) {
		settle(t)
		tc, err := tls.Dial("tcp", g.Addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		c := &liveConn{t: t, c: tc, r: bufio.NewReader(tc)}
		t.Cleanup(func() { tc.Close() })
		c.send([]string{"AUTH", tok}, []string{"SET", "live:tls", "0"}, []string{"SELECT", "1"}, []string{"GET", "live:tls"},
			[]string{"SELECT", "0"}, []string{"GET", "live:tls"})
		c.expect("OK", "OK", "OK", "<nil>", "OK", "0")
		before := parked()
		idle := func() int { return up.pool.Stats()[pk.k][1] }
		idleBefore := idle()
		tc.Close()
		// Reset on a goroutine and given back to the pool, not parked.
		waitFor(t, "the TLS session's connection did not go back to the pool", func() bool { return idle() == idleBefore+1 })
		if n := parked(); n != before {
			t.Fatalf("%d parked, want %d", n, before)
		}
	})

	t.Run("concurrent clients", func(t *testing.T) {
		upstreamtest.Concurrently(t, 8, func(w int) error {
			c, err := net.DialTimeout("tcp", g.Addr, 5*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			r := bufio.NewReader(c)
			if _, err := c.Write(appendCommand(nil, "AUTH", tok)); err != nil {
				return err
			}
			if v, err := readReply(r); err != nil || v != "OK" {
				return fmt.Errorf("AUTH: %v %v", v, err)
			}
			for round := 0; round < 30; round++ {
				var b []byte
				for i := 0; i < 10; i++ {
					k := "live:c:" + strconv.Itoa(w) + ":" + strconv.Itoa(i)
					b = appendCommand(b, "SET", k, strconv.Itoa(round))
					b = appendCommand(b, "GET", k)
				}
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write(b); err != nil {
					return err
				}
				for i := 0; i < 20; i++ {
					v, err := readReply(r)
					if err != nil {
						return err
					}
					if i%2 == 1 && v != strconv.Itoa(round) {
						return fmt.Errorf("client %d round %d read %v", w, round, v)
					}
				}
			}
			return nil
		})
	})
}
