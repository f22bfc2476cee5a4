package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// issResp is one raw HTTP exchange with the daemon (headers included).
type issResp struct {
	status int
	header http.Header
	body   []byte
}

// issDo sends a request and returns status, headers and body.
func issDo(t *testing.T, client *http.Client, url, method, bearer, body string) issResp {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return issResp{resp.StatusCode, resp.Header, b}
}

// issError decodes the seed's error body.
func issError(t *testing.T, body []byte) (code, message string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not the seed's error body: %s", body)
	}
	return e.Error.Code, e.Error.Message
}

type issToken struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Type      string   `json:"type"`
	LastUsed  *string  `json:"last_used"`
	ExpiresAt string   `json:"expires_at"`
	Scopes    []string `json:"scopes"`
	Token     string   `json:"token"`
}

// issList returns the account's tokens by name.
func issList(t *testing.T, d *daemon, bearer string) map[string]issToken {
	t.Helper()
	var r struct {
		Tokens []issToken `json:"tokens"`
	}
	d.MustJSON(t, http.StatusOK, "GET", "/v1/auth/tokens", bearer, nil, &r)
	out := map[string]issToken{}
	for _, tk := range r.Tokens {
		if tk.Token != "" {
			t.Fatalf("token list shows a token string: %+v", tk)
		}
		out[tk.Name] = tk
	}
	return out
}

// issSQL runs a query through POST /api/v1/sql and returns the status.
func issSQL(t *testing.T, d *daemon, bearer, query string) (int, []byte) {
	t.Helper()
	return d.Do(t, "POST", "/api/v1/sql", bearer, map[string]string{"query": query})
}

// issUser signs up an account with the given email and returns its token.
func issUser(t *testing.T, d *daemon, email string) string {
	t.Helper()
	d.Signup(t, email, "correct-horse-battery-staple")
	return d.Login(t, email, "correct-horse-battery-staple")
}

