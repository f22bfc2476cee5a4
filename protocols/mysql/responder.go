package mysql

import (
	"strings"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
)

// This file is the built-in responder: the commands and statements MySQL
// clients send to connect, identify themselves and check health, answered
// without an upstream database.

// Command bytes of the command phase.
const (
	comQuit            = 0x01
	comInitDB          = 0x02
	comQuery           = 0x03
	comPing            = 0x0e
	comStmtPrepare     = 0x16
	comStmtSendLong    = 0x18
	comStmtClose       = 0x19
	comResetConnection = 0x1f
)

// command handles one packet of the command phase.
func (s *Session) command(env *netio.Env, payload, out []byte) ([]byte, netio.Action) {
	seq := s.seq + 1
	if len(payload) == 0 {
		return AppendERR(out, seq, erUnknownCom, stateCommunicationFailure, "Unknown command"), netio.Close
	}
	if payload[0] == comQuit {
		return out, netio.Close
	}
	// Every command re-checks the token as a fresh login would: the key,
	// expiry and the revocation view. A token that stopped holding (revoked,
	// logged out everywhere, key retired, expired unless the gateway keeps
	// such sessions — MySQL has no re-authentication short of
	// COM_CHANGE_USER — or this node can no longer tell) ends the session
	// with its reason.
	out, ok := s.recheck(env, out)
	if !ok {
		return out, netio.Close
	}
	switch payload[0] {
	case comPing, comResetConnection:
		return AppendOK(out, seq), netio.Continue
	case comInitDB:
		return s.useDB(env, payload[1:], out), netio.Continue
	case comQuery:
		return s.query(env, payload[1:], out), netio.Continue
	case comStmtPrepare:
		if _, out, ok = s.checkSQL(env, payload[1:], out); !ok {
			return out, netio.Continue
		}
		if out, ok = s.allowStatements(env, payload[1:], out); !ok {
			return out, netio.Continue
		}
		if o, ok := s.prepare(payload[1:], out); ok {
			return o, netio.Continue
		}
		return AppendERR(out, seq, erNotSupportedYet, stateSyntaxOrAccessRule, msgNoUpstream), netio.Continue
	case comStmtSendLong:
		return out, netio.Continue // no reply
	case comStmtExecute, comStmtReset, comStmtClose:
		return s.stmtCommand(payload, out)
	}
	if out, ok = s.allowStatements(env, nil, out); !ok {
		return out, netio.Continue
	}
	return AppendERR(out, seq, erNotSupportedYet, stateSyntaxOrAccessRule, msgNoUpstream), netio.Continue
}

// useDB runs COM_INIT_DB / USE db: it needs database:read, a test token
// may select only a test database (1044 otherwise), and db must be
// registered (1049 otherwise); on refusal the selection stays as it was.
func (s *Session) useDB(env *netio.Env, db, out []byte) []byte {
	if !s.claims.Scopes.Has(core.ScopeDatabaseRead) {
		return s.deny(env, out, denyScope(core.ScopeDatabaseRead, "USE", true, db))
	}
	out, ok := s.allowUse(env, db, out)
	if !ok {
		return out
	}
	if !s.knownDB(db) {
		return appendUnknownDB(out, s.seq+1, db)
	}
	s.db = append(s.db[:0], clip(db)...)
	return AppendOK(out, s.seq+1)
}

// Built-in queries, in the normalized form of normalize.
const (
	qSelect1        = "select 1"
	qVersionComment = "select @@version_comment limit 1"
	qWhoami         = "select * from helios_whoami()"
)

