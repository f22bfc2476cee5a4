package postgres

import (
	"encoding/binary"
	"strconv"
	"strings"
	"time"

	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/internal/sqlscope"
)

// maxPrepared bounds the named statements and portals a session keeps;
// maxStatements the statements of one simple query.
const (
	maxPrepared   = 256
	maxStatements = 1000
)

// extended holds the extended protocol's named statements and portals.
type extended struct {
	stmts   map[string]statement
	portals map[string]portal
	bind    Bind // decode buffer, reused
}

type portal struct {
	st        statement
	val       []byte  // SELECT $1: the bound value
	null      bool    // … which is NULL
	valFormat byte    // … in this format
	n         uint8   // result format codes held in inline
	inline    [8]byte // short lists of format codes, without an allocation
	extra     []byte  // longer lists
}

// formats returns the portal's result format codes.
func (p *portal) formats() []byte {
	if p.extra != nil {
		return p.extra
	}
	return p.inline[:p.n]
}

// query handles one message of an authenticated session.
func (s *Session) query(env *netio.Env, typ byte, body, out []byte) ([]byte, netio.Action) {
	// Every command re-checks the token as a fresh login would: expiry,
	// the key, and revocation (a revoked token's open sessions end at their
	// next command).
	if err := env.Recheck(&s.claims); err != nil {
		env.Observer.Authenticated(s.info, &s.claims, err, env.Now)
		return s.fatal(out, tokenError(err))
	}
	if s.skipSync && typ != 'S' {
		return out, netio.Continue // after an error, the extended protocol discards until Sync
	}
	switch typ {
	case 'Q':
		q, rest, ok := cstring(body)
		if !ok {
			return s.fatal(out, protocolViolation("invalid query message"))
		}
		if len(rest) > 0 {
			// Bytes behind the query's NUL: PostgreSQL runs nothing and
			// answers ERROR 08P01 (pq_getmsgend), so neither does the
			// gateway, whatever the string before the NUL says.
			s.failTx()
			return s.ready(AppendErrorResponse(out, ErrorFields{Severity: "ERROR",
				Code: codeProtocolViolation, Message: "invalid message format"})), netio.Continue
		}
		return s.ready(s.simple(env, q, out)), netio.Continue
	case 'P':
		var m Parse
		if err := m.Decode(body); err != nil {
			return s.fatal(out, protocolViolation("invalid Parse message"))
		}
		commands, e, bad := s.allowed(env, m.Query)
		if bad {
			return s.extError(out, e), netio.Continue
		}
		st, multi := firstStatement(m.Query, commands)
		if multi {
			return s.extError(out, ErrorFields{Severity: "ERROR", Code: codeSyntaxError,
				Message: "cannot insert multiple commands into a prepared statement"}), netio.Continue
		}
		e, bad = s.aborted(st)
		if !bad {
			e, bad = s.answerable(st)
		}
		if bad {
			return s.extError(out, e), netio.Continue
		}
		if st.kind == kindParam && m.FirstOID != 0 {
			st.oid = m.FirstOID
		}
		if !s.store(string(m.Name), st, nil, true) {
			return s.extError(out, tooMany), netio.Continue
		}
		return AppendParseComplete(out), netio.Continue
	case 'B':
		s.extend()
		m := &s.ext.bind
		if err := m.Decode(body); err != nil {
			return s.fatal(out, protocolViolation("invalid Bind message"))
		}
		st, ok := s.statement(string(m.Statement))
		if !ok {
			return s.extError(out, ErrorFields{Severity: "ERROR", Code: codeUndefinedStatement,
				Message: "prepared statement \"" + string(m.Statement) + "\" does not exist"}), netio.Continue
		}
		want := 0
		if st.kind == kindParam {
			want = 1
		}
		if m.Params != want {
			return s.extError(out, ErrorFields{Severity: "ERROR", Code: codeProtocolViolation,
				Message: "bind message supplies " + strconv.Itoa(m.Params) + " parameters, but prepared statement \"" +
					string(m.Statement) + "\" requires " + strconv.Itoa(want)}), netio.Continue
		}
		if !s.store(string(m.Portal), st, m.ResultFormats, false) {
			return s.extError(out, tooMany), netio.Continue
		}
		if want == 1 {
			pt := s.ext.portals[string(m.Portal)]
			pt.null, pt.valFormat = m.First == nil, m.FirstFormat
			pt.val = append([]byte(nil), m.First...)
			s.ext.portals[string(m.Portal)] = pt
		}
		return AppendBindComplete(out), netio.Continue
	case 'D':
		var m Target
		if err := m.Decode(body); err != nil {
			return s.fatal(out, protocolViolation("invalid Describe message"))
		}
		if m.Kind == 'S' {
			st, ok := s.statement(string(m.Name))
			if !ok {
				return s.extError(out, ErrorFields{Severity: "ERROR", Code: codeUndefinedStatement,
					Message: "prepared statement \"" + string(m.Name) + "\" does not exist"}), netio.Continue
			}
			if st.kind == kindParam {
				return s.describe(AppendParameterDescription1(out, st.oid), st, nil), netio.Continue
			}
			return s.describe(AppendParameterDescription(out), st, nil), netio.Continue
		}
		pt, ok := s.portal(string(m.Name))
		if !ok {
			return s.extError(out, noPortal(m.Name)), netio.Continue
		}
		return s.describe(out, pt.st, pt.formats()), netio.Continue
	case 'E':
		var m Execute
		if err := m.Decode(body); err != nil {
			return s.fatal(out, protocolViolation("invalid Execute message"))
		}
		pt, ok := s.portal(string(m.Portal))
		if !ok {
			return s.extError(out, noPortal(m.Portal)), netio.Continue
		}
		if e, bad := s.aborted(pt.st); bad {
			return s.extError(out, e), netio.Continue
		}
		var o []byte
		if pt.st.kind == kindParam {
			o, ok = paramRow(out, &pt)
		} else {
			o, ok = s.rows(out, pt.st, pt.formats())
		}
		if !ok {
			s.skipSync = true
			s.failTx()
		}
		return o, netio.Continue
	case 'S':
		s.skipSync = false
		return s.ready(out), netio.Continue
	case 'H', 'd', 'c', 'f':
		return out, netio.Continue // Flush (output is never held back); stray COPY data
	case 'C':
		var m Target
		if err := m.Decode(body); err != nil {
			return s.fatal(out, protocolViolation("invalid Close message"))
		}
		if s.ext != nil {
			if m.Kind == 'S' {
				delete(s.ext.stmts, string(m.Name))
			} else {
				delete(s.ext.portals, string(m.Name))
			}
		}
		return AppendCloseComplete(out), netio.Continue
	case 'F':
		return s.extError(out, noUpstreamError), netio.Continue
	}
	return s.fatal(out, protocolViolation("invalid frontend message type "+strconv.Itoa(int(typ))))
}