// TestIssuerEndpoints drives every /v1/auth endpoint and /api/v1/sql with
// the seed's request and response shapes.
func TestIssuerEndpoints(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	email := "Seed.User@Example.com"
	var su map[string]any
	d.MustJSON(t, http.StatusCreated, "POST", "/v1/auth/signup", "", map[string]string{"email": email, "password": "your-secure-password"}, &su)
	status, body := d.Do(t, "POST", "/v1/auth/login", "", map[string]string{"email": strings.ToLower(email), "password": "your-secure-password"})
	var lr map[string]string
	json.Unmarshal(body, &lr)
	tok := lr["token"]
	exp, err := time.Parse(time.RFC3339, lr["expires_at"])
	if status != 200 || !strings.HasPrefix(tok, "hdb_live_") || len(tok) != 88 || lr["token_type"] != "bearer" || err != nil ||
		time.Until(exp) < 7*24*time.Hour-time.Minute || len(lr) != 3 {
		t.Fatalf("login: %d %s", status, body)
	}

	list := issList(t, d, tok)
	if l, ok := list["login"]; !ok || l.Type != "live" || strings.Join(l.Scopes, ",") != "*" || !strings.HasPrefix(l.ID, "tok_") {
		t.Fatalf("list after login: %+v", list)
	}

	// The seed's token-creation examples.
	var ci issToken
	d.MustJSON(t, http.StatusCreated, "POST", "/v1/auth/tokens", tok, map[string]any{"name": "ci-cd-pipeline", "type": "service",
		"scopes": []string{"database:read", "database:write", "branch:create"}, "expires_in_days": 90}, &ci)
	if !strings.HasPrefix(ci.Token, "hdb_svc_") || ci.Type != "service" || len(ci.Scopes) != 3 {
		t.Fatalf("service token %+v", ci)
	}
	analytics, _ := d.CreateToken(t, tok, map[string]any{"name": "analytics-reader", "scopes": []string{"database:read", "metrics:read"}, "expires_in_days": 30})
	gha, _ := d.CreateToken(t, tok, map[string]any{"name": "github-actions", "scopes": []string{"database:read", "database:write", "branch:create", "branch:merge", "branch:delete"}, "expires_in_days": 90})
	prod, _ := d.CreateToken(t, tok, map[string]any{"name": "production-server", "allowed_ips": []string{"203.0.113.50", "203.0.113.51"}, "scopes": []string{"database:read", "database:write"}})
	local, _ := d.CreateToken(t, tok, map[string]any{"name": "local-only", "allowed_ips": []string{"127.0.0.0/8"}, "scopes": []string{"database:read"}})
	testTok, _ := d.CreateToken(t, tok, map[string]any{"name": "test", "type": "test"})
	if !strings.HasPrefix(testTok, "hdb_test_") || !strings.HasPrefix(analytics, "hdb_live_") {
		t.Fatal("token prefixes")
	}
	list = issList(t, d, tok)
	if len(list) != 7 || list["analytics-reader"].ExpiresAt == "" || strings.Join(list["github-actions"].Scopes, ",") != "database:read,database:write,branch:create,branch:merge,branch:delete" {
		t.Fatalf("list: %+v", list)
	}

	// SQL: SELECT 1, the identity query, scopes, IP allowlists.
	for name, c := range map[string]struct {
		tok, q string
		want   int
	}{
		"live select":        {tok, "SELECT 1", 200},
		"service select":     {ci.Token, "SELECT 1", 200},
		"analytics select":   {analytics, "select 1;", 200},
		"analytics write":    {analytics, "INSERT INTO t VALUES (1)", 403},
		"gha":                {gha, "SELECT 1", 200},
		"wrong address":      {prod, "SELECT 1", 403},
		"allowed address":    {local, "SELECT 1", 200},
		"test token on main": {testTok, "SELECT 1", 403}, // test tokens reach test databases only
		"no upstream":        {tok, "SELECT * FROM users", 501},
		"no token":           {"", "SELECT 1", 401},
		"tampered token":     {tamper(tok), "SELECT 1", 401},
		"expired token":      {d.ExpiredToken(t), "SELECT 1", 401},
		"metrics-only token": {scopedOnly(t, d, tok, "metrics:read"), "SELECT 1", 403},
	} {
		if status, body := issSQL(t, d, c.tok, c.q); status != c.want {
			t.Errorf("%s: %d, want %d: %s", name, status, c.want, body)
		}
	}
	// A test token works against a registered test database.
	if status, body := d.Do(t, "POST", "/v1/databases", tok, map[string]any{"name": "scratch", "test": true}); status != 200 && status != 201 {
		t.Fatalf("create test database: %d %s", status, body)
	}
	if status, body := d.Do(t, "POST", "/api/v1/sql", testTok, map[string]string{"query": "SELECT 1", "database": "scratch"}); status != 200 {
		t.Fatalf("test token on a test database: %d %s", status, body)
	}
	status, body = issSQL(t, d, ci.Token, "SELECT * FROM helios_whoami()")
	var who struct {
		Columns []struct{ Name, Type string } `json:"columns"`
		Rows    [][]any                       `json:"rows"`
	}
	json.Unmarshal(body, &who)
	if status != 200 || columnNames(who.Columns) != "token_id,type,scopes,expires_at" || len(who.Rows) != 1 ||
		who.Rows[0][0] != ci.ID || who.Rows[0][1] != "service" || who.Rows[0][2] != "database:read,database:write,branch:create" {
		t.Fatalf("whoami: %d %s", status, body)
	}

	// DELETE, logout, refresh.
	d.Revoke(t, tok, ci.ID)
	if status, _ := issSQL(t, d, ci.Token, "SELECT 1"); status != 401 {
		t.Fatalf("revoked service token: %d", status)
	}
	if _, ok := issList(t, d, tok)["ci-cd-pipeline"]; ok {
		t.Fatal("revoked token still listed")
	}
	var logout map[string]any
	d.MustJSON(t, 200, "POST", "/v1/auth/logout", analytics, nil, &logout)
	if status, _ := issSQL(t, d, analytics, "SELECT 1"); status != 401 {
		t.Fatal("token works after logout")
	}
	var ref map[string]string
	d.MustJSON(t, 200, "POST", "/v1/auth/refresh", tok, nil, &ref)
	if !strings.HasPrefix(ref["token"], "hdb_live_") || ref["expires_at"] == "" || len(ref) != 2 {
		t.Fatalf("refresh: %v", ref)
	}
	if status, _ := issSQL(t, d, ref["token"], "SELECT 1"); status != 200 {
		t.Fatal("refreshed token does not work")
	}

	// /healthz and /metrics.
	if status, body := d.Do(t, "GET", "/healthz", "", nil); status != 200 || !strings.Contains(string(body), "ok") {
		t.Fatalf("healthz %d %s", status, body)
	}
	if status, body := d.Do(t, "GET", "/metrics", "", nil); status != 200 || !strings.Contains(string(body), `helios_gateway_auth_total{protocol="rest",outcome="ok"}`) {
		t.Fatalf("metrics %d %.300s", status, body)
	}

	// last_used is aggregated and flushed (every 5 s).
	deadline := time.Now().Add(12 * time.Second)
	for {
		if l := issList(t, d, ref["token"])["github-actions"]; l.LastUsed != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("last_used never set for a used token")
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !strings.Contains(d.Logs(), "listening") || strings.Contains(d.Logs(), tok) || strings.Contains(d.Logs(), "your-secure-password") {
		t.Fatal("logs lack listen lines or contain a secret")
	}
}

// scopedOnly creates a live token with exactly the given scopes.
func scopedOnly(t *testing.T, d *daemon, bearer string, scopes ...string) string {
	t.Helper()
	tok, _ := d.CreateToken(t, bearer, map[string]any{"name": "scoped-" + strings.Join(scopes, "+"), "scopes": scopes})
	return tok
}

// TestIssuerBadInput sends each kind of bad input and checks the status, the
// code, the RFC 6750 header where one applies, and that nothing changed.
func TestIssuerBadInput(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	tok := issUser(t, d, "bad-input@example.com")
	other := issUser(t, d, "other@example.com")
	_, otherID := d.CreateToken(t, other, map[string]any{"name": "others", "scopes": []string{"database:read"}})
	svc, svcID := d.CreateToken(t, tok, map[string]any{"name": "svc", "type": "service", "scopes": []string{"database:read"}})
	ro, _ := d.CreateToken(t, tok, map[string]any{"name": "ro", "scopes": []string{"database:read"}})
	before := issList(t, d, tok)

	big := `{"email":"x@example.com","password":"` + strings.Repeat("a", 20000) + `"}`
	for _, c := range []struct {
		name, method, path, bearer, body string
		status                           int
		code, challenge                  string
	}{
		{"malformed JSON", "POST", "/v1/auth/signup", "", `{"email": "a@example.com",`, 400, "INVALID_JSON", ""},
		{"not an object", "POST", "/v1/auth/signup", "", `["a"]`, 400, "INVALID_JSON", ""},
		{"unknown field", "POST", "/v1/auth/signup", "", `{"email":"new@example.com","password":"correct-horse-battery","admin":true}`, 400, "INVALID_REQUEST", ""},
		{"bad email", "POST", "/v1/auth/signup", "", `{"email":"new-at-example.com","password":"correct-horse-battery"}`, 400, "INVALID_EMAIL", ""},
		{"weak password", "POST", "/v1/auth/signup", "", `{"email":"new@example.com","password":"short"}`, 400, "WEAK_PASSWORD", ""},
		{"oversized body", "POST", "/v1/auth/signup", "", big, 413, "BODY_TOO_LARGE", ""},
		{"duplicate email", "POST", "/v1/auth/signup", "", `{"email":"BAD-INPUT@example.com","password":"correct-horse-battery"}`, 409, "EMAIL_TAKEN", ""},
		{"wrong password", "POST", "/v1/auth/login", "", `{"email":"bad-input@example.com","password":"not-the-password"}`, 401, "INVALID_CREDENTIALS", ""},
		{"unknown email", "POST", "/v1/auth/login", "", `{"email":"nobody@example.com","password":"not-the-password"}`, 401, "INVALID_CREDENTIALS", ""},
		{"unknown scope", "POST", "/v1/auth/tokens", tok, `{"name":"x","scopes":["database:fly"]}`, 400, "UNKNOWN_SCOPE", ""},
		{"service without scopes", "POST", "/v1/auth/tokens", tok, `{"name":"x","type":"service"}`, 400, "INVALID_REQUEST", ""},
		{"unknown type", "POST", "/v1/auth/tokens", tok, `{"name":"x","type":"root"}`, 400, "INVALID_REQUEST", ""},
		{"no name", "POST", "/v1/auth/tokens", tok, `{"scopes":["database:read"]}`, 400, "INVALID_REQUEST", ""},
		{"bad ip", "POST", "/v1/auth/tokens", tok, `{"name":"x","allowed_ips":["203.0.113.500"]}`, 400, "INVALID_REQUEST", ""},
		{"too many days", "POST", "/v1/auth/tokens", tok, `{"name":"x","expires_in_days":10000}`, 400, "INVALID_REQUEST", ""},
		{"negative days", "POST", "/v1/auth/tokens", tok, `{"name":"x","expires_in_days":-1}`, 400, "INVALID_REQUEST", ""},
		{"days as string", "POST", "/v1/auth/tokens", tok, `{"name":"x","expires_in_days":"90"}`, 400, "INVALID_JSON", ""},
		{"unknown field on tokens", "POST", "/v1/auth/tokens", tok, `{"name":"x","scope":["database:read"]}`, 400, "INVALID_REQUEST", ""},
		{"scope escalation", "POST", "/v1/auth/tokens", ro, `{"name":"x","scopes":["database:write"]}`, 403, "FORBIDDEN", `error="insufficient_scope"`},
		{"service token creates", "POST", "/v1/auth/tokens", svc, `{"name":"x","scopes":["database:read"]}`, 403, "FORBIDDEN", `error="insufficient_scope"`},
		{"service token lists", "GET", "/v1/auth/tokens", svc, "", 403, "FORBIDDEN", `error="insufficient_scope"`},
		{"service token refreshes", "POST", "/v1/auth/refresh", svc, "", 403, "FORBIDDEN", `error="insufficient_scope"`},
		{"unknown token id", "DELETE", "/v1/auth/tokens/tok_00000000000000000", tok, "", 404, "TOKEN_NOT_FOUND", ""},
		{"malformed token id", "DELETE", "/v1/auth/tokens/xyz", tok, "", 404, "TOKEN_NOT_FOUND", ""},
		{"another account's token", "DELETE", "/v1/auth/tokens/" + otherID, tok, "", 404, "TOKEN_NOT_FOUND", ""},
		{"service token deletes", "DELETE", "/v1/auth/tokens/" + svcID, svc, "", 403, "FORBIDDEN", `error="insufficient_scope"`},
		{"no token", "GET", "/v1/auth/tokens", "", "", 401, "AUTH_REQUIRED", `Bearer realm="heliosdb"`},
		{"tampered token", "GET", "/v1/auth/tokens", tamper(tok), "", 401, "AUTH_REQUIRED", `error="invalid_token"`},
		{"not a token", "GET", "/v1/auth/tokens", "hdb_live_nope", "", 401, "AUTH_REQUIRED", `error="invalid_token"`},
		{"expired token", "GET", "/v1/auth/tokens", d.ExpiredToken(t), "", 401, "AUTH_EXPIRED", `error="invalid_token"`},
		{"wrong method", "PUT", "/v1/auth/tokens", tok, "", 405, "METHOD_NOT_ALLOWED", ""},
		{"unknown path", "GET", "/v1/auth/nothing", tok, "", 404, "NOT_FOUND", ""},
		{"logout with a body", "POST", "/v1/auth/logout", ro, `{"all":true}`, 400, "INVALID_REQUEST", ""},
	} {
		r := issDo(t, httpClient, d.URL(c.path), c.method, c.bearer, c.body)
		if r.status != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, r.status, c.status, r.body)
			continue
		}
		code, msg := issError(t, r.body)
		if code != c.code {
			t.Errorf("%s: code %s, want %s (%s)", c.name, code, c.code, msg)
		}
		if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, c.challenge) || (c.challenge == "" && got != "" && c.status != 403) {
			t.Errorf("%s: WWW-Authenticate %q, want %q", c.name, got, c.challenge)
		}
	}
	// Nothing changed: the same tokens, the other account's token still
	// works, no account was created by the refused signups.
	after := issList(t, d, tok)
	if len(after) != len(before) {
		t.Fatalf("bad input changed the token list: %d → %d", len(before), len(after))
	}
	if status, _ := issSQL(t, d, other, "SELECT 1"); status != 200 {
		t.Fatal("the other account's token stopped working")
	}
	if status, _ := issSQL(t, d, ro, "SELECT 1"); status != 200 {
		t.Fatal("a refused logout revoked the token")
	}
	if status, _ := d.Do(t, "POST", "/v1/auth/login", "", map[string]string{"email": "new@example.com", "password": "correct-horse-battery"}); status != 401 {
		t.Fatal("a refused signup created an account")
	}
}

