package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/valyala/fasthttp"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/protocols/mongodb"
	"github.com/heliosdb/auth/protocols/mysql"
	"github.com/heliosdb/auth/protocols/postgres"
	"github.com/heliosdb/auth/protocols/redis"
	"github.com/heliosdb/auth/protocols/rest"
)

// upstreams are the real databases behind the gateway (proxy mode), opened
// once per process and shared by the protocol front ends and the issuer's
// database registry (issuer.Upstreams).
type upstreams struct {
	PG *postgres.Upstream
	// MySQL is the MySQL or MariaDB server (--mysql-upstream), or nil.
	MySQL *mysql.Upstream
	// Redis is the Redis server (--redis-upstream), or nil.
	Redis *redis.Upstream
	// Mongo is the MongoDB-wire server (--mongo-upstream), or nil.
	Mongo *mongodb.Upstream
	stop  chan struct{} // ends the provisioning retries (nil: none run)
}

// registry lists the registered databases (policyset.Set).
type registry interface {
	Databases() map[string]bool
}

// openUpstreams reads the upstream settings and provisions each upstream's
// roles and registered databases. An upstream that cannot be reached does
// not stop heliosd: it is logged, and provisioning runs again on the first
// connection that needs it.
func openUpstreams(cfg *Config, reg registry, log *slog.Logger) (*upstreams, error) {
	u := &upstreams{}
	url, err := secretSetting("pg-upstream", cfg.PGUpstream, cfg.PGUpstreamFile)
	if err != nil {
		return nil, err
	}
	if url == "" && cfg.PGUpstreamRolesFile != "" {
		roles, err := secretSetting("pg-upstream-roles", "", cfg.PGUpstreamRolesFile)
		if err != nil {
			return nil, err
		}
		var urls map[string]string
		if err := json.Unmarshal([]byte(roles), &urls); err != nil {
			return nil, fmt.Errorf("--pg-upstream-roles-file: %w", err)
		}
		if u.PG, err = u.pgFromRoles(cfg, urls, log); err != nil {
			return nil, err
		}
		log.Info("PostgreSQL upstream with given role logins (nothing provisioned)", "upstream", u.PG.Address())
	}
	if url != "" {
		pg, err := postgres.NewUpstream(postgres.UpstreamOptions{AdminURL: url,
			PasswordsFile: filepath.Join(cfg.DataDir, "upstream-postgres.json"),
			PoolSize:      cfg.PGPoolSize, PoolWait: cfg.PGPoolWait, SQLTimeout: cfg.SQLTimeout, Logger: log})
		if err != nil {
			return nil, err
		}
		u.PG = pg
		u.provision("PostgreSQL", pg.Address(), log, func(ctx context.Context) error {
			names, isTest := registered(reg)
			return pg.Provision(ctx, names, isTest)
		})
	}
	if err := u.openMySQL(cfg, reg, log); err != nil {
		return nil, err
	}
	if err := u.openRedis(cfg, log); err != nil {
		return nil, err
	}
	if err := u.openMongo(cfg, log); err != nil {
		return nil, err
	}
	daemonReload.setUpstreams(u) // a reload resizes the pools
	return u, nil
}

// openMySQL opens the MySQL upstream (--mysql-upstream) and provisions it,
// retrying every 5s in the background while it cannot be reached.
func (u *upstreams) openMySQL(cfg *Config, reg registry, log *slog.Logger) error {
	url, err := secretSetting("mysql-upstream", cfg.MySQLUpstream, cfg.MySQLUpstreamFile)
	if err != nil {
		return err
	}
	if url == "" && cfg.MySQLUpstreamRolesFile != "" {
		return u.mysqlFromRoles(cfg, log)
	}
	if url == "" {
		return nil
	}
	my, err := mysql.NewUpstream(mysql.UpstreamOptions{AdminURL: url,
		PasswordsFile: filepath.Join(cfg.DataDir, "upstream-mysql.json"),
		PoolSize:      cfg.MySQLPoolSize, PoolWait: cfg.MySQLPoolWait, Logger: log})
	if err != nil {
		return err
	}
	u.MySQL = my
	u.provision("MySQL", my.Address(), log, func(ctx context.Context) error {
		names, isTest := registered(reg)
		return my.Provision(ctx, names, isTest)
	})
	return nil
}

// mysqlFromRoles opens the MySQL upstream with the six role URLs of
// --mysql-upstream-roles-file (users someone else provisioned): nothing is
// provisioned; heliosd logs in once as the read user to check the file
// (again every 5s while the server cannot be reached).
func (u *upstreams) mysqlFromRoles(cfg *Config, log *slog.Logger) error {
	roles, err := secretSetting("mysql-upstream-roles", "", cfg.MySQLUpstreamRolesFile)
	if err != nil {
		return err
	}
	var urls map[string]string
	if err := json.Unmarshal([]byte(roles), &urls); err != nil {
		return errors.New("--mysql-upstream-roles-file: not a JSON object of role name → URL") // never quote it: it holds passwords
	}
	my, err := mysql.NewUpstream(mysql.UpstreamOptions{RoleURLs: urls, PoolSize: cfg.MySQLPoolSize, PoolWait: cfg.MySQLPoolWait, Logger: log})
	if err != nil {
		return err
	}
	u.MySQL = my
	log.Info("MySQL upstream with given role logins (nothing provisioned)", "upstream", my.Address())
	u.provision("MySQL", my.Address(), log, func(ctx context.Context) error { return my.Provision(ctx, nil, nil) })
	return nil
}