var tooMany = ErrorFields{Severity: "ERROR", Code: codeProgramLimit, Message: "too many prepared statements or portals"}

func noPortal(name []byte) ErrorFields {
	return ErrorFields{Severity: "ERROR", Code: codeUndefinedCursor, Message: "portal \"" + string(name) + "\" does not exist"}
}

// extError appends an error of the extended protocol and discards the
// messages that follow until Sync.
func (s *Session) extError(out []byte, e ErrorFields) []byte {
	s.skipSync = true
	s.failTx()
	return AppendErrorResponse(out, e)
}

// ready appends ReadyForQuery with the session's transaction status.
func (s *Session) ready(out []byte) []byte {
	if s.tx == 0 {
		return AppendReadyForQuery(out)
	}
	return AppendReadyForQueryStatus(out, s.tx)
}

// failTx marks an open transaction block failed after an error, as
// PostgreSQL does: until COMMIT or ROLLBACK, statements are refused.
func (s *Session) failTx() {
	if s.tx == 'T' {
		s.tx = 'E'
	}
}

// abortedError is PostgreSQL's answer to a statement in a failed
// transaction block.
var abortedError = ErrorFields{Severity: "ERROR", Code: codeInFailedTransaction,
	Message: "current transaction is aborted, commands ignored until end of transaction block"}

