package sqlscope

import (
	"testing"

	"github.com/heliosdb/auth/core"
)

// firstKeyword is the classifier this package replaced, for comparison: it
// skipped whitespace, parentheses and comments, and mapped the first word
// to one scope (the PostgreSQL front end's scopeOf).
func firstKeyword(q []byte) core.Scope {
	i := 0
	for i < len(q) {
		switch c := q[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '(':
			i++
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			for i+1 < len(q) && (q[i] != '*' || q[i+1] != '/') {
				i++
			}
			i += 2
		default:
			goto word
		}
	}
word:
	var b [16]byte
	n := 0
	for ; i < len(q) && n < len(b); i++ {
		c := q[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c < 'a' || c > 'z' {
			break
		}
		b[n] = c
		n++
	}
	switch string(b[:n]) {
	case "select", "show", "with", "values", "table", "explain", "begin", "set":
		return core.ScopeDatabaseRead
	case "create", "alter", "drop":
		return core.ScopeSchemaWrite
	}
	return core.ScopeDatabaseWrite
}

var benchQueries = []struct {
	name string
	d    Dialect
	q    string
}{
	{"select1", PostgreSQL, "SELECT 1"},
	{"pgbench", PostgreSQL, "SELECT abalance FROM pgbench_accounts WHERE aid = 4242424;"},
	{"select", PostgreSQL, "SELECT id, name, email FROM users WHERE org_id = $1 AND deleted_at IS NULL ORDER BY created_at DESC LIMIT 50"},
	{"insert", PostgreSQL, "INSERT INTO events (id, kind, payload) VALUES ($1, $2, $3) RETURNING id"},
	{"cte", PostgreSQL, "WITH recent AS (SELECT * FROM orders WHERE created_at > now() - interval '1 day') SELECT count(*) FROM recent"},
	{"mysql", MySQL, "SELECT `id`, `name` FROM `users` WHERE `email` = 'a@example.com' LIMIT 1"},
}

// BenchmarkClassify compares Classify with the first-keyword classifier it
// replaced, on the same statements.
func BenchmarkClassify(b *testing.B) {
	for _, c := range benchQueries {
		q := []byte(c.q)
		b.Run(c.name+"/sqlscope", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Classify(c.d, q)
			}
		})
		b.Run(c.name+"/firstkeyword", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				firstKeyword(q)
			}
		})
	}
}
