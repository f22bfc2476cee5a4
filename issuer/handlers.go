package issuer

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/httpapi"
	"github.com/valyala/fasthttp"
)

// MaxBody bounds the JSON body of an issuer request.
const MaxBody = 16 << 10

// Routes returns the seed's /v1/auth API.
func (s *Service) Routes() []httpapi.Route {
	return []httpapi.Route{
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
	acc, err := s.Signup(req.Email, req.Password, httpapi.RemoteAddr(ctx))
	if err != nil {
		s.fail(ctx, err)
		return
	}
	httpapi.WriteJSON(ctx, http.StatusCreated, map[string]any{"id": acc.ID, "email": acc.Email,
		"created_at": time.Unix(acc.Created, 0).UTC()})
}

func (s *Service) handleLogin(ctx *fasthttp.RequestCtx) {
	var req credentials
	if !decodeBody(ctx, &req, true) {
		return
	}
	tok, rec, err := s.Login(req.Email, req.Password, httpapi.RemoteAddr(ctx))
	if err != nil {
		s.fail(ctx, err)
		return
	}
	httpapi.WriteJSON(ctx, http.StatusOK, map[string]any{"token": tok, "token_type": "bearer",
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
	httpapi.WriteJSON(ctx, http.StatusOK, map[string]any{"revoked": []string{rec.ID.String()}})
}

func (s *Service) handleLogoutAll(ctx *fasthttp.RequestCtx, c *core.Claims) {
	if e := requireFullAccess(c, "logging out everywhere"); e != nil {
		httpapi.WriteError(ctx, e) // before the body: a refused caller learns nothing about it
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
	httpapi.WriteJSON(ctx, http.StatusOK, map[string]any{"not_before": nb})
}

func (s *Service) handleRefresh(ctx *fasthttp.RequestCtx, c *core.Claims) {
	if e := requireRefreshable(c); e != nil {
		httpapi.WriteError(ctx, e)
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
	httpapi.WriteJSON(ctx, http.StatusOK, map[string]any{"token": tok, "expires_at": time.Unix(rec.ExpiresAt, 0).UTC()})
}

func (s *Service) handleListTokens(ctx *fasthttp.RequestCtx, c *core.Claims) {
	list, err := s.ListTokens(c)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	httpapi.WriteJSON(ctx, http.StatusOK, map[string]any{"tokens": list})
}

func (s *Service) handleCreateToken(ctx *fasthttp.RequestCtx, c *core.Claims) {
	if e := requireFullAccess(c, "creating tokens"); e != nil {
		httpapi.WriteError(ctx, e)
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
	httpapi.WriteJSON(ctx, http.StatusCreated, map[string]any{"id": info.ID, "name": info.Name, "type": info.Type,
		"token": tok, "expires_at": info.ExpiresAt, "scopes": info.Scopes, "created_at": info.CreatedAt,
		"allowed_ips": info.AllowedIPs})
}

func (s *Service) handleRevokeToken(ctx *fasthttp.RequestCtx, c *core.Claims) {
	if e := requireFullAccess(c, "revoking tokens"); e != nil {
		httpapi.WriteError(ctx, e)
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
	httpapi.WriteJSON(ctx, http.StatusOK, map[string]any{"id": rec.ID.String(), "name": rec.Name, "revoked": true})
}

// fail writes err: an *APIError as itself, anything else as a 500 (logged
// without request data).
func (s *Service) fail(ctx *fasthttp.RequestCtx, err error) {
	var ae *APIError
	if !errors.As(err, &ae) {
		s.log.Error("issuer request failed", "path", string(ctx.Path()), "err", err)
		ae = errInternal
	}
	httpapi.WriteError(ctx, ae)
}

// decodeBody decodes an issuer request's body (httpapi.DecodeJSON, at
// most MaxBody bytes).
func decodeBody(ctx *fasthttp.RequestCtx, v any, required bool) bool {
	return httpapi.DecodeJSON(ctx, v, MaxBody, required)
}