// aborted refuses a statement other than COMMIT or ROLLBACK inside a failed
// transaction block.
func (s *Session) aborted(st statement) (ErrorFields, bool) {
	if s.tx == 'E' && st.kind != kindCommit && st.kind != kindRollback && st.kind != kindEmpty {
		return abortedError, true
	}
	return ErrorFields{}, false
}

// answerable applies the "no upstream" rule to a statement that passed
// the scope check: only the built-ins are answered.
func (s *Session) answerable(st statement) (ErrorFields, bool) {
	switch st.kind {
	case kindOther:
		return noUpstreamError, true
	case kindShow:
		if _, ok := s.show(st.name); !ok {
			return ErrorFields{Severity: "ERROR", Code: codeUndefinedObject,
				Message: "unrecognized configuration parameter \"" + st.name + "\""}, true
		}
	}
	return ErrorFields{}, false
}

// firstStatement returns the built-in a Parse message's query is (kindEmpty
// for none), and whether it holds more than one command (commands, from
// allowed), which PostgreSQL refuses in a prepared statement.
func firstStatement(q []byte, commands int) (statement, bool) {
	sp := sqlscope.NewSplitter(sqlscope.PostgreSQL, q)
	part, ok := sp.Next()
	if !ok {
		return statement{kind: kindEmpty}, false
	}
	return builtinOf(part), commands > 1
}

// simple runs a simple-query string. Every statement is checked first, as
// one: a query with a statement the token may not run runs nothing. Then
// each statement is answered in turn, stopping at the first error; a string
// of nothing but whitespace and comments gets EmptyQueryResponse.
func (s *Session) simple(env *netio.Env, q, out []byte) []byte {
	if _, e, bad := s.allowed(env, q); bad {
		s.failTx()
		return AppendErrorResponse(out, e)
	}
	sp := sqlscope.NewSplitter(sqlscope.PostgreSQL, q)
	ran := false
	for i := 0; ; i++ {
		part, ok := sp.Next()
		if !ok {
			break
		}
		if i == maxStatements {
			s.failTx()
			return AppendErrorResponse(out, ErrorFields{Severity: "ERROR", Code: codeProgramLimit,
				Message: "too many statements in one query"})
		}
		st := builtinOf(part)
		if st.kind == kindEmpty {
			continue
		}
		ran = true
		e, bad := s.aborted(st)
		if !bad {
			e, bad = s.answerable(st)
		}
		if !bad && st.kind == kindParam {
			e, bad = ErrorFields{Severity: "ERROR", Code: codeUndefinedParameter, Message: "there is no parameter $1"}, true
		}
		if bad {
			s.failTx()
			return AppendErrorResponse(out, e)
		}
		if st.returnsRows() { // the simple protocol sends no NoData
			out = s.describe(out, st, nil)
		}
		if out, ok = s.rows(out, st, nil); !ok {
			s.failTx()
			return out
		}
	}
	if !ran {
		out = AppendEmptyQueryResponse(out)
	}
	return out
}

func (s *Session) statement(name string) (statement, bool) {
	if s.ext == nil {
		return statement{}, false
	}
	st, ok := s.ext.stmts[name]
	return st, ok
}

func (s *Session) portal(name string) (portal, bool) {
	if s.ext == nil {
		return portal{}, false
	}
	p, ok := s.ext.portals[name]
	return p, ok
}

// store keeps a statement (stmt) or portal under name; false when full.
func (s *Session) store(name string, st statement, formats []byte, stmt bool) bool {
	s.extend()
	if stmt {
		if _, ok := s.ext.stmts[name]; !ok && len(s.ext.stmts) >= maxPrepared {
			return false
		}
		s.ext.stmts[name] = st
		return true
	}
	if _, ok := s.ext.portals[name]; !ok && len(s.ext.portals) >= maxPrepared {
		return false
	}
	p := portal{st: st}
	if len(formats) > len(p.inline) {
		p.extra = append([]byte(nil), formats...)
	} else {
		p.n = uint8(copy(p.inline[:], formats))
	}
	s.ext.portals[name] = p
	return true
}

// extend makes the extended protocol's state on first use.
func (s *Session) extend() {
	if s.ext == nil {
		s.ext = &extended{stmts: make(map[string]statement, 1), portals: make(map[string]portal, 1)}
	}
}

