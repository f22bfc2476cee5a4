package issuer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/heliosdb/auth/core"
	"github.com/valyala/fasthttp"
)

// Handler serves a request whose bearer token the caller's authenticator
// already verified. c is valid only until the handler returns.
type Handler func(ctx *fasthttp.RequestCtx, c *core.Claims)

// Route is one endpoint of the issuer's REST API. Exactly one of Public and
// Authed is set: Public routes take no token, Authed routes need any valid
// token (the handler itself enforces which token types may call it).
type Route struct {
	Method string
	// Path is matched exactly, or as a prefix when it ends in "/" (the
	// handler reads the rest, e.g. the :id of DELETE /v1/auth/tokens/:id).
	Path   string
	Public fasthttp.RequestHandler
	Authed Handler
}

// MaxBody bounds the JSON body of an issuer request.
const MaxBody = 16 << 10

// Routes returns the seed's /v1/auth API.
func (s *Service) Routes() []Route {
	return []Route{
		{Method: "POST", Path: "/v1/auth/signup", Public: s.handleSignup},
		{Method: "POST", Path: "/v1/auth/login", Public: s.handleLogin},
		{Method: "POST", Path: "/v1/auth/logout", Authed: s.handleLogout},
		{Method: "POST", Path: "/v1/auth/logout-all", Authed: s.handleLogoutAll},
		{Method: "POST", Path: "/v1/auth/refresh", Authed: s.handleRefresh},
		{Method: "GET", Path: "/v1/auth/tokens", Authed: s.handleListTokens},
		{Method: "POST", Path: "/v1/auth/tokens", Authed: s.handleCreateToken},
		{Method: "DELETE", Path: "/v1/auth/tokens/", Authed: s.handleRevokeToken},
	}
}

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (s *Service) handleSignup(ctx *fasthttp.RequestCtx) {
	var req credentials
	if !decodeBody(ctx, &req, true) {
		return
	}
	acc, err := s.Signup(req.Email, req.Password, RemoteAddr(ctx))
	if err != nil {
		s.fail(ctx, err)
		return
	}
	WriteJSON(ctx, http.StatusCreated, map[string]any{"id": acc.ID, "email": acc.Email,
		"created_at": time.Unix(acc.Created, 0).UTC()})
}

func (s *Service) handleLogin(ctx *fasthttp.RequestCtx) {
	var req credentials
	if !decodeBody(ctx, &req, true) {
		return
	}
	tok, rec, err := s.Login(req.Email, req.Password, RemoteAddr(ctx))
	if err != nil {
		s.fail(ctx, err)
		return
	}
	WriteJSON(ctx, http.StatusOK, map[string]any{"token": tok, "token_type": "bearer",
		"expires_at": time.Unix(rec.ExpiresAt, 0).UTC()})
}

func (s *Service) handleLogout(ctx *fasthttp.RequestCtx, c *core.Claims) {
	if !decodeBody(ctx, &struct{}{}, false) {
		return
	}
	rec, err := s.Logout(c)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	WriteJSON(ctx, http.StatusOK, map[string]any{"revoked": []string{rec.ID.String()}})
}

func (s *Service) handleLogoutAll(ctx *fasthttp.RequestCtx, c *core.Claims) {
	if e := requireFullAccess(c, "logging out everywhere"); e != nil {
		WriteError(ctx, e) // before the body: a refused caller learns nothing about it
		return
	}
	if !decodeBody(ctx, &struct{}{}, false) {
		return
	}
	nb, err := s.LogoutAll(c)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	WriteJSON(ctx, http.StatusOK, map[string]any{"not_before": nb})
}

func (s *Service) handleRefresh(ctx *fasthttp.RequestCtx, c *core.Claims) {
	if e := requireRefreshable(c); e != nil {
		WriteError(ctx, e)
		return
	}
	if !decodeBody(ctx, &struct{}{}, false) {
		return
	}
	tok, rec, err := s.Refresh(c)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	WriteJSON(ctx, http.StatusOK, map[string]any{"token": tok, "expires_at": time.Unix(rec.ExpiresAt, 0).UTC()})
}

func (s *Service) handleListTokens(ctx *fasthttp.RequestCtx, c *core.Claims) {
	list, err := s.ListTokens(c)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	WriteJSON(ctx, http.StatusOK, map[string]any{"tokens": list})
}

func (s *Service) handleCreateToken(ctx *fasthttp.RequestCtx, c *core.Claims) {
	if e := requireFullAccess(c, "creating tokens"); e != nil {
		WriteError(ctx, e)
		return
	}
	var req CreateTokenRequest
	if !decodeBody(ctx, &req, true) {
		return
	}
	tok, rec, err := s.CreateToken(c, &req)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	info := rec.Info()
	WriteJSON(ctx, http.StatusCreated, map[string]any{"id": info.ID, "name": info.Name, "type": info.Type,
		"token": tok, "expires_at": info.ExpiresAt, "scopes": info.Scopes, "created_at": info.CreatedAt,
		"allowed_ips": info.AllowedIPs})
}

func (s *Service) handleRevokeToken(ctx *fasthttp.RequestCtx, c *core.Claims) {
	if e := requireFullAccess(c, "revoking tokens"); e != nil {
		WriteError(ctx, e)
		return
	}
	id := strings.TrimPrefix(string(ctx.Path()), "/v1/auth/tokens/")
	if id == "" || strings.Contains(id, "/") {
		s.fail(ctx, notFound("DELETE needs a token id: /v1/auth/tokens/tok_…"))
		return
	}
	rec, err := s.RevokeToken(c, id)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	WriteJSON(ctx, http.StatusOK, map[string]any{"id": rec.ID.String(), "name": rec.Name, "revoked": true})
}

