package issuer

import (
	"encoding/json"
	"fmt"
	"go/parser"
	"go/token"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/valyala/fasthttp"
)

// call runs one request through a route's handler in memory (the caller's
// authenticator is simulated by passing claims directly).
func call(s *Service, method, path, body string, c *core.Claims) (int, map[string]any, *fasthttp.ResponseHeader) {
	return callFrom(s, net.IPv4(127, 0, 0, 1), method, path, body, c)
}

// callFrom is call from the client address ip.
func callFrom(s *Service, ip net.IP, method, path, body string, c *core.Claims) (int, map[string]any, *fasthttp.ResponseHeader) {
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(path)
	req.SetBodyString(body)
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&req, &net.TCPAddr{IP: ip, Port: 1}, nil)
	for _, rt := range s.Routes() {
		if rt.Method != method || (path != rt.Path && !(strings.HasSuffix(rt.Path, "/") && strings.HasPrefix(path, rt.Path))) {
			continue
		}
		if rt.Public != nil {
			rt.Public(ctx)
		} else {
			rt.Authed(ctx, c)
		}
		break
	}
	var out map[string]any
	json.Unmarshal(ctx.Response.Body(), &out)
	return ctx.Response.StatusCode(), out, &ctx.Response.Header
}

func errCode(m map[string]any) (string, string) {
	e, _ := m["error"].(map[string]any)
	code, _ := e["code"].(string)
	msg, _ := e["message"].(string)
	return code, msg
}

func TestHandlersDecodeStrictly(t *testing.T) {
	f := newFixture(t, nil)
	_, login := f.user(t, "ann@example.com")
	for _, tc := range []struct {
		method, path, body string
		status             int
		code, mention      string
	}{
		{"POST", "/v1/auth/signup", `{"email":"b@example.com","password":"correct-horse-battery","x":1}`, 400, CodeInvalidRequest, "accepted fields are email, password"},
		{"POST", "/v1/auth/signup", `{"email":"b@example.com"`, 400, CodeInvalidJSON, "ends early"},
		{"POST", "/v1/auth/signup", `{"email":"b@example.com","password":"correct-horse-battery"} {}`, 400, CodeInvalidJSON, "extra data"},
		{"POST", "/v1/auth/signup", ``, 400, CodeInvalidJSON, "empty"},
		{"POST", "/v1/auth/signup", `{"email":5}`, 400, CodeInvalidJSON, `"email" must be a string`},
		{"POST", "/v1/auth/signup", `{"email":"` + strings.Repeat("a", MaxBody) + `"}`, 413, CodeBodyTooLarge, strconv.Itoa(MaxBody)},
		{"POST", "/v1/auth/tokens", `{"name":"x","scopes":["nope"]}`, 400, CodeUnknownScope, "valid scopes are"},
		{"POST", "/v1/auth/refresh", `{"x":1}`, 400, CodeInvalidRequest, "send no body"},
		{"DELETE", "/v1/auth/tokens/", ``, 404, CodeTokenNotFound, "needs a token id"},
	} {
		status, body, _ := call(f.svc, tc.method, tc.path, tc.body, &login)
		code, msg := errCode(body)
		if status != tc.status || code != tc.code || !strings.Contains(msg, tc.mention) {
			t.Errorf("%s %s %.40q: %d %s %q", tc.method, tc.path, tc.body, status, code, msg)
		}
	}
	if f.store.LastSeq() != 3 { // the default database, the signup and the login only
		t.Fatalf("refused requests changed state: seq %d", f.store.LastSeq())
	}
	_, _, hdr := call(f.svc, "GET", "/v1/auth/tokens", "", &core.Claims{Type: core.TypeService, Account: login.Account})
	if got := string(hdr.Peek("WWW-Authenticate")); got != `Bearer realm="heliosdb", error="insufficient_scope", scope="*"` {
		t.Fatalf("403 challenge %q", got)
	}
}

// TestNoForbiddenImports: the issuer must not import netio or protocols.
func TestNoForbiddenImports(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	for _, name := range files {
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "github.com/heliosdb/auth/netio") || strings.HasPrefix(p, "github.com/heliosdb/auth/protocols") {
				t.Errorf("%s imports %s", name, p)
			}
		}
	}
}

