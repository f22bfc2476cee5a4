package sqlscope

import (
	"bytes"
	"testing"

	"github.com/heliosdb/auth/core"
)

// FuzzClassify: arbitrary text never panics in either dialect, every
// statement's Text lies inside it, and a statement written differently —
// keywords in upper case, comments between its tokens, whitespace and
// semicolons before it — needs the same scopes and gets the same refusal.
func FuzzClassify(f *testing.F) {
	for i, c := range cases {
		f.Add([]byte(c.q), uint8(i))
	}
	for _, s := range []string{
		"SELECT 1; DELETE FROM t", "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
		"SELECT $$ ' $$; DELETE FROM t; --'", "SELECT E'\\''; DELETE FROM t; --'",
		"/*!50000 DELETE FROM t */", "SELECT 'a\\'; DELETE FROM t; -- '", "SET @@global.x = 1",
		"CREATE PROCEDURE p() BEGIN IF 1 THEN DELETE FROM t; END IF; END",
		"DO $$ BEGIN EXECUTE 'SET ROLE x'; END $$", "select set_config('role','x',false)",
	} {
		f.Add([]byte(s), uint8(len(s)))
	}
	f.Fuzz(func(t *testing.T, q []byte, variant uint8) {
		for _, d := range []Dialect{PostgreSQL, MySQL} {
			r := Classify(d, q)
			w := NewWalker(d, q)
			for {
				st, ok := w.Next()
				if !ok {
					break
				}
				if len(st.Text) > 0 && !within(q, st.Text) {
					t.Fatalf("statement text outside the input: %q", st.Text)
				}
			}
			if rw := walk(d, q, 0, false); rw.Need != r.Need || rw.Refused != r.Refused || rw.Statements != r.Statements {
				t.Fatalf("%q: the plain-text path and the walker disagree: %+v %+v", q, r, rw)
			}
			if _, denied := r.Deny(core.AllScopes); denied != (r.Refused != 0) {
				t.Fatalf("%q: a full token denied without a refusal: %+v", q, r)
			}
			if r.Refused == RefusedUnreadable || multibyteRisk(q) {
				continue // another text reads differently by design
			}
			v := rewrite(d, q, variant)
			rv := Classify(d, v)
			if rv.Need != r.Need || rv.Refused != r.Refused || rv.Statements != r.Statements {
				t.Fatalf("%v\n%q: need %v refused %v statements %d\n%q: need %v refused %v statements %d",
					d, q, r.Need.Strings(), r.Refused, r.Statements, v, rv.Need.Strings(), rv.Refused, rv.Statements)
			}
		}
	})
}

// within reports whether b is a subslice of q.
func within(q, b []byte) bool {
	for i := 0; i+len(b) <= len(q); i++ {
		if &q[i] == &b[0] {
			return true
		}
	}
	return false
}

// multibyteRisk: a possible lead byte before \ or ` — inserting a comment
// there changes what the multibyte readings see, on purpose.
func multibyteRisk(q []byte) bool {
	for i := 1; i < len(q); i++ {
		if (q[i] == '\\' || q[i] == '`') && q[i-1] >= 0x81 && q[i-1] <= 0xfe {
			return true
		}
	}
	return false
}

// rewrite writes q differently without changing what it says: words in
// upper case (variant bit 0), a comment between tokens (bit 1; not in
// MySQL text with executable comments, which a server may skip up to the
// first */), whitespace and semicolons first (bit 2).
func rewrite(d Dialect, q []byte, variant uint8) []byte {
	var out []byte
	if variant&4 != 0 {
		out = append(out, " \n\t;; ;"...)
		out = append(out, ' ')
	}
	comments := variant&2 != 0 && !(d == MySQL && (bytes.Contains(q, []byte("/*!")) || bytes.Contains(q, []byte("/*M!"))))
	l := NewLexer(d, q)
	last := 0
	for {
		t := l.Next()
		if t.Kind == KindEOF || t.Kind == KindError {
			break
		}
		out = append(out, q[last:t.Start]...)
		if comments && t.Start > 0 {
			out = append(out, " /* x */ "...)
		}
		if t.Kind == KindWord && variant&1 != 0 {
			for _, c := range t.Text {
				if c >= 'a' && c <= 'z' {
					c -= 'a' - 'A'
				}
				out = append(out, c)
			}
		} else {
			out = append(out, t.Text...)
		}
		last = t.Start + len(t.Text)
	}
	return append(out, q[last:]...)
}
