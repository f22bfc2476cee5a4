package sqlscope

// bag scans every token of a statement (l is at its start) for what its
// leading words do not show: a data-modifying CTE or subquery, SELECT …
// INTO, row locks, set_config('role', …), SET GLOBAL in a list, and the
// statements of a routine body. cur is the statement's keyword.
func bag(l Lexer, flags uint16, c ctx, st *stmt, cur string) {
	pg := c.d == PostgreSQL
	var prev Token
	inSet := false
	atStart := c.body // a statement starts here (the head classified the first one)
	first := true
	for {
		t := l.Next()
		if t.Kind == KindEOF || t.Kind == KindError {
			return
		}
		k := kw(t)
		startHere := atStart
		atStart = false
		if flags&bagRoutine != 0 && startHere && !first && t.Kind == KindWord {
			// A statement inside a body: its leading words, as at the top
			// level. A word that starts no statement there (THEN x, ELSE
			// 0) is an expression; this scan covers the rest.
			var h heads
			sl := l.from(t)
			h.fill(sl)
			sub, _, _ := head(sl, ctx{d: c.d, depth: c.depth + 1, body: true, proc: c.proc, headOnly: true}, &h)
			if sub.refused == RefusedUnknown {
				sub.refused = 0
			}
			st.add(sub)
			cur, inSet = k, false
		}
		first = false
		switch k {
		case "":
		case "insert", "update", "delete", "merge", "upsert", "replace":
			if flags&bagDML != 0 && (k != "replace" || !pg) && !isPunct(prev, '.') {
				nx := l
				// insert(…) and replace(…) are string functions; after
				// a ')' the word starts the statement of a WITH.
				if !isPunct(nx.Next(), '(') || isPunct(prev, ')') {
					verb, need := verbOf(k), needWrite|needRead
					switch k {
					case "insert", "replace", "upsert":
						need = needWrite // reading is a matter of its SELECT, RETURNING, WHERE (bagInsertRead)
					}
					if pk := kw(prev); pk == "for" || pk == "key" {
						verb = "" // SELECT … FOR [NO KEY] UPDATE locks rows, as UPDATE would
					}
					st.grant(need, verb)
				}
			}
		case "select":
			if !isPunct(prev, '.') {
				if flags&(bagDML|bagInsertRead) != 0 {
					st.need |= needRead
				}
				if flags&bagCreateAs != 0 {
					st.grant(needRead|needWrite, "")
				}
			}
		case "values", "execute", "table":
			if flags&bagCreateAs != 0 && kw(prev) == "as" {
				st.grant(needRead|needWrite, "")
			}
			if k == "table" && flags&bagInsertRead != 0 {
				st.need |= needRead
			}
			if k == "execute" && flags&bagDynamic != 0 {
				dynamic(l, c, st)
			}
		case "returning", "where", "conflict", "duplicate":
			if flags&bagInsertRead != 0 {
				st.need |= needRead
			}
		case "into":
			if flags&bagInto != 0 {
				into(l, flags, pg, prev, st)
			}
		case "for":
			if flags&bagLocking != 0 {
				nx := l
				if n := kw(nx.Next()); n == "share" || n == "key" {
					st.grant(needWrite|needRead, "")
				}
			}
		case "lock":
			if flags&bagLocking != 0 && !pg {
				nx := l
				if kw(nx.Next()) == "in" { // LOCK IN SHARE MODE
					st.grant(needWrite|needRead, "")
				}
			}
		case "set":
			if flags&bagSet != 0 && !isPunct(prev, '.') && !dataStmt(cur) {
				setContext(l, c, st)
				inSet = !pg
			}
		case "global", "persist", "persist_only":
			if inSet {
				st.refuse(RefusedServer)
			}
		case "role", "session_authorization", "authorization":
			if pk := kw(prev); inSet && (isPunct(prev, ',') || pk == "set" || pk == "session" || pk == "local") {
				st.refuse(RefusedRole) // SET SESSION AUTHORIZATION …, SET x = 1, ROLE …
			}
		case "soname":
			if flags&bagSoname != 0 {
				st.refuse(RefusedCode)
			}
		}
		if flags&bagUnicode != 0 && t.Kind == KindQuotedIdent && t.esc == escUnicode && !unicodePlain(l, t) {
			st.refuse(RefusedDynamic) // U&"set\005fconfig", SET U&"rol\0065"
		}
		if pg && (k == "set_config" || t.Kind == KindQuotedIdent && kwq(t) == "set_config") {
			setConfig(l, st)
		}
		if inSet && t.Kind == KindVar && (containsFold(t.Text, "global") || containsFold(t.Text, "persist")) {
			st.refuse(RefusedServer) // @@global.x, @@GLOBAL.x, @@`global`.x
		}
		if flags&bagRoutine != 0 {
			atStart = blocks(&l, k, pg && !c.proc, startHere, t, prev, st) || atStart
		}
		prev = t
	}
}

