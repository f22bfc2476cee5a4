package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

// Error is a refused request, in the authentication guide's error body:
//
//	{"error":{"code":"FORBIDDEN","message":"Token does not have required scope: database:write"}}
//
// with "detail" after "message" when Detail is set. Message says what to
// fix; a refused request changed nothing.
type Error struct {
	Status  int
	Code    string
	Message string
	// Detail says what exactly was wrong (a token error's core.Error.Detail,
	// e.g. "the token's checksum does not match: it was mistyped or
	// truncated"); "" sends none.
	Detail string
	// RetryAfter, in seconds, is sent as Retry-After when positive (429,
	// 503).
	RetryAfter int
	// Scope is the scope a 403 needs, sent as the scope attribute of its
	// WWW-Authenticate challenge (RFC 6750 §3); "" sends none.
	Scope string
	// SQLState is a database server's SQLSTATE for an error it raised
	// (POST /api/v1/sql), sent as "sqlstate"; "" sends none.
	SQLState string
	// challenge overrides the WWW-Authenticate value (token errors, see
	// TokenError).
	challenge string
}

// Error returns the code and the message.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Challenge returns the WWW-Authenticate value WriteError sends with e: a
// token error's own (TokenError), else for a 403 the insufficient_scope
// challenge naming Scope, else "" (none).
func (e *Error) Challenge() string {
	switch {
	case e.challenge != "":
		return e.challenge
	case e.Status == http.StatusForbidden:
		return ScopeChallenge(e.Scope)
	}
	return ""
}

// Error codes of the HTTP layer, beyond the guide's AUTH_REQUIRED,
// AUTH_EXPIRED and FORBIDDEN (core.CodeAuthRequired, …).
const (
	CodeInvalidJSON      = "INVALID_JSON"
	CodeInvalidRequest   = "INVALID_REQUEST"
	CodeBodyTooLarge     = "BODY_TOO_LARGE"
	CodeBadRequest       = "BAD_REQUEST"
	CodeNotFound         = "NOT_FOUND"
	CodeMethodNotAllowed = "METHOD_NOT_ALLOWED"
	CodeInternal         = "INTERNAL"
)

// refusalKey is the request's user value holding the 403 WriteError wrote.
type refusalKey struct{}

// WriteError writes e: its status, the error body, Cache-Control:
// no-store, its WWW-Authenticate challenge (Error.Challenge) and
// Retry-After. A 403 is also remembered for Refused. It does not keep e.
func WriteError(ctx *fasthttp.RequestCtx, e *Error) {
	if e.Status == http.StatusForbidden {
		cp := *e
		ctx.SetUserValue(refusalKey{}, &cp)
	}
	ctx.SetStatusCode(e.Status)
	ctx.SetContentType("application/json")
	h := &ctx.Response.Header
	h.Set("Cache-Control", "no-store")
	if c := e.Challenge(); c != "" {
		h.Set("WWW-Authenticate", c)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	var buf [512]byte
	b := AppendErrorJSON(buf[:0], e.Code, e.Message, e.Detail)
	if e.SQLState != "" {
		b = append(b[:len(b)-2], `,"sqlstate":`...)
		b = append(appendJSONString(b, e.SQLState), "}}"...)
	}
	ctx.SetBody(append(b, '\n'))
}

// Refused returns the 403 that WriteError last wrote for this request, or
// nil: an authenticator counts refusals its handlers answered.
func Refused(ctx *fasthttp.RequestCtx) *Error {
	e, _ := ctx.UserValue(refusalKey{}).(*Error)
	return e
}

// AppendErrorJSON appends the error body {"error":{"code":…,"message":…}}
// (with "detail" when detail is not "") to dst, without a newline.
func AppendErrorJSON(dst []byte, code, message, detail string) []byte {
	dst = append(dst, `{"error":{"code":`...)
	dst = appendJSONString(dst, code)
	dst = append(dst, `,"message":`...)
	dst = appendJSONString(dst, message)
	if detail != "" {
		dst = append(dst, `,"detail":`...)
		dst = appendJSONString(dst, detail)
	}
	return append(dst, "}}"...)
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// does with SetEscapeHTML(false): quotes, backslashes, control characters,
// U+2028 and U+2029; invalid UTF-8 becomes U+FFFD. <, > and & stay as they
// are (messages such as "Authorization: Bearer <token>" read as written).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&15])
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}

// WriteJSON writes v as the JSON response body with status and
// Cache-Control: no-store. <, > and & are not escaped (MarshalJSON).
func WriteJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	b, err := MarshalJSON(v)
	if err != nil {
		ctx.SetStatusCode(http.StatusInternalServerError)
		b = AppendErrorJSON(nil, CodeInternal, "response encoding failed", "")
	}
	ctx.SetBody(append(b, '\n'))
}

// MarshalJSON is json.Marshal without HTML escaping: <, > and & are
// written as themselves rather than \u003c, \u003e and \u0026, which only
// matter when JSON is embedded in HTML, never in an API body.
func MarshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// ErrorHandler is the fasthttp.Server ErrorHandler: a request fasthttp
// could not read is answered 413 BODY_TOO_LARGE or 400 BAD_REQUEST in the
// error body.
func ErrorHandler(ctx *fasthttp.RequestCtx, err error) {
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		WriteError(ctx, &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeBodyTooLarge, Message: "request body is too large"})
		return
	}
	WriteError(ctx, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: "the request could not be parsed as HTTP/1.1"})
}
