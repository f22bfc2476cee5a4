package mysql

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/mysql"
)

// placeholder is the redacted token in the seed corpus.
var placeholder = append([]byte("hdb_live_REDACTED"), bytes.Repeat([]byte("0"), 71)...)

// FuzzReadPacket reads arbitrary bytes as a stream of packets: no panic, no
// read past the input, a payload never above the limit.
func FuzzReadPacket(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		for in := b; len(in) > 0; {
			payload, _, n, err := mysql.ReadPacket(in, 1<<20)
			if err != nil || n == 0 {
				return
			}
			if n > len(in) || len(payload) != n-4 || len(payload) > 1<<20 {
				t.Fatalf("n=%d payload=%d input=%d", n, len(payload), len(in))
			}
			in = in[n:]
		}
	})
}

// FuzzHandshakeResponse parses arbitrary payloads as a HandshakeResponse41:
// no panic, and every field a view inside the payload.
func FuzzHandshakeResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		var r mysql.HandshakeResponse41
		if r.Decode(b) != nil {
			return
		}
		total := len(r.Username) + len(r.AuthResponse) + len(r.Database) + len(r.AuthPlugin)
		if total+32 > len(b) {
			t.Fatalf("fields (%d bytes) do not fit in the %d-byte payload", total, len(b))
		}
	})
}

// FuzzSession runs arbitrary bytes through a session, as a TLS connection
// and as a plaintext loopback one: no panic, no more consumed than given,
// every reply a whole packet.
func FuzzSession(f *testing.F) {
	now := time.Now()
	ring := core.GenerateKeyring(now.Add(-time.Hour))
	tok, _, err := core.NewMinter(ring).Mint(nil, core.Claims{Type: core.TypeLive, ID: core.NewTokenID(), Account: 1,
		IssuedAt: now.Add(-time.Minute).Unix(), ExpiresAt: now.Add(time.Hour).Unix(), Scopes: 1 << core.ScopeDatabaseRead})
	if err != nil {
		f.Fatal(err)
	}
	key, err := mysql.LoadOrGenerateKey(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	p, err := mysql.New(mysql.Config{Key: key, TLS: true})
	if err != nil {
		f.Fatal(err)
	}
	env := &netio.Env{Verifier: core.NewVerifier(ring, nil), Now: now, MaxPreAuthMessage: 16 << 10, MaxMessage: 1 << 20, Observer: netio.NopObserver{}}
	f.Fuzz(func(t *testing.T, b []byte) {
		b = bytes.ReplaceAll(b, placeholder, tok)
		for _, info := range []*netio.ConnInfo{
			{Remote: netip.MustParseAddrPort("127.0.0.1:1"), TLS: true},
			{Remote: netip.MustParseAddrPort("127.0.0.1:1"), PlaintextOK: true},
		} {
			s := p.NewSession(info)
			checkPackets(t, s.Start(env, nil))
			for in := b; len(in) > 0; {
				n, out, act := s.Handle(env, in, nil)
				if n > len(in) {
					t.Fatalf("consumed %d of %d", n, len(in))
				}
				checkPackets(t, out)
				if n == 0 || act != netio.Continue {
					break
				}
				in = in[n:]
			}
		}
	})
}

// checkPackets checks that out is a sequence of whole packets.
func checkPackets(t *testing.T, out []byte) {
	for len(out) > 0 {
		_, _, n, err := mysql.ReadPacket(out, 1<<24)
		if err != nil || n == 0 {
			t.Fatalf("bad reply framing: %x", out)
		}
		out = out[n:]
	}
}
