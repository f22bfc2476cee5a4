package proxy

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testdaemon"
)

// myConfig is go-sql-driver's configuration for a client of d with token
// tok on database db (plaintext on loopback: the RSA key exchange).
func myConfig(d *testdaemon.Daemon, tok, db string) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = "default", tok, "tcp", d.MySQL, db
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 10*time.Second, 30*time.Second, 30*time.Second
	return cfg
}

// myOpen opens a database/sql pool for cfg, closed when the test ends.
// For a client of the gateway it logs in once first (errors are the
// test's to see later): the token is then in the gateway's fast-auth cache,
// so that the pool's sessions authenticate on their event loop and are
// proxied there, as a token's sessions are after its first (whose RSA
// exchange moves it to a goroutine, and its proxy with it).
func myOpen(t *testing.T, cfg *mysql.Config) *sql.DB {
	t.Helper()
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.User == "default" {
		warm := sql.OpenDB(conn)
		_ = warm.Ping()
		warm.Close()
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

// mySessions reads heliosd's counts of MySQL sessions proxied on their
// event loop and on goroutines (/metrics).
func mySessions(t *testing.T, d *testdaemon.Daemon) (loop, goroutine int) {
	t.Helper()
	code, body := d.Do(t, "GET", "/metrics", "", nil)
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, line := range strings.Split(string(body), "\n") {
		var n int
		if _, err := fmt.Sscanf(line, `helios_gateway_mysql_proxy_sessions_total{path="loop"} %d`, &n); err == nil {
			loop = n
		}
		if _, err := fmt.Sscanf(line, `helios_gateway_mysql_proxy_sessions_total{path="goroutine"} %d`, &n); err == nil {
			goroutine = n
		}
	}
	return loop, goroutine
}

// onLoop returns a check that heliosd proxied at least min sessions on
// their event loop since it was called, and none on a goroutine.
func onLoop(t *testing.T, d *testdaemon.Daemon) func(min int) {
	t.Helper()
	loop, gor := mySessions(t, d)
	return func(min int) {
		t.Helper()
		loop2, gor2 := mySessions(t, d)
		if loop2-loop < min || gor2 != gor {
			t.Fatalf("sessions proxied on the event loop: %d (want at least %d), on goroutines: %d (want none)", loop2-loop, min, gor2-gor)
		}
	}
}

// myDB opens a pool of clients of d with token tok on database db.
func myDB(t *testing.T, d *testdaemon.Daemon, tok, db string) *sql.DB {
	t.Helper()
	return myOpen(t, myConfig(d, tok, db))
}

// mariaAdmin connects to the upstream MariaDB directly, as root.
func mariaAdmin(t *testing.T) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = "root", maria.Password, "tcp", maria.Addr
	return myOpen(t, cfg)
}

// myErr returns the MySQL error number and message of err (0 when it is
// not a server error).
func myErr(err error) (uint16, string) {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number, me.Message
	}
	return 0, ""
}

// mariadbCLI runs the mariadb client against d as user default with
// password tok, without TLS, and returns its combined output.
func mariadbCLI(t *testing.T, d *testdaemon.Daemon, tok string, args ...string) (string, error) {
	t.Helper()
	return mariadbScript(t, d, tok, "", args...)
}

