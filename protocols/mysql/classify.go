package mysql

import "github.com/heliosdb/auth/core"

// Statement is what the classifier makes of one SQL statement.
type Statement struct {
	// Verb is the statement's first keyword in upper case ("SELECT"), as
	// MySQL names it in "… command denied" errors.
	Verb string
	// Scope is the scope the statement needs, unless None.
	Scope core.Scope
	// None: authentication alone suffices (session statements).
	None bool
	// Database: a database-level statement (USE, CREATE/DROP DATABASE),
	// refused with 1044 rather than 1142.
	Database bool
}

// verbs maps a lower-case first keyword to its classification. A keyword
// missing here needs database:write, so a classifier miss fails closed.
var verbs = map[string]Statement{
	"select":    {Verb: "SELECT", Scope: core.ScopeDatabaseRead},
	"show":      {Verb: "SHOW", Scope: core.ScopeDatabaseRead},
	"describe":  {Verb: "DESCRIBE", Scope: core.ScopeDatabaseRead},
	"desc":      {Verb: "DESCRIBE", Scope: core.ScopeDatabaseRead},
	"explain":   {Verb: "EXPLAIN", Scope: core.ScopeDatabaseRead},
	"with":      {Verb: "SELECT", Scope: core.ScopeDatabaseRead},
	"table":     {Verb: "SELECT", Scope: core.ScopeDatabaseRead},
	"values":    {Verb: "SELECT", Scope: core.ScopeDatabaseRead},
	"help":      {Verb: "HELP", None: true},
	"use":       {Verb: "USE", Scope: core.ScopeDatabaseRead, Database: true},
	"insert":    {Verb: "INSERT", Scope: core.ScopeDatabaseWrite},
	"update":    {Verb: "UPDATE", Scope: core.ScopeDatabaseWrite},
	"delete":    {Verb: "DELETE", Scope: core.ScopeDatabaseWrite},
	"replace":   {Verb: "REPLACE", Scope: core.ScopeDatabaseWrite},
	"load":      {Verb: "LOAD", Scope: core.ScopeDatabaseWrite},
	"call":      {Verb: "CALL", Scope: core.ScopeDatabaseWrite},
	"do":        {Verb: "DO", Scope: core.ScopeDatabaseWrite},
	"lock":      {Verb: "LOCK TABLES", Scope: core.ScopeDatabaseWrite},
	"unlock":    {Verb: "UNLOCK TABLES", None: true},
	"create":    {Verb: "CREATE", Scope: core.ScopeSchemaWrite},
	"alter":     {Verb: "ALTER", Scope: core.ScopeSchemaWrite},
	"drop":      {Verb: "DROP", Scope: core.ScopeSchemaWrite},
	"rename":    {Verb: "RENAME", Scope: core.ScopeSchemaWrite},
	"truncate":  {Verb: "TRUNCATE", Scope: core.ScopeSchemaWrite},
	"set":       {Verb: "SET", None: true},
	"begin":     {Verb: "BEGIN", None: true},
	"start":     {Verb: "START TRANSACTION", None: true},
	"commit":    {Verb: "COMMIT", None: true},
	"rollback":  {Verb: "ROLLBACK", None: true},
	"savepoint": {Verb: "SAVEPOINT", None: true},
	"release":   {Verb: "RELEASE", None: true},
}

// Classify returns what the statement q needs. It reads the first keyword
// (after whitespace, parentheses and comments) and, for CREATE and DROP, the
// second: CREATE DATABASE needs database:create, DROP DATABASE
// database:delete, other DDL schema:write.
func Classify(q []byte) Statement {
	var buf [16]byte
	w1, rest := keyword(q, &buf)
	st, ok := verbs[string(w1)]
	if !ok {
		return Statement{Verb: "statement", Scope: core.ScopeDatabaseWrite}
	}
	if st.Verb == "CREATE" || st.Verb == "DROP" {
		var buf2 [16]byte
		w2, _ := keyword(rest, &buf2)
		if string(w2) == "database" || string(w2) == "schema" {
			st.Database = true
			st.Scope = core.ScopeDatabaseCreate
			if st.Verb == "DROP" {
				st.Scope = core.ScopeDatabaseDelete
			}
		}
	}
	return st
}

// keyword returns the first word of q in lower case (in buf; a word longer
// than buf is cut) and what follows it.
func keyword(q []byte, buf *[16]byte) ([]byte, []byte) {
	q = skipSpace(q)
	n, i := 0, 0
	for ; i < len(q); i++ {
		c := q[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if (c < 'a' || c > 'z') && c != '_' {
			break
		}
		if n < len(buf) {
			buf[n] = c
			n++
		}
	}
	return buf[:n], q[i:]
}

// skipSpace skips whitespace, opening parentheses and SQL comments.
func skipSpace(q []byte) []byte {
	for len(q) > 0 {
		switch c := q[0]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '(':
			q = q[1:]
		case c == '#' || (c == '-' && len(q) > 2 && q[1] == '-' && (q[2] == ' ' || q[2] == '\t')):
			for len(q) > 0 && q[0] != '\n' {
				q = q[1:]
			}
		case c == '/' && len(q) > 1 && q[1] == '*':
			end := 2
			for end+1 < len(q) && (q[end] != '*' || q[end+1] != '/') {
				end++
			}
			if end+1 >= len(q) {
				return nil
			}
			q = q[end+2:]
		default:
			return q
		}
	}
	return q
}
