package redisproxy

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testdaemon"
)

// serverClients counts the server's connections logged in as user.
func serverClients(t *testing.T, user string) (n int, ids []string) {
	t.Helper()
	list, err := admin(t).ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " user="+user+" ") {
			n++
			id, _, _ := strings.Cut(strings.TrimPrefix(line, "id="), " ")
			ids = append(ids, id)
		}
	}
	return n, ids
}

// gone waits until the server has no connection with id.
func gone(t *testing.T, id string) bool {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		list, err := admin(t).ClientList(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(list, "id="+id+" ") {
			return true
		}
	}
	return false
}

// TestRedisProxyRevocation: revoking the token ends the open session with
// -NOAUTH and the reason, idle or blocked in BLPOP, and its server
// connection is closed, not handed on.
func TestRedisProxyRevocation(t *testing.T) {
	d := daemonWith(t)
	owner := d.NewUser(t)
	for _, blocked := range []bool{false, true} {
		tok, id := d.CreateToken(t, owner, map[string]any{"name": "revoked-mid-session", "scopes": []string{"*"}})
		r := dialRaw(t, d.Redis)
		if got := r.do("AUTH", tok); got != "+OK" {
			t.Fatal(got)
		}
		serverID := strings.TrimPrefix(r.do("CLIENT", "ID"), ":")
		if blocked {
			r.send([]string{"BLPOP", "revoked:none", "0"})
			time.Sleep(200 * time.Millisecond)
		}
		d.Revoke(t, owner, id)
		got, err := r.readTimeout(5 * time.Second)
		if err != nil || !strings.HasPrefix(got, "-NOAUTH") || !strings.Contains(got, "revoked") {
			t.Fatalf("blocked %v: after the revocation: %q %v", blocked, got, err)
		}
		if !r.closed(5 * time.Second) {
			t.Fatalf("blocked %v: the connection stayed open", blocked)
		}
		if !gone(t, serverID) {
			t.Fatalf("blocked %v: the revoked session's server connection %s is still open", blocked, serverID)
		}
	}
}

// TestRedisProxyUpstreamRestart: the server restarts (and forgets the ACL
// users: it has no ACL file) under open sessions: an idle one gets an
// error at its next command and is closed, one blocked in BLPOP gets its
// error at once; new clients get in (the gateway provisions the users
// again on the refused login).
func TestRedisProxyUpstreamRestart(t *testing.T) {
	d := daemonWith(t)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: writeScopes})
	idle := dialRaw(t, d.Redis)
	idle.do("AUTH", tok)
	blocked := dialRaw(t, d.Redis)
	blocked.do("AUTH", tok)
	blocked.send([]string{"BLPOP", "restart:none", "0"})
	time.Sleep(200 * time.Millisecond)
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if got, err := blocked.readTimeout(5 * time.Second); err != nil || !strings.Contains(got, "upstream Redis server closed the connection") {
		t.Fatalf("BLPOP across the restart: %q %v", got, err)
	}
	if got := idle.do("PING"); !strings.Contains(got, "upstream Redis server closed the connection") {
		t.Fatalf("an idle session after the restart: %s", got)
	}
	if !idle.closed(5 * time.Second) {
		t.Fatal("the idle session stayed open")
	}
	for i := 0; i < 3; i++ {
		c := client(t, d, tok, 3, 0)
		if err := c.Set(ctx, "restart:k", i, 0).Err(); err != nil {
			t.Fatalf("client %d after the restart: %v", i, err)
		}
		c.Close()
	}
}

// TestRedisProxyPoolExhausted: with every server connection of a user in
// use, the next client gets a clear error after --redis-pool-wait, never a
// hang; another user has its own pool; once one is released, clients get
// in again.
func TestRedisProxyPoolExhausted(t *testing.T) {
	d := daemonWith(t, testdaemon.WithArgs("--redis-pool-size", "2", "--redis-pool-wait", "300ms"))
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: readScopes})
	a, b := dialRaw(t, d.Redis), dialRaw(t, d.Redis)
	a.do("AUTH", tok)
	b.do("AUTH", tok)
	third := dialRaw(t, d.Redis)
	start := time.Now()
	if got := third.do("AUTH", tok); !strings.Contains(got, "max number of clients reached") || time.Since(start) > 3*time.Second {
		t.Fatalf("third client of a pool of 2: %s after %v", got, time.Since(start))
	}
	// go-redis tries AUTH after a failed HELLO on the same connection:
	// it gets the same answer, then the connection closes.
	if got := third.do("AUTH", tok); !strings.Contains(got, "max number of clients reached") {
		t.Fatalf("the second attempt: %s", got)
	}
	if !third.closed(2 * time.Second) {
		t.Fatal("the refused client stayed open")
	}
	if got := dialRaw(t, d.Redis).do("AUTH", d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})); got != "+OK" {
		t.Fatalf("another user: %s", got)
	}
	a.c.Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if got := dialRaw(t, d.Redis).do("AUTH", tok); got == "+OK" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("after a client left: %s", got)
		}
	}
}

