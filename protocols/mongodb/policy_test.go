package mongodb

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/policyset"
	"github.com/heliosdb/auth/netio"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// uses is a UsageRecorder that remembers what it saw.
type uses struct{ ids []core.TokenID }

func (u *uses) Record(id core.TokenID, _ uint64, _ int64) { u.ids = append(u.ids, id) }

// mintClaims mints a token for c (times default to an hour either side of
// now) and returns it with its claims.
func mintClaims(t testing.TB, c core.Claims) (string, core.Claims) {
	t.Helper()
	now := time.Now()
	if c.ID == (core.TokenID{}) {
		c.ID = core.NewTokenID()
	}
	if c.Type == 0 {
		c.Type = core.TypeLive
	}
	if c.IssuedAt == 0 {
		c.IssuedAt = now.Add(-time.Hour).Unix()
	}
	if c.ExpiresAt == 0 {
		c.ExpiresAt = now.Add(time.Hour).Unix()
	}
	if c.Account == 0 {
		c.Account = 7
	}
	tok, minted, err := core.NewMinter(testRing).Mint(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	return string(tok), minted
}

// cmdOn is a command document for name on database db.
func cmdOn(name string, value any, db string) bson.D {
	return bson.D{{Key: name, Value: value}, {Key: "$db", Value: db}}
}

func TestIPAllowlist(t *testing.T) {
	tok, c := mintClaims(t, core.Claims{Scopes: core.AllScopes, Flags: core.FlagIPPolicy})
	pol := policyset.New()
	pol.SetIPs(c.ID, []netip.Prefix{netip.MustParsePrefix("10.1.2.0/24")}, c.ExpiresAt)
	for _, tc := range []struct {
		name   string
		policy core.Policy
		from   string
		want   int32
	}{
		{"no policy", nil, "10.1.2.3:5555", CodeAuthenticationFailed},
		{"outside", pol, "10.9.9.9:5555", CodeAuthenticationFailed},
		{"inside", pol, "10.1.2.3:5555", 0},
		{"inside, mapped", pol, "[::ffff:10.1.2.3]:5555", 0},
	} {
		u, rec := &uses{}, &recorder{}
		s := New(Options{Policy: tc.policy, Usage: u}).NewSession(&netio.ConnInfo{Remote: netip.MustParseAddrPort(tc.from), PlaintextOK: true}).(*Session)
		doc, act := roundTrip(t, s, newEnv(nil, rec), opMsg(t, 1, 0, plainStart(tok)))
		if code(doc) != tc.want {
			t.Fatalf("%s: %v", tc.name, doc)
		}
		if tc.want != 0 {
			if !strings.Contains(errmsg(doc), core.ErrAddrNotAllowed.Message) || act != netio.Close || s.Claims() != nil || len(u.ids) != 0 ||
				netio.OutcomeOf(rec.auths[0]) != netio.OutcomeForbidden {
				t.Fatalf("%s: %v %v", tc.name, doc, act)
			}
			continue
		}
		if len(u.ids) != 1 || u.ids[0] != c.ID || s.Claims() == nil || s.Claims().ID != c.ID {
			t.Fatalf("%s: usage %v claims %v", tc.name, u.ids, s.Claims())
		}
	}
}

func TestTestTokenDatabases(t *testing.T) {
	pol := policyset.New()
	pol.SetDatabase("prod", false)
	pol.SetDatabase("analytics_test", true)
	s := New(Options{Policy: pol}).NewSession(&netio.ConnInfo{PlaintextOK: true}).(*Session)
	rec := &recorder{}
	env := newEnv(nil, rec)
	tok, _ := mintClaims(t, core.Claims{Type: core.TypeTest, Scopes: core.AllScopes, Flags: core.FlagTestOnly})
	// Authentication ($external) and session commands (admin) do not count.
	for _, d := range []bson.D{plainStart(tok), cmdOn("ping", 1, "admin"), cmdOn("connectionStatus", 1, "admin"), cmdOn("endSessions", bson.A{}, "admin")} {
		if doc, _ := roundTrip(t, s, env, opMsg(t, 1, 0, d)); code(doc) != 0 {
			t.Fatalf("%v: %v", d, doc)
		}
	}
	for _, db := range []string{"prod", "unregistered", "admin"} {
		doc, act := roundTrip(t, s, env, opMsg(t, 2, 0, cmdOn("find", "orders", db)))
		want := "not authorized on " + db + ` to execute command { find: "orders", $db: "` + db + `" }: Test tokens can only access test databases (database "` + db + `" is not registered`
		if code(doc) != CodeUnauthorized || !strings.HasPrefix(errmsg(doc), want) || act != netio.Continue {
			t.Fatalf("find on %s: %v", db, doc)
		}
	}
	if doc, _ := roundTrip(t, s, env, opMsg(t, 3, 0, cmdOn("find", "orders", "analytics_test"))); code(doc) != CodeCommandNotSupported {
		t.Fatalf("find on the test database: %v", doc)
	}
	if n := len(rec.auths); n != 4 || netio.OutcomeOf(rec.auths[1]) != netio.OutcomeForbidden {
		t.Fatalf("outcomes %v", rec.auths)
	}
	// A live token is not limited.
	s2 := New(Options{Policy: pol}).NewSession(&netio.ConnInfo{PlaintextOK: true}).(*Session)
	roundTrip(t, s2, env, opMsg(t, 1, 0, plainStart(mint(t, core.AllScopes, time.Hour))))
	if doc, _ := roundTrip(t, s2, env, opMsg(t, 2, 0, cmdOn("find", "orders", "prod"))); code(doc) != CodeCommandNotSupported {
		t.Fatalf("live token on prod: %v", doc)
	}
}

func TestRevokedDuringSession(t *testing.T) {
	for _, tc := range []struct {
		name   string
		revoke func(m *core.MemoryRevocations, c core.Claims)
		want   *core.Error
	}{
		{"token", func(m *core.MemoryRevocations, c core.Claims) { m.RevokeToken(c.ID, c.ExpiresAt) }, core.ErrRevoked},
		{"logout-all", func(m *core.MemoryRevocations, c core.Claims) { m.RevokeAccountBefore(c.Account, c.IssuedAt+1) }, core.ErrLoggedOut},
		{"key", func(m *core.MemoryRevocations, c core.Claims) { m.RetireKey(c.KeyID) }, core.ErrKeyRetired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			revs := core.NewMemoryRevocations()
			rec := &recorder{}
			s, env := newSession(true), newEnv(revs, rec)
			tok, _ := mintClaims(t, core.Claims{Scopes: core.AllScopes})
			roundTrip(t, s, env, opMsg(t, 1, 0, plainStart(tok)))
			if doc, _ := roundTrip(t, s, env, opMsg(t, 2, 0, cmdOn("ping", 1, "admin"))); code(doc) != 0 {
				t.Fatalf("before: %v", doc)
			}
			tc.revoke(revs, *s.Claims())
			doc, act := roundTrip(t, s, env, opMsg(t, 3, 0, cmdOn("ping", 1, "admin")))
			if code(doc) != CodeAuthenticationFailed || !strings.HasPrefix(errmsg(doc), tc.want.Error()) || act != netio.Close || s.authed {
				t.Fatalf("after: %v %v", doc, act)
			}
			if netio.OutcomeOf(rec.auths[len(rec.auths)-1]) != netio.OutcomeRevoked {
				t.Fatalf("outcomes %v", rec.auths)
			}
		})
	}
}

