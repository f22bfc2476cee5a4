package core

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/zeebo/blake3"
)

// The benchmarks compare, in one run: our full Verify, the floor (only the
// keyed BLAKE3 tag over the same payload bytes with a reused hasher), and the
// incumbent (a JWT HS256 carrying the same claims).

func benchSetup(b *testing.B) (*Keyring, []byte, Claims) {
	ring := testRing(b)
	c := claimsFor(TypeLive)
	c.Scopes, _ = ParseScopes([]string{"database:read", "database:write"})
	return ring, []byte(mint(b, ring, c)), c
}

func BenchmarkVerify(b *testing.B) {
	ring, tok, _ := benchSetup(b)
	revs := NewMemoryRevocations()
	for i := 0; i < 1000; i++ {
		revs.RevokeToken(NewTokenID(), t0.Add(time.Hour).Unix())
	}
	v := NewVerifier(ring, revs)
	now := t0.Add(time.Minute)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := v.Verify(tok, now)
		if err != nil || c.Require(ScopeDatabaseWrite) != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyParallel(b *testing.B) {
	ring, tok, _ := benchSetup(b)
	revs := NewMemoryRevocations()
	now := t0.Add(time.Minute)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		v := NewVerifier(ring, revs) // one verifier (and hasher) per goroutine
		for pb.Next() {
			c, err := v.Verify(tok, now)
			if err != nil || c.Require(ScopeDatabaseWrite) != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkMACFloor(b *testing.B) {
	ring, tok, _ := benchSetup(b)
	_, body, _ := splitPrefix(tok)
	var raw [binaryLen]byte
	decodeBase62(raw[:], body)
	h, _ := blake3.NewKeyed(ring.Signing().Secret[:])
	var sum [32]byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.Reset()
		_, _ = h.Write(raw[:payloadLen])
		_, _ = h.Digest().Read(sum[:])
	}
}

type jwtClaims struct {
	Type    string   `json:"typ"`
	Account uint64   `json:"acc"`
	Scopes  []string `json:"scp"`
	KeyID   uint16   `json:"kid"`
	jwt.RegisteredClaims
}

func BenchmarkJWTHS256(b *testing.B) {
	ring, _, c := benchSetup(b)
	secret := ring.Signing().Secret[:]
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwtClaims{
		Type: "live", Account: c.Account, Scopes: c.Scopes.Strings(), KeyID: 1,
		RegisteredClaims: jwt.RegisteredClaims{
			ID:        c.ID.String(),
			IssuedAt:  jwt.NewNumericDate(time.Unix(c.IssuedAt, 0)),
			ExpiresAt: jwt.NewNumericDate(time.Unix(c.ExpiresAt, 0)),
		},
	}).SignedString(secret)
	if err != nil {
		b.Fatal(err)
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(func() time.Time { return t0.Add(time.Minute) }))
	keyFn := func(*jwt.Token) (any, error) { return secret, nil }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var cl jwtClaims
		if _, err := parser.ParseWithClaims(tok, &cl, keyFn); err != nil {
			b.Fatal(err)
		}
	}
}
