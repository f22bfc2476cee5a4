package main

import (
	"slices"
	"time"
)

// poolResizer is an upstream whose pool a reload resizes.
type poolResizer interface {
	Resize(size int, wait time.Duration) error
}

// resizePools gives the upstream pools the sizes and waits of c (a
// reload's new configuration) where they changed. A resize the pool
// refuses (a size above what it can grow to) moves the keys from changed
// to refused, and c keeps the old values.
func (r *reloader) resizePools(c *Config, changed, refused []string) ([]string, []string) {
	if r.ups == nil {
		return changed, refused
	}
	for _, p := range r.pools(c) {
		if *p.size == p.oldSize && *p.wait == p.oldWait {
			continue
		}
		if p.up == nil { // no such upstream: the value is kept for when one is configured (at a restart)
			continue
		}
		if err := p.up.Resize(*p.size, *p.wait); err != nil {
			*p.size, *p.wait = p.oldSize, p.oldWait
			changed = slices.DeleteFunc(changed, func(k string) bool { return k == p.sizeKey || k == p.waitKey })
			refused = append(refused, p.sizeKey+" ("+err.Error()+")")
			r.log.Warn("reload: pool not resized", "setting", p.sizeKey, "err", err)
		}
	}
	return changed, refused
}

// nilIfNone turns a nil *T upstream into a nil interface.
func nilIfNone[T poolResizer](u T) poolResizer {
	var zero T
	if any(u) == any(zero) {
		return nil
	}
	return u
}

// poolSetting is one upstream's pool settings in a configuration c, and
// their values in force.
type poolSetting struct {
	sizeKey, waitKey string
	up               poolResizer // nil: no such upstream
	size             *int
	wait             *time.Duration
	oldSize          int
	oldWait          time.Duration
}

// pools lists the upstreams' pool settings of c (r.ups set).
func (r *reloader) pools(c *Config) []poolSetting {
	return []poolSetting{
		{"pg_pool_size", "pg_pool_wait", nilIfNone(r.ups.PG), &c.PGPoolSize, &c.PGPoolWait, r.cur.PGPoolSize, r.cur.PGPoolWait},
		{"mysql_pool_size", "mysql_pool_wait", nilIfNone(r.ups.MySQL), &c.MySQLPoolSize, &c.MySQLPoolWait, r.cur.MySQLPoolSize, r.cur.MySQLPoolWait},
		{"redis_pool_size", "redis_pool_wait", nilIfNone(r.ups.Redis), &c.RedisPoolSize, &c.RedisPoolWait, r.cur.RedisPoolSize, r.cur.RedisPoolWait},
		{"mongo_pool_size", "mongo_pool_wait", nilIfNone(r.ups.Mongo), &c.MongoPoolSize, &c.MongoPoolWait, r.cur.MongoPoolSize, r.cur.MongoPoolWait},
	}
}
