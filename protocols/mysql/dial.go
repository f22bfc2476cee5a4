package mysql

import (
	"bufio"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
)

// This file is the client side of the MySQL handshake, with which the
// gateway logs in to the upstream server as one of its roles: read the
// server's HandshakeV10, answer with a HandshakeResponse41
// (mysql_native_password, or caching_sha2_password when the server offers
// it), follow an AuthSwitchRequest, and for caching_sha2_password take the
// fast path (01 03) or, when the server asks for full authentication
// (01 04) on a connection without TLS, send the password RSA-OAEP
// encrypted to the public key the server gives on request (02).

// More capability flags (the server side offers them only in proxy mode).
const (
	ClientLocalFiles      uint32 = 0x00000080 // CLIENT_LOCAL_FILES
	ClientMultiStatements uint32 = 0x00010000 // CLIENT_MULTI_STATEMENTS
	ClientPSMultiResults  uint32 = 0x00040000 // CLIENT_PS_MULTI_RESULTS
	ClientSessionTrack    uint32 = 0x00800000 // CLIENT_SESSION_TRACK

	// formatCaps are the flags that change what the server sends or
	// accepts on a connection: a server connection opened for one client
	// is handed only to clients that negotiated the same ones
	// (upstream.Key.Variant).
	formatCaps = ClientFoundRows | ClientLocalFiles | ClientMultiStatements | ClientMultiResults |
		ClientPSMultiResults | ClientSessionTrack | ClientDeprecateEOF

	// dialCaps are the flags the gateway always asks the server for.
	dialCaps = ClientLongPassword | ClientLongFlag | ClientProtocol41 | ClientTransactions |
		ClientSecureConnection | ClientPluginAuth | ClientPluginAuthLenencData

	pluginNativePassword = "mysql_native_password"
	pluginClearPassword  = "mysql_clear_password"

	// dialMaxPacket is the max packet size the gateway announces (16 MiB,
	// as libmysqlclient does).
	dialMaxPacket = 1 << 24
	// collationUTF8MB4GeneralCI is utf8mb4_general_ci.
	collationUTF8MB4GeneralCI byte = 45
)

// serverError is an ERR packet from the upstream server.
type serverError struct {
	Code    uint16
	State   string
	Message string
}

func (e *serverError) Error() string {
	return "upstream error " + strconv.Itoa(int(e.Code)) + " (" + e.State + "): " + e.Message
}

// parseERR reads an ERR packet's payload (header byte included).
func parseERR(p []byte) *serverError {
	e := &serverError{State: stateGeneralError}
	if len(p) < 3 {
		e.Message = "malformed error packet"
		return e
	}
	e.Code = binary.LittleEndian.Uint16(p[1:])
	p = p[3:]
	if len(p) >= 6 && p[0] == sqlStateMarker {
		e.State, p = string(p[1:6]), p[6:]
	}
	e.Message = string(p)
	return e
}

// greeting is what the gateway keeps of a server's HandshakeV10.
type greeting struct {
	version  string
	threadID uint32
	caps     uint32
	charset  byte
	status   uint16
	nonce    []byte
	plugin   string
}

// decodeGreeting parses a HandshakeV10 payload; an ERR packet (the server
// refusing the connection: too many connections, a blocked host) is
// returned as a *serverError.
func decodeGreeting(p []byte) (*greeting, error) {
	if len(p) > 0 && p[0] == headerERR {
		return nil, parseERR(p)
	}
	if len(p) < 1 || p[0] != protocolVersion10 {
		return nil, errors.New("upstream greeting: not protocol version 10")
	}
	g := &greeting{}
	v, rest, ok := cutNul(p[1:])
	if !ok || len(rest) < 4+authPluginDataPart1Len+1+2 {
		return nil, errMalformed
	}
	g.version = string(v)
	g.threadID = binary.LittleEndian.Uint32(rest)
	g.nonce = append(g.nonce, rest[4:4+authPluginDataPart1Len]...)
	rest = rest[4+authPluginDataPart1Len+1:]
	g.caps = uint32(binary.LittleEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) < 1+2+2+1+greetingReservedLen {
		return g, nil // a pre-4.1 server; the login will fail on CLIENT_PROTOCOL_41
	}
	g.charset = rest[0]
	g.status = binary.LittleEndian.Uint16(rest[1:])
	g.caps |= uint32(binary.LittleEndian.Uint16(rest[3:])) << 16
	authLen := int(rest[5])
	rest = rest[6+greetingReservedLen:]
	if g.caps&ClientSecureConnection != 0 {
		n := max(13, authLen-authPluginDataPart1Len)
		if n > len(rest) {
			return nil, errMalformed
		}
		part2 := rest[:n]
		if part2[len(part2)-1] == 0 {
			part2 = part2[:len(part2)-1]
		}
		g.nonce = append(g.nonce, part2...)
		rest = rest[n:]
	}
	if g.caps&ClientPluginAuth != 0 {
		name, _, ok := cutNul(rest)
		if !ok {
			name = rest
		}
		g.plugin = string(name)
	}
	return g, nil
}

