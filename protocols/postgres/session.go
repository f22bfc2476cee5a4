package postgres

import (
	"encoding/binary"
	"math/rand/v2"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
)

// phase is where a session is in the protocol.
type phase uint8

const (
	phaseStartup    phase = iota // SSLRequest, GSSENCRequest, CancelRequest or StartupMessage
	phasePassword                // AuthenticationCleartextPassword sent; waiting for 'p'
	phaseConnecting              // proxy mode on the event loop: token admitted, waiting for a server connection
	phaseReady                   // authenticated: queries
	phaseClosed                  // a FATAL was sent; nothing more is read
)

// Session is one PostgreSQL connection's state machine (netio.Session). It
// keeps the startup user name, the verified claims, and the extended
// protocol's named statements and portals (allocated on first use, so an
// idle connection holds a few dozen bytes).
type Session struct {
	p        *Protocol
	info     *netio.ConnInfo
	phase    phase
	skipSync bool // an extended-protocol error: discard until Sync
	await    int  // size of the message Handle stopped at (netio.Awaiter)
	user     string
	database []byte // the startup packet's database (default: the user name, as PostgreSQL does)
	claims   core.Claims
	ext      *extended
	refuse   bool // the transport refuses the connection (RefuseLate)
	tx       byte // transaction status: 0 or 'I' idle, 'T' in a block, 'E' failed
	appName  string
	// startupParams holds the StartupMessage's other parameters
	// (application_name, client_encoding, …), set on the server connection
	// in proxy mode.
	startupParams [][2]string
	px            *proxy     // proxy mode on a goroutine: the server side, once authenticated
	lp            *loopProxy // proxy mode on the event loop (loopproxy.go)
}

var (
	_ netio.Session     = (*Session)(nil)
	_ netio.LateRefuser = (*Session)(nil)
	_ netio.Closer      = (*Session)(nil)
)

// Closed ends the server side of a proxied session (netio.Closer): its
// connection goes back to the pool when the client left cleanly.
func (s *Session) Closed() {
	s.closeProxy()
	if s.lp != nil {
		s.lp.clientGone()
	}
}

// markRevoked records that the session was ended from outside: its server
// connection is closed, not pooled.
func (s *Session) markRevoked() {
	if s.px != nil {
		s.px.revoked = true
	}
	if s.lp != nil {
		s.lp.revoked = true
	}
}

// Start sends nothing: the PostgreSQL client speaks first.
func (s *Session) Start(_ *netio.Env, out []byte) []byte { return out }

// Authenticated reports whether the token was accepted.
func (s *Session) Authenticated() bool { return s.phase == phaseReady }

// Claims returns the accepted token's claims, nil before authentication
// (the transport re-checks them while the client is silent).
func (s *Session) Claims() *core.Claims {
	if s.phase == phaseReady {
		return &s.claims
	}
	return nil
}

// Terminate appends the FATAL 28P01 (57P03 when the node cannot tell) for
// a token that stopped holding during the session: revoked, logged out,
// key retired, expired (netio.Session.Terminate).
func (s *Session) Terminate(err error, out []byte) []byte {
	s.phase = phaseClosed
	s.markRevoked()
	return AppendErrorResponse(out, tokenError(err))
}

// LimitError appends the FATAL error for a transport limit.
func (s *Session) LimitError(l netio.Limit, out []byte) []byte {
	return AppendErrorResponse(out, limitError(l))
}

// RefuseLate makes the session refuse the connection as PostgreSQL does
// when it has too many clients (netio.LateRefuser): the SSLRequest is
// answered as usual ('S' and TLS, or 'N'), and the StartupMessage gets
// FATAL 53300 "sorry, too many clients already". An error in place of the
// SSLRequest's one-byte answer would be reported by drivers as the server
// refusing TLS (pgx: "server refused TLS connection"), hiding the reason.
func (s *Session) RefuseLate() { s.refuse = true }

// fatal appends a FATAL error and closes.
func (s *Session) fatal(out []byte, e ErrorFields) ([]byte, netio.Action) {
	s.phase = phaseClosed
	return AppendErrorResponse(out, e), netio.Close
}

// Handle consumes the complete messages at the front of in. In proxy mode
// on the event loop, what it forwards is written to the server at the end,
// in one write.
func (s *Session) Handle(env *netio.Env, in, out []byte) (int, []byte, netio.Action) {
	n, out, act := s.handle(env, in, out)
	if lp := s.lp; lp != nil && len(lp.wbuf) > 0 {
		if err := lp.flush(); err != nil && act != netio.Close {
			out, act = s.fatal(out, upstreamLostError)
		}
	}
	return n, out, act
}

