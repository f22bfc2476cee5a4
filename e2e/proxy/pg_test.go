package proxy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testdaemon"
)

// pgURL is the connection string of a client of d with token tok.
func pgURL(d *testdaemon.Daemon, tok, db string) string {
	return "postgres://default:" + tok + "@" + d.PG + "/" + db + "?sslmode=disable"
}

func pgConnect(t *testing.T, d *testdaemon.Daemon, tok, db string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, pgURL(d, tok, db))
	if err != nil {
		t.Fatalf("connect to %s as a %s token: %v", db, tok[:9], err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// pgAdmin connects to the upstream PostgreSQL directly, as its superuser.
func pgAdmin(t *testing.T, db string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(pg.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Database = db
	c, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// pgCode returns the SQLSTATE and message of err ("" when it is not a
// server error).
func pgCode(err error) (string, string) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code, pe.Message
	}
	return "", ""
}

func scopes(ss ...core.Scope) core.ScopeSet {
	var set core.ScopeSet
	for _, s := range ss {
		set = set.With(s)
	}
	return set
}

// TestPGProxyFullAccess: a full-access token reaches the real PostgreSQL as
// the owner role: DDL, writes and reads with psql and pgx (transactions, $1
// parameters, CopyFrom), the server's own ParameterStatus (server_version
// 15.x, not the built-in responder's).
func TestPGProxyFullAccess(t *testing.T) {
	d := daemonWith(t)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
	out, err := exec.Command("psql", pgURL(d, tok, "main"), "-Atq", "-v", "ON_ERROR_STOP=1",
		"-c", "CREATE TABLE full_access(a int PRIMARY KEY, b text)",
		"-c", "INSERT INTO full_access VALUES (1, 'one'), (2, 'two')",
		"-c", "SELECT b FROM full_access ORDER BY a",
		"-c", "SELECT current_user").CombinedOutput()
	if err != nil || string(out) != "one\ntwo\nhelios_owner\n" {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	ctx := context.Background()
	c := pgConnect(t, d, tok, "main")
	if v := c.PgConn().ParameterStatus("server_version"); !strings.HasPrefix(v, "15.") {
		t.Errorf("server_version %q: the client does not see the real server's parameters", v)
	}
	var n int
	if err := c.QueryRow(ctx, "SELECT $1::int + 1", 41).Scan(&n); err != nil || n != 42 {
		t.Fatalf("$1: %d %v", n, err)
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO full_access VALUES ($1, $2)", 3, "three"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	rows := make([][]any, 1000)
	for i := range rows {
		rows[i] = []any{int32(100 + i), "copied"}
	}
	if n, err := c.CopyFrom(ctx, pgx.Identifier{"full_access"}, []string{"a", "b"}, pgx.CopyFromRows(rows)); err != nil || n != 1000 {
		t.Fatalf("CopyFrom: %d %v", n, err)
	}
	if err := c.QueryRow(ctx, "SELECT count(*) FROM full_access").Scan(&n); err != nil || n != 1002 {
		t.Fatalf("count after rollback and COPY: %d %v", n, err)
	}
	// Checked by the owner of the table on the server itself.
	if err := pgAdmin(t, "main").QueryRow(ctx, "SELECT count(*) FROM full_access WHERE b = 'copied'").Scan(&n); err != nil || n != 1000 {
		t.Fatalf("the rows are not on the upstream: %d %v", n, err)
	}
}

// TestPGProxyReadToken: a read token reads, and a write is refused by the
// gateway's classifier with the guide's message before it leaves; what the
// classifier lets through but writes (nextval) is refused by the read role
// on the server, with the scope named too.
func TestPGProxyReadToken(t *testing.T) {
	d := daemonWith(t)
	ctx := context.Background()
	owner := pgConnect(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes}), "main")
	if _, err := owner.Exec(ctx, "CREATE TABLE IF NOT EXISTS read_token(a int); CREATE SEQUENCE IF NOT EXISTS read_token_seq; INSERT INTO read_token VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	c := pgConnect(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead)}), "main")
	var n, user = 0, ""
	if err := c.QueryRow(ctx, "SELECT count(*), current_user FROM read_token").Scan(&n, &user); err != nil || n < 1 || user != "helios_read" {
		t.Fatalf("read: %d %s %v", n, user, err)
	}
	_, err := c.Exec(ctx, "INSERT INTO read_token VALUES (8)")
	if code, msg := pgCode(err); code != "42501" || msg != "Token does not have required scope: database:write" {
		t.Fatalf("insert with a read token: %v", err)
	}
	err = c.QueryRow(ctx, "SELECT nextval('read_token_seq')").Scan(&n)
	// pg_read_all_data has no right on sequences (42501); were it granted,
	// the read-only transaction would refuse (25006).
	if code, msg := pgCode(err); (code != "42501" && code != "25006") || !strings.Contains(msg, "read_token_seq") ||
		!strings.Contains(msg, "Token does not have required scope: database:write") {
		t.Fatalf("nextval with a read token (the role's wall): %v", err)
	}
	// The session goes on after both refusals.
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil || n != 1 {
		t.Fatalf("after the refusals: %v", err)
	}
}

// TestPGProxyRoleWall runs a heliosd built without the classifier
// (helios_bypass_classifier, a test build): the upstream roles alone still
// refuse what the scopes do not allow.
func TestPGProxyRoleWall(t *testing.T) {
	d := daemonWith(t, testdaemon.WithBuildTags("helios_bypass_classifier"))
	ctx := context.Background()
	owner := pgConnect(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes}), "main")
	if _, err := owner.Exec(ctx, "CREATE TABLE IF NOT EXISTS role_wall(a int)"); err != nil {
		t.Fatal(err)
	}
	read := pgConnect(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead)}), "main")
	_, err := read.Exec(ctx, "INSERT INTO role_wall VALUES (1)")
	if code, msg := pgCode(err); code != "25006" || !strings.Contains(msg, "Token does not have required scope: database:write") {
		t.Fatalf("insert by the read role: %v", err)
	}
	write := pgConnect(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead, core.ScopeDatabaseWrite)}), "main")
	if _, err := write.Exec(ctx, "INSERT INTO role_wall VALUES (2)"); err != nil {
		t.Fatalf("insert by the write role: %v", err)
	}
	_, err = write.Exec(ctx, "CREATE TABLE role_wall_2(a int)")
	if code, msg := pgCode(err); code != "42501" || !strings.Contains(msg, "Token does not have required scope: schema:write") {
		t.Fatalf("DDL by the write role: %v", err)
	}
	_, err = write.Exec(ctx, "ALTER ROLE helios_write SUPERUSER")
	if code, _ := pgCode(err); code != "42501" {
		t.Fatalf("a role grabbing superuser: %v", err)
	}
}

