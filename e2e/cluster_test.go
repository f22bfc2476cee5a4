package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/keyfile"
)

// TestClusterRevocationOnEveryNode: one issuer and three gateway nodes as
// separate processes. A revocation, a logout-all, a refresh (after its grace
// period) and a key retirement made through the issuer reach every node:
// REST, PostgreSQL (pgx) and Redis (go-redis) refuse the token within one
// second.
func TestClusterRevocationOnEveryNode(t *testing.T) {
	iss := startDaemon(t, withArgs("--refresh-grace", "1s"))
	nodes := []*daemon{startNode(t, iss), startNode(t, iss), startNode(t, iss)}

	t.Run("revoke", func(t *testing.T) {
		bearer := iss.NewUser(t)
		tok, id := iss.CreateToken(t, bearer, map[string]any{"name": "app"})
		requireAccepted(t, nodes, tok)
		iss.Revoke(t, bearer, id)
		requireRejectedWithin(t, nodes, tok, time.Now(), time.Second, "revoked")
	})

	t.Run("logout-all", func(t *testing.T) {
		bearer := iss.NewUser(t)
		svc, _ := iss.CreateToken(t, bearer, map[string]any{"name": "ci", "type": "service", "scopes": []string{"database:read"}})
		requireAccepted(t, nodes, svc)
		iss.MustJSON(t, http.StatusOK, "POST", "/v1/auth/logout-all", bearer, nil, nil)
		since := time.Now()
		requireRejectedWithin(t, nodes, svc, since, time.Second, "")
		requireRejectedWithin(t, nodes, bearer, since, time.Second, "")
	})

	t.Run("refresh", func(t *testing.T) {
		bearer := iss.NewUser(t)
		requireAccepted(t, nodes, bearer)
		var r struct {
			Token string `json:"token"`
		}
		iss.MustJSON(t, http.StatusOK, "POST", "/v1/auth/refresh", bearer, nil, &r)
		grace := time.Now().Add(time.Second)
		requireAccepted(t, nodes, r.Token)
		for _, n := range nodes { // the old token works during the grace period
			if ok, why := restAccepts(t, n, bearer); !ok && time.Now().Before(grace) {
				t.Fatalf("old token refused during the grace period: %s", why)
			}
		}
		// The issuer revokes the old token once the grace period is over
		// (its maintenance runs every 500 ms).
		requireRejectedWithin(t, nodes, bearer, grace, 1500*time.Millisecond, "revoked")
		requireAccepted(t, nodes, r.Token)
	})

	t.Run("key-retirement", func(t *testing.T) {
		bearer := iss.NewUser(t) // signed with key 1
		requireAccepted(t, nodes, bearer)
		if status, body := clusterPost(t, iss, "/v1/cluster/keys/retire", `{"id":1}`); status != http.StatusConflict || !strings.Contains(string(body), "rotate first") {
			t.Fatalf("retiring the signing key: %d %s", status, body)
		}
		if status, body := clusterPost(t, iss, "/v1/cluster/keys/rotate", ``); status != http.StatusOK {
			t.Fatalf("rotate: %d %s", status, body)
		}
		fresh := iss.NewUser(t) // signed with key 2
		requireAccepted(t, nodes, fresh)
		if status, body := clusterPost(t, iss, "/v1/cluster/keys/retire", `{"id":1}`); status != http.StatusOK {
			t.Fatalf("retire: %d %s", status, body)
		}
		requireRejectedWithin(t, nodes, bearer, time.Now(), time.Second, "")
		requireAccepted(t, nodes, fresh)
		// Each node's keyring copy (0600) follows: key 2 signs, key 1 retired.
		for _, n := range nodes {
			path := filepath.Join(n.DataDir, "node-keyring.json")
			deadline := time.Now().Add(time.Second)
			for {
				ring, err := keyfile.Load(path)
				if err == nil && ring.Signing().ID == 2 && ring.Lookup(1) != nil && ring.Lookup(1).Retired {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("node %s keyring copy: %v", n.HTTP, err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if st, err := os.Stat(path); err != nil {
				t.Fatal(err)
			} else if st.Mode().Perm() != 0o600 {
				t.Fatalf("node keyring copy mode %v", st.Mode().Perm())
			}
		}
		// Without the cluster key, nothing.
		if status, _ := iss.Do(t, "POST", "/v1/cluster/keys/rotate", fresh, nil); status != http.StatusUnauthorized {
			t.Fatalf("rotate with a user token: %d", status)
		}
	})

	t.Run("node-refuses-issuer-api", func(t *testing.T) {
		status, body := nodes[0].Do(t, "POST", "/v1/auth/login", "", `{}`)
		if status != http.StatusMisdirectedRequest || !strings.Contains(string(body), iss.HTTP) {
			t.Fatalf("login on a node: %d %s", status, body)
		}
	})
}

// TestClusterNodeRestartCatchesUp: a node killed while revocations happen
// refuses them as soon as it is back.
func TestClusterNodeRestartCatchesUp(t *testing.T) {
	iss := startDaemon(t)
	node := startNode(t, iss)
	bearer := iss.NewUser(t)
	var toks []string
	var ids []string
	for range 5 {
		tok, id := iss.CreateToken(t, bearer, map[string]any{"name": "app"})
		toks, ids = append(toks, tok), append(ids, id)
	}
	requireAccepted(t, []*daemon{node}, toks[0])
	iss.Revoke(t, bearer, ids[0])
	requireRejectedWithin(t, []*daemon{node}, toks[0], time.Now(), time.Second, "revoked")
	node.Kill()
	for _, id := range ids[1:] {
		iss.Revoke(t, bearer, id)
	}
	node.StartAgain(t)
	waitHealthy(t, node, 10*time.Second)
	for _, tok := range toks {
		if ok, why := restAccepts(t, node, tok); ok || !strings.Contains(why, "revoked") {
			t.Fatalf("restarted node: %v %s", ok, why)
		}
	}
	if h := health(t, node); h.AppliedSeq != h.IssuerSeq {
		t.Fatalf("restarted node behind: %+v", h)
	}
}

// TestClusterStaleFailsClosed: with the issuer gone, a node keeps serving
// within --stale-after and refuses every token after it, with a clear error
// on REST and PostgreSQL; it recovers when the issuer is back.
func TestClusterStaleFailsClosed(t *testing.T) {
	iss := startDaemon(t)
	node := startNode(t, iss, "--stale-after", "1s")
	bearer := iss.NewUser(t)
	requireAccepted(t, []*daemon{node}, bearer)
	iss.Kill()
	killed := time.Now()
	if ok, why := restAccepts(t, node, bearer); !ok {
		t.Fatalf("within the bound: %s", why)
	}
	if ok, why := pgAccepts(t, node, bearer); !ok && time.Since(killed) < 900*time.Millisecond {
		t.Fatalf("within the bound: %s", why)
	}
	time.Sleep(1300*time.Millisecond - time.Since(killed))
	status, body := node.Do(t, "POST", "/api/v1/sql", bearer, `{"query":"SELECT 1"}`)
	if status != http.StatusServiceUnavailable || !strings.Contains(string(body), "lost contact with the issuer") {
		t.Fatalf("stale node REST: %d %s", status, body)
	}
	if ok, why := pgAccepts(t, node, bearer); ok || !strings.Contains(why, "lost contact with the issuer") {
		t.Fatalf("stale node postgres: %v %s", ok, why)
	}
	if h := health(t, node); h.HTTPStatus != http.StatusServiceUnavailable || h.Status != "stale" || h.Staleness < 1000 {
		t.Fatalf("stale node health: %+v", h)
	}
	if _, body := node.Do(t, "GET", "/metrics", "", nil); !strings.Contains(string(body), "helios_node_feed_stale 1") ||
		!strings.Contains(string(body), "helios_node_feed_staleness_seconds") {
		t.Fatal("stale node metrics do not report the staleness")
	}
	iss.StartAgain(t)
	waitHealthy(t, node, 10*time.Second)
	requireAccepted(t, []*daemon{node}, bearer)
}

// TestClusterPolicy: the databases registry and IP allowlists reach nodes.
func TestClusterPolicy(t *testing.T) {
	iss := startDaemon(t)
	node := startNode(t, iss)
	bearer := iss.NewUser(t)

	// Databases: the API, its errors, and test tokens on a node.
	var list struct {
		Databases []struct {
			Name string `json:"name"`
			Test bool   `json:"test"`
		} `json:"databases"`
	}
	iss.MustJSON(t, http.StatusOK, "GET", "/v1/databases", bearer, nil, &list)
	if len(list.Databases) != 1 || list.Databases[0].Name != "main" || list.Databases[0].Test {
		t.Fatalf("default registry %+v", list)
	}
	iss.MustJSON(t, http.StatusCreated, "POST", "/v1/databases", bearer, map[string]any{"name": "scratch", "test": true}, nil)
	for _, bad := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"name":"scratch","test":true}`, 409, "DATABASE_EXISTS"},
		{`{"name":"no spaces"}`, 400, "INVALID_DATABASE_NAME"},
		{`{"name":"x","owner":"me"}`, 400, "INVALID_REQUEST"},
		{`{"name":`, 400, "INVALID_JSON"},
	} {
		status, body := iss.Do(t, "POST", "/v1/databases", bearer, bad.body)
		if code, msg := issError(t, body); status != bad.status || code != bad.code || msg == "" {
			t.Fatalf("POST /v1/databases %s: %d %s", bad.body, status, body)
		}
	}
	reader, _ := iss.CreateToken(t, bearer, map[string]any{"name": "r", "scopes": []string{"database:read"}})
	if status, body := iss.Do(t, "POST", "/v1/databases", reader, `{"name":"nope"}`); status != http.StatusForbidden || !strings.Contains(string(body), "database:create") {
		t.Fatalf("create without database:create: %d %s", status, body)
	}
	if status, body := iss.Do(t, "DELETE", "/v1/databases/absent", bearer, nil); status != http.StatusNotFound || !strings.Contains(string(body), "DATABASE_NOT_FOUND") {
		t.Fatalf("delete unknown: %d %s", status, body)
	}

	testTok, _ := iss.CreateToken(t, bearer, map[string]any{"name": "t", "type": "test"})
	sql := func(tok, db string) (int, string) {
		status, body := node.Do(t, "POST", "/api/v1/sql", tok, `{"query":"SELECT 1","database":"`+db+`"}`)
		return status, string(body)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		status, body := sql(testTok, "scratch")
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("test token on a test database: %d %s", status, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if status, body := sql(testTok, "main"); status != http.StatusForbidden || !strings.Contains(body, "test databases") {
		t.Fatalf("test token on main: %d %s", status, body)
	}
	if status, _ := sql(bearer, "main"); status != http.StatusOK {
		t.Fatalf("live token on main: %d", status)
	}
	iss.MustJSON(t, http.StatusOK, "DELETE", "/v1/databases/scratch", bearer, nil, nil)
	deadline = time.Now().Add(time.Second)
	for {
		status, body := sql(testTok, "scratch")
		if status == http.StatusForbidden {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("test token on a deleted database: %d %s", status, body)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// IP allowlists: the client is 127.0.0.1.
	here, _ := iss.CreateToken(t, bearer, map[string]any{"name": "here", "allowed_ips": []string{"127.0.0.1"}})
	elsewhere, _ := iss.CreateToken(t, bearer, map[string]any{"name": "elsewhere", "allowed_ips": []string{"127.0.0.2", "10.0.0.0/8"}})
	deadline = time.Now().Add(2 * time.Second)
	for {
		if ok, _ := restAccepts(t, node, here); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("token allowed from 127.0.0.1 refused on the node")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if status, body := node.Do(t, "POST", "/api/v1/sql", elsewhere, `{"query":"SELECT 1"}`); status != http.StatusForbidden || !strings.Contains(string(body), core.ErrAddrNotAllowed.Message) {
		t.Fatalf("token from a disallowed address: %d %s", status, body)
	}
	// A node started now gets the allowlist from the snapshot.
	late := startNode(t, iss)
	if ok, why := restAccepts(t, late, here); !ok {
		t.Fatalf("late node: allowlisted token refused: %s", why)
	}
}

// TestClusterLastUsedFromNodes: uses on a node reach GET /v1/auth/tokens
// (aggregated on the node, flushed to the issuer in batches).
func TestClusterLastUsedFromNodes(t *testing.T) {
	iss := startDaemon(t, withArgs("--usage-flush", "200ms"))
	node := startNode(t, iss, "--usage-flush", "200ms")
	bearer := iss.NewUser(t)
	tok, _ := iss.CreateToken(t, bearer, map[string]any{"name": "used-on-a-node"})
	requireAccepted(t, []*daemon{node}, tok)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if tk, ok := issList(t, iss, bearer)["used-on-a-node"]; ok && tk.LastUsed != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("last_used not updated from the node: %+v", issList(t, iss, bearer)["used-on-a-node"])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterOverTLS: a node follows the issuer over HTTPS, trusting its
// self-signed certificate (--issuer-ca); the keyring and the feed travel
// inside TLS.
func TestClusterOverTLS(t *testing.T) {
	iss := startDaemon(t)
	n := startDaemon(t, withArgs("--role", "gateway", "--issuer-url", "https://"+iss.HTTP, "--issuer-ca", iss.CACert,
		"--cluster-key-file", filepath.Join(iss.DataDir, "cluster.key")))
	waitHealthy(t, n, 20*time.Second)
	bearer := iss.NewUser(t)
	tok, id := iss.CreateToken(t, bearer, map[string]any{"name": "tls"})
	requireAccepted(t, []*daemon{n}, tok)
	iss.Revoke(t, bearer, id)
	requireRejectedWithin(t, []*daemon{n}, tok, time.Now(), time.Second, "revoked")
}

// TestClusterNodeRestartsWithoutIssuer: a node restarted while the issuer
// is down starts from its persisted keyring and revocation state, refuses
// what was revoked, serves within the staleness bound counted from its
// state's age, and fails closed after it.
func TestClusterNodeRestartsWithoutIssuer(t *testing.T) {
	iss := startDaemon(t)
	node := startNode(t, iss, "--stale-after", "4s")
	bearer := iss.NewUser(t)
	tok, id := iss.CreateToken(t, bearer, map[string]any{"name": "gone"})
	iss.Revoke(t, bearer, id)
	requireRejectedWithin(t, []*daemon{node}, tok, time.Now(), time.Second, "revoked")
	iss.MustJSON(t, http.StatusCreated, "POST", "/v1/databases", bearer, map[string]any{"name": "scratch", "test": true}, nil)
	testTok, _ := iss.CreateToken(t, bearer, map[string]any{"name": "t", "type": "test"})
	here, _ := iss.CreateToken(t, bearer, map[string]any{"name": "here", "allowed_ips": []string{"127.0.0.1"}})
	policyOK := func() (bool, string) {
		status, body := node.Do(t, "POST", "/api/v1/sql", testTok, `{"query":"SELECT 1","database":"scratch"}`)
		if status != http.StatusOK {
			return false, string(body)
		}
		return restAccepts(t, node, here)
	}
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if ok, why := policyOK(); ok {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("policy not on the node: %s", why)
		}
	}
	node.Stop() // persists its state on the way out
	iss.Kill()
	stopped := time.Now()
	node.StartAgain(t)
	if ok, why := restAccepts(t, node, bearer); !ok && time.Since(stopped) < 3*time.Second {
		t.Fatalf("restarted node without the issuer refuses a good token: %s", why)
	}
	if ok, why := policyOK(); !ok && time.Since(stopped) < 3*time.Second {
		t.Fatalf("restarted node without the issuer lost its policy: %s", why)
	}
	if ok, why := restAccepts(t, node, tok); ok || !strings.Contains(why, "revoked") {
		t.Fatalf("restarted node without the issuer: revoked token %v %s", ok, why)
	}
	time.Sleep(4500*time.Millisecond - time.Since(stopped))
	if status, body := node.Do(t, "POST", "/api/v1/sql", bearer, `{"query":"SELECT 1"}`); status != http.StatusServiceUnavailable {
		t.Fatalf("past the bound: %d %s", status, body)
	}
}

// TestClusterOpenSessionsEnded: sessions opened before a revocation — pgx
// and go-redis, on every node — are ended within the bound: their next
// command fails with the revocation.
func TestClusterOpenSessionsEnded(t *testing.T) {
	iss := startDaemon(t)
	nodes := []*daemon{startNode(t, iss), startNode(t, iss), startNode(t, iss)}
	bearer := iss.NewUser(t)
	tok, id := iss.CreateToken(t, bearer, map[string]any{"name": "open"})
	requireAccepted(t, nodes, tok)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type open struct {
		pg    *pgx.Conn
		redis *redis.Client
	}
	var sessions []open
	for _, n := range nodes {
		pg, err := pgx.Connect(ctx, pgURL(n.PG, tok, "disable"))
		if err != nil {
			t.Fatal(err)
		}
		defer pg.Close(ctx)
		rc := redis.NewClient(&redis.Options{Addr: n.Redis, Password: tok, PoolSize: 1, MaxRetries: -1, DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second})
		defer rc.Close()
		if err := rc.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if err := pg.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, open{pg, rc})
	}
	iss.Revoke(t, bearer, id)
	since := time.Now()
	time.Sleep(200 * time.Millisecond)
	for i, s := range sessions {
		var one int
		pgErr := s.pg.QueryRow(ctx, "SELECT 1").Scan(&one)
		if pgErr == nil || !strings.Contains(pgErr.Error(), "revoked") {
			t.Fatalf("node %d: the open PostgreSQL session %s after the revocation: %v", i, time.Since(since), pgErr)
		}
		redisErr := s.redis.Ping(ctx).Err()
		if redisErr == nil || !strings.Contains(redisErr.Error(), "revoked") {
			t.Fatalf("node %d: the open Redis session %s after the revocation: %v", i, time.Since(since), redisErr)
		}
		if time.Since(since) > time.Second {
			t.Fatalf("node %d: checks took %s", i, time.Since(since))
		}
		t.Logf("node %d: postgres %v; redis %v", i, pgErr, redisErr)
	}
}