// fail writes err: an *APIError as itself, anything else as a 500 (logged
// without request data).
func (s *Service) fail(ctx *fasthttp.RequestCtx, err error) {
	var ae *APIError
	if !errors.As(err, &ae) {
		s.log.Error("issuer request failed", "path", string(ctx.Path()), "err", err)
		ae = errInternal
	}
	WriteError(ctx, ae)
}

// WriteError writes e as the seed's error body. A 403 carries
// WWW-Authenticate: Bearer error="insufficient_scope" (RFC 6750), with
// scope="…" when e.Scope names the scope needed; a 429 carries Retry-After.
func WriteError(ctx *fasthttp.RequestCtx, e *APIError) {
	if e.Status == http.StatusForbidden {
		challenge := `Bearer error="insufficient_scope"`
		if e.Scope != "" {
			challenge += `, scope="` + e.Scope + `"`
		}
		ctx.Response.Header.Set("WWW-Authenticate", challenge)
	}
	if e.RetryAfter > 0 {
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	WriteJSON(ctx, e.Status, map[string]any{"error": map[string]string{"code": e.Code, "message": e.Message}})
}

// WriteJSON writes v as the JSON response body with status.
func WriteJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	b, err := json.Marshal(v)
	if err != nil {
		ctx.SetStatusCode(http.StatusInternalServerError)
		b = []byte(`{"error":{"code":"INTERNAL","message":"response encoding failed"}}`)
	}
	ctx.SetBody(append(b, '\n'))
}

// decodeBody decodes the request's JSON body into v strictly: one object, no
// unknown fields, at most MaxBody bytes, UTF-8 text whose strings hold only
// characters (see checkText). An empty body is accepted when required is
// false. On failure it writes a 400 or 413 saying what to fix.
func decodeBody(ctx *fasthttp.RequestCtx, v any, required bool) bool {
	body := ctx.PostBody()
	if len(body) > MaxBody {
		WriteError(ctx, &APIError{Status: http.StatusRequestEntityTooLarge, Code: CodeBodyTooLarge,
			Message: fmt.Sprintf("request body is %d bytes: at most %d", len(body), MaxBody)})
		return false
	}
	if e := checkText(body); e != nil {
		WriteError(ctx, e)
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if required {
			WriteError(ctx, badRequest(CodeInvalidJSON, "request body is empty: send a JSON object"))
			return false
		}
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("extra data after the JSON object")
	} else if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("extra data after the JSON object")
		}
	}
	if err != nil {
		WriteError(ctx, jsonError(err, v))
		return false
	}
	return true
}

// checkText refuses a body that is not UTF-8 (RFC 8259 §8.1) or whose
// strings escape a lone UTF-16 surrogate, \ud800-\udfff outside a
// high-low pair (RFC 7493 §2.1). encoding/json turns both into U+FFFD, so
// different passwords (or emails) would decode to the same string: a
// password of eight 0x80 bytes would match one of eight 0xff bytes. The
// message names the byte offset, never the bytes. It runs before decoding;
// on a body that is not JSON at all, it may answer first, which is as true.
func checkText(body []byte) *APIError {
	if !utf8.Valid(body) {
		at := 0
		for at < len(body) {
			r, n := utf8.DecodeRune(body[at:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			at += n
		}
		return badRequest(CodeInvalidJSON, "request body is not valid UTF-8 (byte %d): send JSON text encoded as UTF-8", at)
	}
	in := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case !in:
			in = c == '"'
		case c == '"':
			in = false
		case c == '\\':
			hi, ok := escapedUnit(body, i)
			if !ok || !utf16.IsSurrogate(rune(hi)) {
				i++ // the escaped character; a bad escape is the decoder's to report
				continue
			}
			if lo, ok := escapedUnit(body, i+6); ok && hi < 0xdc00 && lo >= 0xdc00 && lo <= 0xdfff {
				i += 11 // a valid pair: one character
				continue
			}
			return badRequest(CodeInvalidJSON, "a string escapes a lone UTF-16 surrogate (byte %d), which is no character: "+
				"escape a character as one \\uXXXX or a surrogate pair, or send it as UTF-8", i)
		}
	}
	return nil
}

// escapedUnit parses the \uXXXX escape at body[i:], if there is one.
func escapedUnit(body []byte, i int) (uint16, bool) {
	if i < 0 || i+6 > len(body) || body[i] != '\\' || body[i+1] != 'u' {
		return 0, false
	}
	var v uint16
	for _, c := range body[i+2 : i+6] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint16(c)
	}
	return v, true
}

// jsonError explains a decoding error in terms of what to fix.
func jsonError(err error, v any) *APIError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return badRequest(CodeInvalidJSON, "malformed JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ) && typ.Field != "":
		return badRequest(CodeInvalidJSON, "field %q must be a %s, not a JSON %s", typ.Field, typ.Type, typ.Value)
	case errors.As(err, &typ):
		return badRequest(CodeInvalidJSON, "the body must be a JSON object, not a JSON %s", typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return badRequest(CodeInvalidRequest, "%s is not accepted here: accepted fields are %s",
			strings.TrimPrefix(err.Error(), "json: "), fieldNames(v))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest(CodeInvalidJSON, "malformed JSON: the body ends early")
	}
	return badRequest(CodeInvalidJSON, "malformed JSON: %s", err.Error())
}

// fieldNames lists the JSON fields v accepts.
func fieldNames(v any) string {
	switch v.(type) {
	case *credentials:
		return "email, password"
	case *CreateTokenRequest:
		return "name, type, scopes, expires_in_days, allowed_ips"
	case *CreateDatabaseRequest:
		return "name, test"
	case *retireRequest:
		return "id"
	}
	return "none (send no body)"
}

// RemoteAddr returns the client's address as a netip.Addr.
func RemoteAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