// TestPGProxyDatabases: POST /v1/databases creates the database on the
// upstream, a test token reaches only test databases (the test roles have
// no CONNECT on the others, even when asked directly), DELETE drops it.
func TestPGProxyDatabases(t *testing.T) {
	d := daemonWith(t)
	owner := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
	ctx := context.Background()
	name := "scratch_test_" + time.Now().Format("150405")
	d.MustJSON(t, 201, "POST", "/v1/databases", owner, map[string]any{"name": name, "test": true}, nil)
	admin := pgAdmin(t, "postgres")
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil || !exists {
		t.Fatalf("POST /v1/databases did not create %s upstream: %v", name, err)
	}
	testTok := d.Mint(t, core.Claims{Account: 1, Type: core.TypeTest, Flags: core.FlagTestOnly, Scopes: core.AllScopes})
	c := pgConnect(t, d, testTok, name)
	if _, err := c.Exec(ctx, "CREATE TABLE t(a int); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	var user string
	if err := c.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil {
		t.Fatal(err)
	}
	if user != "helios_test_owner" {
		t.Fatalf("a test token logged in as %q", user)
	}
	// The gateway refuses a test token on a production database …
	_, err := pgx.Connect(ctx, pgURL(d, testTok, "main"))
	if code, _ := pgCode(err); code != "42501" {
		t.Fatalf("test token on main: %v", err)
	}
	// … and so does the upstream, to the test role itself.
	pw := readRolePassword(t, "helios_test_read")
	cfg, _ := pgx.ParseConfig(pg.AdminURL)
	cfg.User, cfg.Password, cfg.Database = "helios_test_read", pw, "main"
	_, err = pgx.ConnectConfig(ctx, cfg)
	if code, _ := pgCode(err); code != "42501" {
		t.Fatalf("the test role connected to a production database upstream: %v", err)
	}
	c.Close(ctx)
	d.MustJSON(t, 200, "DELETE", "/v1/databases/"+name, owner, nil, nil)
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil || exists {
		t.Fatalf("DELETE /v1/databases left %s upstream: %v", name, err)
	}
}

// readRolePassword reads a role's password from the shared passwords file.
func readRolePassword(t *testing.T, role string) string {
	t.Helper()
	b, err := os.ReadFile(rolePasswords)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(b), `"`+role+`":"`)
	pw, _, _ := strings.Cut(rest, `"`)
	if pw == "" {
		t.Fatalf("no password for %s in %s", role, filepath.Base(rolePasswords))
	}
	return pw
}