// mariadbScript is mariadbCLI with script on the client's standard input.
func mariadbScript(t *testing.T, d *testdaemon.Daemon, tok, script string, args ...string) (string, error) {
	t.Helper()
	host, port, _ := net.SplitHostPort(d.MySQL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	all := append([]string{"-h", host, "-P", port, "-u", "default", "-p" + tok, "--skip-ssl", "--connect-timeout=10"}, args...)
	cmd := exec.CommandContext(ctx, "mariadb", all...)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func queryString(t *testing.T, db interface {
	QueryRow(string, ...any) *sql.Row
}, q string, args ...any) string {
	t.Helper()
	var s sql.NullString
	if err := db.QueryRow(q, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s.String
}

// TestMySQLProxyFullAccess: a full-access token reaches the real MariaDB as
// the owner user: DDL, writes and reads with the mariadb CLI and
// go-sql-driver (prepared statements, transactions, multi-statements on
// and off, LOAD DATA LOCAL), and the client sees the server's version.
func TestMySQLProxyFullAccess(t *testing.T) {
	d := daemonWith(t)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
	out, err := mariadbCLI(t, d, tok, "main", "-N", "-e",
		"CREATE TABLE full_access(a INT PRIMARY KEY, b VARCHAR(20)); INSERT INTO full_access VALUES (1, 'one'), (2, 'two'); "+
			"SELECT b FROM full_access ORDER BY a; SELECT CURRENT_USER()")
	if err != nil || out != "one\ntwo\nhelios_owner@%\n" {
		t.Fatalf("mariadb: %v\n%s", err, out)
	}
	// The greeting announces the upstream's version (the CLI's \s shows it).
	if out, err := mariadbCLI(t, d, tok, "main", "-e", "\\s"); err != nil || !strings.Contains(out, "Server version:\t\t10.11.") {
		t.Fatalf("mariadb \\s: %v\n%s", err, out)
	}
	db := myDB(t, d, tok, "main")
	loopBefore, _ := mySessions(t, d)
	if v := queryString(t, db, "SELECT VERSION()"); !strings.Contains(v, "MariaDB") {
		t.Fatalf("VERSION() %q: not the upstream's", v)
	}
	// MySQL 8 clients' default collation (255) is unknown to MariaDB 10:
	// the server connection is opened with utf8mb4_general_ci.
	cfg255 := myConfig(d, tok, "main")
	cfg255.Collation = "utf8mb4_0900_ai_ci"
	if cs := queryString(t, myOpen(t, cfg255), "SELECT CONCAT(@@character_set_client, ' ', ?)", "héllo ✓"); cs != "utf8mb4 héllo ✓" {
		t.Fatalf("a client with collation 255: %q", cs)
	}
	// Arguments: COM_STMT_PREPARE, EXECUTE (binary rows), CLOSE; in TLS too
	// (the session moves into TLS before it is paired with its server).
	if b := queryString(t, db, "SELECT b FROM full_access WHERE a = ?", 2); b != "two" {
		t.Fatalf("prepared SELECT: %q", b)
	}
	tlsCfg := myConfig(d, tok, "main")
	tlsCfg.TLSConfig = "skip-verify"
	if b := queryString(t, myOpen(t, tlsCfg), "SELECT b FROM full_access WHERE a = ?", 1); b != "one" {
		t.Fatalf("prepared SELECT in TLS: %q", b)
	}
	stmt, err := db.Prepare("INSERT INTO full_access VALUES (?, ?)")
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range []string{"three", "four"} {
		if _, err := stmt.Exec(3+i, s); err != nil {
			t.Fatal(err)
		}
	}
	stmt.Close()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO full_access VALUES (?, ?)", 10, "rolled back"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	tx, err = db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("UPDATE full_access SET b = 'FOUR' WHERE a = 4"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// Without multiStatements the server refuses two statements (the
	// client's flags reach it); with it, both run and both results come.
	if _, err := db.Exec("SELECT 1; SELECT 2"); err == nil {
		t.Fatal("two statements ran on a connection without CLIENT_MULTI_STATEMENTS")
	}
	cfg := myConfig(d, tok, "main")
	cfg.MultiStatements = true
	multi := myOpen(t, cfg)
	if _, err := multi.Exec("INSERT INTO full_access VALUES (5, 'five'); INSERT INTO full_access VALUES (6, 'six')"); err != nil {
		t.Fatal(err)
	}
	rows, err := multi.Query("SELECT COUNT(*) FROM full_access; SELECT b FROM full_access WHERE a = 6")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			got = append(got, s)
		}
		if !rows.NextResultSet() {
			break
		}
	}
	if err := rows.Err(); err != nil || strings.Join(got, ",") != "6,six" {
		t.Fatalf("two result sets: %v %v", got, err)
	}
	rows.Close()
	// LOAD DATA LOCAL: the server asks for the client's file.
	mysql.RegisterReaderHandler("full_access_rows", func() io.Reader { return strings.NewReader("7\tseven\n8\teight\n") })
	defer mysql.DeregisterReaderHandler("full_access_rows")
	if _, err := db.Exec("LOAD DATA LOCAL INFILE 'Reader::full_access_rows' INTO TABLE full_access"); err != nil {
		t.Fatalf("LOAD DATA LOCAL: %v", err)
	}
	// Checked on the server itself.
	var n int
	var s string
	if err := mariaAdmin(t).QueryRow("SELECT COUNT(*), GROUP_CONCAT(b ORDER BY a) FROM main.full_access").Scan(&n, &s); err != nil ||
		n != 8 || s != "one,two,three,FOUR,five,six,seven,eight" {
		t.Fatalf("the rows on the upstream: %d %q %v", n, s, err)
	}
	// Every plaintext session of the cached token ran on its event loop
	// (the TLS one on a goroutine).
	if loop, _ := mySessions(t, d); loop-loopBefore < 3 {
		t.Fatalf("%d sessions proxied on the event loop", loop-loopBefore)
	}
}

// TestMySQLProxyReadToken: a read token reads, and every write is refused
// by the gateway's classifier with the guide's message before it leaves
// (COM_QUERY, each statement of a multi-statement text, COM_STMT_PREPARE,
// LOAD DATA LOCAL); the session goes on.
func TestMySQLProxyReadToken(t *testing.T) {
	d := daemonWith(t)
	owner := myDB(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes}), "main")
	if _, err := owner.Exec("CREATE TABLE read_token(a INT)"); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Exec("INSERT INTO read_token VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	cfg := myConfig(d, d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead)}), "main")
	cfg.MultiStatements = true
	read := myOpen(t, cfg)
	onLoopCheck := onLoop(t, d)
	read.SetMaxOpenConns(1)
	if u := queryString(t, read, "SELECT CURRENT_USER()"); u != "helios_read@%" {
		t.Fatalf("a read token logged in as %q", u)
	}
	mysql.RegisterReaderHandler("read_token_rows", func() io.Reader { return strings.NewReader("9\n") })
	defer mysql.DeregisterReaderHandler("read_token_rows")
	for _, q := range []string{"INSERT INTO read_token VALUES (2)", "SELECT 1; DELETE FROM read_token",
		"LOAD DATA LOCAL INFILE 'Reader::read_token_rows' INTO TABLE read_token"} {
		_, err := read.Exec(q)
		if code, msg := myErr(err); code != 1142 || !strings.Contains(msg, "'default'@") ||
			!strings.HasSuffix(msg, "Token does not have required scope: database:write") {
			t.Fatalf("%s by a read token: %v", q, err)
		}
	}
	if _, err := read.Prepare("UPDATE read_token SET a = ?"); err == nil {
		t.Fatal("a read token prepared an UPDATE")
	} else if code, msg := myErr(err); code != 1142 || !strings.Contains(msg, "database:write") {
		t.Fatalf("prepared UPDATE: %v", err)
	}
	if n := queryString(t, read, "SELECT COUNT(*) FROM read_token WHERE a = ?", 1); n != "1" {
		t.Fatalf("after the refusals: %s rows", n)
	}
	onLoopCheck(1)
	out, _ := mariadbScript(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead)}),
		"DELETE FROM read_token;\nSELECT 'still here';\n", "main", "-N", "--force")
	if !strings.Contains(out, "ERROR 1142 (42000)") || !strings.Contains(out, "Token does not have required scope: database:write") ||
		!strings.Contains(out, "still here") {
		t.Fatalf("mariadb: %s", out)
	}
}

