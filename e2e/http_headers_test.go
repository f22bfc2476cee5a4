package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// errorShape decodes a refusal's body strictly as the guide's error body:
// {"error":{"code":…,"message":…}}, optionally with "detail", nothing else.
func errorShape(t *testing.T, what string, body []byte) (code, message, detail string) {
	t.Helper()
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(body, &outer); err != nil || len(outer) != 1 || outer["error"] == nil {
		t.Fatalf("%s: not the error body: %s", what, body)
	}
	var e map[string]string
	if err := json.Unmarshal(outer["error"], &e); err != nil {
		t.Fatalf("%s: error object %s: %v", what, outer["error"], err)
	}
	for k := range e {
		if k != "code" && k != "message" && k != "detail" {
			t.Fatalf("%s: the error body has %q: %s", what, k, body)
		}
	}
	if e["code"] == "" || e["message"] == "" {
		t.Fatalf("%s: error body without code or message: %s", what, body)
	}
	return e["code"], e["message"], e["detail"]
}

// TestHTTPHeaders: the issuer's API (/v1/auth/*, /v1/databases) and the
// gateway's SQL endpoint (/api/v1/sql) answer the same situation with the
// same status, WWW-Authenticate challenge (RFC 6750, realm first), error
// body shape, code and Cache-Control — the real heliosd, net/http and curl
// — and /metrics counts REST's outcomes in the wire protocols' series
// helios_gateway_auth_total{protocol="rest",…}.
func TestHTTPHeaders(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	login := d.NewUser(t)
	ro, _ := d.CreateToken(t, login, map[string]any{"name": "reader", "scopes": []string{"database:read"}})
	metricsOnly, _ := d.CreateToken(t, login, map[string]any{"name": "metrics", "scopes": []string{"metrics:read"}})
	elsewhere, _ := d.CreateToken(t, login, map[string]any{"name": "elsewhere", "allowed_ips": []string{"192.0.2.1"}})
	revoked, revokedID := d.CreateToken(t, login, map[string]any{"name": "revoked"})
	d.Revoke(t, login, revokedID)
	expired := d.ExpiredToken(t)

	const (
		noToken      = `Bearer realm="heliosdb"`
		invalidToken = `Bearer realm="heliosdb", error="invalid_token"`
	)
	scope := func(s string) string { return `Bearer realm="heliosdb", error="insufficient_scope", scope="` + s + `"` }
	type call struct {
		method, path, auth, body string
		challenge                string // this endpoint's challenge when it differs by scope
	}
	issuerCall := func(auth string) call { return call{"GET", "/v1/auth/tokens", auth, "", ""} }
	sqlCall := func(auth string) call { return call{"POST", "/api/v1/sql", auth, `{"query":"SELECT 1"}`, ""} }
	send := func(c call) issResp {
		t.Helper()
		req, err := http.NewRequest(c.method, d.URL(c.path), strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return issResp{resp.StatusCode, resp.Header, b}
	}

	refusals := map[string]int{} // outcome → requests refused with it
	for _, sc := range []struct {
		name      string
		outcome   string
		status    int
		code      string
		challenge string // "" when each call names its own
		calls     []call
	}{
		{"no token", "invalid", 401, "AUTH_REQUIRED", noToken, []call{issuerCall(""), sqlCall("")}},
		{"empty bearer", "invalid", 401, "AUTH_REQUIRED", noToken, []call{issuerCall("Bearer "), sqlCall("Bearer ")}},
		{"another scheme", "invalid", 401, "AUTH_REQUIRED", invalidToken, []call{issuerCall("Basic dXNlcjpwYXNz"), sqlCall("Basic dXNlcjpwYXNz")}},
		{"tampered token", "invalid", 401, "AUTH_REQUIRED", invalidToken, []call{issuerCall("Bearer " + tamper(login)), sqlCall("Bearer " + tamper(login))}},
		{"not a token", "invalid", 401, "AUTH_REQUIRED", invalidToken, []call{issuerCall("Bearer hdb_live_nope"), sqlCall("Bearer hdb_live_nope")}},
		{"expired token", "expired", 401, "AUTH_EXPIRED", invalidToken, []call{issuerCall("Bearer " + expired), sqlCall("Bearer " + expired)}},
		{"revoked token", "revoked", 401, "AUTH_REQUIRED", invalidToken, []call{issuerCall("Bearer " + revoked), sqlCall("Bearer " + revoked)}},
		{"address not allowed", "forbidden", 403, "FORBIDDEN", noToken, []call{issuerCall("Bearer " + elsewhere), sqlCall("Bearer " + elsewhere)}},
		{"scope missing", "forbidden", 403, "FORBIDDEN", "", []call{
			{"GET", "/v1/auth/tokens", "Bearer " + ro, "", scope("*")},                                               // the issuer's handler
			{"POST", "/v1/auth/tokens", "Bearer " + ro, `{"name":"child"}`, scope("*")},                              // the issuer's handler
			{"POST", "/v1/databases", "Bearer " + ro, `{"name":"analytics"}`, scope("database:create")},              // the route's scope
			{"POST", "/api/v1/sql", "Bearer " + metricsOnly, `{"query":"SELECT 1"}`, scope("database:read")},         // the route's scope
			{"POST", "/api/v1/sql", "Bearer " + ro, `{"query":"INSERT INTO t VALUES (1)"}`, scope("database:write")}, // the statement's
		}},
	} {
		var first issResp
		var firstMsg string
		for i, c := range sc.calls {
			what := sc.name + ": " + c.method + " " + c.path
			r := send(c)
			code, msg, detail := errorShape(t, what, r.body)
			want := sc.challenge
			if want == "" {
				want = c.challenge
			}
			if r.status != sc.status || code != sc.code || r.header.Get("WWW-Authenticate") != want ||
				r.header.Get("Content-Type") != "application/json" || r.header.Get("Cache-Control") != "no-store" {
				t.Errorf("%s: %d %s WWW-Authenticate %q Content-Type %q Cache-Control %q, want %d %s %q: %s", what, r.status, code,
					r.header.Get("WWW-Authenticate"), r.header.Get("Content-Type"), r.header.Get("Cache-Control"), sc.status, sc.code, want, r.body)
			}
			if len(r.header.Values("WWW-Authenticate")) != 1 {
				t.Errorf("%s: %d WWW-Authenticate headers", what, len(r.header.Values("WWW-Authenticate")))
			}
			if strings.Contains(string(r.body), strings.TrimPrefix(c.auth, "Bearer ")) && len(c.auth) > len("Bearer ")+8 {
				t.Errorf("%s: the body echoes the credential: %s", what, r.body)
			}
			if sc.code == "AUTH_REQUIRED" && detail == "" {
				t.Errorf("%s: an AUTH_REQUIRED without the detail saying what was wrong: %s", what, r.body)
			}
			if i == 0 {
				first, firstMsg = r, msg
			} else if sc.challenge != "" && (msg != firstMsg || r.header.Get("WWW-Authenticate") != first.header.Get("WWW-Authenticate")) {
				t.Errorf("%s: message %q / challenge %q, but %s %s answered %q / %q", what, msg, r.header.Get("WWW-Authenticate"),
					sc.calls[0].method, sc.calls[0].path, firstMsg, first.header.Get("WWW-Authenticate"))
			}
			refusals[sc.outcome]++
		}
	}

	// Not about a bearer token: a wrong password is a 401 without a
	// challenge, in the same body shape.
	r := issDo(t, httpClient, d.URL("/v1/auth/login"), "POST", "", `{"email":"nobody@example.com","password":"not-the-password"}`)
	if code, _, _ := errorShape(t, "wrong password", r.body); r.status != 401 || code != "INVALID_CREDENTIALS" || r.header.Get("WWW-Authenticate") != "" {
		t.Errorf("wrong password: %d %s WWW-Authenticate %q", r.status, code, r.header.Get("WWW-Authenticate"))
	}

	// curl sees one spelling on both APIs.
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is not installed: run scripts/install-deps.sh")
	}
	challengeLine := regexp.MustCompile(`(?mi)^www-authenticate: (.*?)\r?$`)
	var curlSeen []string
	for _, c := range []call{issuerCall("Bearer " + expired), sqlCall("Bearer " + expired)} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, "curl", "-sS", "-i", "-X", c.method, d.URL(c.path), "-H", "Authorization: "+c.auth, "--data-raw", c.body).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("curl %s: %v %s", c.path, err, out)
		}
		m := challengeLine.FindAllStringSubmatch(string(out), -1)
		if len(m) != 1 || m[0][1] != invalidToken || !strings.HasPrefix(string(out), "HTTP/1.1 401") {
			t.Fatalf("curl %s %s with an expired token:\n%s", c.method, c.path, out)
		}
		curlSeen = append(curlSeen, m[0][1])
		refusals["expired"]++
	}
	if curlSeen[0] != curlSeen[1] {
		t.Fatalf("curl: %q vs %q", curlSeen[0], curlSeen[1])
	}

	// /metrics: REST's outcomes are in the gateway's series.
	status, body := d.Do(t, "GET", "/metrics", "", nil)
	if status != 200 {
		t.Fatalf("/metrics: %d", status)
	}
	if strings.Contains(string(body), "helios_rest_") {
		t.Errorf("/metrics still has a REST series of its own")
	}
	for _, o := range []string{"ok", "invalid", "expired", "revoked", "forbidden"} {
		m := regexp.MustCompile(`(?m)^helios_gateway_auth_total\{protocol="rest",outcome="` + o + `"\} (\d+)$`).FindSubmatch(body)
		if m == nil {
			t.Errorf("/metrics lacks helios_gateway_auth_total{protocol=\"rest\",outcome=%q}", o)
			continue
		}
		n, _ := strconv.Atoi(string(m[1]))
		// ok: the harness's token creations and revocation, and the
		// requests refused by a handler after authenticating.
		if want := refusals[o]; o == "ok" && n < 5 || o != "ok" && n != want {
			t.Errorf("helios_gateway_auth_total{protocol=\"rest\",outcome=%q} = %d, want %d", o, n, want)
		}
	}
	if !regexp.MustCompile(`(?m)^helios_gateway_handshake_seconds_count\{protocol="rest"\} [1-9]`).Match(body) {
		t.Errorf("/metrics has no REST authentication latency")
	}
	for _, tok := range []string{login, ro, metricsOnly, elsewhere, revoked, expired} {
		if strings.Contains(d.Logs(), tok) {
			t.Fatal("heliosd logged a token")
		}
	}
}
