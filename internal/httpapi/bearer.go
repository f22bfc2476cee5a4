package httpapi

import (
	"errors"
	"net/http"

	"github.com/heliosdb/auth/core"
	"github.com/valyala/fasthttp"
)

// Realm is the realm every Bearer challenge names.
const Realm = "heliosdb"

// WWW-Authenticate values (RFC 6750 §3), the realm first. A request with no
// token gets the challenge without an error code (§3.1).
const (
	// ChallengeMissing answers a request without a token (401), and a
	// genuine token used from an address its allowlist excludes (403).
	ChallengeMissing = `Bearer realm="` + Realm + `"`
	// ChallengeInvalid answers a malformed, forged, expired or revoked
	// token (401).
	ChallengeInvalid = ChallengeMissing + `, error="invalid_token"`
	// ChallengeInsufficientScope answers a valid token refused for lack of
	// privilege (403); ScopeChallenge adds the scope needed.
	ChallengeInsufficientScope = ChallengeMissing + `, error="insufficient_scope"`
)

// scopeChallenges holds ScopeChallenge's answer for "*" and every scope
// name, so that a 403 names its scope without allocating.
var scopeChallenges = func() map[string]string {
	m := map[string]string{"*": ChallengeInsufficientScope + `, scope="*"`}
	for s := core.Scope(0); s < core.Scope(core.NumScopes); s++ {
		m[s.String()] = ChallengeInsufficientScope + `, scope="` + s.String() + `"`
	}
	return m
}()

// forbiddenScopes maps each core.ForbiddenError to the scope it names.
var forbiddenScopes = func() map[*core.Error]string {
	m := make(map[*core.Error]string, core.NumScopes)
	for s := core.Scope(0); s < core.Scope(core.NumScopes); s++ {
		m[core.ForbiddenError(s)] = s.String()
	}
	return m
}()

// ScopeChallenge returns the insufficient_scope challenge naming scope
// (RFC 6750 §3: space-separated scope tokens of %x21 / %x23-5B / %x5D-7E);
// without the scope attribute when scope is "" or not that syntax.
func ScopeChallenge(scope string) string {
	if c, ok := scopeChallenges[scope]; ok {
		return c
	}
	if scope == "" {
		return ChallengeInsufficientScope
	}
	for i := 0; i < len(scope); i++ {
		if c := scope[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return ChallengeInsufficientScope
		}
	}
	return ChallengeInsufficientScope + `, scope="` + scope + `"`
}

// ErrNotBearer is an Authorization header with another scheme.
var ErrNotBearer = &core.Error{Kind: core.KindInvalid, Message: core.MsgInvalid,
	Detail: `use the header "Authorization: Bearer <token>"`}

// hdrAuthorization is the canonical header name, for PeekCanonical (which,
// unlike Peek, does not copy the key).
var hdrAuthorization = []byte("Authorization")

// RequestToken returns the bearer token of the request's Authorization
// header (see BearerToken), a sub-slice of the header valid until the
// request ends. It does not allocate.
func RequestToken(ctx *fasthttp.RequestCtx) ([]byte, error) {
	return BearerToken(ctx.Request.Header.PeekCanonical(hdrAuthorization))
}

// BearerToken returns the token of an Authorization header value
// "Bearer <token>" (the scheme is case-insensitive; RFC 6750 §2.1). The
// result is a sub-slice of h, valid as long as h is. It returns
// core.ErrMissing when h or the token is empty ("Bearer", "Bearer ") and
// ErrNotBearer for another scheme. Whitespace inside or after the token is left for the verifier to
// report.
func BearerToken(h []byte) ([]byte, error) {
	if len(h) == 0 {
		return nil, core.ErrMissing
	}
	const scheme = "bearer"
	if len(h) < len(scheme) || len(h) > len(scheme) && h[len(scheme)] != ' ' {
		return nil, ErrNotBearer
	}
	for i := 0; i < len(scheme); i++ {
		if h[i]|0x20 != scheme[i] {
			return nil, ErrNotBearer
		}
	}
	if len(h) == len(scheme) {
		return nil, core.ErrMissing // "Bearer" alone (clients drop a trailing space)
	}
	tok := h[len(scheme)+1:]
	for len(tok) > 0 && tok[0] == ' ' {
		tok = tok[1:]
	}
	if len(tok) == 0 {
		return nil, core.ErrMissing
	}
	return tok, nil
}

// TokenError returns a token error (Verify, Require, AllowAddr,
// AllowDatabase) as the HTTP answer, in the guide's words:
//
//	no token                      401 AUTH_REQUIRED  ChallengeMissing
//	invalid or revoked token      401 AUTH_REQUIRED  ChallengeInvalid
//	expired token                 401 AUTH_EXPIRED   ChallengeInvalid
//	scope missing                 403 FORBIDDEN      ScopeChallenge(scope)
//	test token, live database     403 FORBIDDEN      ChallengeInsufficientScope
//	address not in allowed_ips    403 FORBIDDEN      ChallengeMissing
//	revocation state unavailable  503 AUTH_REQUIRED  none, Retry-After: 1
//
// The message is core.Error.Message and the detail core.Error.Detail (an
// error that is not a *core.Error is an invalid token whose detail is its
// text). It does not allocate for a *core.Error.
func TokenError(err error) Error {
	te, ok := err.(*core.Error)
	if !ok {
		te = wrappedTokenError(err)
	}
	e := Error{Status: http.StatusUnauthorized, Code: te.Code(), Message: te.Message, Detail: te.Detail, challenge: ChallengeInvalid}
	switch {
	case te == core.ErrMissing:
		e.challenge = ChallengeMissing
	case te.Kind == core.KindUnavailable:
		e.Status, e.RetryAfter, e.challenge = http.StatusServiceUnavailable, 1, ""
	case te == core.ErrAddrNotAllowed:
		e.Status, e.challenge = http.StatusForbidden, ChallengeMissing
	case te.Kind == core.KindForbidden:
		e.Status, e.Scope = http.StatusForbidden, forbiddenScopes[te]
		e.challenge = ScopeChallenge(e.Scope)
	}
	return e
}

// wrappedTokenError returns the *core.Error err wraps, or an invalid-token
// error whose detail is err's text.
func wrappedTokenError(err error) *core.Error {
	var te *core.Error
	if errors.As(err, &te) {
		return te
	}
	return &core.Error{Kind: core.KindInvalid, Message: core.MsgInvalid, Detail: err.Error()}
}

// WriteTokenError writes TokenError(err).
func WriteTokenError(ctx *fasthttp.RequestCtx, err error) {
	e := TokenError(err)
	WriteError(ctx, &e)
}
