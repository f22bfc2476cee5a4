package postgres

import (
	"encoding/binary"
	"errors"
)

// Startup-phase packets: Int32 length (itself included), then an Int32
// code that says which packet it is, then the body (PostgreSQL
// documentation, Frontend/Backend Protocol, "Message Formats":
// StartupMessage, SSLRequest, GSSENCRequest, CancelRequest).
const (
	// protocolVersion3 is StartupMessage's protocol version 3.0, 196608:
	// the major version in the high 16 bits, the minor in the low 16
	// (protocolMinorMask).
	protocolVersion3  uint32 = 3 << 16
	protocolMinorMask uint32 = 0xffff
	// supportedMinor is the newest minor version of protocol 3 served,
	// as NegotiateProtocolVersion reports it.
	supportedMinor int32 = 0
	// cancelRequestCode, sslRequestCode and gssEncRequestCode stand where
	// a StartupMessage has its protocol version.
	cancelRequestCode uint32 = 80877102
	sslRequestCode    uint32 = 80877103
	gssEncRequestCode uint32 = 80877104
	// startupHeaderLen is the length and code: the whole of SSLRequest,
	// GSSENCRequest, and the shortest possible startup packet.
	startupHeaderLen = 8
	maxStartupBytes  = 10000 // PostgreSQL's MAX_STARTUP_PACKET_LENGTH
	// messageHeaderLen is a typed message's Byte1 type and Int32 length.
	messageHeaderLen = 5
	// maxIdentifierLen is NAMEDATALEN - 1: the longest user or database
	// name PostgreSQL keeps.
	maxIdentifierLen = 63
)

// Authentication request codes: the Int32 after an Authentication
// message's length (AuthenticationOk, AuthenticationCleartextPassword;
// the others — KerberosV5 2, MD5Password 5, GSS 7, SSPI 9, SASL 10 — are
// never sent: the token is the cleartext password, inside TLS).
const (
	AuthenticationOk                int32 = 0
	AuthenticationCleartextPassword int32 = 3
)

// Format codes of Bind's result formats and RowDescription's fields.
const (
	formatText   byte = 0
	formatBinary byte = 1
)

// OIDs of the types the built-in responder returns (pg_type.oid), and
// their typlen as RowDescription reports it (-1: variable length).
const (
	oidName    = 19
	oidInt8    = 20
	oidInt4    = 23
	oidText    = 25
	oidInt2    = 21
	oidVarchar = 1043
	oidUnknown = 705

	typlenName    = 64 // NAMEDATALEN
	typlenInt8    = 8
	typlenInt4    = 4
	typlenVarlena = -1
)

var (
	errShort      = errors.New("postgres: message too short")
	errMalformed  = errors.New("postgres: malformed message")
	errNotClosed  = errors.New("postgres: string not terminated")
	errBadFormats = errors.New("postgres: bad format codes")
)

// NextStartupParameter returns the first key/value pair of a
// StartupMessage's parameter list (the bytes after the length and the
// version code) and the rest; done is true at the terminating NUL. The
// slices point into body.
func NextStartupParameter(body []byte) (key, value, rest []byte, done bool, err error) {
	if len(body) == 0 {
		return nil, nil, nil, false, errNotClosed
	}
	if body[0] == 0 {
		if len(body) != 1 {
			return nil, nil, nil, false, errMalformed
		}
		return nil, nil, nil, true, nil
	}
	key, rest, ok := cstring(body)
	if !ok {
		return nil, nil, nil, false, errNotClosed
	}
	value, rest, ok = cstring(rest)
	if !ok {
		return nil, nil, nil, false, errNotClosed
	}
	return key, value, rest, false, nil
}

// cstring splits a NUL-terminated string off the front of b.
func cstring(b []byte) (s, rest []byte, ok bool) {
	for i, c := range b {
		if c == 0 {
			return b[:i], b[i+1:], true
		}
	}
	return nil, b, false
}

// reader reads a frontend message body, checking sizes before each read.
type reader struct {
	b   []byte
	err error
}

func (r *reader) int16() int {
	if r.err != nil || len(r.b) < 2 {
		r.err = errShort
		return 0
	}
	v := int16(binary.BigEndian.Uint16(r.b))
	r.b = r.b[2:]
	return int(v)
}

func (r *reader) int32() int32 {
	if r.err != nil || len(r.b) < 4 {
		r.err = errShort
		return 0
	}
	v := int32(binary.BigEndian.Uint32(r.b))
	r.b = r.b[4:]
	return v
}

