package httpapi

import (
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// newCtx returns a request context for body from addr.
func newCtx(addr net.Addr, body string) *fasthttp.RequestCtx {
	var req fasthttp.Request
	req.Header.SetMethod("POST")
	req.SetRequestURI("/x")
	req.SetBodyString(body)
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&req, addr, nil)
	return ctx
}

var loopback = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}

// TestCheckText: bodies that are not UTF-8, or whose strings escape a lone
// UTF-16 surrogate, are refused; everything encoding/json decodes without
// substituting U+FFFD passes.
func TestCheckText(t *testing.T) {
	for _, tc := range []struct {
		body string
		ok   bool
		at   string // the byte offset the message names
	}{
		{`{"password":"correct-horse-battery"}`, true, ""},
		{`{"password":"caf` + "\u00e9" + `-horse-battery ` + "\U0001F600" + `"}`, true, ""},
		{`{"password":"` + "\ufffd\ufffd\ufffd\ufffd" + `abcd"}`, true, ""}, // U+FFFD itself is a character
		{`{"password":"\ud83d\ude00 pair, \uD83D\uDE00 upper case, \u00e9 \u0000 \n \" \\"}`, true, ""},
		{`{"password":"\\udcff is an escaped backslash, then text"}`, true, ""},
		{`{"password":"\\\ud83d\ude00"}`, true, ""},
		{`{"password":"` + "\x80\x80\x80\x80\x80\x80\x80\x80" + `"}`, false, "byte 13"},
		{`{"password":"` + "\xff\xfe" + `horse-battery"}`, false, "byte 13"},
		{`{"email":"a@example.com` + "\xc3" + `"}`, false, "byte 23"},
		{"{\"password\":\"\xed\xa0\x80abcdefgh\"}", false, "byte 13"}, // a surrogate encoded as UTF-8 (CESU)
		{`{"password":"\udcff\udcff\udcff\udcff"}`, false, "byte 13"},
		{`{"password":"abc\ud800"}`, false, "byte 16"},
		{`{"password":"abc\ud800\u0041"}`, false, "byte 16"},
		{`{"password":"abc\ud800\ud800"}`, false, "byte 16"},
		{`{"password":"abc\udc00\ud800"}`, false, "byte 16"},
		{`{"password":"\\\udfff"}`, false, "byte 15"},
		{`{"pass\udcffword":"correct-horse-battery"}`, false, "byte 6"},
	} {
		e := CheckText([]byte(tc.body))
		switch {
		case tc.ok && e != nil:
			t.Errorf("%q refused: %v", tc.body, e)
		case !tc.ok && e == nil:
			t.Errorf("%q accepted", tc.body)
		case !tc.ok && (e.Status != 400 || e.Code != CodeInvalidJSON || !strings.Contains(e.Message, tc.at+")")):
			t.Errorf("%q: %d %s %q, want 400 %s naming %s", tc.body, e.Status, e.Code, e.Message, CodeInvalidJSON, tc.at)
		}
		if !tc.ok && e != nil && strings.ContainsAny(e.Message, "\x80\xff\xc3\xed") {
			t.Errorf("%q: the message echoes the bytes: %q", tc.body, e.Message)
		}
	}
}

