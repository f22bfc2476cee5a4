package redisproxy

import (
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testdaemon"
)

// redisCLI runs redis-cli against the gateway with a token.
func redisCLI(t *testing.T, d *testdaemon.Daemon, tok string, args ...string) (string, error) {
	t.Helper()
	host, port, _ := strings.Cut(d.Redis, ":")
	out, err := exec.Command("redis-cli", append([]string{"-h", host, "-p", port, "--no-auth-warning", "-a", tok}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// TestRedisProxyFullAccess: a full-access token reaches the real Redis as
// helios_owner: redis-cli and go-redis (RESP3 and RESP2) write and read,
// the data is on the server, HELLO answers with the server's own version
// and id, and a 100-command pipeline gets its replies in order.
func TestRedisProxyFullAccess(t *testing.T) {
	d := daemonWith(t)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
	if out, err := redisCLI(t, d, tok, "SET", "full:cli", "from redis-cli"); err != nil || out != "OK" {
		t.Fatalf("redis-cli SET: %v %s", err, out)
	}
	if out, err := redisCLI(t, d, tok, "GET", "full:cli"); err != nil || out != "from redis-cli" {
		t.Fatalf("redis-cli GET: %v %s", err, out)
	}
	if out, err := redisCLI(t, d, tok, "-3", "HELLO", "3"); err != nil || !strings.Contains(out, "7.0.") {
		t.Fatalf("redis-cli -3 HELLO 3 (the server's own answer): %v %s", err, out)
	}
	for _, proto := range []int{3, 2} {
		c := client(t, d, tok, proto, 0)
		key := "full:go:" + strconv.Itoa(proto)
		if err := c.Set(ctx, key, "v", 0).Err(); err != nil {
			t.Fatalf("RESP%d SET: %v", proto, err)
		}
		if v, err := c.Get(ctx, key).Result(); err != nil || v != "v" {
			t.Fatalf("RESP%d GET: %q %v", proto, v, err)
		}
		if u, err := c.Do(ctx, "ACL", "WHOAMI").Text(); err != nil || u != "default" {
			t.Fatalf("ACL WHOAMI: %q %v", u, err)
		}
		info, err := c.ClientInfo(ctx).Result()
		if err != nil || info.User != "helios_owner" {
			t.Fatalf("CLIENT INFO on the server: %+v %v", info, err)
		}
		cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := 0; i < 100; i++ {
				p.Set(ctx, key+":"+strconv.Itoa(i), i, 0)
				p.Get(ctx, key+":"+strconv.Itoa(i))
			}
			return nil
		})
		if err != nil || len(cmds) != 200 {
			t.Fatalf("pipeline: %d %v", len(cmds), err)
		}
		for i := 0; i < 100; i++ {
			if v := cmds[2*i+1].(*redis.StringCmd).Val(); v != strconv.Itoa(i) {
				t.Fatalf("pipeline reply %d: %q", i, v)
			}
		}
	}
	if v, err := admin(t).Get(ctx, "full:go:2:99").Result(); err != nil || v != "99" {
		t.Fatalf("the data is not on the server: %q %v", v, err)
	}
}

// TestRedisProxyInfoOnConnect: a client that sends INFO right after AUTH,
// in the same write, as ioredis's ready check does, gets the server's
// sections (redis_version, loading:0), before and after the gateway's own
// reply to AUTH.
func TestRedisProxyInfoOnConnect(t *testing.T) {
	d := daemonWith(t)
	r := dialRaw(t, d.Redis)
	r.send([]string{"AUTH", d.Mint(t, core.Claims{Account: 1, Scopes: readScopes})}, []string{"INFO"}, []string{"PING"})
	if got := r.read(); got != "+OK" {
		t.Fatalf("AUTH: %s", got)
	}
	info := r.read()
	if !strings.Contains(info, "redis_version:7.0.") || !strings.Contains(info, "loading:0") || !strings.Contains(info, "# Keyspace") {
		t.Fatalf("INFO: %.300s", info)
	}
	if got := r.read(); got != "+PONG" {
		t.Fatalf("PING: %s", got)
	}
}

// TestRedisProxyReadToken: a read token reads; writes, scripts that
// write, FLUSHALL and administrative commands are refused by the gateway
// before they leave, with the scope named; EVAL_RO runs.
func TestRedisProxyReadToken(t *testing.T) {
	d := daemonWith(t)
	if err := admin(t).Set(ctx, "read:k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	c := client(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: readScopes}), 3, 0)
	if v, err := c.Get(ctx, "read:k").Result(); err != nil || v != "v" {
		t.Fatalf("GET: %q %v", v, err)
	}
	for _, cmd := range [][]any{{"SET", "read:k", "w"}, {"DEL", "read:k"}, {"EVAL", "return 1", "0"}, {"FLUSHALL"}} {
		err := c.Do(ctx, cmd...).Err()
		if err == nil || !strings.HasPrefix(err.Error(), "NOPERM") || !strings.Contains(err.Error(), "Token does not have required scope") {
			t.Errorf("%v with a read token: %v", cmd, err)
		}
	}
	if err := c.Do(ctx, "CONFIG", "SET", "maxmemory", "1").Err(); err == nil || !strings.Contains(err.Error(), "administrative commands") {
		t.Errorf("CONFIG SET: %v", err)
	}
	if v, err := c.Do(ctx, "EVAL_RO", "return redis.call('GET', KEYS[1])", "1", "read:k").Text(); err != nil || v != "v" {
		t.Errorf("EVAL_RO: %q %v", v, err)
	}
	if v, err := admin(t).Get(ctx, "read:k").Result(); err != nil || v != "v" {
		t.Fatalf("the value changed on the server: %q %v", v, err)
	}
	// The same session goes on after the refusals.
	if v, err := c.Get(ctx, "read:k").Result(); err != nil || v != "v" {
		t.Fatalf("GET after the refusals: %q %v", v, err)
	}
}

// TestRedisProxyACLWall runs a heliosd built without the classifier
// (helios_bypass_classifier, a test build): the ACL users alone refuse
// what the scopes do not allow, in the server's own words.
func TestRedisProxyACLWall(t *testing.T) {
	d := daemonWith(t, testdaemon.WithBuildTags("helios_bypass_classifier"))
	read := client(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: readScopes}), 3, 0)
	if err := read.Get(ctx, "wall:k").Err(); err != redis.Nil {
		t.Fatalf("GET by the read user: %v", err)
	}
	for _, cmd := range [][]any{{"SET", "wall:k", "1"}, {"EVAL", "return redis.call('SET', 'wall:k', '1')", "0"}, {"PUBLISH", "ch", "x"}} {
		err := read.Do(ctx, cmd...).Err()
		if err == nil || !strings.Contains(err.Error(), "NOPERM") || strings.Contains(err.Error(), "Token does not have") {
			t.Errorf("%v by the read user (the server's ACL, not the gateway): %v", cmd, err)
		}
	}
	write := client(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: writeScopes}), 3, 0)
	if err := write.Set(ctx, "wall:k", "1", 0).Err(); err != nil {
		t.Fatalf("SET by the write user: %v", err)
	}
	for _, cmd := range [][]any{{"FLUSHALL"}, {"SCRIPT", "LOAD", "return 1"}, {"CONFIG", "SET", "maxmemory", "1"}} {
		if err := write.Do(ctx, cmd...).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
			t.Errorf("%v by the write user: %v", cmd, err)
		}
	}
	owner := client(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes}), 3, 0)
	if err := owner.Do(ctx, "SCRIPT", "LOAD", "return 1").Err(); err != nil {
		t.Errorf("SCRIPT LOAD by the owner: %v", err)
	}
	for _, cmd := range [][]any{{"CONFIG", "SET", "maxmemory", "1"}, {"ACL", "SETUSER", "helios_read", "+@all"}, {"SHUTDOWN"}, {"CLIENT", "KILL", "ID", "999999"}, {"SAVE"}} {
		if err := owner.Do(ctx, cmd...).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
			t.Errorf("%v by the owner user: %v", cmd, err)
		}
	}
	if v, err := admin(t).Get(ctx, "wall:k").Result(); err != nil || v != "1" {
		t.Fatalf("wall:k on the server: %q %v", v, err)
	}
}