// TestHandlersRefuseInvalidUTF8: every /v1/auth request body with a string
// that is not UTF-8 (or escapes a lone surrogate) is a 400 INVALID_JSON,
// before anything else happens. Without the check, encoding/json folds such
// bytes to U+FFFD: a password of 0x80 bytes logs in to an account whose
// password is that many U+FFFD, and a signup stores a password nobody typed.
func TestHandlersRefuseInvalidUTF8(t *testing.T) {
	f := newFixture(t, nil)
	_, login := f.user(t, "ann@example.com")
	// An account whose password really is U+FFFD characters (valid UTF-8).
	const fffd = "\ufffd\ufffd\ufffd\ufffd"
	if status, body, _ := call(f.svc, "POST", "/v1/auth/signup", `{"email":"rep@example.com","password":"`+fffd+`abcd"}`, nil); status != 201 {
		t.Fatalf("signup with U+FFFD characters: %d %v", status, body)
	}
	seq := f.store.LastSeq()
	for _, tc := range []struct{ path, body string }{
		{"/v1/auth/login", `{"email":"rep@example.com","password":"` + "\x80\x80\x80\x80" + `abcd"}`},
		{"/v1/auth/login", `{"email":"rep@example.com","password":"\udcff\udcff\udcff\udcffabcd"}`},
		{"/v1/auth/login", `{"email":"rep@example.com","password":"` + strings.Repeat("\x80", 8) + `"}`},
		{"/v1/auth/login", `{"email":"rep@example.com` + "\xff" + `","password":"` + fffd + `abcd"}`},
		{"/v1/auth/signup", `{"email":"new@example.com","password":"` + "\xff\xfe" + `horse-battery-staple"}`},
		{"/v1/auth/signup", `{"email":"new@example.com","password":"horse-battery-staple\ud800"}`},
		{"/v1/auth/signup", `{"email":"new` + "\xe9" + `@example.com","password":"horse-battery-staple"}`},
		{"/v1/auth/tokens", `{"name":"ci` + "\x80" + `","scopes":["database:read"]}`},
		{"/v1/auth/tokens", `{"name":"ci","scopes":["database:read\udfff"]}`},
		{"/v1/auth/tokens", `{"name":"ci","allowed_ips":["10.0.0.1` + "\xc0\xaf" + `"]}`},
		{"/v1/auth/logout", `{"` + "\x80" + `":1}`},
		{"/v1/auth/refresh", "{}\xff"},
		{"/v1/auth/logout-all", `"\ud800"`},
	} {
		status, body, _ := call(f.svc, "POST", tc.path, tc.body, &login)
		if code, msg := errCode(body); status != 400 || code != CodeInvalidJSON || !strings.Contains(msg, "byte") {
			t.Errorf("%s %q: %d %s %q, want 400 %s", tc.path, tc.body, status, code, msg, CodeInvalidJSON)
		}
	}
	if f.store.LastSeq() != seq {
		t.Fatalf("refused requests changed state: seq %d → %d", seq, f.store.LastSeq())
	}
	// The refused signup created nothing: the email is still free, and the
	// right password (as real UTF-8) still logs in to rep@.
	if status, body, _ := call(f.svc, "POST", "/v1/auth/signup", `{"email":"new@example.com","password":"horse-battery-staple"}`, nil); status != 201 {
		t.Fatalf("signup after the refused ones: %d %v", status, body)
	}
	if status, body, _ := call(f.svc, "POST", "/v1/auth/login", `{"email":"rep@example.com","password":"\ufffd\ufffd\ufffd\ufffdabcd"}`, nil); status != 200 {
		t.Fatalf("login with the real password: %d %v", status, body)
	}
}

// testClock is a clock tests move by hand.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *testClock) Add(d time.Duration) { c.ns.Add(int64(d)) }
func newTestClock() *testClock           { c := &testClock{}; c.ns.Store(time.Now().UnixNano()); return c }
func signupBody(email string) string {
	return `{"email":"` + email + `","password":"correct-horse-battery"}`
}
func signupFrom(f *fixture, ip net.IP, email string) (int, map[string]any, *fasthttp.ResponseHeader) {
	return callFrom(f.svc, ip, "POST", "/v1/auth/signup", signupBody(email), nil)
}

