package redis

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/policyset"
	"github.com/heliosdb/auth/netio"
)

// uses is a UsageRecorder that remembers what it saw.
type uses struct{ ids []core.TokenID }

func (u *uses) Record(id core.TokenID, _ uint64, _ int64) { u.ids = append(u.ids, id) }

// mintClaims mints a token for c (times default to an hour either side of
// the fixture's now) and returns it with its claims.
func (f *fixture) mintClaims(t testing.TB, c core.Claims) (string, core.Claims) {
	t.Helper()
	if c.ID == (core.TokenID{}) {
		c.ID = core.NewTokenID()
	}
	if c.Type == 0 {
		c.Type = core.TypeLive
	}
	if c.IssuedAt == 0 {
		c.IssuedAt = f.now.Add(-time.Hour).Unix()
	}
	if c.ExpiresAt == 0 {
		c.ExpiresAt = f.now.Add(time.Hour).Unix()
	}
	if c.Account == 0 {
		c.Account = 7
	}
	tok, minted, err := f.mint.Mint(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	return string(tok), minted
}

func TestIPAllowlist(t *testing.T) {
	f := newFixture(t)
	pol := policyset.New()
	u := &uses{}
	p := New(Options{Policy: pol, Usage: u})
	tok, c := f.mintClaims(t, core.Claims{Scopes: core.AllScopes, Flags: core.FlagIPPolicy})
	pol.SetIPs(c.ID, []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}, c.ExpiresAt)
	from := func(addr string) *Session {
		return p.NewSession(&netio.ConnInfo{Remote: netip.MustParseAddrPort(addr), PlaintextOK: true}).(*Session)
	}

	s := from("127.0.0.1:4000")
	out, _ := run(t, f, s, cmd("AUTH", tok)+cmd("HELLO", "3", "AUTH", "default", tok))
	want := "-WRONGPASS invalid username-password pair or user is disabled. " + core.ErrAddrNotAllowed.Message
	if lines := strings.Split(out, "\r\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], want) || !strings.HasPrefix(lines[1], want) {
		t.Fatalf("from 127.0.0.1: %q", out)
	}
	if s.Authenticated() || s.Claims() != nil || len(u.ids) != 0 {
		t.Fatal("a refused token authenticated or was recorded")
	}
	if o := f.obs.outcomes; len(o) != 2 || o[0] != netio.OutcomeForbidden {
		t.Fatalf("outcomes %v", o)
	}

	s = from("[::ffff:127.0.0.2]:4000") // a mapped address counts as its IPv4
	if out, _ := run(t, f, s, cmd("AUTH", tok)+cmd("PING")); out != "+OK\r\n+PONG\r\n" {
		t.Fatalf("from 127.0.0.2: %q", out)
	}
	if len(u.ids) != 1 || u.ids[0] != c.ID || s.Claims() == nil || s.Claims().ID != c.ID {
		t.Fatalf("usage %v, claims %v", u.ids, s.Claims())
	}

	// No policy at all: a token with an allowlist is refused (fail closed),
	// one without is accepted.
	s = New(Options{}).NewSession(&netio.ConnInfo{Remote: netip.MustParseAddrPort("127.0.0.2:1"), PlaintextOK: true}).(*Session)
	if out, _ := run(t, f, s, cmd("AUTH", tok)); !strings.HasPrefix(out, want) {
		t.Fatalf("nil policy: %q", out)
	}
	if out, _ := run(t, f, s, cmd("AUTH", f.live(t, core.AllScopes))); out != "+OK\r\n" {
		t.Fatalf("nil policy, no allowlist: %q", out)
	}
}

