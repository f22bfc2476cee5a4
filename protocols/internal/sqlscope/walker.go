package sqlscope

import "github.com/heliosdb/auth/core"

// maxWork bounds the bytes lexed for one text over all its readings: a
// text that would need more is refused (RefusedTooComplex).
const maxWork = 64 << 20

// Statement is one statement of a SQL text as one reading sees it.
// Text and Target point into the classified text (or a string inside it).
type Statement struct {
	// Text is the statement as written, without its ';'.
	Text []byte
	// Pass is the reading it comes from: 0 is the servers' defaults; the
	// others are the readings of the same bytes under session settings a
	// client can choose (see the package documentation).
	Pass int
	// Need is the scopes the statement needs.
	Need core.ScopeSet
	// Refused is why no token may run it (0: it is not refused).
	Refused Refusal
	// Verb names the statement as MySQL does in "… command denied" errors.
	Verb string
	// Database: USE or CREATE/DROP DATABASE (and MySQL's SCHEMA synonyms),
	// which MySQL refuses with 1044 rather than 1142.
	Database bool
	// Target is the database a database-level statement names, quotes
	// removed (nil when it names none).
	Target []byte
}

// Walker visits the statements of a SQL text: first as the servers read
// it by default (Pass 0), then, when the text contains something a session
// setting reads differently, as each such setting would. It allocates
// nothing for text without escapes inside PREPARE or DO bodies.
type Walker struct {
	q     []byte
	c     ctx
	lx    Lexer
	state uint8
	combo int    // the reading of the current pass
	done  uint32 // readings walked
	trig  uint8  // what the readings so far saw
	block int    // open BEGIN … END blocks of a routine body
	work  int

	heads heads // the current statement's leading tokens

	parens   int  // pass 0: parenthesis depth
	cmdOpen  bool // pass 0: the current command has a statement
	commands int  // pass 0: commands (top-level ';') with a statement
}

const (
	walkIdle = iota // between passes
	walkPass        // inside a pass
	walkDone
)

// Readings: combo = bs + 3*(cmt + 2*cs).
const numCombos = 3 * 2 * numCS

// NewWalker returns a walker over q.
func NewWalker(d Dialect, q []byte) Walker { return Walker{q: q, c: ctx{d: d}} }

// Next returns the next statement; false when every reading is done.
// Statements that are only whitespace and comments are skipped.
func (w *Walker) Next() (Statement, bool) {
	for {
		switch w.state {
		case walkDone:
			return Statement{}, false
		case walkIdle:
			if st, ok := w.nextPass(); ok {
				return st, true
			}
			continue
		}
		if st, ok := w.piece(); ok {
			return st, true
		}
		w.trig |= w.lx.trig
		w.state = walkIdle
	}
}

// nextPass starts the next reading, or finishes; a refusal is returned
// when the text is too large to read again.
func (w *Walker) nextPass() (Statement, bool) {
	combo := -1
	if w.done != 0 && w.trig == 0 {
		w.state = walkDone // only the default reading applies
		return Statement{}, false
	}
	for i := 0; i < numCombos; i++ {
		if w.done&(1<<i) == 0 && w.allowed(i) {
			combo = i
			break
		}
	}
	if combo < 0 {
		w.state = walkDone
		return Statement{}, false
	}
	w.work += len(w.q)
	if combo > 0 && w.work > maxWork {
		w.state = walkDone
		return Statement{Text: w.q, Refused: RefusedTooComplex, Verb: "statement"}, true
	}
	w.done |= 1 << combo
	w.combo = combo
	w.lx = Lexer{q: w.q, m: mode{d: w.c.d, bs: uint8(combo % 3), cmt: combo/3%2 == 1, cs: uint8(combo / 6)}}
	w.block = 0
	w.state = walkPass
	return Statement{}, false
}

// allowed reports whether reading i applies to the dialect and to what
// the readings so far saw.
func (w *Walker) allowed(i int) bool {
	bs, cmt, cs := i%3, i/3%2 == 1, i/6
	if w.c.d == PostgreSQL && (bs > 1 || cmt) {
		return false
	}
	return (bs == 0 || w.trig&trigBackslash != 0) && (!cmt || w.trig&trigVersioned != 0) &&
		(cs == 0 || w.trig&trigMultibyte != 0)
}