// TestPGProxyCancel: pgx cancels a running pg_sleep through the gateway (a
// CancelRequest with the gateway's key, forwarded with the server's).
func TestPGProxyCancel(t *testing.T) {
	d := daemonWith(t)
	c := pgConnect(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes}), "main")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Exec(ctx, "SELECT pg_sleep(20)")
	if time.Since(start) > 5*time.Second {
		t.Fatalf("the cancel took %v", time.Since(start))
	}
	if err == nil {
		t.Fatal("pg_sleep(20) finished within 300ms")
	}
	// The server ran the cancel: pg_stat_activity shows no pg_sleep left.
	waitNone(t, "pg_sleep is still running on the server: the cancel was not forwarded",
		"SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(20)%' AND state = 'active'")
}

// waitNone polls the upstream, as its superuser, until query counts 0,
// and fails with msg after 5 seconds.
func waitNone(t *testing.T, msg, query string, args ...any) {
	t.Helper()
	admin := pgAdmin(t, "postgres")
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		if err := admin.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPGProxyRevocationEndsSession: revoking the token ends the open
// session in PostgreSQL's words, and its server connection is closed, not
// handed on.
func TestPGProxyRevocationEndsSession(t *testing.T) {
	d := daemonWith(t)
	ctx := context.Background()
	owner := d.NewUser(t)
	tok, id := d.CreateToken(t, owner, map[string]any{"name": "revoked-mid-session", "scopes": []string{"*"}})
	c := pgConnect(t, d, tok, "main")
	var pid int
	if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	d.Revoke(t, owner, id)
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := c.QueryRow(ctx, "SELECT 1").Scan(new(int))
		if code, _ := pgCode(err); code == "28P01" {
			break
		}
		if err != nil && c.IsClosed() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session outlived its revoked token: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitNone(t, "the revoked session's server connection is still open (returned to the pool?)",
		"SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)
}

// TestPGProxyBatchRefusal: a pgx batch (one pipeline: statements prepared
// together, one Sync) with a write in the middle, from a read token: the
// batch fails with the guide's error, nothing of it is written, and the
// session goes on.
func TestPGProxyBatchRefusal(t *testing.T) {
	d := daemonWith(t)
	ctx := context.Background()
	owner := pgConnect(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes}), "main")
	if _, err := owner.Exec(ctx, "CREATE TABLE IF NOT EXISTS batch_refusal(a int)"); err != nil {
		t.Fatal(err)
	}
	c := pgConnect(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead)}), "main")
	b := &pgx.Batch{}
	b.Queue("SELECT count(*) FROM batch_refusal")
	b.Queue("INSERT INTO batch_refusal VALUES (1)")
	b.Queue("SELECT 2")
	err := c.SendBatch(ctx, b).Close()
	if code, msg := pgCode(err); code != "42501" || msg != "Token does not have required scope: database:write" {
		t.Fatalf("batch with a write: %v", err)
	}
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM batch_refusal").Scan(&n); err != nil || n != 0 {
		t.Fatalf("after the refused batch: %d rows, %v", n, err)
	}
	// psql's simple protocol: the refused statement and the next one.
	out, _ := exec.Command("psql", pgURL(d, d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead)}), "main"),
		"-Atq", "-c", "DELETE FROM batch_refusal", "-c", "SELECT 'still here'").CombinedOutput()
	if !strings.Contains(string(out), "ERROR:  Token does not have required scope: database:write") || !strings.Contains(string(out), "still here") {
		t.Fatalf("psql: %s", out)
	}
}

// TestPGProxyPoolExhausted: with every server connection of a role and
// database in use, the next client gets 53300 after --pg-pool-wait, never
// a hang; once one is released, clients get in again.
func TestPGProxyPoolExhausted(t *testing.T) {
	d := daemonWith(t, testdaemon.WithArgs("--pg-pool-size", "2", "--pg-pool-wait", "300ms"))
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead)})
	ctx := context.Background()
	a := pgConnect(t, d, tok, "main")
	b := pgConnect(t, d, tok, "main")
	start := time.Now()
	_, err := pgx.Connect(ctx, pgURL(d, tok, "main"))
	if code, _ := pgCode(err); code != "53300" || time.Since(start) > 3*time.Second {
		t.Fatalf("third client of a pool of 2: %v after %v", err, time.Since(start))
	}
	// Another role has its own pool.
	pgConnect(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes}), "main")
	a.Close(ctx)
	c, err := pgx.Connect(ctx, pgURL(d, tok, "main"))
	if err != nil {
		t.Fatalf("after a client left: %v", err)
	}
	c.Close(ctx)
	_ = b
}

