package sqlscope

import "github.com/heliosdb/auth/core"

// Scope sets a statement can need.
const (
	needRead   = core.ScopeSet(1) << core.ScopeDatabaseRead
	needWrite  = core.ScopeSet(1) << core.ScopeDatabaseWrite
	needCreate = core.ScopeSet(1) << core.ScopeDatabaseCreate
	needDelete = core.ScopeSet(1) << core.ScopeDatabaseDelete
	needSchema = core.ScopeSet(1) << core.ScopeSchemaWrite
)

// Limits that keep classification linear and bounded.
const (
	headTokens = 12 // leading tokens a statement's kind is read from
	maxDepth   = 8  // statements inside statements (PREPARE … AS, DO bodies, EXPLAIN …)
	headScan   = 64 // tokens a head scans for its inner statement inside a routine body
)

// ctx is what a statement is classified within.
type ctx struct {
	d        Dialect
	depth    int
	body     bool // inside a routine body or a DO block: compound statements (IF, END, DECLARE …) are statements
	proc     bool // a PostgreSQL DO block: PL/pgSQL, whose EXECUTE runs computed SQL
	headOnly bool // read only the statement's leading words: the caller scans the rest
}

// stmt is what one statement needs.
type stmt struct {
	need     core.ScopeSet
	refused  Refusal
	verb     string
	database bool
	target   []byte
	block    int  // BEGIN … END blocks it opens (minus those it closes)
	routine  bool // it creates a routine, trigger or event: its body may continue after ';'
}

// grant adds scopes; a part of the statement that needs more than
// reading names the statement (WITH … DELETE is a DELETE).
func (s *stmt) grant(n core.ScopeSet, verb string) {
	if n&^s.need&^needRead != 0 && verb != "" {
		s.verb = verb
	}
	s.need |= n
}

// refuse refuses the statement (the first reason stays).
func (s *stmt) refuse(r Refusal) {
	if s.refused == 0 {
		s.refused = r
	}
}

// add adds what a statement inside this one needs.
func (s *stmt) add(o stmt) {
	s.grant(o.need, o.verb)
	s.refuse(o.refused)
}

// Bag rules: what a statement's tokens are scanned for, wherever they are.
const (
	bagDML        uint16 = 1 << iota // INSERT/UPDATE/DELETE/MERGE (MySQL REPLACE) anywhere writes; SELECT reads
	bagInto                          // SELECT … INTO writes
	bagLocking                       // FOR SHARE / FOR KEY SHARE / LOCK IN SHARE MODE write (FOR UPDATE is an UPDATE)
	bagInsertRead                    // SELECT, RETURNING, WHERE, TABLE, ON CONFLICT/DUPLICATE read
	bagCreateAs                      // CREATE TABLE … AS SELECT fills a table: reads and writes
	bagSet                           // SET inside the statement is a SET statement (role, GLOBAL …)
	bagRoutine                       // a routine body: statements start after THEN, ELSE, DO, BEGIN, LOOP, labels
	bagIntoVar                       // INTO names a routine's variable
	bagSoname                        // MySQL CREATE FUNCTION … SONAME loads a library
	bagDynamic                       // PL/pgSQL EXECUTE runs the SQL in its string
	bagUnicode                       // PostgreSQL U&"…" identifiers with escapes hide their names: refused
)

const bagExpr = bagDML | bagInto | bagLocking

// bagBody is what a routine body or DO block is scanned for.
func bagBody(c ctx) uint16 {
	f := bagExpr | bagRoutine | bagIntoVar | bagSet
	if c.d == MySQL {
		f |= bagSoname
	}
	if c.proc {
		f |= bagDynamic
	}
	return f
}

// heads holds a statement's leading tokens.
type heads struct {
	t  [headTokens]Token
	kw [headTokens]string // kw of each token
	n  int
}

func (h *heads) fill(l Lexer) {
	for h.n < headTokens {
		t := l.Next()
		if t.Kind == KindEOF || t.Kind == KindError {
			return
		}
		h.t[h.n], h.kw[h.n] = t, kw(t)
		h.n++
	}
}

func (h *heads) k(i int) string {
	if i < h.n {
		return h.kw[i]
	}
	return ""
}

func (h *heads) kq(i int) string {
	if i < h.n {
		return kwq(h.t[i])
	}
	return ""
}

func (h *heads) punct(i int, c byte) bool { return i < h.n && isPunct(h.t[i], c) }