func TestTerminateAndClaims(t *testing.T) {
	var ns netio.Session = newSession(true)
	cl := ns
	if cl.Claims() != nil {
		t.Fatal("claims before authentication")
	}
	s, env := ns.(*Session), newEnv(nil, nil)
	first, c := mintClaims(t, core.Claims{Scopes: core.AllScopes})
	roundTrip(t, s, env, opMsg(t, 1, 0, plainStart(first)))
	got := cl.Claims()
	if got == nil || got.ID != c.ID {
		t.Fatalf("claims %+v", got)
	}
	// Bound to the first token: another one is refused, even after logout.
	second, _ := mintClaims(t, core.Claims{Scopes: core.AllScopes})
	roundTrip(t, s, env, opMsg(t, 2, 0, cmdOn("logout", 1, "admin")))
	doc, _ := roundTrip(t, s, env, opMsg(t, 3, 0, plainStart(second)))
	if code(doc) != CodeAuthenticationFailed || !strings.Contains(errmsg(doc), errOtherToken.Message) || cl.Claims() != got || got.ID != c.ID {
		t.Fatalf("second token: %v", doc)
	}
	s = newSession(true)
	roundTrip(t, s, env, opMsg(t, 1, 0, plainStart(first)))
	if out := s.Terminate(core.ErrRevoked, []byte("x")); string(out) != "x" || s.authed {
		t.Fatalf("Terminate appended %q", out)
	}
	// The next command (if the transport delivered one) is not served.
	if doc, _ := roundTrip(t, s, env, opMsg(t, 2, 0, cmdOn("find", "c", "main"))); code(doc) != CodeUnauthorized {
		t.Fatalf("after Terminate: %v", doc)
	}
}

