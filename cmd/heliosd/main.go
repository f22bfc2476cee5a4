// Command heliosd is the HeliosDB Auth daemon: the issuer (accounts, tokens,
// the /v1/auth REST API on Pebble) and the gateway (PostgreSQL, MySQL,
// MongoDB, Redis and REST front ends) in one process by default (--role
// all). With --role gateway it is a gateway node only: no issuer store; it
// follows a remote issuer's revocation and policy feed (--issuer-url,
// authenticated with the cluster key in --cluster-key-file) and fails closed
// once the feed is staler than --stale-after (see node.go). With --raft-id,
// --raft-listen and --raft-peers the issuer is one replica of a raft
// cluster of three or five (issuer/replica; raft.go): any replica takes
// every request, writes are forwarded to the leader, and gateway nodes
// follow the replicas with --issuer-url URL1,URL2,… .
//
// Cluster administration uses the cluster key (data-dir/cluster.key of the
// issuer), e.g. rotating the signing key and retiring key 1:
//
//	heliosd keys rotate --issuer-url http://127.0.0.1:8080 --cluster-key-file data/cluster.key
//	heliosd keys retire 1 --issuer-url http://127.0.0.1:8080 --cluster-key-file data/cluster.key
//
// or with curl:
//
//	curl -X POST -H "Authorization: HeliosCluster $(cat data/cluster.key)" http://127.0.0.1:8080/v1/cluster/keys/rotate
//	curl -X POST -H "Authorization: HeliosCluster $(cat data/cluster.key)" -d '{"id":1}' http://127.0.0.1:8080/v1/cluster/keys/retire
//
// Configuration: flags, HELIOS_* environment variables and a TOML file
// (--config), in that order of precedence (see Config). Flags are in the
// style of the helios CLI (pflag: --name value or --name=value, --help
// grouped by topic, --version); the single-dash -name of Go's flag package
// is still accepted (heliosd has no one-letter flags for it to clash with). At start it logs the
// CA certificate clients should trust and one "listening" line per listener
// (protocol, addr). Everything heliosd creates is mode 0600 (directories
// 0700; the process umask is 0077), and it warns when the data directory
// itself is open to group or others. The issuer refuses writes with 507
// STORAGE_FULL while its file system has less than --storage-reserve free
// (revocations may use part of it) and goes on serving every protocol; see
// issuer.StoreOptions. SIGTERM or SIGINT drains the HTTP server, stops the
// gateway, writes pending last_used times and closes the issuer store.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"github.com/valyala/fasthttp"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/keyfile"
	"github.com/heliosdb/auth/core/tlsfile"
	"github.com/heliosdb/auth/internal/buildinfo"
	"github.com/heliosdb/auth/internal/listeners"
	"github.com/heliosdb/auth/issuer"
	"github.com/heliosdb/auth/issuer/console"
	"github.com/heliosdb/auth/issuer/feed"
	"github.com/heliosdb/auth/issuer/replica"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/rest"
)

func main() {
	if err := run(); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "heliosd:", err)
		os.Exit(1)
	}
}

func run() error {
	restrictUmask()
	if len(os.Args) > 1 && os.Args[1] == "keys" {
		return runKeys(os.Args[2:], os.Stdout)
	}
	if len(os.Args) > 1 && os.Args[1] == "raft" {
		return runRaft(os.Args[2:], os.Stdout)
	}
	if len(os.Args) > 1 && os.Args[1] == "check-config" {
		return runCheckConfig(os.Args[2:], os.Stdout)
	}
	if len(os.Args) > 1 && os.Args[1] == "reload" {
		return runReloadCmd(os.Args[2:], os.Stdout)
	}
	if len(os.Args) > 1 && os.Args[1] == "backup" {
		return runBackup(os.Args[2:], os.Stdout)
	}
	if len(os.Args) > 1 && os.Args[1] == "restore" {
		return runRestore(os.Args[2:], os.Stdout)
	}
	cfg, err := loadConfig(os.Args[1:], os.LookupEnv, os.Stderr)
	if errors.Is(err, errShowVersion) {
		fmt.Println("heliosd", buildinfo.Version())
		return nil
	}
	if err != nil {
		return err
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToLower(cfg.LogLevel)))
	levelVar := new(slog.LevelVar) // a reload may change it
	levelVar.Set(level)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: levelVar}))
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer lock.Close()
	warnOpenDataDir(cfg.DataDir, log)
	tlsCfg, certPath, generated, err := tlsfile.LoadOrGenerate(cfg.DataDir, cfg.TLSCert, cfg.TLSKey, certHosts(&cfg))
	if err != nil {
		return err
	}
	log.Info("TLS certificate", "ca", certPath, "generated", generated)
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	cfg.caFile = caFileFor(tlsCfg, certPath)
	// SIGHUP and heliosd reload (reload.go): the certificate is served
	// through a switch a reload swaps.
	daemonReload = newReloader(os.Args[1:], &cfg, levelVar, newCertSwitch(tlsCfg), log)
	daemonReload.watch(ctx)
	// systemd (Type=notify): READY=1 once every listener is up and the
	// store is open, WATCHDOG=1 while serving, STOPPING=1 when draining.
	notifier := newNotifier(os.Getenv, log)
	ready := func(issuer bool) {
		fmt.Fprint(os.Stderr, guideFor(&cfg, issuer))
		notifier.ready(ctx, os.Getenv)
	}
	stopping := make(chan struct{})
	go func() { <-ctx.Done(); notifier.send("STOPPING=1"); close(stopping) }()
	defer func() { cancel(); <-stopping }() // sent before the process exits
	if cfg.Role == "gateway" {
		return runNode(ctx, &cfg, tlsCfg, log, ready)
	}
	return runAll(ctx, &cfg, tlsCfg, log, ready)
}