func (h *heads) is(i int, w string) bool { return i < h.n && h.t[i].Is(w) }

func isPunct(t Token, c byte) bool { return t.Kind == KindPunct && t.Text[0] == c }

// classify classifies the statement l is positioned at (l's text ends
// where the statement does). h holds its leading tokens when the caller
// read them already, else nil.
func classify(l Lexer, c ctx, h *heads) stmt {
	if c.depth > maxDepth {
		return stmt{refused: RefusedTooComplex, verb: "statement"}
	}
	if h == nil {
		h = &heads{}
		h.fill(l)
	}
	st, flags, cur := head(l, c, h)
	if c.d == PostgreSQL && !c.headOnly {
		flags |= bagUnicode
	}
	if c.body {
		flags |= bagBody(c) // a statement of a routine body: scanned as one
	}
	if flags != 0 && !c.headOnly {
		bag(l, flags, c, &st, cur)
	}
	return st
}

// head classifies a statement by its leading words. It returns what the
// statement needs, the bag rules for the rest of its tokens and its
// keyword.
func head(l Lexer, c ctx, h *heads) (stmt, uint16, string) {
	i := 0
	for h.punct(i, '(') {
		i++
	}
	unknown := stmt{refused: RefusedUnknown, verb: "statement"}
	if i >= h.n {
		if h.n == 0 {
			return stmt{}, 0, ""
		}
		return unknown, 0, ""
	}
	pg := c.d == PostgreSQL
	k := h.k(i)
	st := stmt{verb: verbOf(k)}
	if c.body && (compound(k) || h.t[i].Kind == KindWord && k == "" && (h.punct(i+1, ':') || h.punct(i+1, '=')) || h.punct(i, '<')) {
		// IF, END, DECLARE, a label or an assignment: procedural code,
		// scanned as a body.
		st.verb = "statement"
		if k == "perform" {
			st.need = needRead
		}
		return st, bagBody(c), k
	}
	switch k {
	case "select", "values", "table", "with", "show":
		st.need = needRead
		return st, bagExpr, k
	case "insert", "upsert":
		st.need = needWrite
		return st, bagExpr | bagInsertRead, k
	case "replace":
		if pg {
			return unknown, 0, k
		}
		st.need = needWrite
		return st, bagExpr | bagInsertRead, k
	case "update", "delete", "merge":
		st.need = needWrite | needRead
		return st, bagExpr, k
	case "call":
		st.need = needWrite | needRead
		return st, bagExpr, k
	case "explain":
		return explain(h, i, l, c, st, false), 0, k
	case "describe", "desc":
		if pg {
			return unknown, 0, k
		}
		return explain(h, i, l, c, st, false), 0, k
	case "analyze", "analyse":
		switch {
		case pg:
			st.need = needWrite // statistics
			return st, 0, k
		case h.k(i+1) == "table" || h.k(i+1) == "local" || h.is(i+1, "no_write_to_binlog"):
			st.need = needWrite
			return st, 0, k
		}
		// MariaDB's ANALYZE <statement> runs the statement.
		return explain(h, i, l, c, st, true), 0, k
	case "set":
		return set(h, i, c, st), bagExpr | bagSet, k
	case "reset":
		switch {
		case !pg:
			st.refuse(RefusedServer) // RESET MASTER, REPLICA, PERSIST …
		case roleTarget(h, i+1):
			st.refuse(RefusedRole)
		}
		return st, 0, k
	case "discard":
		if !pg {
			return unknown, 0, k
		}
		if h.k(i+1) == "all" {
			st.refuse(RefusedRole) // DISCARD ALL runs SET SESSION AUTHORIZATION DEFAULT
		}
		return st, 0, k
	case "begin":
		if !pg && h.k(i+1) == "not" {
			// MariaDB's BEGIN NOT ATOMIC … END runs a compound statement
			// now: its body is classified as a routine's is.
			st.verb, st.routine = "statement", true
			return st, bagBody(c), k
		}
		return st, 0, k
	case "commit", "rollback", "savepoint", "release", "deallocate", "close":
		return st, 0, k
	case "end", "abort", "unlisten":
		if !pg {
			return unknown, 0, k
		}
		return st, 0, k
	case "xa", "help", "signal", "resignal", "get":
		if pg {
			return unknown, 0, k
		}
		return st, 0, k
	case "start":
		switch {
		case h.k(i+1) == "transaction":
			return st, 0, k
		case !pg:
			st.refuse(RefusedServer) // START REPLICA, SLAVE, GROUP_REPLICATION
			return st, 0, k
		}
		return unknown, 0, k
	case "prepare":
		return prepare(h, i, l, c, st), 0, k
	case "execute":
		if !pg && h.k(i+1) == "immediate" {
			// MariaDB's EXECUTE IMMEDIATE runs the SQL of its argument.
			if i+2 < h.n && h.t[i+2].Kind == KindString {
				if body, ok := stringsAt(l.from(h.t[i+2]), l.m); ok {
					st.add(classifyBody(c, body, false))
					return st, 0, k
				}
			}
			st.refuse(RefusedDynamic)
			return st, 0, k
		}
		st.need = needRead // what it runs was checked when it was prepared
		return st, bagExpr, k
	case "declare":
		if !pg {
			return unknown, 0, k
		}
		// DECLARE name … CURSOR … FOR query
		t, after, ok := seek(l.from(h.t[i]), c, "for")
		if !ok || t.Kind == KindEOF {
			return unknown, 0, k
		}
		st.need = needRead
		st.add(classify(after, c.inner(), nil))
		return st, 0, k
	case "fetch", "move":
		st.need = needRead
		return st, 0, k
	case "listen":
		if !pg {
			return unknown, 0, k
		}
		st.need = needRead
		return st, 0, k
	case "notify", "vacuum":
		if !pg {
			return unknown, 0, k
		}
		st.need = needWrite
		return st, 0, k
	case "copy":
		if !pg {
			return unknown, 0, k
		}
		return copyStmt(h, i, l, c, st), bagExpr, k
	case "truncate", "kill", "optimize", "repair", "cache":
		if pg && k != "truncate" {
			return unknown, 0, k
		}
		st.need = needWrite
		return st, 0, k
	case "cluster", "reindex":
		if !pg {
			return unknown, 0, k
		}
		st.need = needSchema
		return st, 0, k
	case "lock":
		switch {
		case pg, h.k(i+1) == "table" || h.k(i+1) == "tables":
			st.need = needWrite
		case h.k(i+1) == "instance":
			st.refuse(RefusedServer)
		default:
			return unknown, 0, k
		}
		return st, 0, k
	case "unlock":
		switch {
		case pg:
			return unknown, 0, k
		case h.k(i+1) == "instance":
			st.refuse(RefusedServer)
		case h.k(i+1) != "table" && h.k(i+1) != "tables":
			return unknown, 0, k
		}
		return st, 0, k
	case "do":
		if pg {
			return doBlock(h, i, l, c, st), 0, k
		}
		st.need = needWrite
		return st, bagExpr, k
	case "checkpoint":
		if !pg {
			return unknown, 0, k
		}
		st.refuse(RefusedServer)
		return st, 0, k
	case "load":
		if pg {
			st.refuse(RefusedCode) // LOAD 'library'
			return st, 0, k
		}
		st.need = needWrite // LOAD DATA, LOAD XML, LOAD INDEX INTO CACHE
		return st, bagExpr, k
	case "refresh":
		if !pg {
			return unknown, 0, k
		}
		st.need = needWrite | needRead
		return st, 0, k
	case "create", "alter", "drop":
		st, f := ddl(h, i, c, st)
		return st, f, k
	case "rename":
		switch {
		case pg:
			return unknown, 0, k
		case h.k(i+1) == "user":
			st.refuse(RefusedAccounts)
		case h.k(i+1) == "table" || h.k(i+1) == "tables":
			st.need = needSchema
		default:
			return unknown, 0, k
		}
		return st, 0, k
	case "comment", "security":
		if !pg {
			return unknown, 0, k
		}
		st.need = needSchema
		return st, 0, k
	case "grant", "revoke":
		st.need = needSchema
		return st, 0, k
	case "import":
		if !pg {
			st.refuse(RefusedServer) // IMPORT TABLE reads the server's files
			return st, 0, k
		}
		st.need = needSchema // IMPORT FOREIGN SCHEMA
		return st, 0, k
	case "reassign":
		if !pg {
			return unknown, 0, k
		}
		st.refuse(RefusedAccounts)
		return st, 0, k
	case "use":
		if pg {
			return unknown, 0, k
		}
		st.need, st.database = needRead, true
		if i+1 < h.n {
			st.target = name(h.t[i+1], l.m)
		}
		return st, 0, k
	case "handler", "check", "checksum":
		if pg {
			return unknown, 0, k
		}
		st.need = needRead
		return st, 0, k
	case "flush", "purge", "change", "stop", "shutdown", "restart", "install", "uninstall", "clone", "binlog":
		if pg {
			return unknown, 0, k
		}
		st.refuse(RefusedServer)
		return st, 0, k
	}
	return unknown, 0, k
}

