package core

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func testRing(t testing.TB) *Keyring {
	t.Helper()
	r, err := NewKeyring(1, GenerateKey(1, t0))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mint(t testing.TB, ring *Keyring, c Claims) string {
	t.Helper()
	b, _, err := NewMinter(ring).Mint(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func claimsFor(typ TokenType) Claims {
	return Claims{
		Type: typ, ID: NewTokenID(), Account: 42,
		IssuedAt: t0.Unix(), ExpiresAt: t0.Add(DefaultLifetimes().Default(typ)).Unix(),
		Scopes: AllScopes,
	}
}

func TestRoundTripEachType(t *testing.T) {
	ring := testRing(t)
	v := NewVerifier(ring, nil)
	for _, typ := range []TokenType{TypeLive, TypeTest, TypeService} {
		c := claimsFor(typ)
		if typ == TypeTest {
			c.Flags = FlagTestOnly
		}
		if typ == TypeService {
			c.Scopes = 1<<ScopeDatabaseRead | 1<<ScopeBranchCreate
			c.Flags = FlagIPPolicy
		}
		tok := mint(t, ring, c)
		if !strings.HasPrefix(tok, typ.Prefix()) {
			t.Fatalf("%s: token %q lacks prefix", typ, tok[:12])
		}
		if len(tok) != len(typ.Prefix())+BodyLen || len(tok) > MaxTokenLen {
			t.Fatalf("%s: length %d", typ, len(tok))
		}
		if !LooksLikeToken(tok) {
			t.Fatalf("%s: LooksLikeToken false", typ)
		}
		got, err := v.Verify([]byte(tok), t0.Add(time.Minute))
		if err != nil {
			t.Fatalf("%s: verify: %v", typ, err)
		}
		c.Version, c.KeyID = FormatVersion, 1
		if got != c {
			t.Fatalf("%s: claims\n got %+v\nwant %+v", typ, got, c)
		}
	}
}

func TestEveryBitTamperedFails(t *testing.T) {
	ring := testRing(t)
	v := NewVerifier(ring, nil)
	tok := mint(t, ring, claimsFor(TypeLive))
	_, body, _ := splitPrefix([]byte(tok))
	var raw [binaryLen]byte
	if !decodeBase62(raw[:], body) {
		t.Fatal("decode")
	}
	// Flip every bit of the binary form. With the CRC recomputed (a forger who
	// knows the public format) the MAC must catch it; without, the checksum.
	for i := 0; i < binaryLen*8; i++ {
		for _, fixCRC := range []bool{false, true} {
			mut := raw
			mut[i/8] ^= 1 << (i % 8)
			if fixCRC && i/8 < offCRC {
				putCRC(mut[:])
			}
			s := "hdb_live_" + string(appendBase62(nil, mut[:]))
			if _, err := v.Verify([]byte(s), t0); err == nil {
				t.Fatalf("bit %d (fixCRC=%v) flipped: token still verifies", i, fixCRC)
			}
		}
	}
	// And every character of the text form replaced.
	for i := 0; i < len(tok); i++ {
		b := []byte(tok)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		if _, err := v.Verify(b, t0); err == nil {
			t.Fatalf("char %d changed: token still verifies", i)
		}
	}
}

func TestFieldTamperErrors(t *testing.T) {
	ring := testRing(t)
	v := NewVerifier(ring, nil)
	c := claimsFor(TypeLive)
	c.Scopes = 1 << ScopeDatabaseRead
	tok := mint(t, ring, c)
	_, body, _ := splitPrefix([]byte(tok))
	var raw [binaryLen]byte
	decodeBase62(raw[:], body)
	cases := []struct {
		name string
		off  int
		want error
	}{
		{"version", offVersion, ErrVersion},
		{"key id", offKeyID + 1, ErrUnknownKey},
		{"token id", offID, ErrBadMAC},
		{"account", offAccount + 7, ErrBadMAC},
		{"issued", offIssued + 3, ErrBadMAC},
		{"expires", offExpires + 3, ErrBadMAC},
		{"scopes (escalation)", offScopes + 3, ErrBadMAC},
		{"flags", offFlags, ErrBadMAC},
		{"tag", offTag + 5, ErrBadMAC},
	}
	for _, tc := range cases {
		mut := raw
		mut[tc.off] ^= 0x02
		putCRC(mut[:])
		s := "hdb_live_" + string(appendBase62(nil, mut[:]))
		if _, err := v.Verify([]byte(s), t0); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

func putCRC(raw []byte) {
	c := crcOf(raw[:offCRC])
	raw[offCRC], raw[offCRC+1], raw[offCRC+2], raw[offCRC+3] = byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
}

func TestForeignKeyFails(t *testing.T) {
	ringA, ringB := testRing(t), testRing(t) // both id 1, different secrets
	tok := mint(t, ringA, claimsFor(TypeLive))
	if _, err := NewVerifier(ringB, nil).Verify([]byte(tok), t0); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("same id, other secret: %v", err)
	}
	ringC, _ := NewKeyring(7, GenerateKey(7, t0))
	if _, err := NewVerifier(ringC, nil).Verify([]byte(tok), t0); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("ring without key 1: %v", err)
	}
}

func TestRotationAndRetirement(t *testing.T) {
	ring := testRing(t)
	v := NewVerifier(ring, nil)
	old := mint(t, ring, claimsFor(TypeLive))
	id, err := ring.Rotate(t0)
	if err != nil || id != 2 {
		t.Fatalf("rotate: %d %v", id, err)
	}
	fresh := mint(t, ring, claimsFor(TypeLive))
	for _, tok := range []string{old, fresh} {
		if _, err := v.Verify([]byte(tok), t0); err != nil {
			t.Fatalf("after rotation: %v", err)
		}
	}
	if err := ring.Retire(2); err == nil {
		t.Fatal("retiring the signing key must fail")
	}
	if err := ring.Retire(1); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify([]byte(old), t0); !errors.Is(err, ErrKeyRetired) {
		t.Fatalf("retired key: %v", err)
	}
	var te *Error
	if _, err := v.Verify([]byte(old), t0); !errors.As(err, &te) || te.Kind != KindRevoked || te.Code() != CodeAuthRequired {
		t.Fatalf("retired key kind: %v", err)
	}
	if _, err := v.Verify([]byte(fresh), t0); err != nil {
		t.Fatalf("new key after retiring old: %v", err)
	}
}

func TestExpiry(t *testing.T) {
	ring := testRing(t)
	v := NewVerifier(ring, nil)
	c := claimsFor(TypeTest)
	tok := mint(t, ring, c)
	if _, err := v.Verify([]byte(tok), t0.Add(23*time.Hour)); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	_, err := v.Verify([]byte(tok), t0.Add(24*time.Hour))
	var te *Error
	if !errors.Is(err, ErrExpired) || !errors.As(err, &te) || te.Code() != CodeAuthExpired || te.Message != "Authentication token has expired" {
		t.Fatalf("at expiry: %v", err)
	}
	if _, err := v.Verify([]byte(tok), t0.Add(-time.Hour)); !errors.Is(err, ErrNotYetValid) {
		t.Fatalf("issued in the future: %v", err)
	}
}

func TestWrongPrefixForType(t *testing.T) {
	ring := testRing(t)
	v := NewVerifier(ring, nil)
	tok := mint(t, ring, claimsFor(TypeTest))
	body := strings.TrimPrefix(tok, "hdb_test_")
	for _, p := range []string{"hdb_live_", "hdb_svc_"} {
		if _, err := v.Verify([]byte(p+body), t0); !errors.Is(err, ErrTypeMismatch) {
			t.Fatalf("%s on a test token: %v", p, err)
		}
	}
	for _, bad := range []string{"hdb_prod_" + body, "HDB_test_" + body, "test_" + body, body, "hdb_"} {
		if _, err := v.Verify([]byte(bad), t0); !errors.Is(err, ErrPrefix) {
			t.Fatalf("%q: %v", bad[:min(12, len(bad))], err)
		}
	}
}

func TestWhitespaceAndGarbage(t *testing.T) {
	ring := testRing(t)
	v := NewVerifier(ring, nil)
	tok := mint(t, ring, claimsFor(TypeLive))
	for _, s := range []string{" " + tok, tok + "\n", tok + " ", "\t" + tok, tok[:20] + " " + tok[20:]} {
		_, err := v.Verify([]byte(s), t0)
		if !errors.Is(err, ErrWhitespace) || !strings.Contains(err.Error(), "whitespace") {
			t.Fatalf("whitespace: %v", err)
		}
	}
	if _, err := v.Verify(nil, t0); !errors.Is(err, ErrMissing) {
		t.Fatalf("empty: %v", err)
	}
	for _, s := range []string{tok[:len(tok)-1], tok + "A", tok[:30] + "-" + tok[31:], "hdb_live_zzzzzzzzzzz" + tok[20:]} {
		if _, err := v.Verify([]byte(s), t0); !errors.Is(err, ErrMalformed) {
			t.Fatalf("malformed %q: %v", s, err)
		}
	}
}

func TestRevocationView(t *testing.T) {
	ring := testRing(t)
	revs := NewMemoryRevocations()
	v := NewVerifier(ring, revs)
	a, b, c := claimsFor(TypeLive), claimsFor(TypeLive), claimsFor(TypeService)
	c.Account = 7
	ta, tb, tc := mint(t, ring, a), mint(t, ring, b), mint(t, ring, c)
	revs.RevokeToken(a.ID, a.ExpiresAt)
	if _, err := v.Verify([]byte(ta), t0); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked token: %v", err)
	}
	if _, err := v.Verify([]byte(tb), t0); err != nil {
		t.Fatalf("other token: %v", err)
	}
	revs.RevokeAccountBefore(42, t0.Unix()+1)
	if _, err := v.Verify([]byte(tb), t0); !errors.Is(err, ErrLoggedOut) {
		t.Fatalf("logout-all: %v", err)
	}
	if _, err := v.Verify([]byte(tc), t0); err != nil {
		t.Fatalf("other account after logout-all: %v", err)
	}
	later := claimsFor(TypeLive)
	later.IssuedAt = t0.Unix() + 1
	if _, err := v.Verify([]byte(mint(t, ring, later)), t0.Add(time.Second)); err != nil {
		t.Fatalf("token issued after logout-all: %v", err)
	}
	revs.RetireKey(1)
	if _, err := v.Verify([]byte(tc), t0); !errors.Is(err, ErrKeyRetired) {
		t.Fatalf("retired key in view: %v", err)
	}
	if n := revs.Prune(a.ExpiresAt + 1); n != 0 {
		t.Fatalf("prune left %d", n)
	}
}

func TestScopeChecks(t *testing.T) {
	ring := testRing(t)
	v := NewVerifier(ring, nil)
	c := claimsFor(TypeService)
	c.Scopes, _ = ParseScopes([]string{"database:read", "branch:*"})
	got, err := v.Verify([]byte(mint(t, ring, c)), t0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Require(ScopeDatabaseRead) != nil || got.Require(ScopeBranchMerge) != nil {
		t.Fatal("held scopes refused")
	}
	err = got.Require(ScopeDatabaseWrite)
	var te *Error
	if !errors.As(err, &te) || te.Code() != "FORBIDDEN" || err.Error() != "Token does not have required scope: database:write" {
		t.Fatalf("missing scope: %v", err)
	}
}

func TestMintRejectsBadClaims(t *testing.T) {
	m := NewMinter(testRing(t))
	for _, c := range []Claims{
		{Type: 9, IssuedAt: 1, ExpiresAt: 2},
		{Type: TypeLive, IssuedAt: 5, ExpiresAt: 5},
		{Type: TypeLive, IssuedAt: 1, ExpiresAt: 1 << 33},
		{Type: TypeLive, IssuedAt: 1, ExpiresAt: 2, Scopes: 1 << 20},
	} {
		if _, _, err := m.Mint(nil, c); err == nil {
			t.Fatalf("minted %+v", c)
		}
	}
}

func TestTokenIDString(t *testing.T) {
	id := NewTokenID()
	s := id.String()
	if !strings.HasPrefix(s, "tok_") || len(s) != 21 {
		t.Fatalf("id %q", s)
	}
	back, err := ParseTokenID(s)
	if err != nil || back != id {
		t.Fatalf("parse: %v", err)
	}
	for _, bad := range []string{"", "tok_", "tok_abc", "xyz_" + s[4:], s + "0", "tok_zzzzzzzzzzzzzzzzz"} {
		if _, err := ParseTokenID(bad); err == nil {
			t.Fatalf("parsed %q", bad)
		}
	}
}

func TestVerifyAllocatesNothing(t *testing.T) {
	ring := testRing(t)
	revs := NewMemoryRevocations()
	v := NewVerifier(ring, revs)
	good := claimsFor(TypeLive)
	revoked := claimsFor(TypeLive)
	revs.RevokeToken(revoked.ID, revoked.ExpiresAt)
	tokens := map[string][]byte{
		"valid":      []byte(mint(t, ring, good)),
		"revoked":    []byte(mint(t, ring, revoked)),
		"garbage":    []byte("hdb_live_!!!!"),
		"empty":      nil,
		"prefix":     []byte("Bearer xyz"),
		"whitespace": []byte(" hdb_live_x"),
	}
	bad := []byte(mint(t, ring, good))
	bad[40] ^= 1
	tokens["tampered"] = bad
	for name, tok := range tokens {
		allocs := testing.AllocsPerRun(200, func() {
			c, err := v.Verify(tok, t0)
			if err == nil {
				_ = c.Require(ScopeDatabaseWrite)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %.1f allocs per Verify", name, allocs)
		}
	}
	expired := []byte(mint(t, ring, good))
	if a := testing.AllocsPerRun(200, func() { _, _ = v.Verify(expired, t0.Add(30*24*time.Hour)) }); a != 0 {
		t.Errorf("expired: %.1f allocs", a)
	}
}

func TestLifetimes(t *testing.T) {
	l := DefaultLifetimes()
	exp, _ := l.Expiry(TypeLive, t0, 0)
	if exp.Sub(t0) != 7*24*time.Hour {
		t.Fatalf("live default %v", exp.Sub(t0))
	}
	exp, _ = l.Expiry(TypeService, t0, 0)
	if exp.Sub(t0) != 90*24*time.Hour {
		t.Fatalf("svc default %v", exp.Sub(t0))
	}
	exp, _ = l.Expiry(TypeTest, t0, 0)
	if exp.Sub(t0) != 24*time.Hour {
		t.Fatalf("test default %v", exp.Sub(t0))
	}
	exp, _ = l.Expiry(TypeLive, t0, 30)
	if exp.Sub(t0) != 30*24*time.Hour {
		t.Fatalf("30 days %v", exp.Sub(t0))
	}
	for _, d := range []int{-1, 366} {
		if _, err := l.Expiry(TypeLive, t0, d); err == nil {
			t.Fatalf("%d days accepted", d)
		}
	}
	if _, err := l.Expiry(TypeTest, t0, 2); err == nil {
		t.Fatal("2-day test token accepted")
	}
}

func TestMemoryRevocationsPrefixCollision(t *testing.T) {
	revs := NewMemoryRevocations()
	a := NewTokenID()
	b := a
	b[11] ^= 0xFF // same 8-byte map key, different id
	c := a
	c[10] ^= 0x01
	revs.RevokeToken(a, 100)
	if revs.Check(b, 1, 1, 1) != NotRevoked {
		t.Fatal("an id sharing the prefix of a revoked id reads as revoked")
	}
	revs.RevokeToken(b, 100)
	for _, id := range []TokenID{a, b} {
		if revs.Check(id, 1, 1, 1) != RevokedToken {
			t.Fatalf("%x not revoked", id)
		}
	}
	if revs.Check(c, 1, 1, 1) != NotRevoked {
		t.Fatal("unrevoked colliding id reads as revoked")
	}
	if n := revs.Prune(101); n != 0 {
		t.Fatalf("prune left %d", n)
	}
}

// TestVerifiedOnlyWhenMACVerified: Claims.Verified is true exactly when
// Verify read the claims from a token whose MAC verified (success, expired,
// revoked, logged out, a key retired by the revocation view, unavailable)
// and false for every error before the MAC or that leaves the claims zero.
func TestVerifiedOnlyWhenMACVerified(t *testing.T) {
	ring := testRing(t)
	revs := NewMemoryRevocations()
	v := NewVerifier(ring, revs)
	good := claimsFor(TypeLive)
	tok := mint(t, ring, good)
	revoked := claimsFor(TypeLive)
	revoked.Account = 9
	revs.RevokeToken(revoked.ID, revoked.ExpiresAt)
	loggedOut := claimsFor(TypeLive)
	loggedOut.Account = 10
	revs.RevokeAccountBefore(10, t0.Unix()+1)
	other, _ := NewKeyring(1, GenerateKey(1, t0)) // same key id, other secret
	forged := mint(t, other, good)
	cases := []struct {
		name     string
		tok      string
		at       time.Time
		err      error
		verified bool
	}{
		{"valid", tok, t0, nil, true},
		{"expired", tok, t0.Add(30 * 24 * time.Hour), ErrExpired, true},
		{"revoked", mint(t, ring, revoked), t0, ErrRevoked, true},
		{"logged out", mint(t, ring, loggedOut), t0, ErrLoggedOut, true},
		{"missing", "", t0, ErrMissing, false},
		{"prefix", "hdb_nope_" + tok[9:], t0, ErrPrefix, false},
		{"malformed", tok[:len(tok)-1], t0, ErrMalformed, false},
		{"bad MAC", forged, t0, ErrBadMAC, false},
		{"not yet valid", tok, t0.Add(-time.Hour), ErrNotYetValid, false},
	}
	for _, tc := range cases {
		c, err := v.Verify([]byte(tc.tok), tc.at)
		if !errors.Is(err, tc.err) {
			t.Fatalf("%s: got %v, want %v", tc.name, err, tc.err)
		}
		if c.Verified() != tc.verified {
			t.Errorf("%s: Verified() = %v, want %v", tc.name, c.Verified(), tc.verified)
		}
		if tc.verified && c.ID != good.ID && c.ID != revoked.ID && c.ID != loggedOut.ID {
			t.Errorf("%s: claims of another token", tc.name)
		}
	}
	revs.RetireKey(1) // retired by the revocation view: after the MAC
	if c, err := v.Verify([]byte(tok), t0); !errors.Is(err, ErrKeyRetired) || !c.Verified() {
		t.Fatalf("key retired by the view: %v, verified %v", err, c.Verified())
	}
	ring2 := testRing(t)
	tok2 := mint(t, ring2, good)
	if _, err := ring2.Rotate(t0); err != nil {
		t.Fatal(err)
	}
	if err := ring2.Retire(1); err != nil {
		t.Fatal(err)
	}
	// Retired in the keyring: refused before the claims are read.
	if c, err := NewVerifier(ring2, nil).Verify([]byte(tok2), t0); !errors.Is(err, ErrKeyRetired) || c.Verified() {
		t.Fatalf("key retired in the keyring: %v, verified %v", err, c.Verified())
	}
}
