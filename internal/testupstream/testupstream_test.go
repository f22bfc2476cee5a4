package testupstream

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestPostgres starts PostgreSQL and checks what heliosd's proxy relies on:
// the admin URL logs in over TCP, the settings are the test ones, a role the
// admin creates logs in with its password (and not without), Restart keeps
// data on the same address after a clean shutdown, a taken port is reported
// as such, and Stop leaves no process and no directory.
func TestPostgres(t *testing.T) {
	p := started(t, "PostgreSQL", StartPostgres)
	ctx := context.Background()

	u, err := url.Parse(p.AdminURL)
	if err != nil || u.Host != p.Addr || u.User.Username() != "postgres" || !strings.HasPrefix(p.Addr, "127.0.0.1:") {
		t.Fatalf("Addr %q, AdminURL host %q user %q (%v)", p.Addr, u.Host, u.User.Username(), err)
	}
	if pw, _ := u.User.Password(); pw != p.Password || len(p.Password) < 32 {
		t.Fatalf("AdminURL does not hold the %d-character Password", len(p.Password))
	}
	admin := pgConnect(t, p.AdminURL)
	var version string
	if err := admin.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil || !strings.HasPrefix(version, "PostgreSQL 15.") {
		t.Fatalf("SELECT version(): %q, %v", version, err)
	}
	t.Logf("%s", version)
	for setting, want := range map[string]string{
		"max_connections": "200", "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
		"listen_addresses": "127.0.0.1", "unix_socket_directories": p.Dir, "server_encoding": "UTF8",
		"password_encryption": "scram-sha-256",
	} {
		var got string
		if err := admin.QueryRow(ctx, "SELECT current_setting($1)", setting).Scan(&got); err != nil || got != want {
			t.Errorf("%s = %q (%v), want %q", setting, got, err, want)
		}
	}
	if err := pgLoginError(p.AdminURL, "postgres", "wrong"); err == nil || pgCode(err) != "28P01" {
		t.Errorf("superuser with a wrong password: %v, want SQLSTATE 28P01", err)
	}

	// A role the admin creates logs in over TCP with its password.
	if _, err := admin.Exec(ctx, "CREATE ROLE helios_test LOGIN PASSWORD 'test-pw-1'"); err != nil {
		t.Fatalf("CREATE ROLE: %v", err)
	}
	if err := pgLoginError(p.AdminURL, "helios_test", "test-pw-1"); err != nil {
		t.Errorf("new role with its password: %v", err)
	}
	if err := pgLoginError(p.AdminURL, "helios_test", "test-pw-2"); pgCode(err) != "28P01" {
		t.Errorf("new role with a wrong password: %v, want SQLSTATE 28P01", err)
	}

	// Restart: the same address, a new postmaster, open sessions broken,
	// committed data kept, and the shutdown was the clean fast one.
	if _, err := admin.Exec(ctx, "CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatalf("CREATE TABLE: %v", err)
	}
	var backend int
	if err := admin.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		t.Fatal(err)
	}
	addr, oldPID := p.Addr, p.proc.pid()
	t0 := time.Now()
	if err := p.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	t.Logf("PostgreSQL restarted in %s", time.Since(t0).Round(time.Millisecond))
	if p.Addr != addr || p.proc.pid() == oldPID || running(oldPID) || running(backend) {
		t.Errorf("after Restart: Addr %s (was %s), PID %d (was %d, running %v), old backend running %v",
			p.Addr, addr, p.proc.pid(), oldPID, running(oldPID), running(backend))
	}
	if err := admin.Ping(ctx); err == nil {
		t.Error("a session opened before Restart still answers")
	}
	if log, _ := os.ReadFile(filepath.Join(p.Dir, "postgres.log")); !strings.Contains(string(log), "database system is shut down") {
		t.Errorf("no clean shutdown in the log:\n%s", log)
	}
	admin = pgConnect(t, p.AdminURL)
	var x int
	if err := admin.QueryRow(ctx, "SELECT x FROM kept").Scan(&x); err != nil || x != 42 {
		t.Errorf("after Restart, SELECT x FROM kept: %d, %v", x, err)
	}
	if err := pgLoginError(p.AdminURL, "helios_test", "test-pw-1"); err != nil {
		t.Errorf("after Restart, new role with its password: %v", err)
	}

	// A port another process holds is reported as taken, with the log.
	if err := startOnTakenPort(t, &p.server, p.Addr, p.start); !errors.Is(err, errAddrInUse) || !strings.Contains(err.Error(), "could not bind") || strings.Contains(err.Error(), p.Password) {
		t.Errorf("start on a taken port: %v, want errAddrInUse with the log tail and no password", err)
	}
	if err := p.Restart(); err != nil {
		t.Fatalf("Restart once the port is free: %v", err)
	}
	admin = pgConnect(t, p.AdminURL)
	if err := admin.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		t.Fatal(err)
	}

	checkStop(t, p.proc.pid(), backend, p.Dir, p.Stop)
	if err := p.Restart(); err == nil {
		t.Error("Restart after Stop succeeded")
	}
}

