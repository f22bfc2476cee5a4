package issuer

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/valyala/fasthttp"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/issuer/feed"
)

const benchClusterKey = "bench-cluster-key-0123456789abcdef0123"

// serveFeed serves the store's feed and keyring over loopback HTTP.
func serveFeed(b *testing.B, f *fixture) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	fs := &feed.Server{Source: f.store.FeedSource(), Keyring: f.ring, ClusterKey: benchClusterKey, Stop: stop}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/v1/cluster/feed":
			fs.ServeFeed(ctx)
		case "/v1/cluster/keys":
			fs.ServeKeys(ctx)
		}
	}}
	go srv.Serve(ln)
	b.Cleanup(func() { close(stop); ln.Close(); _ = srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

// BenchmarkSnapshotJoin: a node joining an issuer that holds 1M live token
// revocations. The issuer's in-memory view is filled directly (the snapshot
// is served from it, exactly as after 1M DELETEs, which would take minutes
// to replay); the timed part is what a joining node does: fetch the
// keyring, stream the snapshot over loopback HTTP, build the Bloom filter
// and the exact set, and report ready.
func BenchmarkSnapshotJoin(b *testing.B) {
	const n = 1_000_000
	f := newFixture(b, nil)
	exp := time.Now().Unix() + 86400
	f.store.revs.mu.Lock()
	for range n {
		f.store.revs.tokens[core.NewTokenID()] = exp
	}
	f.store.revs.mu.Unlock()
	url := serveFeed(b, f)
	b.ResetTimer()
	var st struct{ filter, exact, tokens int }
	for range b.N {
		ctx, cancel := context.WithCancel(context.Background())
		start := time.Now()
		fl, err := feed.NewFollower(ctx, feed.FollowerConfig{IssuerURL: url, ClusterKey: benchClusterKey})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		go func() { fl.Run(ctx); close(done) }()
		for !fl.Ready() {
			time.Sleep(time.Millisecond)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "join-ms")
		s := fl.Set().Stats()
		st.filter, st.exact, st.tokens = s.FilterBytes, s.ExactBytes, s.Tokens
		cancel()
		<-done
	}
	b.StopTimer()
	if st.tokens != n {
		b.Fatalf("node holds %d revocations, want %d", st.tokens, n)
	}
	b.ReportMetric(float64(st.filter)/(1<<20), "filter-MiB")
	b.ReportMetric(float64(st.exact)/(1<<20), "exact-MiB")
}

// BenchmarkRevokeWithFeed is BenchmarkRevoke with a node following the
// feed over loopback HTTP: synced, group-committed revocations per second
// while the feed streams them, and the follower caught up at the end.
func BenchmarkRevokeWithFeed(b *testing.B) {
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
	url := serveFeed(b, f)
	ctx, cancel := context.WithCancel(context.Background())
	fl, err := feed.NewFollower(ctx, feed.FollowerConfig{IssuerURL: url, ClusterKey: benchClusterKey})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { fl.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for !fl.Ready() {
		time.Sleep(time.Millisecond)
	}
	var next atomic.Int64
	b.SetParallelism(32)
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
	elapsed := time.Since(start)
	last := f.store.LastSeq()
	for applied, _ := fl.Seq(); applied < last; applied, _ = fl.Seq() {
		time.Sleep(100 * time.Microsecond)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "revocations/s")
	b.ReportMetric(float64(time.Since(start)-elapsed)/1e6, "catchup-ms")
}