func (s *Session) handle(env *netio.Env, in, out []byte) (int, []byte, netio.Action) {
	n := 0
	s.await = 0
	for n < len(in) {
		var used int
		var act netio.Action
		switch s.phase {
		case phaseStartup:
			used, out, act = s.startup(env, in[n:], out)
		case phaseClosed:
			return len(in), out, netio.Close
		default:
			used, out, act = s.message(env, in[n:], out)
		}
		n += used
		if act != netio.Continue || used == 0 {
			return n, out, act
		}
	}
	return n, out, netio.Continue
}

// startup handles one startup-phase packet: int32 length (itself
// included), int32 code, body.
func (s *Session) startup(env *netio.Env, in, out []byte) (int, []byte, netio.Action) {
	if len(in) < 4 {
		return 0, out, netio.Continue
	}
	size := int(binary.BigEndian.Uint32(in))
	limit := min(maxStartupBytes, max(env.MaxPreAuthMessage, startupHeaderLen))
	if size < startupHeaderLen || size > limit || uint32(size) != binary.BigEndian.Uint32(in) {
		o, a := s.fatal(out, protocolViolation("invalid length of startup packet"))
		return len(in), o, a
	}
	if len(in) < size {
		return 0, out, netio.Continue
	}
	code := binary.BigEndian.Uint32(in[4:])
	body := in[startupHeaderLen:size]
	switch {
	case code == sslRequestCode:
		if s.info.TLS || size != startupHeaderLen {
			o, a := s.fatal(out, protocolViolation("unexpected SSLRequest"))
			return size, o, a
		}
		if !s.info.TLSAvailable {
			return size, append(out, 'N'), netio.Continue // no certificate: the client decides
		}
		return size, append(out, 'S'), netio.UpgradeTLS
	case code == gssEncRequestCode:
		if size != startupHeaderLen {
			o, a := s.fatal(out, protocolViolation("invalid GSSENCRequest"))
			return size, o, a
		}
		return size, append(out, 'N'), netio.Continue
	case code == cancelRequestCode:
		// The built-in responder runs nothing long enough to cancel; a
		// proxied session's statement is cancelled on its server, with the
		// server's key, when the key matches. Either way the connection is
		// closed, as a server does after reading a cancel request.
		if s.p.up != nil && size >= startupHeaderLen+8 {
			if !s.info.Offloaded {
				return 0, out, netio.Offload // dialling the server blocks
			}
			s.p.cancelFor(binary.BigEndian.Uint32(body), binary.BigEndian.Uint32(body[4:]))
		}
		s.phase = phaseClosed
		return size, out, netio.Close
	case code&^protocolMinorMask == protocolVersion3: // 3.0, or 3.x negotiated down
		o, a := s.startupMessage(env, code, body, out)
		return size, o, a
	}
	o, a := s.fatal(out, ErrorFields{Severity: "FATAL", Code: codeFeatureNotSupported,
		Message: "unsupported frontend protocol: this server speaks protocol 3.0"})
	return size, o, a
}

// startupMessage handles a StartupMessage: refuse plaintext from an address
// that may not send tokens without TLS (before asking for the password),
// negotiate the protocol version down to 3.0, then ask for the password.
func (s *Session) startupMessage(env *netio.Env, code uint32, body, out []byte) ([]byte, netio.Action) {
	// Check the whole parameter list first: a malformed packet is a
	// protocol violation whatever the client's address.
	for rest := body; ; {
		_, _, r, done, err := NextStartupParameter(rest)
		if err != nil {
			o, _ := s.fatal(out, protocolViolation("invalid startup packet layout: expected terminator as last byte"))
			return o, netio.Close
		}
		if done {
			break
		}
		rest = r
	}
	if s.refuse {
		o, _ := s.fatal(out, limitError(netio.LimitConnections))
		return o, netio.Close
	}
	if !s.info.TLS && !s.info.PlaintextOK {
		env.Observer.Refused(s.info, netio.OutcomeTLSRequired)
		o, _ := s.fatal(out, insecureError)
		return o, netio.Close
	}
	var unknown [][]byte
	s.user = "default"
	for rest := body; ; {
		k, v, r, done, _ := NextStartupParameter(rest)
		if done {
			break
		}
		rest = r
		switch {
		case string(k) == "user" && string(v) != "default":
			// The only user is default: refused before the client sends
			// the token as a password it would have sent for nothing.
			env.Observer.Authenticated(s.info, nil, errWrongUser, env.Now)
			o, _ := s.fatal(out, wrongUserError(v))
			return o, netio.Close
		case string(k) == "database" && len(v) > 0 && len(v) <= maxIdentifierLen:
			s.database = append(s.database[:0], v...)
		case len(k) > 4 && string(k[:4]) == "_pq_":
			unknown = append(unknown, k)
		case string(k) == "replication" && string(v) != "false" && string(v) != "off" && string(v) != "0" && string(v) != "no":
			o, _ := s.fatal(out, ErrorFields{Severity: "FATAL", Code: codeFeatureNotSupported,
				Message: "replication connections are not supported through the HeliosDB gateway"})
			return o, netio.Close
		case s.p.up != nil && string(k) == "options":
			set, err := optionSettings(string(v))
			if err != nil {
				o, _ := s.fatal(out, ErrorFields{Severity: "FATAL", Code: codeFeatureNotSupported, Message: err.Error()})
				return o, netio.Close
			}
			s.startupParams = append(s.startupParams, set...)
		case s.p.up != nil && string(k) != "user" && string(k) != "database" && string(k) != "options" && string(k) != "replication":
			s.startupParams = append(s.startupParams, [2]string{string(k), string(v)})
		}
	}
	if len(s.database) == 0 {
		s.database = append(s.database[:0], s.user...)
	}
	if minor := code & protocolMinorMask; minor > uint32(supportedMinor) || len(unknown) > 0 {
		out = AppendNegotiateProtocolVersion(out, supportedMinor, unknown)
	}
	s.phase = phasePassword
	return AppendAuthentication(out, AuthenticationCleartextPassword), netio.Continue
}