func TestTestTokenDatabases(t *testing.T) {
	f := newFixture(t)
	pol := policyset.New()
	pol.SetDatabase("db0", false)
	pol.SetDatabase("db3", true)
	s := New(Options{Policy: pol}).NewSession(&netio.ConnInfo{ID: 1, PlaintextOK: true}).(*Session)
	tok, _ := f.mintClaims(t, core.Claims{Type: core.TypeTest, Scopes: core.AllScopes, Flags: core.FlagTestOnly})

	// AUTH itself succeeds (clients SELECT afterwards); connection
	// commands work anywhere, data commands only on a test database.
	out, _ := run(t, f, s, cmd("AUTH", tok)+cmd("PING")+cmd("GET", "k"))
	want := "+OK\r\n+PONG\r\n-NOPERM User default has no permissions to run the 'get' command on database 0 (Test tokens can only access test databases: Redis database 0 is the registered database \"db0\", which is not a test database)\r\n"
	if out != want {
		t.Fatalf("got %q", out)
	}
	out, _ = run(t, f, s, cmd("SELECT", "1")+cmd("SELECT", "3")+cmd("GET", "k")+cmd("CLIENT", "INFO"))
	if !strings.HasPrefix(out, "-NOPERM User default has no permissions to select database 1 (Test tokens can only access test databases: Redis database 1 is the registered database \"db1\"") ||
		!strings.Contains(out, "\r\n+OK\r\n-ERR no upstream database is configured") || !strings.Contains(out, " db=3 ") {
		t.Fatalf("got %q", out)
	}
	if o := f.obs.outcomes; len(o) != 3 || o[1] != netio.OutcomeForbidden || o[2] != netio.OutcomeForbidden {
		t.Fatalf("outcomes %v", o)
	}
	// The registry changes under an open connection: the next command sees it.
	pol.SetDatabase("db3", false)
	if out, _ := run(t, f, s, cmd("GET", "k")); !strings.HasPrefix(out, "-NOPERM") || !strings.Contains(out, "\"db3\"") {
		t.Fatalf("after the test flag is removed: %q", out)
	}

	// A live token is not limited by the test flags.
	pol.SetDatabase("db5", false)
	s2 := New(Options{Policy: pol}).NewSession(&netio.ConnInfo{PlaintextOK: true}).(*Session)
	out, _ = run(t, f, s2, cmd("AUTH", f.live(t, core.AllScopes))+cmd("SELECT", "5")+cmd("GET", "k"))
	if !strings.HasPrefix(out, "+OK\r\n+OK\r\n-ERR no upstream database is configured") {
		t.Fatalf("live token: %q", out)
	}
}

// TestNamesChecked: SELECT, MOVE and COPY … DB of a logical database n ≥ 1
// whose "db<n>" is not registered get -ERR DB index is out of range and
// leave the selection; database 0 always exists; AUTH with a user other
// than default is WRONGPASS naming the fix.
func TestNamesChecked(t *testing.T) {
	f := newFixture(t)
	pol := policyset.New()
	pol.SetDatabase("main", false)
	pol.SetDatabase("db2", false)
	s := New(Options{Policy: pol}).NewSession(&netio.ConnInfo{PlaintextOK: true}).(*Session)
	tok := f.live(t, core.AllScopes)
	out, _ := run(t, f, s, cmd("AUTH", "alice", tok))
	if !strings.HasPrefix(out, "-WRONGPASS") || !strings.Contains(out, "AUTH default <token>") || s.Authenticated() {
		t.Fatalf("AUTH alice: %q", out)
	}
	out, _ = run(t, f, s, cmd("AUTH", tok)+cmd("SELECT", "0")+cmd("SELECT", "2")+cmd("SELECT", "1")+cmd("MOVE", "k", "1")+
		cmd("COPY", "a", "b", "DB", "7"))
	want := "+OK\r\n+OK\r\n+OK\r\n" + strings.Repeat("-ERR DB index is out of range\r\n", 3)
	if out != want || s.db != 2 {
		t.Fatalf("got %q, database %d", out, s.db)
	}
}

