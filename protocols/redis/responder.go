package redis

import (
	"bytes"
	"strconv"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
)

// This file is the built-in responder: the commands a Redis client sends to
// connect, identify itself and check health, answered without an upstream.

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

// selectDB runs SELECT db: databases 0 to 15, each checked against the
// token's test-only rule.
func (s *Session) selectDB(env *netio.Env, args [][]byte, out []byte) []byte {
	if len(args) != 2 {
		return appendArgCount(out, []byte("select"))
	}
	v, ok := parseUint(args[1])
	if !ok {
		return AppendError(out, "ERR value is not an integer or out of range")
	}
	if v >= numDatabases {
		return AppendError(out, "ERR DB index is out of range")
	}
	if err := core.AllowDatabase(s.p.policy, &s.claims, databaseName(int(v))); err != nil {
		env.Observer.Authenticated(s.info, &s.claims, err, env.Now) // counted as forbidden
		out = append(out, "-NOPERM User default has no permissions to select database "...)
		out = strconv.AppendInt(out, v, 10)
		return appendTestOnlyReason(out, int(v))
	}
	s.db = int(v)
	return AppendOK(out)
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
