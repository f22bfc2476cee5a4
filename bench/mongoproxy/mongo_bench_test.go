// Package mongoproxy benchmarks heliosd's MongoDB proxy mode against the
// server behind it, in one run and interleaved (gateway, direct, gateway,
// …) so that ratios hold on a shared machine: mongo-driver v2 inserts and
// finds by _id (persistent clients), and the rate of new clients that
// connect, authenticate and ping. TestMain's setup starts FerretDB 1.24
// (SQLite) twice — without authentication, and with a SCRAM-SHA-256 user —
// and heliosd in front of each. Run with:
//
//	go test ./bench/mongoproxy -run '^$' -bench . -benchtime 1x
//
// Every figure is reported as a metric (ops-gateway, ops-direct, the ratio;
// clients/s of each target). The package is never needed by the daemon.
package mongoproxy

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/benchcmp"
	"github.com/heliosdb/auth/internal/testdaemon"
	"github.com/heliosdb/auth/internal/testupstream"
)

// poolSize is the gateway's server connections per role: every benchmark
// client holds one.
const poolSize = 60

var (
	plain, auth *testupstream.FerretDB
	gwPlain     string // heliosd in front of plain
	gwAuth      string // heliosd in front of auth
	token       string // a full-access token of both daemons
	servers     benchcmp.Servers
)

func TestMain(m *testing.M) { servers.Main(m) }

// setup starts the servers once, for the first benchmark that needs them.
func setup(b *testing.B) {
	b.Helper()
	servers.Start(b, func() (err error) {
		if plain, err = testupstream.StartFerretDB(); err != nil {
			return err
		}
		servers.AtExit(plain.Stop)
		if auth, err = testupstream.StartFerretDBWithAuth(); err != nil {
			return err
		}
		servers.AtExit(auth.Stop)
		// One keyring for both daemons: the first's data directory is the
		// second's too would mix their stores, so each mints its own token
		// from the same claims.
		d1 := servers.Daemon(b, testdaemon.WithArgs("--mongo-upstream", plain.URL, "--mongo-pool-size", strconv.Itoa(poolSize),
			"--max-conns-per-ip", "100000"))
		d2 := servers.Daemon(b, testdaemon.WithArgs("--mongo-upstream", auth.URL, "--mongo-pool-size", strconv.Itoa(poolSize),
			"--max-conns-per-ip", "100000"))
		claims := core.Claims{Account: 1, Scopes: core.AllScopes, ExpiresAt: time.Now().Add(24 * time.Hour).Unix()}
		token = d1.Mint(b, claims)
		tokenAuth = d2.Mint(b, claims)
		gwPlain, gwAuth = d1.Mongo, d2.Mongo
		return nil
	})
}

// tokenAuth is the token of the daemon in front of auth.
var tokenAuth string

// gatewayURI is a client's connection string for a gateway.
func gatewayURI(addr, tok string) string {
	return "mongodb://default:" + url.QueryEscape(tok) + "@" + addr + "/main?authMechanism=PLAIN&directConnection=true"
}

// target is one endpoint the same workload runs against.
type target struct{ name, uri string }

// run runs work on clients goroutines for d and returns the operations per
// second; work gets the goroutine's number and its iteration.
func run(b *testing.B, d time.Duration, clients int, work func(g, i int) error) float64 {
	b.Helper()
	var ops atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	stop := time.Now().Add(d)
	start := time.Now()
	for g := 0; g < clients; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; time.Now().Before(stop); i++ {
				if err := work(g, i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				ops.Add(1)
			}
		}(g)
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		b.Fatal(err)
	}
	return float64(ops.Load()) / time.Since(start).Seconds()
}

// connectClient is a persistent mongo-driver client.
func connectClient(b *testing.B, uri string, pool uint64) *mongo.Client {
	b.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetMaxPoolSize(pool).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkInsertFind is mongo-driver InsertOne and FindOne by _id, with 1
// and 4 goroutines sharing one client (its pool grows to as many
// connections), through the gateway and straight to FerretDB, interleaved:
// after a warm-up, 5 rounds of 3s per target and operation, in ABBA order.
// The ratio is the median of the rounds' ratios. (FerretDB 1.24 on SQLite
// serves about 2,000 of either per second to one client, and fewer, not
// more, to many: more goroutines would measure its contention.)
func BenchmarkInsertFind(b *testing.B) {
	setup(b)
	for _, clients := range []int{1, 4} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) { insertFind(b, clients) })
	}
}