// TestMySQLProxyRoleWall runs a heliosd built without the classifier
// (helios_bypass_classifier, a test build): the upstream users alone still
// refuse what the scopes do not allow, and the error names the scope.
func TestMySQLProxyRoleWall(t *testing.T) {
	d := daemonWith(t, testdaemon.WithBuildTags("helios_bypass_classifier"))
	owner := myDB(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes}), "main")
	read := myDB(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead)}), "main")
	write := myDB(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead, core.ScopeDatabaseWrite)}), "main")
	onLoopCheck := onLoop(t, d)
	if _, err := owner.Exec("CREATE TABLE role_wall(a INT)"); err != nil {
		t.Fatal(err)
	}
	_, err := read.Exec("INSERT INTO role_wall VALUES (1)")
	if code, msg := myErr(err); code != 1142 || !strings.Contains(msg, "helios_read") ||
		!strings.Contains(msg, "Token does not have required scope: database:write") {
		t.Fatalf("insert by the read user: %v", err)
	}
	if _, err := write.Exec("INSERT INTO role_wall VALUES (2)"); err != nil {
		t.Fatalf("insert by the write user: %v", err)
	}
	_, err = write.Exec("CREATE TABLE role_wall_2(a INT)")
	if code, msg := myErr(err); code != 1142 || !strings.Contains(msg, "Token does not have required scope: schema:write") {
		t.Fatalf("DDL by the write user: %v", err)
	}
	_, err = write.Exec("SET GLOBAL max_connections = 1")
	if code, msg := myErr(err); code != 1227 || !strings.Contains(msg, "no server-wide privilege") {
		t.Fatalf("SET GLOBAL by the write user: %v", err)
	}
	_, err = owner.Exec("SELECT * FROM mysql.user")
	if code, msg := myErr(err); code != 1142 || !strings.Contains(msg, "registered databases") {
		t.Fatalf("the owner reading mysql.user: %v", err)
	}
	_, err = owner.Exec("GRANT ALL ON *.* TO helios_owner@'%'")
	if code, _ := myErr(err); code != 1045 && code != 1044 && code != 1227 {
		t.Fatalf("the owner granting itself everything: %v", err)
	}
	onLoopCheck(3)
}

