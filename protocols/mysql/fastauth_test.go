package mysql

import (
	"bytes"
	"crypto/sha256"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
)

// clientScramble is what caching_sha2_password clients send first:
// SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) ‖ nonce).
func clientScramble(pw string, nonce []byte) []byte {
	s1 := sha256.Sum256([]byte(pw))
	s2 := sha256.Sum256(s1[:])
	m := sha256.Sum256(append(s2[:], nonce...))
	for i := range s1 {
		s1[i] ^= m[i]
	}
	return s1[:]
}

// fastFixture is a fixture whose verifier reads revs.
func fastFixture(t testing.TB, cfg CacheConfig) (*fixture, *core.MemoryRevocations) {
	f := newFixture(t)
	ring := core.GenerateKeyring(f.now.Add(-time.Hour))
	revs := core.NewMemoryRevocations()
	p, err := New(Options{Key: key(t), TLS: true, FastAuth: cfg})
	if err != nil {
		t.Fatal(err)
	}
	f.p, f.mint = p, core.NewMinter(ring)
	f.env.Verifier = core.NewVerifier(ring, revs)
	return f, revs
}

func from(addr string) *netio.ConnInfo {
	return &netio.ConnInfo{Remote: netip.MustParseAddrPort(addr), PlaintextOK: true}
}

// fullAuth authenticates tok on a new connection from info through full
// authentication inside TLS (01 04, then the token).
func fullAuth(t *testing.T, f *fixture, info *netio.ConnInfo, tok string) {
	t.Helper()
	info.TLS = true
	c := newConn(t, f, info)
	pk, _ := c.send(pkt(2, handshakeResponse(clientCaps, "default", "caching_sha2_password", clientScramble(tok, c.nonce()))))
	if len(pk) != 1 || !bytes.Equal(pk[0], []byte{1, 4}) {
		t.Fatalf("expected full authentication, got %x", pk)
	}
	if pk, _ = c.send(pkt(4, append([]byte(tok), 0))); len(pk) != 1 || pk[0][0] != 0 {
		t.Fatalf("full authentication: %q", pk)
	}
}

// fastReply connects from info, sends scramble(nonce) and returns the
// packets the server answered and the connection.
func fastReply(t *testing.T, f *fixture, info *netio.ConnInfo, scramble func(nonce []byte) []byte) ([][]byte, netio.Action, *conn) {
	t.Helper()
	c := newConn(t, f, info)
	pk, act := c.send(pkt(1, handshakeResponse(clientCaps, "default", "caching_sha2_password", scramble(c.nonce()))))
	return pk, act, c
}

func isFastOK(pk [][]byte) bool {
	return len(pk) == 2 && bytes.Equal(pk[0], []byte{1, 3}) && pk[1][0] == 0
}

func isFullAuth(pk [][]byte) bool { return len(pk) == 1 && bytes.Equal(pk[0], []byte{1, 4}) }

func TestFastAuthSecondConnection(t *testing.T) {
	f, _ := fastFixture(t, CacheConfig{})
	tok := f.token(t, 1<<core.ScopeDatabaseRead, time.Hour)
	fullAuth(t, f, from("192.0.2.7:40000"), tok)
	// The next connection from the same address, another port, no TLS.
	pk, act, c := fastReply(t, f, from("192.0.2.7:40001"), func(n []byte) []byte { return clientScramble(tok, n) })
	if !isFastOK(pk) || act != netio.Continue || !c.s.Authenticated() {
		t.Fatalf("fast auth: %x %v", pk, act)
	}
	// The session runs on the cached claims: whoami and the scope checks.
	pk, _ = c.send(pkt(0, []byte("\x03SELECT * FROM helios_whoami()")))
	if len(pk) < 6 || !bytes.Contains(pk[len(pk)-2], []byte("database:read")) {
		t.Fatalf("whoami after fast auth: %q", pk)
	}
	pk, _ = c.send(pkt(0, []byte("\x03DELETE FROM t")))
	if code, msg := errCode(pk[0]); code != 1142 || !strings.Contains(msg, "database:write") {
		t.Fatalf("scope after fast auth: %d %q", code, msg)
	}
	if o := f.obs.outcomes; len(o) != 3 || o[0] != netio.OutcomeOK || o[1] != netio.OutcomeOK {
		t.Fatalf("outcomes %v", o)
	}
	// Through the auth-switch path as well (a client that started with
	// mysql_native_password), from the IPv4-mapped form of the address.
	c = newConn(t, f, from("[::ffff:192.0.2.7]:40003"))
	c.send(pkt(1, handshakeResponse(clientCaps, "default", "mysql_native_password", make([]byte, 20))))
	if pk, _ = c.send(pkt(3, clientScramble(tok, c.nonce()))); !isFastOK(pk) {
		t.Fatalf("fast auth after a switch: %x", pk)
	}
}

