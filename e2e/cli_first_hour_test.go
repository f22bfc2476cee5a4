package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
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

// savedToken reads the token in the CLI's credentials file and checks the
// file's mode.
func (c *cli) savedToken() string {
	c.t.Helper()
	p := filepath.Join(c.conf, "helios", "credentials.json")
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		c.t.Fatalf("credentials file: %v %v", err, st)
	}
	b, _ := os.ReadFile(p)
	var cr struct{ Token string }
	if err := json.Unmarshal(b, &cr); err != nil || cr.Token == "" {
		c.t.Fatalf("credentials file: %s %v", b, err)
	}
	return cr.Token
}

// sleepUntil sleeps until t (plus a second of margin for whole-second
// token times).
func sleepUntil(t time.Time) { time.Sleep(time.Until(t) + time.Second) }

// TestCLIAutoRefresh: with one-minute login tokens, helios auth token
// --min-valid refreshes the saved token when it has less left, and any
// command that uses the saved token refreshes it in the last quarter of its
// lifetime, saying so once on stderr; the new token works.
func TestCLIAutoRefresh(t *testing.T) {
	d := startDaemon(t, withArgs("--live-token-lifetime=1m"))
	c := newCLI(t, d)
	email := "refresh-" + time.Now().Format("150405.000000") + "@example.com"
	const pw = "correct-horse-battery-staple"
	c.ok(pw+"\n", nil, "auth", "signup", "--email", email)
	c.ok(pw+"\n", nil, "auth", "login", "--email", email)
	first := c.savedToken()
	u, err := core.DecodeUnverified(first)
	if err != nil || u.Claims.Expires().Sub(u.Claims.Issued()) != time.Minute {
		t.Fatalf("login token: %+v %v", u, err)
	}

	// Fresh: printed as is.
	out, errs, ok := c.run("", nil, "auth", "token", "--min-valid", "0")
	if !ok || strings.TrimSpace(out) != first || errs != "" {
		t.Fatalf("auth token --min-valid 0: ok=%v %q %q", ok, out, errs)
	}
	// A minimum longer than the token's whole lifetime cannot be met.
	if _, errs, ok := c.run("", nil, "auth", "token"); ok || !strings.Contains(errs, "--min-valid") {
		t.Fatalf("auth token (1h) with a 1m token: ok=%v %s", ok, errs)
	}
	if c.savedToken() != first {
		t.Fatal("an unmeetable --min-valid refreshed the token")
	}

	// Less than --min-valid left (but not yet the last quarter): refreshed.
	sleepUntil(u.Claims.Expires().Add(-50 * time.Second))
	out, errs, ok = c.run("", nil, "auth", "token", "--min-valid", "50s")
	second := strings.TrimSpace(out)
	if !ok || second == first || !tokenRE.MatchString(second) || strings.Count(errs, "Refreshed the saved token") != 1 {
		t.Fatalf("auth token --min-valid 50s: ok=%v %q %q", ok, out, errs)
	}
	if c.savedToken() != second {
		t.Fatal("the refreshed token was not saved")
	}
	u2, _ := core.DecodeUnverified(second)
	if left := time.Until(u2.Claims.Expires()); left < 50*time.Second {
		t.Fatalf("refreshed token has %s left", left)
	}

	// The last quarter: token list refreshes first, once.
	sleepUntil(u2.Claims.Expires().Add(-15 * time.Second))
	out, errs, ok = c.run("", nil, "token", "list")
	if !ok || !strings.Contains(out, "CLI Token") || strings.Count(errs, "Refreshed the saved token") != 1 {
		t.Fatalf("token list in the last quarter: ok=%v %q %q", ok, out, errs)
	}
	third := c.savedToken()
	if third == second {
		t.Fatal("token list did not refresh the saved token")
	}
	out, errs, ok = c.run("", nil, "auth", "status")
	if !ok || strings.Contains(errs, "Refreshed") || !strings.Contains(out, "Time left:") {
		t.Fatalf("status after the refresh: ok=%v %q %q", ok, out, errs)
	}
	if c.savedToken() != third {
		t.Fatal("a fresh token was refreshed again")
	}
	// HELIOS_TOKEN is never refreshed behind the user's back.
	if _, errs, _ := c.run("", []string{"HELIOS_TOKEN=" + third}, "auth", "status"); strings.Contains(errs, "Refreshed") {
		t.Fatalf("HELIOS_TOKEN refreshed: %s", errs)
	}
}

