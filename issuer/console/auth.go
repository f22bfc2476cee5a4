package console

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/httpapi"
	"github.com/heliosdb/auth/issuer"
)

// authForm is the data of the sign-in and sign-up pages.
type authForm struct {
	Email  string
	Error  string            // about the whole form
	Errors map[string]string // beside a field: "email", "password"
	Notice string
}

// notices are the fixed messages the sign-in page shows for ?m=.
var notices = map[string]string{
	"signedout":  "You are signed out, and the console's token for that session is revoked.",
	"ended":      "Your session has ended: its token expired or was revoked. Sign in again.",
	"everywhere": "Every token of your account is revoked, this session's included. Sign in to start a new one.",
}

func (c *Console) signinPage(ctx *fasthttp.RequestCtx) {
	if s, _ := c.session(ctx); s != nil {
		redirect(ctx, "/settings/tokens")
		return
	}
	f := &authForm{Notice: notices[string(ctx.QueryArgs().Peek("m"))]}
	c.render(ctx, http.StatusOK, "signin.html", &view{Title: "Sign in", CSRF: c.preCSRF(ctx), Page: f})
}

func (c *Console) signupPage(ctx *fasthttp.RequestCtx) {
	if s, _ := c.session(ctx); s != nil {
		redirect(ctx, "/settings/tokens")
		return
	}
	c.render(ctx, http.StatusOK, "signup.html", &view{Title: "Create your account", CSRF: c.preCSRF(ctx), Page: &authForm{}})
}

// signin checks the credentials with the issuer's Login (its cost, its
// messages, its rate limits) and starts a session.
func (c *Console) signin(ctx *fasthttp.RequestCtx) {
	args := ctx.PostArgs()
	email, password := strings.TrimSpace(string(args.Peek("email"))), string(args.Peek("password"))
	f := &authForm{Email: email, Errors: map[string]string{}}
	if !c.checkPreCSRF(ctx) {
		f.Error = "This form has expired or your browser did not send the console's cookie. Reload the page (and allow cookies for this site)."
		c.render(ctx, http.StatusForbidden, "signin.html", &view{Title: "Sign in", CSRF: c.preCSRF(ctx), Page: f})
		return
	}
	if email == "" {
		f.Errors["email"] = "Enter your email address."
	}
	if password == "" {
		f.Errors["password"] = "Enter your password."
	}
	if len(f.Errors) > 0 {
		c.render(ctx, http.StatusBadRequest, "signin.html", &view{Title: "Sign in", CSRF: c.preCSRF(ctx), Page: f})
		return
	}
	if c.login(ctx, email, password, f) != nil {
		redirect(ctx, "/settings/tokens")
		return
	}
	c.render(ctx, errStatus(ctx), "signin.html", &view{Title: "Sign in", CSRF: c.preCSRF(ctx), Page: f})
}

// login signs in with the issuer and starts a session; on failure it fills
// f.Error with the issuer's answer in the console's words and returns nil.
func (c *Console) login(ctx *fasthttp.RequestCtx, email, password string, f *authForm) *session {
	tok, _, err := c.svc.LoginNamed(email, password, httpapi.RemoteAddr(ctx), SessionTokenName)
	if err != nil {
		f.Error = c.say(ctx, err, "Email or password is incorrect.")
		return nil
	}
	claims, err := core.NewVerifier(c.opts.Keyring, c.revs).Verify([]byte(tok), c.opts.Now())
	if err != nil {
		c.log.Error("console: the token a sign-in returned does not verify", "err", err)
		f.Error = "The console could not start a session. Try again in a moment."
		ctx.SetStatusCode(http.StatusInternalServerError)
		return nil
	}
	// A browser that was signed in already leaves that session behind.
	if old, _ := c.session(ctx); old != nil {
		c.endSession(old)
	}
	return c.start(ctx, claims, email)
}