// TestPGProxyUpstreamRestart: the server restarts under open sessions: they
// end with PostgreSQL's admin-shutdown words, and new clients get fresh
// server connections (the pool drops the dead idle ones).
func TestPGProxyUpstreamRestart(t *testing.T) {
	d := daemonWith(t)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead)})
	ctx := context.Background()
	idle := pgConnect(t, d, tok, "main") // one more server connection, returned below
	idle.Close(ctx)
	c := pgConnect(t, d, tok, "main")
	if err := pg.Restart(); err != nil {
		t.Fatal(err)
	}
	err := c.QueryRow(ctx, "SELECT 1").Scan(new(int))
	if err == nil {
		t.Fatal("a session outlived its server's restart")
	}
	for i := 0; i < 3; i++ {
		c2 := pgConnect(t, d, tok, "main")
		var n int
		if err := c2.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil || n != 1 {
			t.Fatalf("client %d after the restart: %v", i, err)
		}
		c2.Close(ctx)
	}
}

// TestPGProxyConnectCycles: 10,000 connect / query / disconnect cycles
// reuse pooled server connections and leave no more open than the pool
// holds.
func TestPGProxyConnectCycles(t *testing.T) {
	d := daemonWith(t, testdaemon.WithArgs("--pg-pool-size", "8"))
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead, core.ScopeDatabaseWrite)})
	cfg, err := pgx.ParseConfig(pgURL(d, tok, "main"))
	if err != nil {
		t.Fatal(err)
	}
	const workers, cycles = 4, 10000
	errs := make(chan error, workers)
	start := time.Now()
	for w := 0; w < workers; w++ {
		go func() {
			for i := 0; i < cycles/workers; i++ {
				// Each cycle has its own deadline: a stuck one fails the
				// test with its number instead of hanging the package.
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				c, err := pgx.ConnectConfig(ctx, cfg)
				if err != nil {
					cancel()
					errs <- fmt.Errorf("cycle %d: connect: %w", i, err)
					return
				}
				var n int
				err = c.QueryRow(ctx, "SELECT 1").Scan(&n)
				c.Close(ctx)
				cancel()
				if err != nil {
					errs <- fmt.Errorf("cycle %d: SELECT 1: %w", i, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d connect/query/disconnect cycles in %v (%.0f/s)", cycles, time.Since(start), cycles/time.Since(start).Seconds())
	var n int
	if err := pgAdmin(t, "postgres").QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE usename = 'helios_write'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n > 8 {
		t.Fatalf("%d server connections of helios_write are open after the cycles: more than the pool of 8", n)
	}
}

// TestPGProxySlowReader: a 200 MB result read slowly by its client does not
// grow heliosd's memory by more than a few MB: the pump stops reading the
// server while the client is behind.
func TestPGProxySlowReader(t *testing.T) {
	d := daemonWith(t)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead)})
	c := pgConnect(t, d, tok, "main")
	ctx := context.Background()
	before := rssKB(t, d.PID())
	rows, err := c.Query(ctx, "SELECT repeat('x', 1000) FROM generate_series(1, 200000)")
	if err != nil {
		t.Fatal(err)
	}
	slowRead(t, d.PID(), before, rows.Next, func() int { return len(rows.RawValues()[0]) }, rows.Err)
}

// slowRead reads the 200,000 rows of 1,000 bytes a slow-reader test asked
// for (next and size are the driver's, err its final error), pausing every
// 20,000 rows so that the server runs far ahead, and fails when heliosd
// (pid) grew by more than 32 MiB over before (KiB) meanwhile.
func slowRead(t *testing.T, pid, before int, next func() bool, size func() int, err func() error) {
	t.Helper()
	peak, total, n := before, 0, 0
	for next() {
		total += size()
		n++
		if n%20000 == 0 {
			time.Sleep(300 * time.Millisecond) // a slow reader: the server is far ahead
			peak = max(peak, rssKB(t, pid))
		}
	}
	if err := err(); err != nil || n != 200000 || total != 200000*1000 {
		t.Fatalf("read %d rows, %d bytes: %v", n, total, err)
	}
	t.Logf("heliosd RSS %d KiB before, %d KiB at most while 200 MB went through a slow reader", before, peak)
	if peak-before > 32<<10 {
		t.Fatalf("heliosd grew by %d KiB while streaming 200 MB to a slow reader", peak-before)
	}
}

// rssKB reads a process's resident set size.
func rssKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(b), "VmRSS:")
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		t.Fatal("no VmRSS")
	}
	n, _ := strconv.Atoi(fields[0])
	return n
}

