package mysql

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/protocols/internal/upstream"
)

// TestHandshakeCachingSHA2 logs in with the gateway's client handshake to
// a caching_sha2_password server (the gateway's own front end, which real
// clients are tested against): full authentication with the RSA key
// exchange first, then the fast path (01 03) on the next connection, and
// 1045 for a wrong password.
func TestHandshakeCachingSHA2(t *testing.T) {
	_, addr, tok := gateway(t, 1)
	login := func(pw string, caps uint32) (uint16, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, status, err := handshake(c, loginRequest{user: "default", password: pw, caps: caps, charset: 45})
		if err == nil {
			// The connection works: SELECT 1 through the session.
			if _, err := roundTripQuery(c, "SELECT 1"); err != nil {
				t.Fatalf("after the login: %v", err)
			}
		}
		return status, err
	}
	misses, hits := fastAuthMisses.Get(), fastAuthHits.Get()
	if st, err := login(tok, ClientDeprecateEOF); err != nil || st&serverStatusAutocommit == 0 {
		t.Fatalf("full authentication: status %#x, %v", st, err)
	}
	if fastAuthMisses.Get() != misses+1 {
		t.Fatal("the first login was not a full authentication")
	}
	if _, err := login(tok, 0); err != nil {
		t.Fatalf("fast authentication: %v", err)
	}
	if fastAuthHits.Get() != hits+1 {
		t.Fatal("the second login did not take the fast path")
	}
	_, err := login(tok[:len(tok)-2]+"xx", 0)
	var se *serverError
	if !errors.As(err, &se) || se.Code != erAccessDenied {
		t.Fatalf("wrong password: %v", err)
	}
	// A flag the client negotiated that the server does not offer (the
	// built-in responder has no multi-statements) is refused before login.
	if _, err := login(tok, ClientMultiStatements); err == nil || !strings.Contains(err.Error(), "does not offer") {
		t.Fatalf("a flag the server lacks: %v", err)
	}
}

// roundTripQuery sends a COM_QUERY and reads its response up to the end of
// a one-column result set, returning the row's first value.
func roundTripQuery(c net.Conn, q string) (string, error) {
	pc := &packetConn{c: c, r: bufio.NewReader(c)}
	if err := pc.write(append([]byte{comQuery}, q...)); err != nil {
		return "", err
	}
	var val string
	for {
		p, err := pc.read()
		if err != nil {
			return "", err
		}
		switch {
		case p[0] == headerERR:
			return "", parseERR(p)
		case p[0] == headerEOF && len(p) < 9:
			return val, nil
		case len(p) > 1 && int(p[0]) == len(p)-1:
			val = string(p[1:]) // a row of one short string
		}
	}
}

// TestDecodeGreeting reads a MariaDB 10.11 greeting (captured from
// Debian's mariadbd 10.11.19) and the gateway's own.
func TestDecodeGreeting(t *testing.T) {
	mariadb, _ := hex.DecodeString("0a352e352e352d31302e31312e31392d4d6172696144422d302b6465623132753100110000003f546a397a7e2b5500" +
		"fef7080200ff81150000000000001d0000004a56506f5e697224576c3a79006d7973716c5f6e61746976655f70617373776f726400")
	g, err := decodeGreeting(mariadb)
	if err != nil || g.version != "5.5.5-10.11.19-MariaDB-0+deb12u1" || g.threadID != 17 || string(g.nonce) != "?Tj9z~+UJVPo^ir$Wl:y" ||
		g.plugin != pluginNativePassword || g.caps&ClientProtocol41 == 0 || g.caps&ClientDeprecateEOF == 0 || g.charset != 8 {
		t.Fatalf("%+v %v", g, err)
	}
	var nonce [nonceLen]byte
	copy(nonce[:], "01234567890123456789")
	own := (&HandshakeV10{ServerVersion: "8.0.40-HeliosDB", ConnectionID: 3, Nonce: nonce, Capabilities: serverCapabilitiesWithoutSSL}).Encode(nil)
	g, err = decodeGreeting(own[packetHeaderLen:])
	if err != nil || string(g.nonce) != string(nonce[:]) || g.plugin != pluginCachingSHA2 || g.caps != serverCapabilitiesWithoutSSL {
		t.Fatalf("%+v %v", g, err)
	}
	for i := range len(mariadb) - 1 {
		_, _ = decodeGreeting(mariadb[:i]) // no panic on a short greeting
	}
	if _, err := decodeGreeting(AppendERR(nil, 0, erConCount, stateConnectionRejected, "Too many connections")[packetHeaderLen:]); err == nil {
		t.Fatal("an ERR greeting was accepted")
	}
}

// TestUnreachable: a server that refuses the TCP connection makes the
// pool back off; one that answers (a login refused) does not.
func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	u, err := NewUpstream(UpstreamOptions{AdminURL: "mysql://root:pw@" + addr + "/", PasswordsFile: filepath.Join(t.TempDir(), "pw.json")})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	_, err = u.dial(context.Background(), upstream.Key{Role: upstream.Read})
	if err == nil || !unreachable(err) {
		t.Fatalf("a refused connection: %v, unreachable %v", err, unreachable(err))
	}
	if h := u.Health(); h.Reachable || h.Error == "" || h.Address != addr {
		t.Fatalf("health after a refused connection: %+v", h)
	}
	if unreachable(&serverError{Code: erAccessDenied, State: stateInvalidAuthorization, Message: "Access denied"}) {
		t.Fatal("a login the server refused counted as unreachable")
	}
}
