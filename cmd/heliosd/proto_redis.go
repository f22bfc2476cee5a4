package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/redis"
)

// The Redis front end on --redis-listen, with the gateway's policy (IP
// allowlists, test databases) and last_used recorder: a proxy to
// --redis-upstream when one is configured, the built-in responder
// otherwise.
func init() {
	registerProtocol(protocolFactory{
		name: "redis",
		build: func(d *gatewayDeps) (netio.Protocol, error) {
			return redis.New(redis.Options{Policy: d.Policy, Usage: d.Usage, Upstream: d.Upstreams.Redis}), nil
		},
	})
}

// openRedis opens the Redis upstream (--redis-upstream) and provisions its
// ACL users, retrying every 5s in the background while it cannot be
// reached (and again whenever a login is refused: a Redis without an ACL
// file forgets them when it restarts).
func (u *upstreams) openRedis(cfg *Config, log *slog.Logger) error {
	url, err := secretSetting("redis-upstream", cfg.RedisUpstream, cfg.RedisUpstreamFile)
	if err != nil || url == "" {
		return err
	}
	r, err := redis.NewUpstream(redis.UpstreamOptions{AdminURL: url,
		PasswordsFile: filepath.Join(cfg.DataDir, "upstream-redis.json"),
		PoolSize:      cfg.RedisPoolSize, PoolWait: cfg.RedisPoolWait, Logger: log})
	if err != nil {
		return err
	}
	u.Redis = r
	provision := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return r.Provision(ctx)
	}
	err = provision()
	if err == nil {
		log.Info("Redis upstream provisioned", "upstream", r.Address())
		return nil
	}
	log.Warn("Redis upstream not provisioned yet: retrying every 5s, and on each connection", "upstream", r.Address(), "err", err)
	if u.stop == nil {
		u.stop = make(chan struct{})
	}
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-u.stop:
				return
			case <-t.C:
			}
			if err := provision(); err == nil {
				log.Info("Redis upstream provisioned", "upstream", r.Address())
				return
			}
		}
	}()
	return nil
}
