package main

import (
	"log/slog"
	"path/filepath"

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
	u.provision("Redis", r.Address(), log, r.Provision)
	return nil
}
