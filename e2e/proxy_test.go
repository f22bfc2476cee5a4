package e2e

import (
	"bufio"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/netio/proxyproto/proxyprototest"
)

// TestProxyProtocolAllowlist: behind a load balancer (every loopback
// address configured as one with --proxy-from), the PROXY protocol v2
// header names the client, and both the token's IP allowlist and the
// plaintext rule are judged by that address, not the balancer's.
func TestProxyProtocolAllowlist(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, withArgs("--proxy-from=127.0.0.0/8", "--plaintext-allow=127.0.0.0/8,203.0.113.0/24,10.0.0.0/8,198.51.100.0/24"))
	live := d.NewUser(t)
	tok, _ := d.CreateToken(t, live, map[string]any{"name": "behind-lb", "scopes": []string{"database:read"}, "allowed_ips": []string{"203.0.113.50", "10.0.0.0/8"}})

	redisAuthPing := func(t *testing.T, header []byte) string {
		t.Helper()
		c, err := net.Dial("tcp", d.Redis)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		req := append([]byte(nil), header...)
		req = append(req, "*2\r\n$4\r\nAUTH\r\n$"+strconv.Itoa(len(tok))+"\r\n"+tok+"\r\n*1\r\n$4\r\nPING\r\n"...)
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(c)
		var out []string
		for i := 0; i < 2; i++ {
			line, err := r.ReadString('\n')
			if err != nil {
				break
			}
			out = append(out, strings.TrimSpace(line))
		}
		return strings.Join(out, " | ")
	}
	dst := netip.MustParseAddrPort(d.Redis)
	for _, c := range []struct {
		src  string
		want string
	}{
		{"203.0.113.50:40000", "+OK | +PONG"},
		{"10.9.8.7:40000", "+OK | +PONG"},
		{"198.51.100.1:40000", "-WRONGPASS"},
		{"192.0.2.9:40000", "-DENIED"}, // a client that must use TLS, even behind the balancer
	} {
		got := redisAuthPing(t, proxyprototest.Append(nil, netip.MustParseAddrPort(c.src), dst))
		if !strings.HasPrefix(got, c.want) {
			t.Errorf("client %s behind the balancer: %q, want %q", c.src, got, c.want)
		}
	}
	// From a balancer's network the header is required: a bare connection
	// (which would otherwise be judged by the balancer's own address) is refused.
	if got := redisAuthPing(t, nil); strings.Contains(got, "PONG") {
		t.Fatalf("connection without a PROXY header from a balancer network was served: %q", got)
	}
}
