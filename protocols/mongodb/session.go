package mongodb

import (
	"bytes"
	"strconv"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Session is one MongoDB connection: the handshake, SASL PLAIN with a
// HeliosDB token, and the built-in responder. It is not safe for concurrent
// use (a transport drives it from one goroutine or event loop). It
// implements netio.Session.
type Session struct {
	p    *Protocol
	info *netio.ConnInfo

	authed bool
	// established: a hello was answered, so this is a driver's connection
	// past its handshake (a monitoring connection, which never
	// authenticates, or a pooled one about to).
	established bool
	// claims: the token this connection first authenticated with, once
	// it has (claims.Verified); they never change afterwards.
	claims core.Claims
	user   string
	authDB string
	nextID int32

	// pending is the header of a message whose body has not fully arrived,
	// so a size limit hit by the transport can be answered to its request.
	pending     Header
	havePending bool
	refused     bool
	refuseConn  bool // the transport refuses the connection (RefuseLate)
	// px is the server side in proxy mode, once authenticated.
	px *proxy
}

var _ netio.Closer = (*Session)(nil)

// Start says nothing: the client speaks first.
func (s *Session) Start(env *netio.Env, out []byte) []byte { return out }

// Authenticated reports whether the connection is past its handshake, which
// for the transport moves it from the handshake deadline to the idle one:
// a token was accepted, or a hello was answered. Drivers keep a monitoring
// connection that sends hello every 10 seconds and never authenticates
// (PROTOCOLS.md §3); closing it at the handshake deadline makes the driver
// mark the server unknown and clear its connection pool. Such a connection
// still runs nothing but hello, isMaster, ping and buildInfo, and its
// messages stay bounded by the pre-authentication size.
func (s *Session) Authenticated() bool { return s.authed || s.established }

// LimitError answers the request whose body was still arriving when the
// transport's size limit hit. Timeouts and connection limits get no reply
// here: a MongoDB client reads only replies to its requests, so a connection
// over the limits is refused in reply to its first request (RefuseLate).
func (s *Session) LimitError(l netio.Limit, out []byte) []byte {
	if l != netio.LimitMessageSize || !s.havePending {
		return out
	}
	m := Message{Header: s.pending, Legacy: s.pending.OpCode == OpQuery}
	return s.errorReply(out, &m, CodeBSONObjectTooLarge, "message of "+strconv.Itoa(int(s.pending.MessageLength))+" bytes exceeds what this connection may buffer")
}

// maxMessage is the size bound for the current phase.
func (s *Session) maxMessage(env *netio.Env) int {
	if !s.authed {
		if env.MaxPreAuthMessage > 0 {
			return env.MaxPreAuthMessage
		}
		return DefaultMaxPreAuthMessage
	}
	if env.MaxMessage > 0 && env.MaxMessage < MaxMessageSize {
		return env.MaxMessage
	}
	return MaxMessageSize
}

// Handle consumes every complete message at the front of in and appends a
// reply for each (none for a moreToCome OP_MSG). A malformed message is
// answered with an error in the form the request used, and the connection
// is closed.
func (s *Session) Handle(env *netio.Env, in, out []byte) (int, []byte, netio.Action) {
	total := 0
	for {
		m, n, err := ReadMessage(in[total:], s.maxMessage(env))
		if err != nil {
			s.havePending = false
			m.Legacy = m.Header.OpCode == OpQuery || isCompressedQuery(in[total:])
			we, _ := err.(*WireError)
			if we == nil {
				we = errBSON
			}
			return len(in), s.errorReply(out, &m, we.Code, we.Msg), netio.Close
		}
		if n == 0 {
			s.pending, s.havePending = m.Header, len(in)-total >= HeaderLen
			return total, out, netio.Continue
		}
		s.havePending = false
		mark := len(out)
		var act netio.Action
		out, act = s.command(env, &m, in[total:total+n], out)
		if act == netio.Offload {
			return total, out, act // this message is handled again off the loop
		}
		total += n
		if m.MoreToCome {
			out = out[:mark]
		}
		if act != netio.Continue {
			return total, out, act
		}
	}
}

// auth runs saslStart (PLAIN) and refuses every other mechanism with a
// message that teaches the fix.
func (s *Session) auth(env *netio.Env, m *Message, name []byte, out []byte) ([]byte, netio.Action) {
	switch string(name) {
	case "saslStart":
	case "logout":
		s.authed, s.established = false, false
		return s.okReply(out, m), netio.Continue
	case "saslContinue":
		return s.errorReply(out, m, CodeProtocolError, msgNoSASL), netio.Continue
	case "getnonce":
		return s.errorReply(out, m, CodeCommandNotFound, "no such command: 'getnonce'"), netio.Continue
	default: // authenticate: MONGODB-X509 or the removed MONGODB-CR
		return s.errorReply(out, m, CodeAuthenticationFailed, msgUsePlain+s.workingURI(m.DB)), netio.Continue
	}
	mech, _ := m.Command.Lookup("mechanism").StringValueOK()
	if mech != "PLAIN" {
		msg := msgUsePlain + s.workingURI(m.DB)
		if mech != "SCRAM-SHA-1" && mech != "SCRAM-SHA-256" {
			msg = "authentication mechanism " + quoteMech(mech) + " is not supported. " + msg
		}
		return s.errorReply(out, m, CodeAuthenticationFailed, msg), netio.Continue
	}
	var payload []byte
	switch v := m.Command.Lookup("payload"); v.Type {
	case bsoncore.TypeBinary:
		_, payload, _ = v.BinaryOK()
	case bsoncore.TypeString:
		payload = stringBytes(v)
	}
	user, token, ok := splitPlain(payload)
	if !ok {
		token = nil // Verify reports it missing
	}
	if ok && string(user) != "default" {
		// The only user is default; the token is not looked at.
		s.authed = false
		env.Observer.Authenticated(s.info, nil, errWrongUser, env.Now)
		return s.errorReply(out, m, CodeAuthenticationFailed, wrongUserMessage(user)), netio.Close
	}
	// The token, its IP allowlist against the client's address, and the
	// binding of the connection to its first token (netio.Env.Admit).
	if verr := env.Admit(&s.p.adm, s.info, &s.claims, token, nil); verr != nil {
		s.authed = false
		msg := tokenMessage(verr)
		if !ok {
			msg = core.MsgInvalid + " (" + msgPlainPayload + ")"
		}
		return s.errorReply(out, m, CodeAuthenticationFailed, msg), netio.Close
	}
	s.authed = true
	s.user, s.authDB = string(user), string(m.DB)
	if s.p.up != nil && s.px == nil {
		var ok bool
		if out, ok = s.startProxy(m, out); !ok {
			s.authed = false
			return out, netio.Close
		}
	}
	start, out := s.begin(out, m)
	idx, out := bsoncore.AppendDocumentStart(out)
	out = bsoncore.AppendInt32Element(out, "conversationId", 1)
	out = bsoncore.AppendBooleanElement(out, "done", true)
	out = bsoncore.AppendBinaryElement(out, "payload", 0, nil)
	out = bsoncore.AppendDoubleElement(out, "ok", 1)
	out, _ = bsoncore.AppendDocumentEnd(out, idx)
	return endReply(out, start), netio.Continue
}

// Claims returns the claims of the token the connection authenticated with
// (nil before that). They stay the same for the connection's life: a later
// saslStart with another token is refused.
func (s *Session) Claims() *core.Claims {
	if !s.claims.Verified() {
		return nil
	}
	return &s.claims
}

// Terminate ends the session from outside (its token was revoked, its
// account logged out, its key retired, it expired, or the node failed
// closed). MongoDB has no unsolicited server message: a reply whose
// responseTo matches no request would be a protocol error for the driver.
// So Terminate appends nothing and returns out unchanged; the close itself
// is the signal (the driver sees a network error, drops the connection from
// its pool, and a new connection's saslStart is refused with code 18 and
// the reason). A session that is not idle hears the reason sooner: the
// per-command re-check answers its next command with code 18 before the
// close (netio.Session).
func (s *Session) Terminate(_ error, out []byte) []byte {
	s.authed = false
	if s.px != nil {
		s.px.revoked = true // its server connection is closed, not handed on
	}
	return out
}

// Closed ends the server side of a proxied session (netio.Closer): its
// server connection goes back to the pool when nothing is left on it.
func (s *Session) Closed() { s.closeProxy() }

// splitPlain splits a SASL PLAIN message "authzid\0authcid\0passwd"
// (RFC 4616). ok is false when it has not exactly three parts or no user.
func splitPlain(p []byte) (user, token []byte, ok bool) {
	i := bytes.IndexByte(p, 0)
	if i < 0 {
		return nil, nil, false
	}
	rest := p[i+1:]
	j := bytes.IndexByte(rest, 0)
	if j < 0 {
		return nil, nil, false
	}
	user, token = rest[:j], rest[j+1:]
	if bytes.IndexByte(token, 0) >= 0 {
		return nil, nil, false
	}
	return user, token, len(user) > 0
}

// quoteMech quotes a client-chosen mechanism name, shortened.
func quoteMech(m string) string {
	if len(m) > 32 {
		m = m[:32]
	}
	return "\"" + m + "\""
}

// begin starts a reply to m with this session's next request id.
func (s *Session) begin(out []byte, m *Message) (int, []byte) {
	s.nextID++
	return beginReply(out, m.Legacy, s.nextID, m.Header.RequestID)
}

// errorReply appends a whole {ok: 0} reply to m.
func (s *Session) errorReply(out []byte, m *Message, code int32, msg string) []byte {
	start, out := s.begin(out, m)
	out = appendErrorDoc(out, code, msg)
	return endReply(out, start)
}

// okReply appends a whole {ok: 1} reply to m.
func (s *Session) okReply(out []byte, m *Message) []byte {
	start, out := s.begin(out, m)
	idx, out := bsoncore.AppendDocumentStart(out)
	out = bsoncore.AppendDoubleElement(out, "ok", 1)
	out, _ = bsoncore.AppendDocumentEnd(out, idx)
	return endReply(out, start)
}

// Awaiting returns the length of the message Handle stopped at, when its
// header has arrived (netio.Awaiter).
func (s *Session) Awaiting() int {
	if !s.havePending {
		return 0
	}
	return int(s.pending.MessageLength)
}
