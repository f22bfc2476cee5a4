package netio

import (
	"io"
	"net/netip"
	"time"

	"github.com/heliosdb/auth/core"
)

// Action tells the transport what to do once a Session call returns and its
// output has been queued.
type Action uint8

const (
	// Continue: keep the connection open and deliver the next bytes.
	Continue Action = iota
	// UpgradeTLS: write the output in plaintext, then run a server-side TLS
	// handshake on the connection and deliver the decrypted stream to the
	// same Session. The bytes of in that the session did not consume (a
	// ClientHello sent right behind an SSLRequest) are carried into TLS.
	UpgradeTLS
	// Close: write the output, then close the connection.
	Close
	// Offload: write the output, then move the connection off its event
	// loop to a goroutine of its own (ServeConn, without TLS) and keep
	// running the same Session there. The bytes of in that the session did
	// not consume are carried over, the connection keeps its deadlines
	// (handshake, idle, token expiry) and is found by revocations as on the
	// loop. A session asks for it before a step that would block its loop
	// for long (MySQL's RSA decryption, about 1 ms of CPU): on the loop
	// such a step stalls every other connection of that loop. Where the
	// session already runs on a goroutine (ConnInfo.Offloaded) it is the
	// same as Continue. A hand-off costs a dup(2) and a goroutine: for rare,
	// expensive steps only.
	Offload
)

// Limit names a connection limit the transport enforces.
type Limit uint8

const (
	// LimitConnections: too many connections (globally or from one address).
	LimitConnections Limit = iota + 1
	// LimitHandshakeTimeout: authentication did not finish in time (slowloris).
	LimitHandshakeTimeout
	// LimitIdleTimeout: an authenticated connection stayed silent too long.
	LimitIdleTimeout
	// LimitMessageSize: a message larger than allowed in the current phase.
	LimitMessageSize
)

// String names the limit as metrics and logs spell it.
func (l Limit) String() string {
	switch l {
	case LimitConnections:
		return "connections"
	case LimitHandshakeTimeout:
		return "handshake_timeout"
	case LimitIdleTimeout:
		return "idle_timeout"
	case LimitMessageSize:
		return "message_size"
	}
	return "unknown"
}

// ConnInfo describes one client connection to its Session. The transport owns
// it; a session may keep the pointer for the connection's life.
type ConnInfo struct {
	// Remote is the client's address (after a PROXY protocol header, when
	// the listener accepts one).
	Remote netip.AddrPort
	// Local is the address the client connected to.
	Local netip.AddrPort
	// TLS is true once the connection runs inside TLS. The transport sets it
	// before delivering the first decrypted byte.
	TLS bool
	// ALPN is the protocol negotiated by TLS ALPN, if any ("postgresql").
	ALPN string
	// Offloaded is true when the session runs on a goroutine of its own
	// (ServeConn: after a TLS upgrade or an Offload, or served that way
	// from the start), where blocking stalls no other connection and
	// Offload is a Continue. The transport sets it before the first call
	// on that goroutine.
	Offloaded bool
	// TLSAvailable reports whether the listener can upgrade to TLS (a
	// server certificate is configured). A session answers a TLS request
	// negatively when it is false instead of asking for UpgradeTLS.
	TLSAvailable bool
	// PlaintextOK reports whether this client may send a token without TLS
	// (by default only from loopback addresses; configurable). A session
	// must refuse plaintext authentication when it is false, before the
	// client sends its token where the protocol allows.
	PlaintextOK bool
	// ID is a connection number unique within the process (used as a
	// protocol's connection or backend id).
	ID uint32
	// Accepted is when the connection was accepted.
	Accepted time.Time
	// Client writes to the client from another goroutine than the one
	// running the session: a proxy's server-to-client pump. Its writes are
	// serialized with the transport's own (each Write is written whole,
	// never interleaved with the output of a Handle or Terminate), so a
	// session writes whole protocol messages with it. It blocks while the
	// client reads slowly, which is what stops a pump from reading its
	// server faster than the client takes the result. Set on the goroutine
	// path only (Offloaded); nil on an event loop.
	Client io.Writer
	// link is the connection's Link on its event loop (see Link).
	link *Link
}

// Env is what a Session may use while it handles bytes. There is one Env per
// event loop and one per TLS goroutine, never shared across goroutines, so a
// session must not keep an Env between calls.
type Env struct {
	// Verifier checks tokens. It belongs to this loop or goroutine only.
	Verifier *core.Verifier
	// Now is the current time (cached by the loop; cheap to read).
	Now time.Time
	// MaxPreAuthMessage bounds a message before authentication succeeds
	// (tiny: a startup message, an AUTH command, a handshake response).
	MaxPreAuthMessage int
	// MaxMessage bounds a message after authentication.
	MaxMessage int
	// Observer receives authentication outcomes for metrics and logs.
	Observer Observer
	// keepExpired: Config.SessionExpiry is "keep" (see Recheck).
	keepExpired bool
	// admitting holds the claims Admit is deciding on (in the Env, not on
	// the stack, because the observer is given a pointer to them).
	admitting core.Claims
}

// Outcome is the result of one authentication attempt, as metrics count it.
type Outcome uint8

const (
	// OutcomeOK: the token was accepted.
	OutcomeOK Outcome = iota
	// OutcomeInvalid: missing, malformed, forged or unknown-key token.
	OutcomeInvalid
	// OutcomeExpired: a genuine token past its expiry.
	OutcomeExpired
	// OutcomeRevoked: a genuine token revoked (by id, logout-all or key).
	OutcomeRevoked
	// OutcomeForbidden: a valid token without the scope a command needs.
	OutcomeForbidden
	// OutcomeTLSRequired: a plaintext client refused before sending a token.
	OutcomeTLSRequired
	// OutcomeUnavailable: the node could not tell whether the token was
	// revoked (its revocation feed is too stale) and failed closed.
	OutcomeUnavailable
	numOutcomes
)