// TestIssuerRotationRecipe follows the seed's "Rotate Tokens Regularly":
// create app-v2, verify it works, revoke app-v1.
func TestIssuerRotationRecipe(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	tok := d.NewUser(t)
	v1, _ := d.CreateToken(t, tok, map[string]any{"name": "app-v1", "scopes": []string{"database:read", "database:write"}})
	if status, _ := issSQL(t, d, v1, "SELECT 1"); status != 200 {
		t.Fatal("app-v1 does not work")
	}
	v2, _ := d.CreateToken(t, tok, map[string]any{"name": "app-v2", "scopes": []string{"database:read", "database:write"}})
	if status, _ := issSQL(t, d, v2, "SELECT 1"); status != 200 {
		t.Fatal("app-v2 does not work")
	}
	d.Revoke(t, tok, issList(t, d, tok)["app-v1"].ID)
	r := issDo(t, httpClient, d.URL("/api/v1/sql"), "POST", v1, `{"query":"SELECT 1"}`)
	if code, msg := issError(t, r.body); r.status != 401 || code != "AUTH_REQUIRED" || !strings.Contains(msg, "revoked") {
		t.Fatalf("app-v1 after revoke: %d %s", r.status, r.body)
	}
	if status, _ := issSQL(t, d, v2, "SELECT 1"); status != 200 {
		t.Fatal("app-v2 stopped working")
	}
	names := issList(t, d, tok)
	if _, ok := names["app-v1"]; ok || names["app-v2"].ID == "" {
		t.Fatalf("list after rotation: %+v", names)
	}
}

