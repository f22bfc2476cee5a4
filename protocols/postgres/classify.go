package postgres

import (
	"strconv"

	"github.com/heliosdb/auth/core"
)

// kind is what a statement is to the built-in responder.
type kind uint8

const (
	kindEmpty       kind = iota // only whitespace and comments
	kindSelectInt               // SELECT <integer literal>
	kindCurrentUser             // SELECT current_user / session_user / user
	kindVersion                 // SELECT version()
	kindShow                    // SHOW <parameter>
	kindWhoami                  // SELECT * FROM helios_whoami()
	kindOther                   // anything else: needs an upstream
)

// statement is one classified SQL statement.
type statement struct {
	kind  kind
	scope core.Scope // the scope the statement needs (kindEmpty needs none)
	num   int64      // kindSelectInt: the value
	name  string     // kindShow: the parameter, lower case; kindCurrentUser: the column name
}

// maxTokens bounds how much of a statement is tokenized: every built-in
// command is short, and anything longer is kindOther.
const maxTokens = 12

// token is one lexical token. raw points into the statement, so a token
// lives only as long as the message it came from.
type token struct {
	raw    []byte
	num    bool // an unsigned integer literal
	quoted bool // a "quoted identifier": compared exactly
}

// is reports whether the token is word (ASCII case-insensitive unless
// quoted).
func (t token) is(word string) bool {
	if len(t.raw) != len(word) {
		return false
	}
	if t.quoted {
		return string(t.raw) == word
	}
	for i := 0; i < len(word); i++ {
		c := t.raw[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != word[i] {
			return false
		}
	}
	return true
}

// cutStatement returns the first statement of a simple-query string, cut at
// a top-level semicolon (outside quotes and comments), and the rest.
func cutStatement(q []byte) (stmt, rest []byte, more bool) {
	for i := 0; i < len(q); i++ {
		switch c := q[i]; {
		case c == '\'' || c == '"':
			i = skipQuoted(q, i)
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			i = skipLineComment(q, i)
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			i = skipBlockComment(q, i)
		case c == ';':
			return q[:i], q[i+1:], true
		}
	}
	return q, nil, false
}

func skipQuoted(q []byte, i int) int {
	quote := q[i]
	for i++; i < len(q); i++ {
		if q[i] == quote {
			if i+1 < len(q) && q[i+1] == quote {
				i++
				continue
			}
			return i
		}
	}
	return len(q)
}

func skipLineComment(q []byte, i int) int {
	for ; i < len(q) && q[i] != '\n'; i++ {
	}
	return i
}

func skipBlockComment(q []byte, i int) int {
	depth := 0
	for ; i+1 < len(q); i++ {
		switch {
		case q[i] == '/' && q[i+1] == '*':
			depth++
			i++
		case q[i] == '*' && q[i+1] == '/':
			depth--
			i++
			if depth == 0 {
				return i
			}
		}
	}
	return len(q)
}

// tokenize fills buf with up to maxTokens+1 tokens of one statement and
// returns them, and false when the statement holds something the built-in
// commands never contain (a string literal, an unterminated identifier).
// It allocates nothing.
func tokenize(q []byte, buf *[maxTokens + 1]token) ([]token, bool) {
	toks := buf[:0]
	for i := 0; i < len(q) && len(toks) < len(buf); i++ {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			i = skipLineComment(q, i)
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			i = skipBlockComment(q, i)
		case c == '"':
			j := skipQuoted(q, i)
			if j >= len(q) {
				return toks, false
			}
			toks = append(toks, token{raw: q[i+1 : j], quoted: true})
			i = j
		case c == '\'':
			return toks, false
		case isWord(c):
			j := i
			for j < len(q) && (isWord(q[j]) || isDigit(q[j]) || q[j] == '.') {
				j++
			}
			toks = append(toks, token{raw: q[i:j]})
			i = j - 1
		case isDigit(c):
			j := i
			for j < len(q) && isDigit(q[j]) {
				j++
			}
			toks = append(toks, token{raw: q[i:j], num: true})
			i = j - 1
		default:
			toks = append(toks, token{raw: q[i : i+1]})
		}
	}
	return toks, true
}

func isWord(c byte) bool  { return c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') || c >= 0x80 }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

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

// classify recognizes the built-in commands and, for anything else, the
// scope the statement needs. The result holds no reference to q.
func classify(q []byte) statement {
	var buf [maxTokens + 1]token
	toks, ok := tokenize(q, &buf)
	if ok && len(toks) == 0 {
		return statement{kind: kindEmpty}
	}
	if ok && len(toks) <= maxTokens {
		if st, ok := builtin(toks); ok {
			st.scope = core.ScopeDatabaseRead
			return st
		}
	}
	if len(toks) == 0 {
		return statement{kind: kindOther, scope: core.ScopeDatabaseWrite}
	}
	return statement{kind: kindOther, scope: scopeOf(toks[0])}
}

// builtin matches the built-in commands' token patterns.
func builtin(t []token) (statement, bool) {
	is := func(words ...string) bool {
		if len(t) != len(words) {
			return false
		}
		for i, w := range words {
			if w != "" && !t[i].is(w) {
				return false
			}
		}
		return true
	}
	switch {
	case len(t) == 2 && t[0].is("select") && t[1].num,
		len(t) == 3 && t[0].is("select") && t[1].is("-") && t[2].num:
		n, err := strconv.ParseInt(string(t[len(t)-1].raw), 10, 64)
		if err != nil {
			return statement{}, false
		}
		if len(t) == 3 {
			n = -n
		}
		return statement{kind: kindSelectInt, num: n}, true
	case is("select", "current_user"), is("select", "current_user", "(", ")"), is("select", "user"):
		return statement{kind: kindCurrentUser, name: "current_user"}, true
	case is("select", "session_user"):
		return statement{kind: kindCurrentUser, name: "session_user"}, true
	case is("select", "version", "(", ")"), is("select", "pg_catalog.version", "(", ")"):
		return statement{kind: kindVersion}, true
	case len(t) == 2 && t[0].is("show"):
		name := string(t[1].raw)
		if !t[1].quoted {
			name = lower(t[1].raw)
		}
		return statement{kind: kindShow, name: name}, true
	case is("select", "*", "from", "helios_whoami", "(", ")"), is("select", "helios_whoami", "(", ")"),
		is("select", "*", "from", "helios_whoami", "(", ")", "as", ""):
		return statement{kind: kindWhoami}, true
	}
	return statement{}, false
}

// scopeOf returns the scope a statement starting with word needs: reads
// need database:read, data changes database:write, schema changes
// schema:write; anything unknown is treated as a write.
func scopeOf(t token) core.Scope {
	var b [16]byte
	if len(t.raw) > len(b) {
		return core.ScopeDatabaseWrite
	}
	for i, c := range t.raw {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	switch string(b[:len(t.raw)]) {
	case "select", "show", "with", "values", "table", "explain", "begin", "start", "commit", "end",
		"rollback", "savepoint", "release", "set", "reset", "discard", "deallocate", "prepare",
		"execute", "fetch", "close", "declare", "listen", "unlisten", "move", "abort":
		return core.ScopeDatabaseRead
	case "create", "alter", "drop", "comment", "grant", "revoke", "security", "reindex", "cluster":
		return core.ScopeSchemaWrite
	}
	return core.ScopeDatabaseWrite
}
