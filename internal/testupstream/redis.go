package testupstream

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// redisServerPath is Debian's Redis server.
var redisServerPath = "/usr/bin/redis-server"

// redisPackage is the Debian package that installs redisServerPath.
const redisPackage = "redis-server"

// Redis is a running Redis server (Debian's /usr/bin/redis-server, 7.0 on
// bookworm) in a temporary directory, listening on 127.0.0.1 only, with a
// random password for its default user (requirepass) and no persistence
// (no RDB snapshots, no AOF): a restart starts it empty, and forgets the
// ACL users made since, as a Redis without an ACL file does. It runs as
// the current user (Redis does not refuse root). Its methods are safe for
// concurrent use.
type Redis struct {
	Addr     string // 127.0.0.1:PORT
	AdminURL string // redis://default:PASSWORD@127.0.0.1:PORT
	Password string // the default user's random password
	Dir      string // the temporary directory: the working directory and redis.log

	server // its process
}

// StartRedis starts Redis on a free loopback port in a new temporary
// directory; it returns once the default user logs in over TCP and PING
// answers. It takes no testing.T because a TestMain calls it once per
// package; the caller must call Stop.
func StartRedis() (*Redis, error) {
	dir, _, err := prepare("redis", "", redisPackage, redisServerPath)
	if err != nil {
		return nil, err
	}
	r := &Redis{Password: randomPassword(), Dir: dir, server: server{
		name: "redis", dir: dir, shutdown: syscall.SIGTERM, stopGrace: defaultStopGrace,
	}}
	if err := r.startFree(r.start); err != nil {
		return nil, err
	}
	return r, nil
}

// start starts the server on port and waits until the default user logs
// in. The caller holds mu, or owns r alone. The password is in the
// configuration file (0600), not on the process's command line.
func (r *Redis) start(port int) error {
	conf := filepath.Join(r.Dir, "redis.conf")
	text := fmt.Sprintf(`# testupstream: written by internal/testupstream
port %d
bind 127.0.0.1
protected-mode yes
dir %s
logfile %s
daemonize no
save ""
appendonly no
databases 16
maxclients 2000
requirepass %s
`, port, r.Dir, filepath.Join(r.Dir, "redis.log"), r.Password)
	if err := writeOwned(conf, []byte(text), nil); err != nil {
		return fmt.Errorf("redis.conf: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	err := r.spawn(port, "redis-server", redisServerPath, []string{conf}, "redis.log", func(ctx context.Context) error {
		c := redis.NewClient(&redis.Options{Addr: addr, Password: r.Password, DisableIdentity: true, MaxRetries: -1, Protocol: 2})
		defer c.Close()
		return c.Ping(ctx).Err()
	})
	if err != nil {
		return err
	}
	r.Addr = addr
	r.AdminURL = (&url.URL{Scheme: "redis", User: url.UserPassword("default", r.Password), Host: addr}).String()
	return nil
}

// Stop shuts the server down (SIGTERM: Redis closes its clients and
// exits), kills its process group if it has not exited within the grace
// period, and removes Dir. Calling it again does nothing.
func (r *Redis) Stop() { r.stop() }

// Restart shuts the server down and starts it again on the same port, for
// tests of an upstream that restarts mid-session: connections open to it
// break, and it comes back empty, without the ACL users made since it
// started.
func (r *Redis) Restart() error { return r.restart(r.start) }

// PID is the server's process ID (0 once stopped).
func (r *Redis) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return 0
	}
	return r.proc.pid()
}