// TestMySQLProxyDatabases: POST /v1/databases creates the database on
// MariaDB and grants it; a test token reaches only test databases (the
// test users have no grant elsewhere: SELECT * FROM main.t from a test
// database is refused by the server); DELETE drops it and its grants.
func TestMySQLProxyDatabases(t *testing.T) {
	d := daemonWith(t)
	owner := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
	name := "my_scratch_" + time.Now().Format("150405")
	d.MustJSON(t, 201, "POST", "/v1/databases", owner, map[string]any{"name": name, "test": true}, nil)
	admin := mariaAdmin(t)
	if n := queryString(t, admin, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", name); n != "1" {
		t.Fatalf("POST /v1/databases did not create %s upstream", name)
	}
	if g := queryString(t, admin, "SHOW GRANTS FOR helios_test_owner@'%'"); g == "" {
		t.Fatal("no grants for helios_test_owner")
	}
	ownerDB := myDB(t, d, owner, "main")
	if _, err := ownerDB.Exec("CREATE TABLE prod_secret(a INT)"); err != nil {
		t.Fatal(err)
	}
	testTok := d.Mint(t, core.Claims{Account: 1, Type: core.TypeTest, Flags: core.FlagTestOnly, Scopes: core.AllScopes})
	c := myDB(t, d, testTok, name)
	if _, err := c.Exec("CREATE TABLE t(a INT)"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec("INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if u := queryString(t, c, "SELECT CURRENT_USER()"); u != "helios_test_owner@%" {
		t.Fatalf("a test token logged in as %q", u)
	}
	// The classifier does not read database names inside statements: the
	// server refuses the test user.
	_, err := c.Exec("SELECT * FROM main.prod_secret")
	if code, msg := myErr(err); code != 1142 || !strings.Contains(msg, "helios_test_owner") ||
		!strings.Contains(msg, "Test tokens can only access test databases") {
		t.Fatalf("test token reading main.prod_secret: %v", err)
	}
	// The gateway refuses a test token on a production database, at
	// connect and on USE (COM_INIT_DB, as the CLI sends it).
	_, err = myDB(t, d, testTok, "main").Exec("SELECT 1")
	if code, _ := myErr(err); code != 1044 {
		t.Fatalf("test token on main: %v", err)
	}
	out, _ := mariadbCLI(t, d, testTok, name, "-e", "use main")
	if !strings.Contains(out, "ERROR 1044 (42000)") || !strings.Contains(out, "Test tokens can only access test databases") {
		t.Fatalf("mariadb: use main: %s", out)
	}
	// … and so does the server, to the test user itself.
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = "helios_test_read", readRolePassword(t, "helios_test_read"), "tcp", maria.Addr, "main"
	_, err = myOpen(t, cfg).Exec("SELECT 1")
	if code, _ := myErr(err); code != 1044 {
		t.Fatalf("the test user connected to a production database upstream: %v", err)
	}
	c.Close()
	d.MustJSON(t, 200, "DELETE", "/v1/databases/"+name, owner, nil, nil)
	if n := queryString(t, admin, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", name); n != "0" {
		t.Fatalf("DELETE /v1/databases left %s upstream", name)
	}
	if n := queryString(t, admin, "SELECT COUNT(*) FROM mysql.db WHERE User LIKE 'helios%' AND Db = ?",
		strings.ReplaceAll(name, "_", `\_`)); n != "0" {
		t.Fatalf("DELETE /v1/databases left %s grants for %s", n, name)
	}
}

// TestMySQLProxyPoolExhausted: with every server connection of a role and
// database in use, the next client gets 1040 after --mysql-pool-wait, never
// a hang; once one is released, clients get in again.
func TestMySQLProxyPoolExhausted(t *testing.T) {
	d := daemonWith(t, testdaemon.WithArgs("--mysql-pool-size", "2", "--mysql-pool-wait", "300ms"))
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead)})
	a, b := myDB(t, d, tok, "main"), myDB(t, d, tok, "main")
	for _, db := range []*sql.DB{a, b} {
		if err := db.Ping(); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	err := myDB(t, d, tok, "main").Ping()
	if code, msg := myErr(err); code != 1040 || !strings.HasPrefix(msg, "Too many connections") || time.Since(start) > 3*time.Second {
		t.Fatalf("third client of a pool of 2: %v after %v", err, time.Since(start))
	}
	// Another role has its own pool.
	if err := myDB(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes}), "main").Ping(); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if err := myDB(t, d, tok, "main").Ping(); err != nil {
		t.Fatalf("after a client left: %v", err)
	}
}

