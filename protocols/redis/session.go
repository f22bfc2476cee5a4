// Package redis is HeliosDB's Redis front end: the RESP2/RESP3 codec, the
// per-connection state machine that takes a HeliosDB token through AUTH or
// HELLO … AUTH, the command → scope classifier, and Redis-native errors.
// With no upstream configured it answers the connection and identity
// commands itself (see Session) and refuses the rest with a clear error.
//
// The package owns Redis bytes only. It must never do I/O (netio moves the
// bytes), share state with another protocol, keep a token after verifying it,
// or put a token into a reply or a log.
package redis

import (
	"bytes"
	"crypto/subtle"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
)

// Protocol makes Redis sessions. Redis clients start TLS from the first byte
// (rediss://, redis-cli --tls), so TLSFirstByte is true.
type Protocol struct{}

// New returns the Redis protocol.
func New() *Protocol { return &Protocol{} }

// Name returns "redis".
func (*Protocol) Name() string { return "redis" }

// NewSession returns the state machine for one connection.
func (*Protocol) NewSession(info *netio.ConnInfo) netio.Session {
	return &Session{info: info, proto: 2}
}

// TLSFirstByte is true: a Redis client that wants TLS starts with it.
func (*Protocol) TLSFirstByte() bool { return true }

// ALPN offers nothing: Redis clients do not send ALPN.
func (*Protocol) ALPN() []string { return nil }

// Session is one Redis connection. Before authentication only AUTH, HELLO
// (with AUTH, or after it), RESET and QUIT are answered; everything else gets
// -NOAUTH. Afterwards every command is classified and checked against the
// token's scopes; the built-in responder answers PING, ECHO, HELLO, CLIENT
// SETINFO/SETNAME/GETNAME/ID/INFO, SELECT 0, ACL WHOAMI, COMMAND, QUIT, RESET
// and HELIOS.WHOAMI, and every other command gets "-ERR no upstream database
// is configured …".
type Session struct {
	info   *netio.ConnInfo
	authed bool
	proto  int // 2 or 3, set by HELLO
	claims core.Claims
	name   []byte // CLIENT SETNAME / HELLO SETNAME
	args   [][]byte
	lower  [24]byte
}

// Start returns out unchanged: the Redis client speaks first.
func (*Session) Start(_ *netio.Env, out []byte) []byte { return out }

// Authenticated reports whether a token has been accepted.
func (s *Session) Authenticated() bool { return s.authed }

// LimitError appends Redis's reply for a limit the transport enforced.
func (s *Session) LimitError(l netio.Limit, out []byte) []byte {
	switch l {
	case netio.LimitConnections:
		return AppendError(out, "ERR max number of clients reached")
	case netio.LimitHandshakeTimeout:
		return AppendError(out, "ERR authentication timed out: send AUTH <token> sooner after connecting")
	case netio.LimitMessageSize:
		return AppendError(out, "ERR Protocol error: command is larger than allowed")
	}
	// An idle connection is closed silently, as Redis does: a stray error
	// would be read as the reply to the client's next command.
	return out
}

// Handle runs every complete command at the front of in (clients pipeline)
// and appends their replies to out.
func (s *Session) Handle(env *netio.Env, in, out []byte) (int, []byte, netio.Action) {
	consumed := 0
	for consumed < len(in) {
		max := env.MaxPreAuthMessage
		if s.authed {
			max = env.MaxMessage
		}
		args, n, err := ReadCommand(in[consumed:], s.args, max)
		if err != nil {
			return len(in), appendProtocolError(out, err, max, s.authed), netio.Close
		}
		if n == 0 {
			break
		}
		consumed += n
		if len(args) == 0 {
			continue
		}
		var act netio.Action
		out, act = s.dispatch(env, args, out)
		clear(args) // do not keep views of the transport's buffer
		s.args = args[:0]
		if act != netio.Continue {
			return consumed, out, act
		}
	}
	return consumed, out, netio.Continue
}

