package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// fullAccessRefusal checks a 403 FORBIDDEN that says the endpoint needs a
// full-access token, with the RFC 6750 challenge naming scope "*", and
// returns its message.
func fullAccessRefusal(t *testing.T, what string, r issResp, mention string) string {
	t.Helper()
	if r.status != http.StatusForbidden {
		t.Fatalf("%s: status %d, want 403: %s", what, r.status, r.body)
	}
	code, msg := issError(t, r.body)
	if code != "FORBIDDEN" || !strings.Contains(msg, "needs a full-access") || !strings.Contains(msg, mention) || !strings.Contains(msg, "POST /v1/auth/login") {
		t.Fatalf("%s: %s %q, want FORBIDDEN naming full access, %q and what succeeds", what, code, msg, mention)
	}
	if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="heliosdb", error="insufficient_scope", scope="*"` {
		t.Fatalf("%s: WWW-Authenticate %q", what, got)
	}
	return msg
}

// TestFullAccessEscalation replays the issue against the real heliosd with
// net/http: a token created with "scopes": ["database:read"] can no longer
// mint a year-long "*" child, list or revoke its owner's tokens, or log its
// owner out everywhere; it can still refresh itself (the successor is as
// narrow) and log itself out. Service and test tokens are refused the
// account endpoints too, whatever their scopes, and a full-access token
// keeps every right. The real curl binary sees one refusal, and the helios
// CLI's hint for it names what succeeds — and following it succeeds.
func TestFullAccessEscalation(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	const email, pw = "owner@example.com", "correct-horse-battery-staple"
	d.Signup(t, email, pw)
	login := d.Login(t, email, pw)
	ro, roID := d.CreateToken(t, login, map[string]any{"name": "analytics-reader", "scopes": []string{"database:read"}, "expires_in_days": 30})
	app, appID := d.CreateToken(t, login, map[string]any{"name": "app", "scopes": []string{"database:read", "database:write"}})
	tokensBefore := issList(t, d, login)
	do := func(method, path, bearer, body string) issResp {
		t.Helper()
		return issDo(t, httpClient, d.URL(path), method, bearer, body)
	}

	// The escalation: a one-year child with the default scopes ("*"), or
	// asking for "*", or for the creator's own scope.
	for _, body := range []string{`{"name":"child","expires_in_days":365}`, `{"name":"child","scopes":["*"]}`, `{"name":"child","scopes":["database:read"]}`} {
		msg := fullAccessRefusal(t, "read-only token creates "+body, do("POST", "/v1/auth/tokens", ro, body), "this token has database:read")
		if !strings.Contains(msg, "creating tokens needs a full-access token (scope *)") {
			t.Fatalf("message %q", msg)
		}
	}
	fullAccessRefusal(t, "read-only token lists", do("GET", "/v1/auth/tokens", ro, ""), "this token has database:read")
	fullAccessRefusal(t, "read-only token revokes another", do("DELETE", "/v1/auth/tokens/"+appID, ro, ""), "this token has database:read")
	fullAccessRefusal(t, "read-only token revokes itself by id", do("DELETE", "/v1/auth/tokens/"+roID, ro, ""), "this token has database:read")
	fullAccessRefusal(t, "read-only token logs out everywhere", do("POST", "/v1/auth/logout-all", ro, ""), "this token has database:read")
	// Nothing changed: every token still works and is listed.
	for name, tok := range map[string]string{"login": login, "app": app, "analytics-reader": ro} {
		if status, body := issSQL(t, d, tok, "SELECT 1"); status != 200 {
			t.Fatalf("%s after the refusals: %d %s", name, status, body)
		}
	}
	if after := issList(t, d, login); len(after) != len(tokensBefore) {
		t.Fatalf("the refusals changed the token list: %v → %v", tokensBefore, after)
	}

	// Service and test tokens, full or scoped, are refused too.
	svcFull, _ := d.CreateToken(t, login, map[string]any{"name": "svc-full", "type": "service", "scopes": []string{"*"}})
	svcRO, _ := d.CreateToken(t, login, map[string]any{"name": "svc-ro", "type": "service", "scopes": []string{"database:read"}})
	testFull, _ := d.CreateToken(t, login, map[string]any{"name": "test-full", "type": "test"})
	for name, tok := range map[string]string{"service full": svcFull, "service scoped": svcRO, "test full": testFull} {
		kind := strings.Fields(name)[0]
		fullAccessRefusal(t, name+" lists", do("GET", "/v1/auth/tokens", tok, ""), "a "+kind+" token cannot do it")
		fullAccessRefusal(t, name+" creates", do("POST", "/v1/auth/tokens", tok, `{"name":"child"}`), "a "+kind+" token cannot do it")
		fullAccessRefusal(t, name+" logs out everywhere", do("POST", "/v1/auth/logout-all", tok, ""), "a "+kind+" token cannot do it")
		fullAccessRefusal(t, name+" revokes", do("DELETE", "/v1/auth/tokens/"+appID, tok, ""), "a "+kind+" token cannot do it")
	}
	if r := do("POST", "/v1/auth/refresh", svcFull, ""); r.status != 403 {
		t.Fatalf("service token refreshes: %d %s", r.status, r.body)
	}

	// The real curl binary: the refusal of logout-all, headers included.
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is not installed: run scripts/install-deps.sh")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "curl", "-sS", "-i", "-X", "POST", d.URL("/v1/auth/logout-all"),
		"-H", "Authorization: Bearer "+ro).CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v %s", err, out)
	}
	head, body, _ := strings.Cut(strings.ReplaceAll(string(out), "\r\n", "\n"), "\n\n")
	if !strings.HasPrefix(head, "HTTP/1.1 403") || !strings.Contains(strings.ToLower(head), `www-authenticate: bearer realm="heliosdb", error="insufficient_scope", scope="*"`) ||
		!strings.Contains(body, `"code":"FORBIDDEN"`) || !strings.Contains(body, "logging out everywhere needs a full-access token (scope *); this token has database:read") {
		t.Fatalf("curl logout-all with a read-only token:\n%s", out)
	}
	if status, _ := issSQL(t, d, login, "SELECT 1"); status != 200 {
		t.Fatal("the owner was logged out")
	}

	// The helios CLI with the read-only token in HELIOS_TOKEN: FORBIDDEN,
	// and a hint that works when followed.
	c := newCLI(t, d)
	errs := c.fails("FORBIDDEN", "", []string{"HELIOS_TOKEN=" + ro}, "token", "list")
	if !strings.Contains(errs, "Hint: this needs a full-access token (scope *), and HELIOS_TOKEN holds another one: unset HELIOS_TOKEN") ||
		strings.Contains(errs, ro) {
		t.Fatalf("helios token list with a read-only HELIOS_TOKEN:\n%s", errs)
	}
	c.fails("FORBIDDEN", "", []string{"HELIOS_TOKEN=" + ro}, "token", "create", "--name", "child", "--expires-in-days", "365")
	c.fails("FORBIDDEN", "", []string{"HELIOS_TOKEN=" + ro}, "auth", "logout", "--all")
	c.ok(pw+"\n", nil, "auth", "login", "--email", email) // the hint: no HELIOS_TOKEN, log in
	if list := c.ok("", nil, "token", "list"); !strings.Contains(list, "analytics-reader") {
		t.Fatalf("helios token list after following the hint:\n%s", list)
	}

	// The read-only token may refresh itself: the successor has its scopes
	// and lifetime, and is refused what it was refused.
	var ref struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expires_at"`
	}
	d.MustJSON(t, http.StatusOK, "POST", "/v1/auth/refresh", ro, nil, &ref)
	status, whoBody := issSQL(t, d, ref.Token, "SELECT * FROM helios_whoami()")
	var who struct {
		Rows [][]any `json:"rows"`
	}
	json.Unmarshal(whoBody, &who)
	exp, err := time.Parse(time.RFC3339, ref.ExpiresAt)
	if status != 200 || len(who.Rows) != 1 || who.Rows[0][1] != "live" || who.Rows[0][2] != "database:read" ||
		err != nil || time.Until(exp) < 30*24*time.Hour-time.Minute || time.Until(exp) > 30*24*time.Hour+time.Minute {
		t.Fatalf("the successor: %d %s, expires %s", status, whoBody, ref.ExpiresAt)
	}
	fullAccessRefusal(t, "the refreshed read-only token creates", do("POST", "/v1/auth/tokens", ref.Token, `{"name":"child","expires_in_days":365}`), "this token has database:read")
	// … and log itself out.
	d.MustJSON(t, http.StatusOK, "POST", "/v1/auth/logout", ref.Token, nil, nil)
	if status, _ := issSQL(t, d, ref.Token, "SELECT 1"); status != 401 {
		t.Fatalf("the successor after its logout: %d", status)
	}

	// A full-access token keeps every right: a year-long "*" child, which
	// is full access too; revoking a token does not revoke the tokens it
	// created (the guide's service tokens outlive their session); the
	// child logs out everywhere.
	var child issToken
	d.MustJSON(t, http.StatusCreated, "POST", "/v1/auth/tokens", login, map[string]any{"name": "child", "expires_in_days": 365}, &child)
	if strings.Join(child.Scopes, ",") != "*" {
		t.Fatalf("child %+v", child)
	}
	grand, _ := d.CreateToken(t, child.Token, map[string]any{"name": "grandchild", "scopes": []string{"database:read"}})
	d.MustJSON(t, http.StatusOK, "POST", "/v1/auth/logout", login, nil, nil)
	for name, tok := range map[string]string{"child": child.Token, "grandchild": grand, "service": svcRO} {
		if status, _ := issSQL(t, d, tok, "SELECT 1"); status != 200 {
			t.Fatalf("%s after its creator's logout: %d", name, status)
		}
	}
	d.Revoke(t, child.Token, appID)
	d.MustJSON(t, http.StatusOK, "POST", "/v1/auth/logout-all", child.Token, nil, nil)
	for name, tok := range map[string]string{"child": child.Token, "grandchild": grand, "service": svcRO, "analytics-reader": ro} {
		if status, _ := issSQL(t, d, tok, "SELECT 1"); status != 401 {
			t.Fatalf("%s after logout-all: %d", name, status)
		}
	}
}