func TestRevokedDuringSession(t *testing.T) {
	for _, c := range []struct {
		name   string
		revoke func(m *core.MemoryRevocations, c core.Claims)
		reason string
	}{
		{"token", func(m *core.MemoryRevocations, c core.Claims) { m.RevokeToken(c.ID, c.ExpiresAt) }, core.ErrRevoked.Detail},
		{"logout-all", func(m *core.MemoryRevocations, c core.Claims) { m.RevokeAccountBefore(c.Account, c.IssuedAt+1) }, core.ErrLoggedOut.Detail},
		{"key", func(m *core.MemoryRevocations, c core.Claims) { m.RetireKey(c.KeyID) }, core.ErrKeyRetired.Detail},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			revs := core.NewMemoryRevocations()
			f.env.Verifier = core.NewVerifier(f.ring, revs)
			s := newSession(true)
			tok, _ := f.mintClaims(t, core.Claims{Scopes: core.AllScopes})
			if out, _ := run(t, f, s, cmd("HELLO", "3", "AUTH", "default", tok)+cmd("PING")); !strings.HasSuffix(out, "+PONG\r\n") {
				t.Fatalf("before: %q", out)
			}
			c.revoke(revs, *s.Claims())
			out, act := run(t, f, s, cmd("PING"))
			want := "-NOAUTH " + core.MsgRevoked + " (" + c.reason + ")" + msgSessionEnded + "\r\n"
			if out != want || act != netio.Close || s.Authenticated() {
				t.Fatalf("after: %q %v", out, act)
			}
			if o := f.obs.outcomes; o[len(o)-1] != netio.OutcomeRevoked {
				t.Fatalf("outcomes %v", o)
			}
		})
	}
}

func TestTerminate(t *testing.T) {
	f := newFixture(t)
	var s netio.Session = newSession(true)
	cl := s
	if cl.Claims() != nil {
		t.Fatal("claims before authentication")
	}
	tok, c := f.mintClaims(t, core.Claims{Scopes: core.AllScopes})
	run(t, f, s.(*Session), cmd("AUTH", tok))
	got := cl.Claims()
	if got == nil || got.ID != c.ID || got.Account != c.Account {
		t.Fatalf("claims %+v", got)
	}
	for err, want := range map[error]string{
		core.ErrRevoked:     "-NOAUTH Authentication token has been revoked (the token was revoked); the server closed this connection: reconnect with a valid token\r\n",
		core.ErrExpired:     "-NOAUTH Authentication token has expired; the server closed this connection: reconnect with a valid token\r\n",
		core.ErrUnavailable: "-NOAUTH " + core.ErrUnavailable.Message + msgSessionEnded + "\r\n",
	} {
		if out := string(s.Terminate(err, []byte("+PONG\r\n"))); out != "+PONG\r\n"+want {
			t.Fatalf("Terminate(%v): %q", err, out)
		}
	}
	if s.Authenticated() || cl.Claims() != got {
		t.Fatal("after Terminate")
	}
}

func TestBoundToFirstToken(t *testing.T) {
	f := newFixture(t)
	s := newSession(true)
	first, second := f.live(t, core.AllScopes), f.live(t, core.AllScopes)
	run(t, f, s, cmd("AUTH", first))
	c := s.Claims()
	id := c.ID
	out, _ := run(t, f, s, cmd("AUTH", second)+cmd("RESET")+cmd("AUTH", "default", second)+cmd("AUTH", first))
	want := "-WRONGPASS invalid username-password pair or user is disabled. " + errOtherToken.Message
	lines := strings.Split(out, "\r\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], want) || lines[1] != "+RESET" || !strings.HasPrefix(lines[2], want) || lines[3] != "+OK" {
		t.Fatalf("got %q", out)
	}
	if s.Claims() != c || c.ID != id || !s.Authenticated() {
		t.Fatal("the bound claims changed")
	}
}

