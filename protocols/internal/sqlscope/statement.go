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
	if p, ok := plainStatements[k]; ok {
		if p.in&dialectOf(c.d) == 0 {
			return unknown, 0, k
		}
		st.need = p.need
		st.refuse(p.refused)
		return st, p.bag, k
	}
	switch k {
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
	case "copy":
		if !pg {
			return unknown, 0, k
		}
		return copyStmt(h, i, l, c, st), bagExpr, k
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
	case "load":
		if pg {
			st.refuse(RefusedCode) // LOAD 'library'
			return st, 0, k
		}
		st.need = needWrite // LOAD DATA, LOAD XML, LOAD INDEX INTO CACHE
		return st, bagExpr, k
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
	case "import":
		if !pg {
			st.refuse(RefusedServer) // IMPORT TABLE reads the server's files
			return st, 0, k
		}
		st.need = needSchema // IMPORT FOREIGN SCHEMA
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
	}
	return unknown, 0, k
}

// dialectSet is the dialects a statement exists in.
type dialectSet uint8

const (
	inPostgreSQL dialectSet = 1 << iota
	inMySQL
	inBoth = inPostgreSQL | inMySQL
)

// dialectOf is the set holding d alone.
func dialectOf(d Dialect) dialectSet {
	if d == PostgreSQL {
		return inPostgreSQL
	}
	return inMySQL
}

// plainStmt is a statement its first keyword decides alone: the dialectSet that
// have it (in another it is unknown, and refused), what it needs or why it
// is refused for every token, and what its other tokens are scanned for.
type plainStmt struct {
	in      dialectSet
	need    core.ScopeSet
	refused Refusal
	bag     uint16
}

// plainStatements are the statements head classifies by their first
// keyword alone; head decides the others itself.
var plainStatements = map[string]plainStmt{
	"select": {in: inBoth, need: needRead, bag: bagExpr},
	"values": {in: inBoth, need: needRead, bag: bagExpr},
	"table":  {in: inBoth, need: needRead, bag: bagExpr},
	"with":   {in: inBoth, need: needRead, bag: bagExpr},
	"show":   {in: inBoth, need: needRead, bag: bagExpr},

	"insert":  {in: inBoth, need: needWrite, bag: bagExpr | bagInsertRead},
	"upsert":  {in: inBoth, need: needWrite, bag: bagExpr | bagInsertRead},
	"replace": {in: inMySQL, need: needWrite, bag: bagExpr | bagInsertRead},
	"update":  {in: inBoth, need: needWrite | needRead, bag: bagExpr},
	"delete":  {in: inBoth, need: needWrite | needRead, bag: bagExpr},
	"merge":   {in: inBoth, need: needWrite | needRead, bag: bagExpr},
	"call":    {in: inBoth, need: needWrite | needRead, bag: bagExpr},

	// Transaction control and statements that touch no data.
	"commit":     {in: inBoth},
	"rollback":   {in: inBoth},
	"savepoint":  {in: inBoth},
	"release":    {in: inBoth},
	"deallocate": {in: inBoth},
	"close":      {in: inBoth},
	"end":        {in: inPostgreSQL},
	"abort":      {in: inPostgreSQL},
	"unlisten":   {in: inPostgreSQL},
	"xa":         {in: inMySQL},
	"help":       {in: inMySQL},
	"signal":     {in: inMySQL},
	"resignal":   {in: inMySQL},
	"get":        {in: inMySQL},

	"fetch":    {in: inBoth, need: needRead},
	"move":     {in: inBoth, need: needRead},
	"listen":   {in: inPostgreSQL, need: needRead},
	"handler":  {in: inMySQL, need: needRead},
	"check":    {in: inMySQL, need: needRead},
	"checksum": {in: inMySQL, need: needRead},

	"notify":   {in: inPostgreSQL, need: needWrite},
	"vacuum":   {in: inPostgreSQL, need: needWrite},
	"truncate": {in: inBoth, need: needWrite},
	"kill":     {in: inMySQL, need: needWrite},
	"optimize": {in: inMySQL, need: needWrite},
	"repair":   {in: inMySQL, need: needWrite},
	"cache":    {in: inMySQL, need: needWrite},
	"refresh":  {in: inPostgreSQL, need: needWrite | needRead},

	"cluster":  {in: inPostgreSQL, need: needSchema},
	"reindex":  {in: inPostgreSQL, need: needSchema},
	"comment":  {in: inPostgreSQL, need: needSchema},
	"security": {in: inPostgreSQL, need: needSchema},
	"grant":    {in: inBoth, need: needSchema},
	"revoke":   {in: inBoth, need: needSchema},

	// Refused for every token.
	"checkpoint": {in: inPostgreSQL, refused: RefusedServer},
	"reassign":   {in: inPostgreSQL, refused: RefusedAccounts},
	"flush":      {in: inMySQL, refused: RefusedServer},
	"purge":      {in: inMySQL, refused: RefusedServer},
	"change":     {in: inMySQL, refused: RefusedServer},
	"stop":       {in: inMySQL, refused: RefusedServer},
	"shutdown":   {in: inMySQL, refused: RefusedServer},
	"restart":    {in: inMySQL, refused: RefusedServer},
	"install":    {in: inMySQL, refused: RefusedServer},
	"uninstall":  {in: inMySQL, refused: RefusedServer},
	"clone":      {in: inMySQL, refused: RefusedServer},
	"binlog":     {in: inMySQL, refused: RefusedServer},
}
