package e2e

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/heliosdb/auth/core"
)

// mariadbCLI runs the mariadb client against addr as user default with
// password tok and database main, and returns its combined output and error.
func mariadbCLI(t *testing.T, addr, tok string, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("mariadb"); err != nil {
		t.Fatal("the mariadb client is not installed: run scripts/install-deps.sh (make test does)")
	}
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	all := append([]string{"-h", host, "-P", port, "-u", "default", "-p" + tok, "--connect-timeout=10"}, args...)
	out, err := exec.CommandContext(ctx, "mariadb", all...).CombinedOutput()
	return string(out), err
}

// mysqlDB opens a database/sql pool for tok; tlsMode is "skip-verify" or
// "false" (the RSA key exchange).
func mysqlDB(t *testing.T, d *daemon, tok, tlsMode string) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = "default", tok, "tcp", d.MySQL, "main"
	cfg.Timeout, cfg.ReadTimeout = 10*time.Second, 10*time.Second
	if tlsMode != "false" {
		cfg.TLSConfig = tlsMode
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

// mysqlErrNumber returns the MySQL error number of err (0 when it has none).
func mysqlErrNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

func TestMySQLMariaDBCLI(t *testing.T) {
	d := startDaemon(t)
	tok := scopedToken(t, d)
	for name, args := range map[string][]string{
		"TLS": {"--ssl", "--skip-ssl-verify-server-cert"},
		"RSA": {"--skip-ssl"},
	} {
		out, err := mariadbCLI(t, d.MySQL, tok, append(args, "main", "-N", "-e", "SELECT 1")...)
		if err != nil || strings.TrimSpace(out) != "1" {
			t.Fatalf("%s SELECT 1: %v %q", name, err, out)
		}
		out, err = mariadbCLI(t, d.MySQL, tok, append(args, "main", "-e", "\\s")...)
		tlsUsed := strings.Contains(out, "Cipher in use")
		if err != nil || !strings.Contains(out, "default@127.0.0.1") || tlsUsed != (name == "TLS") {
			t.Fatalf("%s status: %v %q", name, err, out)
		}
		out, err = mariadbCLI(t, d.MySQL, tok, append(args, "main", "-e", "SELECT * FROM helios_whoami()")...)
		if err != nil || !strings.Contains(out, "token_id") || !strings.Contains(out, "tok_") {
			t.Fatalf("%s whoami: %v %q", name, err, out)
		}
	}
	for name, bad := range map[string]string{"tampered": tamper(tok), "expired": d.ExpiredToken(t), "empty": ""} {
		for _, args := range [][]string{{"--ssl", "--skip-ssl-verify-server-cert"}, {"--skip-ssl"}} {
			out, err := mariadbCLI(t, d.MySQL, bad, append(args, "main", "-e", "SELECT 1")...)
			if err == nil || !strings.Contains(out, "ERROR 1045 (28000)") || (bad != "" && strings.Contains(out, bad)) {
				t.Fatalf("%s token %v: %q", name, args, out)
			}
		}
	}
	out, _ := mariadbCLI(t, d.MySQL, d.ExpiredToken(t), "--skip-ssl", "main", "-e", "SELECT 1")
	if !strings.Contains(out, core.MsgExpired) {
		t.Fatalf("expired reason: %q", out)
	}
}

func TestMySQLGoDriver(t *testing.T) {
	d := startDaemon(t)
	tok := scopedToken(t, d)
	for _, mode := range []string{"skip-verify", "false"} {
		db := mysqlDB(t, d, tok, mode)
		db.SetMaxOpenConns(2)
		if err := db.Ping(); err != nil {
			t.Fatalf("tls=%s ping: %v", mode, err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := 0; i < 40; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var n int
				if err := db.QueryRow("SELECT 1").Scan(&n); err != nil || n != 1 {
					errs <- errors.Join(err, errors.New("SELECT 1 did not return 1"))
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("tls=%s: %v", mode, err)
		}
		// database/sql reused the pool's connections rather than dialing anew.
		if st := db.Stats(); st.OpenConnections > 2 || st.MaxOpenConnections != 2 {
			t.Fatalf("tls=%s pool: %+v", mode, st)
		}
		var id, typ, scopes, exp string
		if err := db.QueryRow("SELECT * FROM helios_whoami()").Scan(&id, &typ, &scopes, &exp); err != nil || !strings.HasPrefix(id, "tok_") || scopes != "*" {
			t.Fatalf("tls=%s whoami: %v %s %s %s", mode, err, id, typ, scopes)
		}
		var dbname string
		if err := db.QueryRow("SELECT DATABASE()").Scan(&dbname); err != nil || dbname != "main" {
			t.Fatalf("tls=%s DATABASE(): %v %q", mode, err, dbname)
		}
		_, err := db.Exec("INSERT INTO t VALUES (1)")
		if mysqlErrNumber(err) != 1235 || !strings.Contains(err.Error(), "no upstream database configured") {
			t.Fatalf("tls=%s INSERT: %v", mode, err)
		}
	}
	ro := mysqlDB(t, d, scopedToken(t, d, "database:read"), "skip-verify")
	_, err := ro.Exec("UPDATE t SET a = 1")
	if mysqlErrNumber(err) != 1142 || !strings.Contains(err.Error(), "database:write") {
		t.Fatalf("UPDATE with a read-only token: %v", err)
	}
	_, err = ro.Exec("DROP DATABASE main")
	if mysqlErrNumber(err) != 1044 || !strings.Contains(err.Error(), "database:delete") {
		t.Fatalf("DROP DATABASE with a read-only token: %v", err)
	}
	expired := d.ExpiredToken(t)
	for name, bad := range map[string]string{"tampered": tamper(tok), "expired": expired} {
		for _, mode := range []string{"skip-verify", "false"} {
			err := mysqlDB(t, d, bad, mode).Ping()
			if mysqlErrNumber(err) != 1045 {
				t.Fatalf("%s token tls=%s: %v", name, mode, err)
			}
		}
	}
	checkAuthMetrics(t, d, "mysql", []string{tok, expired}, "ok", "invalid", "expired", "forbidden")
}

func TestMySQLRevokedToken(t *testing.T) {
	d := startDaemon(t)
	accepted := func(tok string) bool {
		db := mysqlDB(t, d, tok, "skip-verify")
		defer db.Close()
		return db.Ping() == nil
	}
	tok := revokedToken(t, d, accepted)
	err := mysqlDB(t, d, tok, "false").Ping()
	if mysqlErrNumber(err) != 1045 || !strings.Contains(err.Error(), core.MsgRevoked) {
		t.Fatalf("revoked token: %v", err)
	}
	out, _ := mariadbCLI(t, d.MySQL, tok, "--ssl", "--skip-ssl-verify-server-cert", "main", "-e", "SELECT 1")
	if !strings.Contains(out, "ERROR 1045 (28000)") {
		t.Fatalf("mariadb, revoked token: %q", out)
	}
}

func TestMySQLPlaintextRefused(t *testing.T) {
	// Loopback is not in the allowed networks: 127.0.0.1 counts as remote.
	// Without TLS the client gets 3159 before it sends the token (the RSA
	// exchange does not count as protection: its key is unauthenticated).
	d := startDaemon(t, withArgs("--plaintext-allow", "192.0.2.0/24"))
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
	if err := mysqlDB(t, d, tok, "false").Ping(); mysqlErrNumber(err) != 3159 {
		t.Fatalf("go-sql-driver without TLS: %v", err)
	}
	out, _ := mariadbCLI(t, d.MySQL, tok, "--skip-ssl", "main", "-e", "SELECT 1")
	if !strings.Contains(out, "ERROR 3159") {
		t.Fatalf("mariadb --skip-ssl: %q", out)
	}
	if err := mysqlDB(t, d, tok, "skip-verify").Ping(); err != nil {
		t.Fatalf("go-sql-driver with TLS: %v", err)
	}
	if !strings.Contains(d.Logs(), "authentication refused") || !strings.Contains(d.Logs(), "protocol=mysql") || strings.Contains(d.Logs(), tok[9:30]) {
		t.Fatalf("the refusal is not logged (or the token is):\n%s", d.Logs())
	}
}

// rawMySQL dials the MySQL port and reads the greeting.
func rawMySQL(t *testing.T, d *daemon) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", d.MySQL, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(15 * time.Second))
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, int(hdr[0])|int(hdr[1])<<8|int(hdr[2])<<16)); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMySQLBadInput(t *testing.T) {
	d := startDaemon(t)
	junk := make([]byte, 4096)
	rand.Read(junk)
	truncated := binary.LittleEndian.AppendUint32(nil, 0x000a8200) // caps, then nothing
	for name, tc := range map[string]struct {
		in   []byte
		code uint16
	}{
		"random bytes":                 {junk, 0},
		"16 MiB+ length prefix":        {[]byte{0xff, 0xff, 0xff, 0x01}, 1153},
		"truncated handshake response": {append([]byte{byte(len(truncated)), 0, 0, 1}, truncated...), 1043},
	} {
		c := rawMySQL(t, d)
		c.Write(tc.in)
		reply, _ := io.ReadAll(c) // until the server closes
		c.Close()
		if tc.code != 0 && (len(reply) < 7 || reply[4] != 0xff || binary.LittleEndian.Uint16(reply[5:]) != tc.code) {
			t.Errorf("%s: reply %q", name, reply)
		}
	}
	if err := mysqlDB(t, d, scopedToken(t, d), "false").Ping(); err != nil {
		t.Fatalf("the next client: %v", err)
	}
}

// fastAuthCount returns helios_gateway_mysql_fast_auth_total{result=…}
// from /metrics (0 when the series is absent).
func fastAuthCount(t *testing.T, d *daemon, result string) int {
	t.Helper()
	status, body := d.Do(t, "GET", "/metrics", "", nil)
	if status != http.StatusOK {
		t.Fatalf("/metrics: status %d", status)
	}
	m := regexp.MustCompile(`(?m)^helios_gateway_mysql_fast_auth_total\{result="` + result + `"\} (\d+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestMySQLFastAuth: a client's second connection is authenticated by
// caching_sha2's fast path (01 03) from the gateway's cache, with both real
// clients, with and without TLS.
func TestMySQLFastAuth(t *testing.T) {
	d := startDaemon(t)
	for _, mode := range []string{"false", "skip-verify"} {
		tok := scopedToken(t, d)
		db := mysqlDB(t, d, tok, mode)
		db.SetMaxIdleConns(0) // every query dials anew
		hits, misses := fastAuthCount(t, d, "hit"), fastAuthCount(t, d, "miss")
		for i := 0; i < 3; i++ {
			var n int
			if err := db.QueryRow("SELECT 1").Scan(&n); err != nil || n != 1 {
				t.Fatalf("tls=%s connection %d: %v", mode, i, err)
			}
		}
		// The first connection did full authentication, the next two fast.
		if h, m := fastAuthCount(t, d, "hit")-hits, fastAuthCount(t, d, "miss")-misses; h != 2 || m != 1 {
			t.Fatalf("tls=%s: %d fast-auth hits and %d misses, want 2 and 1", mode, h, m)
		}
		var id, typ, scopes, exp string
		if err := db.QueryRow("SELECT * FROM helios_whoami()").Scan(&id, &typ, &scopes, &exp); err != nil || !strings.HasPrefix(id, "tok_") || scopes != "*" {
			t.Fatalf("tls=%s whoami after fast auth: %v %s %s", mode, err, id, scopes)
		}
	}
	for name, args := range map[string][]string{
		"TLS": {"--ssl", "--skip-ssl-verify-server-cert"},
		"RSA": {"--skip-ssl"},
	} {
		tok := scopedToken(t, d)
		for i := 0; i < 2; i++ {
			hits := fastAuthCount(t, d, "hit")
			out, err := mariadbCLI(t, d.MySQL, tok, append(args, "main", "-N", "-e", "SELECT 1")...)
			if err != nil || strings.TrimSpace(out) != "1" {
				t.Fatalf("mariadb %s, connection %d: %v %q", name, i, err, out)
			}
			if h := fastAuthCount(t, d, "hit") - hits; h != i {
				t.Fatalf("mariadb %s, connection %d: %d fast-auth hits, want %d", name, i, h, i)
			}
		}
	}
	// A tampered token never reaches the cache and stays refused.
	tok := scopedToken(t, d)
	if err := mysqlDB(t, d, tok, "false").Ping(); err != nil {
		t.Fatal(err)
	}
	if err := mysqlDB(t, d, tamper(tok), "false").Ping(); mysqlErrNumber(err) != 1045 {
		t.Fatalf("tampered token after a cached success: %v", err)
	}
}

// TestMySQLFastAuthRevoked: a token revoked after a cached success is
// refused on the next connection (the fast path re-checks revocation and
// evicts the entry), and stays refused. When the token still has open
// sessions, ending them evicts the entry already.
func TestMySQLFastAuthRevoked(t *testing.T) {
	d := startDaemon(t)
	bearer := d.NewUser(t)
	tok, id := d.CreateToken(t, bearer, map[string]any{"name": "e2e-fast-revoked", "scopes": []string{"*"}})
	hits := fastAuthCount(t, d, "hit")
	for i := 0; i < 2; i++ {
		db := mysqlDB(t, d, tok, "false")
		err := db.Ping()
		db.Close() // no open session: the revocation must meet the cache entry itself
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	if h := fastAuthCount(t, d, "hit") - hits; h != 1 {
		t.Fatalf("%d fast-auth hits before the revocation, want 1", h)
	}
	time.Sleep(100 * time.Millisecond) // the server has seen both COM_QUITs
	rejected := fastAuthCount(t, d, "rejected")
	d.Revoke(t, bearer, id)
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err = mysqlDB(t, d, tok, "false").Ping(); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the revoked token is still accepted after 10s")
		}
	}
	if mysqlErrNumber(err) != 1045 || !strings.Contains(err.Error(), core.MsgRevoked) {
		t.Fatalf("revoked token after a cached success: %v", err)
	}
	if r := fastAuthCount(t, d, "rejected") - rejected; r != 1 {
		t.Fatalf("%d fast-auth rejections, want 1", r)
	}
	// Evicted: the next attempt does full authentication and is refused there.
	misses := fastAuthCount(t, d, "miss")
	if err := mysqlDB(t, d, tok, "skip-verify").Ping(); mysqlErrNumber(err) != 1045 {
		t.Fatalf("revoked token, next connection: %v", err)
	}
	if fastAuthCount(t, d, "miss")-misses != 1 {
		t.Fatal("the revoked token's entry was not evicted")
	}
	checkAuthMetrics(t, d, "mysql", []string{tok}, "ok", "revoked")

	// An open session of a cached token: ending it on revocation evicts
	// the entry, so the next connection does full authentication.
	tok2, id2 := d.CreateToken(t, bearer, map[string]any{"name": "e2e-fast-revoked-open", "scopes": []string{"*"}})
	open := mysqlDB(t, d, tok2, "false")
	open.SetMaxIdleConns(2)
	if err := open.Ping(); err != nil {
		t.Fatal(err)
	}
	if err := mysqlDB(t, d, tok2, "false").Ping(); err != nil { // cached, and left open
		t.Fatal(err)
	}
	rejected, misses = fastAuthCount(t, d, "rejected"), fastAuthCount(t, d, "miss")
	d.Revoke(t, bearer, id2)
	time.Sleep(500 * time.Millisecond)
	if err := mysqlDB(t, d, tok2, "false").Ping(); mysqlErrNumber(err) != 1045 || !strings.Contains(err.Error(), core.MsgRevoked) {
		t.Fatalf("revoked token with open sessions, next connection: %v", err)
	}
	if r, m := fastAuthCount(t, d, "rejected")-rejected, fastAuthCount(t, d, "miss")-misses; r != 0 || m != 1 {
		t.Fatalf("after the open sessions ended: %d rejections and %d misses, want 0 and 1", r, m)
	}
}
