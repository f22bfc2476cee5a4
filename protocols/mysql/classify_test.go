package mysql

import (
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/internal/sqlscope"
)

// scopedConn logs a session in over TLS with a token holding scopes.
func scopedConn(t *testing.T, f *fixture, scopes core.ScopeSet) *conn {
	c := newConn(t, f, &netio.ConnInfo{TLS: true})
	c.send(pkt(2, handshakeResponse(clientCaps, "default", "caching_sha2_password", make([]byte, 32))))
	if pk, _ := c.send(pkt(4, []byte(f.token(t, scopes, time.Hour)+"\x00"))); !isOK(pk) {
		t.Fatalf("login: %q", pk)
	}
	return c
}

// TestScopeOfEveryStatement: a database:read token gets 1142 naming the
// statement that needs more (1044 for a database), for statements the
// first-keyword classifier let through, in COM_QUERY and COM_STMT_PREPARE.
func TestScopeOfEveryStatement(t *testing.T) {
	f := newFixture(t)
	c := scopedConn(t, f, core.ScopeSet(0).With(core.ScopeDatabaseRead))
	const write = ": Token does not have required scope: database:write"
	for q, want := range map[string]string{
		"SELECT 1; DELETE FROM t":               "#42000DELETE command denied to user 'default'@'",
		"SELECT 1 INTO OUTFILE '/tmp/x'":        "#42000SELECT command denied to user 'default'@'",
		"WITH x AS (SELECT 1) DELETE FROM t":    "#42000DELETE command denied to user 'default'@'",
		"SELECT 'a\\'; DELETE FROM t; -- '":     "#42000DELETE command denied to user 'default'@'",
		"PREPARE s FROM 'DELETE FROM t'":        "#42000DELETE command denied to user 'default'@'",
		"/*!50000 DELETE FROM t */":             "#42000DELETE command denied to user 'default'@'",
		"SELECT 1 /*! ; UPDATE t SET a = 1 */":  "#42000UPDATE command denied to user 'default'@'",
		"SELECT * FROM t FOR UPDATE":            "#42000SELECT command denied to user 'default'@'",
		"\x16SELECT 1; DELETE FROM t":           "#42000DELETE command denied to user 'default'@'",
		"\x16INSERT INTO t SELECT * FROM u":     "#42000INSERT command denied to user 'default'@'",
		"SET @a = 1; REPLACE INTO t VALUES (1)": "#42000REPLACE command denied to user 'default'@'",
	} {
		code, msg := query(t, c, q)
		if code != 1142 || !strings.HasPrefix(msg, want) || !strings.HasSuffix(msg, write) {
			t.Errorf("%q: %d %q", q, code, msg)
		}
	}
	if code, msg := query(t, c, "SELECT 1; DROP DATABASE `prod`"); code != 1044 ||
		!strings.HasSuffix(msg, "to database 'prod': Token does not have required scope: database:delete") {
		t.Errorf("DROP DATABASE: %d %q", code, msg)
	}
	for _, o := range f.obs.outcomes[1:] {
		if o != netio.OutcomeForbidden {
			t.Fatalf("outcomes %v", f.obs.outcomes)
		}
	}
}

// TestRefusedForEveryToken: 1142 with the gateway's reason, even for "*".
func TestRefusedForEveryToken(t *testing.T) {
	f := newFixture(t)
	c := scopedConn(t, f, core.AllScopes)
	for q, want := range map[string]string{
		"SET GLOBAL max_connections = 1":     "#42000SET command denied",
		"SET autocommit = 1, @@global.x = 1": "#42000SET command denied",
		"PREPARE s FROM @sql":                "#42000PREPARE command denied",
		"SET ROLE admin":                     "#42000SET command denied",
		"SHUTDOWN":                           "#42000SHUTDOWN command denied",
		"SELECT 'unterminated":               "#42000statement command denied",
	} {
		code, msg := query(t, c, q)
		if code != 1142 || !strings.HasPrefix(msg, want) || !strings.Contains(msg, ": "+sqlscope.MsgNotAllowed) {
			t.Errorf("%q: %d %q", q, code, msg)
		}
	}
}

// TestReadsPassTheScopeCheck: reads and session statements of a
// database:read token reach the responder.
func TestReadsPassTheScopeCheck(t *testing.T) {
	f := newFixture(t)
	c := scopedConn(t, f, core.ScopeSet(0).With(core.ScopeDatabaseRead))
	for q, want := range map[string]uint16{
		"SHOW TABLES": 1235, "SELECT 1 -- ; DELETE FROM t": 1235, "SELECT 1 # ; DELETE FROM t": 1235,
		"SELECT REPLACE(a, 'x', 'y') FROM t": 1235, "SELECT a INTO @a FROM t": 1235, "SELECT 1; SELECT 2": 1235,
		"SET NAMES utf8mb4": 0, "SET SESSION sql_mode = 'ANSI'": 0, "START TRANSACTION": 0, "COMMIT": 0,
		"USE `my db`": 0, "": 1065, "  ;; -- nothing": 1065,
	} {
		if code, msg := query(t, c, q); code != want {
			t.Errorf("%q: %d %q, want %d", q, code, msg, want)
		}
	}
	if pk, _ := c.send(pkt(0, []byte("\x03SELECT DATABASE()"))); len(pk) < 4 || string(pk[3][1:]) != "my db" {
		t.Fatalf("USE `my db` selected %q", pk)
	}
}

// TestTestTokenEveryStatement: a test token's multi-statement text is
// checked statement by statement: it may not name another database after a
// first statement that may.
func TestTestTokenEveryStatement(t *testing.T) {
	f, _, _, _ := policyFixture(t)
	tok, _ := f.mintFlags(t, core.TypeTest, core.FlagTestOnly)
	pk, _, c := login(t, f, from("192.0.2.7:40000"), "ci_test", tok)
	if !isOK(pk) {
		t.Fatalf("login: %q", pk)
	}
	for q, want := range map[string]uint16{
		"SELECT 1; DROP DATABASE prod":                    1044,
		"SELECT * FROM t; USE prod":                       1044,
		"CREATE DATABASE IF NOT EXISTS ci_test; SELECT 1": 1235,
		"SET NAMES utf8mb4; SELECT * FROM t":              1235,
	} {
		if code, msg := query(t, c, q); code != want {
			t.Errorf("%q: %d %q, want %d", q, code, msg, want)
		}
	}
}
