package console

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/httpapi"
	"github.com/heliosdb/auth/issuer"
)

// SessionTokenName is the name of the token behind each console session,
// as the token list shows it.
const SessionTokenName = "Web console"

// MaxForm bounds a form's body.
const MaxForm = 16 << 10

// Options configure a Console. Service and Keyring are required.
type Options struct {
	// Service is the issuer whose accounts, tokens and databases the
	// console manages.
	Service *issuer.Service
	// Keyring verifies the token a sign-in returns.
	Keyring *core.Keyring
	// Listen holds heliosd's listener addresses by protocol ("http",
	// "postgres", "mysql", "mongodb", "redis"; "" or absent: disabled),
	// for the Connect lines.
	Listen map[string]string
	// CAFile is the certificate clients must trust when heliosd's is
	// self-signed ("" when a public CA issued it).
	CAFile string
	// IsTLS tells whether a request arrived over TLS (cookies are then
	// Secure and __Host- prefixed). nil: fasthttp's RequestCtx.IsTLS.
	IsTLS func(*fasthttp.RequestCtx) bool
	// Now is the clock (time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// EnsureDefaults fills the unset optional fields and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.IsTLS == nil {
		o.IsTLS = (*fasthttp.RequestCtx).IsTLS
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Console serves the web console. It is safe for concurrent use.
type Console struct {
	opts     Options
	svc      *issuer.Service
	revs     core.RevocationView
	sessions *sessions
	log      *slog.Logger
}

// New returns a console over o.Service.
func New(o Options) *Console {
	o.EnsureDefaults()
	return &Console{opts: o, svc: o.Service, revs: o.Service.Store().Revocations(), sessions: newSessions(),
		log: o.Logger}
}

// Routes returns the console's pages and assets, every one public to the
// router: the console authenticates its own session cookie.
func (c *Console) Routes() []httpapi.Route {
	page := func(method, path string, h fasthttp.RequestHandler) httpapi.Route {
		return httpapi.Route{Method: method, Path: path, Public: c.wrap(h)}
	}
	return []httpapi.Route{
		page("GET", "/", c.home),
		page("GET", "/signin", c.signinPage),
		page("POST", "/signin", c.signin),
		page("GET", "/signup", c.signupPage),
		page("POST", "/signup", c.signup),
		page("POST", "/signout", c.authed(c.signout)),
		page("GET", "/settings/tokens", c.authed(c.tokensPage)),
		page("GET", "/settings/tokens/new", c.authed(c.newTokenPage)),
		page("POST", "/settings/tokens/new", c.authed(c.createToken)),
		page("GET", "/settings/tokens/created", c.authed(c.createdPage)),
		page("POST", "/settings/tokens/revoke", c.authed(c.revokeToken)),
		page("POST", "/settings/logout-all", c.authed(c.logoutAll)),
		page("GET", "/connect", c.authed(c.connectPage)),
		page("GET", "/databases", c.authed(c.databasesPage)),
		page("POST", "/databases", c.authed(c.createDatabase)),
		page("POST", "/databases/delete", c.authed(c.deleteDatabase)),
		{Method: "GET", Path: "/assets/", Public: serveAsset},
	}
}

// securityHeaders are set on every page.
var securityHeaders = [][2]string{
	{"Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"},
	{"X-Frame-Options", "DENY"},
	{"Referrer-Policy", "same-origin"},
	{"X-Content-Type-Options", "nosniff"},
	{"Cross-Origin-Opener-Policy", "same-origin"},
	{"Cross-Origin-Resource-Policy", "same-origin"},
	{"Cache-Control", "no-store"},
}

// wrap sets the security headers, and refuses a POST that is not from the
// console's own origin or whose form is too large, before h runs.
func (c *Console) wrap(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		for _, kv := range securityHeaders {
			ctx.Response.Header.Set(kv[0], kv[1])
		}
		if ctx.IsPost() {
			if why := c.crossOrigin(ctx); why != "" {
				c.log.Info("console refused a cross-origin request", "path", string(ctx.Path()), "from", httpapi.RemoteAddr(ctx), "why", why)
				c.refuse(ctx, http.StatusForbidden, "This request came from another site, so it was refused and nothing was changed. "+
					"Open the console and try again from its own pages.")
				return
			}
			if len(ctx.PostBody()) > MaxForm {
				c.refuse(ctx, http.StatusRequestEntityTooLarge, "The form is too large.")
				return
			}
		}
		h(ctx)
	}
}

// authed runs h with the request's session, or sends the browser to sign in
// (a POST without one is refused: its form cannot be replayed after sign-in).
func (c *Console) authed(h func(*fasthttp.RequestCtx, *session)) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		s, ended := c.session(ctx)
		if s == nil {
			msg := ""
			if ended {
				msg = "ended"
			}
			if ctx.IsPost() {
				c.refuse(ctx, http.StatusUnauthorized, "Your session has ended: sign in again.")
				return
			}
			redirect(ctx, signinURL(msg))
			return
		}
		if ctx.IsPost() && !s.checkCSRF(ctx.PostArgs().Peek("csrf")) {
			c.refuse(ctx, http.StatusForbidden, "This form has expired or did not come from the console, so nothing was changed. "+
				"Reload the page and try again.")
			return
		}
		c.svc.Used(s.claims.ID, s.claims.Account, c.opts.Now().Unix())
		h(ctx, s)
	}
}

// home sends the browser to its tokens, or to sign in.
func (c *Console) home(ctx *fasthttp.RequestCtx) {
	if s, _ := c.session(ctx); s != nil {
		redirect(ctx, "/settings/tokens")
		return
	}
	redirect(ctx, "/signin")
}

// redirect answers 303 See Other to a path of the console (a relative
// Location, right whether the request came over TLS or not).
func redirect(ctx *fasthttp.RequestCtx, path string) {
	ctx.Response.Header.Set("Location", path)
	ctx.SetStatusCode(http.StatusSeeOther)
}

// signinURL is the sign-in page with one of its fixed notices.
func signinURL(notice string) string {
	if notice == "" {
		return "/signin"
	}
	return "/signin?m=" + notice
}

// refuse renders the error page.
func (c *Console) refuse(ctx *fasthttp.RequestCtx, status int, msg string) {
	c.render(ctx, status, "error.html", &view{Title: http.StatusText(status), Page: msg})
}

// origin is the console's own origin as a browser names it.
func (c *Console) origin(ctx *fasthttp.RequestCtx) string {
	scheme := "http://"
	if c.opts.IsTLS(ctx) {
		scheme = "https://"
	}
	return scheme + strings.ToLower(string(ctx.Host()))
}
