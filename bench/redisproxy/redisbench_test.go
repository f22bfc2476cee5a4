// Package redisproxy benchmarks heliosd's proxy mode for Redis against the
// server it stands in front of, in one run and interleaved (gateway,
// direct, gateway, …) so that ratios hold on a shared machine:
// redis-benchmark -t get,set with 50 clients, without and with -P 16
// pipelining, and the connection rate (-k 0: connect, AUTH, PING, close
// for every request; direct Redis checks its requirepass each time, the
// gateway verifies a token and hands over a pooled server connection).
// TestMain starts Redis (internal/testupstream) and heliosd in front of
// it. Run with:
//
//	go test ./bench/redisproxy -run '^$' -bench . -benchtime 1x
//
// Every figure is reported as a metric (rps-gateway, rps-direct and
// their ratio, per test). The package is never needed by the daemon.
package redisproxy

import (
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/benchcmp"
	"github.com/heliosdb/auth/internal/testdaemon"
	"github.com/heliosdb/auth/internal/testupstream"
)

// poolSize is the gateway's server connections per user: every client of
// a run holds one.
const poolSize = 60

var (
	srv     *testupstream.Redis
	gateway string // heliosd's Redis listener
	token   string // a full-access token of heliosd
	servers benchcmp.Servers
)

func TestMain(m *testing.M) { servers.Main(m) }

// setup starts the servers once, for the first benchmark that needs them.
func setup(b *testing.B) {
	b.Helper()
	servers.Start(b, func() (err error) {
		if srv, err = testupstream.StartRedis(); err != nil {
			return err
		}
		servers.AtExit(srv.Stop)
		d := servers.Daemon(b, testdaemon.WithArgs("--redis-upstream", srv.AdminURL,
			"--redis-pool-size", strconv.Itoa(poolSize), "--max-conns-per-ip", "100000"))
		gateway = d.Redis
		token = d.Mint(b, core.Claims{Account: 1, Scopes: core.AllScopes, ExpiresAt: time.Now().Add(24 * time.Hour).Unix()})
		return nil
	})
}

// target is one endpoint the same workload runs against.
type target struct{ name, addr, password string }

func targets() []target {
	return []target{{"gateway", gateway, token}, {"direct", srv.Addr, srv.Password}}
}

// redisBenchmark runs redis-benchmark against t and returns requests per
// second by test name (GET, SET, PING_MBULK).
func redisBenchmark(b *testing.B, t target, args ...string) map[string]float64 {
	b.Helper()
	host, port, _ := strings.Cut(t.addr, ":")
	cmd := exec.Command("redis-benchmark", append([]string{"-h", host, "-p", port, "--user", "default", "-a", t.password, "--csv"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("redis-benchmark %v against %s: %v\n%s", args, t.name, err, out)
	}
	rps := map[string]float64{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 2 {
			continue
		}
		name := strings.Trim(f[0], `"`)
		v, err := strconv.ParseFloat(strings.Trim(f[1], `"`), 64)
		if err == nil {
			rps[name] = v
		}
	}
	if len(rps) == 0 || strings.Contains(string(out), "ERR") && !strings.Contains(string(out), "CONFIG") {
		b.Fatalf("redis-benchmark %v against %s printed no figure (or errors):\n%s", args, t.name, out)
	}
	return rps
}

// compare runs redis-benchmark with args against both targets in rounds,
// interleaved, and reports each test's median rps per target and the
// gateway's ratio.
func compare(b *testing.B, rounds int, args ...string) {
	setup(b)
	got := map[string]benchcmp.Rounds{} // test → target → rps per round
	for r := 0; r < rounds; r++ {
		for _, t := range targets() {
			for test, v := range redisBenchmark(b, t, args...) {
				if got[test] == nil {
					got[test] = benchcmp.Rounds{}
				}
				got[test][t.name] = append(got[test][t.name], v)
			}
		}
	}
	tests := make([]string, 0, len(got))
	for test := range got {
		tests = append(tests, test)
	}
	sort.Strings(tests)
	for _, test := range tests {
		med := map[string]float64{}
		for name, vs := range got[test] {
			med[name] = benchcmp.Median(vs)
			b.ReportMetric(med[name], strings.ToLower(test)+"-rps-"+name)
		}
		ratio := med["gateway"] / med["direct"]
		b.ReportMetric(ratio, strings.ToLower(test)+"-gateway/direct")
		b.Logf("redis-benchmark %s, %s: gateway %.0f rps, direct %.0f (%.0f%%), medians of %d interleaved rounds",
			strings.Join(args, " "), test, med["gateway"], med["direct"], 100*ratio, rounds)
	}
}

// BenchmarkGetSet is redis-benchmark -t get,set with 50 clients on
// persistent connections, one request at a time per client and with 16
// pipelined.
func BenchmarkGetSet(b *testing.B) {
	for _, p := range []int{1, 16} {
		b.Run(fmt.Sprintf("P=%d", p), func(b *testing.B) {
			compare(b, 3, "-t", "get,set", "-c", "50", "-P", strconv.Itoa(p), "-n", strconv.Itoa(100000*p), "-r", "100000")
		})
	}
}

// BenchmarkConnect is redis-benchmark -k 0 -t ping: every request on a
// new connection (connect, AUTH, PING, close).
func BenchmarkConnect(b *testing.B) {
	compare(b, 3, "-t", "ping_mbulk", "-k", "0", "-c", "8", "-n", "10000")
}
