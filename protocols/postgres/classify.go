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

// token is one lexical token: a lower-cased word, a number or a symbol.
type token struct {
	text string
	num  bool
}

// splitStatements cuts a simple-query string at top-level semicolons
// (outside quotes and comments). It returns at most 64 statements; the rest
// of the string stays in the last one.
func splitStatements(q []byte) [][]byte {
	var out [][]byte
	start := 0
	for i := 0; i < len(q); i++ {
		switch c := q[i]; {
		case c == '\'' || c == '"':
			i = skipQuoted(q, i)
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			i = skipLineComment(q, i)
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			i = skipBlockComment(q, i)
		case c == ';' && len(out) < 63:
			out = append(out, q[start:i])
			start = i + 1
		}
	}
	return append(out, q[start:])
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

// tokenize returns up to maxTokens+1 tokens of one statement, and false when
// it holds something the built-in commands never contain (a string literal).
func tokenize(q []byte) ([]token, bool) {
	toks := make([]token, 0, 8)
	for i := 0; i < len(q) && len(toks) <= maxTokens; i++ {
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
			toks = append(toks, token{text: string(q[i+1 : j])})
			i = j
		case c == '\'':
			return toks, false
		case isWord(c):
			j := i
			for j < len(q) && (isWord(q[j]) || isDigit(q[j]) || q[j] == '.') {
				j++
			}
			toks = append(toks, token{text: lower(q[i:j])})
			i = j - 1
		case isDigit(c):
			j := i
			for j < len(q) && isDigit(q[j]) {
				j++
			}
			toks = append(toks, token{text: string(q[i:j]), num: true})
			i = j - 1
		default:
			toks = append(toks, token{text: string(c)})
		}
	}
	return toks, true
}

func isWord(c byte) bool  { return c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') || c >= 0x80 }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

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
// scope the statement needs.
func classify(q []byte) statement {
	toks, ok := tokenize(q)
	if ok && len(toks) == 0 {
		return statement{kind: kindEmpty}
	}
	read := statement{scope: core.ScopeDatabaseRead}
	if ok && len(toks) <= maxTokens {
		if st, ok := builtin(toks); ok {
			st.scope = core.ScopeDatabaseRead
			return st
		}
	}
	if len(toks) == 0 {
		return statement{kind: kindOther, scope: core.ScopeDatabaseWrite}
	}
	read.kind = kindOther
	read.scope = scopeOf(toks[0].text)
	return read
}

// builtin matches the built-in commands' token patterns.
func builtin(t []token) (statement, bool) {
	is := func(words ...string) bool {
		if len(t) != len(words) {
			return false
		}
		for i, w := range words {
			if w != "" && t[i].text != w {
				return false
			}
		}
		return true
	}
	switch {
	case len(t) == 2 && t[0].text == "select" && t[1].num,
		len(t) == 3 && t[0].text == "select" && t[1].text == "-" && t[2].num:
		s := t[len(t)-1].text
		if t[1].text == "-" {
			s = "-" + s
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return statement{}, false
		}
		return statement{kind: kindSelectInt, num: n}, true
	case is("select", "current_user"), is("select", "session_user"), is("select", "user"),
		is("select", "current_user", "(", ")"):
		return statement{kind: kindCurrentUser, name: t[1].text}, true
	case is("select", "version", "(", ")"), is("select", "pg_catalog.version", "(", ")"):
		return statement{kind: kindVersion}, true
	case len(t) == 2 && t[0].text == "show":
		return statement{kind: kindShow, name: t[1].text}, true
	case is("select", "*", "from", "helios_whoami", "(", ")"), is("select", "helios_whoami", "(", ")"),
		is("select", "*", "from", "helios_whoami", "(", ")", "as", ""):
		return statement{kind: kindWhoami}, true
	}
	return statement{}, false
}

// scopeOf returns the scope a statement starting with word needs: reads
// need database:read, data changes database:write, schema changes
// schema:write; anything unknown is treated as a write.
func scopeOf(word string) core.Scope {
	switch word {
	case "select", "show", "with", "values", "table", "explain", "begin", "start", "commit", "end",
		"rollback", "savepoint", "release", "set", "reset", "discard", "deallocate", "prepare",
		"execute", "fetch", "close", "declare", "listen", "unlisten", "move", "abort":
		return core.ScopeDatabaseRead
	case "create", "alter", "drop", "comment", "grant", "revoke", "security", "reindex", "cluster":
		return core.ScopeSchemaWrite
	}
	return core.ScopeDatabaseWrite
}
