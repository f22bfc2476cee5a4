package proxy

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testdaemon"
)

// TestPGProxyGatewayNode: a gateway node (--role gateway) is given no
// administrator connection; it receives the role logins of PostgreSQL and
// MariaDB from the issuer over the cluster channel and proxies as the
// issuer does. Without the
// cluster key the logins are refused.
func TestPGProxyGatewayNode(t *testing.T) {
	iss := daemonWith(t)
	node := testdaemon.Start(t, testdaemon.WithArgs("--role", "gateway", "--issuer-url", "http://"+iss.HTTP,
		"--cluster-key-file", filepath.Join(iss.DataDir, "cluster.key")))
	tok := iss.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead, core.ScopeDatabaseWrite)})
	ctx := context.Background()
	var c *pgx.Conn
	var err error
	deadline := time.Now().Add(20 * time.Second)
	for { // the node needs the issuer's feed before it verifies tokens
		if c, err = pgx.Connect(ctx, pgURL(node, tok, "main")); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("connect through the node: %v\n%s", err, node.Logs())
	}
	defer c.Close(ctx)
	var user string
	if err := c.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil || user != "helios_write" {
		t.Fatalf("the node logged in as %q: %v", user, err)
	}
	// MySQL too: the node logs in to MariaDB with the issuer's user logins.
	if user := queryString(t, myDB(t, node, tok, "main"), "SELECT CURRENT_USER()"); !strings.HasPrefix(user, "helios_write@") {
		t.Fatalf("the node logged in to MariaDB as %q", user)
	}
	if strings.Contains(node.Logs(), "pw-helios_") {
		t.Fatal("the node logged a role password")
	}
	if _, err := os.Stat(filepath.Join(node.DataDir, "upstream-postgres.json")); err == nil {
		t.Fatal("the node made its own role passwords: provisioning must run in one place")
	}
	// The logins are the cluster's secret.
	resp, err := http.Get("http://" + iss.HTTP + "/v1/cluster/upstreams")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("/v1/cluster/upstreams without the cluster key: %d", resp.StatusCode)
	}
	key, _ := os.ReadFile(filepath.Join(iss.DataDir, "cluster.key"))
	req, _ := http.NewRequest("GET", "http://"+iss.HTTP+"/v1/cluster/upstreams", nil)
	req.Header.Set("Authorization", "HeliosCluster "+strings.TrimSpace(string(key)))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || len(body["postgres"]) != 6 || len(body["mysql"]) != 6 ||
		!strings.HasPrefix(body["postgres"]["helios_read"], "postgres://helios_read:") || !strings.HasPrefix(body["mysql"]["helios_read"], "mysql://helios_read:") {
		t.Fatalf("/v1/cluster/upstreams with the cluster key: %v %v", body, err)
	}
}

// TestPGProxyRoleURLs: an operator who will not hand over an administrator
// connection gives the six role URLs (--pg-upstream-roles-file); heliosd
// provisions nothing and logs in with them.
func TestPGProxyRoleURLs(t *testing.T) {
	// The roles exist on the shared server (other tests' daemons made them
	// with the shared passwords): write their URLs as an operator would.
	daemonWith(t).Stop()
	urls := map[string]string{}
	for _, r := range []string{"helios_read", "helios_write", "helios_owner", "helios_test_read", "helios_test_write", "helios_test_owner"} {
		urls[r] = "postgres://" + r + ":" + readRolePassword(t, r) + "@" + pg.Addr + "/postgres?sslmode=disable"
	}
	js, _ := json.Marshal(urls)
	file := filepath.Join(t.TempDir(), "roles.json")
	if err := os.WriteFile(file, js, 0o600); err != nil {
		t.Fatal(err)
	}
	d := testdaemon.Start(t, testdaemon.WithArgs("--pg-upstream-roles-file", file))
	c := pgConnect(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead)}), "main")
	var user string
	if err := c.QueryRow(context.Background(), "SELECT current_user").Scan(&user); err != nil || user != "helios_read" {
		t.Fatalf("logged in as %q: %v", user, err)
	}
	if _, err := os.Stat(filepath.Join(d.DataDir, "upstream-postgres.json")); err == nil {
		t.Fatal("heliosd made role passwords although it was given the roles")
	}
}