// runAll runs the issuer and a gateway in one process until ctx ends,
// calling ready once every listener is up.
func runAll(ctx context.Context, cfg *Config, tlsCfg *tls.Config, log *slog.Logger, ready func(issuer bool)) error {
	ringPath := filepath.Join(cfg.DataDir, "keyring.json")
	ring, created, err := keyfile.LoadOrGenerate(ringPath, time.Now())
	if err != nil {
		return err
	}
	if created {
		log.Info("generated a signing key", "keyring", ringPath)
	}
	daemonReload.setKeyring(ring, ringPath)
	clusterKey, err := feed.LoadOrCreateClusterKey(filepath.Join(cfg.DataDir, feed.ClusterKeyFile))
	if err != nil {
		return err
	}
	store, err := issuer.OpenWith(filepath.Join(cfg.DataDir, "issuer"), issuer.StoreOptions{Logger: log, Reserve: int64(cfg.StorageReserve),
		Replicated: cfg.raftEnabled()})
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("close issuer store", "err", err)
		}
	}()
	// A replica (--raft-*): the store applies what the cluster commits;
	// raft stops (handing leadership over) before the store closes.
	var node *replica.Node
	if cfg.raftEnabled() {
		// The keyring is replicated state: rotations and retirements
		// committed by the cluster are applied to ring and its file.
		if err := store.AttachKeyring(ring, ringPath); err != nil {
			return err
		}
		if node, err = startReplica(cfg, store, clusterKey, ring, log); err != nil {
			return err
		}
		defer func() {
			if err := node.Shutdown(); err != nil {
				log.Error("raft shutdown", "err", err)
			}
		}()
	}
	ups, err := openUpstreams(cfg, store.Policy(), log)
	if err != nil {
		return err
	}
	defer ups.Close()
	opts := issuer.DefaultOptions()
	opts.Upstreams = ups
	opts.Lifetimes.Live = cfg.LiveTokenLifetime
	opts.RefreshGrace = cfg.RefreshGrace
	opts.LoginPerEmail, opts.LoginPerIP = cfg.LoginPerEmail, cfg.LoginPerIP
	opts.SignupPerEmail, opts.SignupPerIP = cfg.SignupPerEmail, cfg.SignupPerIP
	opts.KeyringPath = ringPath
	opts.UsageFlush = cfg.UsageFlush
	opts.Logger = log
	svc := issuer.NewService(store, ring, opts)
	defer svc.Close()
	if node != nil {
		// A replica records retired keys once the cluster has a leader.
		go func() {
			if err := recordRetiredKeys(svc, ring); err != nil {
				log.Warn("recording retired keys", "err", err)
			}
		}()
	} else if err := recordRetiredKeys(svc, ring); err != nil {
		return err
	}
	log.Info("issuer store open", "dir", filepath.Join(cfg.DataDir, "issuer"), "seq", store.LastSeq(), "reserve", cfg.StorageReserve.String(),
		"cluster_key", filepath.Join(cfg.DataDir, feed.ClusterKeyFile))

	hub := &revocationHub{}
	deps := &gatewayDeps{Config: cfg, Keyring: ring, Revocations: store.Revocations(), Policy: store.Policy(), Upstreams: ups,
		Usage: svc, Revoked: hub, TLS: tlsCfg, DataDir: cfg.DataDir, Logger: log}
	stopGateway, err := startGateway(ctx, deps)
	if err != nil {
		return err
	}
	defer stopGateway()
	go followLocal(ctx, store.FeedSource(), hub)

	var srv *fasthttp.Server
	if cfg.Listen[listeners.HTTP] != "" {
		auth := rest.NewAuthenticator(ring, store.Revocations(), rest.AuthOptions{Policy: store.Policy(), Usage: svc, Logger: log})
		router := rest.NewRouter(auth)
		if ups.PG != nil {
			router.SetSQLRunner(pgSQL{ups.PG})
		}
		router.Replace("GET", "/healthz", withRaft(issuerHealth(ups), node))
		fs := &feed.Server{Source: store.FeedSource(), Keyring: ring, ClusterKey: clusterKey, Stop: ctx.Done()}
		if node != nil {
			fs.CatchUp, fs.Serving = 2*time.Second, node.InContact
			raftRoutes(router, fs, node)
		}
		router.Mount(svc.Routes()...)
		router.Mount(svc.DatabaseRoutes()...)
		router.Mount(svc.ClusterRoutes(fs)...)
		// The web console at /, next to the API it drives.
		router.Mount(console.New(console.Options{Service: svc, Keyring: ring, Listen: cfg.Listen, CAFile: cfg.caFile,
			IsTLS: rest.RequestTLS, Logger: log}).Routes()...)
		router.Public("GET", "/v1/cluster/backup", backupHandler(fs, store, cfg.DataDir, log))
		router.Public("GET", "/v1/cluster/upstreams", func(ctx *fasthttp.RequestCtx) {
			if !fs.Authorized(ctx) {
				fs.Deny(ctx)
				return
			}
			ups.clusterUpstreams(ctx)
		})
		if srv, err = serveHTTP(cfg, router, tlsCfg, log); err != nil {
			return err
		}
	}
	ready(true)
	<-ctx.Done()
	log.Info("shutting down")
	shutdownHTTP(srv, log)
	return nil
}