// message handles one typed message: byte type, int32 length (itself
// included), body.
func (s *Session) message(env *netio.Env, in, out []byte) (int, []byte, netio.Action) {
	if len(in) < messageHeaderLen || s.phase == phaseConnecting {
		return 0, out, netio.Continue // connecting: the client waits for AuthenticationOk
	}
	typ := in[0]
	size := int(binary.BigEndian.Uint32(in[1:]))
	limit := env.MaxPreAuthMessage
	if s.phase == phaseReady {
		limit = env.MaxMessage
	}
	if size < 4 || int64(size) > int64(limit) || uint32(size) != binary.BigEndian.Uint32(in[1:]) {
		if size >= 4 {
			env.Observer.Limit(netio.LimitMessageSize)
			o, a := s.fatal(out, limitError(netio.LimitMessageSize))
			return len(in), o, a
		}
		o, a := s.fatal(out, protocolViolation("invalid message length"))
		return len(in), o, a
	}
	if len(in) < size+1 {
		s.await = size + 1
		return 0, out, netio.Continue
	}
	body := in[messageHeaderLen : size+1]
	if typ == 'X' {
		s.phase = phaseClosed
		if s.px != nil {
			s.px.clean = true
		}
		if s.lp != nil {
			s.lp.clean = true
		}
		return size + 1, out, netio.Close
	}
	if s.px != nil || s.lp != nil && s.phase == phaseReady {
		o, a := s.forward(env, in[:size+1], out)
		return size + 1, o, a
	}
	if s.phase == phasePassword && s.p.up != nil && !s.info.Offloaded && !s.loopMode() {
		// Proxy mode: taking a server connection blocks, so the session
		// moves to a goroutine of its own first, with this message unread
		// (unless its proxy runs on the event loop: loopproxy.go).
		return 0, out, netio.Offload
	}
	if s.phase == phasePassword {
		o, a := s.password(env, typ, body, out)
		return size + 1, o, a
	}
	o, a := s.query(env, typ, body, out)
	return size + 1, o, a
}

// password admits the token sent as the password (netio.Env.Admit: the
// token, its IP allowlist against the client's address, after a PROXY
// header, and for a test token the startup database, which must be
// registered as a test database) and, on success, sends
// AuthenticationOk, the ParameterStatus set, BackendKeyData and
// ReadyForQuery.
func (s *Session) password(env *netio.Env, typ byte, body, out []byte) ([]byte, netio.Action) {
	if typ != 'p' {
		return s.fatal(out, protocolViolation("expected password response"))
	}
	tok, _, ok := cstring(body)
	if !ok {
		return s.fatal(out, protocolViolation("invalid password packet"))
	}
	if err := env.Admit(&s.p.adm, s.info, &s.claims, tok, s.database); err != nil {
		return s.fatal(out, tokenError(err))
	}
	// As PostgreSQL does, the database is checked after authentication, so
	// the registry is not shown to whoever connects. The implied name (the
	// user name, "default") names no database: the default one.
	if string(s.database) != "default" && !core.KnownDatabase(s.p.adm.Policy, s.database) {
		return s.fatal(out, ErrorFields{Severity: "FATAL", Code: codeInvalidCatalogName,
			Message: "database \"" + string(s.database) + "\" does not exist"})
	}
	if s.p.up != nil {
		if s.loopMode() {
			return s.startLoopProxy(env, out)
		}
		return s.startProxy(env, out)
	}
	s.phase = phaseReady
	out = AppendAuthentication(out, AuthenticationOk)
	for _, p := range s.p.params {
		out = AppendParameterStatus(out, p[0], p[1])
	}
	out = AppendParameterStatus(out, "application_name", s.appName)
	out = AppendParameterStatus(out, "session_authorization", s.user)
	out = AppendBackendKeyData(out, s.info.ID, rand.Uint32())
	return AppendReadyForQuery(out), netio.Continue
}

// Awaiting returns the size of the message Handle stopped at, when its
// header has arrived (netio.Awaiter).
func (s *Session) Awaiting() int { return s.await }
