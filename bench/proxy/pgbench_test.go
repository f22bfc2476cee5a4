// Package proxy benchmarks heliosd's proxy mode against the peers a user
// would compare it with, in one run and interleaved (gateway, direct,
// PgBouncer, gateway, …) so that ratios hold on a shared machine: pgbench
// -S (persistent connections) at 8 and 50 clients, and pgbench -S -C (a new
// connection per transaction). TestMain starts PostgreSQL 15
// (internal/testupstream), PgBouncer 1.18 in session pooling with the same
// pool size, and heliosd in front of the same server; the MariaDB
// benchmarks (mysql_test.go) start MariaDB and a heliosd of their own.
// Run with:
//
//	go test ./bench/proxy -run '^$' -bench . -benchtime 1x
//
// Every figure is reported as a metric (tps-gateway, tps-direct,
// tps-pgbouncer, and the ratios). The package is never needed by the daemon.
package proxy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testdaemon"
	"github.com/heliosdb/auth/internal/testupstream"
)

// poolSize is the server connections per pool of the gateway and PgBouncer:
// in session pooling every client holds one, so it covers the most clients.
const poolSize = 60

var (
	pg       *testupstream.Postgres
	bouncer  string // 127.0.0.1:port of PgBouncer
	gateway  string // heliosd's PostgreSQL listener
	token    string // a full-access token of heliosd
	setupErr error
)

func TestMain(m *testing.M) {
	code := m.Run()
	stop()
	os.Exit(code)
}

var stops []func()

func stop() {
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
	testdaemon.RemoveBuilds()
}

// setup starts the servers once, for the first benchmark that needs them.
func setup(b *testing.B) {
	b.Helper()
	if gateway != "" || setupErr != nil {
		if setupErr != nil {
			b.Fatal(setupErr)
		}
		return
	}
	var err error
	if pg, err = testupstream.StartPostgres(); err != nil {
		setupErr = err
		b.Fatal(err)
	}
	stops = append(stops, pg.Stop)
	if out, err := pgbenchCmd(pg.Addr, "postgres", pg.Password, "-i", "-s", "10", "-q", "main").CombinedOutput(); err != nil {
		// pgbench -i needs the database: make it, then initialise.
		if err2 := createDB("main"); err2 != nil {
			setupErr = fmt.Errorf("create main: %v (pgbench -i: %v %s)", err2, err, out)
			b.Fatal(setupErr)
		}
		if out, err := pgbenchCmd(pg.Addr, "postgres", pg.Password, "-i", "-s", "10", "-q", "main").CombinedOutput(); err != nil {
			setupErr = fmt.Errorf("pgbench -i: %v\n%s", err, out)
			b.Fatal(setupErr)
		}
	}
	if bouncer, err = startPgBouncer(b); err != nil {
		setupErr = err
		b.Fatal(err)
	}
	d := testdaemon.Start(b, testdaemon.Shared(), testdaemon.WithArgs("--pg-upstream", pg.AdminURL, "--pg-pool-size", strconv.Itoa(poolSize)))
	stops = append(stops, func() { d.Stop(); os.RemoveAll(d.DataDir) })
	gateway = d.PG
	token = d.Mint(b, core.Claims{Account: 1, Scopes: core.AllScopes, ExpiresAt: time.Now().Add(24 * time.Hour).Unix()})
}

func createDB(name string) error {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, pg.AdminURL)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, "CREATE DATABASE "+name)
	return err
}

