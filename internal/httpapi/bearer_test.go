package httpapi

import (
	"errors"
	"net/http"
	"testing"

	"github.com/heliosdb/auth/core"
)

func TestBearerToken(t *testing.T) {
	for in, want := range map[string]string{"Bearer abc": "abc", "bearer  abc": "abc", "BEARER abc": "abc", "Bearer abc def": "abc def"} {
		got, err := BearerToken([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	for in, want := range map[string]error{"": core.ErrMissing, "Bearer ": core.ErrMissing, "Bearer   ": core.ErrMissing, "Bearer": core.ErrMissing,
		"bearer": core.ErrMissing, "Basic abc": ErrNotBearer, "Bearerabc": ErrNotBearer, "Beare abc": ErrNotBearer, "Beare": ErrNotBearer, "Basic": ErrNotBearer} {
		if _, err := BearerToken([]byte(in)); err != want {
			t.Errorf("%q: %v, want %v", in, err, want)
		}
	}
	ctx := newCtx(loopback, "")
	ctx.Request.Header.Set("Authorization", "Bearer hdb_live_x")
	if tok, err := RequestToken(ctx); string(tok) != "hdb_live_x" || err != nil {
		t.Fatalf("RequestToken: %q %v", tok, err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = RequestToken(ctx) }); n != 0 {
		t.Fatalf("RequestToken allocates %v times", n)
	}
}

// TestChallenges: the exact WWW-Authenticate spellings (RFC 6750 §3).
func TestChallenges(t *testing.T) {
	for got, want := range map[string]string{
		ChallengeMissing:                  `Bearer realm="heliosdb"`,
		ChallengeInvalid:                  `Bearer realm="heliosdb", error="invalid_token"`,
		ChallengeInsufficientScope:        `Bearer realm="heliosdb", error="insufficient_scope"`,
		ScopeChallenge("*"):               `Bearer realm="heliosdb", error="insufficient_scope", scope="*"`,
		ScopeChallenge("database:write"):  `Bearer realm="heliosdb", error="insufficient_scope", scope="database:write"`,
		ScopeChallenge("a:b c:d"):         `Bearer realm="heliosdb", error="insufficient_scope", scope="a:b c:d"`,
		ScopeChallenge(""):                `Bearer realm="heliosdb", error="insufficient_scope"`,
		ScopeChallenge(`x", error="evil`): `Bearer realm="heliosdb", error="insufficient_scope"`,
		ScopeChallenge("a\r\nSet-Cookie"): `Bearer realm="heliosdb", error="insufficient_scope"`,
	} {
		if got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = ScopeChallenge("schema:write") }); n != 0 {
		t.Fatalf("ScopeChallenge of a known scope allocates %v times", n)
	}
}

// TestTokenErrors: every kind of token error as status, code, challenge,
// Retry-After and body, written by WriteTokenError.
func TestTokenErrors(t *testing.T) {
	for _, tc := range []struct {
		err       error
		status    int
		code      string
		challenge string
		retry     string
	}{
		{core.ErrMissing, 401, "AUTH_REQUIRED", `Bearer realm="heliosdb"`, ""},
		{ErrNotBearer, 401, "AUTH_REQUIRED", `Bearer realm="heliosdb", error="invalid_token"`, ""},
		{core.ErrBadMAC, 401, "AUTH_REQUIRED", `Bearer realm="heliosdb", error="invalid_token"`, ""},
		{core.ErrMalformed, 401, "AUTH_REQUIRED", `Bearer realm="heliosdb", error="invalid_token"`, ""},
		{core.ErrExpired, 401, "AUTH_EXPIRED", `Bearer realm="heliosdb", error="invalid_token"`, ""},
		{core.ErrRevoked, 401, "AUTH_REQUIRED", `Bearer realm="heliosdb", error="invalid_token"`, ""},
		{core.ErrLoggedOut, 401, "AUTH_REQUIRED", `Bearer realm="heliosdb", error="invalid_token"`, ""},
		{core.ErrKeyRetired, 401, "AUTH_REQUIRED", `Bearer realm="heliosdb", error="invalid_token"`, ""},
		{core.ForbiddenError(core.ScopeDatabaseWrite), 403, "FORBIDDEN", `Bearer realm="heliosdb", error="insufficient_scope", scope="database:write"`, ""},
		{core.ForbiddenError(core.ScopeBillingWrite), 403, "FORBIDDEN", `Bearer realm="heliosdb", error="insufficient_scope", scope="billing:write"`, ""},
		{core.ErrTestDatabaseOnly, 403, "FORBIDDEN", `Bearer realm="heliosdb", error="insufficient_scope"`, ""},
		{core.ErrAddrNotAllowed, 403, "FORBIDDEN", `Bearer realm="heliosdb"`, ""},
		{core.ErrUnavailable, 503, "AUTH_REQUIRED", "", "1"},
		{errors.New("something else"), 401, "AUTH_REQUIRED", `Bearer realm="heliosdb", error="invalid_token"`, ""},
	} {
		ctx := newCtx(loopback, "")
		WriteTokenError(ctx, tc.err)
		h := &ctx.Response.Header
		code, msg, detail := decodeErrorBody(t, ctx.Response.Body())
		if ctx.Response.StatusCode() != tc.status || code != tc.code || string(h.Peek("WWW-Authenticate")) != tc.challenge ||
			string(h.Peek("Retry-After")) != tc.retry || string(h.Peek("Cache-Control")) != "no-store" {
			t.Errorf("%v: %d %s challenge %q retry %q", tc.err, ctx.Response.StatusCode(), code, h.Peek("WWW-Authenticate"), h.Peek("Retry-After"))
		}
		var te *core.Error
		if errors.As(tc.err, &te) && (msg != te.Message || detail != te.Detail) {
			t.Errorf("%v: message %q detail %q", tc.err, msg, detail)
		}
		if (Refused(ctx) != nil) != (tc.status == http.StatusForbidden) {
			t.Errorf("%v: Refused %v", tc.err, Refused(ctx))
		}
	}
	// A 401 is written without allocating beyond the response's own
	// buffers (warmed by the first call).
	ctx := newCtx(loopback, "")
	WriteTokenError(ctx, core.ErrBadMAC)
	if n := testing.AllocsPerRun(100, func() { WriteTokenError(ctx, core.ErrBadMAC) }); n != 0 {
		t.Fatalf("WriteTokenError allocates %v times", n)
	}
}
