package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// startNode starts heliosd as a gateway node (--role gateway) following
// the issuer iss, and waits until its /healthz reports it ready.
func startNode(t testing.TB, iss *daemon, args ...string) *daemon {
	t.Helper()
	n := startDaemon(t, withArgs(append([]string{"--role", "gateway", "--issuer-url", "http://" + iss.HTTP,
		"--cluster-key-file", filepath.Join(iss.DataDir, "cluster.key")}, args...)...))
	waitHealthy(t, n, 20*time.Second)
	return n
}

// nodeHealth is a node's GET /healthz.
type nodeHealth struct {
	Status     string `json:"status"`
	AppliedSeq uint64 `json:"applied_seq"`
	IssuerSeq  uint64 `json:"issuer_seq"`
	Staleness  int64  `json:"staleness_ms"`
	HTTPStatus int    `json:"-"`
}

func health(t testing.TB, n *daemon) nodeHealth {
	t.Helper()
	resp, err := httpClient.Get(n.URL("/healthz"))
	if err != nil {
		return nodeHealth{Status: "down: " + err.Error()}
	}
	defer resp.Body.Close()
	var h nodeHealth
	_ = json.NewDecoder(resp.Body).Decode(&h)
	h.HTTPStatus = resp.StatusCode
	return h
}

func waitHealthy(t testing.TB, n *daemon, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		h := health(t, n)
		if h.HTTPStatus == http.StatusOK && h.Status == "ok" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s not healthy: %+v", n.HTTP, h)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restAccepts runs SELECT 1 on the node's REST API with tok.
func restAccepts(t testing.TB, n *daemon, tok string) (bool, string) {
	t.Helper()
	status, body := n.Do(t, "POST", "/api/v1/sql", tok, `{"query":"SELECT 1"}`)
	return status == http.StatusOK, string(body)
}

// pgAccepts connects with pgx (plaintext on loopback) and runs SELECT 1. A
// refusal must be the server's error, not a failed dial.
func pgAccepts(t testing.TB, n *daemon, tok string) (bool, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgURL(n.PG, tok, "disable"))
	if err == nil {
		defer conn.Close(ctx)
		var one int
		err = conn.QueryRow(ctx, "SELECT 1").Scan(&one)
	}
	if err == nil {
		return true, ""
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("postgres on %s: not a server error: %v", n.PG, err)
	}
	return false, pe.Code + " " + pe.Message
}

// redisAccepts pings with go-redis.
func redisAccepts(t testing.TB, n *daemon, tok string) (bool, string) {
	t.Helper()
	c := redisClient(n, tok, false)
	defer c.Close()
	err := c.Ping(context.Background()).Err()
	if err == nil {
		return true, ""
	}
	if !strings.Contains(err.Error(), "WRONGPASS") && !strings.Contains(err.Error(), "ERR") && !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("redis on %s: not a server error: %v", n.Redis, err)
	}
	return false, err.Error()
}

// mysqlAccepts connects with go-sql-driver/mysql over TLS and pings.
func mysqlAccepts(tb testing.TB, n *daemon, tok string) (bool, string) {
	tb.Helper()
	t, ok := tb.(*testing.T)
	if !ok {
		tb.Fatal("mysqlAccepts needs a *testing.T")
	}
	db := mysqlDB(t, n, tok, "skip-verify")
	defer db.Close()
	err := db.Ping()
	if err == nil {
		return true, ""
	}
	if mysqlErrNumber(err) == 0 {
		t.Fatalf("mysql on %s: not a server error: %v", n.MySQL, err)
	}
	return false, err.Error()
}

// mongoAccepts connects with mongo-go-driver (SASL PLAIN over TLS) and pings.
func mongoAccepts(tb testing.TB, n *daemon, tok string) (bool, string) {
	tb.Helper()
	t, ok := tb.(*testing.T)
	if !ok {
		tb.Fatal("mongoAccepts needs a *testing.T")
	}
	c := mongoConnect(t, mongoURI(n, tok, ""))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer c.Disconnect(ctx)
	err := c.Ping(ctx, nil)
	if err == nil {
		return true, ""
	}
	if !strings.Contains(err.Error(), "auth") && !strings.Contains(err.Error(), "(18)") {
		t.Fatalf("mongodb on %s: not an authentication error: %v", n.Mongo, err)
	}
	return false, err.Error()
}

// clusterProtocols are the checks every cluster test runs on every node.
var clusterProtocols = []struct {
	name   string
	accept func(testing.TB, *daemon, string) (bool, string)
}{{"rest", restAccepts}, {"postgres", pgAccepts}, {"redis", redisAccepts}, {"mysql", mysqlAccepts}, {"mongodb", mongoAccepts}}

// requireAccepted fails unless every node accepts tok on every protocol
// (retrying for a moment: a token's IP policy or keyring change may still
// be on its way).
func requireAccepted(t testing.TB, nodes []*daemon, tok string) {
	t.Helper()
	for _, n := range nodes {
		for _, p := range clusterProtocols {
			deadline := time.Now().Add(2 * time.Second)
			for {
				ok, why := p.accept(t, n, tok)
				if ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("node %s %s refuses a good token: %s", n.HTTP, p.name, why)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}

// requireRejectedWithin fails unless every node refuses tok on every
// protocol within bound of since, with a message containing want.
func requireRejectedWithin(t testing.TB, nodes []*daemon, tok string, since time.Time, bound time.Duration, want string) {
	t.Helper()
	for _, n := range nodes {
		for _, p := range clusterProtocols {
			for {
				ok, why := p.accept(t, n, tok)
				if !ok {
					if !strings.Contains(why, want) {
						t.Fatalf("node %s %s: refused with %q, want %q", n.HTTP, p.name, why, want)
					}
					break
				}
				if time.Since(since) > bound {
					t.Fatalf("node %s %s still accepts the token %s after the change", n.HTTP, p.name, time.Since(since))
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		t.Logf("node %s refuses on every protocol %s after the change", n.HTTP, time.Since(since).Round(time.Millisecond))
	}
}

// clusterKey returns the issuer's cluster key header value.
func clusterAuth(t testing.TB, iss *daemon) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(iss.DataDir, "cluster.key"))
	if err != nil {
		t.Fatal(err)
	}
	return "HeliosCluster " + strings.TrimSpace(string(b))
}

// clusterPost POSTs body to a cluster endpoint with the cluster key.
func clusterPost(t testing.TB, iss *daemon, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", iss.URL(path), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", clusterAuth(t, iss))
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}
