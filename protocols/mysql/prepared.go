package mysql

import (
	"encoding/binary"
	"strings"
	"time"

	"github.com/heliosdb/auth/netio"
)

// This file is the binary protocol's side of the built-in responder:
// COM_STMT_PREPARE, COM_STMT_EXECUTE, COM_STMT_RESET and COM_STMT_CLOSE of
// the built-in queries (SELECT 1, @@version_comment, VERSION(),
// DATABASE(), USER(), helios_whoami() …) and of SELECT ?, which returns
// its parameter with the type and bytes it was sent with; drivers send
// these as prepared statements (go-sql-driver's db.Prepare and queries with
// arguments, Node's mysql2 execute()). Any other text still needs an
// upstream.

// prepStmt is a prepared built-in: its normalized text, and for SELECT ?
// the parameter's type as last bound (COM_STMT_EXECUTE sends the types
// only when they change).
type prepStmt struct {
	norm   string
	params int
	ptype  byte
}

// qSelectParam is SELECT ? in the normalized form of normalize.
const qSelectParam = "select ?"

// Commands of the binary protocol handled here.
const (
	comStmtExecute = 0x17
	comStmtReset   = 0x1a
)

// maxStmts bounds the prepared statements a session keeps (MySQL's
// max_prepared_stmt_count is per server; this is per connection).
const maxStmts = 256

// builtinRow returns the columns and the single row of a built-in query in
// the normalized form of normalize; ok is false for any other text.
func (s *Session) builtinRow(norm string) (cols []Column, row []*string, ok bool) {
	str := func(v string) *string { return &v }
	switch norm {
	case qSelect1:
		return []Column{{"1", columnTypeLongLong}}, []*string{str("1")}, true
	case qVersionComment:
		return []Column{{"@@version_comment", columnTypeVarString}}, []*string{str("HeliosDB Auth gateway (no upstream database)")}, true
	case "select @@version", "select version()":
		return []Column{{strings.TrimPrefix(norm, "select "), columnTypeVarString}}, []*string{str(s.p.version)}, true
	case "select database()":
		var v *string
		if len(s.db) > 0 {
			v = str(string(s.db))
		}
		return []Column{{"DATABASE()", columnTypeVarString}}, []*string{v}, true
	case "select user()", "select session_user()", "select system_user()":
		return []Column{{strings.ToUpper(strings.TrimPrefix(norm, "select ")), columnTypeVarString}},
			[]*string{str("default@" + s.info.Remote.Addr().String())}, true
	case "select current_user()", "select current_user":
		return []Column{{"CURRENT_USER()", columnTypeVarString}}, []*string{str("default@%")}, true
	case qWhoami:
		// expires_at is sent as text: the binary protocol's DATETIME
		// encoding is not needed for a value drivers scan as a string.
		c := &s.claims
		return []Column{{"token_id", columnTypeVarString}, {"type", columnTypeVarString}, {"scopes", columnTypeVarString},
				{"expires_at", columnTypeVarString}},
			[]*string{str(c.ID.String()), str(c.Type.String()), str(strings.Join(c.Scopes.Strings(), ",")),
				str(c.Expires().Format(time.DateTime))}, true
	}
	return nil, nil, false
}

// prepare answers COM_STMT_PREPARE of a built-in query (the scope and
// test-database checks have passed): COM_STMT_PREPARE_OK with no
// parameters and the query's column definitions. ok is false for text
// that is not a built-in.
func (s *Session) prepare(q, out []byte) ([]byte, bool) {
	var buf [64]byte
	norm := string(normalize(q, &buf))
	st := prepStmt{norm: norm}
	cols, _, ok := s.builtinRow(norm)
	if norm == qSelectParam {
		st.params, st.ptype, ok = 1, columnTypeVarString, true
		cols = []Column{{"?", columnTypeVarString}}
	}
	if !ok {
		return out, false
	}
	if len(s.stmts) >= maxStmts {
		return AppendERR(out, s.seq+1, erMaxPreparedStmt, stateGeneralError,
			"Can't create more than max_prepared_stmt_count statements (current value: 256)"), true
	}
	if s.stmts == nil {
		s.stmts = make(map[uint32]prepStmt, 1)
	}
	s.nextStmt++
	id := s.nextStmt
	s.stmts[id] = st
	seq := s.seq + 1
	o, start := beginPacket(out, seq)
	o = append(o, headerOK)
	o = binary.LittleEndian.AppendUint32(o, id)
	o = binary.LittleEndian.AppendUint16(o, uint16(len(cols)))
	o = binary.LittleEndian.AppendUint16(o, uint16(st.params))
	o = append(o, 0, 0, 0) // filler, warnings
	o = endPacket(o, start)
	seq++
	if st.params > 0 {
		o = appendColumnDefinition(o, seq, Column{"?", columnTypeVarString})
		seq++
		if s.caps&ClientDeprecateEOF == 0 {
			o = appendEnd(o, seq, false)
			seq++
		}
	}
	for _, c := range cols {
		o = appendColumnDefinition(o, seq, c)
		seq++
	}
	if s.caps&ClientDeprecateEOF == 0 {
		o = appendEnd(o, seq, false)
	}
	return o, true
}

