package redis

import (
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
)

type recObserver struct {
	outcomes []netio.Outcome
	refused  []netio.Outcome
	verified []bool // the observer was given the claims
}

func (o *recObserver) Authenticated(_ *netio.ConnInfo, c *core.Claims, err error, _ time.Time) {
	o.outcomes = append(o.outcomes, netio.OutcomeOf(err))
	o.verified = append(o.verified, c != nil)
}
func (o *recObserver) Refused(_ *netio.ConnInfo, oc netio.Outcome) { o.refused = append(o.refused, oc) }
func (o *recObserver) Limit(netio.Limit)                           {}

type fixture struct {
	env  *netio.Env
	obs  *recObserver
	mint *core.Minter
	ring *core.Keyring
	now  time.Time
}

func newFixture(t testing.TB) *fixture {
	now := time.Now()
	ring := core.GenerateKeyring(now.Add(-time.Hour))
	obs := &recObserver{}
	return &fixture{
		env:  &netio.Env{Verifier: core.NewVerifier(ring, nil), Now: now, MaxPreAuthMessage: 16 << 10, MaxMessage: 1 << 20, Observer: obs},
		obs:  obs,
		mint: core.NewMinter(ring),
		ring: ring,
		now:  now,
	}
}

func (f *fixture) token(t testing.TB, scopes core.ScopeSet, expires time.Time) string {
	tok, _, err := f.mint.Mint(nil, core.Claims{Type: core.TypeLive, ID: core.NewTokenID(), Account: 7,
		IssuedAt: f.now.Add(-2 * time.Hour).Unix(), ExpiresAt: expires.Unix(), Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

func (f *fixture) live(t testing.TB, scopes core.ScopeSet) string {
	return f.token(t, scopes, f.now.Add(time.Hour))
}

func newSession(plaintextOK bool) *Session {
	return New(Options{}).NewSession(&netio.ConnInfo{ID: 42, PlaintextOK: plaintextOK}).(*Session)
}

// run feeds in to s and returns the output; it fails unless all of in is
// consumed.
func run(t *testing.T, f *fixture, s *Session, in string) (string, netio.Action) {
	t.Helper()
	n, out, act := s.Handle(f.env, []byte(in), nil)
	if n != len(in) {
		t.Fatalf("consumed %d of %d bytes of %q", n, len(in), in)
	}
	return string(out), act
}

func cmd(args ...string) string {
	var b []byte
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	b = AppendArray(b, len(bs))
	for _, a := range bs {
		b = AppendBulk(b, a)
	}
	return string(b)
}

func TestAuthForms(t *testing.T) {
	f := newFixture(t)
	tok := f.live(t, core.AllScopes)
	for _, in := range []string{cmd("AUTH", tok), cmd("auth", "default", tok), "AUTH " + tok + "\r\n"} {
		s := newSession(true)
		if out, _ := run(t, f, s, in); out != "+OK\r\n" {
			t.Fatalf("%q: %q", in, out)
		}
		if out, _ := run(t, f, s, cmd("PING")); out != "+PONG\r\n" {
			t.Fatalf("PING: %q", out)
		}
	}
}

func TestNoAuthAndWrongPass(t *testing.T) {
	f := newFixture(t)
	s := newSession(true)
	out, _ := run(t, f, s, cmd("GET", "k")+cmd("PING")+cmd("HELLO", "3"))
	want := "-NOAUTH Authentication required.\r\n-NOAUTH Authentication required.\r\n-" + msgHelloNoAuth + "\r\n"
	if out != want {
		t.Fatalf("got %q", out)
	}
	tok := f.live(t, core.AllScopes)
	bad := tok[:len(tok)-1] + "x"
	if tok[len(tok)-1] == 'x' {
		bad = tok[:len(tok)-1] + "y" // a changed character, always
	}
	expired := f.token(t, core.AllScopes, f.now.Add(-time.Minute))
	cases := []struct{ in, reason string }{
		{cmd("AUTH", bad), core.MsgInvalid},
		{cmd("AUTH", expired), core.MsgExpired},
		{cmd("AUTH", "alice", tok), core.MsgInvalid},
		{cmd("HELLO", "3", "AUTH", "default", "nope"), core.MsgInvalid},
	}
	for _, c := range cases {
		out, act := run(t, f, s, c.in)
		if !strings.HasPrefix(out, "-WRONGPASS invalid username-password pair or user is disabled. ") || !strings.Contains(out, c.reason) || act != netio.Continue {
			t.Fatalf("%q: %q", c.in, out)
		}
		if strings.Contains(out, tok[9:30]) || strings.Contains(out, expired[9:30]) {
			t.Fatalf("reply quotes the token: %q", out)
		}
	}
	if s.Authenticated() {
		t.Fatal("authenticated after failures")
	}
	want2 := []netio.Outcome{netio.OutcomeInvalid, netio.OutcomeExpired, netio.OutcomeInvalid, netio.OutcomeInvalid}
	if len(f.obs.outcomes) != len(want2) {
		t.Fatalf("outcomes %v", f.obs.outcomes)
	}
	for i := range want2 {
		if f.obs.outcomes[i] != want2[i] {
			t.Fatalf("outcomes %v", f.obs.outcomes)
		}
	}
}

func TestHello3(t *testing.T) {
	f := newFixture(t)
	s := newSession(true)
	tok := f.live(t, core.AllScopes)
	out, _ := run(t, f, s, cmd("hello", "3", "auth", "default", tok, "setname", "app"))
	if !strings.HasPrefix(out, "%7\r\n$6\r\nserver\r\n") || !strings.Contains(out, "$5\r\nproto\r\n:3\r\n") {
		t.Fatalf("HELLO 3: %q", out)
	}
	out, _ = run(t, f, s, cmd("client", "getname")+cmd("client", "maint_notifications", "on", "moving-endpoint-type", "internal-ip")+
		cmd("client", "setinfo", "LIB-NAME", "go-redis(,go1.26)")+cmd("CLIENT", "ID"))
	want := "$3\r\napp\r\n-ERR unknown subcommand 'maint_notifications'. Try CLIENT HELP.\r\n+OK\r\n:42\r\n"
	if out != want {
		t.Fatalf("got %q", out)
	}
	out, _ = run(t, f, s, cmd("HELLO", "2"))
	if !strings.HasPrefix(out, "*14\r\n") {
		t.Fatalf("HELLO 2: %q", out)
	}
	out, _ = run(t, f, s, cmd("HELLO", "4"))
	if out != "-NOPROTO unsupported protocol version\r\n" {
		t.Fatalf("HELLO 4: %q", out)
	}
}

func TestScopes(t *testing.T) {
	f := newFixture(t)
	s := newSession(true)
	run(t, f, s, cmd("AUTH", f.live(t, 1<<core.ScopeDatabaseRead)))
	out, _ := run(t, f, s, cmd("SET", "k", "v"))
	if out != "-NOPERM User default has no permissions to run the 'set' command (Token does not have required scope: database:write)\r\n" {
		t.Fatalf("SET: %q", out)
	}
	if o := f.obs.outcomes; len(o) != 2 || o[1] != netio.OutcomeForbidden {
		t.Fatalf("outcomes %v", o)
	}
	out, _ = run(t, f, s, cmd("GET", "k"))
	if !strings.HasPrefix(out, "-ERR no upstream database is configured") || !strings.Contains(out, "'get'") {
		t.Fatalf("GET: %q", out)
	}
	out, _ = run(t, f, s, cmd("FLUSHALL"))
	if !strings.HasPrefix(out, "-NOPERM") || !strings.Contains(out, "database:delete") {
		t.Fatalf("FLUSHALL: %q", out)
	}
	out, _ = run(t, f, s, cmd("SELECT", "0")+cmd("SELECT", "16")+cmd("ACL", "WHOAMI")+cmd("ECHO", "hi")+cmd("PING", "x"))
	if out != "+OK\r\n-ERR DB index is out of range\r\n$7\r\ndefault\r\n$2\r\nhi\r\n$1\r\nx\r\n" {
		t.Fatalf("got %q", out)
	}

	s2 := newSession(true)
	run(t, f, s2, cmd("AUTH", f.live(t, 0)))
	out, _ = run(t, f, s2, cmd("SELECT", "0")+cmd("PING")+cmd("COMMAND", "DOCS"))
	if !strings.HasPrefix(out, "-NOPERM User default has no permissions to run the 'select' command (Token does not have required scope: database:read)\r\n+PONG\r\n*0\r\n") {
		t.Fatalf("got %q", out)
	}
}

func TestWhoami(t *testing.T) {
	f := newFixture(t)
	s := newSession(true)
	tok := f.live(t, 1<<core.ScopeDatabaseRead|1<<core.ScopeDatabaseWrite)
	run(t, f, s, cmd("AUTH", tok))
	c, err := f.env.Verifier.Verify([]byte(tok), f.now)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := run(t, f, s, cmd("HELIOS.WHOAMI"))
	for _, w := range []string{"*8\r\n", c.ID.String(), "$4\r\nlive\r\n", "*2\r\n$13\r\ndatabase:read\r\n$14\r\ndatabase:write\r\n", c.Expires().Format(time.RFC3339)} {
		if !strings.Contains(out, w) {
			t.Fatalf("missing %q in %q", w, out)
		}
	}
}

func TestIncrementalAndPipelined(t *testing.T) {
	f := newFixture(t)
	s := newSession(true)
	in := cmd("AUTH", f.live(t, core.AllScopes)) + cmd("PING") + "PING\r\n" + "\r\n" + cmd("ECHO", "a b")
	var buf, out []byte
	for i := 0; i < len(in); i++ {
		buf = append(buf, in[i])
		n, o, act := s.Handle(f.env, buf, out)
		if act != netio.Continue {
			t.Fatalf("action %v", act)
		}
		out = o
		buf = buf[:copy(buf, buf[n:])]
	}
	if len(buf) != 0 || string(out) != "+OK\r\n+PONG\r\n+PONG\r\n$3\r\na b\r\n" {
		t.Fatalf("left %q, out %q", buf, out)
	}
}

func TestPlaintextRefused(t *testing.T) {
	f := newFixture(t)
	s := newSession(false)
	out, act := run(t, f, s, cmd("AUTH", f.live(t, core.AllScopes)))
	if !strings.HasPrefix(out, "-DENIED ") || act != netio.Close || s.Authenticated() {
		t.Fatalf("got %q %v", out, act)
	}
	if len(f.obs.refused) != 1 || f.obs.refused[0] != netio.OutcomeTLSRequired || len(f.obs.outcomes) != 0 {
		t.Fatalf("observer %+v", f.obs)
	}
	s = New(Options{}).NewSession(&netio.ConnInfo{TLS: true}).(*Session)
	if out, _ := run(t, f, s, cmd("AUTH", f.live(t, core.AllScopes))); out != "+OK\r\n" {
		t.Fatalf("TLS AUTH: %q", out)
	}
}

func TestBadInput(t *testing.T) {
	f := newFixture(t)
	cases := []struct{ in, want string }{
		{"*99999999999\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"*1\r\n$17000\r\n", "-ERR Protocol error: command is larger than allowed (16384 bytes before authentication)\r\n"},
		{"*2\r\n$4\r\nAUTH\r\n:1\r\n", "-ERR Protocol error: expected '$', got ':'\r\n"},
		{"*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"*1\r\n$2\r\nabcd\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"*1x\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"*3000\r\n", "-ERR Protocol error: command is larger than allowed (16384 bytes before authentication)\r\n"},
		{strings.Repeat("A", 17000), "-ERR Protocol error: command is larger than allowed (16384 bytes before authentication)\r\n"},
		{"AUTH \"abc\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
	}
	for _, c := range cases {
		s := newSession(true)
		out, act := run(t, f, s, c.in)
		if out != c.want || act != netio.Close {
			t.Fatalf("%q: %q %v", c.in, out, act)
		}
	}
	s := newSession(true)
	if n, out, _ := s.Handle(f.env, []byte("*2\r\n$4\r\nAUTH\r\n$100\r\nabc"), nil); n != 0 || len(out) != 0 {
		t.Fatalf("partial: n=%d out=%q", n, out)
	}
	out, act := run(t, f, s, "QUIT\r\n")
	if out != "+OK\r\n" || act != netio.Close {
		t.Fatalf("QUIT: %q", out)
	}
}

func TestExpiryDuringSession(t *testing.T) {
	f := newFixture(t)
	s := newSession(true)
	run(t, f, s, cmd("AUTH", f.token(t, core.AllScopes, f.now.Add(time.Second))))
	f.env.Now = f.now.Add(2 * time.Second)
	out, act := run(t, f, s, cmd("PING"))
	if !strings.HasPrefix(out, "-NOAUTH Authentication token has expired") || s.Authenticated() || act != netio.Close {
		t.Fatalf("got %q %v", out, act)
	}
}

func BenchmarkAuthPing(b *testing.B) {
	f := newFixture(b)
	in := []byte(cmd("AUTH", f.live(b, core.AllScopes)) + cmd("PING"))
	out := make([]byte, 0, 256)
	info := &netio.ConnInfo{PlaintextOK: true}
	p := New(Options{})
	b.ReportAllocs()
	for b.Loop() {
		s := p.NewSession(info)
		_, out, _ = s.Handle(f.env, in, out[:0])
	}
}

func BenchmarkReadCommand(b *testing.B) {
	in := []byte(cmd("SET", "key:0001", "value-0001") + "PING\r\n")
	args := make([][]byte, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		for rest := in; len(rest) > 0; {
			a, n, _, err := ReadCommand(rest, args, 1<<20)
			if err != nil || n == 0 {
				b.Fatal(err)
			}
			args, rest = a[:0], rest[n:]
		}
	}
}
