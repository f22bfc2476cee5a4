package sqlscope

// keywordList holds every word the classifier looks at, in lower case.
var keywordList = [...]string{
	// statements
	"select", "with", "values", "table", "insert", "update", "delete", "merge", "upsert", "replace",
	"explain", "describe", "desc", "analyze", "analyse", "show", "set", "reset", "discard",
	"begin", "start", "commit", "end", "abort", "rollback", "savepoint", "release", "xa",
	"prepare", "execute", "deallocate", "declare", "fetch", "move", "close", "listen", "unlisten", "notify",
	"copy", "truncate", "vacuum", "cluster", "reindex", "lock", "unlock", "call", "do", "checkpoint",
	"load", "refresh", "create", "alter", "drop", "rename", "comment", "grant", "revoke", "security",
	"import", "reassign", "use", "help", "handler", "check", "checksum", "optimize", "repair", "kill",
	"cache", "flush", "purge", "change", "stop", "shutdown", "restart", "install", "uninstall", "clone",
	"binlog", "signal", "resignal", "get", "open",
	// words inside statements
	"into", "from", "to", "program", "as", "for", "share", "key", "no", "in", "on", "not", "if", "exists",
	"session", "local", "global", "persist", "persist_only", "role", "session_authorization", "authorization",
	"password", "resource", "default", "transaction", "all", "tables", "instance", "language", "plpgsql", "sql",
	"atomic", "outfile", "dumpfile", "ignore", "low_priority", "delayed", "high_priority", "concurrent",
	"set_config", "returning", "where", "conflict", "duplicate", "soname", "replica", "slave",
	"group_replication", "master", "owned", "verbose", "format", "cursor",
	// CREATE / ALTER / DROP
	"or", "temp", "temporary", "unlogged", "unique", "recursive", "materialized", "trusted", "procedural",
	"constraint", "fulltext", "spatial", "aggregate", "undo", "online", "offline", "definer", "algorithm",
	"invoker", "event", "foreign", "database", "databases", "schema", "user", "group", "tablespace", "server",
	"system", "view", "index", "sequence", "type", "domain", "extension", "function", "procedure", "trigger",
	"rule", "routine", "access", "cast", "collation", "conversion", "policy", "publication", "subscription",
	"statistics", "text", "transform", "operator", "large", "privileges", "mapping", "reference", "logfile",
	"package", "data", "wrapper", "method", "label", "object", "current_user", "immediate",
	// compound statements (routine bodies, DO blocks)
	"then", "else", "elsif", "elseif", "loop", "repeat", "while", "until", "leave", "iterate", "return",
	"case", "when", "exception", "perform", "raise", "exit", "continue", "foreach", "null", "assert",
}

// kwTable is an open-addressing hash table of the keywords (linear
// probing), read without allocating: a lookup lower-cases and hashes the
// word in one pass and compares at most a few entries.
var kwTable = func() (t [kwSlots]string) {
	for _, w := range keywordList {
		i := kwHash([]byte(w)) & (kwSlots - 1)
		for t[i] != "" {
			i = (i + 1) & (kwSlots - 1)
		}
		t[i] = w
	}
	return t
}()

const kwSlots = 1024 // a power of two, over three times the keywords

// kwHash hashes a lower-case word (FNV-1a).
func kwHash(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	return h
}

// maxKeyword is the longest keyword.
const maxKeyword = 24

// kw returns the keyword an unquoted word is, "" for any other token.
func kw(t Token) string {
	if t.Kind != KindWord {
		return ""
	}
	return lookup(t.Text)
}

// kwq is kw that also reads "quoted" and `quoted` identifiers (case
// insensitively: PostgreSQL's SET "ROLE" sets role).
func kwq(t Token) string {
	if t.Kind == KindQuotedIdent && t.clean {
		// A U&"…" name with \ escapes spells something else: no keyword
		// (the classifier refuses it, bagUnicode).
		return lookup(t.Inner())
	}
	return kw(t)
}

// lookup returns the keyword b is (ASCII case ignored), "" when it is none.
func lookup(b []byte) string {
	if len(b) > maxKeyword || len(b) == 0 {
		return ""
	}
	var buf [maxKeyword]byte
	h := uint32(2166136261)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
		h = (h ^ uint32(c)) * 16777619
	}
	w := buf[:len(b)]
	for i := h & (kwSlots - 1); ; i = (i + 1) & (kwSlots - 1) {
		k := kwTable[i]
		if k == "" {
			return ""
		}
		if len(k) == len(w) && k == string(w) {
			return k
		}
	}
}

// verbs names statements as MySQL does in "… command denied" errors.
var verbs = map[string]string{
	"select": "SELECT", "with": "SELECT", "values": "SELECT", "table": "SELECT", "insert": "INSERT",
	"update": "UPDATE", "delete": "DELETE", "merge": "MERGE", "upsert": "UPSERT", "replace": "REPLACE",
	"explain": "EXPLAIN", "describe": "DESCRIBE", "desc": "DESCRIBE", "analyze": "ANALYZE", "analyse": "ANALYZE",
	"show": "SHOW", "set": "SET", "reset": "RESET", "discard": "DISCARD", "begin": "BEGIN",
	"start": "START TRANSACTION", "commit": "COMMIT", "end": "COMMIT", "abort": "ROLLBACK", "rollback": "ROLLBACK",
	"savepoint": "SAVEPOINT", "release": "RELEASE", "xa": "XA", "prepare": "PREPARE", "execute": "EXECUTE",
	"deallocate": "DEALLOCATE", "declare": "DECLARE", "fetch": "FETCH", "move": "MOVE", "close": "CLOSE",
	"listen": "LISTEN", "unlisten": "UNLISTEN", "notify": "NOTIFY", "copy": "COPY", "truncate": "TRUNCATE",
	"vacuum": "VACUUM", "cluster": "CLUSTER", "reindex": "REINDEX", "lock": "LOCK TABLES", "unlock": "UNLOCK TABLES",
	"call": "CALL", "do": "DO", "checkpoint": "CHECKPOINT", "load": "LOAD", "refresh": "REFRESH", "create": "CREATE",
	"alter": "ALTER", "drop": "DROP", "rename": "RENAME", "comment": "COMMENT", "grant": "GRANT", "revoke": "REVOKE",
	"security": "SECURITY LABEL", "import": "IMPORT", "reassign": "REASSIGN OWNED", "use": "USE", "help": "HELP",
	"handler": "HANDLER", "check": "CHECK", "checksum": "CHECKSUM", "optimize": "OPTIMIZE", "repair": "REPAIR",
	"kill": "KILL", "cache": "CACHE INDEX", "flush": "FLUSH", "purge": "PURGE", "change": "CHANGE", "stop": "STOP",
	"shutdown": "SHUTDOWN", "restart": "RESTART", "install": "INSTALL", "uninstall": "UNINSTALL", "clone": "CLONE",
	"binlog": "BINLOG", "signal": "SIGNAL", "resignal": "RESIGNAL", "get": "GET DIAGNOSTICS", "open": "OPEN",
}

// verbOf returns the verb of a statement that starts with keyword k.
func verbOf(k string) string {
	if v, ok := verbs[k]; ok {
		return v
	}
	return "statement"
}