// piece returns the next non-empty statement of the current pass.
func (w *Walker) piece() (Statement, bool) {
	for {
		start := w.lx
		nonEmpty := false
		h := &w.heads
		h.n = 0
		var t Token
		for {
			t = w.lx.Next()
			if t.Kind == KindEOF || t.Kind == KindError || isPunct(t, ';') {
				break
			}
			nonEmpty = true
			if h.n < headTokens {
				h.t[h.n], h.kw[h.n] = t, kw(t)
				h.n++
			}
			if w.combo == 0 {
				switch {
				case isPunct(t, '('):
					w.parens++
				case isPunct(t, ')') && w.parens > 0:
					w.parens--
				}
			}
		}
		if t.Kind == KindError {
			if w.combo == 0 {
				// Under the servers' defaults the text cannot be read to
				// its end: refuse it.
				w.state = walkDone
				return Statement{Text: w.q[start.pos:], Refused: w.lx.err, Verb: "statement"}, true
			}
			// Another reading ends in a syntax error: the server runs
			// nothing of this statement, nor anything after it.
			return Statement{}, false
		}
		if w.combo == 0 {
			w.cmdOpen = w.cmdOpen || nonEmpty
			if t.Kind == KindEOF || w.parens == 0 {
				if w.cmdOpen {
					w.commands++
				}
				w.cmdOpen = false
			}
		}
		if !nonEmpty {
			if t.Kind == KindEOF {
				return Statement{}, false
			}
			continue
		}
		pl := start
		pl.q, pl.partial, pl.trig = w.q[:t.Start], true, 0
		body := w.c.proc || w.block > 0
		c := w.c
		c.body = body
		st := classify(pl, c, h)
		if w.combo != 0 && st.refused == RefusedUnknown {
			// Another reading met a statement no server knows either
			// (value text outside its quotes, typically): a syntax error
			// there, which runs nothing from here on.
			return Statement{}, false
		}
		if st.routine || body {
			w.block += st.block
			if w.block < 0 {
				w.block = 0
			}
		}
		return Statement{Text: w.q[start.pos:t.Start], Pass: w.combo, Need: st.need, Refused: st.refused,
			Verb: st.verb, Database: st.database, Target: st.target}, true
	}
}

// Result is what a whole SQL text needs: every statement, under every
// reading.
type Result struct {
	// Need is the union of the scopes its statements need.
	Need core.ScopeSet
	// Refused is why no token may run it (the first refused statement's
	// reason); 0 when none is refused.
	Refused Refusal
	// Statements counts its non-empty commands under the default reading.
	Statements int

	first       [core.NumScopes]use // for each scope, the first statement that needed it
	refusedVerb string
}

type use struct {
	verb     string
	database bool
	target   []byte
}

// Classify returns what the SQL text q needs. It never fails open: what it
// cannot read is refused.
func Classify(d Dialect, q []byte) Result { return classifyText(d, q, 0, false) }

func classifyText(d Dialect, q []byte, depth int, proc bool) Result {
	var r Result
	if q, ok := plainStatement(q); ok {
		// One statement, no quotes, comments or escapes: every reading is
		// the default one, and the walker has nothing to split.
		l := Lexer{q: q, m: mode{d: d}, partial: true}
		st := classify(l, ctx{d: d, depth: depth, proc: proc, body: proc}, nil)
		if st.verb == "" && st.need == 0 && st.refused == 0 {
			return r // only whitespace
		}
		r.add(&Statement{Need: st.need, Refused: st.refused, Verb: st.verb, Database: st.database, Target: st.target})
		r.Statements = 1
		return r
	}
	return walk(d, q, depth, proc)
}

// walk classifies q statement by statement, under every reading.
func walk(d Dialect, q []byte, depth int, proc bool) Result {
	var r Result
	w := Walker{q: q, c: ctx{d: d, depth: depth, proc: proc}}
	for {
		st, ok := w.Next()
		if !ok {
			break
		}
		r.add(&st)
	}
	r.Statements = w.commands
	return r
}

