package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runHeliosd runs the heliosd binary with args until it exits (at most 30s)
// and returns its exit code and combined output.
func runHeliosd(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, buildBinary(t, "heliosd"), args...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("heliosd %v did not exit within 30s:\n%s", args, out)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("heliosd %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// TestHeliosdSecondOnSameDataDir: a second heliosd on a data directory a
// running one holds exits non-zero naming the first one's pid.
func TestHeliosdSecondOnSameDataDir(t *testing.T) {
	d := startDaemon(t)
	code, out := runHeliosd(t, "--data-dir", d.DataDir, "--http-listen", freeAddr(t, "127.0.0.1"),
		"--pg-listen", "", "--mysql-listen", "", "--redis-listen", "", "--mongo-listen", "")
	if code == 0 {
		t.Fatalf("second heliosd exited 0:\n%s", out)
	}
	want := "another heliosd (pid " + strconv.Itoa(d.PID()) + ")"
	if !strings.Contains(out, want) || strings.Contains(out, "resource temporarily unavailable") {
		t.Fatalf("second heliosd said %q, want it to contain %q", out, want)
	}
}

// TestHeliosdJSONNotHTMLEscaped: an error body's hint reaches the client
// as written ("Bearer <token>"), not HTML-escaped (\u003ctoken\u003e).
func TestHeliosdJSONNotHTMLEscaped(t *testing.T) {
	d := startDaemon(t)
	req, err := http.NewRequest("GET", d.URL("/v1/auth/tokens"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `Authorization: Bearer <token>`) || strings.Contains(string(body), `\u003c`) {
		t.Fatalf("%d %s, want 401 with the hint Authorization: Bearer <token> unescaped", resp.StatusCode, body)
	}
}

// TestHeliosdMetricsAccess: /metrics has # HELP and # TYPE lines and needs
// no token from loopback by default; with --metrics-allow naming a network
// the scraper (127.0.0.1) is not in, it needs a metrics:read token.
func TestHeliosdMetricsAccess(t *testing.T) {
	d := startDaemon(t)
	status, body := d.Do(t, "GET", "/metrics", "", nil)
	if status != http.StatusOK || !strings.Contains(string(body), "# HELP helios_gateway_connections_total") ||
		!strings.Contains(string(body), "# TYPE helios_gateway_connections_total counter") {
		t.Fatalf("loopback, default allow: %d, want 200 with # HELP and # TYPE lines:\n%.2000s", status, body)
	}

	d = startDaemon(t, withArgs("--metrics-allow", "10.0.0.0/8"))
	bearer := d.NewUser(t)
	reader, _ := d.CreateToken(t, bearer, map[string]any{"name": "scraper", "scopes": []string{"metrics:read"}})
	dbRead, _ := d.CreateToken(t, bearer, map[string]any{"name": "db", "scopes": []string{"database:read"}})
	for _, c := range []struct {
		name, token, code string
		status            int
	}{
		{"no token", "", "AUTH_REQUIRED", http.StatusUnauthorized},
		{"database:read token", dbRead, "FORBIDDEN", http.StatusForbidden},
		{"metrics:read token", reader, "", http.StatusOK},
	} {
		status, body := d.Do(t, "GET", "/metrics", c.token, nil)
		if status != c.status {
			t.Fatalf("%s: %d %.500s, want %d", c.name, status, body, c.status)
		}
		if c.code != "" && !strings.Contains(string(body), `"code":"`+c.code+`"`) {
			t.Fatalf("%s: %s, want the error body with code %s", c.name, body, c.code)
		}
		if c.status == http.StatusOK && !strings.Contains(string(body), "# HELP ") {
			t.Fatalf("%s: no # HELP lines", c.name)
		}
	}
}

// TestHeliosdVersion: heliosd --version prints "heliosd <version>" and exits
// 0 without touching a data directory. (GOFLAGS=-buildvcs=false on the test
// machine leaves out the revision, so only the prefix and Go version are
// checked.)
func TestHeliosdVersion(t *testing.T) {
	dir := t.TempDir()
	code, out := runHeliosd(t, "--data-dir", dir+"/never", "--version")
	if code != 0 || !strings.HasPrefix(out, "heliosd ") || !strings.Contains(out, "go1.") {
		t.Fatalf("heliosd --version: exit %d, %q", code, out)
	}
	if _, err := os.Stat(dir + "/never"); !os.IsNotExist(err) {
		t.Fatalf("--version created the data directory (%v)", err)
	}
}