func (r *reader) cstr() []byte {
	if r.err != nil {
		return nil
	}
	s, rest, ok := cstring(r.b)
	if !ok {
		r.err = errNotClosed
		return nil
	}
	r.b = rest
	return s
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil || n < 0 || len(r.b) < n {
		r.err = errShort
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// Parse is the extended protocol's Parse ('P').
type Parse struct {
	Name, Query []byte
	ParamOIDs   int    // how many parameter types the client named
	FirstOID    uint32 // the first one's type (0: unspecified)
}

// Decode parses a Parse body.
func (m *Parse) Decode(body []byte) error {
	r := reader{b: body}
	m.Name, m.Query = r.cstr(), r.cstr()
	m.ParamOIDs = r.int16()
	oids := r.bytes(4 * max(m.ParamOIDs, 0))
	m.FirstOID = 0
	if len(oids) >= 4 {
		m.FirstOID = binary.BigEndian.Uint32(oids)
	}
	return r.err
}

// Bind is the extended protocol's Bind ('B'). Only what the built-in
// responder needs is kept: names, the parameter count and the result format
// codes.
type Bind struct {
	Portal, Statement []byte
	Params            int
	First             []byte // the first parameter's value (nil: NULL or none)
	FirstFormat       byte   // its format code
	ResultFormats     []byte // one byte per code (0 text, 1 binary), at most 64
}

// Decode parses a Bind body into m, reusing m.ResultFormats.
func (m *Bind) Decode(body []byte) error {
	r := reader{b: body}
	m.Portal, m.Statement = r.cstr(), r.cstr()
	n := r.int16()
	pf := r.bytes(2 * max(n, 0))
	m.FirstFormat = formatText
	if len(pf) >= 2 && pf[1] == formatBinary { // one code for all, or the first's
		m.FirstFormat = formatBinary
	}
	m.Params = r.int16()
	m.First = nil
	for i := 0; i < m.Params && r.err == nil; i++ {
		if l := r.int32(); l >= 0 {
			v := r.bytes(int(l))
			if i == 0 {
				m.First = v
				if m.First == nil {
					m.First = []byte{}
				}
			}
		}
	}
	n = r.int16()
	if r.err == nil && (n < 0 || n > 64) {
		return errBadFormats
	}
	m.ResultFormats = m.ResultFormats[:0]
	for i := 0; i < n && r.err == nil; i++ {
		f := r.int16()
		if f != int(formatText) && f != int(formatBinary) {
			return errBadFormats
		}
		m.ResultFormats = append(m.ResultFormats, byte(f))
	}
	return r.err
}

// Target is a Describe or Close body: 'S' statement or 'P' portal, and a name.
type Target struct {
	Kind byte
	Name []byte
}

// Decode parses a Describe or Close body.
func (m *Target) Decode(body []byte) error {
	r := reader{b: body}
	k := r.bytes(1)
	m.Name = r.cstr()
	if r.err != nil {
		return r.err
	}
	if m.Kind = k[0]; m.Kind != 'S' && m.Kind != 'P' {
		return errMalformed
	}
	return nil
}

// Execute is the extended protocol's Execute ('E').
type Execute struct {
	Portal  []byte
	MaxRows int32
}

// Decode parses an Execute body.
func (m *Execute) Decode(body []byte) error {
	r := reader{b: body}
	m.Portal, m.MaxRows = r.cstr(), r.int32()
	return r.err
}

// begin appends a message header with a length placeholder and returns
// the index of the length, to be filled by finish.
func begin(dst []byte, typ byte) ([]byte, int) {
	dst = append(dst, typ, 0, 0, 0, 0)
	return dst, len(dst) - 4
}

func finish(dst []byte, at int) []byte {
	binary.BigEndian.PutUint32(dst[at:], uint32(len(dst)-at))
	return dst
}

func appendInt32(dst []byte, v int32) []byte    { return binary.BigEndian.AppendUint32(dst, uint32(v)) }
func appendInt16(dst []byte, v int16) []byte    { return binary.BigEndian.AppendUint16(dst, uint16(v)) }
func appendCString(dst []byte, s string) []byte { return append(append(dst, s...), 0) }

// AppendAuthentication appends an Authentication message ('R') of the given
// kind: AuthenticationOk or AuthenticationCleartextPassword.
func AppendAuthentication(dst []byte, kind int32) []byte {
	return appendInt32(append(dst, 'R', 0, 0, 0, 8), kind)
}

// AppendParameterStatus appends a ParameterStatus ('S').
func AppendParameterStatus(dst []byte, name, value string) []byte {
	dst, at := begin(dst, 'S')
	return finish(appendCString(appendCString(dst, name), value), at)
}

// AppendBackendKeyData appends BackendKeyData ('K').
func AppendBackendKeyData(dst []byte, pid, key uint32) []byte {
	dst = append(dst, 'K', 0, 0, 0, 12)
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(dst, pid), key)
}

// AppendReadyForQuery appends ReadyForQuery ('Z') with status 'I' (idle).
func AppendReadyForQuery(dst []byte) []byte { return append(dst, 'Z', 0, 0, 0, 5, 'I') }

// AppendReadyForQueryStatus appends ReadyForQuery ('Z') with a transaction
// status: 'I' idle, 'T' in a transaction block, 'E' in a failed one.
func AppendReadyForQueryStatus(dst []byte, status byte) []byte {
	return append(dst, 'Z', 0, 0, 0, 5, status)
}

// AppendNegotiateProtocolVersion appends NegotiateProtocolVersion ('v'):
// the newest minor version supported and the options not recognized.
func AppendNegotiateProtocolVersion(dst []byte, minor int32, unknown [][]byte) []byte {
	dst, at := begin(dst, 'v')
	dst = appendInt32(appendInt32(dst, minor), int32(len(unknown)))
	for _, o := range unknown {
		dst = append(append(dst, o...), 0)
	}
	return finish(dst, at)
}

// Field describes one column of a RowDescription.
type Field struct {
	Name   string
	OID    uint32
	Size   int16 // typlen: 4 for int4, 8 for int8, 64 for name, -1 for text
	Format byte  // formatText or formatBinary
}

// AppendRowDescription appends a RowDescription ('T').
func AppendRowDescription(dst []byte, fields []Field) []byte {
	dst, at := begin(dst, 'T')
	dst = appendInt16(dst, int16(len(fields)))
	for _, f := range fields {
		dst = appendCString(dst, f.Name)
		dst = appendInt32(dst, 0) // table OID
		dst = appendInt16(dst, 0) // column number
		dst = binary.BigEndian.AppendUint32(dst, f.OID)
		dst = appendInt16(dst, f.Size)
		dst = appendInt32(dst, -1) // type modifier
		dst = appendInt16(dst, int16(f.Format))
	}
	return finish(dst, at)
}

// AppendCommandComplete appends CommandComplete ('C') with its tag.
func AppendCommandComplete(dst []byte, tag string) []byte {
	dst, at := begin(dst, 'C')
	return finish(appendCString(dst, tag), at)
}

// AppendEmptyQueryResponse appends EmptyQueryResponse ('I').
func AppendEmptyQueryResponse(dst []byte) []byte { return append(dst, 'I', 0, 0, 0, 4) }

// AppendParseComplete, AppendBindComplete, AppendCloseComplete and
// AppendNoData append the extended protocol's bodiless answers.
func AppendParseComplete(dst []byte) []byte { return append(dst, '1', 0, 0, 0, 4) }

// AppendBindComplete appends BindComplete ('2').
func AppendBindComplete(dst []byte) []byte { return append(dst, '2', 0, 0, 0, 4) }

// AppendCloseComplete appends CloseComplete ('3').
func AppendCloseComplete(dst []byte) []byte { return append(dst, '3', 0, 0, 0, 4) }

// AppendNoData appends NoData ('n').
func AppendNoData(dst []byte) []byte { return append(dst, 'n', 0, 0, 0, 4) }

// AppendParameterDescription appends ParameterDescription ('t') with no
// parameters (no built-in statement takes any).
func AppendParameterDescription(dst []byte) []byte { return append(dst, 't', 0, 0, 0, 6, 0, 0) }

// AppendParameterDescription1 appends ParameterDescription ('t') of one
// parameter of type oid.
func AppendParameterDescription1(dst []byte, oid uint32) []byte {
	return binary.BigEndian.AppendUint32(append(dst, 't', 0, 0, 0, 10, 0, 1), oid)
}

// ErrorFields are the fields of an ErrorResponse this server sends.
type ErrorFields struct {
	Severity string // ERROR or FATAL
	Code     string // SQLSTATE
	Message  string
	Detail   string
	Hint     string
}

// AppendErrorResponse appends an ErrorResponse ('E').
func AppendErrorResponse(dst []byte, e ErrorFields) []byte {
	dst, at := begin(dst, 'E')
	dst = appendCString(append(dst, 'S'), e.Severity)
	dst = appendCString(append(dst, 'V'), e.Severity)
	dst = appendCString(append(dst, 'C'), e.Code)
	dst = appendCString(append(dst, 'M'), e.Message)
	if e.Detail != "" {
		dst = appendCString(append(dst, 'D'), e.Detail)
	}
	if e.Hint != "" {
		dst = appendCString(append(dst, 'H'), e.Hint)
	}
	return finish(append(dst, 0), at)
}