// TestRedisProxyPipelineOrder: a pipeline with refused commands in the
// middle (FLUSHDB needs database:delete), blocking commands that time out, and the gateway's own replies (HELIOS.WHOAMI, ACL WHOAMI) among
// the server's: every reply in its place.
func TestRedisProxyPipelineOrder(t *testing.T) {
	d := daemonWith(t)
	if err := admin(t).Set(ctx, "order:a", "A", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r := dialRaw(t, d.Redis)
	if got := r.do("AUTH", d.Mint(t, core.Claims{Account: 1, Scopes: writeScopes})); got != "+OK" {
		t.Fatal(got)
	}
	var cmds [][]string
	var want []string
	for i := 0; i < 50; i++ {
		cmds = append(cmds, []string{"GET", "order:a"}, []string{"FLUSHDB"}, []string{"ECHO", strconv.Itoa(i)},
			[]string{"ACL", "WHOAMI"}, []string{"BLPOP", "order:none", "0.01"})
		want = append(want, "$A", "-NOPERM", "$"+strconv.Itoa(i), "$default", "_")
	}
	r.send(cmds...)
	for i, w := range want {
		if got := r.read(); !strings.HasPrefix(got, w) {
			t.Fatalf("reply %d: %.80s, want %s", i, got, w)
		}
	}
}

// TestRedisProxyTransactions: MULTI/EXEC through go-redis's TxPipelined;
// a command refused while queued fails the whole transaction with
// EXECABORT, as Redis does, and nothing of it runs; WATCH aborts a
// transaction when another client changes the key.
func TestRedisProxyTransactions(t *testing.T) {
	d := daemonWith(t)
	w := client(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: writeScopes}), 3, 0)
	cmds, err := w.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "tx:a", "1", 0)
		p.Incr(ctx, "tx:a")
		p.Get(ctx, "tx:a")
		return nil
	})
	if err != nil || cmds[2].(*redis.StringCmd).Val() != "2" {
		t.Fatalf("TxPipelined: %v %v", cmds, err)
	}
	// FLUSHDB needs database:delete, which this token lacks.
	r := dialRaw(t, d.Redis)
	r.do("AUTH", d.Mint(t, core.Claims{Account: 1, Scopes: writeScopes}))
	r.send([]string{"MULTI"}, []string{"SET", "tx:b", "1"}, []string{"FLUSHDB"}, []string{"SET", "tx:c", "1"}, []string{"EXEC"}, []string{"PING"})
	for i, want := range []string{"+OK", "+QUEUED", "-NOPERM", "+QUEUED", "-EXECABORT", "+PONG"} {
		if got := r.read(); !strings.HasPrefix(got, want) {
			t.Fatalf("reply %d: %s, want %s", i, got, want)
		}
	}
	if n, err := admin(t).Exists(ctx, "tx:b", "tx:c").Result(); err != nil || n != 0 {
		t.Fatalf("the aborted transaction ran: %d %v", n, err)
	}
	// WATCH: another client changes the key between WATCH and EXEC.
	other := client(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: writeScopes}), 2, 0)
	err = w.Watch(ctx, func(tx *redis.Tx) error {
		if err := other.Set(ctx, "tx:a", "changed", 0).Err(); err != nil {
			return err
		}
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "tx:a", "mine", 0)
			return nil
		})
		return err
	}, "tx:a")
	if !errors.Is(err, redis.TxFailedErr) {
		t.Fatalf("WATCH: %v, want the transaction to fail", err)
	}
	if v, _ := admin(t).Get(ctx, "tx:a").Result(); v != "changed" {
		t.Fatalf("tx:a = %q", v)
	}
}

