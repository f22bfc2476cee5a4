package sqlscope

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
		st.refuse(setRefusal(c.d, h.kq(j), ""))
		return st
	}
	st.refuse(setRefusal(c.d, h.k(i+1), h.k(i+2)))
	return st // GLOBAL, PERSIST and @@global anywhere in the list: the bag (bagSet)
}

// setRefusal is why a SET whose first two words are w1 and w2 is refused,
// or 0 when it is not (for PostgreSQL w1 is the word after SESSION or
// LOCAL, and only w1 counts): SET ROLE and SET SESSION AUTHORIZATION change
// the role the session runs as, and MySQL's SET PASSWORD, SET RESOURCE
// GROUP and SET DEFAULT ROLE change accounts or the server. A statement
// wherever it stands (set) and one inside another (setContext) share it.
func setRefusal(d Dialect, w1, w2 string) Refusal {
	if d == PostgreSQL {
		switch w1 {
		case "role", "session_authorization", "authorization":
			return RefusedRole
		}
		return 0
	}
	switch {
	case w1 == "role", w1 == "default" && w2 == "role":
		return RefusedRole
	case w1 == "password":
		return RefusedAccounts
	case w1 == "resource":
		return RefusedServer
	}
	return 0
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
