// Package proxy tests heliosd's proxy mode with real servers behind it:
// PostgreSQL 15 and MariaDB 10.11, started once for the package in
// TestMain (internal/testupstream), and real clients in front (psql, pgx,
// the mariadb CLI, go-sql-driver). Every daemon of the package shares the
// upstream roles' passwords (one passwords file copied into each data
// directory), so that daemons started side by side do not change each
// other's role passwords on the shared servers.
package proxy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/heliosdb/auth/internal/testdaemon"
	"github.com/heliosdb/auth/internal/testupstream"
)

var (
	// pg and maria are the package's upstream servers.
	pg    *testupstream.Postgres
	maria *testupstream.MariaDB
	// rolePasswords is the passwords file every daemon starts with (the
	// six roles' passwords, as heliosd would make them).
	rolePasswords string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if pg, err = testupstream.StartPostgres(); err != nil {
		fmt.Fprintln(os.Stderr, "start PostgreSQL:", err)
		return 1
	}
	defer pg.Stop()
	if maria, err = testupstream.StartMariaDB(); err != nil {
		fmt.Fprintln(os.Stderr, "start MariaDB:", err)
		return 1
	}
	defer maria.Stop()
	dir, err := os.MkdirTemp("", "helios-proxy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	pw := map[string]string{}
	for _, r := range []string{"helios_read", "helios_write", "helios_owner", "helios_test_read", "helios_test_write", "helios_test_owner"} {
		pw[r] = "pw-" + r + "-for-tests"
	}
	js, _ := json.Marshal(pw)
	rolePasswords = filepath.Join(dir, "roles.json")
	if err := os.WriteFile(rolePasswords, js, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	testdaemon.RemoveBuilds()
	return code
}

// withSQLTimeout gives REST statements 1s (the default is 30s).
var withSQLTimeout = testdaemon.WithArgs("--sql-timeout", "1s")

// daemonWith starts heliosd in proxy mode in front of the package's
// servers (both, unless args say otherwise), with the shared role
// passwords, and more options.
func daemonWith(t *testing.T, opts ...testdaemon.Option) *testdaemon.Daemon {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile(rolePasswords)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"upstream-postgres.json", "upstream-mysql.json"} {
		if err := os.WriteFile(filepath.Join(dir, name), js, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	all := []testdaemon.Option{testdaemon.WithDataDir(dir), testdaemon.WithArgs("--pg-upstream", pg.AdminURL, "--mysql-upstream", maria.AdminURL)}
	return testdaemon.Start(t, append(all, opts...)...)
}