// format returns the result format of column i under Bind's format codes.
func format(formats []byte, i int) byte {
	switch {
	case len(formats) == 0:
		return formatText
	case len(formats) == 1:
		return formats[0]
	case i < len(formats):
		return formats[i]
	}
	return formatText
}

var whoamiColumns = [...]string{"token_id", "type", "scopes", "expires_at"}

// describe appends the RowDescription of a statement's result (NoData for
// the empty statement).
func (s *Session) describe(out []byte, st statement, formats []byte) []byte {
	switch st.kind {
	case kindSelectInt:
		oid, size := uint32(oidInt4), int16(typlenInt4)
		if int64(int32(st.num)) != st.num {
			oid, size = oidInt8, typlenInt8
		}
		name := st.name
		if name == "" {
			name = "?column?"
		}
		return AppendRowDescription(out, []Field{{Name: name, OID: oid, Size: size, Format: format(formats, 0)}})
	case kindParam:
		size := int16(typlenVarlena)
		switch st.oid {
		case oidInt2:
			size = 2
		case oidInt4:
			size = typlenInt4
		case oidInt8:
			size = typlenInt8
		}
		return AppendRowDescription(out, []Field{{Name: "?column?", OID: st.oid, Size: size, Format: format(formats, 0)}})
	case kindCurrentUser:
		name := st.name
		if name == "user" {
			name = "current_user"
		}
		return AppendRowDescription(out, []Field{{Name: name, OID: oidName, Size: typlenName, Format: format(formats, 0)}})
	case kindVersion:
		return AppendRowDescription(out, []Field{{Name: "version", OID: oidText, Size: typlenVarlena, Format: format(formats, 0)}})
	case kindShow:
		return AppendRowDescription(out, []Field{{Name: st.name, OID: oidText, Size: typlenVarlena, Format: format(formats, 0)}})
	case kindWhoami:
		var f [len(whoamiColumns)]Field
		for i, c := range whoamiColumns {
			f[i] = Field{Name: c, OID: oidText, Size: typlenVarlena, Format: format(formats, i)}
		}
		return AppendRowDescription(out, f[:])
	}
	return AppendNoData(out)
}

// rows appends a statement's DataRow and CommandComplete (or
// EmptyQueryResponse); false when it appended an error instead.
func (s *Session) rows(out []byte, st statement, formats []byte) ([]byte, bool) {
	switch st.kind {
	case kindEmpty:
		return AppendEmptyQueryResponse(out), true
	case kindSelectInt:
		out, at := begin(out, 'D')
		out = appendInt16(out, 1)
		wide := int64(int32(st.num)) != st.num
		switch {
		case format(formats, 0) == formatText:
			var b [20]byte
			v := strconv.AppendInt(b[:0], st.num, 10)
			out = append(appendInt32(out, int32(len(v))), v...)
		case wide:
			out = binary.BigEndian.AppendUint64(appendInt32(out, 8), uint64(st.num))
		default:
			out = binary.BigEndian.AppendUint32(appendInt32(out, 4), uint32(st.num))
		}
		return AppendCommandComplete(finish(out, at), "SELECT 1"), true
	case kindCurrentUser:
		return AppendCommandComplete(appendTextRow(out, s.user), "SELECT 1"), true
	case kindVersion:
		return AppendCommandComplete(appendTextRow(out, s.version()), "SELECT 1"), true
	case kindShow:
		v, ok := s.show(st.name)
		if !ok {
			return AppendErrorResponse(out, ErrorFields{Severity: "ERROR", Code: codeUndefinedObject,
				Message: "unrecognized configuration parameter \"" + st.name + "\""}), false
		}
		return AppendCommandComplete(appendTextRow(out, v), "SHOW"), true
	case kindBegin:
		if s.tx == 0 || s.tx == 'I' {
			s.tx = 'T'
		}
		return AppendCommandComplete(out, "BEGIN"), true
	case kindCommit:
		tag := "COMMIT"
		if s.tx == 'E' {
			tag = "ROLLBACK" // PostgreSQL's tag for COMMIT of a failed transaction
		}
		s.tx = 'I'
		return AppendCommandComplete(out, tag), true
	case kindRollback:
		s.tx = 'I'
		return AppendCommandComplete(out, "ROLLBACK"), true
	case kindSet:
		if st.name == "application_name" || st.name == "all" {
			// application_name is reported (GUC_REPORT): PostgreSQL sends
			// its new value in a ParameterStatus.
			s.appName = st.value
			out = AppendParameterStatus(out, "application_name", s.appName)
		}
		return AppendCommandComplete(out, st.tag), true
	case kindWhoami:
		c := &s.claims
		scopes := strings.Join(c.Scopes.Strings(), ",")
		out = appendTextRow(out, c.ID.String(), c.Type.String(), scopes, c.Expires().Format(time.RFC3339))
		return AppendCommandComplete(out, "SELECT 1"), true
	}
	return AppendErrorResponse(out, noUpstreamError), false
}

