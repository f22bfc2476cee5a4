package testupstream

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Debian's MariaDB server programs.
var (
	mariadbdPath  = "/usr/sbin/mariadbd"
	installDBPath = "/usr/bin/mariadb-install-db"
)

// mariadbPackage is the Debian package that installs mariadbdPath.
const mariadbPackage = "mariadb-server"

// MariaDB is a running MariaDB 10.11 server (Debian's /usr/sbin/mariadbd) in
// a temporary directory, listening on 127.0.0.1. Its root account has a
// random mysql_native_password password and every privilege WITH GRANT
// OPTION, from localhost, 127.0.0.1 and '%'; no other account exists but
// the server's internal mariadb.sys. Its methods are safe for concurrent use.
type MariaDB struct {
	Addr     string // 127.0.0.1:PORT
	AdminURL string // mysql://root:PASSWORD@127.0.0.1:PORT/
	Password string // root's random password
	Dir      string // the temporary directory: data/, the Unix socket, mariadb.log

	server // its process, as the mysql system user when run as root
}

// StartMariaDB installs a new data directory in a temporary directory,
// starts MariaDB on a free loopback port and sets root's password; it
// returns once root can log in over TCP with it. It takes no testing.T
// because a TestMain calls it once per package; the caller must call Stop.
func StartMariaDB() (*MariaDB, error) {
	dir, cred, err := prepare("mariadb", "mysql", mariadbPackage, mariadbdPath, installDBPath)
	if err != nil {
		return nil, err
	}
	m := &MariaDB{Password: randomPassword(), Dir: dir, server: server{
		name: "mariadb", dir: dir, cred: cred, shutdown: syscall.SIGTERM, stopGrace: defaultStopGrace,
	}}
	if err := checkSocketPath(m.socket()); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	err = runToEnd(installDBPath, append([]string{
		"--no-defaults", // must come first
		"--datadir=" + m.data(),
		"--auth-root-authentication-method=normal", // root@localhost without password until setRoot
		"--skip-test-db",
	}, serverOptions...), dir, filepath.Join(dir, "install.log"), cred)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mariadb-install-db: %w", err)
	}
	if err := m.startFree(m.firstStart); err != nil {
		return nil, err
	}
	return m, nil
}

// serverOptions are the mariadbd options for tests that both the install
// and the server use: no binary log, a small buffer pool and log, no flush
// at each commit.
var serverOptions = []string{
	"--skip-log-bin",
	"--innodb-buffer-pool-size=64M",
	"--innodb-log-file-size=8M",
	"--innodb-flush-log-at-trx-commit=0",
}

func (m *MariaDB) data() string   { return filepath.Join(m.Dir, "data") }
func (m *MariaDB) socket() string { return filepath.Join(m.Dir, "mysqld.sock") }

// firstStart starts the fresh server on port, gives root its password from
// every host it may connect from over the Unix socket (where root has no
// password yet), and checks the password works over TCP.
func (m *MariaDB) firstStart(port int) error {
	socketCfg := mysql.NewConfig()
	socketCfg.User, socketCfg.Net, socketCfg.Addr = "root", "unix", m.socket()
	socketCfg.Timeout = 2 * time.Second
	return m.start(port, func(ctx context.Context) error { return m.setRoot(ctx, socketCfg) }, m.pingTCP(port))
}

// setRoot leaves root@localhost as the only administrator, with Password,
// and adds root@'127.0.0.1' and root@'%' with every privilege WITH GRANT
// OPTION, so that heliosd can create users and grant them.
func (m *MariaDB) setRoot(ctx context.Context, cfg *mysql.Config) error {
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	pw := "'" + m.Password + "'" // hex digits: nothing to escape
	for _, stmt := range []string{
		// Anonymous and passwordless accounts from the install
		// (root@<hostname>, root@::1, root@127.0.0.1) go. Every
		// statement can run again if a retry follows a lost
		// connection.
		"DELETE FROM mysql.global_priv WHERE NOT (User = 'root' AND Host = 'localhost') AND User <> 'mariadb.sys'",
		"FLUSH PRIVILEGES",
		"CREATE OR REPLACE USER root@'127.0.0.1' IDENTIFIED BY " + pw,
		"GRANT ALL PRIVILEGES ON *.* TO root@'127.0.0.1' WITH GRANT OPTION",
		"CREATE OR REPLACE USER root@'%' IDENTIFIED BY " + pw,
		"GRANT ALL PRIVILEGES ON *.* TO root@'%' WITH GRANT OPTION",
		"ALTER USER root@localhost IDENTIFIED BY " + pw, // last: until here a retry can log in
	} {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			// The statement holds the password: name it by its verb.
			return fmt.Errorf("set up root (%.20s…): %w", stmt, err)
		}
	}
	return nil
}

// pingTCP returns a readiness check: root logs in over TCP with Password.
func (m *MariaDB) pingTCP(port int) func(context.Context) error {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net = "root", m.Password, "tcp"
	cfg.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cfg.Timeout = 2 * time.Second
	return func(ctx context.Context) error {
		connector, err := mysql.NewConnector(cfg)
		if err != nil {
			return err
		}
		db := sql.OpenDB(connector)
		defer db.Close()
		return db.PingContext(ctx)
	}
}

// start starts mariadbd on port and waits until each of ready succeeds in
// turn. The caller holds mu, or owns m alone.
func (m *MariaDB) start(port int, ready ...func(context.Context) error) error {
	err := m.spawn(port, "mariadb", mariadbdPath, append([]string{
		"--no-defaults", // must come first
		"--datadir=" + m.data(),
		"--socket=" + m.socket(),
		"--pid-file=" + filepath.Join(m.Dir, "mysqld.pid"),
		"--bind-address=127.0.0.1",
		"--port=" + strconv.Itoa(port),
		"--max-connections=200",
	}, serverOptions...), "mariadb.log", ready...)
	if err != nil {
		return err
	}
	m.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	m.AdminURL = (&url.URL{Scheme: "mysql", User: url.UserPassword("root", m.Password), Host: m.Addr, Path: "/"}).String()
	return nil
}

// Stop shuts the server down (SIGTERM: a clean shutdown), kills its process
// group if it has not exited within the grace period, and removes Dir.
// Calling it again does nothing.
func (m *MariaDB) Stop() { m.stop() }

// Restart shuts the server down and starts it again on the same port and
// data, for tests of an upstream that restarts mid-session: sessions open
// through it break, committed data and accounts stay.
func (m *MariaDB) Restart() error {
	return m.restart(func(port int) error { return m.start(port, m.pingTCP(port)) })
}