// TestRedisProxyPubSub: go-redis subscribers in RESP3 (push messages) and
// RESP2 receive what a publisher sends, PING works inside a subscription,
// and the RESP3 connection runs a command while subscribed.
func TestRedisProxyPubSub(t *testing.T) {
	d := daemonWith(t)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: writeScopes})
	pub := client(t, d, tok, 3, 0)
	for _, proto := range []int{3, 2} {
		c := client(t, d, tok, proto, 0)
		ps := c.Subscribe(ctx, "news")
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatalf("RESP%d subscribe: %v", proto, err)
		}
		ch := ps.Channel()
		if err := ps.Ping(ctx, "hi"); err != nil {
			t.Fatalf("RESP%d PING while subscribed: %v", proto, err)
		}
		if err := pub.Publish(ctx, "news", "hello "+strconv.Itoa(proto)).Err(); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-ch:
			if m.Channel != "news" || m.Payload != "hello "+strconv.Itoa(proto) {
				t.Fatalf("RESP%d message: %+v", proto, m)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("RESP%d: no message", proto)
		}
		ps.Close()
	}
	// RESP3: pushes and replies interleave on one connection.
	r := dialRaw(t, d.Redis)
	r.do("HELLO", "3", "AUTH", "default", tok)
	r.send([]string{"SUBSCRIBE", "a", "b"}, []string{"GET", "pubsub:none"}, []string{"HELIOS.WHOAMI"})
	got := []string{r.read(), r.read(), r.read(), r.read()}
	if !strings.HasPrefix(got[0], ">[$subscribe $a") || !strings.HasPrefix(got[1], ">[$subscribe $b") || got[2] != "_" || !strings.HasPrefix(got[3], "%{$token_id") {
		t.Fatalf("RESP3 subscribe, GET and a gateway reply: %q", got)
	}
	if err := pub.Publish(ctx, "b", "x").Err(); err != nil {
		t.Fatal(err)
	}
	if m := r.read(); m != ">[$message $b $x]" {
		t.Fatalf("push: %s", m)
	}
}

