package proxy

// MySQL proxy mode when things go wrong: revocation, a server that
// restarts or is down, and a client that reads slowly.

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testdaemon"
)

// TestMySQLProxyRevocation: revoking the token ends its session in
// MySQL's words, mid-query too, and the server connection is closed and
// its statement ended on the server, not handed on.
func TestMySQLProxyRevocation(t *testing.T) {
	d := daemonWith(t)
	owner := d.NewUser(t)
	tok, id := d.CreateToken(t, owner, map[string]any{"name": "revoked-mid-query", "scopes": []string{"*"}})
	db := myDB(t, d, tok, "main")
	onLoopCheck := onLoop(t, d)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var thread int64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&thread); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- conn.QueryRowContext(ctx, "SELECT SLEEP(20)").Scan(new(int)) }()
	time.Sleep(500 * time.Millisecond)
	d.Revoke(t, owner, id)
	select {
	case err := <-done:
		if code, msg := myErr(err); code != 1045 || !strings.Contains(msg, "session ended") {
			t.Fatalf("the query of a revoked token: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SELECT SLEEP(20) outlived its revoked token")
	}
	admin := mariaAdmin(t)
	for {
		var n int
		if err := admin.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?", thread).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("the revoked session's server connection is still open (returned to the pool, or its SLEEP left running?)")
		}
		time.Sleep(50 * time.Millisecond)
	}
	onLoopCheck(1)
}

// TestMySQLProxyUpstreamRestart: the server restarts under an open session:
// it ends with the reason, and new clients get fresh server connections.
func TestMySQLProxyUpstreamRestart(t *testing.T) {
	d := daemonWith(t)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead)})
	db := myDB(t, d, tok, "main")
	onLoopCheck := onLoop(t, d)
	db.SetMaxIdleConns(0)
	if err := db.Ping(); err != nil { // one server connection, returned to the pool
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := maria.Restart(); err != nil {
		t.Fatal(err)
	}
	err = conn.QueryRowContext(ctx, "SELECT 1").Scan(new(int))
	if code, msg := myErr(err); code != 2013 || !strings.Contains(msg, "upstream server behind the HeliosDB gateway closed the connection") {
		t.Fatalf("a session across its server's restart: %v", err)
	}
	conn.Close()
	for i := 0; i < 3; i++ {
		if v := queryString(t, db, "SELECT 1"); v != "1" {
			t.Fatalf("client %d after the restart: %q", i, v)
		}
	}
	onLoopCheck(5)
}

// TestMySQLProxyUpstreamDown: heliosd starts while its MySQL upstream is
// down, says so in /healthz, and clients get 2003 with the reason.
func TestMySQLProxyUpstreamDown(t *testing.T) {
	down := testdaemon.FreeAddr(t, "127.0.0.1") // nothing listens there
	d := testdaemon.Start(t, testdaemon.WithArgs("--mysql-upstream", "mysql://root:pw@"+down+"/"))
	d.CheckUpstreamDown(t, "mysql", down, ":pw@")
	start := time.Now()
	err := myDB(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes}), "main").Ping()
	if code, msg := myErr(err); code != 2003 || !strings.Contains(msg, "Can't connect to MySQL server on '"+down+"'") || time.Since(start) > 15*time.Second {
		t.Fatalf("connect with the upstream down: %v after %v", err, time.Since(start))
	}
}

// TestMySQLProxySlowReader: a 200 MB result read slowly by its client does
// not grow heliosd's memory by more than a few MB: the pump stops reading
// the server while the client is behind.
func TestMySQLProxySlowReader(t *testing.T) {
	d := daemonWith(t)
	db := myDB(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead)}), "main")
	onLoopCheck := onLoop(t, d)
	before := rssKB(t, d.PID())
	rows, err := db.Query("SELECT REPEAT('x', 1000) FROM seq_1_to_200000")
	if err != nil {
		t.Fatal(err)
	}
	var b sql.RawBytes
	size := func() int {
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		return len(b)
	}
	slowRead(t, d.PID(), before, rows.Next, size, rows.Err)
	onLoopCheck(1)
}