// appendTextRow appends a DataRow of text values (text and name are the
// same bytes in the binary format).
func appendTextRow(out []byte, values ...string) []byte {
	out, at := begin(out, 'D')
	out = appendInt16(out, int16(len(values)))
	for _, v := range values {
		out = append(appendInt32(out, int32(len(v))), v...)
	}
	return finish(out, at)
}

// show returns a run-time parameter's value.
func (s *Session) show(name string) (string, bool) {
	switch name {
	case "application_name":
		return s.appName, true
	case "session_authorization":
		return s.user, true
	case "server_version_num":
		v, _ := s.p.param("server_version")
		major, minor, _ := strings.Cut(v, ".")
		m, _ := strconv.Atoi(major)
		n, _ := strconv.Atoi(minor)
		return strconv.Itoa(m*10000 + n), true
	case "transaction_isolation":
		return "read committed", true
	}
	return s.p.param(name)
}

func (s *Session) version() string {
	v, _ := s.p.param("server_version")
	return "PostgreSQL " + v + " (HeliosDB Auth gateway, built-in responder; no upstream database)"
}

// paramRow appends SELECT $1's DataRow and CommandComplete: the bound
// value, as sent when the result format is the parameter's, else
// converted between text and binary (integers; text types are the same
// bytes in both); false when it appended an error instead.
func paramRow(out []byte, pt *portal) ([]byte, bool) {
	v := pt.val
	if want := format(pt.formats(), 0); !pt.null && want != pt.valFormat {
		var ok bool
		if v, ok = convertParam(pt.st.oid, v, want); !ok {
			return AppendErrorResponse(out, ErrorFields{Severity: "ERROR", Code: codeInvalidBinaryRepresentation,
				Message: "cannot convert the parameter of type " + strconv.FormatUint(uint64(pt.st.oid), 10) +
					" between text and binary format"}), false
		}
	}
	out, at := begin(out, 'D')
	out = appendInt16(out, 1)
	if pt.null {
		out = appendInt32(out, -1)
	} else {
		out = append(appendInt32(out, int32(len(v))), v...)
	}
	return AppendCommandComplete(finish(out, at), "SELECT 1"), true
}

// convertParam converts v of type oid to format to.
func convertParam(oid uint32, v []byte, to byte) ([]byte, bool) {
	switch oid {
	case oidText, oidVarchar, oidName, oidUnknown:
		return v, true
	case oidInt2, oidInt4, oidInt8:
	default:
		return nil, false
	}
	size := 8
	switch oid {
	case oidInt2:
		size = 2
	case oidInt4:
		size = 4
	}
	if to == formatText {
		var n int64
		switch {
		case len(v) == 2 && size == 2:
			n = int64(int16(binary.BigEndian.Uint16(v)))
		case len(v) == 4 && size == 4:
			n = int64(int32(binary.BigEndian.Uint32(v)))
		case len(v) == 8 && size == 8:
			n = int64(binary.BigEndian.Uint64(v))
		default:
			return nil, false
		}
		return strconv.AppendInt(nil, n, 10), true
	}
	n, err := strconv.ParseInt(string(v), 10, size*8)
	if err != nil {
		return nil, false
	}
	b := binary.BigEndian.AppendUint64(nil, uint64(n))
	return b[8-size:], true
}
