package mysql

import (
	"encoding/binary"
	"errors"
)

// Capability flags: the CLIENT_* constants of the MySQL client/server
// protocol ("Capabilities Flags" in the MySQL source documentation).
const (
	ClientLongPassword         uint32 = 0x00000001 // CLIENT_LONG_PASSWORD
	ClientFoundRows            uint32 = 0x00000002 // CLIENT_FOUND_ROWS
	ClientLongFlag             uint32 = 0x00000004 // CLIENT_LONG_FLAG
	ClientConnectWithDB        uint32 = 0x00000008 // CLIENT_CONNECT_WITH_DB
	ClientProtocol41           uint32 = 0x00000200 // CLIENT_PROTOCOL_41
	ClientSSL                  uint32 = 0x00000800 // CLIENT_SSL
	ClientTransactions         uint32 = 0x00002000 // CLIENT_TRANSACTIONS
	ClientSecureConnection     uint32 = 0x00008000 // CLIENT_SECURE_CONNECTION (CLIENT_RESERVED2)
	ClientMultiResults         uint32 = 0x00020000 // CLIENT_MULTI_RESULTS
	ClientPluginAuth           uint32 = 0x00080000 // CLIENT_PLUGIN_AUTH
	ClientConnectAttrs         uint32 = 0x00100000 // CLIENT_CONNECT_ATTRS
	ClientPluginAuthLenencData uint32 = 0x00200000 // CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
	ClientDeprecateEOF         uint32 = 0x01000000 // CLIENT_DEPRECATE_EOF

	// serverCapabilitiesWithoutSSL is what the greeting offers; New adds
	// ClientSSL when the transport can upgrade.
	serverCapabilitiesWithoutSSL = ClientLongPassword | ClientFoundRows | ClientLongFlag | ClientConnectWithDB |
		ClientProtocol41 | ClientTransactions | ClientSecureConnection | ClientMultiResults | ClientPluginAuth |
		ClientConnectAttrs | ClientPluginAuthLenencData | ClientDeprecateEOF
)

// Packets: a 3-byte little-endian payload length and a sequence id, then
// the payload ("MySQL Packets").
const (
	packetHeaderLen = 4
	// maxPacketPayload (0xffffff) marks the first fragment of a payload of
	// 16 MiB or more, which is never accepted.
	maxPacketPayload = 1<<24 - 1
)

// The first byte of a server packet's payload ("Generic Response Packets",
// "Protocol::AuthMoreData"), and the markers of length-encoded integers
// ("Protocol::LengthEncodedInteger"): a first byte below nullValue is the
// value itself.
const (
	headerOK       byte = 0x00 // OK_Packet
	headerAuthMore byte = 0x01 // AuthMoreData
	headerEOF      byte = 0xfe // EOF_Packet, and AuthSwitchRequest
	headerERR      byte = 0xff // ERR_Packet
	nullValue      byte = 0xfb // NULL in a text resultset row
	lenencTwo      byte = 0xfc // a 2-byte integer follows
	lenencThree    byte = 0xfd // a 3-byte integer follows
	lenencEight    byte = 0xfe // an 8-byte integer follows
	// sqlStateMarker precedes the five-character SQLSTATE of an ERR_Packet.
	sqlStateMarker byte = '#'
)