// TestMySQLProxyConnectCycles: 10,000 connect / query / disconnect cycles
// reuse pooled server connections (COM_RESET_CONNECTION between clients)
// and leave no more open than the pool holds.
func TestMySQLProxyConnectCycles(t *testing.T) {
	d := daemonWith(t, testdaemon.WithArgs("--mysql-pool-size", "8"))
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead, core.ScopeDatabaseWrite)})
	db := myDB(t, d, tok, "main")
	onLoopCheck := onLoop(t, d)
	db.SetMaxIdleConns(0)           // every query: a new client connection, COM_QUIT after it
	const workers, cycles = 4, 5000 // two client connections a cycle: 10,000 in all
	var mu sync.Mutex
	ids := map[int64]bool{}
	errs := make(chan error, workers)
	start := time.Now()
	for w := 0; w < workers; w++ {
		go func() {
			for i := 0; i < cycles/workers; i++ {
				var id int64
				var v sql.NullInt64
				// @x is set by the previous client of this server
				// connection: COM_RESET_CONNECTION must have cleared it.
				if err := db.QueryRow("SELECT CONNECTION_ID(), @x").Scan(&id, &v); err != nil {
					errs <- err
					return
				}
				if v.Valid {
					errs <- errors.New("a user variable survived into the next client's session")
					return
				}
				if _, err := db.Exec("SET @x = 1"); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				ids[id] = true
				mu.Unlock()
			}
			errs <- nil
		}()
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d connect/query/disconnect cycles in %v (%.0f/s) on %d server connections", 2*cycles, time.Since(start),
		2*cycles/time.Since(start).Seconds(), len(ids))
	if len(ids) > 8 {
		t.Fatalf("%d server connections served the cycles: more than the pool of 8", len(ids))
	}
	var n int
	if err := mariaAdmin(t).QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER LIKE 'helios\\_%'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n > 8 {
		t.Fatalf("%d server connections of the helios users are open after the cycles: more than the pool of 8", n)
	}
	onLoopCheck(2 * cycles)
}

