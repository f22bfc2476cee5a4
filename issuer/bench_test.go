package issuer

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/heliosdb/auth/core"
)

// BenchmarkCreateToken measures POST /v1/auth/tokens minus HTTP: validate,
// commit the record (synced, group-committed with the other goroutines'
// records) and mint the token.
func BenchmarkCreateToken(b *testing.B) {
	f := newFixture(b, nil)
	_, login := f.user(b, "bench@example.com")
	req := &CreateTokenRequest{Name: "bench", Scopes: []string{"database:read"}}
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := f.svc.CreateToken(&login, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tokens/s")
}

// BenchmarkRevoke measures synced, concurrent revocations: each goroutine
// waits for its revocation's batch to reach the disk, as DELETE
// /v1/auth/tokens/:id does.
func BenchmarkRevoke(b *testing.B) {
	f := newFixture(b, nil)
	_, login := f.user(b, "bench@example.com")
	ids := make([]core.TokenID, b.N)
	batch := f.store.db.NewBatch()
	now := time.Now().Unix()
	for i := range ids {
		ids[i] = core.NewTokenID()
		r := &TokenRecord{ID: ids[i], Account: login.Account, Name: "b", Type: core.TypeLive, Scopes: core.AllScopes,
			Created: now, ExpiresAt: now + 3600}
		if err := bput(batch, tokenKey(r.Account, r.ID), r); err != nil {
			b.Fatal(err)
		}
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := ids[next.Add(1)-1]
			if _, err := f.store.Submit(&Command{Op: OpRevokeToken, At: now, Account: login.Account, TokenID: id}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "revocations/s")
}

// BenchmarkLogin measures one login with the daemon's argon2id parameters
// (DefaultPasswordParams): the hash check, the record commit and the mint.
func BenchmarkLogin(b *testing.B) {
	f := newFixture(b, func(o *Options) { o.Password = DefaultPasswordParams; o.LoginPerEmail, o.LoginPerIP = 0, 0 })
	if _, err := f.svc.Signup("bench@example.com", "correct-horse-battery", local); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, _, err := f.svc.Login("bench@example.com", "correct-horse-battery", local); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/login")
}