// The greeting ("Protocol::HandshakeV10") and the client's answer
// ("Protocol::HandshakeResponse41", "Protocol::SSLRequest").
const (
	protocolVersion10 byte = 0x0a
	// nonceLen is the auth-plugin-data (the scramble's nonce): 8 bytes in
	// part 1, the rest in part 2, whose length byte counts a final NUL.
	nonceLen                    = 20
	authPluginDataPart1Len      = 8
	authPluginDataLen      byte = nonceLen + 1
	// greetingReservedLen is the greeting's reserved zero bytes.
	greetingReservedLen = 10
	// handshakeResponseFixedPrefix is capabilities (4), max packet size
	// (4), character set (1) and 23 filler bytes: the whole of an
	// SSLRequest (sslRequestLen).
	handshakeResponseFixedPrefix = 32
	sslRequestLen                = 32
	// maxNameLen bounds a user or database name kept by the session
	// (MySQL identifiers are at most 64 characters).
	maxNameLen = 64
	// serverStatusAutocommit is SERVER_STATUS_AUTOCOMMIT.
	serverStatusAutocommit uint16 = 0x0002
	charsetUTF8MB4         byte   = 0xff // utf8mb4_0900_ai_ci
	charsetBinary          byte   = 63   // binary
)

// caching_sha2_password ("Caching_sha2_password information"): the data of
// the AuthMoreData packets and the client's request for the public key.
const (
	pluginCachingSHA2 = "caching_sha2_password"
	// scrambleLen is the fast-auth scramble: a SHA-256 digest.
	scrambleLen           = 32
	requestPublicKey byte = 0x02 // the client asks for the RSA public key
	fastAuthSuccess  byte = 0x03 // the scramble matched: OK follows
	performFullAuth  byte = 0x04 // send the password (in TLS, or RSA-encrypted)
)

// Result sets ("Protocol::ColumnDefinition41", "Column Types" and
// "Column Definition Flags").
const (
	columnTypeLongLong  byte   = 0x08   // MYSQL_TYPE_LONGLONG
	columnTypeDatetime  byte   = 0x0c   // MYSQL_TYPE_DATETIME
	columnTypeVarString byte   = 0xfd   // MYSQL_TYPE_VAR_STRING
	columnFlagNotNull   uint16 = 0x0001 // NOT_NULL_FLAG
	columnFlagBinary    uint16 = 0x0080 // BINARY_FLAG
	columnFlagNum       uint16 = 0x8000 // NUM_FLAG
	// columnFixedFieldsLen is the length of the fixed-length fields that
	// follow the names: character set, column length, type, flags,
	// decimals and filler.
	columnFixedFieldsLen byte = 0x0c
	// Column lengths: the display width of a BIGINT (20 digits and a
	// sign), of a DATETIME ("YYYY-MM-DD hh:mm:ss"), and what is announced
	// for strings.
	columnLengthLongLong  uint32 = 21
	columnLengthDatetime  uint32 = 19
	maxColumnLengthString uint32 = 1024
)

// Packet errors.
var (
	// errPacketTooBig: a length prefix above the phase's limit, or the
	// 0xffffff of a multi-packet (16 MiB+) payload, which is never accepted.
	errPacketTooBig = errors.New("packet too big")
	// errMalformed: a packet whose fields run past its end.
	errMalformed = errors.New("malformed packet")
)

// ReadPacket reads one packet from the front of in: a 3-byte little-endian
// payload length, a sequence id, then the payload. The payload is a view of
// in. It returns n == 0 and a nil error while the packet is incomplete. A
// length above max, or of 16 MiB - 1 (the first fragment of a split 16 MiB+
// payload), is errPacketTooBig.
func ReadPacket(in []byte, max int) (payload []byte, seq byte, n int, err error) {
	if len(in) < packetHeaderLen {
		return nil, 0, 0, nil
	}
	size := int(in[0]) | int(in[1])<<8 | int(in[2])<<16
	if size >= maxPacketPayload || size > max {
		return nil, 0, 0, errPacketTooBig
	}
	if len(in) < packetHeaderLen+size {
		return nil, 0, 0, nil
	}
	return in[packetHeaderLen : packetHeaderLen+size], in[packetHeaderLen-1], packetHeaderLen + size, nil
}

// beginPacket appends a packet header with sequence id seq and a length to
// be filled in by endPacket; it returns the header's offset.
func beginPacket(dst []byte, seq byte) ([]byte, int) {
	return append(dst, 0, 0, 0, seq), len(dst)
}