// TestRedisProxyBlocking: BLPOP times out after its timeout with a null,
// and returns at once when another client pushes.
func TestRedisProxyBlocking(t *testing.T) {
	d := daemonWith(t)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: writeScopes})
	c := client(t, d, tok, 3, 0)
	start := time.Now()
	if err := c.BLPop(ctx, time.Second, "blpop:none").Err(); err != redis.Nil || time.Since(start) < 900*time.Millisecond {
		t.Fatalf("BLPOP timeout: %v after %v", err, time.Since(start))
	}
	done := make(chan []string, 1)
	go func() {
		v, _ := c.BLPop(ctx, 10*time.Second, "blpop:list").Result()
		done <- v
	}()
	time.Sleep(200 * time.Millisecond)
	if err := client(t, d, tok, 2, 0).RPush(ctx, "blpop:list", "item").Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-done:
		if len(v) != 2 || v[1] != "item" {
			t.Fatalf("BLPOP: %v", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("BLPOP did not return after the push")
	}
}

// TestRedisProxyClientTracking: CLIENT TRACKING on a RESP3 connection
// passes through: an invalidation push reaches the client when another
// client changes a key it read. CLIENT REPLY OFF is refused clearly.
func TestRedisProxyClientTracking(t *testing.T) {
	d := daemonWith(t)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: writeScopes})
	r := dialRaw(t, d.Redis)
	if got := r.do("HELLO", "3", "AUTH", "default", tok); !strings.HasPrefix(got, "%{$server $redis") {
		t.Fatal(got)
	}
	if got := r.do("CLIENT", "TRACKING", "ON"); got != "+OK" {
		t.Fatalf("CLIENT TRACKING ON: %s", got)
	}
	r.do("GET", "tracked:k")
	if err := client(t, d, tok, 3, 0).Set(ctx, "tracked:k", "new", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got := r.read(); got != ">[$invalidate [$tracked:k]]" {
		t.Fatalf("invalidation: %s", got)
	}
	if got := r.do("CLIENT", "REPLY", "OFF"); !strings.Contains(got, "not supported through the HeliosDB gateway") {
		t.Fatalf("CLIENT REPLY OFF: %s", got)
	}
	if got := r.do("PING"); got != "+PONG" {
		t.Fatalf("PING: %s", got)
	}
}

// TestRedisProxySelect: logical databases map to registered names; a test
// token reaches only test ones (the server itself cannot tell: its ACL
// users cannot be confined to a database), and its data lands in that
// database on the server.
func TestRedisProxySelect(t *testing.T) {
	d := daemonWith(t)
	owner := d.NewUser(t)
	d.MustJSON(t, 201, "POST", "/v1/databases", owner, map[string]any{"name": "db3", "test": true}, nil)
	d.MustJSON(t, 201, "POST", "/v1/databases", owner, map[string]any{"name": "db4"}, nil)
	testTok := d.Mint(t, core.Claims{Account: 1, Type: core.TypeTest, Flags: core.FlagTestOnly, Scopes: core.AllScopes})
	c := client(t, d, testTok, 3, 3)
	if err := c.Set(ctx, "select:k", "in db3", 0).Err(); err != nil {
		t.Fatalf("SET in db3 with a test token: %v", err)
	}
	a := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: srv.Password, DB: 3})
	defer a.Close()
	if v, err := a.Get(ctx, "select:k").Result(); err != nil || v != "in db3" {
		t.Fatalf("db3 on the server: %q %v", v, err)
	}
	r := dialRaw(t, d.Redis)
	r.do("AUTH", testTok)
	if got := r.do("SELECT", "4"); !strings.Contains(got, "Test tokens can only access test databases") {
		t.Fatalf("SELECT 4 with a test token: %s", got)
	}
	if got := r.do("GET", "select:k"); !strings.Contains(got, "Test tokens can only access test databases") {
		t.Fatalf("GET on db0 with a test token: %s", got)
	}
	if got := r.do("SELECT", "3"); got != "+OK" {
		t.Fatalf("SELECT 3: %s", got)
	}
	if got := r.do("GET", "select:k"); got != "$in db3" {
		t.Fatalf("GET in db3: %s", got)
	}
	r.do("MULTI")
	if got := r.do("SELECT", "0"); !strings.Contains(got, "inside MULTI") {
		t.Fatalf("SELECT inside MULTI: %s", got)
	}
	if got := r.do("EXEC"); !strings.HasPrefix(got, "-EXECABORT") {
		t.Fatalf("EXEC after a refused SELECT: %s", got)
	}
}

