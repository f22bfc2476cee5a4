package load

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/internal/testdaemon"
	"github.com/heliosdb/auth/internal/testupstream"
)

// The package's real servers, started once in TestMain: the gateway's
// upstreams (PostgreSQL, MariaDB, Redis, FerretDB).
var (
	pg            *testupstream.Postgres
	maria         *testupstream.MariaDB
	rdb           *testupstream.Redis
	ferret        *testupstream.FerretDB
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
		if rdb, err = testupstream.StartRedis(); err != nil {
			return fmt.Errorf("start Redis: %w", err)
		}
		atExit(rdb.Stop)
		if ferret, err = testupstream.StartFerretDB(); err != nil {
			return fmt.Errorf("start FerretDB: %w", err)
		}
		atExit(ferret.Stop)
		rolePasswords, err = testdaemon.WriteRolePasswords(atExit)
		return err
	})
}

// gateway starts heliosd in proxy mode in front of every upstream, with
// more flags.
func gateway(t testing.TB, args ...string) *testdaemon.Daemon {
	t.Helper()
	dir := testdaemon.DataDirWith(t, rolePasswords, "upstream-postgres.json", "upstream-mysql.json", "upstream-redis.json")
	return testdaemon.Start(t, testdaemon.WithDataDir(dir), testdaemon.WithArgs(append([]string{
		"--pg-upstream", pg.AdminURL, "--mysql-upstream", maria.AdminURL,
		"--redis-upstream", rdb.AdminURL, "--mongo-upstream", ferret.URL}, args...)...))
}

// targetOf is the gateway's every front end.
func targetOf(d *testdaemon.Daemon) Target {
	return Target{PG: d.PG, MySQL: d.MySQL, Mongo: d.Mongo, Redis: d.Redis, REST: "http://" + d.HTTP}
}

// targetSpec is targetOf as --target says it.
func targetSpec(d *testdaemon.Daemon) string {
	return fmt.Sprintf("pg=%s,mysql=%s,mongo=%s,redis=%s,rest=http://%s", d.PG, d.MySQL, d.Mongo, d.Redis, d.HTTP)
}

// config is a short run on d with a new account's login as the creator.
func config(t testing.TB, d *testdaemon.Daemon, w Workload, ps ...Protocol) Config {
	return Config{APIURL: "http://" + d.HTTP, HTTP: &http.Client{Timeout: 30 * time.Second}, Creator: d.NewUser(t),
		Protocols: ps, Workloads: []Workload{w}, Clients: 2, Duration: time.Second, Target: targetOf(d), Keys: 200, ReadPercent: 70,
		Version: "test"}
}

// run runs cfg with a deadline.
func run(t testing.TB, cfg Config) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Interrupted {
		t.Fatal("run interrupted by the test's deadline")
	}
	for i := range res.Cells {
		for _, l := range Summary(&res.Cells[i]) {
			t.Log(l)
		}
		for _, e := range res.Cells[i].Endpoints {
			for _, ec := range e.Errors {
				t.Logf("  %s errors: %d × %s", e.Name, ec.Count, ec.Kind)
			}
		}
	}
	return res
}

// checkSane fails unless e measured successful requests with a histogram
// whose percentiles are ordered and plausible.
func checkSane(t *testing.T, cell string, e EndpointResult) {
	t.Helper()
	l := e.Latency
	switch {
	case e.Requests == 0 || e.Throughput <= 0 || e.Seconds <= 0:
		t.Errorf("%s %s: no figures: %+v", cell, e.Name, e)
	case e.Failed != 0:
		t.Errorf("%s %s: %d of %d failed: %+v", cell, e.Name, e.Failed, e.Requests, e.Errors)
	case l.Count != e.Requests-e.Failed:
		t.Errorf("%s %s: histogram holds %d, %d requests succeeded", cell, e.Name, l.Count, e.Requests-e.Failed)
	case !(0 < l.Min && l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max):
		t.Errorf("%s %s: percentiles out of order: %+v", cell, e.Name, l)
	case l.Max > 10_000 || l.Mean < l.Min || l.Mean > l.Max:
		t.Errorf("%s %s: implausible latencies: %+v", cell, e.Name, l)
	case len(e.Timeline) == 0:
		t.Errorf("%s %s: no throughput samples", cell, e.Name)
	}
	if rate := float64(e.Requests) / e.Seconds; e.Throughput > rate*1.01 {
		t.Errorf("%s %s: throughput %.0f/s above requests over time %.0f/s", cell, e.Name, e.Throughput, rate)
	}
	if strings.Contains(fmt.Sprint(e), "hdb_") {
		t.Errorf("%s %s: a figure shows a token", cell, e.Name)
	}
}