// compound reports whether k starts a statement only a routine body or a
// DO block has.
func compound(k string) bool {
	switch k {
	case "begin", "end", "if", "elsif", "elseif", "else", "while", "loop", "repeat", "until", "declare",
		"leave", "iterate", "return", "open", "fetch", "close", "case", "when", "exception", "perform",
		"raise", "exit", "continue", "foreach", "for", "null", "assert", "get":
		return true
	}
	return false
}

// inner is the context of a statement inside a statement.
func (c ctx) inner() ctx {
	c.depth++
	return c
}

// roleTarget reports whether the words at i name the session's role:
// role, session_authorization, SESSION AUTHORIZATION (quoted or not).
func roleTarget(h *heads, i int) bool {
	switch h.kq(i) {
	case "role", "session_authorization":
		return true
	case "session":
		return h.kq(i+1) == "authorization"
	}
	return false
}

// set classifies a SET statement's leading words. Session settings need no
// scope; the role, the password and the server's settings are refused.
func set(h *heads, i int, c ctx, st stmt) stmt {
	if c.d == PostgreSQL {
		j := i + 1
		if k := h.k(j); k == "session" || k == "local" {
			j++
		}
		switch h.kq(j) {
		case "role", "session_authorization", "authorization":
			st.refuse(RefusedRole)
		}
		return st
	}
	switch h.k(i + 1) {
	case "role":
		st.refuse(RefusedRole)
	case "password":
		st.refuse(RefusedAccounts)
	case "resource":
		st.refuse(RefusedServer)
	case "default":
		if h.k(i+2) == "role" {
			st.refuse(RefusedRole)
		}
	}
	return st // GLOBAL, PERSIST and @@global anywhere in the list: the bag (bagSet)
}

