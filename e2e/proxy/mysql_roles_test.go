package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testdaemon"
)

// The grants README.md documents for each user of
// --mysql-upstream-roles-file, on each database it may reach.
const (
	rolesGrantRead  = "SELECT, SHOW VIEW"
	rolesGrantWrite = rolesGrantRead + ", INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE"
	rolesGrantOwner = rolesGrantWrite + ", CREATE, ALTER, DROP, INDEX, CREATE VIEW, REFERENCES, TRIGGER, EVENT, CREATE ROUTINE, ALTER ROUTINE"
)

// TestMySQLProxyRoleURLs: an operator who will not hand over an
// administrator connection creates six users of their own naming with the
// grants README.md documents and gives their URLs
// (--mysql-upstream-roles-file). heliosd, started with nothing else,
// provisions nothing, logs in as the user each token's scopes choose, and
// the users' grants hold (test users do not reach a production database).
func TestMySQLProxyRoleURLs(t *testing.T) {
	admin := mariaAdmin(t)
	sfx := time.Now().Format("150405")
	prod, test := "rl_prod_"+sfx, "rl_test_"+sfx
	levels := map[string]string{"read": rolesGrantRead, "write": rolesGrantWrite, "owner": rolesGrantOwner}
	urls, users := map[string]string{}, map[string]string{}
	exec := func(q string) {
		t.Helper()
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE DATABASE " + prod)
	exec("CREATE DATABASE IF NOT EXISTS main") // heliosd's default database (shared: kept)
	exec("CREATE DATABASE " + test)
	t.Cleanup(func() {
		for _, q := range []string{"DROP DATABASE IF EXISTS " + prod, "DROP DATABASE IF EXISTS " + test} {
			_, _ = admin.Exec(q)
		}
		for _, u := range users {
			_, _ = admin.Exec("DROP USER IF EXISTS '" + u + "'@'%'")
		}
	})
	for _, kind := range []string{"", "test_"} {
		for level, grants := range levels {
			role, user := "helios_"+kind+level, "rl_"+kind+level+"_"+sfx
			var raw [16]byte
			_, _ = rand.Read(raw[:])
			pw := hex.EncodeToString(raw[:])
			users[role] = user
			exec("CREATE USER '" + user + "'@'%' IDENTIFIED BY '" + pw + "'")
			// Production users reach every database, test users test ones
			// only (_ in a database name is a wildcard in GRANT: escaped).
			if kind == "" {
				exec("GRANT " + grants + " ON `" + strings.ReplaceAll(prod, "_", `\_`) + "`.* TO '" + user + "'@'%'")
				exec("GRANT " + grants + " ON `main`.* TO '" + user + "'@'%'")
			}
			exec("GRANT " + grants + " ON `" + strings.ReplaceAll(test, "_", `\_`) + "`.* TO '" + user + "'@'%'")
			u := url.URL{Scheme: "mysql", User: url.UserPassword(user, pw), Host: maria.Addr, Path: "/"}
			urls[role] = u.String()
		}
	}
	js, _ := json.Marshal(urls)
	file := filepath.Join(t.TempDir(), "my-roles.json")
	if err := os.WriteFile(file, js, 0o600); err != nil {
		t.Fatal(err)
	}
	d := testdaemon.Start(t, testdaemon.WithArgs("--mysql-upstream-roles-file", file))
	owner := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
	d.MustJSON(t, 201, "POST", "/v1/databases", owner, map[string]any{"name": prod}, nil)
	d.MustJSON(t, 201, "POST", "/v1/databases", owner, map[string]any{"name": test, "test": true}, nil)
	// Registering a database in this mode creates nothing upstream.
	unmade := "rl_unmade_" + sfx
	d.MustJSON(t, 201, "POST", "/v1/databases", owner, map[string]any{"name": unmade}, nil)
	if n := queryString(t, admin, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", unmade); n != "0" {
		t.Fatal("heliosd created a database upstream without an administrator connection")
	}

	ownerDB := myDB(t, d, owner, prod)
	if u := queryString(t, ownerDB, "SELECT CURRENT_USER()"); u != users["helios_owner"]+"@%" {
		t.Fatalf("an owner token logged in as %q", u)
	}
	for _, q := range []string{"CREATE TABLE t(a INT)", "INSERT INTO t VALUES (1)"} {
		if _, err := ownerDB.Exec(q); err != nil {
			t.Fatalf("owner: %s: %v", q, err)
		}
	}
	write := myDB(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead, core.ScopeDatabaseWrite)}), prod)
	if u := queryString(t, write, "SELECT CURRENT_USER()"); u != users["helios_write"]+"@%" {
		t.Fatalf("a write token logged in as %q", u)
	}
	if _, err := write.Exec("INSERT INTO t VALUES (2)"); err != nil {
		t.Fatalf("write token INSERT: %v", err)
	}
	if _, err := write.Exec("CREATE TABLE t2(a INT)"); err == nil {
		t.Fatal("a write token created a table")
	}
	read := myDB(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead)}), prod)
	if u := queryString(t, read, "SELECT CURRENT_USER()"); u != users["helios_read"]+"@%" {
		t.Fatalf("a read token logged in as %q", u)
	}
	if n := queryString(t, read, "SELECT COUNT(*) FROM t"); n != "2" {
		t.Fatalf("read token sees %s rows", n)
	}
	_, err := read.Exec("DELETE FROM t")
	if code, msg := myErr(err); code != 1142 || !strings.Contains(msg, "database:write") {
		t.Fatalf("read token DELETE: %v", err)
	}

	for level, sc := range map[string]core.ScopeSet{"read": scopes(core.ScopeDatabaseRead),
		"write": scopes(core.ScopeDatabaseRead, core.ScopeDatabaseWrite), "owner": core.AllScopes} {
		tok := d.Mint(t, core.Claims{Account: 1, Type: core.TypeTest, Flags: core.FlagTestOnly, Scopes: sc})
		c := myDB(t, d, tok, test)
		if u := queryString(t, c, "SELECT CURRENT_USER()"); u != users["helios_test_"+level]+"@%" {
			t.Fatalf("a test %s token logged in as %q", level, u)
		}
		// The test users have no grant on the production database: the
		// server refuses, and the gateway adds the guide's words.
		_, err := c.Exec("SELECT * FROM " + prod + ".t")
		if code, msg := myErr(err); code != 1142 || !strings.Contains(msg, users["helios_test_"+level]) ||
			!strings.Contains(msg, "Test tokens can only access test databases") {
			t.Fatalf("test %s token reading %s.t: %v", level, prod, err)
		}
	}
	testOwner := myDB(t, d, d.Mint(t, core.Claims{Account: 1, Type: core.TypeTest, Flags: core.FlagTestOnly, Scopes: core.AllScopes}), test)
	if _, err := testOwner.Exec("CREATE TABLE tt(a INT)"); err != nil {
		t.Fatalf("test owner CREATE TABLE: %v", err)
	}

	// Revoked mid-query: the statement is ended on the server from
	// another connection of the same user (no administrator to KILL it).
	bearer := d.NewUser(t)
	tok, id := d.CreateToken(t, bearer, map[string]any{"name": "revoked", "scopes": []string{"*"}})
	conn, err := myDB(t, d, tok, "main").Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var thread int64
	if err := conn.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&thread); err != nil {
		t.Fatal(err)
	}
	// BENCHMARK runs for minutes and, unlike SLEEP, never looks at its
	// client's socket: only a KILL ends it (and ends it if this test fails).
	t.Cleanup(func() { _, _ = admin.Exec("KILL CONNECTION ?", thread) })
	done := make(chan error, 1)
	go func() {
		done <- conn.QueryRowContext(context.Background(), "SELECT BENCHMARK(2000000000, MD5('x'))").Scan(new(int))
	}()
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	d.Revoke(t, bearer, id)
	if err := <-done; err == nil {
		t.Fatal("the statement ended well for a revoked token")
	}
	for {
		if n := queryString(t, admin, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?", thread); n == "0" {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("the revoked session's statement still runs on the server")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// heliosd was given no administrator connection, made no passwords of
	// its own, and never wrote a role's password to its log.
	if _, err := os.Stat(filepath.Join(d.DataDir, "upstream-mysql.json")); err == nil {
		t.Fatal("heliosd made role passwords although it was given the users")
	}
	logs := d.Logs()
	for _, u := range urls {
		pu, _ := url.Parse(u)
		if pw, _ := pu.User.Password(); strings.Contains(logs, pw) {
			t.Fatal("a role's password is in heliosd's log")
		}
	}
	if !strings.Contains(logs, "MySQL upstream with given role logins") {
		t.Fatalf("heliosd did not say it runs on the given logins:\n%s", logs)
	}
}