// TestIssuerRefreshGrace: the refreshed token keeps working for the grace
// period, then stops; a token is refreshed once.
func TestIssuerRefreshGrace(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, withArgs("--refresh-grace=2s"))
	old := d.NewUser(t)
	var ref map[string]string
	d.MustJSON(t, 200, "POST", "/v1/auth/refresh", old, nil, &ref)
	if status, _ := issSQL(t, d, old, "SELECT 1"); status != 200 {
		t.Fatal("old token refused during the grace period")
	}
	if status, body := d.Do(t, "POST", "/v1/auth/refresh", old, nil); status != 409 {
		t.Fatalf("second refresh of the same token: %d %s", status, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, _ := issSQL(t, d, old, "SELECT 1")
		if status == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("old token still works long after the grace period")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if status, _ := issSQL(t, d, ref["token"], "SELECT 1"); status != 200 {
		t.Fatal("new token refused")
	}
}

// TestIssuerLogoutAll revokes every token of the account, service tokens
// included; a login right afterwards works.
func TestIssuerLogoutAll(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	tok := issUser(t, d, "everywhere@example.com")
	bystander := d.NewUser(t)
	svc, _ := d.CreateToken(t, tok, map[string]any{"name": "svc", "type": "service", "scopes": []string{"database:read"}})
	if status, body := d.Do(t, "POST", "/v1/auth/logout-all", svc, nil); status != 403 {
		t.Fatalf("service token logged out everywhere: %d %s", status, body)
	}
	var r map[string]string
	d.MustJSON(t, 200, "POST", "/v1/auth/logout-all", tok, nil, &r)
	for name, tk := range map[string]string{"session": tok, "service": svc} {
		if status, _ := issSQL(t, d, tk, "SELECT 1"); status != 401 {
			t.Errorf("%s token works after logout-all", name)
		}
	}
	fresh := d.Login(t, "everywhere@example.com", "correct-horse-battery-staple")
	if status, body := issSQL(t, d, fresh, "SELECT 1"); status != 200 {
		t.Fatalf("login right after logout-all: %d %s", status, body)
	}
	if status, _ := issSQL(t, d, bystander, "SELECT 1"); status != 200 {
		t.Fatal("logout-all touched another account")
	}
}

// TestIssuerLoginRateLimit: repeated failures get 429 with Retry-After, and
// then even the right password waits.
func TestIssuerLoginRateLimit(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, withArgs("--login-per-email=3"))
	d.Signup(t, "brute@example.com", "correct-horse-battery-staple")
	for i := range 3 {
		if r := issDo(t, httpClient, d.URL("/v1/auth/login"), "POST", "", `{"email":"brute@example.com","password":"guess-number-`+fmt.Sprint(i)+`"}`); r.status != 401 {
			t.Fatalf("guess %d: %d %s", i, r.status, r.body)
		}
	}
	r := issDo(t, httpClient, d.URL("/v1/auth/login"), "POST", "", `{"email":"brute@example.com","password":"correct-horse-battery-staple"}`)
	if code, _ := issError(t, r.body); r.status != 429 || code != "RATE_LIMITED" || r.header.Get("Retry-After") == "" {
		t.Fatalf("after 3 failures: %d %v %s", r.status, r.header, r.body)
	}
	// Another email from the same address is not blocked by this one.
	d.NewUser(t)
}

