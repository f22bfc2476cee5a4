package e2e

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/heliosdb/auth/core"
)

var dialSeq atomic.Int64

// mysqlVia opens a one-connection database/sql pool for tok on database db
// ("" for none); tlsMode is "skip-verify" or "false" (the RSA key
// exchange). Its connections leave through dial when it is not nil
// (registered with mysql.RegisterDialContext under a fresh network name).
func mysqlVia(t *testing.T, d *daemon, tok, tlsMode, db string, dial func(ctx context.Context, addr string) (net.Conn, error)) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = "default", tok, "tcp", d.MySQL, db
	cfg.Timeout, cfg.ReadTimeout = 10*time.Second, 10*time.Second
	if tlsMode != "false" {
		cfg.TLSConfig = tlsMode
	}
	if dial != nil {
		cfg.Net = fmt.Sprintf("e2e-dial-%d", dialSeq.Add(1))
		mysql.RegisterDialContext(cfg.Net, dial)
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pool := sql.OpenDB(conn)
	pool.SetMaxOpenConns(1)
	t.Cleanup(func() { pool.Close() })
	return pool
}

// TestMySQLIPAllowlist: a token whose allowed_ips is 127.0.0.2 is refused
// from 127.0.0.1 with 1045 naming the reason, and accepted from 127.0.0.2
// (full authentication, then fast authentication) with go-sql-driver; the
// mariadb CLI (which cannot choose its source address) is refused from
// 127.0.0.1.
func TestMySQLIPAllowlist(t *testing.T) {
	d := startDaemon(t)
	from2 := dialerFrom(t, "127.0.0.2")
	bearer := d.NewUser(t)
	tok, _ := d.CreateToken(t, bearer, map[string]any{"name": "pinned", "allowed_ips": []string{"127.0.0.2"}})
	via2 := func(ctx context.Context, addr string) (net.Conn, error) { return from2.DialContext(ctx, "tcp", addr) }

	for _, mode := range []string{"false", "skip-verify"} {
		err := mysqlVia(t, d, tok, mode, "main", nil).Ping()
		if mysqlErrNumber(err) != 1045 || !strings.Contains(err.Error(), "Access denied for user 'default'@'127.0.0.1'") ||
			!strings.Contains(err.Error(), core.ErrAddrNotAllowed.Message) {
			t.Fatalf("tls=%s from 127.0.0.1: %v", mode, err)
		}
		for i := 0; i < 2; i++ { // the second connection takes the fast path
			db := mysqlVia(t, d, tok, mode, "main", via2)
			var user string
			if err := db.QueryRow("SELECT USER()").Scan(&user); err != nil || user != "default@127.0.0.2" {
				t.Fatalf("tls=%s from 127.0.0.2, connection %d: %v %q", mode, i, err, user)
			}
		}
	}
	out, err := mariadbCLI(t, d.MySQL, tok, "--skip-ssl", "main", "-e", "SELECT 1")
	if err == nil || !strings.Contains(out, "ERROR 1045 (28000)") || !strings.Contains(out, core.ErrAddrNotAllowed.Message) {
		t.Fatalf("mariadb from 127.0.0.1: %v %q", err, out)
	}
	checkAuthMetrics(t, d, "mysql", []string{tok}, "ok", "forbidden")
}

