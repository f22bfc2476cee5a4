package redis

import (
	"bytes"
	"strconv"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
)

// This file is the command dispatch and the built-in responder: each
// command of a connection goes through the plaintext rule, the token's
// re-check, the administrative, database and scope checks (dispatch), and
// the commands a Redis client sends to connect, identify itself and check
// health are answered here without an upstream.

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
	if s.refusing { // after the TLS check: its reply tells to replace a token sent in plaintext
		return s.refuseCommand(out)
	}
	if s.authed {
		if err := env.Recheck(&s.claims); err != nil {
			// Revoked, logged out, key retired, expired, or this node
			// can no longer tell: the session ends here.
			s.authed = false
			env.Observer.Authenticated(s.info, &s.claims, err, env.Now)
			return appendSessionEnded(out, err), netio.Close
		}
	}
	name := s.lowerName(args[0])
	cmd := s.p.lookup(name)
	switch cmd.id {
	case cmdAuth, cmdHello:
		if s.p.up != nil {
			return s.authProxy(env, cmd.id, args, out)
		}
	}
	switch cmd.id {
	case cmdAuth:
		return s.auth(env, args, out), netio.Continue
	case cmdHello:
		return s.hello(env, args, out), netio.Continue
	case cmdQuit:
		if s.proxying() {
			return s.proxied(env, cmd, name, args, out)
		}
		return AppendOK(out), netio.Close
	case cmdReset:
		if s.proxying() {
			return s.proxied(env, cmd, name, args, out)
		}
		s.authed, s.proto, s.name, s.db = false, RESP2, nil, 0
		return AppendSimple(out, "RESET"), netio.Continue
	}
	if !s.authed {
		return AppendError(out, msgNoAuth), netio.Continue
	}
	bypass := bypassClassifier && s.proxying()                  // a test build: the ACL users alone
	if cmd.admin != nil && cmd.admin.refuses(args) && !bypass { // for every token: adminCommands
		env.Observer.Authenticated(s.info, &s.claims, errAdmin, env.Now) // counted as forbidden
		return appendAdmin(out, name, args), netio.Continue
	}
	if !cmd.none {
		if cmd.id == cmdData {
			if err := core.AllowDatabase(s.p.policy, &s.claims, databaseName(s.db)); err != nil {
				env.Observer.Authenticated(s.info, &s.claims, err, env.Now) // counted as forbidden
				return appendTestOnly(out, name, s.db), netio.Continue
			}
		}
		if err := s.claims.Require(cmd.scope); err != nil && !bypass {
			env.Observer.Authenticated(s.info, &s.claims, err, env.Now) // counted as forbidden
			return appendNoPerm(out, name, cmd.scope), netio.Continue
		}
		if cmd.cross != crossNone {
			var refused bool
			if out, refused = s.crossDatabases(env, cmd.cross, name, args, out); refused {
				return out, netio.Continue
			}
		}
	}
	if s.proxying() {
		return s.proxied(env, cmd, name, args, out)
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
		return s.selectDB(env, args, out), netio.Continue
	case cmdACL:
		if len(args) == 2 && bytes.EqualFold(args[1], []byte("whoami")) {
			return AppendBulkString(out, "default"), netio.Continue
		}
	case cmdCommand:
		return s.command(args, out), netio.Continue
	case cmdWhoami:
		return s.whoami(out), netio.Continue
	case cmdInfo:
		return appendServerInfo(out, args[1:]), netio.Continue
	}
	return appendNoUpstream(out, name), netio.Continue
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

// client runs CLIENT <subcommand>.
func (s *Session) client(args [][]byte, out []byte) []byte {
	if len(args) < 2 {
		return appendArgCount(out, []byte("client"))
	}
	sub := args[1]
	switch {
	case bytes.EqualFold(sub, []byte("setinfo")):
		if len(args) != 4 {
			return appendArgCount(out, []byte("client|setinfo"))
		}
		return AppendOK(out)
	case bytes.EqualFold(sub, []byte("setname")):
		if len(args) != 3 {
			return appendArgCount(out, []byte("client|setname"))
		}
		if !validName(args[2]) {
			return AppendError(out, "ERR Client names cannot contain spaces, newlines or special characters.")
		}
		s.name = append(s.name[:0], args[2]...)
		return AppendOK(out)
	case bytes.EqualFold(sub, []byte("getname")):
		if len(s.name) == 0 {
			return AppendNull(out, s.proto)
		}
		return AppendBulk(out, s.name)
	case bytes.EqualFold(sub, []byte("id")):
		return AppendInt(out, int64(s.info.ID))
	case bytes.EqualFold(sub, []byte("info")):
		return AppendBulk(out, s.appendInfo(make([]byte, 0, 128)))
	case bytes.EqualFold(sub, []byte("no-touch")):
		return AppendOK(out)
	}
	// CLIENT MAINT_NOTIFICATIONS (go-redis), TRACKING, …: an error that
	// clients tolerate (go-redis's auto mode then turns the feature off for
	// the connection). KILL, LIST, PAUSE, NO-EVICT … never get here: they
	// are administrative (adminCommands).
	return appendUnknownSub(out, []byte("client"), sub)
}

// appendInfo appends a CLIENT INFO line for this connection.
func (s *Session) appendInfo(b []byte) []byte {
	b = append(b, "id="...)
	b = strconv.AppendUint(b, uint64(s.info.ID), 10)
	b = append(b, " addr="...)
	b = s.info.Remote.AppendTo(b)
	b = append(b, " laddr="...)
	b = s.info.Local.AppendTo(b)
	b = append(b, " name="...)
	b = append(b, s.name...)
	b = append(b, " db="...)
	b = strconv.AppendInt(b, int64(s.db), 10)
	b = append(b, " user=default resp="...)
	b = strconv.AppendInt(b, int64(s.proto), 10)
	return append(b, '\n')
}