func (r *Result) add(st *Statement) {
	if fresh := st.Need &^ r.Need; fresh != 0 {
		for s := core.Scope(0); int(s) < core.NumScopes; s++ {
			if fresh.Has(s) {
				r.first[s] = use{verb: st.Verb, database: st.Database, target: st.Target}
			}
		}
		r.Need |= fresh
	}
	if st.Refused != 0 && r.Refused == 0 {
		r.Refused, r.refusedVerb = st.Refused, st.Verb
	}
}

// mainVerb is the verb of the statement that needs the most privileged of
// the scopes.
func (r *Result) mainVerb() string {
	for s := core.Scope(core.NumScopes - 1); ; s-- {
		if r.Need.Has(s) {
			return r.first[s].verb
		}
		if s == 0 {
			break
		}
	}
	if r.refusedVerb != "" {
		return r.refusedVerb
	}
	return "statement"
}

// Denial is why a token may not run a SQL text.
type Denial struct {
	// Err is the FORBIDDEN error to report: core.ForbiddenError of the
	// missing scope ("Token does not have required scope: <scope>"), or
	// the refusal's error ("Statement not allowed through the HeliosDB
	// gateway: <reason>").
	Err *core.Error
	// Scope is the first missing scope (when Refused is 0).
	Scope core.Scope
	// Refused is why the text is refused for every token, or 0.
	Refused Refusal
	// Verb names the statement denied, as MySQL does.
	Verb string
	// Database: the statement denied is database-level (MySQL 1044).
	Database bool
	// Target is the database it names, if any.
	Target []byte
}

// Deny returns why a token holding have may not run the text, and false
// when it may. It does not allocate.
func (r *Result) Deny(have core.ScopeSet) (Denial, bool) {
	if r.Refused != 0 {
		return Denial{Err: r.Refused.Error(), Refused: r.Refused, Verb: r.refusedVerb}, true
	}
	s, missing := have.Missing(r.Need)
	if !missing {
		return Denial{}, false
	}
	u := r.first[s]
	return Denial{Err: core.ForbiddenError(s), Scope: s, Verb: u.verb, Database: u.database, Target: u.target}, true
}

// plainBytes are the bytes of a text that has no statement boundary,
// quote, comment, escape, variable or multibyte character: letters,
// digits, whitespace and operators other than - and / (which can start
// comments).
var plainBytes = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range []byte("0123456789 \t\n\r_,.()*=<>+!%^&|~:[]{}?") {
		t[c] = true
	}
	return t
}()

// plainStatement reports whether q is one statement of plain bytes,
// optionally ended by one ';' and whitespace (as clients send it: pgbench,
// most ORMs), and returns the statement without its end. The walker reads
// such a text as that one statement followed by an empty one, which it
// skips.
func plainStatement(q []byte) ([]byte, bool) {
	end := len(q)
	for end > 0 && isBlank(q[end-1]) {
		end--
	}
	if end > 0 && q[end-1] == ';' {
		q = q[:end-1]
	}
	return q, plain(q)
}

// isBlank reports whether c is whitespace of plainBytes.
func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// plain reports whether q is made of plain bytes only.
func plain(q []byte) bool {
	for _, c := range q {
		if !plainBytes[c] {
			return false
		}
	}
	return true
}

// Splitter cuts a text into its statements as the default reading sees
// them (Walker's pass 0), without classifying them: for a front end's
// built-in responder, after Classify has checked the whole text.
type Splitter struct {
	lx Lexer
}

// NewSplitter returns a splitter over q.
func NewSplitter(d Dialect, q []byte) Splitter { return Splitter{lx: NewLexer(d, q)} }

// Next returns the next statement that is not only whitespace and
// comments (without its ';'), and false at the end or at text the default
// reading cannot read (which Classify refuses).
func (s *Splitter) Next() ([]byte, bool) {
	for {
		start := s.lx.pos
		nonEmpty := false
		var t Token
		for {
			t = s.lx.Next()
			if t.Kind == KindEOF || t.Kind == KindError || isPunct(t, ';') {
				break
			}
			nonEmpty = true
		}
		switch {
		case t.Kind == KindError:
			return nil, false
		case nonEmpty:
			return s.lx.q[start:t.Start], true
		case t.Kind == KindEOF:
			return nil, false
		}
	}
}