func TestFastAuthSequenceIDs(t *testing.T) {
	f, _ := fastFixture(t, CacheConfig{})
	tok := f.token(t, core.AllScopes, time.Hour)
	fullAuth(t, f, from("192.0.2.7:40000"), tok)
	c := newConn(t, f, from("192.0.2.7:40001"))
	_, out, _ := c.s.Handle(f.env, pkt(1, handshakeResponse(clientCaps, "default", "caching_sha2_password", clientScramble(tok, c.nonce()))), nil)
	if !bytes.Equal(out[:6], []byte{2, 0, 0, 2, 1, 3}) || out[6+3] != 3 {
		t.Fatalf("sequence ids: %x", out)
	}
}

func TestFastAuthMisses(t *testing.T) {
	f, _ := fastFixture(t, CacheConfig{})
	tok := f.token(t, core.AllScopes, time.Hour)
	other := f.token(t, core.AllScopes, time.Hour)
	fullAuth(t, f, from("192.0.2.7:40000"), tok)
	for name, tc := range map[string]struct {
		info     *netio.ConnInfo
		scramble func(n []byte) []byte
	}{
		"another address":   {from("192.0.2.8:40000"), func(n []byte) []byte { return clientScramble(tok, n) }},
		"tampered":          {from("192.0.2.7:40001"), func(n []byte) []byte { s := clientScramble(tok, n); s[31] ^= 1; return s }},
		"another nonce":     {from("192.0.2.7:40002"), func(n []byte) []byte { return clientScramble(tok, []byte("01234567890123456789")) }},
		"an uncached token": {from("192.0.2.7:40003"), func(n []byte) []byte { return clientScramble(other, n) }},
		"short scramble":    {from("192.0.2.7:40004"), func(n []byte) []byte { return clientScramble(tok, n)[:20] }},
	} {
		pk, act, c := fastReply(t, f, tc.info, tc.scramble)
		if !isFullAuth(pk) || act != netio.Continue || c.s.Authenticated() {
			t.Fatalf("%s: %x", name, pk)
		}
		// Full authentication still works after the miss.
		if pk, _ = c.send(pkt(3, append([]byte(tok), 0))); len(pk) != 1 || pk[0][0] != 0 {
			t.Fatalf("%s, then the token: %q", name, pk)
		}
	}
	// Disabled: always full authentication.
	f, _ = fastFixture(t, CacheConfig{Disabled: true})
	tok = f.token(t, core.AllScopes, time.Hour)
	fullAuth(t, f, from("192.0.2.7:40000"), tok)
	if pk, _, _ := fastReply(t, f, from("192.0.2.7:40001"), func(n []byte) []byte { return clientScramble(tok, n) }); !isFullAuth(pk) {
		t.Fatalf("disabled cache: %x", pk)
	}
}

