package mysql

import (
	"crypto/rand"
	"crypto/subtle"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
)

// Session states.
const (
	stHandshake  uint8 = iota // greeting sent; waiting for SSLRequest or HandshakeResponse41
	stSwitch                  // AuthSwitchRequest sent; waiting for the fast-auth scramble
	stFullAuth                // 01 04 sent; waiting for token NUL (TLS) or 02
	stRSA                     // public key sent; waiting for the encrypted token
	stConnecting              // admitted; waiting for its server connection (loop proxy)
	stCommand                 // authenticated
	stClosed
)

// Session is one MySQL connection.
type Session struct {
	p      *Protocol
	info   *netio.ConnInfo
	state  uint8
	await  int  // size of the packet Handle stopped at (netio.Awaiter)
	seq    byte // sequence id of the last packet received
	caps   uint32
	nonce  [nonceLen]byte
	user   []byte
	db     []byte
	claims core.Claims
	// stage2 is the fast-auth cache key of the session's token, when it
	// is cached for this address (cached), so that a token that stops
	// holding during the session is evicted.
	stage2 stage2
	cached bool
	// stmts holds the prepared built-ins by statement id (prepared.go),
	// allocated on first use.
	stmts    map[uint32]prepStmt
	nextStmt uint32
	// charset is the collation id of the client's handshake (proxy mode
	// opens the server connection with it).
	charset byte
	// raw is the whole packet being handled (header and payload), valid
	// during the call only: proxy mode forwards it as it is.
	raw []byte
	px  *proxy     // proxy mode on a goroutine: the server side, once authenticated
	lp  *loopProxy // proxy mode on the event loop (loopproxy.go)
}

var (
	_ netio.Session = (*Session)(nil)
	_ netio.Closer  = (*Session)(nil)
)

// Closed ends the server side of a proxied session (netio.Closer): its
// connection goes back to the pool when the client left cleanly.
func (s *Session) Closed() {
	s.closeProxy()
	if s.lp != nil {
		s.lp.clientGone()
	}
}

// errRSA is the token error for an encrypted password the key cannot open.
var errRSA = &core.Error{Kind: core.KindInvalid, Message: core.MsgInvalid,
	Detail: "the RSA-encrypted password could not be decrypted with this server's key"}

// Start appends the HandshakeV10 greeting.
func (s *Session) Start(_ *netio.Env, out []byte) []byte {
	if _, err := rand.Read(s.nonce[:]); err != nil {
		panic("mysql: crypto/rand failed: " + err.Error()) // BUG: the OS has no randomness
	}
	for i, c := range s.nonce {
		// As MySQL does: 7-bit, never NUL or '$'.
		c &= 0x7f
		if c == 0 || c == '$' {
			c++
		}
		s.nonce[i] = c
	}
	h := HandshakeV10{ServerVersion: s.p.greetingVersion(), ConnectionID: s.info.ID, Nonce: s.nonce, Capabilities: s.p.caps}
	return h.Encode(out)
}

// Claims returns the claims of the token the session authenticated with,
// nil before that (netio.Session: the transport re-checks them while the
// client is silent). They never change once the session is admitted: MySQL's
// COM_CHANGE_USER is not served.
func (s *Session) Claims() *core.Claims {
	if s.state == stCommand {
		return &s.claims
	}
	return nil
}

// Terminate appends the ERR packet that ends the session from outside: its
// token was revoked, its account logged out everywhere, its key retired, it
// expired, or this node can no longer tell (netio.Session). The
// transport writes it and closes. The packet is unsolicited, so it carries
// sequence id 1, the id of the reply to the client's next command (sent
// with 0): a client reads it as the answer to whatever it sends next, and
// prints the reason. The token's fast-auth cache entry is evicted.
func (s *Session) Terminate(err error, out []byte) []byte {
	s.state = stClosed
	s.forget()
	seq := byte(1)
	if s.px != nil {
		seq = s.px.terminated() // mid-response: the id the client expects next
	}
	if s.lp != nil {
		s.lp.revoked = true
		seq = s.lp.nextSeq()
	}
	return s.appendSessionEnded(out, seq, err)
}

// Authenticated reports whether the token has been accepted.
func (s *Session) Authenticated() bool { return s.state == stCommand }

// LimitError appends MySQL's error for a limit the transport enforced.
func (s *Session) LimitError(l netio.Limit, out []byte) []byte {
	switch l {
	case netio.LimitConnections:
		return AppendERR(out, 0, erConCount, stateConnectionRejected, "Too many connections")
	case netio.LimitHandshakeTimeout:
		return AppendERR(out, s.seq+1, erNetReadInterrupted, stateCommunicationFailure, "Got timeout reading communication packets: authentication did not finish in time")
	case netio.LimitIdleTimeout:
		return AppendERR(out, 0, erClientInteractionTimeout, stateGeneralError, "The client was disconnected by the server because of inactivity.")
	case netio.LimitMessageSize:
		return appendTooBig(out, s.seq+1, 0)
	}
	return out
}