// provision runs an upstream's provisioning now and, while the upstream
// cannot be reached, again every 5s in the background until it succeeds
// or heliosd stops (connections that need it also provision on a refused
// login).
func (u *upstreams) provision(name, addr string, log *slog.Logger, provision func(context.Context) error) {
	try := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return provision(ctx)
	}
	if err := try(); err != nil {
		log.Warn(name+" upstream not provisioned yet: retrying every 5s, and on each connection", "upstream", addr, "err", err)
	} else {
		log.Info(name+" upstream provisioned", "upstream", addr)
		return
	}
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
			if err := try(); err == nil {
				log.Info(name+" upstream provisioned", "upstream", addr)
				return
			}
		}
	}()
}

// registered lists the registered databases and tells the test ones.
func registered(reg registry) ([]string, func(string) bool) {
	dbs := reg.Databases()
	names := make([]string, 0, len(dbs))
	for n := range dbs {
		names = append(names, n)
	}
	return names, func(n string) bool { return dbs[n] }
}

// pgFromRoles is a PostgreSQL upstream that logs in with the given role
// URLs.
func (u *upstreams) pgFromRoles(cfg *Config, urls map[string]string, log *slog.Logger) (*postgres.Upstream, error) {
	return postgres.NewUpstream(postgres.UpstreamOptions{RoleURLs: urls, PoolSize: cfg.PGPoolSize, PoolWait: cfg.PGPoolWait,
		SQLTimeout: cfg.SQLTimeout, Logger: log})
}

// health is the upstreams' part of /healthz, and whether every configured
// upstream was reachable at its last attempt.
func (u *upstreams) health() (map[string]any, bool) {
	m := map[string]any{}
	ok := true
	if u.PG != nil {
		h := u.PG.Health()
		m["postgres"] = h
		ok = ok && h.Reachable
	}
	if u.MySQL != nil {
		h := u.MySQL.Health()
		m["mysql"] = h
		ok = ok && h.Reachable
	}
	if u.Redis != nil {
		h := u.Redis.Health()
		m["redis"] = h
		ok = ok && h.Reachable
	}
	if u.Mongo != nil {
		h := u.Mongo.Health()
		m["mongodb"] = h
		ok = ok && h.Reachable
	}
	return m, ok
}

// issuerHealth answers GET /healthz for role all: "ok", or "degraded"
// (still 200: tokens are issued and verified) while a configured upstream
// cannot be reached, with each upstream's state.
func issuerHealth(ups *upstreams) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		body := map[string]any{"status": "ok"}
		if up, ok := ups.health(); len(up) > 0 {
			body["upstreams"] = up
			if !ok {
				body["status"] = "degraded"
			}
		}
		b, _ := json.Marshal(body)
		ctx.SetContentType("application/json")
		ctx.Response.Header.Set("Cache-Control", "no-store")
		ctx.SetBody(append(b, '\n'))
	}
}

// secretSetting returns a credential given inline or in a file that only
// its owner may read (the file wins when both are given: it is the safer).
func secretSetting(name, inline, file string) (string, error) {
	if file == "" {
		return strings.TrimSpace(inline), nil
	}
	st, err := os.Stat(file)
	if err != nil {
		return "", fmt.Errorf("--%s-file: %w", name, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("--%s-file %s is readable by group or others (mode %v): run chmod 600 on it", name, file, st.Mode().Perm())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--%s-file: %w", name, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", errors.New("--" + name + "-file " + file + " is empty")
	}
	return v, nil
}

// CreateDatabase creates a newly registered database on every upstream
// (issuer.Upstreams).
func (u *upstreams) CreateDatabase(ctx context.Context, name string, test bool) error {
	if u.PG != nil {
		if err := u.PG.CreateDatabase(ctx, name, test); err != nil {
			return fmt.Errorf("PostgreSQL upstream: %w", err)
		}
	}
	if u.MySQL != nil {
		if err := u.MySQL.CreateDatabase(ctx, name, test); err != nil {
			return fmt.Errorf("MySQL upstream: %w", err)
		}
	}
	return nil
}

// DropDatabase drops a database being deleted from the registry on every
// upstream (issuer.Upstreams).
func (u *upstreams) DropDatabase(ctx context.Context, name string) error {
	if u.PG != nil {
		if err := u.PG.DropDatabase(ctx, name); err != nil {
			return fmt.Errorf("PostgreSQL upstream: %w", err)
		}
	}
	if u.MySQL != nil {
		if err := u.MySQL.DropDatabase(ctx, name); err != nil {
			return fmt.Errorf("MySQL upstream: %w", err)
		}
	}
	if u.Mongo != nil {
		if err := u.Mongo.DropDatabase(ctx, name); err != nil {
			return fmt.Errorf("MongoDB upstream: %w", err)
		}
	}
	return nil
}

// pgSQL runs POST /api/v1/sql on the PostgreSQL upstream (rest.SQLRunner).
type pgSQL struct{ u *postgres.Upstream }

// RunSQL runs one request; the server's errors become rest.SQLError.
func (p pgSQL) RunSQL(ctx context.Context, c *core.Claims, database, query string, params []any, maxRows int) (any, error) {
	res, err := p.u.RunSQL(ctx, c, database, query, params, postgres.SQLOptions{MaxRows: maxRows})
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return nil, &rest.SQLError{SQLState: pe.Code, Message: pe.Message, Detail: pe.Detail}
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// Close closes the upstreams' idle connections.
func (u *upstreams) Close() {
	if u.stop != nil {
		close(u.stop)
	}
	if u.PG != nil {
		u.PG.Close()
	}
	if u.MySQL != nil {
		u.MySQL.Close()
	}
	if u.Redis != nil {
		u.Redis.Close()
	}
	if u.Mongo != nil {
		u.Mongo.Close()
	}
}
