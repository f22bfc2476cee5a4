package mysql

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/policyset"
	"github.com/heliosdb/auth/netio"
)

// testPolicy is a core.Policy whose allowlists and registry tests change.
type testPolicy struct {
	mu    sync.Mutex
	from  map[core.TokenID]netip.Addr
	tests map[string]bool
}

func (p *testPolicy) AllowedFrom(id core.TokenID, addr netip.Addr) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.from[id]
	return ok && a == addr
}

func (p *testPolicy) IsTestDatabase(name []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tests[string(name)]
}

// usageLog records Record calls.
type usageLog struct{ ids []core.TokenID }

func (u *usageLog) Record(id core.TokenID, _ uint64, _ int64) { u.ids = append(u.ids, id) }

// policyFixture is a fast-auth fixture whose protocol has a policy and a
// usage recorder.
func policyFixture(t *testing.T) (*fixture, *core.MemoryRevocations, *testPolicy, *usageLog) {
	f, revs := fastFixture(t, CacheConfig{})
	pol := &testPolicy{from: map[core.TokenID]netip.Addr{}, tests: map[string]bool{"ci_test": true}}
	use := &usageLog{}
	p, err := New(Options{Key: key(t), TLS: true, Policy: pol, Usage: use})
	if err != nil {
		t.Fatal(err)
	}
	f.p = p
	return f, revs, pol, use
}