// loginRequest is what the gateway logs in with.
type loginRequest struct {
	user, password, database string
	// caps are the format flags (formatCaps) the connection must have;
	// the server must offer each of them.
	caps    uint32
	charset byte
}

// packetConn reads and writes whole packets on a connection during the
// handshake (a buffered reader: a server may send two packets at once).
type packetConn struct {
	c   net.Conn
	r   *bufio.Reader
	seq byte
}

func (pc *packetConn) read() ([]byte, error) {
	var h [packetHeaderLen]byte
	if _, err := io.ReadFull(pc.r, h[:]); err != nil {
		return nil, err
	}
	size := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	if size >= maxPacketPayload {
		return nil, errors.New("upstream handshake packet too large")
	}
	p := make([]byte, size)
	if _, err := io.ReadFull(pc.r, p); err != nil {
		return nil, err
	}
	pc.seq = h[3] + 1
	return p, nil
}

func (pc *packetConn) write(payload []byte) error {
	b, start := beginPacket(make([]byte, 0, packetHeaderLen+len(payload)), pc.seq)
	b = endPacket(append(b, payload...), start)
	pc.seq++
	_, err := pc.c.Write(b)
	return err
}

// handshake logs in on c, a fresh connection to a MySQL or MariaDB server,
// and returns the server's greeting and the status flags of its OK. The
// caller sets c's deadline.
func handshake(c net.Conn, req loginRequest) (*greeting, uint16, error) {
	pc := &packetConn{c: c, r: bufio.NewReaderSize(c, 4096)}
	p, err := pc.read()
	if err != nil {
		return nil, 0, fmt.Errorf("upstream greeting: %w", err)
	}
	g, err := decodeGreeting(p)
	if err != nil {
		return nil, 0, err
	}
	if g.caps&ClientProtocol41 == 0 || g.caps&ClientSecureConnection == 0 {
		return nil, 0, errors.New("upstream server does not speak protocol 4.1")
	}
	if missing := req.caps &^ g.caps; missing != 0 {
		return nil, 0, fmt.Errorf("upstream server does not offer the capabilities %#x the client negotiated", missing)
	}
	caps := (dialCaps | req.caps) & (g.caps | ClientLongPassword)
	if req.database != "" {
		caps |= ClientConnectWithDB
	}
	plugin := g.plugin
	if plugin != pluginCachingSHA2 {
		plugin = pluginNativePassword // the server switches if it wants another
	}
	auth := scramble(plugin, req.password, g.nonce)
	charset := req.charset
	if charset == charsetUTF8MB4 && strings.HasPrefix(g.version, "5.5.5-10.") {
		// MariaDB 10 has no collation 255 (MySQL 8's utf8mb4_0900_ai_ci,
		// the default of MySQL 8 clients) and would fall back to its
		// server character set: the same character set, its default
		// collation.
		charset = collationUTF8MB4GeneralCI
	}
	resp := make([]byte, 0, 128)
	resp = binary.LittleEndian.AppendUint32(resp, caps)
	resp = binary.LittleEndian.AppendUint32(resp, dialMaxPacket)
	resp = append(resp, charset)
	resp = append(resp, make([]byte, 23)...)
	resp = append(append(resp, req.user...), 0)
	resp = append(appendLenenc(resp, uint64(len(auth))), auth...)
	if req.database != "" {
		resp = append(append(resp, req.database...), 0)
	}
	resp = append(append(resp, plugin...), 0)
	if err := pc.write(resp); err != nil {
		return nil, 0, err
	}
	nonce := g.nonce
	for switches := 0; ; {
		p, err := pc.read()
		if err != nil {
			return nil, 0, fmt.Errorf("upstream login: %w", err)
		}
		if len(p) == 0 {
			return nil, 0, errMalformed
		}
		switch p[0] {
		case headerOK:
			_, status, ok := okStatus(p)
			if !ok {
				return nil, 0, errMalformed
			}
			if pc.r.Buffered() > 0 {
				return nil, 0, errors.New("upstream login: the server sent more than its OK")
			}
			return g, status, nil
		case headerERR:
			return nil, 0, parseERR(p)
		case headerEOF: // AuthSwitchRequest: plugin name NUL, data
			if switches++; switches > 2 {
				return nil, 0, errors.New("upstream login: too many authentication switches")
			}
			name, data, ok := cutNul(p[1:])
			if !ok {
				return nil, 0, errMalformed
			}
			if len(data) > 0 && data[len(data)-1] == 0 {
				data = data[:len(data)-1]
			}
			plugin, nonce = string(name), append([]byte(nil), data...)
			switch plugin {
			case pluginNativePassword, pluginCachingSHA2:
			case pluginClearPassword:
				return nil, 0, errors.New("upstream login: the server asks for the password in cleartext (mysql_clear_password), which the gateway never sends")
			default:
				return nil, 0, fmt.Errorf("upstream login: authentication plugin %q is not supported (use mysql_native_password or caching_sha2_password)", plugin)
			}
			if err := pc.write(scramble(plugin, req.password, nonce)); err != nil {
				return nil, 0, err
			}
		case headerAuthMore:
			if plugin != pluginCachingSHA2 || len(p) < 2 {
				return nil, 0, errors.New("upstream login: unexpected AuthMoreData")
			}
			switch p[1] {
			case fastAuthSuccess: // the OK follows
			case performFullAuth:
				if err := pc.write([]byte{requestPublicKey}); err != nil {
					return nil, 0, err
				}
				k, err := pc.read()
				if err != nil {
					return nil, 0, err
				}
				if len(k) < 2 || k[0] != headerAuthMore {
					if len(k) > 0 && k[0] == headerERR {
						return nil, 0, parseERR(k)
					}
					return nil, 0, errors.New("upstream login: no public key")
				}
				enc, err := encryptPassword(k[1:], req.password, nonce)
				if err != nil {
					return nil, 0, err
				}
				if err := pc.write(enc); err != nil {
					return nil, 0, err
				}
			default:
				return nil, 0, errors.New("upstream login: unexpected AuthMoreData")
			}
		default:
			return nil, 0, errors.New("upstream login: unexpected packet")
		}
	}
}

