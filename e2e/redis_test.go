package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heliosdb/auth/core"
)

// apiServes reports whether the daemon serves the issuer's token API.
func apiServes(d *daemon) bool {
	resp, err := http.Post(d.URL("/v1/auth/login"), "application/json", strings.NewReader(`{}`))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode != http.StatusNotFound
}

// scopedToken returns a live token with the given scopes (nil: every scope):
// from the issuer's API when it runs, else minted with the daemon's keyring.
func scopedToken(t *testing.T, d *daemon, scopes ...string) string {
	t.Helper()
	if apiServes(d) {
		bearer := d.NewUser(t)
		if scopes == nil {
			return bearer
		}
		tok, _ := d.CreateToken(t, bearer, map[string]any{"name": "e2e-scoped", "scopes": scopes})
		return tok
	}
	set := core.AllScopes
	if scopes != nil {
		var err error
		if set, err = core.ParseScopes(scopes); err != nil {
			t.Fatal(err)
		}
	}
	return d.Mint(t, core.Claims{Account: 1, Scopes: set})
}

// revokedToken returns a token created through the API and then revoked,
// once the gateway refuses it (checked with accepted); it skips the test
// when the issuer's API is not served.
func revokedToken(t *testing.T, d *daemon, accepted func(tok string) bool) string {
	t.Helper()
	bearer := d.NewUser(t)
	tok, id := d.CreateToken(t, bearer, map[string]any{"name": "e2e-revoked", "scopes": []string{"*"}})
	if !accepted(tok) {
		t.Fatal("a fresh token was refused")
	}
	d.Revoke(t, bearer, id)
	for deadline := time.Now().Add(10 * time.Second); accepted(tok); {
		if time.Now().After(deadline) {
			t.Fatal("the revoked token is still accepted after 10s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return tok
}

// redisCLI runs redis-cli against addr with args and returns its combined
// output.
func redisCLI(t *testing.T, addr string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatal("redis-cli is not installed: run scripts/install-deps.sh (make test does)")
	}
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "redis-cli", append([]string{"-h", host, "-p", port, "--no-auth-warning"}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out))
}

// checkAuthMetrics checks that /metrics counts at least one authentication
// of each outcome for protocol, and that the daemon logged no token.
func checkAuthMetrics(t *testing.T, d *daemon, protocol string, toks []string, outcomes ...string) {
	t.Helper()
	for _, tok := range toks {
		if strings.Contains(d.Logs(), tok) || strings.Contains(d.Logs(), tok[9:30]) {
			t.Fatal("the daemon logged a token")
		}
	}
	status, body := d.Do(t, "GET", "/metrics", "", nil)
	if status != http.StatusOK {
		t.Logf("/metrics: status %d: not checked", status)
		return
	}
	for _, o := range outcomes {
		re := regexp.MustCompile(`(?m)^helios_gateway_auth_total\{protocol="` + protocol + `",outcome="` + o + `"\} [1-9]`)
		if !re.Match(body) {
			t.Errorf("/metrics counts no %s authentication with outcome %s", protocol, o)
		}
	}
}

func redisClient(d *daemon, password string, tlsOn bool) *redis.Client {
	opt := &redis.Options{Addr: d.Redis, Password: password, DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, MaxRetries: -1}
	if tlsOn {
		opt.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	}
	return redis.NewClient(opt)
}

func TestRedisCLI(t *testing.T) {
	d := startDaemon(t)
	tok := scopedToken(t, d)
	for name, args := range map[string][]string{
		"-a":          {"-a", tok},
		"--user/pass": {"--user", "default", "--pass", tok},
		"--tls":       {"--tls", "--insecure", "-a", tok},
		"-3":          {"-3", "-a", tok},
	} {
		if out := redisCLI(t, d.Redis, append(args, "PING")...); out != "PONG" {
			t.Errorf("%s PING: %q", name, out)
		}
	}
	out := redisCLI(t, d.Redis, "--tls", "--insecure", "-3", "-a", tok, "HELIOS.WHOAMI")
	if !strings.Contains(out, "token_id") || !strings.Contains(out, "tok_") || !strings.Contains(out, "expires_at") {
		t.Errorf("HELIOS.WHOAMI: %q", out)
	}
	out = redisCLI(t, d.Redis, "-a", tok, "GET", "k")
	if !strings.Contains(out, "no upstream database is configured") {
		t.Errorf("GET: %q", out)
	}
	if out := redisCLI(t, d.Redis, "PING"); !strings.Contains(out, "NOAUTH Authentication required.") {
		t.Errorf("PING without a token: %q", out)
	}
	for name, bad := range map[string]string{"tampered": tamper(tok), "expired": d.ExpiredToken(t)} {
		out := redisCLI(t, d.Redis, "-a", bad, "PING")
		if !strings.Contains(out, "WRONGPASS invalid username-password pair or user is disabled.") || strings.Contains(out, "PONG") {
			t.Errorf("%s token: %q", name, out)
		}
		if strings.Contains(out, bad) {
			t.Errorf("%s token echoed in %q", name, out)
		}
	}
	if out := redisCLI(t, d.Redis, "-a", d.ExpiredToken(t), "PING"); !strings.Contains(out, core.MsgExpired) {
		t.Errorf("expired reason: %q", out)
	}
	if out := redisCLI(t, d.Redis, "--user", "alice", "--pass", tok, "PING"); !strings.Contains(out, "WRONGPASS") {
		t.Errorf("user alice: %q", out)
	}
}

func TestRedisGoRedis(t *testing.T) {
	d := startDaemon(t)
	ctx := context.Background()
	tok := scopedToken(t, d)
	for _, tlsOn := range []bool{false, true} {
		c := redisClient(d, tok, tlsOn)
		if err := c.Ping(ctx).Err(); err != nil {
			t.Fatalf("tls=%v PING: %v", tlsOn, err)
		}
		who, err := c.Do(ctx, "HELIOS.WHOAMI").Result()
		if m, ok := who.(map[any]any); err != nil || !ok || m["type"] != "live" {
			t.Fatalf("tls=%v WHOAMI: %#v %v", tlsOn, who, err)
		}
		if err := c.Get(ctx, "k").Err(); err == nil || !strings.Contains(err.Error(), "no upstream database is configured") {
			t.Fatalf("tls=%v GET: %v", tlsOn, err)
		}
		// The pool reuses the authenticated connection.
		for i := 0; i < 20; i++ {
			if err := c.Ping(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
	}
	ro := redisClient(d, scopedToken(t, d, "database:read"), false)
	defer ro.Close()
	err := ro.Set(ctx, "k", "v", 0).Err()
	if err == nil || !strings.HasPrefix(err.Error(), "NOPERM User default has no permissions to run the 'set' command") || !strings.Contains(err.Error(), "database:write") {
		t.Fatalf("SET with a read-only token: %v", err)
	}
	expired := d.ExpiredToken(t)
	for name, bad := range map[string]string{"tampered": tamper(tok), "expired": expired} {
		c := redisClient(d, bad, false)
		err := c.Ping(ctx).Err()
		c.Close()
		if err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Fatalf("%s token: %v", name, err)
		}
	}
	checkAuthMetrics(t, d, "redis", []string{tok, expired}, "ok", "invalid", "expired", "forbidden")
}

func TestRedisRevokedToken(t *testing.T) {
	d := startDaemon(t)
	ctx := context.Background()
	accepted := func(tok string) bool {
		c := redisClient(d, tok, false)
		defer c.Close()
		return c.Ping(ctx).Err() == nil
	}
	tok := revokedToken(t, d, accepted)
	c := redisClient(d, tok, false)
	defer c.Close()
	if err := c.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") || !strings.Contains(err.Error(), core.MsgRevoked) {
		t.Fatalf("revoked token: %v", err)
	}
}

func TestRedisPlaintextRefused(t *testing.T) {
	// Loopback is not in the allowed networks here, so 127.0.0.1 counts as
	// remote: a plaintext AUTH is refused and the connection closed.
	d := startDaemon(t, withArgs("--plaintext-allow", "192.0.2.0/24"))
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes}) // the API is TLS-only here too
	out := redisCLI(t, d.Redis, "-a", tok, "PING")
	if !strings.Contains(out, "DENIED") || !strings.Contains(out, "TLS") || strings.Contains(out, "PONG") {
		t.Fatalf("plaintext: %q", out)
	}
	if out := redisCLI(t, d.Redis, "--tls", "--insecure", "-a", tok, "PING"); out != "PONG" {
		t.Fatalf("TLS: %q", out)
	}
	if !strings.Contains(d.Logs(), "authentication refused") || !strings.Contains(d.Logs(), "protocol=redis") || strings.Contains(d.Logs(), tok[9:30]) {
		t.Fatalf("the refusal is not logged (or the token is):\n%s", d.Logs())
	}
}

