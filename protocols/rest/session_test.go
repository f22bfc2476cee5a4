package rest

import (
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/valyala/fasthttp"
)

type fixture struct {
	ring   *core.Keyring
	revs   *core.MemoryRevocations
	router *Router
	used   *usageMap
}

type usageMap struct {
	mu sync.Mutex
	m  map[core.TokenID]int64
}

func (u *usageMap) Record(id core.TokenID, _ uint64, at int64) {
	u.mu.Lock()
	u.m[id] = at
	u.mu.Unlock()
}

func newFixture(t testing.TB) *fixture {
	f := &fixture{ring: core.GenerateKeyring(time.Now()), revs: core.NewMemoryRevocations(), used: &usageMap{m: map[core.TokenID]int64{}}}
	auth := NewAuthenticator(f.ring, f.revs, AuthOptions{Usage: f.used})
	f.router = NewRouter(auth)
	f.router.Protected("GET", "/v1/auth/tokens", func(ctx *fasthttp.RequestCtx, c *core.Claims) {
		ctx.SetStatusCode(200)
		ctx.SetBodyString("ok")
	})
	return f
}

func (f *fixture) mint(t testing.TB, scopes core.ScopeSet, life time.Duration) (string, core.Claims) {
	now := time.Now().Unix()
	tok, c, err := core.NewMinter(f.ring).Mint(nil, core.Claims{Type: core.TypeLive, ID: core.NewTokenID(), Account: 1,
		IssuedAt: now - 10, ExpiresAt: now + int64(life/time.Second), Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return string(tok), c
}

var clientAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}

// do runs one request through the router in memory.
func (f *fixture) do(method, path, auth, body string) *fasthttp.RequestCtx {
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(path)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.SetBodyString(body)
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&req, clientAddr, nil)
	f.router.Handler(ctx)
	return ctx
}

type errBody struct {
	Error struct{ Code, Message, Detail string } `json:"error"`
}

func decodeErr(t *testing.T, ctx *fasthttp.RequestCtx) errBody {
	t.Helper()
	var e errBody
	if err := json.Unmarshal(ctx.Response.Body(), &e); err != nil {
		t.Fatalf("error body %q: %v", ctx.Response.Body(), err)
	}
	return e
}