// TestMySQLTestTokenDatabases: a test token connects to a registered test
// database and is refused (1044) on any other, at connect and on USE /
// COM_INIT_DB; without a database it connects, and statements that need one
// get 1046 until a test database is selected.
func TestMySQLTestTokenDatabases(t *testing.T) {
	d := startDaemon(t)
	bearer := d.NewUser(t)
	d.MustJSON(t, http.StatusCreated, "POST", "/v1/databases", bearer, map[string]any{"name": "ci_test", "test": true}, nil)
	d.MustJSON(t, http.StatusCreated, "POST", "/v1/databases", bearer, map[string]any{"name": "prod"}, nil)
	tok, _ := d.CreateToken(t, bearer, map[string]any{"name": "ci", "type": "test"})
	if !strings.HasPrefix(tok, "hdb_test_") {
		t.Fatalf("test token %.9s…", tok)
	}
	denied := func(err error, db string) bool {
		return mysqlErrNumber(err) == 1044 && strings.Contains(err.Error(), "to database '"+db+"': "+core.ErrTestDatabaseOnly.Message)
	}
	for _, name := range []string{"main", "prod"} {
		if err := mysqlVia(t, d, tok, "false", name, nil).Ping(); !denied(err, name) {
			t.Fatalf("test token on %s: %v", name, err)
		}
	}
	db := mysqlVia(t, d, tok, "skip-verify", "ci_test", nil)
	var cur string
	if err := db.QueryRow("SELECT DATABASE()").Scan(&cur); err != nil || cur != "ci_test" {
		t.Fatalf("test token on ci_test: %v %q", err, cur)
	}
	if _, err := db.Exec("SELECT * FROM t"); mysqlErrNumber(err) != 1235 {
		t.Fatalf("a statement in ci_test: %v", err)
	}
	if _, err := db.Exec("USE prod"); !denied(err, "prod") {
		t.Fatalf("USE prod: %v", err)
	}

	none := mysqlVia(t, d, tok, "false", "", nil)
	var one int
	if err := none.QueryRow("SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 without a database: %v", err)
	}
	if _, err := none.Exec("SELECT * FROM t"); mysqlErrNumber(err) != 1046 || !strings.Contains(err.Error(), core.ErrTestDatabaseOnly.Message) {
		t.Fatalf("a statement without a database: %v", err)
	}
	if _, err := none.Exec("USE ci_test"); err != nil {
		t.Fatalf("USE ci_test: %v", err)
	}
	if _, err := none.Exec("SELECT * FROM t"); mysqlErrNumber(err) != 1235 {
		t.Fatalf("a statement after USE ci_test: %v", err)
	}

	out, err := mariadbCLI(t, d.MySQL, tok, "--skip-ssl", "main", "-e", "SELECT 1")
	if err == nil || !strings.Contains(out, "ERROR 1044 (42000)") || !strings.Contains(out, core.ErrTestDatabaseOnly.Message) {
		t.Fatalf("mariadb, test token on main: %v %q", err, out)
	}
	t.Logf("mariadb, test token on main: %s", strings.TrimSpace(out))
	out, err = mariadbCLI(t, d.MySQL, tok, "--ssl", "--skip-ssl-verify-server-cert", "ci_test", "-N", "-e", "SELECT DATABASE()")
	if err != nil || strings.TrimSpace(out) != "ci_test" {
		t.Fatalf("mariadb, test token on ci_test: %v %q", err, out)
	}
	checkAuthMetrics(t, d, "mysql", []string{tok}, "ok", "forbidden")
}

// TestMySQLOpenSessionRevoked: open go-sql-driver connections whose token
// is revoked through the REST API fail their next query within a second,
// naming the revocation — a held connection with the session's ending
// (1045 "session ended"), a pool by reconnecting and being refused — and a
// logout-all ends the account's sessions likewise.
func TestMySQLOpenSessionRevoked(t *testing.T) {
	d := startDaemon(t)
	bearer := d.NewUser(t)
	tok, id := d.CreateToken(t, bearer, map[string]any{"name": "open-sessions"})
	ctx := context.Background()
	pool := mysqlVia(t, d, tok, "false", "main", nil)
	held, err := mysqlVia(t, d, tok, "skip-verify", "main", nil).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	selectOne := func(q interface {
		QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	}) error {
		var n int
		return q.QueryRowContext(ctx, "SELECT 1").Scan(&n)
	}
	if err := selectOne(pool); err != nil {
		t.Fatalf("pool before: %v", err)
	}
	if err := selectOne(held); err != nil {
		t.Fatalf("held connection before: %v", err)
	}

	d.Revoke(t, bearer, id)
	revoked := time.Now()
	failsWithin(t, "held connection", revoked, time.Second, "(session ended): "+core.ErrRevoked.Error(), func() error { return selectOne(held) })
	failsWithin(t, "pool", revoked, time.Second, core.MsgRevoked, func() error { return selectOne(pool) })

	// Logout-all ends every session of the account, naming the reason.
	bearer2 := d.NewUser(t)
	tok2, _ := d.CreateToken(t, bearer2, map[string]any{"name": "logout-all"})
	held2, err := mysqlVia(t, d, tok2, "false", "main", nil).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held2.Close()
	if err := selectOne(held2); err != nil {
		t.Fatalf("before logout-all: %v", err)
	}
	time.Sleep(1100 * time.Millisecond) // the epoch has a second's granularity: tokens issued before it
	d.MustJSON(t, http.StatusOK, "POST", "/v1/auth/logout-all", bearer2, nil, nil)
	failsWithin(t, "logout-all", time.Now(), time.Second, "(session ended): "+core.ErrLoggedOut.Error(), func() error { return selectOne(held2) })
}