// TestRedisProxyLearnsCommands: the gateway classifies commands its own
// table lacks by the server's COMMAND (ACL categories): ASKING
// (@connection) runs for a read token, which a command unknown to both
// (database:write) would not; ROLE (@admin) is refused as administrative
// for every token; a command neither knows fails closed.
func TestRedisProxyLearnsCommands(t *testing.T) {
	d := daemonWith(t)
	r := dialRaw(t, d.Redis)
	r.do("AUTH", d.Mint(t, core.Claims{Account: 1, Scopes: readScopes}))
	if got := r.do("ASKING"); strings.HasPrefix(got, "-NOPERM") {
		t.Fatalf("ASKING with a read token: %s (not learned from the server)", got)
	}
	if got := r.do("ROLE"); !strings.Contains(got, "administrative commands") {
		t.Fatalf("ROLE: %s", got)
	}
	if got := r.do("NOSUCHCOMMAND"); !strings.Contains(got, "database:write") {
		t.Fatalf("an unknown command with a read token: %s", got)
	}
	o := dialRaw(t, d.Redis)
	o.do("AUTH", d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes}))
	if got := o.do("ROLE"); !strings.Contains(got, "administrative commands") {
		t.Fatalf("ROLE with a full token: %s", got)
	}
	if got := o.do("NOSUCHCOMMAND"); !strings.HasPrefix(got, "-ERR unknown command") {
		t.Fatalf("an unknown command with a full token (the server's answer): %s", got)
	}
}

// TestRedisProxyResetOnReturn: a session that selected another database
// and subscribed hands its server connection back only after RESET: the
// next client of the pool (of one) gets the same connection in database
// 0, unsubscribed, in RESP2, logged in as its user.
func TestRedisProxyResetOnReturn(t *testing.T) {
	d := daemonWith(t, testdaemon.WithArgs("--redis-pool-size", "1"))
	owner := d.NewUser(t)
	d.MustJSON(t, 201, "POST", "/v1/databases", owner, map[string]any{"name": "db5"}, nil)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: writeScopes})
	r := dialRaw(t, d.Redis)
	r.do("HELLO", "3", "AUTH", "default", tok)
	id := r.do("CLIENT", "ID")
	r.do("SELECT", "5")
	r.do("CLIENT", "SETNAME", "dirty")
	if got := r.do("SUBSCRIBE", "reset:ch"); !strings.HasPrefix(got, ">[$subscribe") {
		t.Fatal(got)
	}
	r.c.Close()
	var next *rawConn
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		next = dialRaw(t, d.Redis)
		if got := next.do("AUTH", tok); got == "+OK" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the pool's one connection did not come back: %s", got)
		}
	}
	if got := next.do("CLIENT", "ID"); got != id {
		t.Fatalf("CLIENT ID %s, want the same server connection %s", got, id)
	}
	info := next.do("CLIENT", "INFO")
	for _, want := range []string{" db=0 ", " sub=0 ", " name= ", " resp=2", " user=helios_write "} {
		if !strings.Contains(info, want) {
			t.Errorf("the reused connection: %s lacks %q", info, want)
		}
	}
	if err := admin(t).Publish(ctx, "reset:ch", "leak").Err(); err != nil {
		t.Fatal(err)
	}
	if got := next.do("PING"); got != "+PONG" {
		t.Fatalf("PING on the reused connection: %s (a message of the previous session?)", got)
	}
}

// TestRedisProxyConcurrentClients: 20 go-redis clients pipelining at once
// each read back only their own values.
func TestRedisProxyConcurrentClients(t *testing.T) {
	d := daemonWith(t)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: writeScopes})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for w := 0; w < 20; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := redis.NewClient(&redis.Options{Addr: d.Redis, Password: tok, Protocol: 2 + w%2, MaxRetries: -1})
			defer c.Close()
			for round := 0; round < 20; round++ {
				cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
					for i := 0; i < 20; i++ {
						k := "conc:" + strconv.Itoa(w) + ":" + strconv.Itoa(i)
						p.Set(ctx, k, w*1000+round, 0)
						p.Get(ctx, k)
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
				for i := 1; i < len(cmds); i += 2 {
					if v := cmds[i].(*redis.StringCmd).Val(); v != strconv.Itoa(w*1000+round) {
						errs <- errors.New("client " + strconv.Itoa(w) + " read " + v)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