func TestTokenErrors(t *testing.T) {
	f := newFixture(t)
	good, gc := f.mint(t, core.AllScopes, time.Hour)
	now := time.Now().Unix()
	expired, _, _ := core.NewMinter(f.ring).Mint(nil, core.Claims{Type: core.TypeLive, ID: core.NewTokenID(), Account: 1,
		IssuedAt: now - 100, ExpiresAt: now - 10, Scopes: core.AllScopes})
	revoked, rc := f.mint(t, core.AllScopes, time.Hour)
	f.revs.RevokeToken(rc.ID, rc.ExpiresAt)
	readOnly, _ := f.mint(t, core.ScopeSet(0).With(core.ScopeMetricsRead), time.Hour)

	for name, tc := range map[string]struct {
		path, auth, body string
		status           int
		code, challenge  string
	}{
		"missing":   {"/v1/auth/tokens", "", "", 401, "AUTH_REQUIRED", `Bearer realm="heliosdb"`},
		"basic":     {"/v1/auth/tokens", "Basic dXNlcjpwYXNz", "", 401, "AUTH_REQUIRED", `Bearer realm="heliosdb", error="invalid_token"`},
		"tampered":  {"/v1/auth/tokens", "Bearer " + good[:40] + "x" + good[41:], "", 401, "AUTH_REQUIRED", `Bearer realm="heliosdb", error="invalid_token"`},
		"expired":   {"/v1/auth/tokens", "Bearer " + string(expired), "", 401, "AUTH_EXPIRED", `Bearer realm="heliosdb", error="invalid_token"`},
		"revoked":   {"/v1/auth/tokens", "Bearer " + revoked, "", 401, "AUTH_REQUIRED", `Bearer realm="heliosdb", error="invalid_token"`},
		"no scope":  {"/api/v1/sql", "Bearer " + readOnly, `{"query":"SELECT 1"}`, 403, "FORBIDDEN", `Bearer realm="heliosdb", error="insufficient_scope", scope="database:read"`},
		"not found": {"/nope", "", "", 404, "NOT_FOUND", ""},
	} {
		ctx := f.do(map[bool]string{true: "POST", false: "GET"}[tc.path == "/api/v1/sql"], tc.path, tc.auth, tc.body)
		if ctx.Response.StatusCode() != tc.status {
			t.Errorf("%s: status %d, want %d: %s", name, ctx.Response.StatusCode(), tc.status, ctx.Response.Body())
			continue
		}
		e := decodeErr(t, ctx)
		if e.Error.Code != tc.code || e.Error.Message == "" {
			t.Errorf("%s: body %s", name, ctx.Response.Body())
		}
		if got := string(ctx.Response.Header.Peek("WWW-Authenticate")); got != tc.challenge {
			t.Errorf("%s: WWW-Authenticate %q, want %q", name, got, tc.challenge)
		}
	}
	if e := decodeErr(t, f.do("POST", "/api/v1/sql", "Bearer "+readOnly, `{"query":"SELECT 1"}`)); e.Error.Message != "Token does not have required scope: database:read" {
		t.Errorf("forbidden message %q", e.Error.Message)
	}
	if ctx := f.do("GET", "/v1/auth/tokens", "Bearer "+good, ""); ctx.Response.StatusCode() != 200 || f.used.m[gc.ID] == 0 {
		t.Fatalf("good token: %d %s (used %v)", ctx.Response.StatusCode(), ctx.Response.Body(), f.used)
	}
	if ctx := f.do("DELETE", "/healthz", "", ""); ctx.Response.StatusCode() != 405 || string(ctx.Response.Header.Peek("Allow")) != "GET" {
		t.Fatalf("405: %d %q", ctx.Response.StatusCode(), ctx.Response.Header.Peek("Allow"))
	}
}

// TestSuccessPathAllocs proves the authentication middleware and router
// allocate nothing on success.
func TestSuccessPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	f := newFixture(t)
	tok, _ := f.mint(t, core.AllScopes, time.Hour)
	var req fasthttp.Request
	req.Header.SetMethod("GET")
	req.SetRequestURI("/v1/auth/tokens")
	req.Header.Set("Authorization", "Bearer "+tok)
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&req, clientAddr, nil)
	f.router.Handler(ctx) // warm the pool and the verifier's hasher
	allocs := testing.AllocsPerRun(1000, func() {
		ctx.Response.Reset()
		f.router.Handler(ctx)
	})
	if ctx.Response.StatusCode() != 200 {
		t.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	if allocs != 0 {
		t.Fatalf("authenticated request allocates %v times", allocs)
	}
}

