package netio

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/tlsfile"
	"github.com/heliosdb/auth/netio/proxyproto/proxyprototest"
)

// lineProto is a toy protocol for the transport's tests: lines in, lines
// out. "AUTH <token>" authenticates, "STARTTLS" upgrades, "QUIT" closes,
// anything else is echoed (after AUTH) or refused. "OFFLOAD" moves the
// session off its loop, "WHERE" tells where it runs, "SLEEP <ms>" blocks.
type lineProto struct{ tlsFirst bool }

func (lineProto) Name() string                      { return "line" }
func (lineProto) NewSession(info *ConnInfo) Session { return &lineSession{info: info} }
func (p lineProto) TLSFirstByte() bool              { return p.tlsFirst }
func (lineProto) ALPN() []string                    { return []string{"line"} }

// lineAdmission admits lineProto's tokens: no policy, no usage record.
var lineAdmission Admission

type lineSession struct {
	info   *ConnInfo
	authed bool
	claims core.Claims
}

func (s *lineSession) Claims() *core.Claims {
	if s.authed {
		return &s.claims
	}
	return nil
}

func (s *lineSession) Terminate(err error, out []byte) []byte {
	return append(append(append(out, "ERR ended "...), err.Error()...), '\n')
}

func (s *lineSession) Start(_ *Env, out []byte) []byte { return out }
func (s *lineSession) Authenticated() bool             { return s.authed }
func (s *lineSession) LimitError(l Limit, out []byte) []byte {
	return append(append(append(out, "ERR limit "...), l.String()...), '\n')
}

func (s *lineSession) Handle(env *Env, in, out []byte) (int, []byte, Action) {
	i := bytes.IndexByte(in, '\n')
	if i < 0 {
		if len(in) > env.MaxPreAuthMessage {
			return 0, s.LimitError(LimitMessageSize, out), Close
		}
		return 0, out, Continue
	}
	line := string(in[:i])
	switch {
	case line == "STARTTLS":
		return i + 1, append(out, "OK tls\n"...), UpgradeTLS
	case line == "ADDR":
		return i + 1, append(out, s.info.Remote.String()+" "+strconv.FormatBool(s.info.PlaintextOK)+"\n"...), Continue
	case line == "OFFLOAD":
		return i + 1, append(out, "OK offload\n"...), Offload
	case line == "WHERE":
		where := "loop"
		if s.info.Offloaded {
			where = "goroutine"
		}
		return i + 1, append(out, where+"\n"...), Continue
	case strings.HasPrefix(line, "SLEEP "):
		ms, _ := strconv.Atoi(line[6:])
		time.Sleep(time.Duration(ms) * time.Millisecond) // blocks whatever runs the session
		return i + 1, append(out, "SLEPT\n"...), Continue
	case line == "QUIT":
		return i + 1, append(out, "BYE\n"...), Close
	case line == "WHO":
		tls := "plain"
		if s.info.TLS {
			tls = "tls"
		}
		return i + 1, append(out, tls+" "+s.info.ALPN+"\n"...), Continue
	case strings.HasPrefix(line, "AUTH "):
		if err := env.Admit(&lineAdmission, s.info, &s.claims, []byte(line[5:]), nil); err != nil {
			return i + 1, append(out, "ERR "+err.Error()+"\n"...), Close
		}
		s.authed = true
		return i + 1, append(out, "OK\n"...), Continue
	case s.authed:
		return i + 1, append(append(out, line...), '\n'), Continue
	}
	return i + 1, append(out, "ERR auth first\n"...), Continue
}

type fixture struct {
	gw    *Gateway
	addr  string
	token string
	ring  *core.Keyring
	tls   *tls.Config
	revs  *core.MemoryRevocations
	id    core.TokenID
	exp   int64
}