// shutdownHTTP drains the HTTP server (nil: none).
func shutdownHTTP(srv *fasthttp.Server, log *slog.Logger) {
	if srv == nil {
		return
	}
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := srv.ShutdownWithContext(sctx); err != nil {
		log.Warn("HTTP shutdown", "err", err)
	}
}

// followLocal passes the issuer's own log to the revocation hub (role
// "all"), as a node's follower would, so open sessions end the same way.
func followLocal(ctx context.Context, src *issuer.FeedSource, hub *revocationHub) {
	after := src.LastSeq()
	for {
		changed := src.Changed()
		events, watermark, err := src.Read(after, 4096)
		if err == nil {
			for i := range events {
				hub.publish(&events[i])
			}
			if len(events) == 4096 {
				after = events[len(events)-1].Seq
				continue
			}
			after = max(after, watermark)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-time.After(time.Second):
		}
	}
}

// serveHTTP serves router on --http-listen: one port taking TLS or, from
// the plaintext_allow networks, plain HTTP. GET /metrics needs a
// metrics:read token except from the metrics_allow networks.
func serveHTTP(cfg *Config, router *rest.Router, tlsCfg *tls.Config, log *slog.Logger) (*fasthttp.Server, error) {
	allow, err := netio.ParsePrefixes(cfg.PlaintextAllow)
	if err != nil {
		return nil, fmt.Errorf("plaintext_allow: %w", err)
	}
	metricsAllow, err := parseNets("metrics_allow", cfg.MetricsAllow)
	if err != nil {
		return nil, err
	}
	router.SetMetricsAllow(metricsAllow)
	srv := &fasthttp.Server{
		Handler:            router.Handler,
		ErrorHandler:       rest.ErrorHandler,
		Name:               "heliosd",
		MaxRequestBodySize: rest.MaxSQLBody,
		ReadTimeout:        cfg.HandshakeTimeout,
		WriteTimeout:       30 * time.Second,
		IdleTimeout:        2 * time.Minute,
		Concurrency:        cfg.MaxConns,
		MaxConnsPerIP:      cfg.MaxConnsPerIP,
		Logger:             fasthttpLogger{log},
	}
	addr := cfg.Listen[listeners.HTTP]
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http listen %s: %w", addr, err)
	}
	log.Info("listening", "protocol", "http", "addr", ln.Addr().String(), "tls", "self-detected", "plaintext_allow", strings.Join(cfg.PlaintextAllow, ","), "metrics_allow", strings.Join(cfg.MetricsAllow, ","))
	go func() {
		rl := rest.NewListener(ln, tlsCfg, allow, log)
		daemonReload.setHTTPListener(rl)
		if err := srv.Serve(rl); err != nil {
			log.Error("http server", "err", err)
		}
	}()
	return srv, nil
}

// recordRetiredKeys puts every key the keyring marks retired into the
// revocation log (once), so gateway nodes following the log learn of it.
func recordRetiredKeys(svc *issuer.Service, ring *core.Keyring) error {
	for _, k := range ring.Keys() {
		if k.Retired && svc.Store().Revocations().Check(core.TokenID{}, 0, 0, k.ID) != core.RevokedKey {
			if err := svc.RetireKey(k.ID); err != nil {
				return fmt.Errorf("record retired key %d: %w", k.ID, err)
			}
		}
	}
	return nil
}

// certHosts returns the names a generated certificate should carry besides
// localhost and loopback: this machine's host name and every specific
// address a listener binds to.
func certHosts(c *Config) []string {
	var hosts []string
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	for _, l := range listeners.All {
		if h, _, err := net.SplitHostPort(c.Listen[l.Protocol]); err == nil && h != "" && !slices.Contains(hosts, h) {
			if ip := net.ParseIP(h); ip == nil || !(ip.IsUnspecified() || ip.IsLoopback()) {
				hosts = append(hosts, h)
			}
		}
	}
	return hosts
}

// fasthttpLogger routes fasthttp's messages to slog at debug level (they
// are connection errors from clients).
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug("http", "msg", fmt.Sprintf(format, args...))
}