// startPgBouncer runs PgBouncer in session pooling in front of pg, with
// pool_size poolSize, as the postgres user (it refuses root).
func startPgBouncer(b *testing.B) (string, error) {
	dir, err := os.MkdirTemp("", "helios-pgbouncer-")
	if err != nil {
		return "", err
	}
	addr := testdaemon.FreeAddr(b, "127.0.0.1")
	host, port, _ := strings.Cut(addr, ":")
	pgHost, pgPort, _ := strings.Cut(pg.Addr, ":")
	ini := fmt.Sprintf(`[databases]
main = host=%s port=%s dbname=main
[pgbouncer]
listen_addr = %s
listen_port = %s
unix_socket_dir =
auth_type = scram-sha-256
auth_file = %s/userlist.txt
pool_mode = session
default_pool_size = %d
max_client_conn = 2000
logfile = %s/pgbouncer.log
pidfile = %s/pgbouncer.pid
`, pgHost, pgPort, host, port, dir, poolSize, dir, dir)
	if err := os.WriteFile(filepath.Join(dir, "pgbouncer.ini"), []byte(ini), 0o600); err != nil {
		return "", err
	}
	users := fmt.Sprintf("%q %q\n", "postgres", pg.Password)
	if err := os.WriteFile(filepath.Join(dir, "userlist.txt"), []byte(users), 0o600); err != nil {
		return "", err
	}
	cmd := exec.Command("pgbouncer", filepath.Join(dir, "pgbouncer.ini"))
	if os.Geteuid() == 0 {
		if err := exec.Command("chown", "-R", "postgres", dir).Run(); err != nil {
			return "", err
		}
		cmd = exec.Command("runuser", "-u", "postgres", "--", "pgbouncer", filepath.Join(dir, "pgbouncer.ini"))
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("pgbouncer (Debian package pgbouncer): %w", err)
	}
	stops = append(stops, func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		_ = cmd.Wait()
		os.RemoveAll(dir)
	})
	for i := 0; i < 100; i++ {
		if out, err := pgbenchCmd(addr, "postgres", pg.Password, "-S", "-t", "1", "main").CombinedOutput(); err == nil {
			return addr, nil
		} else if i == 99 {
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			return "", fmt.Errorf("pgbouncer did not answer: %v\n%s\n%s", err, out, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return addr, nil
}

// pgbenchCmd is pgbench against addr as user, without TLS (every target is
// on loopback; TLS would measure the handshake, not the proxy).
func pgbenchCmd(addr, user, password string, args ...string) *exec.Cmd {
	host, port, _ := strings.Cut(addr, ":")
	cmd := exec.Command("pgbench", append([]string{"-h", host, "-p", port, "-U", user}, args...)...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PGSSLMODE=disable")
	return cmd
}

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+)`)

// target is one endpoint the same workload runs against.
type target struct {
	name, addr, user, password string
}

func targets() []target {
	return []target{
		{"gateway", gateway, "default", token},
		{"direct", pg.Addr, "postgres", pg.Password},
		{"pgbouncer", bouncer, "postgres", pg.Password},
	}
}

// compare runs pgbench with args against every target in rounds of
// seconds each, interleaved, and reports each target's median tps and the
// gateway's ratios.
func compare(b *testing.B, rounds, seconds int, args ...string) {
	setup(b)
	tps := map[string][]float64{}
	for r := 0; r < rounds; r++ {
		for _, t := range targets() {
			out, err := pgbenchCmd(t.addr, t.user, t.password, append(args, "-T", strconv.Itoa(seconds), "main")...).CombinedOutput()
			m := tpsRE.FindSubmatch(out)
			if err != nil || m == nil {
				b.Fatalf("pgbench %v against %s: %v\n%s", args, t.name, err, out)
			}
			if strings.Contains(string(out), "number of failed transactions: ") && !strings.Contains(string(out), "number of failed transactions: 0 ") {
				b.Fatalf("pgbench %v against %s had failures:\n%s", args, t.name, out)
			}
			v, _ := strconv.ParseFloat(string(m[1]), 64)
			tps[t.name] = append(tps[t.name], v)
		}
	}
	med := map[string]float64{}
	for name, vs := range tps {
		sort.Float64s(vs)
		med[name] = vs[len(vs)/2]
		b.ReportMetric(med[name], "tps-"+name)
	}
	b.ReportMetric(med["gateway"]/med["direct"], "gateway/direct")
	b.ReportMetric(med["gateway"]/med["pgbouncer"], "gateway/pgbouncer")
	b.Logf("pgbench %s: gateway %.0f tps, direct %.0f, pgbouncer %.0f (medians of %d interleaved rounds of %ds)",
		strings.Join(args, " "), med["gateway"], med["direct"], med["pgbouncer"], rounds, seconds)
}

// BenchmarkPgbenchSelect is pgbench -S with persistent connections.
func BenchmarkPgbenchSelect(b *testing.B) {
	for _, clients := range []int{8, 50} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			compare(b, 3, 4, "-S", "-c", strconv.Itoa(clients), "-j", "2")
		})
	}
}

// BenchmarkPgbenchConnect is pgbench -S -C: a new connection (and login)
// per transaction. Direct PostgreSQL runs SCRAM-SHA-256 each time; the
// gateway verifies a token and hands over a pooled server connection.
func BenchmarkPgbenchConnect(b *testing.B) {
	compare(b, 3, 4, "-S", "-C", "-c", "8", "-j", "2")
}