// seek scans from l (at the statement's first token) for the first of
// words at parenthesis depth 0 after that token, and returns it and a
// lexer after it. Inside a routine body it gives up after headScan tokens.
func seek(l Lexer, c ctx, words ...string) (Token, Lexer, bool) {
	l.Next()
	depth := 0
	for n := 0; ; n++ {
		if c.headOnly && n > headScan {
			return Token{}, l, false
		}
		t := l.Next()
		switch {
		case t.Kind == KindEOF || t.Kind == KindError:
			return t, l, false
		case isPunct(t, '('):
			depth++
		case isPunct(t, ')'):
			depth--
		case depth == 0:
			k := kw(t)
			for _, w := range words {
				if k == w {
					return t, l, true
				}
			}
		}
	}
}

// startsStatement: an explainable statement starts with k.
func startsStatement(k string) bool {
	switch k {
	case "select", "insert", "update", "delete", "merge", "replace", "upsert", "with", "values", "table",
		"execute", "declare", "create":
		return true
	}
	return false
}

// explain classifies EXPLAIN [options] statement (MySQL: also DESCRIBE,
// and MariaDB's ANALYZE statement). Without ANALYZE it only plans, which
// reads; with ANALYZE it runs the statement, which needs what the
// statement needs. A refused statement is refused either way.
func explain(h *heads, i int, l Lexer, c ctx, st stmt, analyze bool) stmt {
	st.need = needRead
	ll := l.from(h.t[i])
	ll.Next()
	depth := 0
	for n := 0; ; n++ {
		if c.headOnly && n > headScan {
			return st
		}
		before := ll
		t := ll.Next()
		if t.Kind == KindEOF || t.Kind == KindError {
			return st
		}
		k := kw(t)
		switch {
		case isPunct(t, '('):
			if depth == 0 {
				nx := ll
				if startsStatement(kw(nx.Next())) {
					return explained(st, classify(before, c.inner(), nil), analyze)
				}
			}
			depth++
		case isPunct(t, ')'):
			depth--
		case k == "analyze" || k == "analyse":
			analyze = true
		case depth == 0 && startsStatement(k):
			return explained(st, classify(before, c.inner(), nil), analyze)
		case depth == 0 && k == "for":
			return st // MySQL EXPLAIN FOR CONNECTION n
		}
	}
}

func explained(st, inner stmt, analyze bool) stmt {
	if analyze {
		st.add(inner)
	}
	st.refuse(inner.refused)
	return st
}

