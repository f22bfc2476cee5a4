package postgres

import (
	"strconv"
	"strings"

	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/internal/sqlscope"
)

// Which scopes a query needs is sqlscope's decision, the same for the
// simple and the extended protocol and for the MySQL and REST front ends:
// this file maps it to PostgreSQL's answer (allowed) and recognizes the
// built-in statements the responder answers itself (builtinOf).

// kind is what a statement is to the built-in responder.
type kind uint8

const (
	kindEmpty       kind = iota // only whitespace and comments
	kindSelectInt               // SELECT <integer literal>
	kindCurrentUser             // SELECT current_user / session_user / user
	kindVersion                 // SELECT version()
	kindShow                    // SHOW <parameter>
	kindWhoami                  // SELECT * FROM helios_whoami()
	kindBegin                   // BEGIN, START TRANSACTION [modes]
	kindCommit                  // COMMIT, END [WORK | TRANSACTION]
	kindRollback                // ROLLBACK, ABORT [WORK | TRANSACTION]
	kindSet                     // SET [SESSION | LOCAL] name {TO | =} value, RESET name | ALL
	kindParam                   // SELECT $1 (extended protocol): the bound value
	kindOther                   // anything else: needs an upstream
)

// statement is one statement as the built-in responder sees it.
type statement struct {
	kind  kind
	num   int64  // kindSelectInt: the value
	name  string // kindShow, kindSet: the parameter, lower case; kindCurrentUser, kindSelectInt: the column name
	value string // kindSet: the new value (RESET: the default, "")
	tag   string // kindSet: SET or RESET
	oid   uint32 // kindParam: the parameter's type (Parse's, text by default)
}

// allowed checks a query (every statement of it) against the session's
// token: a statement no token may run (sqlscope's refusals) or a missing
// scope is ERROR 42501 — "Token does not have required scope: <scope>"
// naming the first scope missing, or "Statement not allowed through the
// HeliosDB gateway: <reason>" — recorded as forbidden.
// It also returns how many commands the query holds.
func (s *Session) allowed(env *netio.Env, q []byte) (int, ErrorFields, bool) {
	r := sqlscope.Classify(sqlscope.PostgreSQL, q)
	d, denied := r.Deny(s.claims.Scopes)
	if !denied {
		return r.Statements, ErrorFields{}, false
	}
	env.Observer.Authenticated(s.info, &s.claims, d.Err, env.Now)
	return r.Statements, tokenError(d.Err), true
}

// maxTokens bounds how much of a statement is read: every built-in is
// short, and anything longer is kindOther.
const maxTokens = 12

// builtinOf returns what the responder makes of one statement (without its
// ';'). The result holds no reference to q.
func builtinOf(q []byte) statement {
	var buf [maxTokens + 1]sqlscope.Token
	l := sqlscope.NewLexer(sqlscope.PostgreSQL, q)
	n := 0
	for n < len(buf) {
		t := l.Next()
		if t.Kind == sqlscope.KindEOF {
			break
		}
		if t.Kind == sqlscope.KindError || t.Kind == sqlscope.KindString && (n == 0 || !is(buf[0], "set")) {
			return statement{kind: kindOther} // no built-in but SET has a string literal
		}
		buf[n] = t
		n++
	}
	switch {
	case n == 0:
		return statement{kind: kindEmpty}
	case n > maxTokens:
		return statement{kind: kindOther}
	}
	if st, ok := builtin(buf[:n]); ok {
		return st
	}
	return statement{kind: kindOther}
}

// is reports whether t is the word w: an unquoted word in any case, a
// quoted identifier exactly.
func is(t sqlscope.Token, w string) bool {
	if t.Kind == sqlscope.KindQuotedIdent {
		return string(t.Inner()) == w
	}
	if t.Kind == sqlscope.KindPunct {
		return string(t.Text) == w
	}
	return t.Is(w)
}

