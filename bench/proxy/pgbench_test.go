// Package proxy benchmarks heliosd's proxy mode against the peers a user
// would compare it with, in one run and interleaved (gateway, direct,
// PgBouncer, gateway, …) so that ratios hold on a shared machine: pgbench
// -S (persistent connections) at 8 and 50 clients, and pgbench -S -C (a new
// connection per transaction). TestMain starts PostgreSQL 15
// (internal/testupstream), PgBouncer 1.18 in session pooling with the same
// pool size, and two heliosd in front of the same server: "gateway" with
// the defaults (on this 2-core machine two Go Ps and two event loops per
// listener) and "gateway-1cpu" with GOMAXPROCS=1 (one P, one event loop:
// PgBouncer runs one thread). PgBouncer is measured twice: "pgbouncer"
// logs in to the server as postgres, as an operator would set it up, and
// "pgbouncer-owner" as helios_owner, the role the gateway gives a
// full-access token, so that the server does the same work behind both
// proxies. The MariaDB benchmarks (mysql_test.go) start MariaDB and a
// heliosd of their own. Run with:
//
//	go test ./bench/proxy -run '^$' -bench . -benchtime 1x
//
// Every figure is reported as a metric (tps-gateway, tps-gateway-1cpu,
// tps-direct, tps-pgbouncer, tps-pgbouncer-owner, the gateways' ratios, and
// cpu-µs/tx-NAME: the CPU time heliosd or PgBouncer spent per transaction,
// from /proc). The package is never needed by the daemon.
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
	pg         *testupstream.Postgres
	bouncer    string // 127.0.0.1:port of PgBouncer
	bouncerDir string // its directory (pgbouncer.pid)
	gateways   []gatewayD
	setupErr   error
)

// gatewayD is one heliosd in front of pg: the default one, and one with
// GOMAXPROCS=1 (one Go P and one event loop per listener, as PgBouncer
// runs one thread).
type gatewayD struct {
	name, addr, token string
	pid               int
}

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
	if gateways != nil || setupErr != nil {
		if setupErr != nil {
			b.Fatal(setupErr)
		}
		return
	}
	var err error
	// Two gateways, PgBouncer and direct at 50 clients each hold 50
	// server connections (pools keep theirs idle between rounds).
	if pg, err = testupstream.StartPostgresWith("max_connections=400"); err != nil {
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
	// Both gateways set the same role passwords on the server (so that
	// neither changes the other's), which PgBouncer's same-role pool uses
	// too.
	passwords, err := testdaemon.WriteRolePasswords(func(f func()) { stops = append(stops, f) })
	if err != nil {
		setupErr = err
		b.Fatal(err)
	}
	for _, g := range []struct{ name, env string }{{"gateway", ""}, {"gateway-1cpu", "GOMAXPROCS=1"}} {
		dir, err := dataDirWith(passwords)
		if err != nil {
			setupErr = err
			b.Fatal(err)
		}
		opts := []testdaemon.Option{testdaemon.Shared(), testdaemon.WithDataDir(dir),
			testdaemon.WithArgs("--pg-upstream", pg.AdminURL, "--pg-pool-size", strconv.Itoa(poolSize))}
		if g.env != "" {
			opts = append(opts, testdaemon.WithEnv(g.env))
		}
		d := testdaemon.Start(b, opts...)
		stops = append(stops, func() { d.Stop(); os.RemoveAll(d.DataDir) })
		tok := d.Mint(b, core.Claims{Account: 1, Scopes: core.AllScopes, ExpiresAt: time.Now().Add(24 * time.Hour).Unix()})
		gateways = append(gateways, gatewayD{g.name, d.PG, tok, d.PID()})
	}
}

