package rest

import (
	"log/slog"
	"sync"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/httpapi"
	"github.com/heliosdb/auth/netio"
	"github.com/valyala/fasthttp"
)

// Handler serves a request whose token was verified. c belongs to the
// authenticator's pooled state and is valid only until the handler returns:
// copy what must outlive the request.
type Handler = httpapi.Handler

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
//
// It counts every outcome in the gateway's series with protocol="rest"
// (netio.Metrics: helios_gateway_auth_total{protocol="rest",outcome=…},
// and helios_gateway_handshake_seconds from the request's arrival to its
// token's acceptance), the 403s its handlers answer included, and logs each
// refusal there without the token.
type Authenticator struct {
	pool    sync.Pool
	policy  core.Policy
	usage   core.UsageRecorder
	now     func() time.Time
	metrics *netio.Metrics
}

// authState is what one request borrows: a verifier (single-goroutine) and
// the claims handed to the handler.
type authState struct {
	v *core.Verifier
	c core.Claims
}

// Protocol is the protocol label of REST's series and log lines.
const Protocol = "rest"

// NewAuthenticator returns an authenticator over ring and the revocation
// view revs.
func NewAuthenticator(ring *core.Keyring, revs core.RevocationView, o AuthOptions) *Authenticator {
	a := &Authenticator{policy: o.Policy, usage: o.Usage, now: o.Now}
	if a.now == nil {
		a.now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a.metrics = netio.NewMetrics(Protocol, log)
	a.pool.New = func() any { return &authState{v: core.NewVerifier(ring, revs)} }
	return a
}

// Wrap returns a handler that authenticates the request, requires scope
// (NoScope: any valid token), and calls h with the claims; failures get
// the seed's 401/403/503 responses (httpapi.WriteTokenError). A 403 that h
// answers (httpapi.WriteError) is counted as forbidden.
func (a *Authenticator) Wrap(scope core.Scope, h Handler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		st := a.pool.Get().(*authState)
		info := netio.ConnInfo{Remote: httpapi.RemoteAddrPort(ctx)}
		if err := a.authenticate(ctx, st, &info, scope); err != nil {
			a.refuse(ctx, st, &info, err)
			a.pool.Put(st)
			return
		}
		h(ctx, &st.c)
		if e := httpapi.Refused(ctx); e != nil {
			a.metrics.Authenticated(&info, &st.c, &core.Error{Kind: core.KindForbidden, Message: e.Message, Detail: e.Detail}, ctx.Time())
		}
		a.pool.Put(st)
	}
}

// authenticate verifies the request's token into st.c and counts the
// success.
func (a *Authenticator) authenticate(ctx *fasthttp.RequestCtx, st *authState, info *netio.ConnInfo, scope core.Scope) error {
	tok, err := httpapi.RequestToken(ctx)
	if err != nil {
		st.c = core.Claims{}
		return err
	}
	now := a.now()
	st.c, err = st.v.Verify(tok, now)
	if err != nil {
		return err
	}
	if err := core.AllowAddr(a.policy, &st.c, info.Remote.Addr()); err != nil {
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
	a.metrics.Authenticated(info, &st.c, nil, ctx.Time())
	return nil
}

// refuse counts, logs and answers a failed authentication. The log names
// the token id only when the token's MAC verified (core.Claims.Verified).
func (a *Authenticator) refuse(ctx *fasthttp.RequestCtx, st *authState, info *netio.ConnInfo, err error) {
	var c *core.Claims
	if st.c.Verified() {
		c = &st.c
	}
	a.metrics.Authenticated(info, c, err, ctx.Time())
	httpapi.WriteTokenError(ctx, err)
}

// Policy returns the authenticator's policy (nil when none).
func (a *Authenticator) Policy() core.Policy { return a.policy }
