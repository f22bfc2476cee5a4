package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// storeCredentials writes tok as the CLI's saved login (the format of
// cmd/helios/creds.go), as helios auth login would.
func (c *cli) storeCredentials(d *daemon, email, tok string, expires time.Time) {
	c.t.Helper()
	p := filepath.Join(c.conf, "helios", "credentials.json")
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		c.t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"api_url": "http://" + d.HTTP, "email": email, "token": tok, "expires_at": expires})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		c.t.Fatal(err)
	}
}

// TestCLIHintsLeadSomewhere: every hint names a helios command that can
// succeed in the state the error reports, never a REST endpoint.
func TestCLIHintsLeadSomewhere(t *testing.T) {
	d := startDaemon(t)
	c := newCLI(t, d)

	// An expired saved token: auth token refuses to print it, and refresh
	// (which the server refuses for an expired token) points at login.
	expired := d.ExpiredToken(t)
	c.storeCredentials(d, "x@example.com", expired, time.Now().Add(-time.Minute))
	out, errs, ok := c.run("", nil, "auth", "token")
	if ok || strings.Contains(out, expired) || !strings.Contains(errs, "log in again: helios auth login") {
		t.Errorf("auth token with an expired saved token: ok=%v\n%s%s", ok, out, errs)
	}
	errs = c.fails("AUTH_EXPIRED", "", nil, "auth", "refresh")
	if !strings.Contains(errs, "log in again: helios auth login") || strings.Contains(errs, "helios auth refresh") {
		t.Errorf("auth refresh with an expired token: %s", errs)
	}
	// The same token in HELIOS_TOKEN.
	_, errs, ok = c.run("", []string{"HELIOS_TOKEN=" + expired}, "auth", "token")
	if ok || !strings.Contains(errs, "HELIOS_TOKEN") || !strings.Contains(errs, "helios auth login") {
		t.Errorf("auth token with an expired HELIOS_TOKEN: ok=%v %s", ok, errs)
	}

	// A taken email: log in with the CLI, not with a REST request.
	email := "hints-" + time.Now().Format("150405.000000") + "@example.com"
	const pw = "correct-horse-battery-staple"
	c.ok(pw+"\n", nil, "auth", "signup", "--email", email)
	errs = c.fails("EMAIL_TAKEN", pw+"\n", nil, "auth", "signup", "--email", email)
	if !strings.Contains(errs, "helios auth login") || strings.Contains(errs, "/v1/") {
		t.Errorf("EMAIL_TAKEN: %s", errs)
	}

	// Refreshing a service token: how to rotate it, not "create a token
	// with the required scope".
	c.ok(pw+"\n", nil, "auth", "login", "--email", email)
	svc := strings.TrimSpace(c.ok("", nil, "token", "create", "--name", "svc", "--type", "service", "--scopes", "database:read"))
	errs = c.fails("FORBIDDEN", "", []string{"HELIOS_TOKEN=" + svc}, "auth", "refresh")
	if !strings.Contains(errs, "helios token create") || !strings.Contains(errs, "helios token revoke") ||
		strings.Contains(errs, "required scope") || strings.Contains(errs, "/v1/") {
		t.Errorf("refreshing a service token: %s", errs)
	}
	// A scoped token on an account endpoint: no REST endpoint in the text.
	errs = c.fails("FORBIDDEN", "", []string{"HELIOS_TOKEN=" + svc}, "token", "list")
	if strings.Contains(errs, "/v1/") || !strings.Contains(errs, "helios auth login") {
		t.Errorf("token list with a scoped token: %s", errs)
	}
}