// TestDecodeJSON: the strict decoder's answers, each naming what to fix;
// the UTF-8 check runs before decoding.
func TestDecodeJSON(t *testing.T) {
	type creds struct {
		Email    string `json:"email"`
		Password string `json:"password"`
		internal int
	}
	for _, tc := range []struct {
		body          string
		required      bool
		status        int
		code, mention string
	}{
		{`{"email":"a@example.com","password":"pw"}`, true, 0, "", ""},
		{` `, false, 0, "", ""},
		{``, true, 400, CodeInvalidJSON, "empty"},
		{`{"email":"a@example.com","x":1}`, true, 400, CodeInvalidRequest, `"x" is not accepted here: accepted fields are email, password`},
		{`{"email":"a@example.com"`, true, 400, CodeInvalidJSON, "ends early"},
		{`{"email":"a"} {}`, true, 400, CodeInvalidJSON, "extra data"},
		{`{"email":"a"} x`, true, 400, CodeInvalidJSON, "extra data"},
		{`{"email":5}`, true, 400, CodeInvalidJSON, `"email" must be a string`},
		{`["a"]`, true, 400, CodeInvalidJSON, "must be a JSON object, not a JSON array"},
		{`{"password":"` + "\x80\x80" + `"}`, true, 400, CodeInvalidJSON, "not valid UTF-8 (byte 13)"},
		{`{"password":"\ud800"}`, true, 400, CodeInvalidJSON, "lone UTF-16 surrogate (byte 13)"},
		{`{"email":"` + strings.Repeat("a", 100) + `"}`, true, 413, CodeBodyTooLarge, "at most 64"},
	} {
		ctx := newCtx(loopback, tc.body)
		var v creds
		ok := DecodeJSON(ctx, &v, 64, tc.required)
		if tc.status == 0 {
			if !ok || ctx.Response.StatusCode() != 200 {
				t.Errorf("%q refused: %s", tc.body, ctx.Response.Body())
			}
			continue
		}
		code, msg, _ := decodeErrorBody(t, ctx.Response.Body())
		if ok || ctx.Response.StatusCode() != tc.status || code != tc.code || !strings.Contains(msg, tc.mention) {
			t.Errorf("%q: %v %d %s %q, want %d %s naming %q", tc.body, ok, ctx.Response.StatusCode(), code, msg, tc.status, tc.code, tc.mention)
		}
	}
	if got := FieldNames(&struct{}{}); got != "none (send no body)" {
		t.Errorf("FieldNames(struct{}) = %q", got)
	}
	if got := FieldNames(&struct {
		A    int `json:"a,omitempty"`
		B    int `json:"-"`
		Name string
	}{}); got != "a, Name" {
		t.Errorf("FieldNames = %q", got)
	}
}

// decodeErrorBody decodes the error body strictly: exactly the keys error,
// and code, message and (optionally) detail inside it.
func decodeErrorBody(t *testing.T, body []byte) (code, message, detail string) {
	t.Helper()
	var outer map[string]map[string]string
	if err := json.Unmarshal(body, &outer); err != nil || len(outer) != 1 || outer["error"] == nil {
		t.Fatalf("not the error body: %s (%v)", body, err)
	}
	e := outer["error"]
	for k := range e {
		if k != "code" && k != "message" && k != "detail" {
			t.Fatalf("error body has %q: %s", k, body)
		}
	}
	if e["code"] == "" || e["message"] == "" {
		t.Fatalf("error body without code or message: %s", body)
	}
	return e["code"], e["message"], e["detail"]
}

