package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// cli runs the helios binary with a private HOME and config directory.
type cli struct {
	t    *testing.T
	bin  string
	env  []string
	conf string
}

func newCLI(t *testing.T, d *daemon) *cli {
	home := t.TempDir()
	c := &cli{t: t, bin: buildBinary(t, "helios"), conf: filepath.Join(home, "config")}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HELIOS_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			c.env = append(c.env, kv)
		}
	}
	c.env = append(c.env, "HOME="+home, "XDG_CONFIG_HOME="+c.conf, "HELIOS_API_URL=http://"+d.HTTP)
	return c
}

// run runs helios with args, stdin and extra environment; it returns
// stdout, stderr and whether it exited 0.
func (c *cli) run(stdin string, extraEnv []string, args ...string) (string, string, bool) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = append(append([]string{}, c.env...), extraEnv...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err == nil
}

// ok runs helios and fails the test unless it exits 0.
func (c *cli) ok(stdin string, extraEnv []string, args ...string) string {
	c.t.Helper()
	out, errs, ok := c.run(stdin, extraEnv, args...)
	if !ok {
		c.t.Fatalf("helios %v failed:\n%s%s", args, out, errs)
	}
	return out
}

// fails runs helios, wants a non-zero exit and "Error: <code>" on stderr.
func (c *cli) fails(code string, stdin string, extraEnv []string, args ...string) string {
	c.t.Helper()
	out, errs, ok := c.run(stdin, extraEnv, args...)
	if ok || !strings.Contains(errs, "Error: "+code) {
		c.t.Fatalf("helios %v: exit ok=%v, want Error: %s:\n%s%s", args, ok, code, out, errs)
	}
	return errs
}

var tokenRE = regexp.MustCompile(`^hdb_(live|test|svc)_[0-9A-Za-z]{79}$`)