// execute answers COM_STMT_EXECUTE of a statement prepare kept: a binary
// result set with the built-in's row, computed now (DATABASE() after a
// USE shows the new database).
func (s *Session) execute(payload, out []byte) []byte {
	seq := s.seq + 1
	if len(payload) < 4 {
		return AppendERR(out, seq, erMalformedPacket, stateGeneralError, "Malformed communication packet.")
	}
	id := binary.LittleEndian.Uint32(payload)
	st, ok := s.stmts[id]
	if !ok {
		return AppendERR(out, seq, erUnknownStmtHandler, stateGeneralError, "Unknown prepared statement handler given to mysqld_stmt_execute")
	}
	if st.params == 1 {
		return s.executeParam(out, id, st, payload[4:])
	}
	cols, row, _ := s.builtinRow(st.norm)
	deprecateEOF := s.caps&ClientDeprecateEOF != 0
	out, seq = appendResultHeader(out, seq, deprecateEOF, cols...)
	// A binary row: header 0x00, the NULL bitmap (offset 2), the values.
	out, start := beginPacket(out, seq)
	out = append(out, headerOK)
	bitmap := len(out)
	for range (len(cols) + 7 + 2) / 8 {
		out = append(out, 0)
	}
	for i, v := range row {
		switch {
		case v == nil:
			out[bitmap+(i+2)/8] |= 1 << ((i + 2) % 8)
		case cols[i].Type == columnTypeLongLong:
			var n uint64
			for _, c := range *v {
				n = n*10 + uint64(c-'0')
			}
			out = binary.LittleEndian.AppendUint64(out, n)
		default:
			out = appendLenencString(out, *v)
		}
	}
	out = endPacket(out, start)
	seq++
	return appendEnd(out, seq, deprecateEOF)
}

// stmtCommand handles COM_STMT_EXECUTE, COM_STMT_RESET and COM_STMT_CLOSE.
func (s *Session) stmtCommand(payload, out []byte) ([]byte, netio.Action) {
	switch payload[0] {
	case comStmtExecute:
		return s.execute(payload[1:], out), netio.Continue
	case comStmtReset:
		if len(payload) < 5 {
			return AppendERR(out, s.seq+1, erMalformedPacket, stateGeneralError, "Malformed communication packet."), netio.Continue
		}
		if _, ok := s.stmts[binary.LittleEndian.Uint32(payload[1:])]; !ok {
			return AppendERR(out, s.seq+1, erUnknownStmtHandler, stateGeneralError,
				"Unknown prepared statement handler given to mysqld_stmt_reset"), netio.Continue
		}
		return AppendOK(out, s.seq+1), netio.Continue
	}
	// COM_STMT_CLOSE has no reply.
	if len(payload) >= 5 {
		delete(s.stmts, binary.LittleEndian.Uint32(payload[1:]))
	}
	return out, netio.Continue
}

// executeParam answers COM_STMT_EXECUTE of SELECT ?: p is the payload
// after the statement id (flags, iteration count, NULL bitmap, the
// new-params-bound flag, the types when bound, the value). The result is
// one column of the parameter's type holding the bytes sent.
func (s *Session) executeParam(out []byte, id uint32, st prepStmt, p []byte) []byte {
	seq := s.seq + 1
	malformed := AppendERR(out, seq, erMalformedPacket, stateGeneralError, "Malformed communication packet.")
	if len(p) < 7 { // flags, iteration count, NULL bitmap, bound flag
		return malformed
	}
	null, bound := p[5]&1 != 0, p[6] == 1
	p = p[7:]
	if bound {
		if len(p) < 2 {
			return malformed
		}
		st.ptype, p = p[0], p[2:]
		s.stmts[id] = st
	}
	var v []byte
	if !null {
		n, ok := binaryValueLen(st.ptype, p)
		if !ok {
			return malformed
		}
		v = p[:n]
	}
	out = malformed[:len(out)]
	deprecateEOF := s.caps&ClientDeprecateEOF != 0
	out, seq = appendResultHeader(out, seq, deprecateEOF, Column{"?", st.ptype})
	out, start := beginPacket(out, seq)
	out = append(out, headerOK)
	if null {
		out = append(out, 1<<2)
	} else {
		out = append(append(out, 0), v...)
	}
	out = endPacket(out, start)
	seq++
	return appendEnd(out, seq, deprecateEOF)
}

// binaryValueLen returns the length of a binary-protocol value of type t at
// the start of p (the length prefix included).
func binaryValueLen(t byte, p []byte) (int, bool) {
	n := 0
	switch t {
	case 0x01: // TINY
		n = 1
	case 0x02, 0x0d: // SHORT, YEAR
		n = 2
	case 0x03, 0x09, 0x04: // LONG, INT24, FLOAT
		n = 4
	case 0x08, 0x05: // LONGLONG, DOUBLE
		n = 8
	case 0x06: // NULL
		n = 0
	case 0x07, 0x0a, 0x0b, 0x0c: // TIMESTAMP, DATE, TIME, DATETIME: a length byte
		if len(p) < 1 {
			return 0, false
		}
		n = 1 + int(p[0])
	default: // strings, blobs, DECIMAL, JSON …: length-encoded
		l, k, ok := readLenenc(p)
		if !ok || l > uint64(len(p)) {
			return 0, false
		}
		n = k + int(l)
	}
	return n, n <= len(p)
}
