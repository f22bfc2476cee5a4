package mysql

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/netio/netiotest"
	"github.com/heliosdb/auth/protocols/mysql"
)

// FuzzFastAuth: once a token has passed full authentication from an
// address, a later connection from there is authenticated by its fast-auth
// scramble if and only if the scramble is exactly the token's for that
// connection's nonce. The input is XORed onto the right scramble (an input
// of another length than 32 is sent as the scramble itself), so the fuzzer
// explores near misses as well as arbitrary bytes.
func FuzzFastAuth(f *testing.F) {
	f.Add(make([]byte, 32))
	f.Add(append(make([]byte, 31), 1))
	f.Add([]byte{})
	f.Add(make([]byte, 20))
	f.Add(bytes.Repeat([]byte{0xff}, 33))
	now := time.Now()
	ring := core.GenerateKeyring(now.Add(-time.Hour))
	tok, _, err := core.NewMinter(ring).Mint(nil, core.Claims{Type: core.TypeLive, ID: core.NewTokenID(), Account: 1,
		IssuedAt: now.Add(-time.Minute).Unix(), ExpiresAt: now.Add(time.Hour).Unix(), Scopes: core.AllScopes})
	if err != nil {
		f.Fatal(err)
	}
	key, err := mysql.LoadOrGenerateKey(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	p, err := mysql.New(mysql.Options{Key: key, TLS: true})
	if err != nil {
		f.Fatal(err)
	}
	env := &netio.Env{Verifier: core.NewVerifier(ring, nil), Now: now, MaxPreAuthMessage: 16 << 10, MaxMessage: 1 << 20, Observer: netiotest.NopObserver{}}
	// The first connection: full authentication inside TLS.
	s := p.NewSession(&netio.ConnInfo{Remote: netip.MustParseAddrPort("192.0.2.1:1000"), TLS: true})
	s.Start(env, nil)
	s.Handle(env, packet(1, handshakeResponse(make([]byte, 32))), nil)
	if _, out, _ := s.Handle(env, packet(3, append(append([]byte(nil), tok...), 0)), nil); !s.Authenticated() {
		f.Fatalf("full authentication: %q", out)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := p.NewSession(&netio.ConnInfo{Remote: netip.MustParseAddrPort("192.0.2.1:1001"), PlaintextOK: true})
		nonce := greetingNonce(s.Start(env, nil))
		scramble, right := b, false
		if len(b) == 32 {
			scramble = scrambleSHA256(tok, nonce)
			right = true
			for i := range scramble {
				scramble[i] ^= b[i]
				right = right && b[i] == 0
			}
		}
		_, out, _ := s.Handle(env, packet(1, handshakeResponse(scramble)), nil)
		fast := bytes.HasPrefix(out, []byte{2, 0, 0, 2, 1, 3})
		if s.Authenticated() != right || fast != right {
			t.Fatalf("scramble %x (right: %v): authenticated %v, reply %x", scramble, right, s.Authenticated(), out)
		}
		checkPackets(t, out)
	})
}

// packet frames payload with sequence id seq.
func packet(seq byte, payload []byte) []byte {
	return append([]byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), seq}, payload...)
}

// handshakeResponse is a HandshakeResponse41 from user default offering
// caching_sha2_password with the given scramble.
func handshakeResponse(scramble []byte) []byte {
	const caps = mysql.ClientLongPassword | mysql.ClientProtocol41 | mysql.ClientSecureConnection |
		mysql.ClientPluginAuth | mysql.ClientPluginAuthLenencData | mysql.ClientConnectWithDB
	b := binary.LittleEndian.AppendUint32(nil, caps)
	b = binary.LittleEndian.AppendUint32(b, 1<<24)
	b = append(b, 45)
	b = append(b, make([]byte, 23)...)
	b = append(b, "default\x00"...)
	b = append(b, byte(len(scramble)))
	b = append(b, scramble...)
	return append(b, "main\x00caching_sha2_password\x00"...)
}

// greetingNonce returns the 20-byte nonce of a HandshakeV10 packet.
func greetingNonce(g []byte) []byte {
	p := g[4:]
	i := bytes.IndexByte(p[1:], 0) + 2 + 4
	n := append([]byte(nil), p[i:i+8]...)
	return append(n, p[i+8+1+2+1+2+2+1+10:][:12]...)
}

// scrambleSHA256 is the client's fast-auth scramble of pw for nonce.
func scrambleSHA256(pw, nonce []byte) []byte {
	s1 := sha256.Sum256(pw)
	s2 := sha256.Sum256(s1[:])
	m := sha256.Sum256(append(s2[:], nonce...))
	for i := range s1 {
		s1[i] ^= m[i]
	}
	return s1[:]
}