// prepare classifies PREPARE: PostgreSQL's PREPARE name AS statement and
// MySQL's PREPARE name FROM 'statement' need what their statement needs;
// MySQL's PREPARE name FROM @variable cannot be checked and is refused.
func prepare(h *heads, i int, l Lexer, c ctx, st stmt) stmt {
	unknown := stmt{refused: RefusedUnknown, verb: "statement"}
	if c.d == PostgreSQL {
		if h.k(i+1) == "transaction" {
			return st // two-phase commit
		}
		t, after, ok := seek(l.from(h.t[i]), c, "as")
		if !ok || t.Kind == KindEOF {
			return unknown
		}
		st.add(classify(after, c.inner(), nil))
		return st
	}
	if h.k(i+2) != "from" || i+3 >= h.n {
		return unknown
	}
	switch h.t[i+3].Kind {
	case KindVar:
		st.refuse(RefusedDynamic)
		return st
	case KindString:
		body, ok := stringsAt(l.from(h.t[i+3]), l.m)
		if !ok {
			st.refuse(RefusedDynamic)
			return st
		}
		st.add(classifyBody(c, body, false))
		return st
	}
	return unknown
}

// stringsAt decodes the string literals at l, one after the other (MySQL
// and PostgreSQL join adjacent literals); false when a literal cannot be
// decoded or something other than a word or the end follows them.
func stringsAt(l Lexer, m mode) ([]byte, bool) {
	var out []byte
	n := 0
	for {
		t := l.Next()
		if t.Kind != KindString {
			if n == 0 || t.Kind != KindEOF && t.Kind != KindWord && !isPunct(t, ')') && !isPunct(t, ',') {
				return nil, false
			}
			return out, true
		}
		b, ok := decode(t, m)
		if !ok {
			return nil, false
		}
		if n == 0 {
			out = b
		} else {
			out = append(append([]byte(nil), out...), b...)
		}
		n++
	}
}

// classifyBody classifies SQL text found inside a statement (a PREPARE
// string, a DO block, a PL/pgSQL EXECUTE string) as one statement of the
// outer one.
func classifyBody(c ctx, body []byte, proc bool) stmt {
	if c.depth+1 > maxDepth {
		return stmt{refused: RefusedTooComplex, verb: "statement"}
	}
	r := classifyText(c.d, body, c.depth+1, proc)
	return stmt{need: r.Need, refused: r.Refused, verb: r.mainVerb()}
}

// copyStmt classifies PostgreSQL's COPY: FROM writes, TO reads; COPY …
// PROGRAM runs a shell command on the server and is refused.
func copyStmt(h *heads, i int, l Lexer, c ctx, st stmt) stmt {
	ll := l.from(h.t[i])
	ll.Next()
	depth := 0
	dir := ""
	for n := 0; ; n++ {
		if c.headOnly && n > headScan {
			break
		}
		t := ll.Next()
		if t.Kind == KindEOF || t.Kind == KindError {
			break
		}
		switch k := kw(t); {
		case isPunct(t, '('):
			depth++
		case isPunct(t, ')'):
			depth--
		case depth == 0 && (k == "from" || k == "to") && dir == "":
			dir = k
		case depth == 0 && k == "program":
			st.refuse(RefusedCode)
		}
	}
	switch dir {
	case "to":
		st.need = needRead
	case "from":
		st.need = needWrite
	default:
		if !c.headOnly {
			return stmt{refused: RefusedUnknown, verb: "statement"}
		}
		st.need = needWrite | needRead
	}
	return st
}

// doBlock classifies PostgreSQL's DO: it runs PL/pgSQL now, so it needs
// database:write and database:read, and what the block's statements need
// (its body is classified as procedural code). Other languages are
// refused: the gateway cannot read them.
func doBlock(h *heads, i int, l Lexer, c ctx, st stmt) stmt {
	st.need = needWrite | needRead
	ll := l.from(h.t[i])
	ll.Next()
	var body Token
	for {
		t := ll.Next()
		if t.Kind == KindEOF || t.Kind == KindError {
			break
		}
		switch {
		case t.Kind == KindString && body.Kind == KindEOF:
			body = t
		case kw(t) == "language":
			lt := ll.Next()
			lang := kwq(lt)
			if lt.Kind == KindString {
				if b, ok := decode(lt, l.m); ok {
					lang = lookup(b)
				}
			}
			if lang != "plpgsql" {
				st.refuse(RefusedCode)
			}
		}
	}
	if body.Kind != KindString {
		return stmt{refused: RefusedUnknown, verb: "statement"}
	}
	code, ok := decode(body, l.m)
	if !ok {
		st.refuse(RefusedDynamic)
		return st
	}
	st.add(classifyBody(c, code, true))
	return st
}

