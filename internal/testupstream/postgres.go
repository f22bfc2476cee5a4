package testupstream

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/jackc/pgx/v5"
)

// pgBinDir holds Debian's PostgreSQL 15 server programs.
var pgBinDir = "/usr/lib/postgresql/15/bin"

// pgPackage is the Debian package that installs pgBinDir.
const pgPackage = "postgresql"

// pgHBA lets the Unix socket in (it is inside the private directory) and
// every user into every database from 127.0.0.1 with a SCRAM-SHA-256
// password, as heliosd's proxy logs in.
const pgHBA = `# testupstream: written by internal/testupstream
local all         all                  trust
host  all         all    127.0.0.1/32  scram-sha-256
host  replication all    127.0.0.1/32  scram-sha-256
`

// Postgres is a running PostgreSQL 15 server (Debian's
// /usr/lib/postgresql/15/bin) in a temporary directory, listening on
// 127.0.0.1 with a random superuser password. Its methods are safe for
// concurrent use.
type Postgres struct {
	Addr     string // 127.0.0.1:PORT
	AdminURL string // postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres?sslmode=disable
	Password string // the superuser's random password
	Dir      string // the temporary directory: data/, the Unix socket, postgres.log

	server            // its process, as the postgres system user when run as root
	settings []string // StartPostgres's settings, kept for Restart
}

// StartPostgres initialises a new cluster in a temporary directory and
// starts PostgreSQL on a free loopback port; it returns once the superuser
// can log in over TCP. It takes no testing.T because a TestMain calls it
// once per package; the caller must call Stop.
func StartPostgres() (*Postgres, error) { return StartPostgresWith() }

// StartPostgresWith is StartPostgres with server settings
// ("max_connections=400") passed after the harness's own, which they
// override (kept for Restart).
func StartPostgresWith(settings ...string) (*Postgres, error) {
	dir, cred, err := prepare("postgres", "postgres", pgPackage, filepath.Join(pgBinDir, "initdb"), filepath.Join(pgBinDir, "postgres"))
	if err != nil {
		return nil, err
	}
	p := &Postgres{Password: randomPassword(), Dir: dir, settings: settings, server: server{
		name: "postgres", dir: dir, cred: cred, shutdown: syscall.SIGINT, stopGrace: defaultStopGrace,
		// A killed postmaster leaves its PID file.
		leftover: filepath.Join(dir, "data", "postmaster.pid"),
	}}
	if err := p.initdb(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := p.startFree(p.start); err != nil {
		return nil, err
	}
	return p, nil
}

// initdb creates the cluster in Dir/data with the superuser postgres and
// Password, and writes pgHBA.
func (p *Postgres) initdb() error {
	pwfile := filepath.Join(p.Dir, "pwfile")
	if err := writeOwned(pwfile, []byte(p.Password+"\n"), p.cred); err != nil {
		return fmt.Errorf("postgres password file: %w", err)
	}
	defer os.Remove(pwfile)
	data := filepath.Join(p.Dir, "data")
	err := runToEnd(filepath.Join(pgBinDir, "initdb"), []string{
		"--pgdata=" + data,
		"--username=postgres",
		"--pwfile=" + pwfile,
		"--encoding=UTF8",
		"--locale=C",
		"--auth-host=scram-sha-256",
		"--auth-local=trust",
		"--no-sync",
		"--no-instructions",
	}, p.Dir, filepath.Join(p.Dir, "initdb.log"), p.cred)
	if err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	// pg_hba.conf exists and belongs to the server's user: rewriting it
	// keeps its owner and mode.
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(pgHBA), 0o600); err != nil {
		return fmt.Errorf("write pg_hba.conf: %w", err)
	}
	return nil
}

// start starts the server on port and waits until the superuser logs in.
// The caller holds mu, or owns p alone.
func (p *Postgres) start(port int) error {
	if err := checkSocketPath(filepath.Join(p.Dir, ".s.PGSQL."+strconv.Itoa(port))); err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	adminURL := (&url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword("postgres", p.Password),
		Host:     addr,
		Path:     "/postgres",
		RawQuery: "sslmode=disable",
	}).String()
	args := []string{
		"-D", filepath.Join(p.Dir, "data"),
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + p.Dir,
		"-c", "max_connections=200",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
	}
	for _, s := range p.settings { // the last -c of a name wins
		args = append(args, "-c", s)
	}
	err := p.spawn(port, "postgres", filepath.Join(pgBinDir, "postgres"), args, "postgres.log", func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	})
	if err != nil {
		return err
	}
	p.Addr, p.AdminURL = addr, adminURL
	return nil
}

// Stop shuts the server down fast — SIGINT to the postmaster, which is what
// pg_ctl stop -m fast sends: sessions are rolled back and closed — kills its
// process group if it has not exited within the grace period, and removes
// Dir. Calling it again does nothing.
func (p *Postgres) Stop() { p.stop() }

// Restart shuts the server down fast and starts it again on the same port
// and data, for tests of an upstream that restarts mid-session: sessions
// open through it break, committed data stays.
func (p *Postgres) Restart() error { return p.restart(p.start) }
