package netio

import "github.com/heliosdb/auth/core"

// Terminator is implemented by sessions that can end a connection in their
// protocol's own words when the gateway ends it from outside: its token was
// revoked, its account logged out everywhere, its key retired, or it
// expired during the session. The transport calls Terminate on the
// connection's own loop (or goroutine), writes the result, and closes.
//
// err is a *core.Error (core.ErrRevoked, core.ErrLoggedOut,
// core.ErrKeyRetired, core.ErrExpired, core.ErrUnavailable).
type Terminator interface {
	Terminate(err error, out []byte) []byte
}

// Claimant is implemented by sessions that expose the claims of the token
// they authenticated with, so the transport can index open sessions by
// token id, account and key id (revocation then finds them without a scan).
// Claims returns nil before authentication; the pointer stays valid for the
// session's life and its contents must not change once returned non-nil.
type Claimant interface {
	Claims() *core.Claims
}