// TestCLILoginNamesAndReplacesItsToken: helios auth login keeps a token
// named "CLI Token (<hostname>)" (the guide's "CLI Token"), leaves no
// "login" session token behind, and logging in again revokes the token
// the previous login saved, so logins don't pile up tokens.
func TestCLILoginNamesAndReplacesItsToken(t *testing.T) {
	d := startDaemon(t)
	c := newCLI(t, d)
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	name := "CLI Token (" + host + ")"
	email := "login-" + time.Now().Format("150405.000000") + "@example.com"
	const pw = "correct-horse-battery-staple"
	c.ok(pw+"\n", nil, "auth", "signup", "--email", email)
	if out := c.ok(pw+"\n", nil, "auth", "login", "--email", email); !strings.Contains(out, name) {
		t.Errorf("login output lacks %q: %s", name, out)
	}
	first := c.savedToken()
	if !strings.HasPrefix(first, "hdb_live_") {
		t.Fatalf("saved %q", first)
	}
	c.ok(pw+"\n", nil, "auth", "login", "--email", email)
	second := c.savedToken()
	if second == first {
		t.Fatal("the second login kept the first token")
	}
	// The first login's token no longer works; the second's does, with
	// every scope.
	c.fails("AUTH_REQUIRED", "", []string{"HELIOS_TOKEN=" + first}, "auth", "status")
	if st := c.ok("", nil, "auth", "status"); !strings.Contains(st, "Scopes:     *") {
		t.Errorf("status: %s", st)
	}
	var list struct {
		Tokens []struct{ ID, Name string }
	}
	if err := json.Unmarshal([]byte(c.ok("", nil, "token", "list", "--output=json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Tokens) != 1 || list.Tokens[0].Name != name {
		t.Fatalf("after two logins the account holds %+v, want one %q", list.Tokens, name)
	}
	u, _ := core.DecodeUnverified(second)
	if list.Tokens[0].ID != u.Claims.ID.String() {
		t.Fatalf("listed %s, saved %s", list.Tokens[0].ID, u.Claims.ID)
	}
}

// TestCLITokenInspect: helios token inspect decodes a token with no key and
// no network (the API URL points nowhere) and checks its public checksum;
// helios auth status shows the id, expiry and scopes of tokens the identity
// query cannot describe.
func TestCLITokenInspect(t *testing.T) {
	d := startDaemon(t)
	c := newCLI(t, d)
	now := time.Now().Unix()
	minted := d.Mint(t, core.Claims{Type: core.TypeService, Account: 77, IssuedAt: now, ExpiresAt: now + 90*86400,
		Scopes: core.ScopeSet(0).With(core.ScopeDatabaseRead), Flags: core.FlagIPPolicy})
	u, err := core.DecodeUnverified(minted)
	if err != nil {
		t.Fatal(err)
	}
	nowhere := []string{"HELIOS_API_URL=http://127.0.0.1:1"}
	want := []string{"Type:       service", "ID:         " + u.Claims.ID.String(), "Account:    77",
		"Expires:    " + u.Claims.Expires().Format(time.RFC3339), "Scopes:     database:read",
		"Key ID:     " + strconv.Itoa(int(u.Claims.KeyID)), "Flags:      ip-policy", "Checksum:   valid"}
	for _, args := range [][]string{{"token", "inspect", minted}, {"token", "inspect", "-"}} {
		out, errs, ok := c.run(minted+"\n", nowhere, args...)
		if !ok || strings.Contains(out+errs, minted) {
			t.Fatalf("%v: ok=%v\n%s%s", args, ok, out, errs)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%v lacks %q:\n%s", args, w, out)
			}
		}
	}
	var js map[string]any
	if err := json.Unmarshal([]byte(c.ok("", nowhere, "token", "inspect", minted, "--output=json")), &js); err != nil ||
		js["id"] != u.Claims.ID.String() || js["checksum_ok"] != true {
		t.Errorf("inspect json: %v %v", js, err)
	}
	// One character changed: the checksum (or the encoding) says so.
	bad := []byte(minted)
	bad[40] = map[bool]byte{true: 'b', false: 'a'}[bad[40] == 'a']
	out, errs, ok := c.run("", nowhere, "token", "inspect", string(bad))
	if ok || !strings.Contains(errs, "not a") {
		t.Errorf("inspect of a changed token: ok=%v\n%s%s", ok, out, errs)
	}

	// auth status with tokens the identity query does not describe.
	email := "inspect-" + time.Now().Format("150405.000000") + "@example.com"
	const pw = "correct-horse-battery-staple"
	c.ok(pw+"\n", nil, "auth", "signup", "--email", email)
	c.ok(pw+"\n", nil, "auth", "login", "--email", email)
	for _, args := range [][]string{
		{"--name", "ci", "--type", "service", "--scopes", "branch:*"},
		{"--name", "tests", "--type", "test"},
	} {
		tok := strings.TrimSpace(c.ok("", nil, append([]string{"token", "create"}, args...)...))
		tu, _ := core.DecodeUnverified(tok)
		st := c.ok("", []string{"HELIOS_TOKEN=" + tok}, "auth", "status")
		for _, w := range []string{tu.Claims.ID.String(), "Scopes:     " + strings.Join(tu.Claims.Scopes.Strings(), ", "),
			"Expires:    " + tu.Claims.Expires().Format(time.RFC3339)} {
			if !strings.Contains(st, w) {
				t.Errorf("status of %v lacks %q:\n%s", args, w, st)
			}
		}
	}
}

// TestCLICommandLine: unknown subcommands fail, --version answers, token
// list shows allowed IPs, and shell completion offers token types, scopes
// and (from the API) the names and ids of the tokens to revoke.
func TestCLICommandLine(t *testing.T) {
	d := startDaemon(t)
	c := newCLI(t, d)
	for _, args := range [][]string{{"auth", "whoami"}, {"token", "lst"}, {"nosuch"}} {
		if out, errs, ok := c.run("", nil, args...); ok || !strings.Contains(errs, "unknown command") {
			t.Errorf("helios %v: ok=%v\n%s%s", args, ok, out, errs)
		}
	}
	if out := c.ok("", nil, "--version"); !strings.HasPrefix(out, "helios ") || !strings.Contains(out, "go1.") {
		t.Errorf("--version: %q", out)
	}

	email := "cmdline-" + time.Now().Format("150405.000000") + "@example.com"
	const pw = "correct-horse-battery-staple"
	c.ok(pw+"\n", nil, "auth", "signup", "--email", email)
	c.ok(pw+"\n", nil, "auth", "login", "--email", email)
	tok := strings.TrimSpace(c.ok("", nil, "token", "create", "--name", "office", "--allowed-ips", "127.0.0.1,10.0.0.0/8"))
	u, _ := core.DecodeUnverified(tok)
	list := c.ok("", nil, "token", "list")
	if !strings.Contains(list, "ALLOWED IPS") || !strings.Contains(list, "127.0.0.1") || !strings.Contains(list, "10.0.0.0/8") {
		t.Errorf("token list lacks the allowed IPs:\n%s", list)
	}

	complete := func(args ...string) string {
		t.Helper()
		return c.ok("", nil, append([]string{"__complete"}, args...)...)
	}
	if out := complete("token", "revoke", ""); !strings.Contains(out, u.Claims.ID.String()+"\toffice") || !strings.Contains(out, "office\t") {
		t.Errorf("revoke completion:\n%s", out)
	}
	if out := complete("token", "create", "--type", ""); !strings.Contains(out, "live\t") || !strings.Contains(out, "service\t") {
		t.Errorf("--type completion:\n%s", out)
	}
	out := complete("token", "create", "--scopes", "database:read,")
	if !strings.Contains(out, "database:read,database:write\n") || !strings.Contains(out, "database:read,branch:*\n") ||
		strings.Contains(out, "database:read,database:read\n") {
		t.Errorf("--scopes completion:\n%s", out)
	}
	// Without credentials, revoke completes nothing (and fails nothing).
	c.ok("", nil, "auth", "logout")
	if out := complete("token", "revoke", ""); strings.Contains(out, "tok_") {
		t.Errorf("revoke completion without credentials:\n%s", out)
	}
}