// TestIssuerRestartPersistence restarts on the same data directory and finds
// accounts, tokens and revocations.
func TestIssuerRestartPersistence(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	tok := issUser(t, d, "persist@example.com")
	keep, keepID := d.CreateToken(t, tok, map[string]any{"name": "keep", "scopes": []string{"database:read"}})
	gone, goneID := d.CreateToken(t, tok, map[string]any{"name": "gone", "scopes": []string{"database:read"}})
	d.Revoke(t, tok, goneID)
	d.Restart(t)
	if status, _ := issSQL(t, d, keep, "SELECT 1"); status != 200 {
		t.Fatal("token created before the restart refused")
	}
	if status, _ := issSQL(t, d, gone, "SELECT 1"); status != 401 {
		t.Fatal("token revoked before the restart accepted")
	}
	again := d.Login(t, "persist@example.com", "correct-horse-battery-staple")
	list := issList(t, d, again)
	if list["keep"].ID != keepID || list["gone"].ID != "" {
		t.Fatalf("tokens after restart: %+v", list)
	}
	if status, _ := d.Do(t, "POST", "/v1/auth/signup", "", map[string]string{"email": "persist@example.com", "password": "another-good-password"}); status != 409 {
		t.Fatal("account lost across the restart")
	}
}

// TestIssuerKill9KeepsRevocations: revocations acknowledged before a
// SIGKILL are in force after the restart.
func TestIssuerKill9KeepsRevocations(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	tok := d.NewUser(t)
	const n = 40
	toks, ids := make([]string, n), make([]string, n)
	for i := range n {
		toks[i], ids[i] = d.CreateToken(t, tok, map[string]any{"name": fmt.Sprintf("k%d", i), "scopes": []string{"database:read"}})
	}
	var wg sync.WaitGroup
	for i := 0; i < n; i += 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.Revoke(t, tok, ids[i])
		}()
	}
	wg.Wait()
	d.Kill()
	d.Restart(t)
	for i := range n {
		status, _ := issSQL(t, d, toks[i], "SELECT 1")
		if want := map[bool]int{true: 401, false: 200}[i%2 == 0]; status != want {
			t.Errorf("token %d after kill -9: %d, want %d", i, status, want)
		}
	}
}