// endPacket writes the payload length into the header at start.
func endPacket(dst []byte, start int) []byte {
	size := len(dst) - start - packetHeaderLen
	dst[start], dst[start+1], dst[start+2] = byte(size), byte(size>>8), byte(size>>16)
	return dst
}

// HandshakeV10 is the server's greeting.
type HandshakeV10 struct {
	ServerVersion string
	ConnectionID  uint32
	Nonce         [nonceLen]byte
	Capabilities  uint32
}

// Encode appends the greeting as packet 0.
func (h *HandshakeV10) Encode(dst []byte) []byte {
	dst, start := beginPacket(dst, 0)
	dst = append(dst, protocolVersion10)
	dst = append(dst, h.ServerVersion...)
	dst = append(dst, 0)
	dst = binary.LittleEndian.AppendUint32(dst, h.ConnectionID)
	dst = append(dst, h.Nonce[:authPluginDataPart1Len]...)
	dst = append(dst, 0)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(h.Capabilities))
	dst = append(dst, charsetUTF8MB4)
	dst = binary.LittleEndian.AppendUint16(dst, serverStatusAutocommit)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(h.Capabilities>>16))
	dst = append(dst, authPluginDataLen)
	dst = append(dst, make([]byte, greetingReservedLen)...)
	dst = append(dst, h.Nonce[authPluginDataPart1Len:]...)
	dst = append(dst, 0)
	dst = append(dst, pluginCachingSHA2...)
	dst = append(dst, 0)
	return endPacket(dst, start)
}

// HandshakeResponse41 is the client's answer to the greeting (or, when it
// is exactly 32 bytes with ClientSSL set, its SSLRequest). Byte-slice fields
// are views of the decoded payload.
type HandshakeResponse41 struct {
	Capabilities  uint32
	MaxPacketSize uint32
	Charset       byte
	Username      []byte
	AuthResponse  []byte
	Database      []byte
	AuthPlugin    []byte
}

// IsSSLRequest reports whether payload is an SSLRequest.
func IsSSLRequest(payload []byte) bool {
	return len(payload) == sslRequestLen && binary.LittleEndian.Uint32(payload)&ClientSSL != 0
}

// Decode parses a HandshakeResponse41 payload. Connection attributes are
// skipped. It checks every length before it reads.
func (r *HandshakeResponse41) Decode(src []byte) error {
	*r = HandshakeResponse41{}
	if len(src) < handshakeResponseFixedPrefix {
		return errMalformed
	}
	r.Capabilities = binary.LittleEndian.Uint32(src)
	r.MaxPacketSize = binary.LittleEndian.Uint32(src[4:])
	r.Charset = src[8]
	rest := src[handshakeResponseFixedPrefix:]
	var ok bool
	if r.Username, rest, ok = cutNul(rest); !ok {
		return errMalformed
	}
	switch {
	case r.Capabilities&ClientPluginAuthLenencData != 0:
		size, k, ok := readLenenc(rest)
		if !ok || size > uint64(len(rest)-k) {
			return errMalformed
		}
		r.AuthResponse, rest = rest[k:k+int(size)], rest[k+int(size):]
	case r.Capabilities&ClientSecureConnection != 0:
		if len(rest) < 1 || int(rest[0]) > len(rest)-1 {
			return errMalformed
		}
		size := int(rest[0])
		r.AuthResponse, rest = rest[1:1+size], rest[1+size:]
	default:
		if r.AuthResponse, rest, ok = cutNul(rest); !ok {
			return errMalformed
		}
	}
	if r.Capabilities&ClientConnectWithDB != 0 && len(rest) > 0 {
		if r.Database, rest, ok = cutNul(rest); !ok {
			return errMalformed
		}
	}
	if r.Capabilities&ClientPluginAuth != 0 && len(rest) > 0 {
		// Some clients end the packet without the plugin name's NUL.
		if r.AuthPlugin, rest, ok = cutNul(rest); !ok {
			r.AuthPlugin, rest = rest, nil
		}
	}
	_ = rest // connection attributes: not used
	return nil
}