// mintFlags mints a token of type typ with flags and returns it with its
// claims.
func (f *fixture) mintFlags(t *testing.T, typ core.TokenType, flags core.Flags) (string, core.Claims) {
	t.Helper()
	c := core.Claims{Type: typ, ID: core.NewTokenID(), Account: 7, IssuedAt: f.now.Add(-2 * time.Hour).Unix(),
		ExpiresAt: f.now.Add(time.Hour).Unix(), Scopes: core.AllScopes, Flags: flags}
	tok, _, err := f.mint.Mint(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	c, err = f.env.Verifier.Verify(tok, f.now)
	if err != nil {
		t.Fatal(err)
	}
	return string(tok), c
}

// handshakeDB is a HandshakeResponse41 for database db (none when empty:
// CONNECT_WITH_DB is not set).
func handshakeDB(db string, auth []byte) []byte {
	caps := uint32(clientCaps)
	if db == "" {
		caps &^= ClientConnectWithDB
	}
	b := binary.LittleEndian.AppendUint32(nil, caps)
	b = binary.LittleEndian.AppendUint32(b, 1<<24)
	b = append(b, 45)
	b = append(b, make([]byte, 23)...)
	b = append(b, "default\x00"...)
	b = append(appendLenenc(b, uint64(len(auth))), auth...)
	if db != "" {
		b = append(append(b, db...), 0)
	}
	return append(b, "caching_sha2_password\x00"...)
}

// login runs full authentication inside TLS from info for database db and
// returns the server's last reply, the action and the connection.
func login(t *testing.T, f *fixture, info *netio.ConnInfo, db, tok string) ([][]byte, netio.Action, *conn) {
	t.Helper()
	info.TLS = true
	c := newConn(t, f, info)
	if pk, _ := c.send(pkt(2, handshakeDB(db, clientScramble(tok, c.nonce())))); !isFullAuth(pk) {
		t.Fatalf("expected full authentication, got %q", pk)
	}
	pk, act := c.send(pkt(4, append([]byte(tok), 0)))
	return pk, act, c
}

// fastLogin runs fast authentication from info for database db.
func fastLogin(t *testing.T, f *fixture, info *netio.ConnInfo, db, tok string) ([][]byte, netio.Action, *conn) {
	t.Helper()
	c := newConn(t, f, info)
	pk, act := c.send(pkt(1, handshakeDB(db, clientScramble(tok, c.nonce()))))
	return pk, act, c
}

func isOK(pk [][]byte) bool { return len(pk) == 1 && pk[0][0] == 0 }

func TestPolicyIPAllowlist(t *testing.T) {
	f, _, pol, use := policyFixture(t)
	tok, c := f.mintFlags(t, core.TypeLive, core.FlagIPPolicy)
	pol.from[c.ID] = netip.MustParseAddr("192.0.2.9")

	pk, act, s := login(t, f, from("192.0.2.7:40000"), "main", tok)
	if code, msg := errCode(pk[0]); code != 1045 || act != netio.Close || !strings.Contains(msg, "#28000Access denied for user 'default'@'192.0.2.7'") ||
		!strings.Contains(msg, core.ErrAddrNotAllowed.Message) || s.s.Claims() != nil {
		t.Fatalf("from a disallowed address: %d %q %v", code, msg, act)
	}
	if f.p.cache.len() != 0 || len(use.ids) != 0 {
		t.Fatalf("a refused token was cached (%d) or recorded (%d)", f.p.cache.len(), len(use.ids))
	}
	if pk, act, s = login(t, f, from("192.0.2.9:40000"), "main", tok); !isOK(pk) || act != netio.Continue || s.s.Claims() == nil {
		t.Fatalf("from the allowed address: %q", pk)
	}
	if pk, _, _ = fastLogin(t, f, from("192.0.2.9:40001"), "main", tok); !isFastOK(pk) {
		t.Fatalf("fast auth from the allowed address: %q", pk)
	}
	// The fast path applies the same check: the allowlist changed.
	pol.from[c.ID] = netip.MustParseAddr("192.0.2.10")
	pk, act, _ = fastLogin(t, f, from("192.0.2.9:40002"), "main", tok)
	if code, msg := errCode(pk[0]); len(pk) != 1 || code != 1045 || act != netio.Close || !strings.Contains(msg, core.ErrAddrNotAllowed.Message) {
		t.Fatalf("fast auth after the allowlist changed: %q", pk)
	}
	if len(use.ids) != 2 || use.ids[0] != c.ID {
		t.Fatalf("usage %v", use.ids)
	}
	want := []netio.Outcome{netio.OutcomeForbidden, netio.OutcomeOK, netio.OutcomeOK, netio.OutcomeForbidden}
	if o := f.obs.outcomes; len(o) != len(want) || o[0] != want[0] || o[1] != want[1] || o[2] != want[2] || o[3] != want[3] {
		t.Fatalf("outcomes %v", o)
	}
}

// query sends a COM_QUERY (or, with a leading command byte below 0x20, that
// command) and returns the error code and message of the reply (0 for OK
// or a result set).
func query(t *testing.T, c *conn, q string) (uint16, string) {
	t.Helper()
	p := []byte(q)
	if len(q) == 0 || q[0] >= 0x20 {
		p = append([]byte{comQuery}, q...)
	}
	pk, act := c.send(pkt(0, p))
	if act != netio.Continue {
		t.Fatalf("%q closed the session: %q", q, pk)
	}
	code, msg := errCode(pk[0])
	return code, msg
}

func TestPolicyTestDatabases(t *testing.T) {
	f, _, pol, _ := policyFixture(t)
	tok, _ := f.mintFlags(t, core.TypeTest, core.FlagTestOnly)

	pk, act, _ := login(t, f, from("192.0.2.7:40000"), "main", tok)
	if code, msg := errCode(pk[0]); code != 1044 || act != netio.Close || !strings.Contains(msg, "#42000Access denied for user 'default'@'192.0.2.7' to database 'main': ") ||
		!strings.Contains(msg, core.ErrTestDatabaseOnly.Message) {
		t.Fatalf("test token on main: %d %q", code, msg)
	}
	if pk, _, _ = login(t, f, from("192.0.2.7:40001"), "ci_test", tok); !isOK(pk) {
		t.Fatalf("test token on ci_test: %q", pk)
	}
	// Fast authentication checks the database too.
	pk, act, _ = fastLogin(t, f, from("192.0.2.7:40002"), "main", tok)
	if code, _ := errCode(pk[0]); len(pk) != 1 || code != 1044 || act != netio.Close {
		t.Fatalf("fast auth on main: %q", pk)
	}
	if pk, _, _ = fastLogin(t, f, from("192.0.2.7:40003"), "ci_test", tok); !isFastOK(pk) {
		t.Fatalf("fast auth on ci_test: %q", pk)
	}

	// No database: connected; only statements that need none run.
	pk, _, c := login(t, f, from("192.0.2.20:40004"), "", tok)
	if !isOK(pk) {
		t.Fatalf("test token without a database: %q", pk)
	}
	for _, q := range []string{"SELECT 1", "select @@version_comment limit 1", "SELECT DATABASE()", "SET NAMES utf8mb4", "BEGIN", "\x0e"} {
		if code, msg := query(t, c, q); code != 0 {
			t.Fatalf("%q without a database: %d %q", q, code, msg)
		}
	}
	for _, q := range []string{"SELECT * FROM t", "INSERT INTO t VALUES (1)", "\x16SELECT ?", "\x11"} {
		if code, msg := query(t, c, q); code != 1046 || !strings.HasPrefix(msg, "#3D000No database selected: "+core.ErrTestDatabaseOnly.Message) {
			t.Fatalf("%q without a database: %d %q", q, code, msg)
		}
	}
	for _, q := range []string{"\x02main", "USE `main`"} {
		if code, msg := query(t, c, q); code != 1044 || !strings.Contains(msg, "to database 'main': "+core.ErrTestDatabaseOnly.Message) {
			t.Fatalf("%q: %d %q", q, code, msg)
		}
	}
	if pk, _ = c.send(pkt(0, []byte("\x03SELECT DATABASE()"))); pk[3][0] != 0xfb {
		t.Fatalf("a refused USE changed the database: %q", pk)
	}
	if code, msg := query(t, c, "\x02ci_test"); code != 0 {
		t.Fatalf("COM_INIT_DB ci_test: %d %q", code, msg)
	}
	if code, msg := query(t, c, "SELECT * FROM t"); code != 1235 {
		t.Fatalf("in ci_test: %d %q", code, msg)
	}
	for q, want := range map[string]uint16{"CREATE DATABASE prod": 1044, "DROP SCHEMA IF EXISTS `prod`": 1044, "CREATE DATABASE IF NOT EXISTS ci_test": 1235} {
		if code, msg := query(t, c, q); code != want {
			t.Fatalf("%q: %d %q", q, code, msg)
		}
	}
	// The registry changes under the session: ci_test is no test database
	// any more.
	pol.mu.Lock()
	delete(pol.tests, "ci_test")
	pol.mu.Unlock()
	if code, msg := query(t, c, "SELECT * FROM t"); code != 1044 || !strings.Contains(msg, "to database 'ci_test'") {
		t.Fatalf("after ci_test left the registry: %d %q", code, msg)
	}
	if code, msg := query(t, c, "SELECT 1"); code != 0 {
		t.Fatalf("SELECT 1: %d %q", code, msg)
	}

	// A live token reaches any database.
	live, _ := f.mintFlags(t, core.TypeLive, 0)
	if pk, _, c = login(t, f, from("192.0.2.8:40000"), "main", live); !isOK(pk) {
		t.Fatalf("live token on main: %q", pk)
	}
	if code, msg := query(t, c, "USE prod"); code != 0 {
		t.Fatalf("live token USE prod: %d %q", code, msg)
	}
}

func TestRecheckEveryCommand(t *testing.T) {
	f, _, _, _ := policyFixture(t)
	var revs *core.MemoryRevocations
	var ring *core.Keyring
	cases := []struct {
		name   string
		end    func(c core.Claims)
		reason string
	}{
		{"revoked", func(c core.Claims) { revs.RevokeToken(c.ID, c.ExpiresAt) }, core.ErrRevoked.Error()},
		{"logout-all", func(c core.Claims) { revs.RevokeAccountBefore(c.Account, f.now.Unix()) }, core.ErrLoggedOut.Error()},
		{"key retired", func(c core.Claims) { revs.RetireKey(c.KeyID) }, core.ErrKeyRetired.Error()},
		{"expired", func(core.Claims) { f.env.Now = f.now.Add(2 * time.Hour) }, core.MsgExpired + " (reconnect with a new token)"},
		{"unavailable", func(core.Claims) { f.env.Verifier = core.NewVerifier(ring, unavailable{}) }, core.ErrUnavailable.Message},
	}
	for i, tc := range cases {
		f.env.Now = f.now
		revs, ring = core.NewMemoryRevocations(), core.GenerateKeyring(f.now.Add(-time.Hour))
		f.env.Verifier, f.mint = core.NewVerifier(ring, revs), core.NewMinter(ring)
		tok, c := f.mintFlags(t, core.TypeLive, 0)
		pk, _, s := login(t, f, from("192.0.2.7:4000"+string(rune('0'+i))), "main", tok)
		if !isOK(pk) || f.p.cache.len() != 1 {
			t.Fatalf("%s: login %q, %d cached", tc.name, pk, f.p.cache.len())
		}
		if code, _ := query(t, s, "SELECT 1"); code != 0 {
			t.Fatalf("%s: before", tc.name)
		}
		tc.end(c)
		n, out, act := s.s.Handle(f.env, pkt(0, []byte("\x03SELECT 1")), nil)
		p, seq, k, _ := ReadPacket(out, 1<<20)
		code, msg := errCode(p)
		if n != 13 || k != len(out) || seq != 1 || code != 1045 || act != netio.Close ||
			!strings.HasPrefix(msg, "#28000Access denied for user 'default'@'192.0.2.7' (session ended): ") || !strings.HasSuffix(msg, tc.reason) {
			t.Fatalf("%s: %d %q %v", tc.name, code, msg, act)
		}
		if f.p.cache.len() != 0 {
			t.Fatalf("%s: the token is still cached", tc.name)
		}
		if o := f.obs.outcomes[len(f.obs.outcomes)-1]; o == netio.OutcomeOK || o == netio.OutcomeForbidden {
			t.Fatalf("%s: outcome %v", tc.name, o)
		}
	}
}

// unavailable is a revocation view that cannot tell (a stale node).
type unavailable struct{}

func (unavailable) Check(core.TokenID, uint64, int64, uint16) core.RevocationStatus {
	return core.RevocationUnavailable
}

func TestTerminate(t *testing.T) {
	f, revs, _, _ := policyFixture(t)
	tok, c := f.mintFlags(t, core.TypeLive, 0)
	info := from("192.0.2.7:40000")
	info.TLS = true
	s := newConn(t, f, info)
	if s.s.Claims() != nil {
		t.Fatal("claims before authentication")
	}
	s.send(pkt(2, handshakeDB("main", clientScramble(tok, s.nonce()))))
	if pk, _ := s.send(pkt(4, append([]byte(tok), 0))); !isOK(pk) {
		t.Fatalf("login %q", pk)
	}
	if cl := s.s.Claims(); cl == nil || cl.ID != c.ID || f.p.cache.len() != 1 {
		t.Fatalf("claims %v, %d cached", cl, f.p.cache.len())
	}
	revs.RevokeToken(c.ID, c.ExpiresAt)
	err := f.env.Verifier.Recheck(s.s.Claims(), f.now)
	out := s.s.Terminate(err, []byte("x"))
	p, seq, n, perr := ReadPacket(out[1:], 1<<20)
	code, msg := errCode(p)
	if perr != nil || n != len(out)-1 || seq != 1 || code != 1045 || !strings.HasSuffix(msg, "(session ended): "+core.ErrRevoked.Error()) {
		t.Fatalf("Terminate: %q", out)
	}
	if s.s.Claims() != nil || s.s.Authenticated() || f.p.cache.len() != 0 {
		t.Fatalf("after Terminate: claims %v, %d cached", s.s.Claims(), f.p.cache.len())
	}
	if _, _, act := s.s.Handle(f.env, pkt(0, []byte{comPing}), nil); act != netio.Close {
		t.Fatalf("a terminated session went on: %v", act)
	}
	// The node lost the issuer's feed: the reason says so.
	out = s.s.Terminate(core.ErrUnavailable, nil)
	if _, msg := errCode(out[4:]); !strings.HasSuffix(msg, core.ErrUnavailable.Message) {
		t.Fatalf("unavailable: %q", msg)
	}
}

// TestCommandAllocs: a command's re-check and the test-database rule
// allocate nothing.
func TestCommandAllocs(t *testing.T) {
	f, _, _, _ := policyFixture(t)
	tok, _ := f.mintFlags(t, core.TypeTest, core.FlagTestOnly)
	_, _, c := login(t, f, from("192.0.2.7:40000"), "ci_test", tok)
	ping, sel := pkt(0, []byte{comPing}), pkt(0, []byte("\x03SELECT * FROM t"))
	out := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() {
		_, out, _ = c.s.Handle(f.env, ping, out[:0])
		_, out, _ = c.s.Handle(f.env, sel, out[:0])
	}); n != 0 {
		t.Fatalf("%v allocations per command pair", n)
	}
}

