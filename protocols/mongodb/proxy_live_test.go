package mongodb

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/policyset"
	"github.com/heliosdb/auth/internal/testupstream"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/internal/upstream/upstreamtest"
)

// liveProxy is the front end in proxy mode in front of a real FerretDB, in
// this process, so that the race detector watches the sessions, their
// pumps and the pool (e2e/mongoproxy runs heliosd as a separate binary).
type liveProxy struct {
	*upstreamtest.Gateway
	ferret *testupstream.FerretDB
	up     *Upstream
}

func startLiveProxy(t *testing.T) *liveProxy {
	t.Helper()
	return liveProxyTo(t, testupstream.Started(t, testupstream.StartFerretDB))
}

// liveProxyTo is a front end in proxy mode, with a pool of its own, in
// front of f.
func liveProxyTo(t *testing.T, f *testupstream.FerretDB) *liveProxy {
	t.Helper()
	up, err := NewUpstream(UpstreamOptions{URL: f.URL, PoolSize: 8, PoolWait: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	pol := policyset.New()
	pol.SetDatabase("main", false)
	return &liveProxy{Gateway: upstreamtest.Serve(t, netio.Config{}, "mongodb", New(Options{Policy: pol, Upstream: up})), ferret: f, up: up}
}

// client is a mongo-driver client of the proxy with tok.
func (lp *liveProxy) client(t *testing.T, tok string, poolSize uint64) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI("mongodb://default:" + url.QueryEscape(tok) + "@" + lp.Addr +
		"/main?authMechanism=PLAIN&directConnection=true").SetMaxPoolSize(poolSize).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

func TestProxyLive(t *testing.T) {
	lp := startLiveProxy(t)
	full, _ := lp.Mint(t, core.AllScopes)
	read, _ := lp.Mint(t, core.ScopeSet(0).With(core.ScopeDatabaseRead))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("concurrent", func(t *testing.T) {
		const workers, rounds = 4, 40
		upstreamtest.Concurrently(t, workers, func(w int) error {
			coll := lp.client(t, full, 2).Database("main").Collection("live")
			for i := 0; i < rounds; i++ {
				docs := []any{bson.D{{Key: "w", Value: w}, {Key: "i", Value: i}}, bson.D{{Key: "w", Value: w}, {Key: "i", Value: i}, {Key: "copy", Value: true}}}
				if _, err := coll.InsertMany(ctx, docs); err != nil {
					return fmt.Errorf("worker %d round %d insert: %w", w, i, err)
				}
				cur, err := coll.Find(ctx, bson.D{{Key: "w", Value: w}}, options.Find().SetBatchSize(3))
				var got []bson.M
				if err == nil {
					err = cur.All(ctx, &got)
				}
				if err != nil || len(got) != 2*(i+1) {
					return fmt.Errorf("worker %d round %d find: %d %v", w, i, len(got), err)
				}
			}
			return nil
		}, func(int) error {
			coll := lp.client(t, read, 1).Database("main").Collection("live")
			for i := 0; i < rounds; i++ {
				_, err := coll.DeleteMany(ctx, bson.D{})
				if err == nil || !strings.Contains(err.Error(), "database:write") {
					return fmt.Errorf("a read token's delete: %v", err)
				}
				if _, err := coll.CountDocuments(ctx, bson.D{}); err != nil {
					return fmt.Errorf("a read token's count: %v", err)
				}
			}
			return nil
		})
		n, err := lp.client(t, full, 1).Database("main").Collection("live").CountDocuments(ctx, bson.D{})
		if err != nil || n != 2*workers*rounds {
			t.Fatalf("documents on the server: %d %v", n, err)
		}
	})

	t.Run("revoked", func(t *testing.T) {
		// A proxy of its own, whose empty pool dials the session's server
		// connection: the one connection FerretDB sees appear, and the one
		// that must close (others of the earlier subtests may close
		// meanwhile).
		rp := liveProxyTo(t, lp.ferret)
		tok, c := rp.Mint(t, core.AllScopes)
		cl := rp.client(t, tok, 1)
		before, err := lp.ferret.Peers()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Database("main").Collection("live").CountDocuments(ctx, bson.D{}); err != nil {
			t.Fatal(err)
		}
		after, err := lp.ferret.Peers()
		if err != nil {
			t.Fatal(err)
		}
		var session []int
		for p := range after {
			if !before[p] {
				session = append(session, p)
			}
		}
		if len(session) != 1 {
			t.Fatalf("FerretDB saw %d connections appear for one session (ports %v)", len(session), session)
		}
		rp.Revoke(c)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if peers, _ := lp.ferret.Peers(); !peers[session[0]] {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the revoked session's server connection (port %d) is still open", session[0])
			}
		}
	})

	t.Run("server restart", func(t *testing.T) {
		cl := lp.client(t, full, 1)
		coll := cl.Database("main").Collection("live")
		if err := coll.FindOne(ctx, bson.D{}).Err(); err != nil {
			t.Fatal(err)
		}
		if err := lp.ferret.Restart(); err != nil {
			t.Fatal(err)
		}
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "after", Value: "restart"}}); err != nil {
			t.Fatalf("after the restart: %v", err)
		}
	})
}