// BenchmarkTestTokenCommand is one authenticated command of a test token on
// a test database, with a revocation view and the registry: the per-command
// re-check and database check must not allocate.
func BenchmarkTestTokenCommand(b *testing.B) {
	revs := core.NewMemoryRevocations()
	revs.RevokeToken(core.NewTokenID(), time.Now().Add(time.Hour).Unix())
	pol := policyset.New()
	pol.SetDatabase("analytics_test", true)
	s := New(Options{Policy: pol}).NewSession(&netio.ConnInfo{PlaintextOK: true}).(*Session)
	env := newEnv(revs, nil)
	tok, _ := mintClaims(b, core.Claims{Type: core.TypeTest, Scopes: core.AllScopes, Flags: core.FlagTestOnly})
	roundTrip(b, s, env, opMsg(b, 1, 0, plainStart(tok)))
	find := opMsg(b, 2, 0, bson.D{{Key: "find", Value: "orders"}, {Key: "$db", Value: "analytics_test"}})
	out := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		if _, o, _ := s.Handle(env, find, out[:0]); len(o) == 0 {
			b.Fatal("no reply")
		}
	}
}

// TestAuthenticatedCommandAllocs proves what BenchmarkTestTokenCommand
// reports: an authenticated command (re-check, classifier, test-database
// policy, reply) allocates nothing.
func TestAuthenticatedCommandAllocs(t *testing.T) {
	pol := policyset.New()
	pol.SetDatabase("analytics_test", true)
	s := New(Options{Policy: pol}).NewSession(&netio.ConnInfo{PlaintextOK: true}).(*Session)
	env := newEnv(core.NewMemoryRevocations(), nil)
	tok, _ := mintClaims(t, core.Claims{Type: core.TypeTest, Scopes: core.AllScopes, Flags: core.FlagTestOnly})
	roundTrip(t, s, env, opMsg(t, 1, 0, plainStart(tok)))
	find := opMsg(t, 2, 0, bson.D{{Key: "find", Value: "orders"}, {Key: "$db", Value: "analytics_test"}})
	out := make([]byte, 0, 4096)
	var n int
	if a := testing.AllocsPerRun(200, func() { n, out, _ = s.Handle(env, find, out[:0]) }); a != 0 {
		t.Fatalf("%.1f allocs per authenticated command", a)
	}
	if n != len(find) || len(out) == 0 {
		t.Fatalf("consumed %d of %d, reply %d bytes", n, len(find), len(out))
	}
}

