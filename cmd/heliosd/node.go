package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/heliosdb/auth/internal/listeners"
	"github.com/heliosdb/auth/issuer/feed"
	"github.com/heliosdb/auth/protocols/rest"
)

// runNode runs a gateway node (role "gateway") until ctx ends: the keyring
// and the revocation view come from the issuer's feed (feed.Follower), the
// IP allowlists and the databases registry from the same feed into a
// policyset.Set, and last_used times go back to the issuer in batches. The
// node has no issuer store and does not serve /v1/*. It keeps a copy of the
// keyring (data-dir/node-keyring.json, 0600) beside its revocation state, so
// that it can restart while the issuer is unreachable and verify until its
// state is older than --stale-after. It calls ready once every listener is up.
func runNode(ctx context.Context, cfg *Config, tlsCfg *tls.Config, log *slog.Logger, ready func(issuer bool)) error {
	key, err := feed.ReadClusterKey(cfg.ClusterKeyFile)
	if err != nil {
		return err
	}
	state := cfg.NodeState
	if state == "" {
		state = filepath.Join(cfg.DataDir, "feed-state")
	}
	pol := newNodePolicy(filepath.Join(cfg.DataDir, "node-policy.json"), log)
	hub := &revocationHub{}
	fctx, fcancel := context.WithCancel(ctx)
	defer fcancel()
	follower, err := feed.NewFollower(fctx, feed.FollowerConfig{
		IssuerURL: cfg.IssuerURL, ClusterKey: key, CACert: cfg.IssuerCA, StatePath: state,
		KeyringPath: filepath.Join(cfg.DataDir, "node-keyring.json"),
		StaleAfter:  cfg.StaleAfter, SnapshotOnStart: true, Logger: log,
		OnEvent: func(e *feed.Event) {
			pol.apply(e)
			hub.publish(e)
		},
		// Failing closed (or recovering) changes every session's answer:
		// re-check them all now, as after a snapshot.
		OnStale: func(bool) { hub.publish(&feed.Event{Kind: feed.KindSnapshotEnd}) },
	})
	if err != nil {
		return err
	}
	followDone := make(chan struct{})
	go func() { follower.Run(fctx); close(followDone) }()
	policyDone := make(chan struct{})
	go func() { pol.run(fctx); close(policyDone) }()
	registerNodeMetrics(follower)
	usage := newNodeUsage(cfg, key, follower, log)
	defer usage.Close()
	log.Info("gateway node following the issuer", "issuer", cfg.IssuerURL, "stale_after", cfg.StaleAfter, "state", state)

	ups, err := openUpstreams(cfg, pol.set, log)
	if err != nil {
		return err
	}
	defer ups.Close()
	ups.followIssuer(fctx, cfg, follower, log)
	deps := &gatewayDeps{Config: cfg, Keyring: follower.Keyring(), Revocations: follower, Policy: pol.set, Upstreams: ups,
		Usage: usage, Revoked: hub, TLS: tlsCfg, DataDir: cfg.DataDir, Logger: log}
	stopGateway, err := startGateway(ctx, deps)
	if err != nil {
		return err
	}
	defer stopGateway()

	var srv *fasthttp.Server
	if cfg.Listen[listeners.HTTP] != "" {
		auth := rest.NewAuthenticator(follower.Keyring(), follower, rest.AuthOptions{Policy: pol.set, Usage: usage, Logger: log})
		router := rest.NewRouter(auth)
		if ups.PG != nil {
			router.SetSQLRunner(pgSQL{ups.PG})
		}
		router.Replace("GET", "/healthz", nodeHealth(cfg, follower, ups))
		router.Public("GET", "/v1/", misdirected(cfg))
		router.Public("POST", "/v1/", misdirected(cfg))
		router.Public("DELETE", "/v1/", misdirected(cfg))
		if srv, err = serveHTTP(cfg, router, tlsCfg, log); err != nil {
			return err
		}
	}
	ready(false)
	<-ctx.Done()
	log.Info("shutting down")
	shutdownHTTP(srv, log)
	fcancel()
	<-followDone
	<-policyDone
	return nil
}

// misdirected answers the issuer's endpoints on a node: 421 naming the issuer.
func misdirected(cfg *Config) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		rest.WriteError(ctx, http.StatusMisdirectedRequest, "NOT_ISSUER",
			"this is a gateway node: send "+string(ctx.Path())+" to the issuer at "+cfg.IssuerURL, "")
	}
}

// nodeHealth answers GET /healthz: 200 when the node holds a complete
// revocation set and its feed is within the staleness bound, else 503; the
// body reports the staleness and the sequence numbers either way.
func nodeHealth(cfg *Config, f *feed.Follower, ups *upstreams) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		applied, issuerSeq := f.Seq()
		status, code := "ok", http.StatusOK
		switch {
		case !f.Ready():
			status, code = "starting", http.StatusServiceUnavailable
		case f.Stale():
			status, code = "stale", http.StatusServiceUnavailable
		}
		body := map[string]any{"status": status, "role": "gateway", "applied_seq": applied, "issuer_seq": issuerSeq,
			"staleness_ms": f.Staleness().Milliseconds(), "stale_after_ms": cfg.StaleAfter.Milliseconds()}
		if up, ok := ups.health(); len(up) > 0 {
			body["upstreams"] = up
			if !ok && status == "ok" {
				body["status"] = "degraded"
			}
		}
		b, _ := json.Marshal(body)
		ctx.SetStatusCode(code)
		ctx.SetContentType("application/json")
		ctx.Response.Header.Set("Cache-Control", "no-store")
		ctx.SetBody(append(b, '\n'))
	}
}

// registerNodeMetrics exposes the feed's staleness and sequence numbers.
func registerNodeMetrics(f *feed.Follower) {
	metrics.NewGauge(`helios_node_feed_staleness_seconds`, func() float64 { return f.Staleness().Seconds() })
	metrics.NewGauge(`helios_node_feed_applied_seq`, func() float64 { a, _ := f.Seq(); return float64(a) })
	metrics.NewGauge(`helios_node_feed_issuer_seq`, func() float64 { _, i := f.Seq(); return float64(i) })
	metrics.NewGauge(`helios_node_feed_stale`, func() float64 {
		if f.Stale() {
			return 1
		}
		return 0
	})
	metrics.NewGauge(`helios_node_revoked_tokens`, func() float64 { return float64(f.Set().Stats().Tokens) })
}
