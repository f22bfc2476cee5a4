package proxy

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testdaemon"
)

// TestMakeRunStartsRealDatabases runs scripts/run.sh (make run's recipe)
// as a newcomer would: it initialises PostgreSQL under data/upstreams/,
// starts it on a private port, points heliosd at it, and a token reaches a
// real table through the gateway; Ctrl-C stops everything it started.
func TestMakeRunStartsRealDatabases(t *testing.T) {
	mr := testdaemon.NewMakeRun(t)
	pgPort := testdaemon.FreePort(t)
	mr.Env = append(mr.Env, "PG_UPSTREAM_PORT="+pgPort, "MYSQL_UPSTREAM_PORT="+testdaemon.FreePort(t))
	mr.Run(t, 90*time.Second, func(logs func() string) {
		if !strings.Contains(logs(), "PostgreSQL 15") || !strings.Contains(logs(), "127.0.0.1:"+pgPort) {
			t.Fatalf("make run did not start PostgreSQL:\n%s", logs())
		}
		if st, err := os.Stat(filepath.Join(mr.DataDir, "upstreams", "postgres", "data", "PG_VERSION")); err != nil || st.Size() == 0 {
			t.Fatalf("no PostgreSQL cluster under data/upstreams: %v", err)
		}
		// A token minted with the daemon's own key, as the API would issue it.
		tok := mr.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
		ctx := context.Background()
		c, err := pgx.Connect(ctx, "postgres://default:"+tok+"@"+mr.Listen["pg-listen"]+"/main?sslmode=disable")
		if err != nil {
			t.Fatalf("psql through make run's gateway: %v\n%s", err, logs())
		}
		if _, err := c.Exec(ctx, "CREATE TABLE newcomer(a int); INSERT INTO newcomer VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		var user string
		if err := c.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil {
			t.Fatal(err)
		}
		c.Close(ctx)
		if user != "helios_owner" {
			t.Fatalf("make run's gateway logged in as %q", user)
		}
	})
	_, gwPort, _ := net.SplitHostPort(mr.Listen["pg-listen"])
	for _, p := range []string{pgPort, gwPort} {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+p, time.Second); err == nil {
			c.Close()
			t.Fatalf("port %s still accepts after make run stopped", p)
		}
	}
}

// TestMakeRunStopsOnTerm: SIGTERM to run.sh alone (kill, a service manager)
// stops the servers it started too, PostgreSQL under its own user included.
func TestMakeRunStopsOnTerm(t *testing.T) {
	mr := testdaemon.NewMakeRun(t)
	mr.Term = true
	pgPort := testdaemon.FreePort(t)
	mr.Env = append(mr.Env, "PG_UPSTREAM_PORT="+pgPort, "MYSQL_UPSTREAM_PORT="+testdaemon.FreePort(t))
	mr.Run(t, 90*time.Second, func(logs func() string) {
		if !strings.Contains(logs(), "127.0.0.1:"+pgPort) {
			t.Fatalf("make run did not start PostgreSQL:\n%s", logs())
		}
	})
	_, gwPort, _ := net.SplitHostPort(mr.Listen["pg-listen"])
	for _, p := range []string{pgPort, gwPort} {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+p, time.Second); err == nil {
			c.Close()
			t.Fatalf("port %s still accepts after make run stopped", p)
		}
	}
}
