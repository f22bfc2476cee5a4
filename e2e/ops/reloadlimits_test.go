package ops

import (
	"bufio"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/internal/testdaemon"
)

// redisReplies opens n connections to the Redis listener at addr, then
// sends PING on each and returns the first reply line of each ("" when the
// connection was closed without one).
func redisReplies(t *testing.T, addr string, n int) []string {
	t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	time.Sleep(100 * time.Millisecond)
	out := make([]string, n)
	for i, c := range conns {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("PING\r\n")); err != nil {
			continue
		}
		line, _ := bufio.NewReader(c).ReadString('\n')
		out[i] = strings.TrimSpace(line)
	}
	return out
}

// settledReplies is redisReplies until want accepts the replies, for at
// most three seconds: connections the test closed a moment before (its own
// earlier checks) still count against a per-address limit until the
// gateway has seen them close. A limit not in force never settles.
func settledReplies(t *testing.T, addr string, n int, want func([]string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		r := redisReplies(t, addr, n)
		if want(r) || time.Now().After(deadline) {
			return r
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func count(list []string, sub string) int {
	n := 0
	for _, s := range list {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

// TestReloadGatewayLimits: max_conns_per_ip and proxy_from changed in the
// file take effect on the gateway's event loops at heliosd reload — three
// connections from one address get one refusal at a limit of 2, none
// before; with loopback in proxy_from a connection without a PROXY header
// is not served, and is again once it is removed.
func TestReloadGatewayLimits(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "heliosd.toml")
	write(t, conf, "max_conns_per_ip = 1000\n")
	d := testdaemon.Start(t, testdaemon.WithArgs("--config", conf))
	const refused = "max number of clients reached"
	if r := redisReplies(t, d.Redis, 3); count(r, refused) != 0 || count(r, "NOAUTH") != 3 {
		t.Fatalf("before the reload: %q", r)
	}
	reload := func(text string) {
		t.Helper()
		write(t, conf, text)
		if out, err := reloadCmd(t, "--data-dir", d.DataDir); err != nil {
			t.Fatalf("heliosd reload: %v\n%s", err, out)
		}
	}
	reload("max_conns_per_ip = 2\n")
	oneRefused := func(r []string) bool { return count(r, refused) == 1 && count(r, "NOAUTH") == 2 }
	if r := settledReplies(t, d.Redis, 3, oneRefused); !oneRefused(r) {
		t.Fatalf("three connections at max_conns_per_ip 2: %q, want one refused", r)
	}
	reload("max_conns_per_ip = 1000\nproxy_from = [\"127.0.0.0/8\"]\n")
	if r := redisReplies(t, d.Redis, 1); count(r, "NOAUTH") != 0 {
		t.Fatalf("no PROXY header from a proxy_from network: %q, want not served", r)
	}
	reload("max_conns_per_ip = 1000\n")
	if r := redisReplies(t, d.Redis, 3); count(r, "NOAUTH") != 3 {
		t.Fatalf("after proxy_from was emptied: %q", r)
	}
}