// BenchmarkAuthenticatedPing is the per-command path of an authenticated
// connection: the re-check against a revocation view, the classifier and the
// reply. It must not allocate.
func BenchmarkAuthenticatedPing(b *testing.B) {
	f := newFixture(b)
	revs := core.NewMemoryRevocations()
	revs.RevokeToken(core.NewTokenID(), f.now.Add(time.Hour).Unix())
	f.env.Verifier = core.NewVerifier(f.ring, revs)
	pol := policyset.New()
	pol.SetDatabase("db0", true)
	s := New(Options{Policy: pol}).NewSession(&netio.ConnInfo{PlaintextOK: true}).(*Session)
	tok, _ := f.mintClaims(b, core.Claims{Type: core.TypeTest, Scopes: core.AllScopes, Flags: core.FlagTestOnly})
	if _, out, _ := s.Handle(f.env, []byte(cmd("AUTH", tok)), nil); string(out) != "+OK\r\n" {
		b.Fatalf("AUTH: %q", out)
	}
	in := []byte(cmd("PING") + cmd("GET", "k"))
	out := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		_, out, _ = s.Handle(f.env, in, out[:0])
	}
	if !strings.HasPrefix(string(out), "+PONG\r\n-ERR no upstream") {
		b.Fatalf("got %q", out)
	}
}

// TestAuthenticatedCommandAllocs proves what BenchmarkAuthenticatedPing
// reports: an authenticated command (re-check, classifier, policy, reply)
// allocates nothing.
func TestAuthenticatedCommandAllocs(t *testing.T) {
	f := newFixture(t)
	pol := policyset.New()
	pol.SetDatabase("db0", true)
	s := New(Options{Policy: pol}).NewSession(&netio.ConnInfo{PlaintextOK: true}).(*Session)
	tok, _ := f.mintClaims(t, core.Claims{Type: core.TypeTest, Scopes: core.AllScopes, Flags: core.FlagTestOnly})
	if _, out, _ := s.Handle(f.env, []byte(cmd("AUTH", tok)), nil); string(out) != "+OK\r\n" {
		t.Fatalf("AUTH: %q", out)
	}
	in := []byte(cmd("PING") + cmd("GET", "k"))
	out := make([]byte, 0, 1024)
	if a := testing.AllocsPerRun(200, func() { _, out, _ = s.Handle(f.env, in, out[:0]) }); a != 0 {
		t.Fatalf("%.1f allocs per authenticated command", a)
	}
	if !strings.HasPrefix(string(out), "+PONG\r\n") {
		t.Fatalf("got %q", out)
	}
}

// TestObservedClaimsOnlyWhenVerified: a failed AUTH reaches the observer
// with the token's claims (so its id is logged) exactly when the token's
// MAC verified; a wrong user name, garbage or a forged token never do.
func TestObservedClaimsOnlyWhenVerified(t *testing.T) {
	f := newFixture(t)
	forged, _, err := core.NewMinter(core.GenerateKeyring(f.now)).Mint(nil, core.Claims{Type: core.TypeLive,
		ID: core.NewTokenID(), Account: 7, IssuedAt: f.now.Add(-time.Hour).Unix(), ExpiresAt: f.now.Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(true)
	run(t, f, s, cmd("AUTH", "hdb_live_nonsense")+cmd("AUTH", string(forged))+cmd("AUTH", "admin", f.live(t, core.AllScopes))+
		cmd("AUTH", f.token(t, core.AllScopes, f.now.Add(-time.Minute)))+cmd("AUTH", f.live(t, core.AllScopes)))
	want := []bool{false, false, false, true, true}
	if len(f.obs.verified) != len(want) {
		t.Fatalf("observed %v", f.obs.outcomes)
	}
	for i := range want {
		if f.obs.verified[i] != want[i] {
			t.Fatalf("attempt %d (%v): verified %v", i, f.obs.outcomes[i], f.obs.verified[i])
		}
	}
}
