package sqlscope

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