// String names the outcome as metrics label it.
func (o Outcome) String() string {
	switch o {
	case OutcomeOK:
		return "ok"
	case OutcomeInvalid:
		return "invalid"
	case OutcomeExpired:
		return "expired"
	case OutcomeRevoked:
		return "revoked"
	case OutcomeForbidden:
		return "forbidden"
	case OutcomeTLSRequired:
		return "tls_required"
	case OutcomeUnavailable:
		return "unavailable"
	}
	return "unknown"
}

// OutcomeOf maps a Verify or scope error to its outcome (nil is OutcomeOK).
func OutcomeOf(err error) Outcome {
	if err == nil {
		return OutcomeOK
	}
	if te, ok := err.(*core.Error); ok {
		switch te.Kind {
		case core.KindExpired:
			return OutcomeExpired
		case core.KindRevoked:
			return OutcomeRevoked
		case core.KindForbidden:
			return OutcomeForbidden
		case core.KindUnavailable:
			return OutcomeUnavailable
		}
	}
	return OutcomeInvalid
}

// Observer records authentication outcomes and limit hits. The transport
// supplies one per protocol; it counts without allocating and logs failures
// (protocol, source address, token id when the MAC verified, reason —
// never the token).
type Observer interface {
	// Authenticated records a finished attempt. claims is non-nil only
	// when the token's MAC verified (core.Claims.Verified: its id may be
	// logged), and valid only during the call; err is nil on success.
	// Env.Admit and Env.AdmitClaims call it for every authentication.
	Authenticated(info *ConnInfo, claims *core.Claims, err error, started time.Time)
	// Refused records a connection refused before any token was sent
	// (OutcomeTLSRequired).
	Refused(info *ConnInfo, o Outcome)
	// Limit records a limit the transport, or a session, enforced.
	Limit(l Limit)
}

// Closer is implemented by a Session that holds something beyond its
// connection (a proxy's server connection). Closed is called once, when the
// connection has ended for any reason, on the goroutine that ran the
// session last; the session must not use ConnInfo.Client after it.
type Closer interface {
	Closed()
}

// Awaiter is implemented by a Session that can tell how large the message
// it is waiting for is. After a Handle call that stopped at an incomplete
// message, Awaiting returns the number of bytes that message needs in all,
// counted from the first byte Handle did not consume (0 when the header
// that says so has not arrived, or nothing is pending). The event loop then
// calls Handle again only once that many bytes are buffered: without it, a
// message arriving in many reads is copied out of the transport's buffer
// and re-parsed on every read, quadratic in its size (a 15 MiB Redis
// command took 330 ms instead of about 10). Awaiting must never overstate:
// a count larger than the message stalls the connection until its idle
// deadline.
type Awaiter interface {
	Awaiting() int
}

// Session is one connection's protocol state machine. It is transport-neutral:
// bytes in, bytes out, and an Action. The same Session runs on a gnet event
// loop (plaintext) and on a TLS goroutine after an upgrade.
//
// Ownership: in is valid only during the call; a session must copy what it
// keeps. out is the transport's buffer: a session appends to it and returns
// the result.
type Session interface {
	// Start appends what the server says first (MySQL's handshake); most
	// protocols return out unchanged.
	Start(env *Env, out []byte) []byte
	// Handle consumes complete messages from the front of in and returns how
	// many bytes it consumed (0 when in holds no complete message yet), the
	// output, and what to do next. A session must bound what it waits for:
	// a length prefix above env.MaxPreAuthMessage (before authentication) or
	// env.MaxMessage (after) gets the protocol's error and Close.
	Handle(env *Env, in, out []byte) (n int, outNext []byte, act Action)
	// Authenticated reports whether the token has been accepted (the
	// transport switches from the handshake deadline to the idle deadline).
	Authenticated() bool
	// LimitError appends the protocol's own error for a limit the transport
	// enforced; the transport closes the connection after writing it.
	LimitError(l Limit, out []byte) []byte
	// Claims returns the claims of the token the session authenticated
	// with, nil before that, so that the transport indexes open sessions by
	// token id, account and key id (revocation then finds them without a
	// scan) and ends them at their token's expiry. The pointer stays valid
	// for the session's life and its contents must not change once
	// returned non-nil.
	Claims() *core.Claims
	// Terminate appends the protocol's own words for ending the connection
	// from outside: its token was revoked, its account logged out
	// everywhere, its key retired, it expired during the session, or the
	// node can no longer tell (err is core.ErrRevoked, core.ErrLoggedOut,
	// core.ErrKeyRetired, core.ErrExpired or core.ErrUnavailable). The
	// transport calls it on the connection's own loop (or goroutine),
	// writes the result, and closes. A protocol with no unsolicited
	// message returns out unchanged: the close is the signal.
	Terminate(err error, out []byte) []byte
}

// Protocol makes sessions for one listener.
type Protocol interface {
	// Name is the protocol's label in metrics and logs ("postgres").
	Name() string
	// NewSession returns the state machine for a new connection.
	NewSession(info *ConnInfo) Session
	// TLSFirstByte reports whether a first byte 0x16 (a TLS handshake
	// record) on this port means the client starts TLS right away (Redis,
	// MongoDB, HTTP, PostgreSQL direct TLS). The transport then hands the
	// connection to TLS before the session sees a byte.
	TLSFirstByte() bool
	// ALPN lists the protocols to offer in TLS ALPN ("postgresql"), if any.
	ALPN() []string
}
