package redis

import (
	"bytes"
	"crypto/subtle"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
)

// Session is one Redis connection. Before authentication only AUTH, HELLO
// (with AUTH, or after it), RESET and QUIT are answered; everything else gets
// -NOAUTH. Afterwards every command re-checks the token (see the package
// doc), then is classified and checked against the token's scopes and, for
// a test token, the database — the selected one and any other the command
// names or reaches (MOVE, COPY … DB, SWAPDB, MIGRATE, FLUSHALL, scripts);
// the built-in responder answers PING, ECHO, HELLO, CLIENT
// SETINFO/SETNAME/GETNAME/ID/INFO, SELECT, ACL WHOAMI, COMMAND, QUIT, RESET
// and HELIOS.WHOAMI, and every other command gets "-ERR no upstream database
// is configured …".
//
// It implements netio.Session.
type Session struct {
	p      *Protocol
	info   *netio.ConnInfo
	authed bool
	proto  int // RESP2 or RESP3, set by HELLO
	db     int // the logical database (SELECT), 0 to numDatabases-1
	// claims: the token this connection first authenticated with, once
	// it has (claims.Verified); they never change afterwards.
	claims core.Claims
	name   []byte // CLIENT SETNAME / HELLO SETNAME
	args   [][]byte
	lower  [24]byte
	// refusing: the transport refuses the connection (refuse.go);
	// refusedCmds counts the commands answered since.
	refusing    bool
	refusedCmds uint8
	// await: the bytes the command Handle stopped at needs at least
	// (netio.Awaiter).
	await int
	// Proxy mode: px is the server side, once authenticated; raw is the
	// command being handled, as it came; scratch collects the gateway's
	// own replies before they are put in their place.
	px      *proxy
	lp      *loopProxy // proxy mode on the event loop (loopproxy.go)
	raw     []byte
	scratch []byte
	// upFailures counts the authentications that found no server
	// connection (the second closes the connection).
	upFailures uint8
}

var _ netio.Closer = (*Session)(nil)

// Awaiting returns how many bytes the command Handle stopped at needs at
// least: through the bulk argument whose header arrived last (netio.Awaiter).
func (s *Session) Awaiting() int { return s.await }

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
// and appends their replies to out. In proxy mode the commands it forwards
// leave in one write when it returns, and the gateway's own replies are
// written in their place among the server's (proxy.go).
func (s *Session) Handle(env *netio.Env, in, out []byte) (int, []byte, netio.Action) {
	consumed, start := 0, len(out)
	s.await = 0
	if lp := s.lp; lp != nil {
		lp.noHold = false
		out = append(out, lp.front...)
		lp.front = nil
	}
	for consumed < len(in) {
		if lp := s.lp; lp != nil && lp.blocked() {
			lp.stalled = true // handled once the server has answered
			break
		}
		max := env.MaxPreAuthMessage
		if s.authed {
			max = env.MaxMessage
		}
		args, n, need, err := ReadCommand(in[consumed:], s.args, max)
		if err != nil {
			out, _ = s.flushProxy(out, netio.Close)
			return len(in), appendProtocolError(out, err, max, s.authed), netio.Close
		}
		if n == 0 {
			s.await = need
			break
		}
		if len(args) == 0 {
			consumed += n
			continue
		}
		s.raw = in[consumed : consumed+n]
		var act netio.Action
		if s.proxying() {
			var o []byte
			o, act = s.dispatch(env, args, s.scratch[:0])
			if len(o) > 0 && (!s.proxying() || !s.local(o)) {
				out = append(out, o...) // the server side is gone: the session's last words
			}
			s.scratch = o[:0]
		} else {
			out, act = s.dispatch(env, args, out)
		}
		if lp := s.lp; lp != nil && len(lp.now) > 0 {
			out = append(out, lp.now...) // the gateway's replies in their turn
			lp.now = lp.now[:0]
		}
		clear(args) // do not keep views of the transport's buffer
		s.args = args[:0]
		s.raw = nil
		if act == netio.Offload { // this command runs again off the loop
			return consumed, out, act
		}
		consumed += n
		if act != netio.Continue {
			out, act = s.flushProxy(out, act)
			return consumed, out, act
		}
	}
	out, act := s.flushProxy(out, netio.Continue)
	if lp := s.lp; lp != nil && act == netio.Continue && len(out) > start && lp.holdFront(out[start:]) {
		out = out[:start] // written with the server's next reply
	}
	return consumed, out, act
}