// lowerName returns args[0] in lower case, in the session's scratch buffer
// (a name longer than it cannot be a known command and is returned as is).
func (s *Session) lowerName(name []byte) []byte {
	if len(name) > len(s.lower) {
		return name
	}
	b := s.lower[:len(name)]
	for i, c := range name {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return b
}

// dispatch runs one command.
func (s *Session) dispatch(env *netio.Env, args [][]byte, out []byte) ([]byte, netio.Action) {
	if !s.info.TLS && !s.info.PlaintextOK {
		// Redis has no in-protocol TLS upgrade: a client that wants TLS
		// starts with it. So these plaintext bytes are the client's first
		// command, and if it is AUTH (or HELLO … AUTH), the token has
		// already crossed the network in the clear. It is refused without
		// being verified, so a token sent this way never authenticates
		// anything, and the connection is closed; the reply tells the user
		// to reconnect with TLS and to replace a token sent in plaintext.
		env.Observer.Refused(s.info, netio.OutcomeTLSRequired)
		return AppendError(out, msgTLSRequired), netio.Close
	}
	name := s.lowerName(args[0])
	cmd := lookup(name)
	switch cmd.id {
	case cmdAuth:
		return s.auth(env, args, out), netio.Continue
	case cmdHello:
		return s.hello(env, args, out), netio.Continue
	case cmdQuit:
		return AppendOK(out), netio.Close
	case cmdReset:
		s.authed, s.proto, s.name, s.claims = false, 2, nil, core.Claims{}
		return AppendSimple(out, "RESET"), netio.Continue
	}
	if !s.authed {
		return AppendError(out, msgNoAuth), netio.Continue
	}
	if env.Now.Unix() >= s.claims.ExpiresAt {
		// The token expired while the connection was open: the session
		// drops back to unauthenticated, and the client must AUTH again.
		s.authed = false
		env.Observer.Authenticated(s.info, &s.claims, core.ErrExpired, env.Now)
		return AppendError(out, msgExpiredSession), netio.Continue
	}
	if !cmd.none {
		if err := s.claims.Require(cmd.scope); err != nil {
			env.Observer.Authenticated(s.info, &s.claims, err, env.Now) // counted as forbidden
			return appendNoPerm(out, name, cmd.scope), netio.Continue
		}
	}
	switch cmd.id {
	case cmdPing:
		switch len(args) {
		case 1:
			return AppendSimple(out, "PONG"), netio.Continue
		case 2:
			return AppendBulk(out, args[1]), netio.Continue
		}
		return appendArgCount(out, name), netio.Continue
	case cmdEcho:
		if len(args) != 2 {
			return appendArgCount(out, name), netio.Continue
		}
		return AppendBulk(out, args[1]), netio.Continue
	case cmdClient:
		return s.client(args, out), netio.Continue
	case cmdSelect:
		return s.selectDB(args, out), netio.Continue
	case cmdACL:
		if len(args) == 2 && bytes.EqualFold(args[1], []byte("whoami")) {
			return AppendBulkString(out, "default"), netio.Continue
		}
	case cmdCommand:
		return s.command(args, out), netio.Continue
	case cmdWhoami:
		return s.whoami(out), netio.Continue
	}
	return appendNoUpstream(out, name), netio.Continue
}

// verify checks a user name (nil for AUTH <token>) and a token, records the
// outcome, and on success makes the session authenticated. A failed attempt
// on an authenticated connection leaves it authenticated as before, as Redis
// does.
func (s *Session) verify(env *netio.Env, user, token []byte) error {
	if user != nil && subtle.ConstantTimeCompare(user, []byte("default")) != 1 {
		env.Observer.Authenticated(s.info, nil, errWrongUser, env.Now)
		return errWrongUser
	}
	c, err := env.Verifier.Verify(token, env.Now)
	if err != nil {
		var known *core.Claims
		if te, ok := err.(*core.Error); ok && (te.Kind == core.KindExpired || te.Kind == core.KindRevoked) && c.ID != (core.TokenID{}) {
			known = &c // the MAC verified: the token id may be logged
		}
		env.Observer.Authenticated(s.info, known, err, env.Now)
		return err
	}
	s.claims, s.authed = c, true
	env.Observer.Authenticated(s.info, &s.claims, nil, env.Now)
	return nil
}

// auth runs AUTH token / AUTH user token.
func (s *Session) auth(env *netio.Env, args [][]byte, out []byte) []byte {
	var err error
	switch len(args) {
	case 2:
		err = s.verify(env, nil, args[1])
	case 3:
		err = s.verify(env, args[1], args[2])
	default:
		return appendArgCount(out, []byte("auth"))
	}
	if err != nil {
		return appendAuthError(out, err)
	}
	return AppendOK(out)
}

// hello runs HELLO [protover [AUTH user token] [SETNAME name]].
func (s *Session) hello(env *netio.Env, args [][]byte, out []byte) []byte {
	proto := s.proto
	var user, token, setname []byte
	if len(args) >= 2 {
		v, ok := parseUint(args[1])
		if !ok {
			return AppendError(out, "ERR Protocol version is not an integer or out of range")
		}
		if v < 2 || v > 3 {
			return AppendError(out, msgNoProto)
		}
		proto = int(v)
		for i := 2; i < len(args); i++ {
			more := len(args) - i - 1
			switch {
			case bytes.EqualFold(args[i], []byte("auth")) && more >= 2:
				user, token = args[i+1], args[i+2]
				i += 2
			case bytes.EqualFold(args[i], []byte("setname")) && more >= 1:
				setname = args[i+1]
				i++
			default:
				out = append(out, "-ERR Syntax error in HELLO option '"...)
				out = appendClean(out, args[i])
				return append(out, "'\r\n"...)
			}
		}
	}
	if token != nil {
		if err := s.verify(env, user, token); err != nil {
			return appendAuthError(out, err)
		}
	}
	if !s.authed {
		return AppendError(out, msgHelloNoAuth)
	}
	if setname != nil {
		if !validName(setname) {
			return AppendError(out, "ERR Client names cannot contain spaces, newlines or special characters.")
		}
		s.name = append(s.name[:0], setname...)
	}
	s.proto = proto
	out = AppendMap(out, 7, proto)
	out = AppendBulkString(out, "server")
	out = AppendBulkString(out, "redis")
	out = AppendBulkString(out, "version")
	out = AppendBulkString(out, "7.2.0")
	out = AppendBulkString(out, "proto")
	out = AppendInt(out, int64(proto))
	out = AppendBulkString(out, "id")
	out = AppendInt(out, int64(s.info.ID))
	out = AppendBulkString(out, "mode")
	out = AppendBulkString(out, "standalone")
	out = AppendBulkString(out, "role")
	out = AppendBulkString(out, "master")
	out = AppendBulkString(out, "modules")
	return AppendArray(out, 0)
}

// parseUint parses a small non-negative decimal integer.
func parseUint(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// validName reports whether b is a valid client name (printable, no spaces).
func validName(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}
