// Command heliosd is the HeliosDB Auth daemon: the issuer (accounts, tokens,
// the /v1/auth REST API on Pebble) and the gateway (PostgreSQL, MySQL,
// MongoDB, Redis and REST front ends) in one process by default.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/keyfile"
	"github.com/heliosdb/auth/core/tlsfile"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "heliosd:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg := defaultConfig()
	flag.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "data directory")
	flag.StringVar(&cfg.HTTPListen, "http-listen", cfg.HTTPListen, "REST API listen address (empty disables)")
	flag.StringVar(&cfg.PGListen, "pg-listen", cfg.PGListen, "PostgreSQL listen address (empty disables)")
	flag.StringVar(&cfg.RedisListen, "redis-listen", cfg.RedisListen, "Redis listen address (empty disables)")
	flag.StringVar(&cfg.MySQLListen, "mysql-listen", cfg.MySQLListen, "MySQL listen address (empty disables)")
	flag.StringVar(&cfg.MongoListen, "mongo-listen", cfg.MongoListen, "MongoDB listen address (empty disables)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	ring, _, err := keyfile.LoadOrGenerate(filepath.Join(cfg.DataDir, "keyring.json"), time.Now())
	if err != nil {
		return err
	}
	tlsCfg, certPath, _, err := tlsfile.LoadOrGenerate(cfg.DataDir, cfg.TLSCert, cfg.TLSKey, nil)
	if err != nil {
		return err
	}
	log.Info("TLS certificate", "ca", certPath)
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	stop, err := startGateway(ctx, &gatewayDeps{Config: &cfg, Keyring: ring, Revocations: core.NewMemoryRevocations(), TLS: tlsCfg, DataDir: cfg.DataDir, Logger: log})
	if err != nil {
		return err
	}
	<-ctx.Done()
	stop()
	return nil
}
