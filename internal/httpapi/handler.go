package httpapi

import (
	"github.com/heliosdb/auth/core"
	"github.com/valyala/fasthttp"
)

// Handler serves a request whose bearer token the caller's authenticator
// already verified (protocols/rest.Authenticator). c is valid only until the
// handler returns: copy what must outlive the request.
type Handler func(ctx *fasthttp.RequestCtx, c *core.Claims)

// Route is one endpoint of an HTTP API. Exactly one of Public and Authed is
// set: Public routes take no token; Authed routes need a valid token (the
// router decides which scope, the handler may check more).
type Route struct {
	Method string
	// Path is matched exactly, or as a prefix when it ends in "/" (the
	// handler reads the rest, e.g. the :id of DELETE /v1/auth/tokens/:id);
	// "/" itself is matched exactly.
	Path   string
	Public fasthttp.RequestHandler
	Authed Handler
}