// scramble computes a plugin's answer to nonce (the first 20 bytes).
func scramble(plugin, password string, nonce []byte) []byte {
	if password == "" {
		return nil
	}
	if len(nonce) > nonceLen {
		nonce = nonce[:nonceLen]
	}
	if plugin == pluginCachingSHA2 {
		// SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) ‖ nonce)
		m1 := sha256.Sum256([]byte(password))
		m2 := sha256.Sum256(m1[:])
		h := sha256.New()
		h.Write(m2[:])
		h.Write(nonce)
		m3 := h.Sum(nil)
		for i := range m1 {
			m1[i] ^= m3[i]
		}
		return m1[:]
	}
	// mysql_native_password: SHA1(pw) XOR SHA1(nonce ‖ SHA1(SHA1(pw)))
	s1 := sha1.Sum([]byte(password))
	s2 := sha1.Sum(s1[:])
	h := sha1.New()
	h.Write(nonce)
	h.Write(s2[:])
	s3 := h.Sum(nil)
	for i := range s1 {
		s1[i] ^= s3[i]
	}
	return s1[:]
}

// encryptPassword is caching_sha2_password's full authentication without
// TLS: (password NUL) XOR the nonce, RSA-OAEP (SHA-1) encrypted to the
// server's PEM public key.
func encryptPassword(pemKey []byte, password string, nonce []byte) ([]byte, error) {
	block, _ := pem.Decode(pemKey)
	if block == nil {
		return nil, errors.New("upstream login: the server's public key is not PEM")
	}
	var pub *rsa.PublicKey
	if k, err := x509.ParsePKIXPublicKey(block.Bytes); err == nil {
		pub, _ = k.(*rsa.PublicKey)
	} else if k, err := x509.ParsePKCS1PublicKey(block.Bytes); err == nil {
		pub = k
	}
	if pub == nil || len(nonce) == 0 {
		return nil, errors.New("upstream login: the server's public key is not an RSA key")
	}
	plain := append([]byte(password), 0)
	for i := range plain {
		plain[i] ^= nonce[i%len(nonce)]
	}
	return rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, plain, nil)
}

// okStatus reads an OK packet's (or, with CLIENT_DEPRECATE_EOF, an OK
// packet with the EOF header's) affected rows and status flags.
func okStatus(p []byte) (affected uint64, status uint16, ok bool) {
	if len(p) < 1 {
		return 0, 0, false
	}
	rest := p[1:]
	affected, k, ok := readLenenc(rest)
	if !ok {
		return 0, 0, false
	}
	rest = rest[k:]
	_, k, ok = readLenenc(rest)
	if !ok || len(rest) < k+2 {
		return 0, 0, false
	}
	return affected, binary.LittleEndian.Uint16(rest[k:]), true
}
