package core_test

import (
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/revset"
)

// BenchmarkVerifyRevset1M is BenchmarkVerify with the node's revocation view
// holding one million revoked tokens (Bloom filter + exact array), beside
// BenchmarkVerifyRevsetEmpty: the two together show what a large revocation
// set costs the verification path.
func BenchmarkVerifyRevset1M(b *testing.B) { benchVerifyRevset(b, 1_000_000) }

// BenchmarkVerifyRevsetEmpty is the same verification with an empty view.
func BenchmarkVerifyRevsetEmpty(b *testing.B) { benchVerifyRevset(b, 0) }

func benchVerifyRevset(b *testing.B, n int) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	ring := core.GenerateKeyring(t0)
	set := revset.New(0)
	entries := make([]revset.Entry, n)
	for i := range entries {
		entries[i] = revset.Entry{Kind: revset.KindToken, ID: core.NewTokenID(), Expires: t0.Add(time.Hour).Unix()}
	}
	set.Load(1, t0.Unix(), entries)
	scopes, _ := core.ParseScopes([]string{"database:read", "database:write"})
	tok, _, err := core.NewMinter(ring).Mint(nil, core.Claims{Type: core.TypeLive, ID: core.NewTokenID(), Account: 42,
		IssuedAt: t0.Unix(), ExpiresAt: t0.Add(time.Hour).Unix(), Scopes: scopes})
	if err != nil {
		b.Fatal(err)
	}
	v := core.NewVerifier(ring, set)
	now := t0.Add(time.Minute)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := v.Verify(tok, now)
		if err != nil || c.Require(core.ScopeDatabaseWrite) != nil {
			b.Fatal(err)
		}
	}
}
