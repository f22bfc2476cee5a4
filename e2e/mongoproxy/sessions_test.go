package mongoproxy

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testdaemon"
)

// onePool gives a client one application connection, so that it holds one
// gateway session (and so one server connection).
func onePool(o *options.ClientOptions) { o.SetMaxPoolSize(1) }

// TestRevocationClosesServerConnection: revoking a token ends its open
// session, and the session's server connection is closed — not returned
// to the pool for the next client.
func TestRevocationClosesServerConnection(t *testing.T) {
	d := daemonWith(t)
	ctx := ctxT(t)
	owner := d.NewUser(t)
	tok, id := d.CreateToken(t, owner, map[string]any{"name": "revoked-mid-session", "scopes": []string{"*"}})
	c := connect(t, d, tok, "main", onePool)
	if err := c.Database("main").Collection("rev").FindOne(ctx, bson.D{}).Err(); err != nil && err != mongo.ErrNoDocuments {
		t.Fatal(err)
	}
	before := serverConns(t, ferret)
	d.Revoke(t, owner, id)
	waitFor(t, 10*time.Second, "the revoked session's server connection is still open (returned to the pool?)", func() bool {
		return serverConns(t, ferret) == before-1
	})
	err := c.Database("main").Collection("rev").FindOne(ctx, bson.D{}).Err()
	if err == nil || err == mongo.ErrNoDocuments {
		t.Fatal("the session outlived its revoked token")
	}
	if !strings.Contains(err.Error(), core.MsgRevoked) {
		t.Logf("after the revocation: %v", err)
	}
}

// TestUpstreamRestart: the server restarts under an open, idle session:
// its next command runs on a new server connection (no retry by the
// driver: retries are off), and new clients get healthy connections (the
// pool drops the dead idle ones).
func TestUpstreamRestart(t *testing.T) {
	d := daemonWith(t)
	ctx := ctxT(t)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: readWrite})
	noRetry := func(o *options.ClientOptions) { o.SetRetryReads(false).SetRetryWrites(false).SetMaxPoolSize(1) }
	idle := connect(t, d, tok, "main", noRetry)
	if err := idle.Ping(ctx, nil); err != nil {
		t.Fatal(err)
	}
	idle.Disconnect(ctx) // its server connection goes back to the pool
	c := connect(t, d, tok, "main", noRetry)
	coll := c.Database("main").Collection("restart")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "before", Value: true}}); err != nil {
		t.Fatal(err)
	}
	if err := ferret.Restart(); err != nil {
		t.Fatal(err)
	}
	if n, err := coll.CountDocuments(ctx, bson.D{{Key: "before", Value: true}}); err != nil || n < 1 {
		t.Fatalf("the open session after the server's restart: %d %v", n, err)
	}
	for i := 0; i < 3; i++ {
		c2 := connect(t, d, tok, "main", noRetry)
		if _, err := c2.Database("main").Collection("restart").InsertOne(ctx, bson.D{{Key: "after", Value: i}}); err != nil {
			t.Fatalf("client %d after the restart: %v", i, err)
		}
		c2.Disconnect(ctx)
	}
}

// TestPoolExhausted: with every server connection of a role in use, the
// next client's authentication fails with ResourceExhausted after
// --mongo-pool-wait, never a hang; another role has its own pool; once a
// client leaves, clients get in again.
func TestPoolExhausted(t *testing.T) {
	d := daemonWith(t, testdaemon.WithArgs("--mongo-pool-size", "2", "--mongo-pool-wait", "300ms"))
	ctx := ctxT(t)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead)})
	a := connect(t, d, tok, "main", onePool)
	b := connect(t, d, tok, "main", onePool)
	for _, c := range []*mongo.Client{a, b} {
		if err := c.Ping(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	err := connect(t, d, tok, "main", onePool).Ping(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "ResourceExhausted") || !strings.Contains(err.Error(), "--mongo-pool-size") ||
		time.Since(start) > 5*time.Second {
		t.Fatalf("third client of a pool of 2: %v after %v", err, time.Since(start))
	}
	if err := connect(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: readWrite}), "main", onePool).Ping(ctx, nil); err != nil {
		t.Fatalf("a client of another role: %v", err)
	}
	a.Disconnect(ctx)
	if err := connect(t, d, tok, "main", onePool).Ping(ctx, nil); err != nil {
		t.Fatalf("after a client left: %v", err)
	}
}

// TestConnectCycles: 10,000 connect / authenticate / find / disconnect
// cycles of mongo-driver reuse pooled server connections and leave no more
// open than the pool holds.
func TestConnectCycles(t *testing.T) {
	const pool = 8
	d := daemonWith(t, testdaemon.WithArgs("--mongo-pool-size", "8"))
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: readWrite})
	o := options.Client().ApplyURI(uri(d, tok, "main")).SetMaxPoolSize(1).SetServerSelectionTimeout(10 * time.Second)
	const workers, cycles = 4, 10000
	errs := make(chan error, workers)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for i := 0; i < cycles/workers; i++ {
				c, err := mongo.Connect(o)
				if err != nil {
					errs <- err
					return
				}
				err = c.Database("main").Collection("cycles").FindOne(ctx, bson.D{}).Err()
				_ = c.Disconnect(ctx)
				if err != nil && err != mongo.ErrNoDocuments {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d connect/authenticate/find/disconnect cycles in %v (%.0f/s)", cycles, time.Since(start), cycles/time.Since(start).Seconds())
	// The write role's pool holds at most 8; the probe's connection at
	// start is the read role's.
	// FerretDB counts a connection the gateway closed until it has read
	// the close: wait up to 5s for that; a leak never settles.
	n := serverConns(t, ferret)
	for deadline := time.Now().Add(5 * time.Second); n > pool+1 && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		n = serverConns(t, ferret)
	}
	if n > pool+1 {
		t.Fatalf("%d server connections are open after the cycles: more than the pool of %d (and the probe's)", n, pool)
	}
	if h := health(t, d); h.Open > pool+1 || h.Open < 1 {
		t.Fatalf("/healthz counts %d open server connections", h.Open)
	}
}