// TestPostgresStopKillsAStuckServer checks Stop's last resort: a postmaster
// that does not shut down (stopped with SIGSTOP) is killed once the grace
// period is over, and so are its children — among them a backend busy in a
// loop, which would not notice its postmaster's death and is in a process
// group of its own.
func TestPostgresStopKillsAStuckServer(t *testing.T) {
	p := started(t, "PostgreSQL", StartPostgres)
	ctx := context.Background()
	conn := pgConnect(t, p.AdminURL)
	var backend int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // if Stop failed, this test's own backend stops burning CPU
		if running(backend) {
			syscall.Kill(backend, syscall.SIGKILL)
		}
	})
	if _, err := conn.Exec(ctx, "SET statement_timeout = '30s'"); err != nil {
		t.Fatal(err)
	}
	busy := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, "DO $$BEGIN LOOP PERFORM 1; END LOOP; END$$")
		busy <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if st, ok := readStat(backend); ok && st.state == 'R' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the backend does not run the loop")
		}
	}
	pid := p.proc.pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	p.stopGrace = 300 * time.Millisecond
	checkStop(t, pid, backend, p.Dir, p.Stop)
	if err := <-busy; err == nil {
		t.Error("the loop ended without an error")
	}
}

// TestMariaDB starts MariaDB and checks what heliosd's proxy relies on: root
// logs in over TCP with Password and can grant, no other account is left
// from the install, a user root creates logs in with its password (and not
// without), Restart keeps data on the same address after a clean shutdown,
// and Stop leaves no process and no directory.
func TestMariaDB(t *testing.T) {
	m := started(t, "MariaDB", StartMariaDB)

	u, err := url.Parse(m.AdminURL)
	if err != nil || u.Scheme != "mysql" || u.Host != m.Addr || u.User.Username() != "root" || !strings.HasPrefix(m.Addr, "127.0.0.1:") {
		t.Fatalf("Addr %q, AdminURL host %q user %q (%v)", m.Addr, u.Host, u.User.Username(), err)
	}
	if pw, _ := u.User.Password(); pw != m.Password || len(m.Password) < 32 {
		t.Fatalf("AdminURL does not hold the %d-character Password", len(m.Password))
	}
	admin := myOpen(t, m.Addr, "root", m.Password)
	var version string
	if err := admin.QueryRow("SELECT VERSION()").Scan(&version); err != nil || !strings.HasPrefix(version, "10.11.") || !strings.Contains(version, "MariaDB") {
		t.Fatalf("SELECT VERSION(): %q, %v", version, err)
	}
	t.Logf("%s", version)
	for variable, want := range map[string]string{
		"bind_address": "127.0.0.1", "log_bin": "0", "innodb_flush_log_at_trx_commit": "0",
		"innodb_buffer_pool_size": strconv.Itoa(64 << 20), "skip_grant_tables": "0", "max_connections": "200",
	} {
		var got string
		if err := admin.QueryRow("SELECT @@GLOBAL." + variable).Scan(&got); err != nil || got != want {
			t.Errorf("@@%s = %q (%v), want %q", variable, got, err, want)
		}
	}
	if err := myLoginError(m.Addr, "root", "wrong"); myCode(err) != 1045 {
		t.Errorf("root with a wrong password: %v, want error 1045", err)
	}
	var accounts []string
	rows, err := admin.Query("SELECT CONCAT(User, '@', Host) FROM mysql.user ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			t.Fatal(err)
		}
		accounts = append(accounts, a)
	}
	if got := strings.Join(accounts, " "); got != "mariadb.sys@localhost root@% root@127.0.0.1 root@localhost" {
		t.Errorf("accounts: %s", got)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "%"} {
		var grants string
		if err := admin.QueryRow("SHOW GRANTS FOR root@'" + host + "'").Scan(&grants); err != nil ||
			!strings.Contains(grants, "GRANT ALL PRIVILEGES ON *.*") || !strings.HasSuffix(grants, "WITH GRANT OPTION") {
			t.Errorf("grants of root@%s: %q, %v", host, grants, err)
		}
	}

	// A user root creates and grants logs in over TCP with its password.
	for _, stmt := range []string{
		"CREATE USER helios_test@'%' IDENTIFIED BY 'test-pw-1'",
		"GRANT SELECT ON *.* TO helios_test@'%'",
		"CREATE DATABASE kept",
		"CREATE TABLE kept.t (x int) ENGINE=InnoDB",
		"INSERT INTO kept.t VALUES (42)",
	} {
		if _, err := admin.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if err := myLoginError(m.Addr, "helios_test", "test-pw-1"); err != nil {
		t.Errorf("new user with its password: %v", err)
	}
	if err := myLoginError(m.Addr, "helios_test", "test-pw-2"); myCode(err) != 1045 {
		t.Errorf("new user with a wrong password: %v, want error 1045", err)
	}

	// Restart: the same address, a new server, committed data kept, and
	// the shutdown was a clean one.
	held, err := admin.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	addr, oldPID := m.Addr, m.proc.pid()
	t0 := time.Now()
	if err := m.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	t.Logf("MariaDB restarted in %s", time.Since(t0).Round(time.Millisecond))
	if m.Addr != addr || m.proc.pid() == oldPID || running(oldPID) {
		t.Errorf("after Restart: Addr %s (was %s), PID %d (was %d, running %v)", m.Addr, addr, m.proc.pid(), oldPID, running(oldPID))
	}
	if err := held.PingContext(context.Background()); err == nil {
		t.Error("a session opened before Restart still answers")
	}
	if log, _ := os.ReadFile(filepath.Join(m.Dir, "mariadb.log")); !strings.Contains(string(log), "Shutdown complete") {
		t.Errorf("no clean shutdown in the log:\n%s", log)
	}
	var x int
	if err := admin.QueryRow("SELECT x FROM kept.t").Scan(&x); err != nil || x != 42 {
		t.Errorf("after Restart, SELECT x FROM kept.t: %d, %v", x, err)
	}
	if err := myLoginError(m.Addr, "helios_test", "test-pw-1"); err != nil {
		t.Errorf("after Restart, new user with its password: %v", err)
	}

	admin.Close()
	checkStop(t, m.proc.pid(), 0, m.Dir, m.Stop)
	if err := m.Restart(); err == nil {
		t.Error("Restart after Stop succeeded")
	}
}

