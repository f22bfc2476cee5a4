package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Front ends a statement of sqlScopeCases is refused on.
const (
	onPG    = 1 << iota // pgx: simple protocol, Prepare (Parse), extended Exec
	onMySQL             // go-sql-driver: COM_QUERY (multiStatements), COM_STMT_PREPARE, interpolateParams
	onREST              // POST /api/v1/sql
	onAll   = onPG | onMySQL | onREST
	onPGish = onPG | onREST // PostgreSQL's dialect
)

const (
	msgNeedWrite = "Token does not have required scope: database:write"
	msgNotAllow  = "Statement not allowed through the HeliosDB gateway: "
)

// sqlScopeCases are the statements that got past the scope check of one
// front end or another with a database:read token before the classifier
// was shared (sqlscope), and the message each front end must now answer
// with (a prefix of it for the gateway's refusals).
var sqlScopeCases = []struct {
	on  int
	q   string
	msg string
}{
	{onAll, "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", msgNeedWrite},
	{onAll, "EXPLAIN ANALYZE DELETE FROM t", msgNeedWrite},
	{onAll, "SELECT * INTO newt FROM t", msgNeedWrite},
	{onPGish, "PREPARE p AS DELETE FROM t", msgNeedWrite},
	{onAll, "SET ROLE postgres", msgNotAllow},
	{onAll, "SET SESSION AUTHORIZATION postgres", msgNotAllow},
	{onAll, "SELECT 1; DELETE FROM t", msgNeedWrite},
	{onAll, "SELECT 1 INTO OUTFILE '/tmp/x'", msgNeedWrite},
	{onAll, "WITH x AS (SELECT 1) DELETE FROM t", msgNeedWrite},
	{onPGish, "SELECT $$ ' $$; DELETE FROM t; --'", msgNeedWrite},
	{onPGish, "SELECT E'\\''; DELETE FROM t; --'", msgNeedWrite}, // MySQL: --' is no comment, the text is unterminated
	{onPGish, "SELECT $tag$;$tag$; DELETE FROM t", msgNeedWrite},
	{onPGish, "SELECT set_config('role', 'postgres', false)", msgNotAllow},
	{onMySQL, "PREPARE s FROM 'DELETE FROM t'", msgNeedWrite},
	{onMySQL, "/*!50000 DELETE FROM t */", msgNeedWrite},
	{onMySQL, "SELECT 'a\\'; DELETE FROM t; -- '", msgNeedWrite},
	{onMySQL, "SET GLOBAL max_connections = 1", msgNotAllow},
	{onMySQL, "EXECUTE IMMEDIATE 'DELETE FROM t'", msgNeedWrite},
}