// query runs a COM_QUERY.
func (s *Session) query(env *netio.Env, q, out []byte) []byte {
	seq := s.seq + 1
	deprecateEOF := s.caps&ClientDeprecateEOF != 0
	var buf [64]byte
	norm := normalize(q, &buf)
	one := func(name string, typ byte, v *string) []byte {
		out, _ = AppendResultSet(out, seq, deprecateEOF, []Column{{Name: name, Type: typ}}, [][]*string{{v}})
		return out
	}
	switch string(norm) {
	case qSelect1:
		if !s.claims.Scopes.Has(core.ScopeDatabaseRead) {
			return s.deny(env, out, denyScope(core.ScopeDatabaseRead, "SELECT", false, nil))
		}
		v := "1"
		return one("1", columnTypeLongLong, &v)
	case qVersionComment:
		v := "HeliosDB Auth gateway (no upstream database)"
		return one("@@version_comment", columnTypeVarString, &v)
	case "select @@version", "select version()":
		return one(strings.TrimPrefix(string(norm), "select "), columnTypeVarString, &s.p.version)
	case "select database()":
		var v *string
		if len(s.db) > 0 {
			db := string(s.db)
			v = &db
		}
		return one("DATABASE()", columnTypeVarString, v)
	case "select user()", "select session_user()", "select system_user()":
		v := "default@" + s.info.Remote.Addr().String()
		return one(strings.ToUpper(strings.TrimPrefix(string(norm), "select ")), columnTypeVarString, &v)
	case "select current_user()", "select current_user":
		v := "default@%"
		return one("CURRENT_USER()", columnTypeVarString, &v)
	case qWhoami:
		return s.whoami(out, seq, deprecateEOF)
	case "select database(), user() limit 1": // the mysql CLI's \s
		var db *string
		if len(s.db) > 0 {
			v := string(s.db)
			db = &v
		}
		user := "default@" + s.info.Remote.Addr().String()
		out, _ = AppendResultSet(out, seq, deprecateEOF, []Column{{"DATABASE()", columnTypeVarString}, {"USER()", columnTypeVarString}}, [][]*string{{db, &user}})
		return out
	}
	r, out, ok := s.checkSQL(env, q, out)
	if !ok {
		return out
	}
	if r.Statements == 0 {
		return AppendERR(out, seq, erEmptyQuery, stateSyntaxOrAccessRule, "Query was empty")
	}
	if r.Statements == 1 {
		// Everything of it passed checkSQL: SET changes only this session
		// (SET GLOBAL, PERSIST, ROLE, PASSWORD … are refused there).
		// Session settings and transactions mean nothing without an
		// upstream; accept them so that drivers that set their session
		// up on connect work.
		switch st := firstStatement(q); st.Verb {
		case "USE":
			return s.useDB(env, st.Target, out)
		case "SET", "BEGIN", "START TRANSACTION", "COMMIT", "ROLLBACK":
			return AppendOK(out, seq)
		}
	}
	if out, ok = s.allowStatements(env, q, out); !ok {
		return out
	}
	return AppendERR(out, seq, erNotSupportedYet, stateSyntaxOrAccessRule, msgNoUpstream)
}

// normalize lower-cases q into buf, collapsing whitespace runs into one
// space and dropping surrounding whitespace and trailing semicolons. It
// returns nil when q does not fit: such a statement is not a built-in.
func normalize(q []byte, buf *[64]byte) []byte {
	n := 0
	space := false
	for _, c := range q {
		switch c {
		case ' ', '\t', '\n', '\r':
			space = n > 0
			continue
		}
		if space {
			if n == len(buf) {
				return nil
			}
			buf[n] = ' '
			n++
			space = false
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if n == len(buf) {
			return nil
		}
		buf[n] = c
		n++
	}
	for n > 0 && (buf[n-1] == ';' || buf[n-1] == ' ') {
		n--
	}
	return buf[:n]
}

// whoami answers SELECT * FROM helios_whoami(): the token's id, type,
// scopes (comma-separated, "*" for all) and expiry (UTC).
func (s *Session) whoami(out []byte, seq byte, deprecateEOF bool) []byte {
	c := &s.claims
	id, typ := c.ID.String(), c.Type.String()
	scopes := strings.Join(c.Scopes.Strings(), ",")
	exp := c.Expires().Format(time.DateTime)
	cols := []Column{{"token_id", columnTypeVarString}, {"type", columnTypeVarString}, {"scopes", columnTypeVarString}, {"expires_at", columnTypeDatetime}}
	out, _ = AppendResultSet(out, seq, deprecateEOF, cols, [][]*string{{&id, &typ, &scopes, &exp}})
	return out
}