// flushProxy writes the commands forwarded by this Handle call to the
// server; on the event loop, a write that failed answers the replies owed
// (loopProxy.flush) and may close.
func (s *Session) flushProxy(out []byte, act netio.Action) ([]byte, netio.Action) {
	if s.px != nil {
		s.px.flush()
	}
	if lp := s.lp; lp != nil {
		var a netio.Action
		if out, a = lp.flush(out); a != netio.Continue {
			act = a
		}
	}
	return out, act
}

// Closed ends the server side of a proxied session (netio.Closer): its
// server connection goes back to the pool, or is parked on the event loop,
// when the session ended cleanly.
func (s *Session) Closed() {
	s.closeProxy()
	if s.lp != nil {
		s.lp.clientGone()
	}
}

// verify checks a user name (nil for AUTH <token>), then admits the token
// (netio.Env.Admit: the token, its IP allowlist against the client's
// address, and the binding of the connection to its first token), and on
// success makes the session authenticated. A failed attempt on an
// authenticated connection leaves it authenticated as before, as Redis
// does.
func (s *Session) verify(env *netio.Env, user, token []byte) error {
	if user != nil && subtle.ConstantTimeCompare(user, []byte("default")) != 1 {
		env.Observer.Authenticated(s.info, nil, errWrongUser, env.Now)
		return errWrongUser
	}
	if err := env.Admit(&s.p.adm, s.info, &s.claims, token, nil); err != nil {
		return err
	}
	s.authed = true
	return nil
}

// Claims returns the claims of the token the connection authenticated with
// (nil before that). They stay the same for the connection's life.
func (s *Session) Claims() *core.Claims {
	if !s.claims.Verified() {
		return nil
	}
	return &s.claims
}

// Terminate appends the reply that ends the session from outside (its token
// was revoked, its account logged out, its key retired, it expired, or the
// node failed closed): "-NOAUTH <reason>", the same line a command gets when
// the per-command re-check fails. The transport closes the connection after
// writing it (netio.Session).
func (s *Session) Terminate(err error, out []byte) []byte {
	s.authed = false
	if s.px != nil {
		s.px.revoked = true
		_ = s.px.sc.SetReadDeadline(time.Now()) // no more replies: the session ends here
	}
	if s.lp != nil {
		s.lp.revoked = true // its server connection is closed, not parked
	}
	return appendSessionEnded(out, err)
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

// helloArgs are HELLO's arguments: proto is 0 when none is given.
type helloArgs struct {
	proto                int
	user, token, setname []byte
}

// parseHello reads HELLO [protover [AUTH user token] [SETNAME name]]; the
// refusal is Redis's error for malformed arguments.
func parseHello(args [][]byte) (helloArgs, []byte) {
	var h helloArgs
	if len(args) < 2 {
		return h, nil
	}
	v, ok := parseUint(args[1])
	if !ok {
		return h, AppendError(nil, "ERR Protocol version is not an integer or out of range")
	}
	if v < RESP2 || v > RESP3 {
		return h, AppendError(nil, msgNoProto)
	}
	h.proto = int(v)
	for i := 2; i < len(args); i++ {
		more := len(args) - i - 1
		switch {
		case bytes.EqualFold(args[i], []byte("auth")) && more >= 2:
			h.user, h.token = args[i+1], args[i+2]
			i += 2
		case bytes.EqualFold(args[i], []byte("setname")) && more >= 1:
			h.setname = args[i+1]
			i++
		default:
			out := append([]byte(nil), "-ERR Syntax error in HELLO option '"...)
			out = appendClean(out, args[i])
			return h, append(out, "'\r\n"...)
		}
	}
	return h, nil
}

// hello runs HELLO [protover [AUTH user token] [SETNAME name]].
func (s *Session) hello(env *netio.Env, args [][]byte, out []byte) []byte {
	h, refusal := parseHello(args)
	if refusal != nil {
		return append(out, refusal...)
	}
	proto := s.proto
	if h.proto != 0 {
		proto = h.proto
	}
	if h.token != nil {
		if err := s.verify(env, h.user, h.token); err != nil {
			return appendAuthError(out, err)
		}
	}
	if !s.authed {
		return AppendError(out, msgHelloNoAuth)
	}
	if h.setname != nil {
		if !validName(h.setname) {
			return AppendError(out, "ERR Client names cannot contain spaces, newlines or special characters.")
		}
		s.name = append(s.name[:0], h.setname...)
	}
	s.proto = proto
	out = AppendMap(out, 7, proto)
	out = AppendBulkString(out, "server")
	out = AppendBulkString(out, "redis")
	out = AppendBulkString(out, "version")
	out = AppendBulkString(out, serverVersion)
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
	if len(b) == 0 || len(b) > maxDigits {
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
