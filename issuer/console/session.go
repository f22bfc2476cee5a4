package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/issuer"
)

// Cookie names: the session, and the CSRF value of the forms shown before
// sign-in. Over HTTPS they carry the __Host- prefix (Secure, Path=/, no
// Domain: no other host can set them).
const (
	sessionCookie = "helios_console"
	preCookie     = "helios_console_csrf"
	hostPrefix    = "__Host-"
)

// session is one signed-in browser. claims are its token's (the string is
// never kept); csrf is the value its forms carry.
type session struct {
	key    [sha256.Size]byte
	claims core.Claims
	email  string
	csrf   string

	mu      sync.Mutex
	flash   string       // shown once on the next page
	created *createdOnce // the token just created, until its page shows it
}

// createdOnce is a new token between the POST that made it and the page
// that shows it.
type createdOnce struct {
	token string
	info  issuer.TokenInfo
}

// setFlash keeps a message for the next page.
func (s *session) setFlash(msg string) {
	s.mu.Lock()
	s.flash = msg
	s.mu.Unlock()
}

// takeFlash returns the message kept for this page, once.
func (s *session) takeFlash() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.flash
	s.flash = ""
	return m
}

// takeCreated returns the token just created, once.
func (s *session) takeCreated() *createdOnce {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.created
	s.created = nil
	return c
}

// checkCSRF compares a form's csrf value with the session's in constant
// time.
func (s *session) checkCSRF(got []byte) bool {
	return len(got) > 0 && subtle.ConstantTimeCompare(got, []byte(s.csrf)) == 1
}

// sessions are the live console sessions by the SHA-256 of their cookie
// value.
type sessions struct {
	mu    sync.Mutex
	m     map[[sha256.Size]byte]*session
	sweep time.Time
}

func newSessions() *sessions { return &sessions{m: map[[sha256.Size]byte]*session{}} }

// add stores a session for claims and returns the cookie value that names
// it. Sessions whose token has expired are dropped on the way.
func (ss *sessions) add(claims core.Claims, email string, now time.Time) (string, *session) {
	value := randomString()
	s := &session{key: sha256.Sum256([]byte(value)), claims: claims, email: email, csrf: randomString()}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if now.Sub(ss.sweep) > time.Minute {
		for k, o := range ss.m {
			if now.Unix() >= o.claims.ExpiresAt {
				delete(ss.m, k)
			}
		}
		ss.sweep = now
	}
	ss.m[s.key] = s
	return value, s
}

// get returns the session a cookie value names, or nil.
func (ss *sessions) get(value []byte) *session {
	if len(value) == 0 {
		return nil
	}
	k := sha256.Sum256(value)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.m[k]
}

// drop forgets a session.
func (ss *sessions) drop(s *session) {
	ss.mu.Lock()
	delete(ss.m, s.key)
	ss.mu.Unlock()
}

// randomString is 256 random bits, base64url.
func randomString() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("console: crypto/rand failed: " + err.Error()) // BUG: the OS has no randomness
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// cookieName is name as this request's scheme allows it.
func (c *Console) cookieName(ctx *fasthttp.RequestCtx, name string) string {
	if c.opts.IsTLS(ctx) {
		return hostPrefix + name
	}
	return name
}

// setCookie sets an HttpOnly, SameSite=Strict cookie for the whole console
// (Secure over HTTPS) that lives maxAge seconds (negative: deleted).
func (c *Console) setCookie(ctx *fasthttp.RequestCtx, name, value string, maxAge int) {
	var ck fasthttp.Cookie
	ck.SetKey(c.cookieName(ctx, name))
	ck.SetValue(value)
	ck.SetPath("/")
	ck.SetHTTPOnly(true)
	ck.SetSecure(c.opts.IsTLS(ctx))
	ck.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	if maxAge < 0 {
		ck.SetExpire(fasthttp.CookieExpireDelete)
	} else {
		ck.SetMaxAge(maxAge)
	}
	ctx.Response.Header.SetCookie(&ck)
}

// session returns the request's live session. ended reports a cookie that
// named a session which has ended (its token revoked or expired): the
// session is dropped and the cookie deleted.
func (c *Console) session(ctx *fasthttp.RequestCtx) (s *session, ended bool) {
	name := c.cookieName(ctx, sessionCookie)
	value := ctx.Request.Header.Cookie(name)
	if len(value) == 0 {
		return nil, false
	}
	s = c.sessions.get(value)
	if s != nil && c.live(s) {
		return s, false
	}
	if s != nil {
		c.sessions.drop(s)
	}
	c.setCookie(ctx, sessionCookie, "", -1)
	return nil, true
}

// live reports whether the session's token is still valid: not expired,
// not revoked, its account not logged out everywhere since, its key not
// retired.
func (c *Console) live(s *session) bool {
	cl := &s.claims
	return c.opts.Now().Unix() < cl.ExpiresAt && c.revs.Check(cl.ID, cl.Account, cl.IssuedAt, cl.KeyID) == core.NotRevoked
}

// start signs the browser in with a verified token: a session for its
// claims and the cookie that names it.
func (c *Console) start(ctx *fasthttp.RequestCtx, claims core.Claims, email string) *session {
	now := c.opts.Now()
	value, s := c.sessions.add(claims, email, now)
	c.setCookie(ctx, sessionCookie, value, int(claims.ExpiresAt-now.Unix()))
	c.setCookie(ctx, preCookie, "", -1)
	return s
}

// preCSRF returns the CSRF value of the forms shown before sign-in (from
// its cookie, or a new one set now).
func (c *Console) preCSRF(ctx *fasthttp.RequestCtx) string {
	if v := ctx.Request.Header.Cookie(c.cookieName(ctx, preCookie)); len(v) == 43 {
		return string(v)
	}
	v := randomString()
	c.setCookie(ctx, preCookie, v, 12*3600)
	return v
}

// checkPreCSRF reports whether a sign-in or sign-up form carries the value
// of the browser's cookie.
func (c *Console) checkPreCSRF(ctx *fasthttp.RequestCtx) bool {
	cookie := ctx.Request.Header.Cookie(c.cookieName(ctx, preCookie))
	form := ctx.PostArgs().Peek("csrf")
	return len(cookie) > 0 && subtle.ConstantTimeCompare(cookie, form) == 1
}
