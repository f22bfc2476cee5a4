package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/mongodb"
)

// The MongoDB front end on --mongo-listen (default 127.0.0.1:27017), with
// the gateway's policy (IP allowlists, test databases) and last_used
// recorder; its authentication advice names the CA file to trust. A proxy
// to --mongo-upstream when one is configured, the built-in responder
// otherwise.
func init() {
	registerProtocol(protocolFactory{
		name: "mongodb",
		build: func(d *gatewayDeps) (netio.Protocol, error) {
			return mongodb.New(mongodb.Options{Policy: d.Policy, Usage: d.Usage, CAFile: d.Config.caFile,
				Upstream: d.Upstreams.Mongo}), nil
		},
	})
}

// openMongo opens the MongoDB upstream (--mongo-upstream). There is
// nothing to provision: the server enforces no roles of the gateway's
// (FerretDB 1.x has none), so the command classifier is the only wall, and
// MongoDB creates a database on its first write. One connection is opened
// at start (Probe), so that /healthz says at once whether the server can be
// reached; when it cannot, heliosd starts all the same and each client
// session tries again.
func (u *upstreams) openMongo(cfg *Config, log *slog.Logger) error {
	url, err := secretSetting("mongo-upstream", cfg.MongoUpstream, cfg.MongoUpstreamFile)
	if err != nil || url == "" {
		return err
	}
	if u.Mongo, err = newMongoUpstream(cfg, url, log); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := u.Mongo.Probe(ctx); err != nil {
		log.Warn("MongoDB upstream not reachable yet: each client session tries again", "upstream", u.Mongo.Address(), "err", err)
		return nil
	}
	log.Info("MongoDB upstream", "upstream", u.Mongo.Address(), "max_wire_version", u.Mongo.Health().MaxWireVersion)
	return nil
}

func newMongoUpstream(cfg *Config, url string, log *slog.Logger) (*mongodb.Upstream, error) {
	return mongodb.NewUpstream(mongodb.UpstreamOptions{URL: url, PoolSize: cfg.MongoPoolSize,
		PoolWait: cfg.MongoPoolWait, Logger: log})
}
