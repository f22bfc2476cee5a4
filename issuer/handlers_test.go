package issuer

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/heliosdb/auth/core"
	"github.com/valyala/fasthttp"
)

// call runs one request through a route's handler in memory (the caller's
// authenticator is simulated by passing claims directly).
func call(s *Service, method, path, body string, c *core.Claims) (int, map[string]any, *fasthttp.ResponseHeader) {
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(path)
	req.SetBodyString(body)
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, nil)
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
	if got := string(hdr.Peek("WWW-Authenticate")); got != `Bearer error="insufficient_scope"` {
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