// TestMissingBinaryNamesPackage checks that a missing server is an error
// naming the Debian package to install.
func TestMissingBinaryNamesPackage(t *testing.T) {
	savedPG, savedMariaDB := pgBinDir, mariadbdPath
	t.Cleanup(func() { pgBinDir, mariadbdPath = savedPG, savedMariaDB })
	pgBinDir = filepath.Join(t.TempDir(), "bin")
	mariadbdPath = filepath.Join(t.TempDir(), "mariadbd")
	if p, err := StartPostgres(); err == nil || !strings.Contains(err.Error(), "Debian package postgresql ") {
		if p != nil {
			p.Stop()
		}
		t.Errorf("StartPostgres without PostgreSQL: %v", err)
	}
	if m, err := StartMariaDB(); err == nil || !strings.Contains(err.Error(), "Debian package mariadb-server ") {
		if m != nil {
			m.Stop()
		}
		t.Errorf("StartMariaDB without mariadbd: %v", err)
	}
}

// started is Started, and logs how long name took to start.
func started[S interface{ Stop() }](t *testing.T, name string, start func() (S, error)) S {
	t.Helper()
	t0 := time.Now()
	s := Started(t, start)
	t.Logf("%s started in %s", name, time.Since(t0).Round(time.Millisecond))
	return s
}

