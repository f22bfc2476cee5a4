package rest

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/VictoriaMetrics/metrics"
	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/httpapi"
	"github.com/valyala/fasthttp"
)

// Router dispatches requests by method and path. Routes are matched in the
// order they were added: exactly, or by prefix when the path ends in "/"
// (except "/" itself, which is the root page only: a prefix route "/" would
// take every path).
// It is built before serving and read-only afterwards.
type Router struct {
	auth   *Authenticator
	routes []route
	// metricsAllow are the scrapers' networks that need no token for
	// GET /metrics (SetMetricsAllow); metricsAuthed serves everyone else.
	metricsAllow  []netip.Prefix
	metricsAuthed fasthttp.RequestHandler
	sql           SQLRunner // SetSQLRunner: proxy mode for POST /api/v1/sql
}

// DefaultMetricsAllow is the networks from which GET /metrics needs no
// token unless SetMetricsAllow says otherwise: loopback.
var DefaultMetricsAllow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

type route struct {
	method, path string
	prefix       bool
	h            fasthttp.RequestHandler
}

// NewRouter returns a router whose protected routes use auth, with
// GET /healthz (public), GET /metrics (see SetMetricsAllow) and
// POST /api/v1/sql (protected). The metrics carry # HELP and # TYPE lines
// (metrics.ExposeMetadata, process-wide).
func NewRouter(auth *Authenticator) *Router {
	metrics.ExposeMetadata(true)
	r := &Router{auth: auth, metricsAllow: DefaultMetricsAllow}
	r.metricsAuthed = auth.Wrap(core.ScopeMetricsRead, func(ctx *fasthttp.RequestCtx, _ *core.Claims) { writeMetrics(ctx) })
	r.Public("GET", "/healthz", func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"status":"ok"}` + "\n")
	})
	r.Public("GET", "/metrics", r.serveMetrics)
	r.Protected("POST", "/api/v1/sql", func(ctx *fasthttp.RequestCtx, c *core.Claims) { handleSQL(ctx, c, auth.Policy(), r.sql) })
	return r
}

// SetSQLRunner makes POST /api/v1/sql run its statements on an upstream
// database (proxy mode) instead of the built-in responder. Call it before
// serving.
func (r *Router) SetSQLRunner(runner SQLRunner) { r.sql = runner }

// SetMetricsAllow sets the networks whose scrapers read GET /metrics
// without a token (default DefaultMetricsAllow; empty: none). From any other
// address /metrics needs a Bearer token with metrics:read and answers 401
// or 403 like every protected route. Call it before serving.
func (r *Router) SetMetricsAllow(allow []netip.Prefix) { r.metricsAllow = allow }

// serveMetrics serves GET /metrics: the Prometheus text format, freely to
// the allowed networks and to others with a metrics:read token.
func (r *Router) serveMetrics(ctx *fasthttp.RequestCtx) {
	addr := httpapi.RemoteAddr(ctx).Unmap()
	for _, p := range r.metricsAllow {
		if p.Contains(addr) {
			writeMetrics(ctx)
			return
		}
	}
	r.metricsAuthed(ctx)
}

// writeMetrics writes every series of the default set and the process's.
func writeMetrics(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; version=0.0.4")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	metrics.WritePrometheus(ctx, true)
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
	r.routes = append(r.routes, route{method: method, path: path, prefix: path != "/" && strings.HasSuffix(path, "/"), h: h})
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
