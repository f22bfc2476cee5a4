// Package proxy tests heliosd's proxy mode with real servers behind it:
// PostgreSQL 15 and MariaDB 10.11, started once for the package in
// TestMain (internal/testupstream), and real clients in front (psql, pgx,
// the mariadb CLI, go-sql-driver). Every daemon of the package shares the
// upstream roles' passwords (one passwords file copied into each data
// directory), so that daemons started side by side do not change each
// other's role passwords on the shared servers.
package proxy

import (
	"fmt"
	"testing"

	"github.com/heliosdb/auth/internal/testdaemon"
	"github.com/heliosdb/auth/internal/testupstream"
)

var (
	// pg and maria are the package's upstream servers.
	pg    *testupstream.Postgres
	maria *testupstream.MariaDB
	// rolePasswords is the passwords file every daemon starts with (the
	// six roles' passwords, as heliosd would make them;
	// testdaemon.WriteRolePasswords).
	rolePasswords string
)

func TestMain(m *testing.M) {
	testdaemon.Main(m, func(atExit func(func())) (err error) {
		if pg, err = testupstream.StartPostgres(); err != nil {
			return fmt.Errorf("start PostgreSQL: %w", err)
		}
		atExit(pg.Stop)
		if maria, err = testupstream.StartMariaDB(); err != nil {
			return fmt.Errorf("start MariaDB: %w", err)
		}
		atExit(maria.Stop)
		rolePasswords, err = testdaemon.WriteRolePasswords(atExit)
		return err
	})
}

// withSQLTimeout gives REST statements 1s (the default is 30s).
var withSQLTimeout = testdaemon.WithArgs("--sql-timeout", "1s")

// daemonWith starts heliosd in proxy mode in front of the package's
// servers (both, unless args say otherwise), with the shared role
// passwords, and more options.
func daemonWith(t *testing.T, opts ...testdaemon.Option) *testdaemon.Daemon {
	t.Helper()
	dir := testdaemon.DataDirWith(t, rolePasswords, "upstream-postgres.json", "upstream-mysql.json")
	all := []testdaemon.Option{testdaemon.WithDataDir(dir), testdaemon.WithArgs("--pg-upstream", pg.AdminURL, "--mysql-upstream", maria.AdminURL)}
	return testdaemon.Start(t, append(all, opts...)...)
}