// Handle consumes complete packets from the front of in. After an
// SSLRequest it stops and asks for UpgradeTLS: the bytes behind it (the
// client's ClientHello) are left unconsumed for the transport to carry into
// TLS.
func (s *Session) Handle(env *netio.Env, in, out []byte) (int, []byte, netio.Action) {
	if s.state == stClosed {
		return len(in), out, netio.Close // ended (Terminate): nothing more is read
	}
	consumed := 0
	s.await = 0
	for consumed < len(in) && s.state != stClosed && s.state != stConnecting {
		max := env.MaxPreAuthMessage
		if s.state == stCommand {
			max = env.MaxMessage
		}
		payload, seq, n, err := ReadPacket(in[consumed:], max)
		if err != nil {
			s.state = stClosed
			seq := in[consumed+packetHeaderLen-1] // the oversized packet's sequence id
			return len(in), appendTooBig(out, seq+1, max), netio.Close
		}
		if n == 0 {
			if h := in[consumed:]; len(h) >= packetHeaderLen {
				s.await = packetHeaderLen + (int(h[0]) | int(h[1])<<8 | int(h[2])<<16)
			}
			break
		}
		if s.p.up != nil && s.state != stCommand && !s.info.Offloaded && !IsSSLRequest(payload) && !s.loopMode() {
			// Proxy mode off the event loop (TLS is handled on a
			// goroutine already): taking a server connection blocks, and
			// the session then writes to the client from a pump
			// goroutine; it moves to a goroutine of its own first, with
			// this packet unread.
			return consumed, out, netio.Offload
		}
		s.raw = in[consumed : consumed+n]
		consumed += n
		s.seq = seq
		var act netio.Action
		out, act = s.packet(env, payload, out)
		if act != netio.Continue {
			if act == netio.Close {
				s.state = stClosed
			}
			return consumed, out, act
		}
	}
	if s.px != nil {
		out, act := s.flushProxy(out) // what this read brought, in one write
		return consumed, out, act
	}
	if s.lp != nil {
		out, act := s.flushLoopProxy(out, netio.Continue)
		return consumed, out, act
	}
	return consumed, out, netio.Continue
}

// packet handles one packet in the current state.
func (s *Session) packet(env *netio.Env, payload, out []byte) ([]byte, netio.Action) {
	switch s.state {
	case stHandshake:
		return s.handshakeResponse(env, payload, out)
	case stSwitch:
		if len(payload) == 0 || (len(payload) == 1 && payload[0] == 0) {
			return s.fail(env, core.ErrMissing, out)
		}
		return s.fastAuth(env, payload, out)
	case stFullAuth:
		if !s.info.TLS && len(payload) == 1 && payload[0] == requestPublicKey {
			s.state = stRSA
			// The client's next packet is the RSA-encrypted token: about
			// 1 ms of CPU to decrypt, which on an event loop would stall
			// every other connection of that loop (an RSA flood). Off the
			// loop it is decrypted on this connection's own goroutine.
			act := netio.Continue
			if !s.info.Offloaded {
				act = netio.Offload
			}
			return AppendAuthMoreData(out, s.seq+1, s.p.pubPEM), act
		}
		// Inside TLS (or, where plaintext is allowed, from a client that
		// sends it anyway): the token, NUL-terminated.
		tok := payload
		if len(tok) > 0 && tok[len(tok)-1] == 0 {
			tok = tok[:len(tok)-1]
		}
		return s.verify(env, tok, out)
	case stRSA:
		if s.info.Offloaded {
			// On this connection's goroutine: wait for a decryption slot,
			// so that an RSA flood keeps cores free for the event loops.
			s.p.rsaSlots <- struct{}{}
			defer func() { <-s.p.rsaSlots }()
		}
		tok, err := decryptToken(s.p.key, s.nonce[:], payload)
		if err != nil {
			return s.fail(env, errRSA, out)
		}
		out, act := s.verify(env, tok, out)
		clear(tok)
		return out, act
	case stCommand:
		if s.px != nil {
			return s.forward(env, payload, out)
		}
		if s.lp != nil {
			return s.loopForward(env, payload, out)
		}
		return s.command(env, payload, out)
	}
	return out, netio.Close
}

