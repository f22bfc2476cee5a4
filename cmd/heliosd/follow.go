package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/heliosdb/auth/issuer/feed"
	"github.com/heliosdb/auth/protocols/mysql"
	"github.com/heliosdb/auth/protocols/redis"
)

// clusterLogins is GET /v1/cluster/upstreams: how gateway nodes log in to
// each upstream — the six role URLs, with their passwords, of PostgreSQL,
// MySQL and Redis, and MongoDB's URL. Absent: that upstream is not
// configured, or was given to the issuer without an administrator login.
type clusterLogins struct {
	Postgres map[string]string `json:"postgres,omitempty"`
	MySQL    map[string]string `json:"mysql,omitempty"`
	Redis    map[string]string `json:"redis,omitempty"`
	MongoDB  string            `json:"mongodb,omitempty"`
}

// clusterUpstreams answers GET /v1/cluster/upstreams, for the cluster key
// only (the caller checks it). The route is served over TLS or from
// plaintext_allow networks, as the keyring is.
func (u *upstreams) clusterUpstreams(ctx *fasthttp.RequestCtx) {
	var body clusterLogins
	if u.PG != nil {
		body.Postgres = u.PG.RoleURLs()
	}
	if u.MySQL != nil {
		body.MySQL = u.MySQL.RoleURLs()
	}
	if u.Redis != nil {
		body.Redis = u.Redis.RoleURLs()
	}
	if u.Mongo != nil {
		body.MongoDB = u.Mongo.URL()
	}
	b, _ := json.Marshal(body)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBody(b)
}

// followIssuer gives a gateway node the issuer's upstreams for each one it
// was not configured with itself (GET /v1/cluster/upstreams): fetched once
// before the gateway starts, then every 30s, so that new role passwords
// reach the node (connections already open are not touched). A node
// provisions nothing.
func (u *upstreams) followIssuer(ctx context.Context, cfg *Config, f *feed.Follower, log *slog.Logger) {
	fetch := func() *clusterLogins {
		var body clusterLogins
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := f.FetchJSON(fctx, "/v1/cluster/upstreams", &body); err != nil {
			log.Warn("fetching the upstreams from the issuer", "err", err)
			return nil
		}
		return &body
	}
	body := fetch()
	if body == nil {
		return
	}
	// updates keeps the upstreams taken from the issuer current.
	var updates []func(*clusterLogins)
	adopt := func(name string, urls map[string]string, open func(map[string]string) (roleLogins, error)) {
		if urls == nil {
			return
		}
		up, err := open(urls)
		if err != nil {
			log.Warn("the issuer's upstream", "protocol", name, "err", err)
			return
		}
		log.Info("upstream from the issuer", "protocol", name, "upstream", up.Address())
		updates = append(updates, func(b *clusterLogins) {
			if next := pick(name, b); next != nil {
				if err := up.SetRoleURLs(next); err != nil {
					log.Warn("the issuer's upstream", "protocol", name, "err", err)
				}
			}
		})
	}
	if u.PG == nil {
		adopt("postgres", body.Postgres, func(urls map[string]string) (roleLogins, error) {
			pg, err := u.pgFromRoles(cfg, urls, log)
			if err == nil {
				u.PG = pg
			}
			return pg, err
		})
	}
	if u.MySQL == nil {
		adopt("mysql", body.MySQL, func(urls map[string]string) (roleLogins, error) {
			my, err := mysql.NewUpstream(mysql.UpstreamOptions{RoleURLs: urls, PoolSize: cfg.MySQLPoolSize, PoolWait: cfg.MySQLPoolWait, Logger: log})
			if err == nil {
				u.MySQL = my
			}
			return my, err
		})
	}
	if u.Redis == nil {
		adopt("redis", body.Redis, func(urls map[string]string) (roleLogins, error) {
			r, err := redis.NewUpstream(redis.UpstreamOptions{RoleURLs: urls, PoolSize: cfg.RedisPoolSize, PoolWait: cfg.RedisPoolWait, Logger: log})
			if err == nil {
				u.Redis = r
			}
			return r, err
		})
	}
	if u.Mongo == nil && body.MongoDB != "" {
		m, err := newMongoUpstream(cfg, body.MongoDB, log)
		if err != nil {
			log.Warn("the issuer's upstream", "protocol", "mongodb", "err", err)
		} else {
			u.Mongo = m
			log.Info("upstream from the issuer", "protocol", "mongodb", "upstream", m.Address())
		}
	}
	if len(updates) == 0 {
		return
	}
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if b := fetch(); b != nil {
				for _, update := range updates {
					update(b)
				}
			}
		}
	}()
}

// roleLogins is an upstream that logs in with role URLs a node receives.
type roleLogins interface {
	Address() string
	SetRoleURLs(map[string]string) error
}

// pick is one upstream's role URLs in the issuer's answer.
func pick(name string, b *clusterLogins) map[string]string {
	switch name {
	case "postgres":
		return b.Postgres
	case "mysql":
		return b.MySQL
	case "redis":
		return b.Redis
	}
	return nil
}
