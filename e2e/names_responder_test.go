package e2e

import (
	"database/sql"
	"errors"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// TestNamesPostgres: through the real heliosd, psql to a database that is
// not registered gets FATAL 3D000, psql as a user other than default gets
// 28P01 telling it to connect as default with the token as the password,
// and the registered "main" and the implied name (none given: psql uses
// the user name, default) still answer SELECT 1.
func TestNamesPostgres(t *testing.T) {
	requirePsql(t)
	d := startDaemon(t)
	tok := pgToken(t, d)
	host, port, _ := net.SplitHostPort(d.PG)
	base := "postgresql://default:" + tok + "@" + host + ":" + port
	for _, url := range []string{base + "/main?sslmode=require", base + "?sslmode=require"} {
		if out, err := psql(t, url, "SELECT 1"); err != nil || strings.TrimSpace(out) != "1" {
			t.Fatalf("%s: %v\n%s", strings.Replace(url, tok, "TOKEN", 1), err, out)
		}
	}
	out, err := psql(t, base+"/nope?sslmode=require", "SELECT 1")
	if err == nil || !strings.Contains(out, `database "nope" does not exist`) {
		t.Fatalf("database nope: %v\n%s", err, out)
	}
	out, err = psql(t, "postgresql://alice:"+tok+"@"+host+":"+port+"/main?sslmode=require", "SELECT 1")
	if err == nil || !strings.Contains(out, `password authentication failed for user "alice"`) ||
		!strings.Contains(out, "connect as user default with the token as the password") {
		t.Fatalf("user alice: %v\n%s", err, out)
	}
}

// TestNamesMySQL: through the real heliosd, the mariadb CLI and
// go-sql-driver/mysql with a schema that is not registered get 1049, USE
// and COM_INIT_DB (mariadb's "use" command) of one get 1049 and keep the
// selection, and a user other than default gets 1045 naming the fix; no
// schema and "main" still connect.
func TestNamesMySQL(t *testing.T) {
	d := startDaemon(t)
	tok := scopedToken(t, d)
	tlsArgs := []string{"--ssl", "--skip-ssl-verify-server-cert"}
	out, err := mariadbCLI(t, d.MySQL, tok, append(tlsArgs, "nope", "-e", "SELECT 1")...)
	if err == nil || !strings.Contains(out, "ERROR 1049 (42000)") || !strings.Contains(out, "Unknown database 'nope'") {
		t.Fatalf("mariadb nope: %v %q", err, out)
	}
	out, err = mariadbCLI(t, d.MySQL, tok, append(tlsArgs, "-N", "-e", "SELECT 1")...)
	if err != nil || strings.TrimSpace(out) != "1" {
		t.Fatalf("mariadb without a schema: %v %q", err, out)
	}
	out, err = mariadbCLI(t, d.MySQL, tok, append(tlsArgs, "main", "-N", "-e", "use nope")...)
	if err == nil || !strings.Contains(out, "ERROR 1049 (42000)") {
		t.Fatalf("mariadb use nope: %v %q", err, out)
	}
	host, port, _ := net.SplitHostPort(d.MySQL)
	alice, _ := exec.Command("mariadb", "-h", host, "-P", port, "-u", "alice", "-p"+tok, "--ssl", "--skip-ssl-verify-server-cert",
		"--connect-timeout=10", "-e", "SELECT 1").CombinedOutput()
	if !strings.Contains(string(alice), "ERROR 1045 (28000)") || !strings.Contains(string(alice), "connect with -u default and the token as the password") {
		t.Fatalf("mariadb -u alice: %q", alice)
	}

	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName, cfg.TLSConfig = "default", tok, "tcp", d.MySQL, "nope", "skip-verify"
	cfg.Timeout = 10 * time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	nope := sql.OpenDB(conn)
	defer nope.Close()
	if err := nope.Ping(); mysqlErrNumber(err) != 1049 {
		t.Fatalf("go-sql-driver /nope: %v", err)
	}
	db := mysqlDB(t, d, tok, "skip-verify")
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("USE nope"); mysqlErrNumber(err) != 1049 {
		t.Fatalf("USE nope: %v", err)
	}
	var name string
	if err := db.QueryRow("SELECT DATABASE()").Scan(&name); err != nil || name != "main" {
		t.Fatalf("DATABASE() after a refused USE: %v %q", err, name)
	}
}

// TestNamesRedis: through the real heliosd, go-redis on logical database 2
// ("db2" is not registered) gets -ERR DB index is out of range from the
// SELECT it sends on connect, and once "db2" is registered the same client
// works; database 0 works without registration; AUTH as another user is
// WRONGPASS naming the fix.
func TestNamesRedis(t *testing.T) {
	d := startDaemon(t)
	ctx := mongoCtx(t)
	bearer := d.NewUser(t)
	tok, _ := d.CreateToken(t, bearer, map[string]any{"name": "app"})
	r0 := redisFrom(d, tok, 0, nil)
	defer r0.Close()
	if err := r0.Ping(ctx).Err(); err != nil {
		t.Fatalf("database 0: %v", err)
	}
	if err := r0.Do(ctx, "SELECT", "2").Err(); err == nil || err.Error() != "ERR DB index is out of range" {
		t.Fatalf("SELECT 2: %v", err)
	}
	r2 := redisFrom(d, tok, 2, nil)
	defer r2.Close()
	if err := r2.Ping(ctx).Err(); err == nil || err.Error() != "ERR DB index is out of range" {
		t.Fatalf("go-redis DB 2: %v", err)
	}
	d.MustJSON(t, http.StatusCreated, "POST", "/v1/databases", bearer, map[string]any{"name": "db2"}, nil)
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := r2.Ping(ctx).Err()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("go-redis DB 2 after registering db2: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ra := redis.NewClient(&redis.Options{Addr: d.Redis, Username: "alice", Password: tok, DialTimeout: 5 * time.Second, MaxRetries: -1})
	defer ra.Close()
	if err := ra.Ping(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGPASS") || !strings.Contains(err.Error(), "AUTH default <token>") {
		t.Fatalf("user alice: %v", err)
	}
}

// TestNamesMongo: through the real heliosd, mongo-driver v2 connecting as
// alice is refused with 18 naming the fix, and a find on a database that
// is not registered gets 13 saying it does not exist, while main gets the
// "no upstream" error (115).
func TestNamesMongo(t *testing.T) {
	d := startDaemon(t)
	ctx := mongoCtx(t)
	tok := d.NewUser(t)
	var ce mongo.CommandError
	alice := mongoConnect(t, strings.Replace(mongoURI(d, tok, ""), "mongodb://default:", "mongodb://alice:", 1))
	err := alice.Ping(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), `unknown user "alice"`) || !strings.Contains(err.Error(), "connect as default with the token as the password") {
		t.Fatalf("user alice: %v", err)
	}
	c := mongoConnect(t, mongoURI(d, tok, ""))
	err = c.Database("nope").Collection("orders").FindOne(ctx, bson.D{}).Err()
	if !errors.As(err, &ce) || ce.Code != 13 || !strings.Contains(ce.Message, `database "nope" does not exist`) {
		t.Fatalf("find on nope: %v", err)
	}
	err = c.Database("main").Collection("orders").FindOne(ctx, bson.D{}).Err()
	if !errors.As(err, &ce) || ce.Code != 115 {
		t.Fatalf("find on main: %v", err)
	}
}

// TestResponderRedis: through the real heliosd, go-redis's Info and
// Info("server") get the gateway's sections: redis_version, loading:0 (the
// fields ioredis's ready check reads on connect).
func TestResponderRedis(t *testing.T) {
	d := startDaemon(t)
	ctx := mongoCtx(t)
	tok := d.NewUser(t)
	rdb := redisFrom(d, tok, 0, nil)
	defer rdb.Close()
	all, err := rdb.Info(ctx).Result()
	if err != nil || !strings.Contains(all, "# Server\r\nredis_version:") || !strings.Contains(all, "\r\nloading:0\r\n") {
		t.Fatalf("INFO: %v %q", err, all)
	}
	server, err := rdb.Info(ctx, "server").Result()
	if err != nil || !strings.HasPrefix(server, "# Server\r\nredis_version:") || strings.Contains(server, "loading:") {
		t.Fatalf("INFO server: %v %q", err, server)
	}
}

// TestResponderPostgres: through the real heliosd with no upstream, pgx's
// Begin / Commit and Begin / Rollback work (BEGIN answered with its tag and
// ReadyForQuery 'T'), SELECT 1 AS one scans column one, SET
// application_name is shown back, and psql runs BEGIN; SELECT 1; COMMIT.
func TestResponderPostgres(t *testing.T) {
	requirePsql(t)
	d := startDaemon(t)
	ctx := mongoCtx(t)
	tok := pgToken(t, d)
	conn, err := pgx.Connect(ctx, pgURL(d.PG, tok, "require"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	if st := conn.PgConn().TxStatus(); st != 'T' {
		t.Fatalf("status after BEGIN %q", st)
	}
	rows, err := tx.Query(ctx, "SELECT 1 AS one")
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowToMap)
	if err != nil || len(got) != 1 || got[0]["one"] != int32(1) {
		t.Fatalf("SELECT 1 AS one: %v %v", err, got)
	}
	if err := tx.Commit(ctx); err != nil || conn.PgConn().TxStatus() != 'I' {
		t.Fatalf("Commit: %v %q", err, conn.PgConn().TxStatus())
	}
	tx, err = conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "DELETE FROM t"); err == nil {
		t.Fatal("DELETE answered without an upstream")
	}
	if conn.PgConn().TxStatus() != 'E' {
		t.Fatalf("status after an error in the block %q", conn.PgConn().TxStatus())
	}
	if err := tx.Rollback(ctx); err != nil || conn.PgConn().TxStatus() != 'I' {
		t.Fatalf("Rollback: %v", err)
	}
	if _, err := conn.Exec(ctx, "SET application_name = 'helios-e2e'"); err != nil {
		t.Fatal(err)
	}
	if v := conn.PgConn().ParameterStatus("application_name"); v != "helios-e2e" {
		t.Fatalf("ParameterStatus application_name %q", v)
	}
	// SELECT $1 with no type named: text, as PostgreSQL infers (so pgx
	// encodes a Go int for it only in QueryExecModeExec, as text).
	var seven string
	if err := conn.QueryRow(ctx, "SELECT $1", pgx.QueryExecModeExec, 7).Scan(&seven); err != nil || seven != "7" {
		t.Fatalf("SELECT $1 with 7: %v %q", err, seven)
	}
	// With the type named in Parse: int4, sent and answered in binary, or
	// converted from text.
	for _, arg := range [][]byte{{0, 0, 0, 7}, []byte("7")} {
		format := int16(1)
		if len(arg) == 1 {
			format = 0
		}
		res := conn.PgConn().ExecParams(ctx, "SELECT $1", [][]byte{arg}, []uint32{23}, []int16{format}, []int16{1}).Read()
		if res.Err != nil || len(res.Rows) != 1 || string(res.Rows[0][0]) != "\x00\x00\x00\x07" || res.FieldDescriptions[0].DataTypeOID != 23 {
			t.Fatalf("SELECT $1::int4 with %q: %v %q", arg, res.Err, res.Rows)
		}
	}
	var word string
	if err := conn.QueryRow(ctx, "SELECT $1", "héllo").Scan(&word); err != nil || word != "héllo" {
		t.Fatalf("SELECT $1 with a string: %v %q", err, word)
	}
	var null *string
	if err := conn.QueryRow(ctx, "SELECT $1", nil).Scan(&null); err != nil || null != nil {
		t.Fatalf("SELECT $1 with NULL: %v %v", err, null)
	}
	if err := conn.QueryRow(ctx, "SELECT $1::int", 7).Scan(&seven); err == nil {
		t.Fatal("SELECT $1::int answered without an upstream")
	}
	out, err := psql(t, pgURL(d.PG, tok, "require"), "BEGIN; SELECT 1; COMMIT")
	if err != nil || !strings.Contains(out, "BEGIN\n1\nCOMMIT") {
		t.Fatalf("psql: %v\n%s", err, out)
	}
}

// TestResponderMySQL: through the real heliosd, go-sql-driver's prepared
// statements (COM_STMT_PREPARE / EXECUTE / CLOSE) of the built-ins answer
// like their text-protocol forms: SELECT 1, DATABASE(), @@version_comment,
// helios_whoami(), and SELECT ? with an argument; other text with a
// parameter still hears there is no upstream.
func TestResponderMySQL(t *testing.T) {
	d := startDaemon(t)
	tok := scopedToken(t, d)
	for _, mode := range []string{"skip-verify", "false"} {
		db := mysqlDB(t, d, tok, mode)
		one, err := db.Prepare("SELECT 1")
		if err != nil {
			t.Fatalf("%s Prepare SELECT 1: %v", mode, err)
		}
		var n int
		for range 2 {
			if err := one.QueryRow().Scan(&n); err != nil || n != 1 {
				t.Fatalf("%s prepared SELECT 1: %v %d", mode, err, n)
			}
		}
		one.Close()
		var name, comment, id, typ, scopes, exp string
		if err := prepared(db, "SELECT DATABASE()", &name); err != nil || name != "main" {
			t.Fatalf("%s prepared DATABASE(): %v %q", mode, err, name)
		}
		if err := prepared(db, "select @@version_comment limit 1", &comment); err != nil || !strings.Contains(comment, "HeliosDB") {
			t.Fatalf("%s prepared @@version_comment: %v %q", mode, err, comment)
		}
		if err := prepared(db, "SELECT * FROM helios_whoami()", &id, &typ, &scopes, &exp); err != nil || !strings.HasPrefix(id, "tok_") || typ != "live" {
			t.Fatalf("%s prepared whoami: %v %q %q", mode, err, id, typ)
		}
		// go-sql-driver (interpolateParams off) prepares a query with
		// arguments: SELECT ? returns the argument with its type.
		if err := db.QueryRow("SELECT ?", 7).Scan(&n); err != nil || n != 7 {
			t.Fatalf("%s SELECT ? with 7: %v %d", mode, err, n)
		}
		var word string
		if err := db.QueryRow("SELECT ?", "héllo").Scan(&word); err != nil || word != "héllo" {
			t.Fatalf("%s SELECT ? with a string: %v %q", mode, err, word)
		}
		var null sql.NullString
		if err := db.QueryRow("SELECT ?", nil).Scan(&null); err != nil || null.Valid {
			t.Fatalf("%s SELECT ? with NULL: %v %v", mode, err, null)
		}
		if err := db.QueryRow("SELECT ? + 1", 7).Scan(&n); mysqlErrNumber(err) != 1235 {
			t.Fatalf("%s SELECT ? + 1: %v", mode, err)
		}
	}
}

// prepared runs q as a prepared statement and scans its one row.
func prepared(db *sql.DB, q string, dest ...any) error {
	st, err := db.Prepare(q)
	if err != nil {
		return err
	}
	defer st.Close()
	return st.QueryRow().Scan(dest...)
}