// isInt reports whether t is an unsigned integer literal.
func isInt(t sqlscope.Token) bool {
	if t.Kind != sqlscope.KindNumber {
		return false
	}
	for _, c := range t.Text {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// builtin matches the built-in statements' token patterns ("" matches any
// token).
func builtin(t []sqlscope.Token) (statement, bool) {
	match := func(words ...string) bool {
		if len(t) != len(words) {
			return false
		}
		for i, w := range words {
			if w != "" && !is(t[i], w) {
				return false
			}
		}
		return true
	}
	switch {
	case len(t) == 2 && is(t[0], "select") && isInt(t[1]),
		len(t) == 3 && is(t[0], "select") && is(t[1], "-") && isInt(t[2]):
		n, err := strconv.ParseInt(string(t[len(t)-1].Text), 10, 64)
		if err != nil {
			return statement{}, false
		}
		if len(t) == 3 {
			n = -n
		}
		return statement{kind: kindSelectInt, num: n}, true
	case len(t) == 4 && is(t[0], "select") && isInt(t[1]) && is(t[2], "as") &&
		(t[3].Kind == sqlscope.KindWord || t[3].Kind == sqlscope.KindQuotedIdent):
		n, err := strconv.ParseInt(string(t[1].Text), 10, 64)
		if err != nil {
			return statement{}, false
		}
		name := string(t[3].Inner())
		if t[3].Kind == sqlscope.KindWord {
			name = lower(t[3].Text)
		}
		return statement{kind: kindSelectInt, num: n, name: name}, true
	case is(t[0], "begin") && (len(t) == 1 || is(t[1], "work") || is(t[1], "transaction") || is(t[1], "isolation") ||
		is(t[1], "read") || is(t[1], "deferrable") || is(t[1], "not")),
		len(t) >= 2 && is(t[0], "start") && is(t[1], "transaction"):
		return statement{kind: kindBegin}, true
	case match("commit"), match("commit", "work"), match("commit", "transaction"),
		match("end"), match("end", "work"), match("end", "transaction"):
		return statement{kind: kindCommit}, true
	case match("rollback"), match("rollback", "work"), match("rollback", "transaction"),
		match("abort"), match("abort", "work"), match("abort", "transaction"):
		return statement{kind: kindRollback}, true
	case len(t) == 2 && is(t[0], "select") && t[1].Kind == sqlscope.KindParam && string(t[1].Text) == "$1":
		return statement{kind: kindParam, oid: oidText}, true
	case is(t[0], "set") || is(t[0], "reset"):
		return setOf(t)
	case match("select", "current_user"), match("select", "current_user", "(", ")"), match("select", "user"):
		return statement{kind: kindCurrentUser, name: "current_user"}, true
	case match("select", "session_user"):
		return statement{kind: kindCurrentUser, name: "session_user"}, true
	case match("select", "version", "(", ")"), match("select", "pg_catalog", ".", "version", "(", ")"):
		return statement{kind: kindVersion}, true
	case len(t) == 2 && is(t[0], "show") && (t[1].Kind == sqlscope.KindWord || t[1].Kind == sqlscope.KindQuotedIdent):
		name := string(t[1].Inner())
		if t[1].Kind == sqlscope.KindWord {
			name = lower(t[1].Text)
		}
		return statement{kind: kindShow, name: name}, true
	case match("select", "*", "from", "helios_whoami", "(", ")"), match("select", "helios_whoami", "(", ")"),
		match("select", "*", "from", "helios_whoami", "(", ")", "as", ""):
		return statement{kind: kindWhoami}, true
	}
	return statement{}, false
}

// lower returns b in ASCII lower case, as a new string.
func lower(b []byte) string {
	s := make([]byte, len(b))
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		s[i] = c
	}
	return string(s)
}

// returnsRows reports whether the statement's result has rows (a
// RowDescription); transaction control and SET have none.
func (st statement) returnsRows() bool {
	switch st.kind {
	case kindSelectInt, kindCurrentUser, kindVersion, kindShow, kindWhoami, kindParam:
		return true
	}
	return false
}

// setOf reads SET [SESSION | LOCAL] name {TO | =} value | DEFAULT and
// RESET name | ALL (the statement scope check has refused SET ROLE and
// SET SESSION AUTHORIZATION already). Only a plain parameter name with
// one value is a built-in.
func setOf(t []sqlscope.Token) (statement, bool) {
	if is(t[0], "reset") {
		if len(t) != 2 || t[1].Kind != sqlscope.KindWord {
			return statement{}, false
		}
		return statement{kind: kindSet, name: lower(t[1].Text), tag: "RESET"}, true
	}
	t = t[1:]
	if len(t) > 0 && (is(t[0], "session") || is(t[0], "local")) {
		t = t[1:]
	}
	if len(t) != 3 || t[0].Kind != sqlscope.KindWord || !is(t[1], "to") && !is(t[1], "=") {
		return statement{}, false
	}
	st := statement{kind: kindSet, name: lower(t[0].Text), tag: "SET"}
	switch v := t[2]; {
	case v.Kind == sqlscope.KindString && v.Text[0] == '\'':
		st.value = strings.ReplaceAll(string(v.Inner()), "''", "'")
	case v.Is("default"):
	case v.Kind == sqlscope.KindWord || v.Kind == sqlscope.KindNumber || v.Kind == sqlscope.KindQuotedIdent:
		st.value = string(v.Inner())
	default:
		return statement{}, false
	}
	return st, true
}