// TestMySQLProxySessionReset: what one client leaves on a server
// connection never reaches the next: an open transaction closes the server
// connection (its writes are rolled back), another database selected is
// selected back, and a clean one is reused.
func TestMySQLProxySessionReset(t *testing.T) {
	d := daemonWith(t)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
	other := "my_other_" + time.Now().Format("150405")
	d.MustJSON(t, 201, "POST", "/v1/databases", tok, map[string]any{"name": other}, nil)
	db := myDB(t, d, tok, "main")
	onLoopCheck := onLoop(t, d)
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(0)
	if _, err := db.Exec("CREATE TABLE session_reset(a INT) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}
	waitIdleMySQL(t, d) // one server connection, back in the pool
	first := queryString(t, db, "SELECT CONNECTION_ID()")
	// The gateway parks the server connection on its event loop once it
	// has read COM_QUIT and reset it: wait until it is idle, then the
	// next client of that loop gets that one (a client of the other loop
	// gets a new one, parked there in turn).
	waitIdleMySQL(t, d)
	reused := false
	for i := 0; i < 20 && !reused; i++ {
		reused = queryString(t, db, "SELECT CONNECTION_ID()") == first
	}
	if !reused {
		t.Fatalf("a clean server connection (%s) was not reused", first)
	}
	// A client that leaves in a transaction.
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"BEGIN", "INSERT INTO session_reset VALUES (1)"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	// The server connection it holds (the pool may hold another idle one:
	// compare with this one, not with the last clean one).
	var inTx string
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&inTx); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if id := queryString(t, db, "SELECT CONNECTION_ID()"); id == inTx {
		t.Fatal("a server connection left in a transaction was handed to the next client")
	}
	if n := queryString(t, db, "SELECT COUNT(*) FROM session_reset"); n != "0" {
		t.Fatalf("the abandoned transaction's row is there: %s", n)
	}
	// A client that selects another database.
	out, err := mariadbCLI(t, d, tok, "main", "-N", "-e", "USE "+other+"; SELECT DATABASE()")
	if err != nil || out != other+"\n" {
		t.Fatalf("mariadb USE: %v %s", err, out)
	}
	for i := 0; i < 3; i++ {
		if v := queryString(t, db, "SELECT DATABASE()"); v != "main" {
			t.Fatalf("a client of main got a server connection on %q", v)
		}
	}
	_, err = db.Exec("USE not_registered")
	if code, _ := myErr(err); code != 1049 {
		t.Fatalf("USE of an unregistered database: %v", err)
	}
	onLoopCheck(8)
}

// waitIdleMySQL waits until /healthz shows an idle MySQL server connection:
// one a client left cleanly is back in the pool (after its reset).
func waitIdleMySQL(t *testing.T, d *testdaemon.Daemon) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := d.Do(t, "GET", "/healthz", "", nil)
		var h struct {
			Upstreams map[string]struct{ Open, Idle int }
		}
		if json.Unmarshal(body, &h) == nil && h.Upstreams["mysql"].Idle >= 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no MySQL server connection went back to the pool: %s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