// TestMySQLIdleSessionEnded: an authenticated connection that sends
// nothing is ended by the gateway when its token is revoked — an
// unsolicited ERR 1045 naming the reason (sequence id 1, read by the client
// as the reply to its next command), then a close — at once (netio's
// Gateway.Revoke) or at worst within the transport's periodic re-check,
// with two seconds allowed for a loaded machine. Shown on the raw
// socket under go-sql-driver, and with the mariadb CLI, whose next query
// prints the reason.
func TestMySQLIdleSessionEnded(t *testing.T) {
	d := startDaemon(t)
	bearer := d.NewUser(t)
	tok, id := d.CreateToken(t, bearer, map[string]any{"name": "idle-sessions"})
	ctx := context.Background()

	var mu sync.Mutex
	var raw net.Conn
	capture := func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", addr)
		mu.Lock()
		raw = c
		mu.Unlock()
		return c, err
	}
	held, err := mysqlVia(t, d, tok, "false", "main", capture).Conn(ctx) // RSA: the socket carries MySQL packets
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := held.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	cli := startMariaDBSession(t, d, tok)
	if got := cli.query(t, "SELECT 1;"); got != "1" {
		t.Fatalf("mariadb session before: %q", got)
	}

	d.Revoke(t, bearer, id)
	revoked := time.Now()
	const idleBound = 2 * time.Second
	mu.Lock()
	c := raw
	mu.Unlock()
	c.SetReadDeadline(revoked.Add(idleBound))
	hdr := make([]byte, 4)
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatalf("go-sql-driver socket, idle: nothing after %v: %v", time.Since(revoked), err)
	}
	body := make([]byte, int(hdr[0])|int(hdr[1])<<8|int(hdr[2])<<16)
	if _, err := io.ReadFull(c, body); err != nil || hdr[3] != 1 || body[0] != 0xff || binary.LittleEndian.Uint16(body[1:]) != 1045 ||
		!strings.HasSuffix(string(body), "(session ended): "+core.ErrRevoked.Error()) {
		t.Fatalf("go-sql-driver socket, idle: %q (seq %d) %v", body, hdr[3], err)
	}
	if n, err := c.Read(hdr); n != 0 || err != io.EOF {
		t.Fatalf("go-sql-driver socket, idle: still open (%d, %v)", n, err)
	}
	t.Logf("idle session ended %v after the revoke: %q", time.Since(revoked).Round(time.Millisecond), body[9:])

	time.Sleep(time.Until(revoked.Add(idleBound))) // the CLI's session has been ended by now too
	got := cli.query(t, "SELECT 1;")
	if !strings.Contains(got, "ERROR 1045 (28000)") || !strings.Contains(got, core.MsgRevoked) {
		t.Fatalf("mariadb session after the revoke: %q", got)
	}
	t.Logf("mariadb prints: %s", got)
}

// TestMySQLSessionExpiry: a session whose token expires while it is open
// (and idle) is ended at the expiry, by default; its next query names the
// reason.
func TestMySQLSessionExpiry(t *testing.T) {
	d := startDaemon(t)
	now := time.Now()
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes, IssuedAt: now.Unix() - 60, ExpiresAt: now.Unix() + 2})
	ctx := context.Background()
	held, err := mysqlVia(t, d, tok, "false", "main", nil).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := held.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(time.Unix(now.Unix()+3, 0).Add(500 * time.Millisecond)))
	err = held.PingContext(ctx)
	if mysqlErrNumber(err) != 1045 || !strings.Contains(err.Error(), "(session ended): "+core.MsgExpired) {
		t.Fatalf("after the expiry: %v", err)
	}
	t.Logf("after the expiry: %v", err)
}

// mariadbSession is a mariadb CLI reading statements from a pipe, as a
// user at its prompt would type them (batch mode, unbuffered, --force so
// that an error does not end it).
type mariadbSession struct {
	in  io.WriteCloser
	out *bufio.Reader
}

// startMariaDBSession starts the CLI over TLS on database main and stops it
// when the test ends.
func startMariaDBSession(t *testing.T, d *daemon, tok string) *mariadbSession {
	t.Helper()
	if _, err := exec.LookPath("mariadb"); err != nil {
		t.Fatal("the mariadb client is not installed: run scripts/install-deps.sh (make test does)")
	}
	host, port, _ := net.SplitHostPort(d.MySQL)
	cmd := exec.Command("mariadb", "-h", host, "-P", port, "-u", "default", "-p"+tok, "--ssl", "--skip-ssl-verify-server-cert",
		"--connect-timeout=10", "--unbuffered", "--force", "-N", "-B", "main")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		pw.Close()
	})
	return &mariadbSession{in: in, out: bufio.NewReader(pr)}
}

// query sends q and returns the first line the CLI prints for it, past the
// echo of the statement that --force prints around an error.
func (m *mariadbSession) query(t *testing.T, q string) string {
	t.Helper()
	if _, err := io.WriteString(m.in, q+"\n"); err != nil {
		t.Fatal(err)
	}
	line := make(chan string, 1)
	go func() {
		for {
			l, err := m.out.ReadString('\n')
			l = strings.TrimSpace(l)
			if err != nil || (l != "" && l != "--------------" && l != strings.TrimSuffix(q, ";")) {
				line <- l
				return
			}
		}
	}()
	select {
	case l := <-line:
		return l
	case <-time.After(10 * time.Second):
		t.Fatalf("mariadb printed nothing for %q", q)
	}
	return ""
}