func TestRedisBadInput(t *testing.T) {
	d := startDaemon(t)
	junk := make([]byte, 4096)
	rand.Read(junk)
	for name, in := range map[string][]byte{
		"random bytes":     junk,
		"1 GiB bulk":       []byte("*2\r\n$4\r\nAUTH\r\n$1073741824\r\n"),
		"huge multibulk":   []byte("*2147483648\r\n"),
		"bad bulk header":  []byte("*1\r\n:1\r\n"),
		"truncated AUTH":   []byte("*2\r\n$4\r\nAUTH\r\n$88\r\nhdb_live_"),
		"unbalanced quote": []byte("AUTH \"abc\r\n"),
	} {
		c, err := net.DialTimeout("tcp", d.Redis, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(15 * time.Second))
		c.Write(in)
		if name == "truncated AUTH" {
			c.Close() // the client goes away mid-command
			continue
		}
		r := bufio.NewReader(c)
		var got []string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				break // closed
			}
			got = append(got, line)
			if strings.HasPrefix(line, "-ERR Protocol error") {
				// Redis closes after a protocol error: so must we.
				if _, err := r.ReadByte(); err == nil {
					t.Errorf("%s: connection still open after a protocol error", name)
				}
				break
			}
		}
		c.Close()
		if name != "random bytes" && (len(got) == 0 || !strings.HasPrefix(got[len(got)-1], "-ERR Protocol error")) {
			t.Errorf("%s: %q", name, got)
		}
	}
	c := redisClient(d, scopedToken(t, d), false)
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("the next client: %v", err)
	}
}