func startLine(t *testing.T, cfg Config, p lineProto) *fixture {
	t.Helper()
	ring := core.GenerateKeyring(time.Now())
	tlsCfg, _, _, err := tlsfile.LoadOrGenerate(t.TempDir(), "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	revs := core.NewMemoryRevocations()
	cfg.Keyring, cfg.Revocations, cfg.TLS = ring, revs, tlsCfg
	if cfg.Loops == 0 {
		cfg.Loops = 2
	}
	gw, err := Serve(cfg, []Listener{{Addr: "127.0.0.1:0", Protocol: p}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Stop(context.Background()) })
	now := time.Now().Unix()
	tok, c, err := core.NewMinter(ring).Mint(nil, core.Claims{Type: core.TypeLive, ID: core.NewTokenID(), Account: 1, IssuedAt: now, ExpiresAt: now + 3600, Scopes: core.AllScopes})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{gw: gw, addr: gw.Addr("line").String(), token: string(tok), ring: ring, tls: tlsCfg, revs: revs, id: c.ID, exp: c.ExpiresAt}
}

func dialLine(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func expect(t *testing.T, r *bufio.Reader, want string) {
	t.Helper()
	got, err := r.ReadString('\n')
	if err != nil || strings.TrimSpace(got) != want {
		t.Fatalf("got %q (%v), want %q", got, err, want)
	}
}

func TestEngineAuthAndEcho(t *testing.T) {
	f := startLine(t, Config{}, lineProto{})
	c, r := dialLine(t, f.addr)
	c.Write([]byte("hello\nAUTH " + f.token + "\nping\nWHO\n"))
	expect(t, r, "ERR auth first")
	expect(t, r, "OK")
	expect(t, r, "ping")
	expect(t, r, "plain")
}

func TestEngineStartTLSCarriesPendingBytes(t *testing.T) {
	f := startLine(t, Config{}, lineProto{})
	c, r := dialLine(t, f.addr)
	c.Write([]byte("STARTTLS\n"))
	expect(t, r, "OK tls")
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"line"}})
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	tr := bufio.NewReader(tc)
	tc.Write([]byte("WHO\nAUTH " + f.token + "\nsecret\n"))
	expect(t, tr, "tls line")
	expect(t, tr, "OK")
	expect(t, tr, "secret")
}

func TestEngineTLSFirstByte(t *testing.T) {
	f := startLine(t, Config{}, lineProto{tlsFirst: true})
	tc, err := tls.Dial("tcp", f.addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	tc.Write([]byte("WHO\n"))
	expect(t, bufio.NewReader(tc), "tls")
}

func TestEngineHandshakeTimeout(t *testing.T) {
	f := startLine(t, Config{HandshakeTimeout: 200 * time.Millisecond}, lineProto{})
	c, r := dialLine(t, f.addr)
	c.Write([]byte("par")) // slowloris: never a full line
	start := time.Now()
	expect(t, r, "ERR limit handshake_timeout")
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("timeout took %v", d)
	}
	if _, err := r.ReadByte(); err == nil {
		t.Fatal("connection still open after the timeout")
	}
}

func TestEngineIdleTimeout(t *testing.T) {
	f := startLine(t, Config{IdleTimeout: 300 * time.Millisecond}, lineProto{})
	c, r := dialLine(t, f.addr)
	c.Write([]byte("AUTH " + f.token + "\n"))
	expect(t, r, "OK")
	expect(t, r, "ERR limit idle_timeout")
}

func TestEngineConnectionLimits(t *testing.T) {
	f := startLine(t, Config{MaxConns: 3, MaxConnsPerIP: 2}, lineProto{})
	a, ra := dialLine(t, f.addr)
	b, rb := dialLine(t, f.addr)
	a.Write([]byte("x\n"))
	b.Write([]byte("x\n"))
	expect(t, ra, "ERR auth first")
	expect(t, rb, "ERR auth first")
	_, rc := dialLine(t, f.addr)
	expect(t, rc, "ERR limit connections")
	a.Close()
	waitOpen(t, f.gw, 1)
	d, rd := dialLine(t, f.addr)
	d.Write([]byte("x\n"))
	expect(t, rd, "ERR auth first")
}

func TestEngineMessageSizeLimit(t *testing.T) {
	f := startLine(t, Config{MaxPreAuthMessage: 64}, lineProto{})
	c, r := dialLine(t, f.addr)
	c.Write(bytes.Repeat([]byte("a"), 4096))
	expect(t, r, "ERR limit message_size")
}

func waitOpen(t *testing.T, gw *Gateway, n int) {
	t.Helper()
	for i := 0; i < 500 && gw.Open() != n; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if got := gw.Open(); got != n {
		t.Fatalf("open connections %d, want %d", got, n)
	}
}