// TestSQLScope: through the real daemon, a database:read token gets each
// front end's native scope error for every statement above — pgx (simple
// protocol, Parse by Prepare, extended Exec), go-sql-driver/mysql
// (multiStatements COM_QUERY, COM_STMT_PREPARE, interpolateParams) and
// POST /api/v1/sql — while reads pass the scope check and get the built-in
// answer or "no upstream"; a full-access token is refused the statements
// no token may run.
func TestSQLScope(t *testing.T) {
	d := startDaemon(t)
	ro := scopedToken(t, d, "database:read")
	full := scopedToken(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	t.Run("postgres", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, pgURL(d.PG, ro, "require"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		for i, c := range sqlScopeCases {
			if c.on&onPG == 0 {
				continue
			}
			for mode, run := range map[string]func() error{
				"simple": func() error {
					_, err := conn.Exec(ctx, c.q, pgx.QueryExecModeSimpleProtocol)
					return err
				},
				"prepare": func() error {
					_, err := conn.Prepare(ctx, "s"+string(rune('a'+i)), c.q)
					return err
				},
				"extended": func() error {
					_, err := conn.Exec(ctx, c.q, pgx.QueryExecModeExec)
					return err
				},
			} {
				var pe *pgconn.PgError
				if err := run(); !errors.As(err, &pe) || pe.Code != "42501" || pe.Severity != "ERROR" || !strings.HasPrefix(pe.Message, c.msg) {
					t.Errorf("%s %q: %v", mode, c.q, err)
				}
			}
		}
		// Reads: the scope check passes; built-ins answer, the rest hears
		// there is no upstream.
		var one int
		for _, q := range []string{"SELECT 1", "-- DELETE FROM t\nSELECT 1", "SELECT 1 /* ; DELETE FROM t */"} {
			if err := conn.QueryRow(ctx, q).Scan(&one); err != nil || one != 1 {
				t.Errorf("%q: %v %d", q, err, one)
			}
			if err := conn.QueryRow(ctx, q, pgx.QueryExecModeSimpleProtocol).Scan(&one); err != nil || one != 1 {
				t.Errorf("simple %q: %v %d", q, err, one)
			}
		}
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
			if _, err := conn.Exec(ctx, "SET search_path = public", mode); err != nil { // a session setting: accepted
				t.Errorf("%v SET search_path: %v", mode, err)
			}
		}
		for _, q := range []string{"WITH x AS (SELECT 1) SELECT * FROM x", "EXPLAIN SELECT * FROM t", "SELECT 'DELETE FROM t'",
			"SELECT $$;$$", "VALUES (1)"} {
			for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
				var pe *pgconn.PgError
				if _, err := conn.Exec(ctx, q, mode); !errors.As(err, &pe) || pe.Code != "0A000" {
					t.Errorf("%v %q: %v", mode, q, err)
				}
			}
		}
	})

	t.Run("mysql", func(t *testing.T) {
		db := sqlScopeMySQL(t, d, ro, false)
		interp := sqlScopeMySQL(t, d, ro, true)
		for _, c := range sqlScopeCases {
			if c.on&onMySQL == 0 {
				continue
			}
			_, err := db.ExecContext(ctx, c.q)
			checkMySQLDenied(t, "COM_QUERY", c.q, c.msg, err)
			stmt, err := db.PrepareContext(ctx, c.q)
			if err == nil {
				stmt.Close()
			}
			checkMySQLDenied(t, "COM_STMT_PREPARE", c.q, c.msg, err)
		}
		// interpolateParams: the driver writes the argument into the text.
		_, err := interp.ExecContext(ctx, "SELECT ?; DELETE FROM t", 1)
		checkMySQLDenied(t, "interpolateParams", "SELECT ?; DELETE FROM t", msgNeedWrite, err)
		_, err = interp.ExecContext(ctx, "SELECT ? FROM t WHERE a = ? FOR UPDATE", 1, "'; --")
		checkMySQLDenied(t, "interpolateParams", "SELECT … FOR UPDATE", msgNeedWrite, err)
		// Reads pass the scope check.
		var one int
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
			t.Errorf("SELECT 1: %v %d", err, one)
		}
		if _, err := db.ExecContext(ctx, "SET NAMES utf8mb4"); err != nil {
			t.Errorf("SET NAMES: %v", err)
		}
		for _, q := range []string{"WITH x AS (SELECT 1) SELECT * FROM x", "SELECT a INTO @a FROM t", "SELECT 1 -- ; DELETE FROM t",
			"SELECT REPLACE(a, 'x', 'y') FROM t", "SHOW TABLES"} {
			if _, err := db.ExecContext(ctx, q); mysqlErrNumber(err) != 1235 {
				t.Errorf("%q: %v", q, err)
			}
		}
		if _, err := interp.ExecContext(ctx, "SELECT * FROM t WHERE a = ? AND b = ?", "O'Brien", "it's; ok"); mysqlErrNumber(err) != 1235 {
			t.Errorf("interpolated quotes: %v", err)
		}
		// The driver escapes the quote with a backslash: a server in
		// NO_BACKSLASH_ESCAPES would run the DELETE, so it is refused.
		_, err = interp.ExecContext(ctx, "SELECT * FROM t WHERE a = ?", "x'; DELETE FROM t; -- ")
		checkMySQLDenied(t, "interpolateParams", "an injection under NO_BACKSLASH_ESCAPES", msgNeedWrite, err)
	})

	t.Run("rest", func(t *testing.T) {
		for _, c := range sqlScopeCases {
			if c.on&onREST == 0 {
				continue
			}
			status, body := d.Do(t, "POST", "/api/v1/sql", ro, map[string]string{"query": c.q})
			if e := restError(t, body); status != http.StatusForbidden || e.Code != "FORBIDDEN" || !strings.HasPrefix(e.Message, c.msg) {
				t.Errorf("%q: %d %s", c.q, status, body)
			}
		}
		if status, body := d.Do(t, "POST", "/api/v1/sql", ro, map[string]string{"query": "SELECT 1"}); status != http.StatusOK {
			t.Errorf("SELECT 1: %d %s", status, body)
		}
		for _, q := range []string{"-- DELETE FROM t\nSELECT 1", "WITH x AS (SELECT 1) SELECT * FROM x", "SELECT 'DELETE FROM t'"} {
			if status, body := d.Do(t, "POST", "/api/v1/sql", ro, map[string]string{"query": q}); status != http.StatusNotImplemented || restError(t, body).Code != "NO_UPSTREAM" {
				t.Errorf("%q: %d %s", q, status, body)
			}
		}
	})

	t.Run("full token", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, pgURL(d.PG, full, "require"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		db := sqlScopeMySQL(t, d, full, false)
		for _, q := range []string{"SET ROLE postgres", "SET SESSION AUTHORIZATION postgres", "SELECT 'unterminated"} {
			var pe *pgconn.PgError
			if _, err := conn.Exec(ctx, q); !errors.As(err, &pe) || pe.Code != "42501" || !strings.HasPrefix(pe.Message, msgNotAllow) {
				t.Errorf("postgres %q: %v", q, err)
			}
			_, err := db.ExecContext(ctx, q)
			checkMySQLDenied(t, "COM_QUERY", q, msgNotAllow, err)
			status, body := d.Do(t, "POST", "/api/v1/sql", full, map[string]string{"query": q})
			if e := restError(t, body); status != http.StatusForbidden || !strings.HasPrefix(e.Message, msgNotAllow) {
				t.Errorf("rest %q: %d %s", q, status, body)
			}
		}
		// A full token is not refused a write for its scope: it hears there
		// is no upstream.
		var pe *pgconn.PgError
		if _, err := conn.Exec(ctx, "SELECT 1; DELETE FROM t"); !errors.As(err, &pe) || pe.Code != "0A000" {
			t.Errorf("full token write: %v", err)
		}
	})
}

// sqlScopeMySQL opens a go-sql-driver pool over TLS with multiStatements
// on, and interpolateParams as asked.
func sqlScopeMySQL(t *testing.T, d *daemon, tok string, interpolate bool) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = "default", tok, "tcp", d.MySQL, "main"
	cfg.TLSConfig = "skip-verify"
	cfg.Timeout, cfg.ReadTimeout = 10*time.Second, 10*time.Second
	cfg.MultiStatements, cfg.InterpolateParams = true, interpolate
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

// checkMySQLDenied requires err to be ERROR 1142 whose message ends in the
// scope error, or contains the gateway's refusal.
func checkMySQLDenied(t *testing.T, how, q, msg string, err error) {
	t.Helper()
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1142 || string(me.SQLState[:]) != "42000" ||
		!strings.Contains(me.Message, " command denied to user 'default'@'127.0.0.1': "+msg) {
		t.Errorf("%s %q: %v", how, q, err)
	}
}

type restErrorBody struct {
	Code, Message string
}

func restError(t *testing.T, body []byte) restErrorBody {
	t.Helper()
	var e struct {
		Error restErrorBody `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Errorf("error body %q: %v", body, err)
	}
	return e.Error
}
