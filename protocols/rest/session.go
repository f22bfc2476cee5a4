package rest

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/heliosdb/auth/core"
	"github.com/valyala/fasthttp"
)

// Handler serves a request whose token was verified. c belongs to the
// authenticator's pooled state and is valid only until the handler returns:
// copy what must outlive the request.
type Handler func(ctx *fasthttp.RequestCtx, c *core.Claims)

// AuthOptions configure an Authenticator; every field is optional.
type AuthOptions struct {
	// Policy holds IP allowlists and the databases registry. nil refuses
	// tokens with an IP allowlist and test tokens (fail closed).
	Policy core.Policy
	Usage  core.UsageRecorder // nil: uses are not recorded
	Now    func() time.Time
	Logger *slog.Logger
}

// Authenticator verifies Bearer tokens for fasthttp handlers. It is safe
// for concurrent use: each request borrows a verifier from a pool.
type Authenticator struct {
	pool   sync.Pool
	policy core.Policy
	usage  core.UsageRecorder
	now    func() time.Time
	log    *slog.Logger
}

// authState is what one request borrows: a verifier (single-goroutine) and
// the claims handed to the handler.
type authState struct {
	v *core.Verifier
	c core.Claims
}

// Authentication outcomes, counted without allocating.
var (
	authOK        = metrics.NewCounter(`helios_rest_auth_total{outcome="ok"}`)
	authInvalid   = metrics.NewCounter(`helios_rest_auth_total{outcome="invalid"}`)
	authExpired   = metrics.NewCounter(`helios_rest_auth_total{outcome="expired"}`)
	authRevoked   = metrics.NewCounter(`helios_rest_auth_total{outcome="revoked"}`)
	authForbidden = metrics.NewCounter(`helios_rest_auth_total{outcome="forbidden"}`)
)

// NewAuthenticator returns an authenticator over ring and the revocation
// view revs.
func NewAuthenticator(ring *core.Keyring, revs core.RevocationView, o AuthOptions) *Authenticator {
	a := &Authenticator{policy: o.Policy, usage: o.Usage, now: o.Now, log: o.Logger}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.pool.New = func() any { return &authState{v: core.NewVerifier(ring, revs)} }
	return a
}

// Wrap returns a handler that authenticates the request, requires scope
// (NoScope: any valid token), and calls h with the claims; failures get
// the seed's 401/403 responses.
func (a *Authenticator) Wrap(scope core.Scope, h Handler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		st := a.pool.Get().(*authState)
		if err := a.authenticate(ctx, st, scope); err != nil {
			a.refuse(ctx, st, err)
			a.pool.Put(st)
			return
		}
		h(ctx, &st.c)
		a.pool.Put(st)
	}
}

// authenticate verifies the request's token into st.c.
func (a *Authenticator) authenticate(ctx *fasthttp.RequestCtx, st *authState, scope core.Scope) error {
	tok, err := BearerToken(ctx.Request.Header.PeekCanonical(hdrAuthorization))
	if err != nil {
		st.c = core.Claims{}
		return err
	}
	now := a.now()
	st.c, err = st.v.Verify(tok, now)
	if err != nil {
		return err
	}
	if err := core.AllowAddr(a.policy, &st.c, remoteAddr(ctx)); err != nil {
		return err
	}
	if scope != NoScope {
		if err := st.c.Require(scope); err != nil {
			return err
		}
	}
	if a.usage != nil {
		a.usage.Record(st.c.ID, st.c.Account, now.Unix())
	}
	authOK.Inc()
	return nil
}

// refuse counts, logs and answers a failed authentication. The log names
// the token id only when the token's MAC verified (core.Claims.Verified).
func (a *Authenticator) refuse(ctx *fasthttp.RequestCtx, st *authState, err error) {
	var id string
	if st.c.Verified() {
		id = st.c.ID.String()
	}
	reason := err.Error()
	switch te, _ := err.(*core.Error); {
	case te == nil || te.Kind == core.KindInvalid:
		authInvalid.Inc()
	case te.Kind == core.KindExpired:
		authExpired.Inc()
	case te.Kind == core.KindRevoked:
		authRevoked.Inc()
	case te.Kind == core.KindForbidden:
		authForbidden.Inc()
	}
	a.log.Info("authentication failed", "protocol", "rest", "remote", remoteAddr(ctx).String(), "token_id", id,
		"path", string(ctx.Path()), "reason", reason)
	WriteTokenError(ctx, err)
}

// Policy returns the authenticator's policy (nil when none).
func (a *Authenticator) Policy() core.Policy { return a.policy }

// remoteAddr returns the client's address without allocating.
func remoteAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