// TestPGProxyCopyOutAndNotify: COPY TO STDOUT streams through, and
// LISTEN/NOTIFY delivers a notification to a waiting client (an unsolicited
// server message the pump forwards while the client is silent).
func TestPGProxyCopyOutAndNotify(t *testing.T) {
	d := daemonWith(t)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
	out, err := exec.Command("psql", pgURL(d, tok, "main"), "-Atq", "-c", "COPY (SELECT g, g * 2 FROM generate_series(1, 3) g) TO STDOUT WITH (FORMAT csv)").CombinedOutput()
	if err != nil || string(out) != "1,2\n2,4\n3,6\n" {
		t.Fatalf("COPY TO STDOUT: %v\n%q", err, out)
	}
	ctx := context.Background()
	listener := pgConnect(t, d, tok, "main")
	if _, err := listener.Exec(ctx, "LISTEN helios_events"); err != nil {
		t.Fatal(err)
	}
	notifier := pgConnect(t, d, tok, "main")
	if _, err := notifier.Exec(ctx, "SELECT pg_notify('helios_events', 'hello')"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := listener.WaitForNotification(wctx)
	if err != nil || n.Channel != "helios_events" || n.Payload != "hello" {
		t.Fatalf("notification: %+v %v", n, err)
	}
}

// TestPGProxyUpstreamDown: heliosd starts while its upstream is down, says
// so in /healthz, and clients get PostgreSQL's "cannot connect now"
// (57P03) with the reason, not a hang.
func TestPGProxyUpstreamDown(t *testing.T) {
	down := testdaemon.FreeAddr(t, "127.0.0.1") // nothing listens there
	d := testdaemon.Start(t, testdaemon.WithArgs("--pg-upstream", "postgres://postgres:pw@"+down+"/postgres?sslmode=disable&connect_timeout=2"))
	d.CheckUpstreamDown(t, "postgres", down, ":pw@")
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
	start := time.Now()
	_, err := pgx.Connect(context.Background(), pgURL(d, tok, "main"))
	if code, msg := pgCode(err); code != "57P03" || !strings.Contains(msg, "upstream PostgreSQL server") || time.Since(start) > 15*time.Second {
		t.Fatalf("connect with the upstream down: %v after %v", err, time.Since(start))
	}
	// The built-in endpoints still work: tokens are still issued and checked.
	if status, _ := d.Do(t, "GET", "/v1/databases", tok, nil); status != 200 {
		t.Fatalf("the issuer with an upstream down: %d", status)
	}
}

// TestPGProxyRevocationMidQuery: a token revoked while its statement runs
// ends the session at once, and the statement stops on the server too.
func TestPGProxyRevocationMidQuery(t *testing.T) {
	d := daemonWith(t)
	ctx := context.Background()
	owner := d.NewUser(t)
	tok, id := d.CreateToken(t, owner, map[string]any{"name": "revoked-mid-query", "scopes": []string{"*"}})
	c := pgConnect(t, d, tok, "main")
	var pid int
	if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := c.Exec(ctx, "SELECT pg_sleep(60)"); done <- err }()
	time.Sleep(300 * time.Millisecond)
	d.Revoke(t, owner, id)
	select {
	case err := <-done:
		if code, _ := pgCode(err); code != "28P01" && !c.IsClosed() {
			t.Fatalf("the running statement ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the session outlived its revoked token while a statement ran")
	}
	waitNone(t, "pg_sleep(60) still runs on the server after its session was revoked",
		"SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)
}

// TestPGProxyStartupSettings: what a client sets at startup reaches its
// server session: application_name, and PGOPTIONS's -c settings; a
// replication connection is refused, not silently made an ordinary one.
func TestPGProxyStartupSettings(t *testing.T) {
	d := daemonWith(t)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead)})
	cmd := exec.Command("psql", pgURL(d, tok, "main")+"&application_name=startup-test", "-Atc",
		"SELECT current_setting('application_name'), current_setting('search_path'), current_setting('work_mem')")
	cmd.Env = append(os.Environ(), "PGOPTIONS=-c search_path=app,public -c work_mem=7MB")
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "startup-test|app,public|7MB\n" {
		t.Fatalf("startup settings: %v %q", err, out)
	}
	cmd = exec.Command("psql", pgURL(d, tok, "main")+"&replication=database", "-Atc", "IDENTIFY_SYSTEM")
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "replication connections are not supported") {
		t.Fatalf("replication connection: %v %s", err, out)
	}
}