// TestSignupRateLimit: repeated signups of a taken email get 429
// RATE_LIMITED with Retry-After (per email, then per address) instead of an
// endless stream of 409 EMAIL_TAKEN; new accounts and invalid input cost
// nothing; the buckets refill.
func TestSignupRateLimit(t *testing.T) {
	clock := newTestClock()
	f := newFixture(t, func(o *Options) { o.Now = clock.Now })
	f.user(t, "ann@example.com")
	attacker, other := net.IPv4(192, 0, 2, 7), net.IPv4(198, 51, 100, 9)

	// Many new accounts and many refused inputs from one address: no 429.
	for i := range 3 * DefaultOptions().SignupPerIP {
		if status, body, _ := signupFrom(f, attacker, fmt.Sprintf("new%d@example.com", i)); status != 201 {
			t.Fatalf("new account %d: %d %v", i, status, body)
		}
		if status, body, _ := callFrom(f.svc, attacker, "POST", "/v1/auth/signup", `{"email":"weak@example.com","password":"short"}`, nil); status != 400 {
			t.Fatalf("weak password %d: %d %v", i, status, body)
		}
	}

	// The reported attack: 120 signups of an existing email in a row.
	first429 := 0
	for i := 1; i <= 120; i++ {
		status, body, hdr := signupFrom(f, attacker, "ANN@example.com")
		code, msg := errCode(body)
		if status == 409 && code == CodeEmailTaken {
			if first429 != 0 {
				t.Fatalf("attempt %d: 409 after a 429 at %d", i, first429)
			}
			continue
		}
		ra, err := strconv.Atoi(string(hdr.Peek("Retry-After")))
		if status != 429 || code != CodeRateLimited || err != nil || ra < 1 || ra > 60 || !strings.Contains(msg, "retry after "+strconv.Itoa(ra)+" seconds") {
			t.Fatalf("attempt %d: %d %s %q Retry-After %q", i, status, code, msg, hdr.Peek("Retry-After"))
		}
		if first429 == 0 {
			first429 = i
		}
	}
	if want := DefaultOptions().SignupPerEmail + 1; first429 != want {
		t.Fatalf("first 429 at attempt %d, want %d", first429, want)
	}
	// The address is spent too (its attempts were not given back when the
	// email's limit answered): a different taken email from it is 429, from
	// elsewhere a 409.
	f.user(t, "bob@example.com")
	if status, body, _ := signupFrom(f, attacker, "bob@example.com"); status != 429 || !strings.Contains(fmt.Sprint(body), "this address") {
		t.Fatalf("spent address, other email: %d %v", status, body)
	}
	if status, _, _ := signupFrom(f, other, "bob@example.com"); status != 409 {
		t.Fatalf("other address: %d", status)
	}
	// ann@ is limited from every address: its 10 failures were counted.
	if status, body, _ := signupFrom(f, other, "ann@example.com"); status != 429 || !strings.Contains(fmt.Sprint(body), "this email") {
		t.Fatalf("limited email from another address: %d %v", status, body)
	}
	// Refill: after Retry-After, the address may try again.
	_, _, hdr := signupFrom(f, attacker, "carol@example.com")
	ra, _ := strconv.Atoi(string(hdr.Peek("Retry-After")))
	clock.Add(time.Duration(ra) * time.Second)
	if status, body, _ := signupFrom(f, attacker, "carol@example.com"); status != 201 {
		t.Fatalf("after Retry-After %ds: %d %v", ra, status, body)
	}

	// IPv6 clients are limited by /64, and 0 disables the limits.
	v6 := newFixture(t, func(o *Options) { o.SignupPerIP, o.SignupPerEmail = 2, 0 })
	v6.user(t, "dan@example.com")
	for i, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"} {
		status, _, _ := signupFrom(v6, net.ParseIP(ip), "dan@example.com")
		if want := []int{409, 409, 429}[i]; status != want {
			t.Fatalf("%s: %d, want %d", ip, status, want)
		}
	}
	if status, _, _ := signupFrom(v6, net.ParseIP("2001:db8:1:3::1"), "dan@example.com"); status != 409 {
		t.Fatalf("another /64: %d", status)
	}
	off := newFixture(t, func(o *Options) { o.SignupPerIP, o.SignupPerEmail = 0, 0 })
	off.user(t, "eve@example.com")
	for i := range 50 {
		if status, _, _ := signupFrom(off, attacker, "eve@example.com"); status != 409 {
			t.Fatalf("limits off, attempt %d: %d", i, status)
		}
	}
}
