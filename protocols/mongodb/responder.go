package mongodb

import (
	"crypto/rand"
	"strconv"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// This file is the command dispatch and the built-in responder: each
// request goes through the plaintext rule, the token's re-check and the
// classifier's class, database and scope checks (command), and the
// handshake, session and identity commands are answered here without an
// upstream.

// Handshake reply values (PROTOCOLS.md §3). topologyVersion is left out on
// purpose: with it, drivers switch to awaitable hello and expect the server
// to wait maxAwaitTimeMS between replies.
const (
	maxWriteBatchSize             = 100000
	logicalSessionTimeoutMinutes  = 30
	minWireVersion                = 0
	maxWireVersion                = 21
	featureCompatibilityVersion   = "7.0"
	connectionStatusRoleDatabase  = "heliosdb"
	connectionStatusTokenDocument = "heliosdbToken"
)

// errAdministrative is the error observed for a command that administers
// the server (ClassRefused).
var errAdministrative = &core.Error{Kind: core.KindForbidden, Message: "The command administers the database server",
	Detail: "no token scope grants server administration"}

// knownDB reports whether a scoped command may run on db: a registered
// database, or one of the databases every MongoDB server has (admin,
// local, config), which drivers and shells use for server-wide commands.
// A database that is not registered is answered with error 13
// (Unauthorized), not 26 (NamespaceNotFound): MongoDB creates databases on
// first use and answers reads of a missing one with nothing, so 26 is no
// "unknown database" error there, and drivers treat it as success in
// places (mongo-driver's Collection.Drop ignores it), where a refusal must
// stay a refusal; 13 is what MongoDB answers a user on a database they
// have no role on.
func knownDB(p core.Policy, db []byte) bool {
	switch string(db) {
	case "admin", "local", "config":
		return true
	}
	return core.KnownDatabase(p, db)
}

// command runs one decoded request; raw is the whole message, as the
// client sent it (forwarded as is in proxy mode). Offload asks Handle to
// leave the message unconsumed and move the session to a goroutine first.
func (s *Session) command(env *netio.Env, m *Message, raw, out []byte) ([]byte, netio.Action) {
	first, err := m.Command.IndexErr(0)
	if err != nil {
		return s.errorReply(out, m, CodeFailedToParse, "the command document is empty"), netio.Continue
	}
	name := first.KeyBytes()
	if !s.info.TLS && !s.info.PlaintextOK {
		if !s.refused {
			s.refused = true
			env.Observer.Refused(s.info, netio.OutcomeTLSRequired)
		}
		return s.errorReply(out, m, CodeAuthenticationFailed, msgTLSRequired+s.workingURI(m.DB)), netio.Close
	}
	if s.refuseConn { // after the TLS check: its reply tells to replace a token sent in plaintext
		return s.errorReply(out, m, CodeResourceExhausted, msgTooManyConnections), netio.Close
	}
	if s.authed {
		if err := env.Recheck(&s.claims); err != nil {
			// Revoked, logged out, key retired, expired, or this node can
			// no longer tell: the session ends here.
			s.authed = false
			if s.px != nil {
				s.px.revoked = true
			}
			env.Observer.Authenticated(s.info, &s.claims, err, env.Now)
			return s.errorReply(out, m, CodeAuthenticationFailed, sessionEndedMessage(err)), netio.Close
		}
	}
	class, scope := Classify(name, m.Command)
	switch class {
	case ClassHandshake:
		if n := string(name); n == "hello" || n == "isMaster" || n == "ismaster" {
			s.established = true
		} else if n != "ping" && s.px != nil && s.authed && !m.Legacy {
			return s.forward(m, name, raw, out), netio.Continue // buildInfo: the server's own
		}
		return s.handshake(env, m, name, out), netio.Continue
	case ClassAuth:
		if s.p.up != nil && !s.info.Offloaded && string(name) == "saslStart" {
			// Proxy mode: taking a server connection blocks, so the
			// session moves to a goroutine of its own first, with this
			// message unread.
			return out, netio.Offload
		}
		return s.auth(env, m, name, out)
	}
	if !s.authed {
		return s.errorReply(out, m, CodeUnauthorized, "command "+printable(name)+" requires authentication"), netio.Continue
	}
	switch class {
	case ClassSession:
		return s.respond(env, m, name, out), netio.Continue
	case ClassScoped:
		if err := core.AllowDatabase(s.p.policy, &s.claims, m.DB); err != nil &&
			(s.px == nil || string(m.DB) != "admin" || !isTestServerCommand(name)) {
			env.Observer.Authenticated(s.info, &s.claims, err, env.Now) // counted as forbidden
			return s.errorReply(out, m, CodeUnauthorized, testOnlyMessage(m.DB, m.Command)), netio.Continue
		}
		if !knownDB(s.p.policy, m.DB) {
			return s.errorReply(out, m, CodeUnauthorized, unknownDBMessage(m.DB, m.Command)), netio.Continue
		}
		if !s.claims.Scopes.Has(scope) {
			return s.errorReply(out, m, CodeUnauthorized, forbiddenMessage(m.DB, m.Command, scope)), netio.Continue
		}
		if ref, err := s.crossDatabases(name, m.Command, m.Sequences); err != nil {
			env.Observer.Authenticated(s.info, &s.claims, err, env.Now) // counted as forbidden
			return s.errorReply(out, m, CodeUnauthorized, crossMessage(m.DB, m.Command, ref, err)), netio.Continue
		}
		if s.px != nil {
			return s.proxyCommand(env, m, name, raw, out), netio.Continue
		}
		return s.errorReply(out, m, CodeCommandNotSupported, msgNoUpstream), netio.Continue
	case ClassRefused:
		env.Observer.Authenticated(s.info, &s.claims, errAdministrative, env.Now) // counted as forbidden
		return s.errorReply(out, m, CodeUnauthorized, refusedMessage(m.DB, m.Command)), netio.Continue
	}
	return s.errorReply(out, m, CodeCommandNotFound, "no such command: '"+printable(name)+"'"), netio.Continue
}

// handshake answers hello, isMaster, ping and buildInfo (allowed before
// authentication).
func (s *Session) handshake(env *netio.Env, m *Message, name []byte, out []byte) []byte {
	start, out := s.begin(out, m)
	idx, out := bsoncore.AppendDocumentStart(out)
	switch string(name) {
	case "hello", "isMaster", "ismaster":
		out = s.appendHello(env, m, string(name) == "hello", out)
	case "buildInfo", "buildinfo":
		out = s.appendBuildInfo(out)
	}
	out = bsoncore.AppendDoubleElement(out, "ok", 1)
	out, _ = bsoncore.AppendDocumentEnd(out, idx)
	return endReply(out, start)
}

// appendHello appends the fields of a hello/isMaster reply. A
// speculativeAuthenticate in the request is ignored, so a driver that tried
// SCRAM falls back to an explicit saslStart, which is refused with advice.
func (s *Session) appendHello(env *netio.Env, m *Message, hello bool, out []byte) []byte {
	if hello {
		out = bsoncore.AppendBooleanElement(out, "isWritablePrimary", true)
	} else {
		out = bsoncore.AppendBooleanElement(out, "ismaster", true)
	}
	w := s.wire()
	out = bsoncore.AppendBooleanElement(out, "helloOk", true)
	out = bsoncore.AppendInt32Element(out, "maxBsonObjectSize", w.maxBSON)
	out = bsoncore.AppendInt32Element(out, "maxMessageSizeBytes", w.maxMsg)
	out = bsoncore.AppendInt32Element(out, "maxWriteBatchSize", w.maxBatch)
	out = bsoncore.AppendDateTimeElement(out, "localTime", env.Now.UnixMilli())
	if w.sessionTimeoutMin > 0 {
		out = bsoncore.AppendInt32Element(out, "logicalSessionTimeoutMinutes", w.sessionTimeoutMin)
	}
	out = bsoncore.AppendInt32Element(out, "connectionId", int32(s.info.ID&0x7fffffff))
	out = bsoncore.AppendInt32Element(out, "minWireVersion", w.minWire)
	out = bsoncore.AppendInt32Element(out, "maxWireVersion", w.maxWire)
	out = bsoncore.AppendBooleanElement(out, "readOnly", false)
	if m.Command.Lookup("saslSupportedMechs").Type == bsoncore.TypeString {
		var ai int32
		ai, out = bsoncore.AppendArrayElementStart(out, "saslSupportedMechs")
		out = bsoncore.AppendStringElement(out, "0", "PLAIN")
		out, _ = bsoncore.AppendArrayEnd(out, ai)
	}
	return out
}

// wire is what hello says about the wire protocol and sizes: in proxy mode
// the server's own (this session's server connection's once it has one,
// else the last hello of any), so that a driver uses only what the server
// behind the gateway speaks; otherwise the built-in responder's.
func (s *Session) wire() helloInfo {
	if s.px != nil && s.px.sc != nil {
		return s.px.sc.hello
	}
	if s.p.up != nil {
		if h := s.p.up.lastHello(); h != nil {
			return *h
		}
	}
	return gatewayHello
}

// appendBuildInfo appends the fields of a buildInfo reply.
func (s *Session) appendBuildInfo(out []byte) []byte {
	out = bsoncore.AppendStringElement(out, "version", s.p.version)
	out = bsoncore.AppendStringElement(out, "gitVersion", "heliosdb-gateway")
	ai, out := bsoncore.AppendArrayElementStart(out, "versionArray")
	for i, v := range s.p.versionArray {
		out = bsoncore.AppendInt32Element(out, strconv.Itoa(i), v)
	}
	out, _ = bsoncore.AppendArrayEnd(out, ai)
	out = bsoncore.AppendInt32Element(out, "bits", 64)
	out = bsoncore.AppendBooleanElement(out, "debug", false)
	out = bsoncore.AppendInt32Element(out, "maxBsonObjectSize", MaxBSONObjectSize)
	out = bsoncore.AppendArrayElement(out, "modules", emptyDoc)
	out = bsoncore.AppendArrayElement(out, "storageEngines", emptyDoc)
	out = bsoncore.AppendStringElement(out, "javascriptEngine", "none")
	return out
}

// emptyDoc is an empty BSON document (or array): its length,
// minDocumentLen, and the terminating NUL.
var emptyDoc = []byte{minDocumentLen, 0, 0, 0, 0}

// respond answers the commands that need authentication but no scope.
func (s *Session) respond(env *netio.Env, m *Message, name []byte, out []byte) []byte {
	switch string(name) {
	case "atlasVersion", "isdbgrid":
		// What a non-Atlas mongod (not a mongos) says; mongosh expects it.
		return s.errorReply(out, m, CodeCommandNotFound, "no such command: '"+string(name)+"'")
	}
	start, out := s.begin(out, m)
	idx, out := bsoncore.AppendDocumentStart(out)
	switch string(name) {
	case "connectionStatus":
		out = s.appendConnectionStatus(out)
	case "getParameter":
		fcv := m.Command.Lookup("featureCompatibilityVersion").Type != 0
		if v, ok := m.Command.Lookup("getParameter").StringValueOK(); ok && v == "*" {
			fcv = true
		}
		if fcv {
			var di int32
			di, out = bsoncore.AppendDocumentElementStart(out, "featureCompatibilityVersion")
			out = bsoncore.AppendStringElement(out, "version", featureCompatibilityVersion)
			out, _ = bsoncore.AppendDocumentEnd(out, di)
		}
	case "getCmdLineOpts":
		ai, o := bsoncore.AppendArrayElementStart(out, "argv")
		o = bsoncore.AppendStringElement(o, "0", "heliosd")
		out, _ = bsoncore.AppendArrayEnd(o, ai)
		out = bsoncore.AppendDocumentElement(out, "parsed", emptyDoc)
	case "getLog":
		if v, ok := m.Command.Lookup("getLog").StringValueOK(); ok && v == "*" {
			ai, o := bsoncore.AppendArrayElementStart(out, "names")
			o = bsoncore.AppendStringElement(o, "0", "startupWarnings")
			out, _ = bsoncore.AppendArrayEnd(o, ai)
		} else {
			out = bsoncore.AppendInt32Element(out, "totalLinesWritten", 0)
			out = bsoncore.AppendArrayElement(out, "log", emptyDoc)
		}
	case "whatsmyuri":
		out = bsoncore.AppendStringElement(out, "you", s.info.Remote.String())
	case "hostInfo":
		di, o := bsoncore.AppendDocumentElementStart(out, "system")
		o = bsoncore.AppendStringElement(o, "hostname", s.info.Local.String())
		out, _ = bsoncore.AppendDocumentEnd(o, di)
		out = bsoncore.AppendDocumentElement(out, "os", emptyDoc)
		out = bsoncore.AppendDocumentElement(out, "extra", emptyDoc)
	case "getFreeMonitoringStatus":
		out = bsoncore.AppendStringElement(out, "state", "disabled")
	case "listCommands":
		out = bsoncore.AppendDocumentElement(out, "commands", emptyDoc)
	case "startSession":
		// A logical session id, as a server makes one (drivers make their
		// own and send it with each command).
		var id [16]byte
		_, _ = rand.Read(id[:])
		id[6] = id[6]&0x0f | 0x40 // version 4
		id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
		di, o := bsoncore.AppendDocumentElementStart(out, "id")
		o = bsoncore.AppendBinaryElement(o, "id", 4, id[:])
		out, _ = bsoncore.AppendDocumentEnd(o, di)
		out = bsoncore.AppendInt32Element(out, "timeoutMinutes", logicalSessionTimeoutMinutes)
	}
	// endSessions, refreshSessions, killSessions and getDefaultRWConcern:
	// {ok: 1} is the whole answer.
	out = bsoncore.AppendDoubleElement(out, "ok", 1)
	out, _ = bsoncore.AppendDocumentEnd(out, idx)
	return endReply(out, start)
}

// appendConnectionStatus appends authInfo (the authenticated user and one
// role per scope of the token) and the token's public description: its id,
// type, scopes and expiry (never the token).
func (s *Session) appendConnectionStatus(out []byte) []byte {
	ai, out := bsoncore.AppendDocumentElementStart(out, "authInfo")
	ui, out := bsoncore.AppendArrayElementStart(out, "authenticatedUsers")
	ei, out := bsoncore.AppendDocumentElementStart(out, "0")
	out = bsoncore.AppendStringElement(out, "user", s.user)
	out = bsoncore.AppendStringElement(out, "db", s.authDB)
	out, _ = bsoncore.AppendDocumentEnd(out, ei)
	out, _ = bsoncore.AppendArrayEnd(out, ui)
	scopes := s.claims.Scopes.Strings()
	ri, out := bsoncore.AppendArrayElementStart(out, "authenticatedUserRoles")
	for i, sc := range scopes {
		var di int32
		di, out = bsoncore.AppendDocumentElementStart(out, strconv.Itoa(i))
		out = bsoncore.AppendStringElement(out, "role", sc)
		out = bsoncore.AppendStringElement(out, "db", connectionStatusRoleDatabase)
		out, _ = bsoncore.AppendDocumentEnd(out, di)
	}
	out, _ = bsoncore.AppendArrayEnd(out, ri)
	out, _ = bsoncore.AppendDocumentEnd(out, ai)

	ti, out := bsoncore.AppendDocumentElementStart(out, connectionStatusTokenDocument)
	out = bsoncore.AppendStringElement(out, "id", s.claims.ID.String())
	out = bsoncore.AppendStringElement(out, "type", s.claims.Type.String())
	si, out := bsoncore.AppendArrayElementStart(out, "scopes")
	for i, sc := range scopes {
		out = bsoncore.AppendStringElement(out, strconv.Itoa(i), sc)
	}
	out, _ = bsoncore.AppendArrayEnd(out, si)
	out = bsoncore.AppendDateTimeElement(out, "expiresAt", s.claims.ExpiresAt*1000)
	out, _ = bsoncore.AppendDocumentEnd(out, ti)
	return out
}
