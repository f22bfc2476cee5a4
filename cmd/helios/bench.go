package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/heliosdb/auth/bench/load"
	"github.com/heliosdb/auth/internal/buildinfo"
)

// benchFlags are `helios bench`'s settings as typed.
type benchFlags struct {
	protocols, workload, target, compare, ratio, token, report string
	nodes                                                      []string
	clients, rounds, keys                                      int
	duration, warmup                                           time.Duration
	requests                                                   int64
	rate                                                       float64
	database                                                   string
	tls                                                        bool
}

// exitCode ends the process with a status other than 1 (130: interrupted)
// after the command said why.
type exitCode struct {
	code int
	msg  string
}

// Error is the reason.
func (e *exitCode) Error() string { return e.msg }

// benchCommand is `helios bench`.
func (a *app) benchCommand() *cobra.Command {
	var f benchFlags
	c := &cobra.Command{
		Use:   "bench",
		Short: "Load-test the gateway with the real client of each protocol, side by side with other servers",
		Long: "helios bench drives the gateway with pgx, go-sql-driver/mysql, mongo-driver, go-redis and a fasthttp\n" +
			"client, one token per client (created through the API with your login, revoked at the end; or --token),\n" +
			"and measures throughput and latency (HDR histogram: p50, p90, p99, p99.9, max).\n\n" +
			"Workloads: connect (connect, authenticate, one command, close), point (a keyed read of a table,\n" +
			"collection or key set it prepares itself), mixed (reads and writes, --ratio), revoke-storm (revokes\n" +
			"tokens at --rate per second while their sessions run; measures revocation→refusal and\n" +
			"revocation→session end on every --node).\n\n" +
			"--compare runs the same workload on other servers in the same run, in turns (gateway, direct,\n" +
			"pgbouncer, gateway, …), so ratios hold on a noisy machine. --rate makes it open loop: requests\n" +
			"are scheduled and their latency counts from the scheduled time (no coordinated omission).\n" +
			"Ctrl-C stops the run and still reports what was measured (exit status 130); a run in which more\n" +
			"than 1% of the requests failed says so first and exits with status 2.",
		Example: `  helios bench --protocol pg --workload point --clients 16 --duration 30s
  helios bench --protocol all --workload connect --duration 10s --report ./bench-report
  helios bench --protocol pg --compare direct=postgres://postgres:PW@127.0.0.1:54329/main,pgbouncer=postgres://postgres:PW@127.0.0.1:6432/main
  helios bench --protocol redis --workload mixed --ratio 80:20 --rate 5000 --duration 1m
  helios bench --protocol pg,redis --workload revoke-storm --clients 50 --rate 20`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.bench(&f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.protocols, "protocol", "all", "protocols to drive: any of pg,mysql,mongo,redis,rest, or all")
	fl.StringVar(&f.workload, "workload", "point", "connect, point, mixed or revoke-storm, or several: connect,point")
	fl.IntVar(&f.clients, "clients", 8, "concurrent clients per endpoint (revoke-storm: tokens and sessions)")
	fl.DurationVar(&f.duration, "duration", 10*time.Second, "measured time per endpoint and protocol")
	fl.Int64Var(&f.requests, "requests", 0, "requests per endpoint and protocol, instead of --duration")
	fl.Float64Var(&f.rate, "rate", 0, "open loop: requests per second per endpoint (0: closed loop); revoke-storm: revocations per second (default 10)")
	fl.DurationVar(&f.warmup, "warmup", time.Second, "unmeasured run of each endpoint before its measured time")
	fl.IntVar(&f.rounds, "rounds", 0, "turns each endpoint's time is cut into when comparing (default: one per 2s, at least 2)")
	fl.StringVar(&f.target, "target", "", "the gateway: a host (default ports) or pg=HOST:PORT,mysql=…,mongo=…,redis=…,rest=http://… (default: the API URL's host)")
	fl.StringVar(&f.compare, "compare", "", "other servers, NAME=URL,…: postgres://, mysql://, mongodb://, redis:// URLs with their own credentials; http:// another gateway")
	fl.StringArrayVar(&f.nodes, "node", nil, "revoke-storm: a gateway node to watch, as --target (repeat; default: the target)")
	fl.StringVar(&f.ratio, "ratio", "90:10", "mixed workload: reads:writes")
	fl.IntVar(&f.keys, "keys", 1000, "rows (documents, keys) the point and mixed workloads prepare and read")
	fl.StringVar(&f.database, "database", "main", "the database the workloads use")
	fl.StringVar(&f.token, "token", "", "every client's token, instead of tokens created with your login (env HELIOS_BENCH_TOKEN)")
	fl.BoolVar(&f.tls, "tls", false, "speak TLS to the gateway's PostgreSQL, MySQL, MongoDB and Redis front ends, trusting --ca-cert (heliosd allows plaintext on loopback only)")
	fl.StringVar(&f.report, "report", "", "write a Markdown report with PNG/SVG plots and result.json into this directory")
	return c
}

// bench runs `helios bench`.
func (a *app) bench(f *benchFlags) error {
	cfg, err := a.benchConfig(f)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var tp *load.TerminalProgress
	if fd, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(fd.Fd())) && a.output == "text" {
		tp = load.NewTerminalProgress(a.stderr)
		cfg.Progress = tp
	} else {
		cfg.Progress = load.NewLineProgress(a.stderr)
	}
	res, err := load.Run(ctx, *cfg)
	if tp != nil {
		tp.Wait()
	}
	stop()
	if err != nil {
		return err
	}
	report := ""
	if f.report != "" {
		if report, err = load.WriteReport(f.report, res); err != nil {
			return fmt.Errorf("write the report: %w", err)
		}
	}
	if a.output == "json" {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		a.printBench(res)
	}
	if report != "" {
		fmt.Fprintln(a.stderr, "Report:", report)
	}
	if res.Interrupted {
		return &exitCode{code: 130, msg: "interrupted: the figures are what was measured until then"}
	}
	if f := res.FailedPercent(); f > 1 {
		return &exitCode{code: 2, msg: fmt.Sprintf("%.2f%% of the requests failed (see the errors above)", f)}
	}
	return nil
}

