package rest

import (
	"errors"
	"net/http"

	"github.com/heliosdb/auth/core"
	"github.com/valyala/fasthttp"
)

// WWW-Authenticate values (RFC 6750 §3). A request with no token gets the
// challenge without an error code, as §3.1 asks.
const (
	challengeMissing = `Bearer realm="heliosdb"`
	challengeInvalid = `Bearer realm="heliosdb", error="invalid_token"`
	challengeScope   = `Bearer realm="heliosdb", error="insufficient_scope"`
)

// WriteTokenError writes a token error in the seed's words: 401
// AUTH_REQUIRED (invalid, revoked) or AUTH_EXPIRED with error="invalid_token",
// 403 FORBIDDEN with error="insufficient_scope".
func WriteTokenError(ctx *fasthttp.RequestCtx, err error) {
	var te *core.Error
	if !errors.As(err, &te) {
		te = &core.Error{Kind: core.KindInvalid, Message: core.MsgInvalid, Detail: err.Error()}
	}
	status, challenge := http.StatusUnauthorized, challengeInvalid
	switch {
	case te == core.ErrMissing:
		challenge = challengeMissing
	case te.Kind == core.KindUnavailable:
		status = http.StatusServiceUnavailable
		ctx.Response.Header.Set("Retry-After", "1")
	case te.Kind == core.KindForbidden:
		status, challenge = http.StatusForbidden, challengeScope
		if te == core.ErrAddrNotAllowed {
			challenge = challengeMissing
		}
	}
	ctx.Response.Header.Set("WWW-Authenticate", challenge)
	WriteError(ctx, status, te.Code(), te.Message, te.Detail)
}

// WriteError writes the seed's error body
// {"error":{"code":…,"message":…}} with status; detail, when set, is added
// as "detail" (what exactly was wrong and how to fix it).
func WriteError(ctx *fasthttp.RequestCtx, status int, code, message, detail string) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	var buf [512]byte
	b := append(buf[:0], `{"error":{"code":`...)
	b = appendJSONString(b, code)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, message)
	if detail != "" {
		b = append(b, `,"detail":`...)
		b = appendJSONString(b, detail)
	}
	b = append(b, "}}\n"...)
	ctx.SetBody(b)
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// ErrorHandler answers requests fasthttp could not parse (too large, bad
// framing) with the seed's error body.
func ErrorHandler(ctx *fasthttp.RequestCtx, err error) {
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		WriteError(ctx, http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE", "request body is too large", "")
		return
	}
	WriteError(ctx, http.StatusBadRequest, "BAD_REQUEST", "the request could not be parsed as HTTP/1.1", "")
}