// TestRedisCLIOpenSessionRevoked: an open redis-cli session (its REPL fed
// line by line) whose token is revoked through the REST API gets the
// revocation as the reply to its next command, within a second.
func TestRedisCLIOpenSessionRevoked(t *testing.T) {
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatal("redis-cli is not installed: run scripts/install-deps.sh (make test does)")
	}
	d := startDaemon(t)
	bearer := d.NewUser(t)
	tok, id := d.CreateToken(t, bearer, map[string]any{"name": "redis-cli-session"})
	host, port, _ := net.SplitHostPort(d.Redis)
	cli := exec.Command("redis-cli", "-h", host, "-p", port, "--no-auth-warning", "-a", tok)
	stdin, err := cli.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cli.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cli.Stderr = cli.Stdout
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = cli.Process.Kill(); _ = cli.Wait() }()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(within time.Duration) string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("redis-cli exited")
			}
			return l
		case <-time.After(within):
			t.Fatalf("no reply from redis-cli within %v", within)
		}
		return ""
	}
	io.WriteString(stdin, "PING\n")
	if l := next(10 * time.Second); l != "PONG" {
		t.Fatalf("PING before the revoke: %q", l)
	}
	d.Revoke(t, bearer, id)
	revoked := time.Now()
	io.WriteString(stdin, "PING\n")
	l := next(time.Second)
	if !strings.Contains(l, "NOAUTH") || !strings.Contains(l, core.MsgRevoked) || time.Since(revoked) > time.Second {
		t.Fatalf("PING after the revoke (%v): %q", time.Since(revoked), l)
	}
	if strings.Contains(l, tok[9:30]) {
		t.Fatal("the reply quotes the token")
	}
}