// TestObservedClaimsOnlyWhenVerified: a failed authentication reaches the
// observer with the token's claims (so its id is logged) exactly when the
// token's MAC verified: expired, revoked, or its revocation status unknown
// to a stale node; never for a token that did not verify.
func TestObservedClaimsOnlyWhenVerified(t *testing.T) {
	ring := core.GenerateKeyring(time.Now().Add(-time.Hour))
	f := newFixture(t)
	f.mint = core.NewMinter(ring)
	f.env.Verifier = core.NewVerifier(ring, nil)
	expired := f.token(t, core.AllScopes, -time.Minute)
	forged, _, err := core.NewMinter(core.GenerateKeyring(f.now)).Mint(nil, core.Claims{Type: core.TypeLive,
		ID: core.NewTokenID(), Account: 7, IssuedAt: f.now.Add(-time.Hour).Unix(), ExpiresAt: f.now.Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	stale := f.token(t, core.AllScopes, time.Hour)
	for _, tc := range []struct {
		name     string
		tok      string
		revs     core.RevocationView
		outcome  netio.Outcome
		verified bool
	}{
		{"garbage", "hdb_live_nonsense", nil, netio.OutcomeInvalid, false},
		{"forged", string(forged), nil, netio.OutcomeInvalid, false},
		{"expired", expired, nil, netio.OutcomeExpired, true},
		{"revocation status unknown", stale, unavailable{}, netio.OutcomeUnavailable, true},
	} {
		f.env.Verifier = core.NewVerifier(ring, tc.revs)
		f.obs.outcomes, f.obs.verified = nil, nil
		pk, act, _ := login(t, f, from("192.0.2.7:40000"), "", tc.tok)
		if code, _ := errCode(pk[0]); code != 1045 || act != netio.Close {
			t.Fatalf("%s: %q", tc.name, pk)
		}
		if len(f.obs.outcomes) != 1 || f.obs.outcomes[0] != tc.outcome || f.obs.verified[0] != tc.verified {
			t.Fatalf("%s: observed %v, verified %v", tc.name, f.obs.outcomes, f.obs.verified)
		}
	}
}

// TestNamesChecked: a schema that is not registered gets 1049 "Unknown
// database" after authentication, full or fast, and on USE / COM_INIT_DB
// (the selection stays as it was); no schema, and registered ones, pass.
func TestNamesChecked(t *testing.T) {
	f, _ := fastFixture(t, CacheConfig{})
	reg := policyset.New()
	reg.SetDatabase("main", false)
	p, err := New(Options{Key: key(t), TLS: true, Policy: reg})
	if err != nil {
		t.Fatal(err)
	}
	f.p = p
	tok, _ := f.mintFlags(t, core.TypeLive, 0)
	pk, act, _ := login(t, f, from("192.0.2.7:40000"), "nope", tok)
	if code, msg := errCode(pk[0]); code != 1049 || act != netio.Close || msg != "#42000Unknown database 'nope'" {
		t.Fatalf("schema nope: %d %q %v", code, msg, act)
	}
	if pk, _, _ = login(t, f, from("192.0.2.7:40001"), "main", tok); !isOK(pk) {
		t.Fatalf("schema main: %q", pk)
	}
	pk, act, _ = fastLogin(t, f, from("192.0.2.7:40002"), "nope", tok)
	if code, msg := errCode(pk[0]); len(pk) != 1 || code != 1049 || act != netio.Close || msg != "#42000Unknown database 'nope'" {
		t.Fatalf("fast auth, schema nope: %q", pk)
	}
	pk, _, c := login(t, f, from("192.0.2.8:40003"), "", tok)
	if !isOK(pk) {
		t.Fatalf("no schema: %q", pk)
	}
	for _, q := range []string{"\x02nope", "USE nope", "USE `nope`"} {
		if code, msg := query(t, c, q); code != 1049 || msg != "#42000Unknown database 'nope'" {
			t.Fatalf("%q: %d %q", q, code, msg)
		}
	}
	if c.s.db != nil && len(c.s.db) != 0 {
		t.Fatalf("a refused USE selected %q", c.s.db)
	}
	for _, q := range []string{"\x02main", "USE main"} {
		if code, msg := query(t, c, q); code != 0 || string(c.s.db) != "main" {
			t.Fatalf("%q: %d %q", q, code, msg)
		}
	}
}