func TestFastAuthRecheck(t *testing.T) {
	f, revs := fastFixture(t, CacheConfig{})
	scr := func(tok string) func([]byte) []byte { return func(n []byte) []byte { return clientScramble(tok, n) } }
	revoked := f.token(t, core.AllScopes, time.Hour)
	expiring := f.token(t, core.AllScopes, 10*time.Minute)
	kept := f.token(t, core.AllScopes, time.Hour)
	for _, tok := range []string{revoked, expiring, kept} {
		fullAuth(t, f, from("192.0.2.7:40000"), tok)
	}
	if n := f.p.cache.len(); n != 3 {
		t.Fatalf("cache holds %d entries", n)
	}
	c, err := f.env.Verifier.Verify([]byte(revoked), f.now)
	if err != nil {
		t.Fatal(err)
	}
	revs.RevokeToken(c.ID, c.ExpiresAt)
	pk, act, _ := fastReply(t, f, from("192.0.2.7:40001"), scr(revoked))
	if code, msg := errCode(pk[0]); code != 1045 || act != netio.Close || !strings.Contains(msg, core.MsgRevoked) {
		t.Fatalf("revoked after caching: %d %q", code, msg)
	}
	if n := f.p.cache.len(); n != 2 {
		t.Fatalf("the revoked entry is still cached (%d entries)", n)
	}
	// Evicted: the next attempt is a miss (full authentication, which
	// refuses the token in its turn).
	if pk, _, _ := fastReply(t, f, from("192.0.2.7:40002"), scr(revoked)); !isFullAuth(pk) {
		t.Fatalf("after eviction: %x", pk)
	}
	f.env.Now = f.now.Add(11 * time.Minute)
	pk, act, _ = fastReply(t, f, from("192.0.2.7:40003"), scr(expiring))
	if code, msg := errCode(pk[0]); code != 1045 || act != netio.Close || !strings.Contains(msg, core.MsgExpired) {
		t.Fatalf("expired after caching: %d %q", code, msg)
	}
	if pk, _, _ := fastReply(t, f, from("192.0.2.7:40004"), scr(kept)); !isFastOK(pk) || f.p.cache.len() != 1 {
		t.Fatalf("the valid token: %x, %d entries", pk, f.p.cache.len())
	}
	// Logout-all revokes through the account epoch.
	revs.RevokeAccountBefore(7, f.env.Now.Unix())
	if pk, _, _ := fastReply(t, f, from("192.0.2.7:40005"), scr(kept)); !bytes.Contains(pk[0], []byte("logged out")) || f.p.cache.len() != 0 {
		t.Fatalf("logged out: %q", pk)
	}
	want := []netio.Outcome{netio.OutcomeRevoked, netio.OutcomeExpired, netio.OutcomeOK, netio.OutcomeRevoked}
	if o := f.obs.outcomes[3:]; len(o) != len(want) || o[0] != want[0] || o[1] != want[1] || o[2] != want[2] || o[3] != want[3] {
		t.Fatalf("outcomes %v", f.obs.outcomes)
	}
}

// BenchmarkFastAuthSelect1 is a reconnecting client's whole server side:
// greeting, fast authentication (cache hit and re-check), SELECT 1.
func BenchmarkFastAuthSelect1(b *testing.B) {
	f, _ := fastFixture(b, CacheConfig{})
	tok := f.token(b, core.AllScopes, time.Hour)
	info := from("192.0.2.7:40000")
	claims, err := f.env.Verifier.Verify([]byte(tok), f.now)
	if err != nil {
		b.Fatal(err)
	}
	f.p.cache.add(info.Remote.Addr(), []byte(tok), &claims, f.now)
	var nonce [nonceLen]byte
	copy(nonce[:], "0123456789abcdefghij")
	resp := pkt(1, handshakeResponse(clientCaps, "default", "caching_sha2_password", clientScramble(tok, nonce[:])))
	q := pkt(0, []byte("\x03SELECT 1"))
	out := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		s := f.p.NewSession(info).(*Session)
		out = s.Start(f.env, out[:0])
		s.nonce = nonce
		_, out, _ = s.Handle(f.env, resp, out[:0])
		if !s.Authenticated() {
			b.Fatalf("not authenticated: %q", out)
		}
		_, out, _ = s.Handle(f.env, q, out[:0])
	}
}