// mongoHealth is /healthz's upstreams.mongodb.
type mongoHealth struct {
	Address        string
	Reachable      bool
	Error          string
	Open, Idle     int
	MaxWireVersion int32 `json:"max_wire_version"`
}

func health(t *testing.T, d *testdaemon.Daemon) mongoHealth {
	t.Helper()
	status, body := d.Do(t, "GET", "/healthz", "", nil)
	var h struct {
		Status    string
		Upstreams map[string]mongoHealth
	}
	if err := json.Unmarshal(body, &h); err != nil || status != 200 {
		t.Fatalf("/healthz: %d %s", status, body)
	}
	return h.Upstreams["mongodb"]
}

// TestUpstreamDown: heliosd starts with its upstream down, says so in
// /healthz (without the URL's credentials), and a client's authentication
// fails at once with HostUnreachable naming the server; tokens still work
// elsewhere.
func TestUpstreamDown(t *testing.T) {
	down := testdaemon.FreeAddr(t, "127.0.0.1")
	d := testdaemon.Start(t, testdaemon.WithArgs("--mongo-upstream", "mongodb://someone:secretpw@"+down+"/"))
	h := health(t, d)
	if h.Reachable || h.Address != down || h.Error == "" {
		t.Fatalf("/healthz with the upstream down: %+v", h)
	}
	_, body := d.Do(t, "GET", "/healthz", "", nil)
	if strings.Contains(string(body), "secretpw") || strings.Contains(d.Logs(), "secretpw") {
		t.Fatalf("the upstream's password was shown: %s", body)
	}
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
	start := time.Now()
	err := connect(t, d, tok, "main").Ping(ctxT(t), nil)
	if err == nil || !strings.Contains(err.Error(), "HostUnreachable") || !strings.Contains(err.Error(), down) || time.Since(start) > 15*time.Second {
		t.Fatalf("a client with the upstream down: %v after %v", err, time.Since(start))
	}
	// Up: the next session reaches it (the package's server stands in).
	up := daemonWith(t)
	if h := health(t, up); !h.Reachable || h.MaxWireVersion == 0 {
		t.Fatalf("/healthz with the upstream up: %+v", h)
	}
}

// TestGatewayNode: a gateway node (--role gateway) given no upstream takes
// the issuer's MongoDB upstream over the cluster channel and proxies as the
// issuer does.
func TestGatewayNode(t *testing.T) {
	iss := daemonWith(t)
	node := testdaemon.Start(t, testdaemon.WithArgs("--role", "gateway", "--issuer-url", "http://"+iss.HTTP,
		"--cluster-key-file", filepath.Join(iss.DataDir, "cluster.key")))
	tok := iss.Mint(t, core.Claims{Account: 1, Scopes: readWrite})
	ctx := ctxT(t)
	var err error
	deadline := time.Now().Add(20 * time.Second)
	for { // the node needs the issuer's feed before it verifies tokens
		c := connect(t, node, tok, "main", onePool)
		_, err = c.Database("main").Collection("node").InsertOne(ctx, bson.D{{Key: "via", Value: "node"}})
		c.Disconnect(ctx)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("insert through the node: %v\n%s", err, node.Logs())
	}
	if n, err := direct(t).Database("main").Collection("node").CountDocuments(ctx, bson.D{{Key: "via", Value: "node"}}); err != nil || n < 1 {
		t.Fatalf("the node's insert is not on the server: %d %v", n, err)
	}
	if !strings.Contains(node.Logs(), `msg="upstream from the issuer" protocol=mongodb`) {
		t.Fatalf("the node did not take the issuer's upstream:\n%s", node.Logs())
	}
}

// TestOpenCursorClosesServerConnection: a session that ends with a cursor
// open closes its server connection (the cursor must not reach the next
// client); one that ends with its cursors exhausted or killed gives its
// server connection back to the pool.
func TestOpenCursorClosesServerConnection(t *testing.T) {
	d := daemonWith(t)
	ctx := ctxT(t)
	seed := direct(t).Database("main").Collection("cursor_left")
	_ = seed.Drop(ctx)
	docs := make([]any, 10)
	for i := range docs {
		docs[i] = bson.D{{Key: "i", Value: i}}
	}
	if _, err := seed.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: readWrite})
	session := func(finish bool) {
		c := connect(t, d, tok, "main", onePool)
		cur, err := c.Database("main").Collection("cursor_left").Find(ctx, bson.D{}, options.Find().SetBatchSize(2))
		if err != nil || !cur.Next(ctx) {
			t.Fatalf("find: %v", err)
		}
		if finish {
			for cur.Next(ctx) {
			}
			if err := cur.Close(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Disconnect(ctx); err != nil {
			t.Fatal(err)
		}
	}
	session(true) // one server connection of the role, now in the pool
	time.Sleep(100 * time.Millisecond)
	base := serverConns(t, ferret)
	session(true)
	time.Sleep(300 * time.Millisecond)
	if n := serverConns(t, ferret); n != base {
		t.Fatalf("a clean session changed the server's connections: %d, was %d", n, base)
	}
	session(false) // takes the pooled one and leaves a cursor open on it
	waitFor(t, 10*time.Second, "the server connection of a session that left a cursor open went back to the pool", func() bool {
		return serverConns(t, ferret) == base-1
	})
}
