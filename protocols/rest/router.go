package rest

import (
	"net/http"
	"strings"

	"github.com/VictoriaMetrics/metrics"
	"github.com/heliosdb/auth/internal/httpapi"
	"github.com/valyala/fasthttp"
)

// Router dispatches requests by method and path. Routes are matched in the
// order they were added: exactly, or by prefix when the path ends in "/".
// It is built before serving and read-only afterwards.
type Router struct {
	auth   *Authenticator
	routes []route
}

type route struct {
	method, path string
	prefix       bool
	h            fasthttp.RequestHandler
}

// NewRouter returns a router whose protected routes use auth, with
// GET /healthz and GET /metrics (public) and POST /api/v1/sql (protected).
func NewRouter(auth *Authenticator) *Router {
	r := &Router{auth: auth}
	r.Public("GET", "/healthz", func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"status":"ok"}` + "\n")
	})
	r.Public("GET", "/metrics", func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/plain; version=0.0.4")
		metrics.WritePrometheus(ctx, true)
	})
	r.Protected("POST", "/api/v1/sql", SQLHandler(auth.Policy()))
	return r
}

// Replace swaps the handler of an existing route (method and path exactly
// as added), e.g. a gateway node's own /healthz. It reports whether the
// route existed.
func (r *Router) Replace(method, path string, h fasthttp.RequestHandler) bool {
	for i := range r.routes {
		if r.routes[i].method == method && r.routes[i].path == path {
			r.routes[i].h = h
			return true
		}
	}
	return false
}

// Mount adds the routes: Public ones as Public, Authed ones as Protected.
func (r *Router) Mount(routes ...httpapi.Route) {
	for _, rt := range routes {
		if rt.Public != nil {
			r.Public(rt.Method, rt.Path, rt.Public)
		} else {
			r.Protected(rt.Method, rt.Path, rt.Authed)
		}
	}
}

// Public adds a route that needs no token.
func (r *Router) Public(method, path string, h fasthttp.RequestHandler) {
	r.routes = append(r.routes, route{method: method, path: path, prefix: strings.HasSuffix(path, "/"), h: h})
}

// Protected adds a route that needs a valid token holding the route's scope
// (RouteScope).
func (r *Router) Protected(method, path string, h Handler) {
	r.Public(method, path, r.auth.Wrap(RouteScope(method, path), h))
}

// Handler is the fasthttp handler. A known path with another method gets 405
// with Allow; an unknown path 404.
func (r *Router) Handler(ctx *fasthttp.RequestCtx) {
	path, method := ctx.Path(), ctx.Method()
	known := false
	for i := range r.routes {
		rt := &r.routes[i]
		if !rt.match(path) {
			continue
		}
		if string(method) == rt.method {
			rt.h(ctx)
			return
		}
		known = true
	}
	if known {
		var allow []string
		for i := range r.routes {
			if r.routes[i].match(path) {
				allow = append(allow, r.routes[i].method)
			}
		}
		ctx.Response.Header.Set("Allow", strings.Join(allow, ", "))
		httpapi.WriteError(ctx, &httpapi.Error{Status: http.StatusMethodNotAllowed, Code: httpapi.CodeMethodNotAllowed,
			Message: string(method) + " is not allowed on " + string(path) + ": use " + strings.Join(allow, " or ")})
		return
	}
	httpapi.WriteError(ctx, &httpapi.Error{Status: http.StatusNotFound, Code: httpapi.CodeNotFound, Message: "no endpoint " + string(path) +
		": see /v1/auth/* (signup, login, logout, logout-all, refresh, tokens), /v1/databases and /api/v1/sql"})
}

// match reports whether path is this route's path (or under it, for a
// prefix route). It does not allocate.
func (rt *route) match(path []byte) bool {
	if string(path) == rt.path {
		return true
	}
	return rt.prefix && len(path) > len(rt.path) && string(path[:len(rt.path)]) == rt.path
}
