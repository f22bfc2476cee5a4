package sqlscope

import (
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
			if r.Refused == RefusedUnreadable {
				continue
			}
			// The rewrite keeps the default reading's tokens, so that
			// reading classifies the same; so does the whole text when
			// no other reading applies. (Another reading splits the text
			// elsewhere, and a comment inserted between default tokens may
			// fall inside one of its strings.)
			v := rewrite(d, q, variant)
			a, b := defaultReading(d, q), defaultReading(d, v)
			if a.need != b.need || a.refused != b.refused || a.commands != b.commands {
				t.Fatalf("%v default reading\n%q: %+v\n%q: %+v", d, q, a, v, b)
			}
			if !a.others && !b.others {
				if rv := Classify(d, v); rv.Need != r.Need || rv.Refused != r.Refused || rv.Statements != r.Statements {
					t.Fatalf("%v\n%q: need %v refused %v statements %d\n%q: need %v refused %v statements %d",
						d, q, r.Need.Strings(), r.Refused, r.Statements, v, rv.Need.Strings(), rv.Refused, rv.Statements)
				}
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

type reading struct {
	need     core.ScopeSet
	refused  Refusal
	commands int
	others   bool // another reading applies to the text
}

// defaultReading classifies q as the servers read it by default only.
func defaultReading(d Dialect, q []byte) reading {
	var r reading
	w := NewWalker(d, q)
	for {
		st, ok := w.Next()
		if !ok {
			break
		}
		if st.Pass != 0 {
			continue
		}
		r.need |= st.Need
		if r.refused == 0 {
			r.refused = st.Refused
		}
	}
	r.commands, r.others = w.commands, w.trig != 0
	return r
}

// rewrite writes q differently without changing what its default reading
// says: words in upper case (variant bit 0), a comment between tokens (bit
// 1), whitespace and semicolons first (bit 2).
func rewrite(d Dialect, q []byte, variant uint8) []byte {
	var out []byte
	if variant&4 != 0 {
		out = append(out, " \n\t;; ;"...)
		out = append(out, ' ')
	}
	comments := variant&2 != 0
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