// numDatabases is how many logical databases SELECT accepts (0 to 15, as
// Redis's default "databases 16").
const numDatabases = 16

// databaseNames holds "db0" … "db15", the registered database name of each
// logical database (see the package doc).
var databaseNames = func() (t [numDatabases][]byte) {
	for i := range t {
		t[i] = strconv.AppendInt([]byte("db"), int64(i), 10)
	}
	return t
}()

// databaseName returns the registered database name of logical database
// db (a shared slice: callers must not change it).
func databaseName(db int) []byte { return databaseNames[db] }

// knownDB reports whether logical database db exists: 0, where every
// connection starts, always does; another only when "db<n>" is registered.
func (s *Session) knownDB(db int) bool {
	return db == 0 || core.KnownDatabase(s.p.policy, databaseName(db))
}

// selectDB runs SELECT db: databases 0 to 15, each checked against the
// token's test-only rule, then against the registry (-ERR DB index is out
// of range for one that is not registered, as Redis answers an index past
// its "databases").
func (s *Session) selectDB(env *netio.Env, args [][]byte, out []byte) []byte {
	db, refusal := s.checkSelect(env, args)
	if refusal != nil {
		return append(out, refusal...)
	}
	s.db = db
	return AppendOK(out)
}

// checkSelect checks SELECT db; refusal is the reply when it may not run.
func (s *Session) checkSelect(env *netio.Env, args [][]byte) (int, []byte) {
	if len(args) != 2 {
		return 0, appendArgCount(nil, []byte("select"))
	}
	v, ok := parseUint(args[1])
	if !ok {
		return 0, AppendError(nil, "ERR value is not an integer or out of range")
	}
	if v >= numDatabases {
		return 0, AppendError(nil, "ERR DB index is out of range")
	}
	if err := core.AllowDatabase(s.p.policy, &s.claims, databaseName(int(v))); err != nil {
		env.Observer.Authenticated(s.info, &s.claims, err, env.Now) // counted as forbidden
		out := append([]byte(nil), "-NOPERM User default has no permissions to select database "...)
		out = strconv.AppendInt(out, v, 10)
		return 0, appendTestOnlyReason(out, int(v))
	}
	if !s.knownDB(int(v)) {
		return 0, AppendError(nil, "ERR DB index is out of range")
	}
	return int(v), nil
}

// command runs COMMAND [subcommand]. redis-cli asks for COMMAND DOCS when it
// starts; an empty answer makes it go without command hints.
func (s *Session) command(args [][]byte, out []byte) []byte {
	if len(args) >= 2 {
		switch {
		case bytes.EqualFold(args[1], []byte("count")):
			return AppendInt(out, 0)
		case bytes.EqualFold(args[1], []byte("docs")):
			return AppendMap(out, 0, s.proto)
		}
	}
	return AppendArray(out, 0)
}

// whoami runs HELIOS.WHOAMI: the authenticated token's id, type, scopes and
// expiry (RFC 3339, UTC), as a map (RESP3) or a flat array (RESP2).
func (s *Session) whoami(out []byte) []byte {
	c := &s.claims
	out = AppendMap(out, 4, s.proto)
	out = AppendBulkString(out, "token_id")
	out = AppendBulkString(out, c.ID.String())
	out = AppendBulkString(out, "type")
	out = AppendBulkString(out, c.Type.String())
	out = AppendBulkString(out, "scopes")
	scopes := c.Scopes.Strings()
	out = AppendArray(out, len(scopes))
	for _, sc := range scopes {
		out = AppendBulkString(out, sc)
	}
	out = AppendBulkString(out, "expires_at")
	return AppendBulkString(out, c.Expires().Format(time.RFC3339))
}

// infoSections are the INFO sections the gateway answers, in Redis's
// order: what clients read on connect (redis_version; loading:0, which
// ioredis's ready check waits for; role). There is no keyspace without an
// upstream, so "# Keyspace" is empty.
var infoSections = [...]struct{ name, text string }{
	{"server", "# Server\r\nredis_version:" + serverVersion + "\r\nredis_mode:standalone\r\narch_bits:64\r\n"},
	{"persistence", "# Persistence\r\nloading:0\r\nasync_loading:0\r\n"},
	{"replication", "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n"},
	{"keyspace", "# Keyspace\r\n"},
}

// appendServerInfo answers INFO [section …]: every section for none,
// "default", "all" or "everything"; otherwise the named ones (case
// insensitive; an unknown name adds nothing, as in Redis), separated by
// an empty line, as one bulk string.
func appendServerInfo(out []byte, sections [][]byte) []byte {
	all := len(sections) == 0
	for _, a := range sections {
		if bytes.EqualFold(a, []byte("default")) || bytes.EqualFold(a, []byte("all")) || bytes.EqualFold(a, []byte("everything")) {
			all = true
		}
	}
	n := 0
	for _, sec := range infoSections {
		if all || hasSection(sections, sec.name) {
			n += len(sec.text) + 2
		}
	}
	if n > 0 {
		n -= 2 // no empty line after the last one
	}
	out = append(out, '$')
	out = strconv.AppendInt(out, int64(n), 10)
	out = append(out, '\r', '\n')
	first := true
	for _, sec := range infoSections {
		if all || hasSection(sections, sec.name) {
			if !first {
				out = append(out, '\r', '\n')
			}
			first = false
			out = append(out, sec.text...)
		}
	}
	return append(out, '\r', '\n')
}

// hasSection reports whether name is among the requested sections.
func hasSection(sections [][]byte, name string) bool {
	for _, a := range sections {
		if bytes.EqualFold(a, []byte(name)) {
			return true
		}
	}
	return false
}