// TestWriteError: the error body, Cache-Control, the 403 challenge (with
// the scope when known), Retry-After, escaping, and Refused.
func TestWriteError(t *testing.T) {
	for _, tc := range []struct {
		e         Error
		body      string
		challenge string
		retry     string
	}{
		{Error{Status: 400, Code: "INVALID_JSON", Message: "bad"}, `{"error":{"code":"INVALID_JSON","message":"bad"}}`, "", ""},
		{Error{Status: 401, Code: "INVALID_CREDENTIALS", Message: "wrong"}, `{"error":{"code":"INVALID_CREDENTIALS","message":"wrong"}}`, "", ""},
		{Error{Status: 403, Code: "FORBIDDEN", Message: "needs *", Scope: "*"}, `{"error":{"code":"FORBIDDEN","message":"needs *"}}`,
			`Bearer realm="heliosdb", error="insufficient_scope", scope="*"`, ""},
		{Error{Status: 403, Code: "FORBIDDEN", Message: "no"}, `{"error":{"code":"FORBIDDEN","message":"no"}}`,
			`Bearer realm="heliosdb", error="insufficient_scope"`, ""},
		{Error{Status: 429, Code: "RATE_LIMITED", Message: "slow", RetryAfter: 17}, `{"error":{"code":"RATE_LIMITED","message":"slow"}}`, "", "17"},
		{Error{Status: 400, Code: "X", Message: "a \"q\" <b> & \\ \n\x01 \u2028 \xff é", Detail: "d"},
			`{"error":{"code":"X","message":"a \"q\" <b> & \\ \n\u0001 \u2028 \ufffd é","detail":"d"}}`, "", ""},
	} {
		ctx := newCtx(loopback, "")
		WriteError(ctx, &tc.e)
		h := &ctx.Response.Header
		if ctx.Response.StatusCode() != tc.e.Status || string(ctx.Response.Body()) != tc.body+"\n" ||
			string(h.ContentType()) != "application/json" || string(h.Peek("Cache-Control")) != "no-store" ||
			string(h.Peek("WWW-Authenticate")) != tc.challenge || string(h.Peek("Retry-After")) != tc.retry {
			t.Errorf("%+v: %d %q challenge %q retry %q", tc.e, ctx.Response.StatusCode(), ctx.Response.Body(), h.Peek("WWW-Authenticate"), h.Peek("Retry-After"))
		}
		var v any
		if err := json.Unmarshal(ctx.Response.Body(), &v); err != nil {
			t.Errorf("%q is not JSON: %v", ctx.Response.Body(), err)
		}
		if r := Refused(ctx); (r != nil) != (tc.e.Status == 403) || r != nil && (r.Message != tc.e.Message || r == &tc.e) {
			t.Errorf("%+v: Refused = %+v", tc.e, r)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	ctx := newCtx(loopback, "")
	WriteJSON(ctx, 201, map[string]any{"id": "x"})
	if ctx.Response.StatusCode() != 201 || string(ctx.Response.Body()) != `{"id":"x"}`+"\n" || string(ctx.Response.Header.Peek("Cache-Control")) != "no-store" {
		t.Fatalf("%d %q", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	WriteJSON(ctx, 200, map[string]any{"hint": "Authorization: Bearer <token> & more"})
	if string(ctx.Response.Body()) != `{"hint":"Authorization: Bearer <token> & more"}`+"\n" {
		t.Fatalf("HTML-escaped: %q", ctx.Response.Body())
	}
	WriteJSON(ctx, 200, map[string]any{"f": func() {}})
	if code, _, _ := decodeErrorBody(t, ctx.Response.Body()); ctx.Response.StatusCode() != 500 || code != CodeInternal {
		t.Fatalf("unencodable: %d %q", ctx.Response.StatusCode(), ctx.Response.Body())
	}
}

func TestErrorHandler(t *testing.T) {
	for err, want := range map[error]string{fasthttp.ErrBodyTooLarge: "413 BODY_TOO_LARGE", net.ErrClosed: "400 BAD_REQUEST"} {
		ctx := newCtx(loopback, "")
		ErrorHandler(ctx, err)
		code, _, _ := decodeErrorBody(t, ctx.Response.Body())
		if got := strconv.Itoa(ctx.Response.StatusCode()) + " " + code; got != want {
			t.Errorf("%v: %s, want %s", err, got, want)
		}
	}
}

// TestRemoteAddr: the TCP peer, an IPv4-mapped address as IPv4; forwarding
// headers are ignored.
func TestRemoteAddr(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 4000}, "192.0.2.7:4000"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:198.51.100.9"), Port: 1}, "198.51.100.9:1"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 2}, "[2001:db8::1]:2"},
		{&net.UnixAddr{Name: "/tmp/s", Net: "unix"}, "invalid AddrPort"},
	} {
		ctx := newCtx(tc.addr, "")
		ctx.Request.Header.Set("X-Forwarded-For", "203.0.113.1")
		ctx.Request.Header.Set("Forwarded", "for=203.0.113.1")
		if got := RemoteAddrPort(ctx).String(); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.addr, got, tc.want)
		}
		if RemoteAddr(ctx) != RemoteAddrPort(ctx).Addr() {
			t.Errorf("%v: RemoteAddr %v", tc.addr, RemoteAddr(ctx))
		}
	}
	ctx := newCtx(loopback, "")
	if n := testing.AllocsPerRun(100, func() { _ = RemoteAddr(ctx) }); n != 0 {
		t.Fatalf("RemoteAddr allocates %v times", n)
	}
}