// TestRedisProxyConnectCycles: 10,000 connect / AUTH / command / close
// cycles reuse pooled server connections and leave no more open than the
// pool holds; the stateful ones (SELECT, HELLO 3) are reset on the way.
func TestRedisProxyConnectCycles(t *testing.T) {
	d := daemonWith(t, testdaemon.WithArgs("--redis-pool-size", "8"))
	owner := d.NewUser(t)
	d.MustJSON(t, 201, "POST", "/v1/databases", owner, map[string]any{"name": "db1"}, nil)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: writeScopes})
	const workers, cycles = 4, 10000
	errs := make(chan error, workers)
	start := time.Now()
	for w := 0; w < workers; w++ {
		go func() {
			for i := 0; i < cycles/workers; i++ {
				c, err := net.DialTimeout("tcp", d.Redis, 5*time.Second)
				if err != nil {
					errs <- err
					return
				}
				cmds := encode("AUTH", tok) + encode("PING")
				want := "+OK\r\n+PONG\r\n"
				if i%10 == 0 {
					cmds = encode("AUTH", tok) + encode("SELECT", "1") + encode("PING")
					want = "+OK\r\n+OK\r\n+PONG\r\n"
				}
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write([]byte(cmds)); err != nil {
					errs <- err
					return
				}
				buf := make([]byte, len(want))
				n := 0
				for n < len(want) {
					k, err := c.Read(buf[n:])
					if err != nil {
						errs <- err
						return
					}
					n += k
				}
				c.Close()
				if string(buf) != want {
					errs <- &cycleError{string(buf)}
					return
				}
			}
			errs <- nil
		}()
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d connect/AUTH/PING/close cycles in %v (%.0f/s)", cycles, time.Since(start), cycles/time.Since(start).Seconds())
	time.Sleep(200 * time.Millisecond) // the last RESETs
	if n, _ := serverClients(t, "helios_write"); n > 8 || n == 0 {
		t.Fatalf("%d server connections of helios_write are open after the cycles: want 1 to 8 (the pool)", n)
	}
	var h struct {
		Upstreams map[string]struct{ Open, Idle, Commands int }
	}
	_, body := d.Do(t, "GET", "/healthz", "", nil)
	if err := json.Unmarshal(body, &h); err != nil || h.Upstreams["redis"].Open > 8 || h.Upstreams["redis"].Commands < 200 {
		t.Fatalf("/healthz: %s", body)
	}
}

type cycleError struct{ got string }

func (e *cycleError) Error() string { return "unexpected replies: " + e.got }

// TestRedisProxyUpstreamDown: heliosd starts while its Redis is down, says
// so in /healthz, and clients get a clear -ERR naming the upstream, not a
// hang.
func TestRedisProxyUpstreamDown(t *testing.T) {
	down := testdaemon.FreeAddr(t, "127.0.0.1") // nothing listens there
	d := testdaemon.Start(t, testdaemon.WithArgs("--redis-upstream", "redis://default:secretpw@"+down+"/"))
	d.CheckUpstreamDown(t, "redis", down, "secretpw")
	c := redis.NewClient(&redis.Options{Addr: d.Redis, Password: d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes}), MaxRetries: -1})
	defer c.Close()
	start := time.Now()
	err := c.Ping(ctx).Err()
	if err == nil || !strings.Contains(err.Error(), "upstream Redis server "+down) || time.Since(start) > 15*time.Second {
		t.Fatalf("a client with the upstream down: %v after %v", err, time.Since(start))
	}
	if strings.Contains(err.Error(), "secretpw") {
		t.Fatalf("the error shows the password: %v", err)
	}
}
