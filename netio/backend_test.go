package netio

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
)

// relayProto is a toy proxy for the backend tests: lines from the client
// are commands for the relay ("AUTH <token>", "CONNECT <addr> <key>",
// "PARK", "CLOSEB", "DEADLINE <ms>", "WHERE") or, once connected, sent to
// the server; every byte the server sends reaches the client as it is.
type relayProto struct {
	released atomic.Int32 // release functions run
	attached atomic.Int32 // Attach calls that succeeded
}

func (*relayProto) Name() string                        { return "relay" }
func (p *relayProto) NewSession(info *ConnInfo) Session { return &relaySession{p: p, info: info} }
func (*relayProto) TLSFirstByte() bool                  { return false }
func (*relayProto) ALPN() []string                      { return nil }

type relaySession struct {
	p      *relayProto
	info   *ConnInfo
	authed bool
	claims core.Claims
	b      *Backend
	gone   bool
	// waiting: WAITDO stopped the session until a Link.Do says DONE.
	waiting bool
}

var _ Closer = (*relaySession)(nil)

func (s *relaySession) Claims() *core.Claims {
	if s.authed {
		return &s.claims
	}
	return nil
}
func (s *relaySession) Start(_ *Env, out []byte) []byte { return out }
func (s *relaySession) Authenticated() bool             { return s.authed }
func (s *relaySession) Terminate(err error, out []byte) []byte {
	return append(out, "ERR ended "+err.Error()+"\n"...)
}
func (s *relaySession) LimitError(l Limit, out []byte) []byte {
	return append(out, "ERR limit "+l.String()+"\n"...)
}

// Closed closes the session's backend: the client has gone.
func (s *relaySession) Closed() {
	s.gone = true
	if s.b != nil {
		s.b.Close()
	}
}

// BackendTraffic forwards the server's bytes to the client.
func (s *relaySession) BackendTraffic(_ *Env, _ *Backend, in, out []byte) (int, []byte, Action) {
	return len(in), append(out, in...), Continue
}

// BackendClosed tells the client.
func (s *relaySession) BackendClosed(_ *Env, _ *Backend, out []byte) ([]byte, Action) {
	s.b = nil
	return append(out, "BACKEND CLOSED\n"...), Continue
}

func (s *relaySession) release() func() { return func() { s.p.released.Add(1) } }

func (s *relaySession) Handle(env *Env, in, out []byte) (int, []byte, Action) {
	if s.waiting {
		return 0, out, Continue
	}
	i := bytes.IndexByte(in, '\n')
	if i < 0 {
		return 0, out, Continue
	}
	line := string(in[:i])
	n := i + 1
	cmd, arg, _ := strings.Cut(line, " ")
	switch {
	case cmd == "AUTH":
		if err := env.Admit(&lineAdmission, s.info, &s.claims, []byte(arg), nil); err != nil {
			return n, append(out, "ERR "+err.Error()+"\n"...), Close
		}
		s.authed = true
		return n, append(out, "OK\n"...), Continue
	case cmd == "WHERE":
		where := "goroutine"
		if s.info.Link() != nil {
			where = "loop"
		}
		return n, append(out, where+"\n"...), Continue
	case cmd == "CONNECT":
		addr, key, _ := strings.Cut(arg, " ")
		link := s.info.Link()
		if b := link.Take(key); b != nil {
			s.b = b
			b.SetHandler(s)
			return n, append(out, "OK parked\n"...), Continue
		}
		go func() {
			nc, err := net.Dial("tcp", addr)
			if err == nil {
				err = link.Attach(nc, addr, s.release(), func(_ *Env, b *Backend, out []byte) ([]byte, Action) {
					s.p.attached.Add(1)
					if s.gone {
						b.Close()
						return out, Continue
					}
					s.b = b
					b.SetHandler(s)
					return append(out, "OK attached\n"...), Continue
				})
			}
			if err != nil {
				_ = link.Do(func(_ *Env, out []byte) ([]byte, Action) { return append(out, "ERR "+err.Error()+"\n"...), Continue })
			}
		}()
		return n, out, Continue
	case cmd == "WAITDO":
		s.waiting = true
		link := s.info.Link()
		time.AfterFunc(20*time.Millisecond, func() {
			_ = link.Do(func(_ *Env, out []byte) ([]byte, Action) {
				s.waiting = false
				return append(out, "DONE\n"...), Continue
			})
		})
		return n, out, Continue
	case s.b == nil:
		return n, append(out, "ERR no backend\n"...), Continue
	case cmd == "PARK":
		s.b.Park(arg)
		s.b = nil
		return n, append(out, "OK\n"...), Continue
	case cmd == "CLOSEB":
		s.b.Close()
		s.b = nil
		return n, append(out, "OK\n"...), Continue
	case cmd == "DEADLINE":
		ms, _ := strconv.Atoi(arg)
		s.b.SetDeadline(time.Now().Add(time.Duration(ms) * time.Millisecond))
		return n, append(out, "OK\n"...), Continue
	}
	if err := s.b.Write(in[:n]); err != nil {
		return n, append(out, "ERR "+err.Error()+"\n"...), Close
	}
	return n, out, Continue
}