// blocks counts the BEGIN … END blocks of a routine body (a routine
// continues after ';' until they close) and reports whether a statement
// starts after token t. pg: PostgreSQL SQL, whose only block is BEGIN
// ATOMIC (a DO block's PL/pgSQL counts as MySQL's procedural SQL does).
func blocks(l *Lexer, k string, pg, startHere bool, t, prev Token, st *stmt) bool {
	switch k {
	case "begin":
		if !pg {
			st.block++
			return true
		}
		if nx := *l; kw(nx.Next()) == "atomic" {
			st.block++
		}
	case "atomic", "then", "else", "do":
		return true
	case "loop", "repeat", "while", "if":
		if !pg && startHere {
			st.block++
		}
		return k == "loop" || k == "repeat"
	case "case":
		st.block++
	case "end":
		st.block--
		nx := *l
		switch kw(nx.Next()) {
		case "if", "case", "loop", "while", "repeat":
			*l = nx // END IF closes the IF
		}
	}
	if isPunct(t, ':') && prev.Kind == KindWord { // a label
		nx := *l
		return !isPunct(nx.Next(), '=')
	}
	return false
}

// dataStmt: in these statements SET assigns columns.
func dataStmt(k string) bool {
	switch k {
	case "update", "insert", "replace", "upsert", "merge", "load":
		return true
	}
	return false
}

// into classifies an INTO that does not follow INSERT, REPLACE or MERGE:
// PostgreSQL's SELECT … INTO creates and fills a table; MySQL's INTO
// OUTFILE/DUMPFILE writes a file, INTO @variable only assigns.
func into(l Lexer, flags uint16, pg bool, prev Token, st *stmt) {
	switch kw(prev) {
	case "insert", "replace", "merge", "upsert", "ignore", "low_priority", "delayed", "high_priority":
		return
	}
	if pg {
		if flags&bagIntoVar == 0 { // in PL/pgSQL, INTO names variables
			st.grant(needWrite|needRead|needSchema, "")
		}
		return
	}
	n := l.Next()
	switch {
	case n.Kind == KindVar:
	case kw(n) == "outfile" || kw(n) == "dumpfile":
		st.grant(needWrite|needRead, "")
	case flags&bagIntoVar != 0: // a routine's local variable
	default:
		st.grant(needWrite|needRead, "")
	}
}

// setContext checks a SET statement found inside another statement or
// body: the words after SET (l is after it).
func setContext(l Lexer, c ctx, st *stmt) {
	n := l.Next()
	if c.d == PostgreSQL {
		if k := kw(n); k == "session" || k == "local" {
			n = l.Next()
		}
		st.refuse(setRefusal(c.d, kwq(n), ""))
		return
	}
	st.refuse(setRefusal(c.d, kw(n), kw(l.Next())))
}

// setConfig checks a call of PostgreSQL's set_config (l is after its
// name): a setting named by a literal without "role" or "authorization"
// in it is an ordinary session setting; a computed name is refused.
func setConfig(l Lexer, st *stmt) {
	if !isPunct(l.Next(), '(') {
		return
	}
	a := l.Next()
	if a.Kind != KindString {
		st.refuse(RefusedDynamic)
		return
	}
	b, ok := decode(a, l.m)
	if n := l.Next(); !ok || n.Kind == KindString {
		st.refuse(RefusedDynamic)
		return
	}
	if containsFold(b, "role") || containsFold(b, "authoriz") {
		st.refuse(RefusedRole)
	}
}

// dynamic checks a PL/pgSQL EXECUTE (l is after it): a literal string is
// classified as the statement it is; anything computed is refused.
func dynamic(l Lexer, c ctx, st *stmt) {
	nx := l
	if nx.Next().Kind != KindString {
		st.refuse(RefusedDynamic)
		return
	}
	body, ok := stringsAt(l, l.m)
	if !ok {
		st.refuse(RefusedDynamic)
		return
	}
	st.add(classifyBody(c, body, false))
}

func hasPrefixFold(b []byte, p string) bool {
	if len(b) < len(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != p[i] {
			return false
		}
	}
	return true
}

func containsFold(b []byte, sub string) bool {
	for i := 0; i+len(sub) <= len(b); i++ {
		if hasPrefixFold(b[i:], sub) {
			return true
		}
	}
	return false
}

// unicodePlain reports whether a U&"…" identifier (l is after it) spells
// its name plainly: no escape in it and no UESCAPE after it.
func unicodePlain(l Lexer, t Token) bool {
	for _, c := range t.Inner() {
		if c == '\\' {
			return false
		}
	}
	return !l.Next().Is("uescape")
}
