package replica

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/issuer"
)

// BenchmarkRevoke compares, in one run, revocations on a single issuer
// store (synced group commits) and on a three-replica raft cluster
// (submitted on the leader, and on a follower that forwards): commit
// latency p50/p99 with one writer, revocations per second with 64.
//
//	go test -run '^$' -bench Revoke -benchtime 2000x ./issuer/replica
func BenchmarkRevoke(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("single/writers=%d", writers), func(b *testing.B) {
			st, err := issuer.OpenWith(filepath.Join(b.TempDir(), "issuer"), issuer.StoreOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			runRevokes(b, st, writers)
		})
		for _, via := range []string{"leader", "follower"} {
			if writers > 1 && via == "follower" {
				continue
			}
			b.Run(fmt.Sprintf("raft3-%s/writers=%d", via, writers), func(b *testing.B) {
				rs := cluster(b, 3, nil)
				target := leaderOf(b, rs)
				time.Sleep(time.Second) // past the first elections' settling
				if via == "follower" {
					for _, r := range rs {
						if r != target {
							target = r
							break
						}
					}
				}
				runRevokes(b, target.store, writers)
			})
		}
	}
}

// runRevokes creates b.N tokens (untimed), then revokes them with
// writers goroutines and reports latency percentiles and throughput.
func runRevokes(b *testing.B, st *issuer.Store, writers int) {
	res, err := submit(st, &issuer.Command{Op: issuer.OpSignup, At: time.Now().Unix(), Email: fmt.Sprintf("b%d@example.com", time.Now().UnixNano()), Hash: "x"})
	if err != nil {
		b.Fatal(err)
	}
	acc := res.Account.ID
	ids := make([]core.TokenID, b.N)
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
				ids[i] = core.NewTokenID()
				now := time.Now().Unix()
				if _, err := submit(st, &issuer.Command{Op: issuer.OpCreateToken, At: now, Token: &issuer.TokenRecord{ID: ids[i], Account: acc,
					Type: core.TypeLive, Created: now, ExpiresAt: now + 3600}}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	lat := make([]time.Duration, b.N)
	next.Store(0)
	b.ResetTimer()
	start := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
				t0 := time.Now()
				_, err := submit(st, &issuer.Command{Op: issuer.OpRevokeToken, At: t0.Unix(), Account: acc, TokenID: ids[i]})
				if err != nil && !errors.Is(err, issuer.ErrTokenRevoked) { // a retry after an unknown outcome

					b.Error(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "revocations/s")
}

// submit retries a command that met no quorum (an election), as a
// client would; a revocation retried may find itself applied.
func submit(st *issuer.Store, c *issuer.Command) (issuer.Result, error) {
	for {
		res, err := st.Submit(c)
		if !errors.Is(err, issuer.ErrNoQuorum) {
			return res, err
		}
	}
}