// backendServer is the server the relay connects to: "ECHO <text>" answers
// <text>, "GEN <n>" sends n bytes (genByte) then "\nEND\n", "HOLD" stops reading
// until release is closed, "COUNT" answers how many bytes it has read,
// "QUIT" closes. It counts what it has written and read.
type backendServer struct {
	ln      net.Listener
	conns   atomic.Int32
	written atomic.Int64
	read    atomic.Int64
	hold    chan struct{}
	mu      sync.Mutex
	open    []net.Conn
}

// genByte is byte i of what GEN sends: a pattern whose period (23) no
// buffer size divides, so that bytes out of order show.
func genByte(i int) byte { return 'a' + byte(i%23) }

func startBackendServer(t *testing.T) *backendServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &backendServer{ln: ln, hold: make(chan struct{})}
	t.Cleanup(func() {
		ln.Close()
		s.closeAll()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			s.mu.Lock()
			s.open = append(s.open, c)
			s.mu.Unlock()
			go s.serve(c)
		}
	}()
	return s
}

func (s *backendServer) addr() string { return s.ln.Addr().String() }

// closeAll closes every connection the server accepted (a restart).
func (s *backendServer) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.open {
		c.Close()
	}
	s.open = nil
}

func (s *backendServer) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	for {
		line, err := r.ReadString('\n')
		s.read.Add(int64(len(line)))
		if err != nil {
			return
		}
		cmd, arg, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		switch cmd {
		case "ECHO":
			c.Write([]byte(arg + "\n"))
		case "GEN":
			n, _ := strconv.Atoi(arg)
			chunk := make([]byte, 32<<10)
			for off := 0; n > 0; off += len(chunk) {
				k := min(n, len(chunk))
				for i := range chunk[:k] {
					chunk[i] = genByte(off + i)
				}
				w, err := c.Write(chunk[:k])
				s.written.Add(int64(w))
				if err != nil {
					return
				}
				n -= k
			}
			c.Write([]byte("\nEND\n"))
		case "HOLD":
			<-s.hold
		case "COUNT":
			c.Write([]byte(strconv.FormatInt(s.read.Load(), 10) + "\n"))
		case "QUIT":
			return
		}
	}
}