// say words an issuer error for a page: the rate limit with its wait (and
// the response's Retry-After and status), validation messages as the API
// words them, invalid credentials as wrong; an internal error is logged
// and worded vaguely. It also sets the response status.
func (c *Console) say(ctx *fasthttp.RequestCtx, err error, wrong string) string {
	var ae *issuer.APIError
	if !errors.As(err, &ae) {
		c.log.Error("console request failed", "path", string(ctx.Path()), "err", err)
		ctx.SetStatusCode(http.StatusInternalServerError)
		return "HeliosDB could not complete the request. Nothing was changed; try again in a moment."
	}
	ctx.SetStatusCode(ae.Status)
	switch ae.Code {
	case issuer.CodeInvalidCredentials:
		return wrong
	case issuer.CodeRateLimited:
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(ae.RetryAfter))
		return "Too many failed attempts. Wait " + strconv.Itoa(ae.RetryAfter) + " seconds, then try again."
	case issuer.CodeEmailTaken:
		return "An account with this email already exists. Sign in instead."
	}
	return sentence(ae.Message)
}

// errStatus is the error status say set, or 400.
func errStatus(ctx *fasthttp.RequestCtx) int {
	if s := ctx.Response.StatusCode(); s >= 400 {
		return s
	}
	return http.StatusBadRequest
}

// sentence capitalises an API message and ends it with a full stop.
func sentence(m string) string {
	if m == "" {
		return m
	}
	m = strings.ToUpper(m[:1]) + m[1:]
	if !strings.HasSuffix(m, ".") {
		m += "."
	}
	return m
}

// signup creates the account with the issuer's Signup (its checks and rate
// limits) and signs the browser in.
func (c *Console) signup(ctx *fasthttp.RequestCtx) {
	args := ctx.PostArgs()
	email, password := strings.TrimSpace(string(args.Peek("email"))), string(args.Peek("password"))
	f := &authForm{Email: email, Errors: map[string]string{}}
	v := &view{Title: "Create your account", Page: f}
	if !c.checkPreCSRF(ctx) {
		f.Error = "This form has expired or your browser did not send the console's cookie. Reload the page (and allow cookies for this site)."
		v.CSRF = c.preCSRF(ctx)
		c.render(ctx, http.StatusForbidden, "signup.html", v)
		return
	}
	_, err := c.svc.Signup(email, password, httpapi.RemoteAddr(ctx))
	if err != nil {
		msg := c.say(ctx, err, "")
		var ae *issuer.APIError
		switch {
		case errors.As(err, &ae) && ae.Code == issuer.CodeInvalidEmail:
			f.Errors["email"] = "Enter an email address such as you@example.com."
		case errors.As(err, &ae) && ae.Code == issuer.CodeWeakPassword:
			f.Errors["password"] = msg
		default:
			f.Error = msg
		}
		v.CSRF = c.preCSRF(ctx)
		c.render(ctx, errStatus(ctx), "signup.html", v)
		return
	}
	s := c.login(ctx, email, password, f)
	if s == nil {
		// The account exists; only the session failed (a rate limit, say).
		f.Error = "Your account is created, but signing in failed: " + f.Error
		v.CSRF = c.preCSRF(ctx)
		c.render(ctx, errStatus(ctx), "signin.html", &view{Title: "Sign in", CSRF: v.CSRF, Page: f})
		return
	}
	s.setFlash("Welcome to HeliosDB. Create a token below, then connect with it from Connect.")
	redirect(ctx, "/settings/tokens")
}

// signout ends the session and revokes its token.
func (c *Console) signout(ctx *fasthttp.RequestCtx, s *session) {
	c.endSession(s)
	c.setCookie(ctx, sessionCookie, "", -1)
	redirect(ctx, signinURL("signedout"))
}

// endSession forgets a session and revokes its token.
func (c *Console) endSession(s *session) {
	c.sessions.drop(s)
	if _, err := c.svc.Logout(&s.claims); err != nil {
		var ae *issuer.APIError
		if !errors.As(err, &ae) {
			c.log.Error("console: revoking a session's token failed", "token_id", s.claims.ID.String(), "err", err)
		}
	}
}