// dataDirWith is a new data directory (removed by stop) holding the role
// passwords file src as heliosd's upstream-postgres.json.
func dataDirWith(src string) (string, error) {
	dir, err := os.MkdirTemp("", "helios-bench-gateway-")
	if err != nil {
		return "", err
	}
	stops = append(stops, func() { os.RemoveAll(dir) })
	js, err := os.ReadFile(src)
	if err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "upstream-postgres.json"), js, 0o600)
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
// pool_size poolSize, as the postgres user (it refuses root). Its database
// main logs in to the server as postgres, as an operator would set it up;
// main_owner as helios_owner, the role the gateway gives a full-access
// token (with the password testdaemon.WriteRolePasswords sets), so that
// the server does the same work behind both proxies: a superuser skips
// the privilege checks a least-privilege role costs PostgreSQL.
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
main_owner = host=%s port=%s dbname=main user=helios_owner password=pw-helios_owner-for-tests
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
`, pgHost, pgPort, pgHost, pgPort, host, port, dir, poolSize, dir, dir)
	bouncerDir = dir
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

var (
	tpsRE = regexp.MustCompile(`tps = ([0-9.]+)`)
	txRE  = regexp.MustCompile(`number of transactions actually processed: ([0-9]+)`)
)

// target is one endpoint the same workload runs against: its address,
// login and database.
type target struct {
	name, addr, user, password, db string
}

func targets() []target {
	var ts []target
	for _, g := range gateways {
		ts = append(ts, target{g.name, g.addr, "default", g.token, "main"})
	}
	return append(ts, target{"direct", pg.Addr, "postgres", pg.Password, "main"},
		target{"pgbouncer", bouncer, "postgres", pg.Password, "main"},
		target{"pgbouncer-owner", bouncer, "postgres", pg.Password, "main_owner"})
}

// pidOf is the process whose CPU time t's transactions are charged with:
// heliosd or PgBouncer (0 for direct: PostgreSQL's own work is not
// measured).
func pidOf(b *testing.B, t target) int {
	for _, g := range gateways {
		if g.name == t.name {
			return g.pid
		}
	}
	if strings.HasPrefix(t.name, "pgbouncer") {
		bs, err := os.ReadFile(filepath.Join(bouncerDir, "pgbouncer.pid"))
		n, err2 := strconv.Atoi(strings.TrimSpace(string(bs)))
		if err != nil || err2 != nil {
			b.Fatalf("pgbouncer.pid: %v %v", err, err2)
		}
		return n
	}
	return 0
}

// compare runs pgbench with args against every target in rounds of
// seconds each, interleaved, and reports each target's median tps, the
// gateways' ratios, and the CPU time heliosd and PgBouncer spent per
// transaction (steadier than throughput on a shared machine).
func compare(b *testing.B, rounds, seconds int, args ...string) {
	setup(b)
	tps := map[string][]float64{}
	cpu := map[string][]float64{}
	for r := 0; r < rounds; r++ {
		for _, t := range targets() {
			pid := pidOf(b, t)
			var before time.Duration
			if pid != 0 {
				before = cpuTime(b, pid)
			}
			out, err := pgbenchCmd(t.addr, t.user, t.password, append(args, "-T", strconv.Itoa(seconds), t.db)...).CombinedOutput()
			m, n := tpsRE.FindSubmatch(out), txRE.FindSubmatch(out)
			if err != nil || m == nil || n == nil {
				b.Fatalf("pgbench %v against %s: %v\n%s", args, t.name, err, out)
			}
			if strings.Contains(string(out), "number of failed transactions: ") && !strings.Contains(string(out), "number of failed transactions: 0 ") {
				b.Fatalf("pgbench %v against %s had failures:\n%s", args, t.name, out)
			}
			v, _ := strconv.ParseFloat(string(m[1]), 64)
			tps[t.name] = append(tps[t.name], v)
			if tx, _ := strconv.ParseFloat(string(n[1]), 64); pid != 0 && tx > 0 {
				cpu[t.name] = append(cpu[t.name], float64((cpuTime(b, pid)-before).Microseconds())/tx)
			}
		}
	}
	med := map[string]float64{}
	for name, vs := range tps {
		med[name] = median(vs)
		b.ReportMetric(med[name], "tps-"+name)
	}
	mcpu := map[string]float64{}
	for name, vs := range cpu {
		mcpu[name] = median(vs)
		b.ReportMetric(mcpu[name], "cpu-µs/tx-"+name)
	}
	line := fmt.Sprintf("pgbench %s (medians of %d interleaved rounds of %ds): direct %.0f tps, pgbouncer %.0f tps %.1f µs CPU/tx, "+
		"pgbouncer-owner %.0f tps %.1f µs CPU/tx", strings.Join(args, " "), rounds, seconds, med["direct"], med["pgbouncer"],
		mcpu["pgbouncer"], med["pgbouncer-owner"], mcpu["pgbouncer-owner"])
	for _, g := range gateways {
		b.ReportMetric(med[g.name]/med["direct"], g.name+"/direct")
		b.ReportMetric(med[g.name]/med["pgbouncer"], g.name+"/pgbouncer")
		b.ReportMetric(med[g.name]/med["pgbouncer-owner"], g.name+"/pgbouncer-owner")
		line += fmt.Sprintf("; %s %.0f tps (%.2f of direct, %.2f of pgbouncer, %.2f of pgbouncer-owner) %.1f µs CPU/tx",
			g.name, med[g.name], med[g.name]/med["direct"], med[g.name]/med["pgbouncer"], med[g.name]/med["pgbouncer-owner"], mcpu[g.name])
	}
	b.Log(line)
}

// median returns the middle of vs (sorted in place).
func median(vs []float64) float64 {
	sort.Float64s(vs)
	return vs[len(vs)/2]
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