// startOnTakenPort stops s's process, holds its address addr with a
// listener of the test's and returns what start on that port says; the
// server is left stopped.
func startOnTakenPort(t *testing.T, s *server, addr string, start func(port int) error) error {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopProc()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("hold %s: %v", addr, err)
	}
	defer l.Close()
	return start(s.port)
}

// checkStop calls stop and checks that the server (led by pid), its
// children, its process group, the backend process (when not 0) and dir are
// gone, and that a second stop returns.
func checkStop(t *testing.T, pid, backend int, dir string, stop func()) {
	t.Helper()
	pids := append(childrenOf(pid), pid)
	if backend != 0 && !slices.Contains(pids, backend) {
		t.Errorf("backend %d is not a child of the server %d (children %v)", backend, pid, pids)
	}
	t0 := time.Now()
	stop()
	t.Logf("stopped in %s", time.Since(t0).Round(time.Millisecond))
	// Killed processes are gone a moment after SIGKILL is delivered.
	left := func() []int {
		var left []int
		for _, p := range pids {
			if running(p) {
				left = append(left, p)
			}
		}
		return append(left, groupMembers(pid)...)
	}
	for deadline := time.Now().Add(2 * time.Second); len(left()) > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if l := left(); len(l) > 0 {
		t.Errorf("processes %v of the server still running after Stop", l)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after Stop: %v", dir, err)
	}
	stop()
}

// running reports whether pid is a live (not zombie) process.
func running(pid int) bool {
	st, ok := readStat(pid)
	return ok && st.state != 'Z' && st.state != 'X'
}

// groupMembers lists the live processes of process group pgid.
func groupMembers(pgid int) []int {
	return processes(func(st stat) bool { return st.pgrp == pgid && st.state != 'Z' && st.state != 'X' })
}

// pgConnect opens a pgx connection closed at the end of the test.
func pgConnect(t *testing.T, connURL string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connURL)
	if err != nil {
		t.Fatalf("pgx.Connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// pgLoginError logs in over TCP as user with password to the server of
// adminURL and runs SELECT current_user.
func pgLoginError(adminURL, user, password string) error {
	u, err := url.Parse(adminURL)
	if err != nil {
		return err
	}
	u.User = url.UserPassword(user, password)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var got string
	if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&got); err != nil {
		return err
	}
	if got != user {
		return errors.New("logged in as " + got)
	}
	return nil
}

// pgCode is the SQLSTATE of a PostgreSQL error ("" for other errors).
func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// myDB is a go-sql-driver pool to addr as user with password.
func myDB(addr, user, password string) (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, password, "tcp", addr
	cfg.Timeout = 10 * time.Second
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(connector), nil
}

// myOpen opens a go-sql-driver pool to addr, closed at the end of the test.
func myOpen(t *testing.T, addr, user, password string) *sql.DB {
	t.Helper()
	db, err := myDB(addr, user, password)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// myLoginError logs in over TCP as user with password and checks
// CURRENT_USER().
func myLoginError(addr, user, password string) error {
	db, err := myDB(addr, user, password)
	if err != nil {
		return err
	}
	defer db.Close()
	var got string
	if err := db.QueryRow("SELECT CURRENT_USER()").Scan(&got); err != nil {
		return err
	}
	if !strings.HasPrefix(got, user+"@") {
		return errors.New("logged in as " + got)
	}
	return nil
}

// myCode is the MySQL error number of err (0 for other errors).
func myCode(err error) uint16 {
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return myErr.Number
	}
	return 0
}

// TestPostgresWithSettings: StartPostgresWith's settings override the
// harness's own (a benchmark that holds more than 200 server connections
// raises max_connections) and hold across Restart.
func TestPostgresWithSettings(t *testing.T) {
	p := started(t, "PostgreSQL", func() (*Postgres, error) { return StartPostgresWith("max_connections=320") })
	for _, restart := range []bool{false, true} {
		if restart {
			if err := p.Restart(); err != nil {
				t.Fatal(err)
			}
		}
		var got string
		if err := pgConnect(t, p.AdminURL).QueryRow(context.Background(), "SHOW max_connections").Scan(&got); err != nil || got != "320" {
			t.Fatalf("max_connections = %q (%v) after restart %v, want 320", got, err, restart)
		}
	}
}
