// Package redisproxy tests heliosd's proxy mode for Redis with a real
// redis-server behind it (Debian's, started once for the package in
// TestMain by internal/testupstream) and real clients in front: redis-cli,
// go-redis v9 (RESP3 and RESP2), and a raw RESP client where a test needs
// to see every byte (pipelines, push messages, an INFO on connect). Every
// daemon of the package shares the ACL users' passwords (one passwords
// file copied into each data directory), so that daemons started side by
// side do not change each other's users on the shared server.
package redisproxy

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testdaemon"
	"github.com/heliosdb/auth/internal/testupstream"
)

var (
	// srv is the package's Redis server.
	srv *testupstream.Redis
	// userPasswords is the passwords file every daemon starts with (the
	// ACL users' passwords; testdaemon.WriteRolePasswords).
	userPasswords string
)

func TestMain(m *testing.M) {
	testdaemon.Main(m, func(atExit func(func())) (err error) {
		if srv, err = testupstream.StartRedis(); err != nil {
			return fmt.Errorf("start Redis: %w", err)
		}
		atExit(srv.Stop)
		userPasswords, err = testdaemon.WriteRolePasswords(atExit)
		return err
	})
}

// daemonWith starts heliosd in proxy mode in front of the package's Redis,
// with the shared passwords, and more options.
func daemonWith(t testing.TB, opts ...testdaemon.Option) *testdaemon.Daemon {
	t.Helper()
	dir := testdaemon.DataDirWith(t, userPasswords, "upstream-redis.json")
	all := []testdaemon.Option{testdaemon.WithDataDir(dir), testdaemon.WithArgs("--redis-upstream", srv.AdminURL)}
	return testdaemon.Start(t, append(all, opts...)...)
}

// client is a go-redis client of d with token tok (RESP3 unless proto
// says 2), closed at the end of the test.
func client(t testing.TB, d *testdaemon.Daemon, tok string, proto int, db int) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: d.Redis, Password: tok, Protocol: proto, DB: db, MaxRetries: -1,
		PoolSize: 4, DialTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

// admin is a client of the Redis server itself, as its default user.
func admin(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(srv.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	opts.MaxRetries = 3
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// scopes is the set of the scopes ss.
var scopes = testdaemon.Scopes

var (
	readScopes  = scopes(core.ScopeDatabaseRead)
	writeScopes = scopes(core.ScopeDatabaseRead, core.ScopeDatabaseWrite)
)

// ctx is the tests' context.
var ctx = context.Background()