// cutNul splits b at its first NUL byte.
func cutNul(b []byte) (head, rest []byte, ok bool) {
	for i, c := range b {
		if c == 0 {
			return b[:i], b[i+1:], true
		}
	}
	return nil, b, false
}

// readLenenc reads a length-encoded integer; k is the bytes it took.
func readLenenc(b []byte) (v uint64, k int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	switch b[0] {
	case lenencTwo:
		if len(b) < 3 {
			return 0, 0, false
		}
		return uint64(binary.LittleEndian.Uint16(b[1:])), 3, true
	case lenencThree:
		if len(b) < 4 {
			return 0, 0, false
		}
		return uint64(b[1]) | uint64(b[2])<<8 | uint64(b[3])<<16, 4, true
	case lenencEight:
		if len(b) < 9 {
			return 0, 0, false
		}
		return binary.LittleEndian.Uint64(b[1:]), 9, true
	case nullValue, headerERR:
		return 0, 0, false
	}
	return uint64(b[0]), 1, true
}

// appendLenenc appends v as a length-encoded integer.
func appendLenenc(dst []byte, v uint64) []byte {
	switch {
	case v < uint64(nullValue):
		return append(dst, byte(v))
	case v < 1<<16:
		return binary.LittleEndian.AppendUint16(append(dst, lenencTwo), uint16(v))
	case v < 1<<24:
		return append(dst, lenencThree, byte(v), byte(v>>8), byte(v>>16))
	}
	return binary.LittleEndian.AppendUint64(append(dst, lenencEight), v)
}

// appendLenencString appends s as a length-encoded string.
func appendLenencString(dst []byte, s string) []byte {
	return append(appendLenenc(dst, uint64(len(s))), s...)
}

// AppendOK appends an OK packet (no rows affected, autocommit on).
func AppendOK(dst []byte, seq byte) []byte {
	dst, start := beginPacket(dst, seq)
	dst = append(dst, headerOK, 0, 0)
	dst = binary.LittleEndian.AppendUint16(dst, serverStatusAutocommit)
	dst = append(dst, 0, 0)
	return endPacket(dst, start)
}

// AppendERR appends an ERR packet with its SQLSTATE and message.
func AppendERR(dst []byte, seq byte, code uint16, state, msg string) []byte {
	dst, start := beginPacket(dst, seq)
	dst = appendERRHeader(dst, code, state)
	dst = append(dst, msg...)
	return endPacket(dst, start)
}

// appendERRHeader appends an ERR packet's payload up to its message: the
// header, the error number, the SQLSTATE marker and the SQLSTATE.
func appendERRHeader(dst []byte, code uint16, state string) []byte {
	dst = append(dst, headerERR)
	dst = binary.LittleEndian.AppendUint16(dst, code)
	dst = append(dst, sqlStateMarker)
	return append(dst, state...)
}

// appendEnd appends the end of a column list or of a result set: an EOF
// packet, or (when the client asked for CLIENT_DEPRECATE_EOF) an OK packet
// with the EOF header.
func appendEnd(dst []byte, seq byte, deprecateEOF bool) []byte {
	dst, start := beginPacket(dst, seq)
	dst = append(dst, headerEOF)
	if deprecateEOF {
		// OK: affected rows, last insert id, status, warnings.
		dst = append(dst, 0, 0)
		dst = binary.LittleEndian.AppendUint16(dst, serverStatusAutocommit)
		dst = append(dst, 0, 0)
	} else {
		// EOF: warnings, status.
		dst = append(dst, 0, 0)
		dst = binary.LittleEndian.AppendUint16(dst, serverStatusAutocommit)
	}
	return endPacket(dst, start)
}