// ddl classifies CREATE, ALTER and DROP by the kind of object.
func ddl(h *heads, i int, c ctx, st stmt) (stmt, uint16) {
	pg := c.d == PostgreSQL
	verb := h.k(i)
	unknown := stmt{refused: RefusedUnknown, verb: st.verb}
	j := i + 1
	matview := false
skip:
	for j < h.n {
		switch h.k(j) {
		case "or", "global", "local", "temp", "temporary", "unlogged", "unique", "recursive", "trusted",
			"procedural", "constraint", "fulltext", "spatial", "undo", "online", "offline", "default", "foreign":
			j++
		case "replace":
			if h.k(j-1) != "or" {
				break skip
			}
			j++
		case "aggregate":
			if h.k(j+1) != "function" {
				break skip // PostgreSQL's CREATE AGGREGATE
			}
			j++
		case "materialized":
			matview = true
			j++
		case "definer", "algorithm":
			// DEFINER = user | 'user'@'host' | CURRENT_USER[()]; ALGORITHM = x
			j++
			if h.punct(j, '=') {
				j++
			}
			j++
			for j < h.n && (h.t[j].Kind == KindVar || h.punct(j, '(') || h.punct(j, ')')) {
				j++
			}
			if h.punct(j, '@') { // 'user' @ 'host' with a space
				j += 2
			}
		case "sql":
			j += 3 // SQL SECURITY DEFINER|INVOKER
		default:
			break skip
		}
	}
	st.need = needSchema
	obj := h.k(j)
	switch obj {
	case "database", "schema", "databases":
		if obj == "schema" && pg {
			break // PostgreSQL schemas are namespaces
		}
		switch verb {
		case "create":
			st.need, st.database = needCreate, true
		case "drop":
			st.need, st.database = needDelete, true
		default:
			if pg {
				return st, bagSet // ALTER DATABASE … SET role = … sets a role for later sessions
			}
			return st, 0
		}
		k := j + 1
		if h.k(k) == "if" {
			k++
			if h.k(k) == "not" {
				k++
			}
			k++
		}
		if k < h.n {
			st.target = name(h.t[k], mode{d: c.d})
		}
		return st, 0
	case "user":
		if pg && h.k(j+1) == "mapping" {
			break
		}
		st.need = 0
		st.refuse(RefusedAccounts)
		return st, 0
	case "role", "group":
		st.need = 0
		st.refuse(RefusedAccounts)
		return st, 0
	case "tablespace", "logfile", "resource", "instance", "system":
		st.need = 0
		st.refuse(RefusedServer)
		return st, 0
	case "server":
		if !pg {
			st.need = 0
			st.refuse(RefusedServer) // FEDERATED connection definitions
			return st, 0
		}
	case "prepare":
		if pg || verb != "drop" {
			return unknown, 0
		}
		st.need, st.verb = 0, "DEALLOCATE"
		return st, 0
	case "table", "view":
		if verb == "create" && (obj == "table" || matview) {
			if pg {
				return st, bagCreateAs | bagSet
			}
			return st, bagCreateAs
		}
	case "function", "procedure", "routine", "trigger", "event", "rule":
		if pg && (obj == "trigger" || obj == "event") || verb == "drop" {
			break // PostgreSQL triggers call functions; EVENT TRIGGER likewise
		}
		st.routine = true
		return st, bagBody(c) &^ bagDynamic
	case "index", "sequence", "type", "domain", "extension", "access", "cast", "collation", "conversion",
		"policy", "publication", "subscription", "statistics", "text", "transform", "operator", "large",
		"privileges", "mapping", "reference", "package", "data", "owned", "language", "aggregate":
	default:
		return unknown, 0
	}
	if pg {
		return st, bagSet // ALTER … SET role = … sets a role for later sessions
	}
	return st, 0
}

// name returns the identifier a database-level statement names, quotes
// removed.
func name(t Token, m mode) []byte {
	switch t.Kind {
	case KindWord:
		return t.Text
	case KindQuotedIdent, KindString:
		if b, ok := decode(t, m); ok {
			return b
		}
	}
	return nil
}