// printBench writes the run's figures for people, a failing run's share
// of failures first.
func (a *app) printBench(res *load.Result) {
	w := a.stdout
	if f := res.FailedPercent(); f > 1 {
		fmt.Fprintf(w, "WARNING: %.2f%% of the requests failed: these figures describe a run that did not work.\n", f)
	}
	if res.Interrupted {
		fmt.Fprintln(w, "Interrupted: the figures are what was measured until then.")
	}
	for i := range res.Cells {
		c := &res.Cells[i]
		for _, l := range load.Summary(c) {
			fmt.Fprintln(w, l)
		}
		for _, e := range c.Endpoints {
			for _, ec := range e.Errors {
				fmt.Fprintf(w, "  %s errors: %d × %s\n", e.Name, ec.Count, ec.Kind)
			}
		}
		if c.Storm != nil {
			for _, ec := range c.Storm.Errors {
				fmt.Fprintf(w, "  errors: %d × %s\n", ec.Count, ec.Kind)
			}
		}
	}
}

// benchConfig turns the flags into the engine's configuration: the API URL,
// CA certificate and login are the CLI's own (--api-url, --ca-cert, the
// saved login or HELIOS_TOKEN).
func (a *app) benchConfig(f *benchFlags) (*load.Config, error) {
	cfg := &load.Config{Clients: f.clients, Duration: f.duration, Requests: f.requests, Rate: f.rate, Warmup: f.warmup,
		Rounds: f.rounds, Keys: f.keys, Database: f.database, Version: buildinfo.Version()}
	var err error
	if cfg.Protocols, err = load.ParseProtocols(f.protocols); err != nil {
		return nil, usageError(err.Error())
	}
	if cfg.Workloads, err = load.ParseWorkloads(f.workload); err != nil {
		return nil, usageError(err.Error())
	}
	if f.clients < 1 {
		return nil, usageError("--clients must be at least 1")
	}
	if f.rate < 0 || f.requests < 0 {
		return nil, usageError("--rate and --requests cannot be negative")
	}
	r, w, ok := strings.Cut(f.ratio, ":")
	rn, err1 := strconv.Atoi(r)
	wn, err2 := strconv.Atoi(w)
	if !ok || err1 != nil || err2 != nil || rn < 0 || wn < 0 || rn+wn == 0 {
		return nil, usageError("--ratio must be READS:WRITES, e.g. 90:10")
	}
	cfg.ReadPercent = 100 * rn / (rn + wn)
	cfg.GatewayTLS = f.tls
	cfg.Token = f.token
	if cfg.Token == "" {
		cfg.Token = os.Getenv("HELIOS_BENCH_TOKEN")
	}
	saved := ""
	tok, _, creds, terr := currentToken()
	if creds != nil {
		saved = creds.APIURL
	}
	if terr == nil {
		cfg.Creator = tok
	} else if cfg.Token == "" {
		return nil, terr
	}
	cl, err := a.client(saved)
	if err != nil {
		return nil, err
	}
	cfg.APIURL, cfg.HTTP = cl.base, cl.http
	if tr, ok := cl.http.Transport.(*http.Transport); ok && tr.TLSClientConfig != nil {
		cfg.TLS = tr.TLSClientConfig.Clone()
	} else {
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	spec := f.target
	u, _ := url.Parse(cl.base)
	if spec == "" {
		spec = u.Hostname() + ",rest=" + cl.base
	}
	if cfg.Target, err = load.ParseTarget(spec); err != nil {
		return nil, usageError(err.Error())
	}
	for _, n := range f.nodes {
		t, err := load.ParseTarget(n)
		if err != nil {
			return nil, usageError(err.Error())
		}
		cfg.Nodes = append(cfg.Nodes, t)
	}
	if f.compare != "" {
		if cfg.Compare, err = load.ParseCompare(f.compare); err != nil {
			return nil, usageError(err.Error())
		}
	}
	if slices.Contains(cfg.Workloads, load.RevokeStorm) && cfg.Creator == "" && cfg.Token == "" {
		return nil, errors.New("revoke-storm creates and revokes tokens: log in (helios auth login) or pass a full-access --token")
	}
	return cfg, nil
}