// TestCLI drives every helios command against the real heliosd, including
// the guide's rotation recipe.
func TestCLI(t *testing.T) {
	d := startDaemon(t)
	c := newCLI(t, d)
	email := "cli-" + time.Now().Format("150405.000000") + "@example.com"
	const pw = "correct-horse-battery-staple"

	if out := c.ok(pw+"\n", nil, "auth", "signup", "--email", email); !strings.Contains(out, "Account created for "+email) {
		t.Fatalf("signup: %s", out)
	}
	c.fails("", pw+"\n", nil, "auth", "signup", "--email", email) // duplicate: the server's code
	c.fails("", "wrong-password\n", nil, "auth", "login", "--email", email)
	c.fails("", "", nil, "auth", "token") // not logged in

	// Login reads email and password from two lines of stdin when not a terminal.
	if out := c.ok(email+"\n"+pw+"\n", nil, "auth", "login"); !strings.Contains(out, "Logged in as "+email) {
		t.Fatalf("login: %s", out)
	}
	credPath := filepath.Join(c.conf, "helios", "credentials.json")
	st, err := os.Stat(credPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", err, st)
	}
	session := strings.TrimSpace(c.ok("", nil, "auth", "token"))
	if !tokenRE.MatchString(session) || !strings.HasPrefix(session, "hdb_live_") {
		t.Fatalf("auth token printed %q", session)
	}
	status := c.ok("", nil, "auth", "status")
	for _, want := range []string{email, "Type:       live", "Scopes:     *", "Time left:", "tok_"} {
		if !strings.Contains(status, want) {
			t.Errorf("status lacks %q:\n%s", want, status)
		}
	}
	var js map[string]any
	if err := json.Unmarshal([]byte(c.ok("", nil, "auth", "status", "--output=json")), &js); err != nil || js["type"] != "live" {
		t.Errorf("status json: %v %v", js, err)
	}

	// Tokens: create two generations of an app token.
	v1 := strings.TrimSpace(c.ok("", nil, "token", "create", "--name", "app-v1", "--scopes", "database:read,database:write"))
	if !tokenRE.MatchString(v1) {
		t.Fatalf("token create printed %q", v1)
	}
	c.fails("", "", nil, "token", "create", "--name", "bad", "--scopes", "database:fly")
	svc := c.ok("", nil, "token", "create", "--name", "ci-cd", "--type", "service", "--scopes", "branch:*", "--expires-in-days", "90", "--output=json")
	var created map[string]any
	if err := json.Unmarshal([]byte(svc), &created); err != nil || !strings.HasPrefix(created["token"].(string), "hdb_svc_") {
		t.Fatalf("service token json: %s", svc)
	}
	// A token without database:read cannot run the identity query; status
	// still reports it valid, with its type.
	if out := c.ok("", []string{"HELIOS_TOKEN=" + created["token"].(string)}, "auth", "status"); !strings.Contains(out, "Type:       service") {
		t.Errorf("status of a branch-only service token: %s", out)
	}

	// The guide's rotation recipe, verbatim through a shell when jq is here.
	var v2 string
	if _, err := exec.LookPath("jq"); err == nil {
		cmd := exec.Command("bash", "-c", `set -o pipefail; "$HELIOS_BIN" token create --name "app-v2" --output=json | jq -r '.token'`)
		cmd.Env = append(append([]string{}, c.env...), "HELIOS_BIN="+c.bin)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("rotation step 1: %v %s", err, out)
		}
		v2 = strings.TrimSpace(string(out))
	} else {
		var r map[string]any
		if err := json.Unmarshal([]byte(c.ok("", nil, "token", "create", "--name", "app-v2", "--output=json")), &r); err != nil {
			t.Fatal(err)
		}
		v2, _ = r["token"].(string)
	}
	if !tokenRE.MatchString(v2) {
		t.Fatalf("app-v2 token %q", v2)
	}
	// Verify the new token works: over REST (status) and over MongoDB.
	if out := c.ok("", []string{"HELIOS_TOKEN=" + v2}, "auth", "status"); !strings.Contains(out, "HELIOS_TOKEN") {
		t.Fatalf("status with app-v2: %s", out)
	}
	if err := mongoConnect(t, mongoURI(d, v2, "")).Ping(mongoCtx(t), nil); err != nil {
		t.Fatalf("app-v2 over MongoDB: %v", err)
	}
	list := c.ok("", nil, "token", "list")
	for _, n := range []string{"app-v1", "app-v2", "ci-cd", "NAME"} {
		if !strings.Contains(list, n) {
			t.Errorf("token list lacks %s:\n%s", n, list)
		}
	}
	var lj struct{ Tokens []map[string]any }
	if err := json.Unmarshal([]byte(c.ok("", nil, "token", "list", "--output=json")), &lj); err != nil || len(lj.Tokens) < 3 {
		t.Fatalf("token list json: %v %v", lj, err)
	}
	// Revoke the old one by name.
	if out := c.ok("", nil, "token", "revoke", "app-v1"); !strings.Contains(out, `Revoked token "app-v1" (tok_`) {
		t.Fatalf("revoke: %s", out)
	}
	errs := c.fails("AUTH_REQUIRED", "", []string{"HELIOS_TOKEN=" + v1}, "auth", "status")
	if !strings.Contains(errs, "revoked") {
		t.Errorf("revoked token status: %s", errs)
	}
	if strings.Contains(errs, v1) {
		t.Error("the CLI printed the token in an error")
	}
	c.ok("", []string{"HELIOS_TOKEN=" + v2}, "auth", "status")
	c.fails("", "", nil, "token", "revoke", "no-such-token")

	// HTTPS with the daemon's self-signed certificate: --ca-cert trusts it,
	// and without it the certificate is refused.
	https := []string{"HELIOS_TOKEN=" + v2, "HELIOS_API_URL=https://" + d.HTTP}
	c.ok("", https, "auth", "status", "--ca-cert", d.CACert)
	c.ok("", append(https, "HELIOS_CA_CERT="+d.CACert), "auth", "status")
	// Without it, the error names the flag that fixes it.
	if errs := c.fails("TLS to the HeliosDB API", "", https, "auth", "status"); !strings.Contains(errs, "Hint: trust heliosd's CA certificate with --ca-cert FILE") {
		t.Errorf("an unknown authority must point at --ca-cert:\n%s", errs)
	}

	// HELIOS_TOKEN overrides the saved token.
	if out := strings.TrimSpace(c.ok("", []string{"HELIOS_TOKEN=" + v2}, "auth", "token")); out != v2 {
		t.Fatalf("HELIOS_TOKEN override: %q", out)
	}

	// Refresh replaces the saved token.
	c.ok("", nil, "auth", "refresh")
	refreshed := strings.TrimSpace(c.ok("", nil, "auth", "token"))
	if refreshed == session || !tokenRE.MatchString(refreshed) {
		t.Fatalf("refresh kept %q", refreshed)
	}
	c.ok("", nil, "auth", "status")

	// Logout invalidates the token and forgets it.
	c.ok("", nil, "auth", "logout")
	if _, err := os.Stat(credPath); !os.IsNotExist(err) {
		t.Fatalf("credentials still there after logout: %v", err)
	}
	c.fails("", "", nil, "auth", "token")
	c.fails("AUTH_REQUIRED", "", []string{"HELIOS_TOKEN=" + refreshed}, "auth", "status")

	// Logout everywhere revokes every token of the account.
	c.ok(pw+"\n", nil, "auth", "login", "--email", email)
	t3 := strings.TrimSpace(c.ok("", nil, "token", "create", "--name", "app-v3"))
	c.ok("", []string{"HELIOS_TOKEN=" + t3}, "auth", "status")
	if out := c.ok("", nil, "auth", "logout", "--all"); !strings.Contains(out, "Logged out everywhere") {
		t.Fatalf("logout --all: %s", out)
	}
	c.fails("AUTH_REQUIRED", "", []string{"HELIOS_TOKEN=" + t3}, "auth", "status")
	c.fails("", "", []string{"HELIOS_TOKEN=" + v2}, "token", "create") // --name is required

	// An expired token: the server's AUTH_EXPIRED, exit non-zero.
	c.fails("AUTH_EXPIRED", "", []string{"HELIOS_TOKEN=" + d.ExpiredToken(t)}, "auth", "status")
	// A server that is not there: a clear error, exit non-zero.
	c.fails("cannot reach", "", []string{"HELIOS_TOKEN=" + v2}, "auth", "status", "--api-url", "http://127.0.0.1:1")
}
