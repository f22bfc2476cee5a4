package rest

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/httpapi"
	"github.com/valyala/fasthttp"
)

// restOutcomes reads helios_gateway_auth_total{protocol="rest",outcome=…}.
func restOutcomes() map[string]uint64 {
	out := map[string]uint64{}
	for _, o := range []string{"ok", "invalid", "expired", "revoked", "forbidden", "tls_required", "unavailable"} {
		out[o] = metrics.GetOrCreateCounter(`helios_gateway_auth_total{protocol="rest",outcome="` + o + `"}`).Get()
	}
	return out
}

// TestOutcomesInGatewaySeries: every REST authentication outcome lands in
// the wire protocols' series with protocol="rest" — the refusals an
// authenticated handler answers (a SQL statement's scope, an issuer-style
// 403 naming scope "*") included — REST has no series of its own, and the
// log names the verified token's id and never the token.
func TestOutcomesInGatewaySeries(t *testing.T) {
	f := newFixture(t)
	var logs bytes.Buffer
	f.router = NewRouter(NewAuthenticator(f.ring, f.revs, AuthOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))}))
	f.router.Mount(
		httpapi.Route{Method: "GET", Path: "/v1/auth/tokens", Authed: func(ctx *fasthttp.RequestCtx, c *core.Claims) {
			if c.Scopes != core.AllScopes {
				httpapi.WriteError(ctx, &httpapi.Error{Status: http.StatusForbidden, Code: core.CodeForbidden,
					Message: "listing tokens needs a full-access token (scope *)", Scope: "*"})
				return
			}
			httpapi.WriteJSON(ctx, http.StatusOK, map[string]any{"tokens": []string{}})
		}},
		httpapi.Route{Method: "GET", Path: "/v1/public", Public: func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(http.StatusNoContent) }},
	)
	all, _ := f.mint(t, core.AllScopes, time.Hour)
	ro, roClaims := f.mint(t, core.ScopeSet(0).With(core.ScopeDatabaseRead), time.Hour)
	metricsOnly, _ := f.mint(t, core.ScopeSet(0).With(core.ScopeMetricsRead), time.Hour)
	now := time.Now().Unix()
	expired, _, _ := core.NewMinter(f.ring).Mint(nil, core.Claims{Type: core.TypeLive, ID: core.NewTokenID(), Account: 1,
		IssuedAt: now - 100, ExpiresAt: now - 10, Scopes: core.AllScopes})
	revoked, rc := f.mint(t, core.AllScopes, time.Hour)
	f.revs.RevokeToken(rc.ID, rc.ExpiresAt)

	before := restOutcomes()
	for _, tc := range []struct {
		method, path, token, body string
		status                    int
	}{
		{"GET", "/v1/auth/tokens", all, "", 200},                                 // ok
		{"POST", "/api/v1/sql", ro, `{"query":"SELECT 1"}`, 200},                 // ok
		{"GET", "/v1/auth/tokens", "", "", 401},                                  // invalid (missing)
		{"GET", "/v1/auth/tokens", flipLast(all), "", 401},                       // invalid
		{"GET", "/v1/auth/tokens", string(expired), "", 401},                     // expired
		{"GET", "/v1/auth/tokens", revoked, "", 401},                             // revoked
		{"POST", "/api/v1/sql", metricsOnly, `{"query":"SELECT 1"}`, 403},        // forbidden by the route
		{"POST", "/api/v1/sql", ro, `{"query":"INSERT INTO t VALUES (1)"}`, 403}, // ok, then forbidden by the statement
		{"GET", "/v1/auth/tokens", ro, "", 403},                                  // ok, then forbidden by the handler
		{"GET", "/v1/public", "", "", 204},                                       // not counted
		{"GET", "/nowhere", all, "", 404},                                        // not counted
	} {
		auth := ""
		if tc.token != "" {
			auth = "Bearer " + tc.token
		}
		if ctx := f.do(tc.method, tc.path, auth, tc.body); ctx.Response.StatusCode() != tc.status {
			t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, ctx.Response.StatusCode(), ctx.Response.Body(), tc.status)
		}
	}
	after := restOutcomes()
	for o, want := range map[string]uint64{"ok": 4, "invalid": 2, "expired": 1, "revoked": 1, "forbidden": 3, "tls_required": 0, "unavailable": 0} {
		if got := after[o] - before[o]; got != want {
			t.Errorf("outcome %s counted %d times, want %d", o, got, want)
		}
	}
	var buf bytes.Buffer
	metrics.WritePrometheus(&buf, false)
	if strings.Contains(buf.String(), "helios_rest_") {
		t.Errorf("REST still exports a series of its own")
	}
	if !strings.Contains(buf.String(), `helios_gateway_handshake_seconds_count{protocol="rest"}`) {
		t.Errorf("no REST handshake histogram")
	}
	out := logs.String()
	for _, want := range []string{
		`msg="authorization failed" protocol=rest remote=127.0.0.1:5000 token_id=` + roClaims.ID.String() + ` outcome=forbidden reason="listing tokens needs a full-access token (scope *)"`,
		`token_id=` + roClaims.ID.String() + ` outcome=forbidden reason="Token does not have required scope: database:write"`,
		`outcome=expired`, `outcome=revoked`, `outcome=invalid reason="no token was given"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, tok := range []string{all, ro, metricsOnly, string(expired), revoked} {
		if strings.Contains(out, tok) || strings.Contains(out, tok[len(tok)-20:]) {
			t.Fatalf("a token is logged:\n%s", out)
		}
	}
}

// TestErrorHandlerCountsMessageSize: a body over the server's bound is 413
// BODY_TOO_LARGE and a message_size limit hit for protocol="rest"; other
// unreadable requests are 400 BAD_REQUEST and no limit hit.
func TestErrorHandlerCountsMessageSize(t *testing.T) {
	hits := metrics.GetOrCreateCounter(`helios_gateway_limit_hits_total{protocol="rest",limit="message_size"}`)
	before := hits.Get()
	for err, want := range map[error]int{fasthttp.ErrBodyTooLarge: 413, fasthttp.ErrNoFreeConns: 400} {
		ctx := &fasthttp.RequestCtx{}
		ctx.Init(&fasthttp.Request{}, clientAddr, nil)
		ErrorHandler(ctx, err)
		if e := decodeErr(t, ctx); ctx.Response.StatusCode() != want || e.Error.Code != map[int]string{413: "BODY_TOO_LARGE", 400: "BAD_REQUEST"}[want] {
			t.Errorf("%v: %d %s", err, ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
	if got := hits.Get() - before; got != 1 {
		t.Fatalf("message_size counted %d times, want 1", got)
	}
}

// flipLast changes a token's last character (to another one, always).
func flipLast(tok string) string {
	c := byte('x')
	if tok[len(tok)-1] == c {
		c = 'y'
	}
	return tok[:len(tok)-1] + string(c)
}

// TestMetricsEndpointAccess: GET /metrics carries # HELP and # TYPE lines;
// from a metrics-allow network it needs no token, from elsewhere it needs a
// metrics:read token (401 without one, 403 with a token lacking the scope,
// in the error body of every endpoint).
func TestMetricsEndpointAccess(t *testing.T) {
	f := newFixture(t)
	metrics.GetOrCreateCounter(`helios_test_metrics_access_total`).Inc()
	ro, _ := f.mint(t, core.ScopeSet(0).With(core.ScopeDatabaseRead), time.Hour)
	reader, _ := f.mint(t, core.ScopeSet(0).With(core.ScopeMetricsRead), time.Hour)
	check := func(name, auth string, want int) {
		t.Helper()
		ctx := f.do("GET", "/metrics", auth, "")
		body := string(ctx.Response.Body())
		if got := ctx.Response.StatusCode(); got != want {
			t.Fatalf("%s: %d %s, want %d", name, got, body, want)
		}
		if want == 200 {
			if !strings.Contains(body, "# HELP helios_test_metrics_access_total") || !strings.Contains(body, "# TYPE helios_test_metrics_access_total counter") {
				t.Fatalf("%s: no # HELP / # TYPE lines:\n%s", name, body)
			}
			return
		}
		code := decodeErr(t, ctx).Error.Code
		if wantCode := map[int]string{401: core.CodeAuthRequired, 403: core.CodeForbidden}[want]; code != wantCode {
			t.Fatalf("%s: code %s, want %s: %s", name, code, wantCode, body)
		}
	}
	check("loopback, default allow, no token", "", 200)
	f.router.SetMetricsAllow([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	check("outside the allow list, no token", "", 401)
	check("outside the allow list, database:read", "Bearer "+ro, 403)
	check("outside the allow list, metrics:read", "Bearer "+reader, 200)
	f.router.SetMetricsAllow([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	check("single allowed host, no token", "", 200)
}
