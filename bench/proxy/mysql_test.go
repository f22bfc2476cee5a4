package proxy

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testdaemon"
	"github.com/heliosdb/auth/internal/testupstream"
)

// MariaDB point selects through the gateway and direct, interleaved in one
// run: go-sql-driver clients (a statement prepared once and executed, as
// sysbench oltp_point_select does, and the text protocol with the
// argument interpolated) and mysqlslap. Run with:
//
//	go test ./bench/proxy -run '^$' -bench Maria -benchtime 1x

// sbtestRows is the size of the table the point selects read.
const sbtestRows = 10000

var (
	maria      *testupstream.MariaDB
	myPID      int    // heliosd's process
	myGateway  string // heliosd's MySQL listener
	myToken    string // a full-access token of that heliosd
	mySetupErr error
)

// setupMaria starts MariaDB with main.sbtest and heliosd in front of it,
// once, for the first benchmark that needs them.
func setupMaria(b *testing.B) {
	b.Helper()
	if myGateway != "" || mySetupErr != nil {
		if mySetupErr != nil {
			b.Fatal(mySetupErr)
		}
		return
	}
	fail := func(err error) {
		mySetupErr = err
		b.Fatal(err)
	}
	var err error
	if maria, err = testupstream.StartMariaDB(); err != nil {
		fail(err)
	}
	stops = append(stops, maria.Stop)
	admin := myOpen(b, myConfig(maria.Addr, "root", maria.Password, ""))
	defer admin.Close()
	for _, q := range []string{"CREATE DATABASE IF NOT EXISTS main",
		"CREATE TABLE main.sbtest (id INT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL, pad CHAR(60) NOT NULL, KEY (k))",
		fmt.Sprintf("INSERT INTO main.sbtest SELECT seq, seq %% 1000, REPEAT('c', 120), REPEAT('p', 60) FROM seq.seq_1_to_%d", sbtestRows),
	} {
		if _, err := admin.Exec(q); err != nil {
			fail(fmt.Errorf("%s: %w", q, err))
		}
	}
	d := testdaemon.Start(b, testdaemon.Shared(), testdaemon.WithArgs("--mysql-upstream", maria.AdminURL,
		"--mysql-pool-size", strconv.Itoa(poolSize)))
	stops = append(stops, func() { d.Stop(); os.RemoveAll(d.DataDir) })
	myGateway, myPID = d.MySQL, d.PID()
	myToken = d.Mint(b, core.Claims{Account: 1, Scopes: core.AllScopes, ExpiresAt: time.Now().Add(24 * time.Hour).Unix()})
	// The token's first login (RSA) puts it in the fast-auth cache: the
	// benchmark's sessions are the steady state, on the event loops.
	warm := myOpen(b, myConfig(myGateway, "default", myToken, "main"))
	if err := warm.Ping(); err != nil {
		fail(err)
	}
	warm.Close()
}

// myConfig is go-sql-driver's configuration, without TLS.
func myConfig(addr, user, password, db string) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = user, password, "tcp", addr, db
	cfg.AllowNativePasswords = true
	return cfg
}

func myOpen(b *testing.B, cfg *mysql.Config) *sql.DB {
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return sql.OpenDB(c)
}

// myTargets are the gateway and the server itself.
func myTargets() []target {
	return []target{
		{"gateway", myGateway, "default", myToken, "main"},
		{"direct", maria.Addr, "root", maria.Password, "main"},
	}
}

// pointSelects runs clients go-sql-driver connections against t for d,
// each selecting one random row at a time, and returns queries/s and how
// many ran.
func pointSelects(b *testing.B, t target, clients int, d time.Duration, prepared bool) (float64, int64) {
	cfg := myConfig(t.addr, t.user, t.password, t.db)
	cfg.InterpolateParams = !prepared
	db := myOpen(b, cfg)
	defer db.Close()
	db.SetMaxOpenConns(clients)
	db.SetMaxIdleConns(clients)
	var n atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			conn, err := db.Conn(context.Background())
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			const q = "SELECT c FROM sbtest WHERE id = ?"
			var stmt *sql.Stmt
			if prepared {
				if stmt, err = conn.PrepareContext(context.Background(), q); err != nil {
					errs <- err
					return
				}
				defer stmt.Close()
			}
			var s string
			id := c*7919 + 1
			for ctx.Err() == nil {
				id = id*1103515245 + 12345
				arg := 1 + (id&0x7fffffff)%sbtestRows
				if prepared {
					err = stmt.QueryRow(arg).Scan(&s)
				} else {
					err = conn.QueryRowContext(context.Background(), q, arg).Scan(&s)
				}
				if err != nil {
					errs <- err
					return
				}
				n.Add(1)
			}
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatalf("%s: %v", t.name, err)
	}
	return float64(n.Load()) / elapsed.Seconds(), n.Load()
}