// handshakeResponse handles an SSLRequest or a HandshakeResponse41.
func (s *Session) handshakeResponse(env *netio.Env, payload, out []byte) ([]byte, netio.Action) {
	if IsSSLRequest(payload) {
		if s.info.TLS || s.p.caps&ClientSSL == 0 {
			return AppendERR(out, s.seq+1, erHandshake, stateCommunicationFailure, "Bad handshake: unexpected SSLRequest"), netio.Close
		}
		return out, netio.UpgradeTLS
	}
	var r HandshakeResponse41
	if err := r.Decode(payload); err != nil {
		return AppendERR(out, s.seq+1, erHandshake, stateCommunicationFailure, "Bad handshake"), netio.Close
	}
	if r.Capabilities&ClientProtocol41 == 0 {
		return AppendERR(out, s.seq+1, erNotSupportedAuthMode, stateConnectionRejected,
			"Client does not support authentication protocol requested by server; consider upgrading MySQL client"), netio.Close
	}
	s.caps = r.Capabilities & s.p.caps
	s.charset = r.Charset
	s.user = append(s.user[:0], clip(r.Username)...)
	s.db = append(s.db[:0], clip(r.Database)...)
	if !s.info.TLS && !s.info.PlaintextOK {
		// Refused before the token is sent: the client has sent only the
		// caching_sha2 scramble so far.
		env.Observer.Refused(s.info, netio.OutcomeTLSRequired)
		return AppendERR(out, s.seq+1, erSecureTransportRequired, stateGeneralError, msgTLSRequired), netio.Close
	}
	if subtle.ConstantTimeCompare(r.Username, []byte("default")) != 1 {
		return s.fail(env, errWrongUser, out)
	}
	if string(r.AuthPlugin) != pluginCachingSHA2 && len(r.AuthPlugin) != 0 {
		s.state = stSwitch
		return AppendAuthSwitchRequest(out, s.seq+1, s.nonce[:]), netio.Continue
	}
	if len(r.AuthResponse) == 0 {
		// An empty password: the client sends no scramble at all.
		return s.fail(env, core.ErrMissing, out)
	}
	return s.fastAuth(env, r.AuthResponse, out)
}

// fastAuth answers the client's fast-auth scramble: 01 03 and OK when it
// proves a cached token that passes its re-check, 1045 when the cached token
// has since expired or been revoked (the entry is evicted), otherwise 01 04
// (perform full authentication).
func (s *Session) fastAuth(env *netio.Env, scramble, out []byte) ([]byte, netio.Action) {
	if c := s.p.cache; c != nil && len(scramble) == scrambleLen {
		var key stage2
		var ok bool
		// The claims go straight into the session (a local would escape
		// to the heap through the observer).
		s.claims, key, ok = c.lookup(s.info.Remote.Addr(), s.nonce[:], scramble, env.Now)
		if ok {
			err := env.AdmitClaims(&s.p.adm, s.info, &s.claims, s.db)
			if te, _ := err.(*core.Error); err != nil && (te == nil || te.Kind != core.KindForbidden) {
				// The token stopped holding (expired, revoked, its key
				// retired): not a refusal by policy.
				c.evict(s.info.Remote.Addr(), key)
				fastAuthRejected.Inc()
				return s.refused(out, s.seq+1, err), netio.Close
			}
			fastAuthHits.Inc()
			if err != nil {
				return s.refused(out, s.seq+1, err), netio.Close
			}
			if !s.knownDB(s.db) {
				return appendUnknownDB(out, s.seq+1, s.db), netio.Close
			}
			s.stage2, s.cached = key, true
			return s.admitted(env, out, s.seq+1, true)
		}
		fastAuthMisses.Inc()
	}
	s.state = stFullAuth
	return AppendAuthMoreData(out, s.seq+1, []byte{performFullAuth}), netio.Continue
}

// verify admits the token (netio.Env.Admit: the token, its IP allowlist,
// the handshake's database for a test token) and ends the authentication
// phase.
func (s *Session) verify(env *netio.Env, tok, out []byte) ([]byte, netio.Action) {
	if err := env.Admit(&s.p.adm, s.info, &s.claims, tok, s.db); err != nil {
		return s.refused(out, s.seq+1, err), netio.Close
	}
	// As MySQL does, the schema is checked after authentication, so the
	// registry is not shown to whoever connects.
	if !s.knownDB(s.db) {
		return appendUnknownDB(out, s.seq+1, s.db), netio.Close
	}
	out, act := s.admitted(env, out, s.seq+1, false)
	if s.p.cache != nil {
		// Only admitted tokens are cached (a refusal by policy is not).
		s.stage2, s.cached = s.p.cache.add(s.info.Remote.Addr(), tok, &s.claims, env.Now), true
	}
	return out, act
}

// fail records a failed attempt that never reached the verifier and refuses
// it with 1045.
func (s *Session) fail(env *netio.Env, err error, out []byte) ([]byte, netio.Action) {
	env.Observer.Authenticated(s.info, nil, err, env.Now)
	return s.appendAccessDenied(out, s.seq+1, err), netio.Close
}

// clip bounds a client-chosen name kept by the session to maxNameLen.
func clip(b []byte) []byte {
	if len(b) > maxNameLen {
		return b[:maxNameLen]
	}
	return b
}

// Awaiting returns the size of the packet Handle stopped at, when its
// header has arrived (netio.Awaiter).
func (s *Session) Awaiting() int { return s.await }