// startRelay serves p on one listener.
func startRelay(t *testing.T, cfg Config, p Protocol) (*Gateway, string, string) {
	t.Helper()
	ring := core.GenerateKeyring(time.Now())
	cfg.Keyring, cfg.Revocations = ring, core.NewMemoryRevocations()
	if cfg.Loops == 0 {
		cfg.Loops = 1
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	gw, err := Serve(cfg, []Listener{{Addr: "127.0.0.1:0", Protocol: p}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Stop(context.Background()) })
	now := time.Now().Unix()
	tok, _, err := core.NewMinter(ring).Mint(nil, core.Claims{Type: core.TypeLive, ID: core.NewTokenID(), Account: 1, IssuedAt: now, ExpiresAt: now + 3600, Scopes: core.AllScopes})
	if err != nil {
		t.Fatal(err)
	}
	return gw, gw.Addr(p.Name()).String(), string(tok)
}

// relayClient connects, authenticates and attaches a backend of key.
func relayClient(t *testing.T, addr, tok, server, key, how string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, r := dialLine(t, addr)
	c.Write([]byte("AUTH " + tok + "\nWHERE\nCONNECT " + server + " " + key + "\n"))
	expect(t, r, "OK")
	expect(t, r, "loop")
	expect(t, r, "OK "+how)
	return c, r
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal(what)
}

// TestBackendRelay: a server connection attached to the client's loop
// carries bytes both ways; when the client leaves, the session closes it
// and its release function runs once.
func TestBackendRelay(t *testing.T) {
	p := &relayProto{}
	gw, addr, tok := startRelay(t, Config{}, p)
	srv := startBackendServer(t)
	c, r := relayClient(t, addr, tok, srv.addr(), "k", "attached")
	c.Write([]byte("ECHO hello\nECHO world\n"))
	expect(t, r, "hello")
	expect(t, r, "world")
	c.Close()
	waitFor(t, "the backend was not released after the client left", func() bool { return p.released.Load() == 1 })
	waitOpen(t, gw, 0)
}

// TestBackendParkAndTake: a parked backend serves the next client of the
// loop (no new server connection); one the server closes while parked is
// released and not handed out.
func TestBackendParkAndTake(t *testing.T) {
	p := &relayProto{}
	_, addr, tok := startRelay(t, Config{}, p)
	srv := startBackendServer(t)
	c, r := relayClient(t, addr, tok, srv.addr(), "k", "attached")
	c.Write([]byte("PARK k\n"))
	expect(t, r, "OK")
	if n := Parked("k"); n != 1 {
		t.Fatalf("Parked = %d, want 1", n)
	}
	c.Close()
	c2, r2 := relayClient(t, addr, tok, srv.addr(), "k", "parked")
	c2.Write([]byte("ECHO again\n"))
	expect(t, r2, "again")
	if n := srv.conns.Load(); n != 1 {
		t.Fatalf("the server saw %d connections, want 1 (the parked one reused)", n)
	}
	c2.Write([]byte("PARK k\n"))
	expect(t, r2, "OK")
	srv.closeAll() // a server restart: the parked connection ends
	waitFor(t, "the parked backend was not released when its server closed it", func() bool { return p.released.Load() == 1 && Parked("k") == 0 })
	_, r3 := relayClient(t, addr, tok, srv.addr(), "k", "attached")
	_ = r3
	if n := srv.conns.Load(); n != 2 {
		t.Fatalf("the server saw %d connections, want 2", n)
	}
}

// TestBackendReclaim: Reclaim hands a parked backend back as a net.Conn on
// the same server connection, without running its release function.
func TestBackendReclaim(t *testing.T) {
	p := &relayProto{}
	_, addr, tok := startRelay(t, Config{}, p)
	srv := startBackendServer(t)
	c, r := relayClient(t, addr, tok, srv.addr(), "reclaim-key", "attached")
	c.Write([]byte("PARK reclaim-key\n"))
	expect(t, r, "OK")
	got := make(chan net.Conn, 1)
	if !Reclaim("reclaim-key", func(v any, nc net.Conn) {
		if v != srv.addr() {
			t.Errorf("value %v", v)
		}
		got <- nc
	}) {
		t.Fatal("Reclaim found no loop holding the key")
	}
	var nc net.Conn
	select {
	case nc = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("Reclaim gave nothing")
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	nc.Write([]byte("ECHO detached\n"))
	expect(t, bufio.NewReader(nc), "detached")
	if Parked("reclaim-key") != 0 || p.released.Load() != 0 || srv.conns.Load() != 1 {
		t.Fatalf("parked %d, released %d, server connections %d", Parked("reclaim-key"), p.released.Load(), srv.conns.Load())
	}
	if Reclaim("reclaim-key", func(any, net.Conn) {}) {
		t.Fatal("Reclaim with nothing parked")
	}
}

// TestBackendServerCloses: a server closing its connection reaches the
// session (BackendClosed) and releases it; a deadline does the same.
func TestBackendServerCloses(t *testing.T) {
	p := &relayProto{}
	_, addr, tok := startRelay(t, Config{Tick: 20 * time.Millisecond}, p)
	srv := startBackendServer(t)
	c, r := relayClient(t, addr, tok, srv.addr(), "k", "attached")
	c.Write([]byte("QUIT\n"))
	expect(t, r, "BACKEND CLOSED")
	waitFor(t, "not released", func() bool { return p.released.Load() == 1 })
	c.Write([]byte("CONNECT " + srv.addr() + " k\n"))
	expect(t, r, "OK attached")
	start := time.Now()
	c.Write([]byte("DEADLINE 100\n"))
	expect(t, r, "OK")
	expect(t, r, "BACKEND CLOSED")
	if d := time.Since(start); d < 100*time.Millisecond || d > 3*time.Second {
		t.Fatalf("the deadline closed the backend after %v", d)
	}
	waitFor(t, "not released", func() bool { return p.released.Load() == 2 })
}

// TestBackendPausesForSlowClient: a client that does not read stops the
// loop reading its server (the server's writes stall at a bounded amount),
// and once it reads again every byte arrives, in order.
func TestBackendPausesForSlowClient(t *testing.T) {
	p := &relayProto{}
	_, addr, tok := startRelay(t, Config{}, p)
	srv := startBackendServer(t)
	c, r := relayClient(t, addr, tok, srv.addr(), "k", "attached")
	const total = 200 << 20
	c.Write([]byte("GEN " + strconv.Itoa(total) + "\n"))
	time.Sleep(500 * time.Millisecond) // the client reads nothing meanwhile
	stalled := srv.written.Load()
	time.Sleep(200 * time.Millisecond)
	if w := srv.written.Load(); w > 32<<20 || w != stalled {
		t.Fatalf("the server wrote %d MB (%d MB before) to a client reading nothing: the relay kept reading it", w>>20, stalled>>20)
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	n := 0
	buf := make([]byte, 64<<10)
	for n < total {
		k, err := io.ReadFull(r, buf[:min(len(buf), total-n)])
		for i, c := range buf[:k] {
			if c != genByte(n+i) { // a part written out of order, twice or not at all
				t.Fatalf("byte %d is %q, want %q", n+i, c, genByte(n+i))
			}
		}
		n += k
		if err != nil {
			t.Fatalf("after %d bytes: %v", n, err)
		}
		if n%(16<<20) < 64<<10 {
			time.Sleep(20 * time.Millisecond) // slow, not stopped
		}
	}
	rest, _ := r.ReadString('\n')
	if rest != "\n" {
		t.Fatalf("after the bytes: %q", rest)
	}
	expect(t, r, "END")
	c.Write([]byte("ECHO after\n"))
	expect(t, r, "after")
}

// TestBackendPausesFastClient: a client sending faster than its server
// reads is stopped too (its writes stall at a bounded amount), and every
// byte reaches the server once it reads again.
func TestBackendPausesFastClient(t *testing.T) {
	p := &relayProto{}
	_, addr, tok := startRelay(t, Config{}, p)
	srv := startBackendServer(t)
	c, r := relayClient(t, addr, tok, srv.addr(), "k", "attached")
	c.Write([]byte("HOLD\n")) // the server stops reading
	var sent atomic.Int64
	line := []byte(strings.Repeat("y", 1023) + "\n")
	const lines = 100 << 10 // 100 MB
	done := make(chan error, 1)
	go func() {
		c.SetWriteDeadline(time.Now().Add(60 * time.Second))
		batch := bytes.Repeat(line, 64)
		for i := 0; i < lines/64; i++ {
			k, err := c.Write(batch)
			sent.Add(int64(k))
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	time.Sleep(700 * time.Millisecond)
	stalled := sent.Load()
	time.Sleep(200 * time.Millisecond)
	if s := sent.Load(); s > 48<<20 || s != stalled {
		t.Fatalf("the client sent %d MB (%d MB before) to a server reading nothing: the relay kept reading it", s>>20, stalled>>20)
	}
	close(srv.hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("COUNT\n"))
	want := int64(len("HOLD\n")) + lines*int64(len(line)) + int64(len("COUNT\n"))
	expect(t, r, strconv.FormatInt(want, 10))
}

// TestBackendDoHandlesCarriedBytes: a session that stopped reading until a
// Link.Do (WAITDO) gets the bytes its client sent behind handled after the
// Do, also when they were carried across a pause of the client (so not in
// gnet's buffer).
func TestBackendDoHandlesCarriedBytes(t *testing.T) {
	p := &relayProto{}
	_, addr, tok := startRelay(t, Config{}, p)
	srv := startBackendServer(t)
	c, r := relayClient(t, addr, tok, srv.addr(), "k", "attached")
	c.Write([]byte("HOLD\n")) // the server stops reading: the client is paused
	line := []byte(strings.Repeat("y", 999) + "\n")
	done := make(chan error, 1)
	go func() {
		c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		_, err := c.Write(append(bytes.Repeat(line, 8<<10), "WAITDO\nECHO after\n"...))
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	close(srv.hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	expect(t, r, "DONE")
	expect(t, r, "after")
}

// TestBackendClientGoneWhileAttaching: a client that leaves before Attach
// has registered its server connection leaves nothing open.
func TestBackendClientGoneWhileAttaching(t *testing.T) {
	p := &relayProto{}
	gw, addr, tok := startRelay(t, Config{}, p)
	srv := startBackendServer(t)
	for i := 0; i < 20; i++ {
		c, r := dialLine(t, addr)
		c.Write([]byte("AUTH " + tok + "\nCONNECT " + srv.addr() + " k\n"))
		expect(t, r, "OK")
		c.Close()
	}
	waitFor(t, fmt.Sprintf("attached %d, released %d", p.attached.Load(), p.released.Load()), func() bool {
		return p.attached.Load() == 20 && p.released.Load() == 20
	})
	waitOpen(t, gw, 0)
}

// TestBackendEndsWithGateway: stopping the gateway releases parked and
// paused backends and closes paused clients.
func TestBackendEndsWithGateway(t *testing.T) {
	p := &relayProto{}
	gw, addr, tok := startRelay(t, Config{}, p)
	srv := startBackendServer(t)
	c, r := relayClient(t, addr, tok, srv.addr(), "k-stop", "attached")
	c.Write([]byte("PARK k-stop\n"))
	expect(t, r, "OK")
	c2, r2 := relayClient(t, addr, tok, srv.addr(), "k-stop2", "attached")
	c2.Write([]byte("GEN " + strconv.Itoa(100<<20) + "\n")) // never read: paused
	_ = r2
	c3, r3 := relayClient(t, addr, tok, srv.addr(), "k-stop3", "attached")
	c3.Write([]byte("HOLD\n"))
	go c3.Write(bytes.Repeat([]byte("z"), 64<<20)) // never taken: the client is paused
	_ = r3
	time.Sleep(500 * time.Millisecond)
	gw.Stop(context.Background())
	waitFor(t, fmt.Sprintf("released %d of 3 backends", p.released.Load()), func() bool { return p.released.Load() == 3 })
	if Parked("k-stop") != 0 || gw.Open() != 0 {
		t.Fatalf("parked %d, open %d", Parked("k-stop"), gw.Open())
	}
	c3.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, c3); err != nil {
		t.Fatalf("the paused client was not closed: %v", err)
	}
	close(srv.hold)
}