// TestObservedClaimsOnlyWhenVerified: a failed saslStart reaches the
// observer with the token's claims (so its id is logged) exactly when the
// token's MAC verified.
func TestObservedClaimsOnlyWhenVerified(t *testing.T) {
	now := time.Now()
	forged, _, err := core.NewMinter(core.GenerateKeyring(now)).Mint(nil, core.Claims{Type: core.TypeLive,
		ID: core.NewTokenID(), Account: 7, IssuedAt: now.Add(-time.Hour).Unix(), ExpiresAt: now.Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := mintClaims(t, core.Claims{Scopes: core.AllScopes, IssuedAt: now.Add(-2 * time.Hour).Unix(), ExpiresAt: now.Add(-time.Minute).Unix()})
	live, _ := mintClaims(t, core.Claims{Scopes: core.AllScopes})
	for _, tc := range []struct {
		tok      string
		verified bool
	}{
		{"hdb_live_nonsense", false},
		{string(forged), false},
		{expired, true},
		{live, true},
	} {
		rec := &recorder{}
		roundTrip(t, newSession(true), newEnv(nil, rec), opMsg(t, 1, 0, plainStart(tc.tok)))
		if len(rec.verified) != 1 || rec.verified[0] != tc.verified {
			t.Fatalf("%v: verified %v", rec.auths, rec.verified)
		}
	}
}

// TestNamesChecked: saslStart PLAIN with a user other than default is
// refused with 18 naming the fix, before the token is looked at; a scoped
// command on a database that is not registered gets 13 saying it does not
// exist, while registered databases, admin, and commands that need no
// database pass.
func TestNamesChecked(t *testing.T) {
	pol := policyset.New()
	pol.SetDatabase("main", false)
	p := New(Options{Policy: pol})
	tok, _ := mintClaims(t, core.Claims{Scopes: core.AllScopes})
	s := p.NewSession(&netio.ConnInfo{PlaintextOK: true}).(*Session)
	alice := plainStart(tok)
	alice[2].Value = bson.Binary{Data: []byte("\x00alice\x00" + tok)}
	rec := &recorder{}
	doc, act := roundTrip(t, s, newEnv(nil, rec), opMsg(t, 1, 0, alice))
	if code(doc) != CodeAuthenticationFailed || act != netio.Close || s.Claims() != nil ||
		!strings.Contains(errmsg(doc), `unknown user "alice"`) || !strings.Contains(errmsg(doc), "connect as default with the token as the password") ||
		len(rec.auths) != 1 || netio.OutcomeOf(rec.auths[0]) != netio.OutcomeInvalid {
		t.Fatalf("user alice: %v %v", doc, act)
	}
	s = p.NewSession(&netio.ConnInfo{PlaintextOK: true}).(*Session)
	env := newEnv(nil, &recorder{})
	if doc, _ := roundTrip(t, s, env, opMsg(t, 1, 0, plainStart(tok))); code(doc) != 0 {
		t.Fatalf("saslStart: %v", doc)
	}
	doc, _ = roundTrip(t, s, env, opMsg(t, 2, 0, cmdOn("find", "orders", "nope")))
	want := `not authorized on nope to execute command { find: "orders", $db: "nope" }: database "nope" does not exist`
	if code(doc) != CodeUnauthorized || !strings.HasPrefix(errmsg(doc), want) {
		t.Fatalf("find on nope: %v", doc)
	}
	for _, db := range []string{"main", "admin"} {
		if doc, _ := roundTrip(t, s, env, opMsg(t, 3, 0, cmdOn("find", "orders", db))); code(doc) != CodeCommandNotSupported {
			t.Fatalf("find on %s: %v", db, doc)
		}
	}
	if doc, _ := roundTrip(t, s, env, opMsg(t, 4, 0, cmdOn("ping", 1, "nope"))); code(doc) != 0 {
		t.Fatalf("ping on nope: %v", doc)
	}
}