// AppendAuthSwitchRequest appends the switch to caching_sha2_password.
func AppendAuthSwitchRequest(dst []byte, seq byte, nonce []byte) []byte {
	dst, start := beginPacket(dst, seq)
	dst = append(dst, headerEOF)
	dst = append(dst, pluginCachingSHA2...)
	dst = append(dst, 0)
	dst = append(dst, nonce...)
	dst = append(dst, 0)
	return endPacket(dst, start)
}

// AppendAuthMoreData appends an AuthMoreData packet (0x01 then data).
func AppendAuthMoreData(dst []byte, seq byte, data []byte) []byte {
	dst, start := beginPacket(dst, seq)
	dst = append(dst, headerAuthMore)
	dst = append(dst, data...)
	return endPacket(dst, start)
}

// Column describes one result-set column.
type Column struct {
	Name string
	Type byte
}

// appendColumnDefinition appends a ColumnDefinition41 packet.
func appendColumnDefinition(dst []byte, seq byte, c Column) []byte {
	dst, start := beginPacket(dst, seq)
	dst = appendLenencString(dst, "def")
	dst = appendLenencString(dst, "") // schema
	dst = appendLenencString(dst, "") // table
	dst = appendLenencString(dst, "") // org_table
	dst = appendLenencString(dst, c.Name)
	dst = appendLenencString(dst, "") // org_name
	dst = append(dst, columnFixedFieldsLen)
	var flags uint16
	switch c.Type {
	case columnTypeLongLong:
		dst = binary.LittleEndian.AppendUint16(dst, uint16(charsetBinary))
		dst = binary.LittleEndian.AppendUint32(dst, columnLengthLongLong)
		flags = columnFlagNotNull | columnFlagBinary | columnFlagNum
	case columnTypeDatetime:
		dst = binary.LittleEndian.AppendUint16(dst, uint16(charsetBinary))
		dst = binary.LittleEndian.AppendUint32(dst, columnLengthDatetime)
		flags = columnFlagBinary
	default:
		dst = binary.LittleEndian.AppendUint16(dst, uint16(charsetUTF8MB4))
		dst = binary.LittleEndian.AppendUint32(dst, maxColumnLengthString)
	}
	dst = append(dst, c.Type)
	dst = binary.LittleEndian.AppendUint16(dst, flags)
	dst = append(dst, 0, 0, 0) // decimals, filler
	return endPacket(dst, start)
}

// appendResultHeader appends what opens a result set, in the text and the
// binary protocol alike: the column count, the column definitions and, unless
// deprecateEOF, an EOF. seq is the first packet's sequence id; it returns
// the next one.
func appendResultHeader(dst []byte, seq byte, deprecateEOF bool, cols ...Column) ([]byte, byte) {
	dst, start := beginPacket(dst, seq)
	dst = appendLenenc(dst, uint64(len(cols)))
	dst = endPacket(dst, start)
	seq++
	for _, c := range cols {
		dst = appendColumnDefinition(dst, seq, c)
		seq++
	}
	if !deprecateEOF {
		dst = appendEnd(dst, seq, false)
		seq++
	}
	return dst, seq
}

// AppendResultSet appends a text-protocol result set: the column count, the
// column definitions, an EOF (unless deprecateEOF), the rows (a nil value is
// NULL), and the closing EOF or OK. seq is the first packet's sequence id;
// it returns the next one.
func AppendResultSet(dst []byte, seq byte, deprecateEOF bool, cols []Column, rows [][]*string) ([]byte, byte) {
	dst, seq = appendResultHeader(dst, seq, deprecateEOF, cols...)
	var start int
	for _, row := range rows {
		dst, start = beginPacket(dst, seq)
		for _, v := range row {
			if v == nil {
				dst = append(dst, nullValue)
				continue
			}
			dst = appendLenencString(dst, *v)
		}
		dst = endPacket(dst, start)
		seq++
	}
	dst = appendEnd(dst, seq, deprecateEOF)
	return dst, seq + 1
}