// cpuTime is the CPU time (user and system) process pid has used.
func cpuTime(b *testing.B, pid int) time.Duration {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// compareMaria runs measure (queries/s and how many ran) against every
// target in rounds, interleaved, and reports each one's median, the
// gateway's ratio to direct, and the CPU time heliosd spent per query
// (less noisy than throughput on a shared machine).
func compareMaria(b *testing.B, rounds int, what string, measure func(t target) (float64, int64)) {
	setupMaria(b)
	qps := map[string][]float64{}
	var cpu []float64
	for r := 0; r < rounds; r++ {
		for _, t := range myTargets() {
			before := cpuTime(b, myPID)
			v, n := measure(t)
			qps[t.name] = append(qps[t.name], v)
			if t.name == "gateway" {
				cpu = append(cpu, float64((cpuTime(b, myPID)-before).Microseconds())/float64(n))
			}
		}
	}
	sort.Float64s(cpu)
	b.ReportMetric(cpu[len(cpu)/2], "gateway-cpu-µs/query")
	med := map[string]float64{}
	for name, vs := range qps {
		sort.Float64s(vs)
		med[name] = vs[len(vs)/2]
		b.ReportMetric(med[name], "qps-"+name)
	}
	b.ReportMetric(med["gateway"]/med["direct"], "gateway/direct")
	b.Logf("%s: gateway %.0f q/s, direct %.0f q/s: %.0f%%, heliosd %.1f µs of CPU per query (medians of %d interleaved rounds; gateway %.0f, direct %.0f)",
		what, med["gateway"], med["direct"], 100*med["gateway"]/med["direct"], cpu[len(cpu)/2], rounds, qps["gateway"], qps["direct"])
}

// BenchmarkMariaPointSelect is go-sql-driver point selects at 8 and 32
// clients, prepared once (COM_STMT_EXECUTE) and as text (COM_QUERY).
func BenchmarkMariaPointSelect(b *testing.B) {
	for _, prepared := range []bool{true, false} {
		for _, clients := range []int{8, 32} {
			name := fmt.Sprintf("prepared=%v/clients=%d", prepared, clients)
			b.Run(name, func(b *testing.B) {
				compareMaria(b, 3, name, func(t target) (float64, int64) { return pointSelects(b, t, clients, 3*time.Second, prepared) })
			})
		}
	}
}

var slapRE = regexp.MustCompile(`Average number of seconds to run all queries: ([0-9.]+) seconds`)

// BenchmarkMariaSlap is mysqlslap: 8 clients share 40,000 point selects,
// each client on one connection.
func BenchmarkMariaSlap(b *testing.B) {
	const queries, clients = 40000, 8
	compareMaria(b, 3, "mysqlslap", func(t target) (float64, int64) {
		host, port, _ := strings.Cut(t.addr, ":")
		cmd := exec.Command("mysqlslap", "-h", host, "-P", port, "-u", t.user, "--skip-ssl",
			"--create-schema=main", "--no-drop", "--concurrency="+strconv.Itoa(clients), "--iterations=1",
			"--number-of-queries="+strconv.Itoa(queries), "--query=SELECT c FROM sbtest WHERE id = 4242")
		cmd.Env = append(os.Environ(), "MYSQL_PWD="+t.password)
		out, err := cmd.CombinedOutput()
		m := slapRE.FindSubmatch(out)
		if err != nil || m == nil {
			b.Fatalf("mysqlslap against %s: %v\n%s", t.name, err, out)
		}
		s, _ := strconv.ParseFloat(string(m[1]), 64)
		return queries / s, queries
	})
}