func fdCount(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// TestEngineNoLeaks opens and closes many connections, plaintext and TLS,
// authenticated or not, and checks that descriptors and goroutines return
// to where they started.
func TestEngineNoLeaks(t *testing.T) {
	f := startLine(t, Config{HandshakeTimeout: 300 * time.Millisecond}, lineProto{})
	run := func() {
		for i := 0; i < 300; i++ {
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			switch i % 4 {
			case 0:
				c.Write([]byte("AUTH " + f.token + "\nQUIT\n"))
				bufio.NewReader(c).ReadString('\n')
			case 1:
				c.Write([]byte("STARTTLS\n"))
				r := bufio.NewReader(c)
				r.ReadString('\n')
				tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
				tc.Write([]byte("AUTH " + f.token + "\n"))
				bufio.NewReader(tc).ReadString('\n')
				tc.Close()
			case 2:
				c.Write([]byte("STARTTLS\n")) // then hang up mid-handshake
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
}

// TestEngineHandshakeDeadlineSurvivesTLS: a client that upgrades and then
// stalls is cut off at the same deadline, on the TLS goroutine.
func TestEngineHandshakeDeadlineSurvivesTLS(t *testing.T) {
	f := startLine(t, Config{HandshakeTimeout: 400 * time.Millisecond}, lineProto{})
	c, r := dialLine(t, f.addr)
	c.Write([]byte("STARTTLS\n"))
	expect(t, r, "OK tls")
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	tc.Write([]byte("WHO\n"))
	tr := bufio.NewReader(tc)
	expect(t, tr, "tls")
	expect(t, tr, "ERR limit handshake_timeout")
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("cut off after %v", d)
	}
	waitOpen(t, f.gw, 0)
}

// TestEngineEndsRevokedSessions: an authenticated, silent session whose
// token is revoked is ended by the transport (Session.Terminate) when the
// revocation is delivered, on the event loop and on the TLS goroutine alike.
func TestEngineEndsRevokedSessions(t *testing.T) {
	f := startLine(t, Config{HandshakeTimeout: time.Second, IdleTimeout: time.Minute, Tick: 50 * time.Millisecond}, lineProto{})
	plain, pr := dialLine(t, f.addr)
	plain.Write([]byte("AUTH " + f.token + "\n"))
	expect(t, pr, "OK")
	c, r := dialLine(t, f.addr)
	c.Write([]byte("STARTTLS\n"))
	expect(t, r, "OK tls")
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	tc.Write([]byte("AUTH " + f.token + "\n"))
	tr := bufio.NewReader(tc)
	expect(t, tr, "OK")
	start := time.Now()
	f.revs.RevokeToken(f.id, f.exp)
	f.gw.Revoke(Revocation{Kind: RevokeToken, Token: f.id})
	want := "ERR ended " + core.ErrRevoked.Error()
	expect(t, pr, want)
	expect(t, tr, want)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("ended after %v", d)
	}
	waitOpen(t, f.gw, 0)
}

// TestEngineProxyProtocol: from a trusted balancer the PROXY v2 header is
// required and names the client for ConnInfo, PlaintextOK and the
// per-address limit.
func TestEngineProxyProtocol(t *testing.T) {
	lb, _ := ParsePrefixes([]string{"127.0.0.0/8"})
	f := startLine(t, Config{ProxyFrom: lb, MaxConnsPerIP: 1}, lineProto{})
	dst := netip.MustParseAddrPort("10.0.0.1:5432")
	hdr := func(src string) []byte { return proxyprototest.Append(nil, netip.MustParseAddrPort(src), dst) }

	a, ra := dialLine(t, f.addr)
	h := hdr("203.0.113.9:4000")
	a.Write(h[:7]) // in two pieces
	time.Sleep(20 * time.Millisecond)
	a.Write(append(h[7:], "ADDR\n"...))
	expect(t, ra, "203.0.113.9:4000 false")

	b, rb := dialLine(t, f.addr) // the same client again: over its limit
	b.Write(append(hdr("203.0.113.9:4001"), "ADDR\n"...))
	expect(t, rb, "ERR limit connections")

	c, rc := dialLine(t, f.addr) // another client through the same balancer
	c.Write(append(hdr("127.0.0.1:4002"), "STARTTLS\n"...))
	expect(t, rc, "OK tls")
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	tc.Write([]byte("ADDR\n"))
	expect(t, bufio.NewReader(tc), "127.0.0.1:4002 true")

	d, rd := dialLine(t, f.addr) // no header from a trusted balancer
	d.Write([]byte("ADDR\n"))
	if line, err := rd.ReadString('\n'); err == nil {
		t.Fatalf("served without a PROXY header: %q", line)
	}
	a.Close()
	tc.Close()
	waitOpen(t, f.gw, 0)
}

// TestEngineLoopsFollowGOMAXPROCS: with Loops unset a listener runs
// GOMAXPROCS event loops, not gnet's default of one per CPU (GOMAXPROCS=1
// on this 2-core machine ran two loops, and pgbench -S through the
// PostgreSQL proxy cost 18.1 µs of heliosd CPU per transaction instead of
// 17.3 with one).
func TestEngineLoopsFollowGOMAXPROCS(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ring := core.GenerateKeyring(time.Now())
	gw, err := Serve(Config{Keyring: ring, Revocations: core.NewMemoryRevocations()}, []Listener{{Addr: "127.0.0.1:0", Protocol: lineProto{}}})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Stop(context.Background())
	// Connections are spread round-robin over the loops (port 0: no
	// SO_REUSEPORT); each loop's state appears on its first connection.
	for i := 0; i < 4*runtime.NumCPU(); i++ {
		c, r := dialLine(t, gw.Addr("line").String())
		c.Write([]byte("hello\n"))
		expect(t, r, "ERR auth first")
	}
	if n := len(gw.servers[0].loops.all()); n != 1 {
		t.Fatalf("%d event loops served the connections with GOMAXPROCS 1, want 1", n)
	}
}