// TestIssuerHTTPS: HTTPS with the self-signed CA the daemon printed; and
// plain HTTP refused when loopback is not in plaintext_allow.
func TestIssuerHTTPS(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, withArgs("--plaintext-allow=10.99.0.0/16"))
	if !strings.Contains(d.Logs(), d.CACert) {
		t.Fatalf("CA path %s not printed at start:\n%s", d.CACert, d.Logs())
	}
	pem, err := os.ReadFile(d.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tlsClient := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	base := "https://" + d.HTTP
	if r := issDo(t, tlsClient, base+"/v1/auth/signup", "POST", "", `{"email":"tls@example.com","password":"correct-horse-battery"}`); r.status != 201 {
		t.Fatalf("signup over TLS: %d %s", r.status, r.body)
	}
	r := issDo(t, tlsClient, base+"/v1/auth/login", "POST", "", `{"email":"tls@example.com","password":"correct-horse-battery"}`)
	var lr map[string]string
	json.Unmarshal(r.body, &lr)
	if r := issDo(t, tlsClient, base+"/api/v1/sql", "POST", lr["token"], `{"query":"SELECT 1"}`); r.status != 200 {
		t.Fatalf("SQL over TLS: %d %s", r.status, r.body)
	}
	r = issDo(t, httpClient, d.URL("/api/v1/sql"), "POST", lr["token"], `{"query":"SELECT 1"}`)
	if code, _ := issError(t, r.body); r.status != 403 || code != "TLS_REQUIRED" {
		t.Fatalf("plaintext from a network not allowed: %d %s", r.status, r.body)
	}
}

// columnNames joins a SQL result's column names with commas.
func columnNames(cols []struct{ Name, Type string }) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return strings.Join(names, ",")
}
