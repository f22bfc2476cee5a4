package netio

import (
	"time"

	"github.com/heliosdb/auth/core"
)

// Admission is what a front end checks and records when it admits a token,
// beyond the token itself: the token's IP allowlist and the test-database
// rule (Policy), its last use (Usage), and whether a connection stays bound
// to its first token (OtherToken). Each protocol holds one, made from its
// options, and passes it to Env.Admit (a token sent by the client) or
// Env.AdmitClaims (claims cached from an earlier admission): the one place
// where authentication is decided and observed.
type Admission struct {
	// Policy holds per-token IP allowlists and the databases registry. Nil
	// refuses every token that has an allowlist and every test-only token
	// (fail closed, as core.AllowAddr and core.AllowDatabase do).
	Policy core.Policy
	// Usage records each admitted token for last_used (nil: not recorded).
	Usage core.UsageRecorder
	// OtherToken, when set, binds a connection to the first token it was
	// admitted with (Redis and MongoDB allow authenticating again on the
	// same connection): Admit refuses a token with another id than the
	// claims it is given already hold, with this error, and never rewrites
	// them (Session.Claims must not change once returned). Nil lets a token
	// replace them (a protocol that authenticates once, PostgreSQL and
	// MySQL, never calls Admit twice).
	OtherToken *core.Error
}

// Admit admits a token the client sent on the connection info describes,
// in the order every front end follows:
//
//  1. verify it (Env.Verifier at Env.Now: MAC, key, expiry, revocation);
//  2. check its IP allowlist against info.Remote (core.AllowAddr);
//  3. when the connection names a database at authentication (database
//     not empty: PostgreSQL's startup database, MySQL's CONNECT_WITH_DB
//     schema), check the test-database rule (core.AllowDatabase); a
//     connection that names none is checked per command by its protocol;
//  4. when the Admission binds connections (OtherToken) and c already
//     holds verified claims, check that the token is the same one;
//  5. observe the outcome (Env.Observer.Authenticated, with the claims
//     only when the token's MAC verified, so that only then is its id
//     logged: core.Claims.Verified);
//  6. on success, copy the claims into *c (unless it is bound: it then
//     holds them already) and record the use (Usage).
//
// It returns nil or the reason for the refusal (a preallocated
// *core.Error: core.ErrAddrNotAllowed and core.ErrTestDatabaseOnly for the
// policy, a.OtherToken, or Verify's). *c is written only on success. Admit
// allocates nothing beyond what Verify, the policy and the usage recorder
// do (nothing, once the verifier has met the token's key).
func (e *Env) Admit(a *Admission, info *ConnInfo, c *core.Claims, token, database []byte) error {
	now := e.now()
	got := &e.admitting // not a local: passed to the observer, it would escape
	var err error
	*got, err = e.Verifier.Verify(token, now)
	if err == nil {
		err = a.allow(info, got, database)
	}
	bound := a.OtherToken != nil && c.Verified()
	if err == nil && bound && got.ID != c.ID {
		err = a.OtherToken
	}
	if err != nil {
		var seen *core.Claims
		if got.Verified() {
			seen = got
		}
		e.Observer.Authenticated(info, seen, err, now)
		return err
	}
	if !bound { // a bound connection's claims are those of this very token already
		*c = *got
	}
	a.admitted(e, info, c, now)
	return nil
}

// AdmitClaims admits claims an earlier Admit accepted, kept by the
// protocol in place of the token (MySQL's fast authentication cache): it
// re-checks them exactly as a fresh verification would
// (core.Verifier.Recheck: key, expiry, revocation view; a new connection
// is never admitted on an expired token, whatever Config.SessionExpiry
// says about open sessions), then applies Admit's steps 2, 3, 5 and 6 to
// them (the address, the database, the observer, the usage). c is not
// changed; it returns nil or the reason for the refusal. It allocates
// nothing.
func (e *Env) AdmitClaims(a *Admission, info *ConnInfo, c *core.Claims, database []byte) error {
	now := e.now()
	err := e.Verifier.Recheck(c, now)
	if err == nil {
		err = a.allow(info, c, database)
	}
	if err != nil {
		e.Observer.Authenticated(info, c, err, now) // claims from a verified token
		return err
	}
	a.admitted(e, info, c, now)
	return nil
}

// allow applies the policy to verified claims: the IP allowlist, then the
// test-database rule when a database is named.
func (a *Admission) allow(info *ConnInfo, c *core.Claims, database []byte) error {
	if err := core.AllowAddr(a.Policy, c, info.Remote.Addr()); err != nil {
		return err
	}
	if len(database) > 0 {
		return core.AllowDatabase(a.Policy, c, database)
	}
	return nil
}

// admitted observes a success and records the use.
func (a *Admission) admitted(e *Env, info *ConnInfo, c *core.Claims, now time.Time) {
	e.Observer.Authenticated(info, c, nil, now)
	if a.Usage != nil {
		a.Usage.Record(c.ID, c.Account, now.Unix())
	}
}

// now is Env.Now, or the clock when the Env was made without one (a
// session driven by hand in a test).
func (e *Env) now() time.Time {
	if e.Now.IsZero() {
		return time.Now()
	}
	return e.Now
}