func TestSQLResponder(t *testing.T) {
	f := newFixture(t)
	all, c := f.mint(t, core.AllScopes, time.Hour)
	ro, _ := f.mint(t, core.ScopeSet(0).With(core.ScopeDatabaseRead), time.Hour)
	var res struct {
		Columns []struct{ Name, Type string } `json:"columns"`
		Rows    [][]any                       `json:"rows"`
	}
	ctx := f.do("POST", "/api/v1/sql", "Bearer "+ro, `{"query":" select 1 ;"}`)
	if err := json.Unmarshal(ctx.Response.Body(), &res); err != nil || len(res.Rows) != 1 || res.Rows[0][0] != float64(1) {
		t.Fatalf("SELECT 1: %s", ctx.Response.Body())
	}
	ctx = f.do("POST", "/api/v1/sql", "Bearer "+all, `{"query":"SELECT * FROM helios_whoami()"}`)
	if err := json.Unmarshal(ctx.Response.Body(), &res); err != nil || columnNames(res.Columns) != "token_id,type,scopes,expires_at" ||
		res.Rows[0][0] != c.ID.String() || res.Rows[0][1] != "live" || res.Rows[0][2] != "*" {
		t.Fatalf("whoami: %s", ctx.Response.Body())
	}
	if ctx := f.do("POST", "/api/v1/sql", "Bearer "+ro, `{"query":"INSERT INTO t VALUES (1)"}`); ctx.Response.StatusCode() != 403 ||
		decodeErr(t, ctx).Error.Message != "Token does not have required scope: database:write" {
		t.Fatalf("read-only insert: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	if ctx := f.do("POST", "/api/v1/sql", "Bearer "+all, `{"query":"SELECT now()"}`); ctx.Response.StatusCode() != 501 || decodeErr(t, ctx).Error.Code != "NO_UPSTREAM" {
		t.Fatalf("other query: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	if ctx := f.do("POST", "/api/v1/sql", "Bearer "+all, `{"query":1}`); ctx.Response.StatusCode() != 400 {
		t.Fatalf("bad body: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
}

// BenchmarkAuthenticatedRequest is the REST authentication path: header,
// verify, scope, usage, route, handler.
func BenchmarkAuthenticatedRequest(b *testing.B) {
	f := newFixture(b)
	tok, _ := f.mint(b, core.AllScopes, time.Hour)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var req fasthttp.Request
		req.Header.SetMethod("GET")
		req.SetRequestURI("/v1/auth/tokens")
		req.Header.Set("Authorization", "Bearer "+tok)
		ctx := &fasthttp.RequestCtx{}
		ctx.Init(&req, clientAddr, nil)
		for pb.Next() {
			ctx.Response.Reset()
			f.router.Handler(ctx)
		}
	})
}

// TestRefusalLogsTokenIDOnlyWhenVerified: a refused request's log line
// names the token id when the token's MAC verified (expired, revoked) and
// never for a token that did not verify (forged, malformed).
func TestRefusalLogsTokenIDOnlyWhenVerified(t *testing.T) {
	f := newFixture(t)
	var logs strings.Builder
	auth := NewAuthenticator(f.ring, f.revs, AuthOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	f.router = NewRouter(auth)
	f.router.Protected("GET", "/v1/auth/tokens", func(ctx *fasthttp.RequestCtx, _ *core.Claims) { ctx.SetStatusCode(200) })
	now := time.Now().Unix()
	expiredB, ec, err := core.NewMinter(f.ring).Mint(nil, core.Claims{Type: core.TypeLive, ID: core.NewTokenID(), Account: 1,
		IssuedAt: now - 3600, ExpiresAt: now - 60, Scopes: core.AllScopes})
	if err != nil {
		t.Fatal(err)
	}
	expired := string(expiredB)
	revoked, rc := f.mint(t, core.AllScopes, time.Hour)
	f.revs.RevokeToken(rc.ID, rc.ExpiresAt)
	_, lc := f.mint(t, core.AllScopes, time.Hour)
	forged, _, err := core.NewMinter(core.GenerateKeyring(time.Now())).Mint(nil, lc) // same key id, other secret
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tok string
		id  string // "" when no id may be logged
	}{
		{expired, ec.ID.String()},
		{revoked, rc.ID.String()},
		{string(forged), ""},
		{"hdb_live_nonsense", ""},
	} {
		logs.Reset()
		if ctx := f.do("GET", "/v1/auth/tokens", "Bearer "+tc.tok, ""); ctx.Response.StatusCode() != 401 {
			t.Fatalf("status %d", ctx.Response.StatusCode())
		}
		line := logs.String()
		if tc.id != "" && !strings.Contains(line, "token_id="+tc.id) {
			t.Fatalf("the verified token's id is not logged: %s", line)
		}
		if tc.id == "" && (strings.Contains(line, "token_id=tok_") || strings.Contains(line, lc.ID.String())) {
			t.Fatalf("an unverified token's id is logged: %s", line)
		}
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