func insertFind(b *testing.B, clients int) {
	const rounds, seconds = 5, 3
	targets := []target{{"gateway", gatewayURI(gwPlain, token)}, {"direct", plain.URL + "?directConnection=true"}}
	ctx := context.Background()
	// Inserts go to one collection per target; finds read 500 documents
	// seeded in another (a collection that grows with the inserts would
	// measure FerretDB's scans, not the gateway).
	colls, finds := map[string]*mongo.Collection{}, map[string]*mongo.Collection{}
	for _, t := range targets {
		c := connectClient(b, t.uri, uint64(clients))
		defer c.Disconnect(ctx)
		colls[t.name] = c.Database("main").Collection(fmt.Sprintf("bench_insert_%s_%d", t.name, clients))
		finds[t.name] = c.Database("main").Collection(fmt.Sprintf("bench_find_%s_%d", t.name, clients))
		_ = colls[t.name].Drop(ctx)
		_ = finds[t.name].Drop(ctx)
		seed := make([]any, 500)
		for i := range seed {
			seed[i] = bson.D{{Key: "_id", Value: i}, {Key: "v", Value: i}, {Key: "s", Value: "payload-of-some-size"}}
		}
		if _, err := finds[t.name].InsertMany(ctx, seed); err != nil {
			b.Fatal(err)
		}
	}
	for _, op := range []string{"insert", "find"} {
		res := benchcmp.Rounds{}
		for r := -1; r < rounds; r++ { // round -1 warms up
			for _, t := range benchcmp.Order(targets, r+1) {
				coll, find := colls[t.name], finds[t.name]
				var work func(g, i int) error
				switch op {
				case "insert":
					work = func(g, i int) error {
						_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("%d-%d-%d", r, g, i)}, {Key: "v", Value: i}, {Key: "s", Value: "payload-of-some-size"}})
						return err
					}
				case "find":
					work = func(g, i int) error {
						var doc bson.Raw
						return find.FindOne(ctx, bson.D{{Key: "_id", Value: (g*31 + i) % 500}}).Decode(&doc)
					}
				}
				v := run(b, seconds*time.Second, clients, work)
				if r >= 0 {
					res[t.name] = append(res[t.name], v)
				}
			}
		}
		g, d, ratio := benchcmp.Median(res["gateway"]), benchcmp.Median(res["direct"]), benchcmp.Median(res.Ratios("gateway", "direct"))
		b.ReportMetric(g, op+"-ops/s-gateway")
		b.ReportMetric(d, op+"-ops/s-direct")
		b.ReportMetric(ratio, op+"-gateway/direct")
		b.Logf("%s: gateway %.0f ops/s, direct %.0f ops/s; gateway/direct %.0f%% (median of the rounds' ratios %.2f); %d interleaved rounds of %ds, %d goroutines; rounds: %s",
			op, g, d, 100*ratio, res.Ratios("gateway", "direct"), rounds, seconds, clients, res)
	}
}

// BenchmarkConnectAuthPing is new clients per second: mongo.Connect, the
// handshake and authentication of one application connection, ping,
// Disconnect; 8 goroutines. The gateway (SASL PLAIN with a token, a pooled
// server connection) against FerretDB with SCRAM-SHA-256, and FerretDB
// without authentication for reference; interleaved in ABBA order, 5
// rounds of 3s.
func BenchmarkConnectAuthPing(b *testing.B) {
	setup(b)
	const clients, rounds, seconds = 8, 5, 3
	targets := []target{
		{"gateway", gatewayURI(gwAuth, tokenAuth)},
		{"ferretdb-scram", auth.URL + "?directConnection=true&authMechanism=SCRAM-SHA-256"},
		{"ferretdb-noauth", plain.URL + "?directConnection=true"},
	}
	ctx := context.Background()
	res := benchcmp.Rounds{}
	for r := 0; r < rounds; r++ {
		for _, t := range benchcmp.Order(targets, r) {
			o := options.Client().ApplyURI(t.uri).SetMaxPoolSize(1).SetServerSelectionTimeout(10 * time.Second)
			res[t.name] = append(res[t.name], run(b, seconds*time.Second, clients, func(g, i int) error {
				c, err := mongo.Connect(o)
				if err != nil {
					return err
				}
				err = c.Ping(ctx, nil)
				_ = c.Disconnect(ctx)
				return err
			}))
		}
	}
	for _, t := range targets {
		b.ReportMetric(benchcmp.Median(res[t.name]), "clients/s-"+t.name)
	}
	g, s, ratio := benchcmp.Median(res["gateway"]), benchcmp.Median(res["ferretdb-scram"]), benchcmp.Median(res.Ratios("gateway", "ferretdb-scram"))
	b.ReportMetric(ratio, "gateway/scram")
	b.Logf("connect+auth+ping+disconnect: gateway %.0f clients/s, FerretDB SCRAM %.0f (gateway/SCRAM %.0f%%, median of the rounds' ratios), FerretDB without auth %.0f; rounds: %s",
		g, s, 100*ratio, benchcmp.Median(res["ferretdb-noauth"]), res)
}
