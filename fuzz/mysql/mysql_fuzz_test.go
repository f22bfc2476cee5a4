package mysql

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/netio/netiotest"
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

// fuzzPolicy allows every token from loopback and registers main and
// ci_test as test databases, so that a test token reaches the command phase
// of the captured sessions (which select main).
type fuzzPolicy struct{}

func (fuzzPolicy) AllowedFrom(_ core.TokenID, addr netip.Addr) bool { return addr.IsLoopback() }

func (fuzzPolicy) IsTestDatabase(name []byte) bool {
	return string(name) == "main" || string(name) == "ci_test"
}

// FuzzSession runs arbitrary bytes through a session, as a TLS connection
// and as a plaintext loopback one, with a live token and with a test token
// (behind the policy: IP allowlist, test databases): no panic, no more
// consumed than given, every reply a whole packet. A session left
// authenticated is then ended from outside (Terminate), whose packet must
// be whole too, and it reads nothing more.
func FuzzSession(f *testing.F) {
	now := time.Now()
	ring := core.GenerateKeyring(now.Add(-time.Hour))
	mint := func(typ core.TokenType, flags core.Flags) []byte {
		tok, _, err := core.NewMinter(ring).Mint(nil, core.Claims{Type: typ, ID: core.NewTokenID(), Account: 1,
			IssuedAt: now.Add(-time.Minute).Unix(), ExpiresAt: now.Add(time.Hour).Unix(), Scopes: 1 << core.ScopeDatabaseRead, Flags: flags})
		if err != nil {
			f.Fatal(err)
		}
		return tok
	}
	live, test := mint(core.TypeLive, 0), mint(core.TypeTest, core.FlagTestOnly|core.FlagIPPolicy)
	key, err := mysql.LoadOrGenerateKey(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	p, err := mysql.New(mysql.Options{Key: key, TLS: true, Policy: fuzzPolicy{}})
	if err != nil {
		f.Fatal(err)
	}
	revs := core.NewMemoryRevocations()
	env := &netio.Env{Verifier: core.NewVerifier(ring, revs), Now: now, MaxPreAuthMessage: 16 << 10, MaxMessage: 1 << 20, Observer: netiotest.NopObserver{}}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, tok := range [][]byte{live, test} {
			in := bytes.ReplaceAll(b, placeholder, tok)
			for _, info := range []*netio.ConnInfo{
				{Remote: netip.MustParseAddrPort("127.0.0.1:1"), TLS: true},
				{Remote: netip.MustParseAddrPort("127.0.0.1:1"), PlaintextOK: true},
			} {
				runSession(t, p, env, info, in)
			}
		}
	})
}

// runSession feeds in to a new session as a transport would, then ends it
// from outside when it is still authenticated.
func runSession(t *testing.T, p *mysql.Protocol, env *netio.Env, info *netio.ConnInfo, in []byte) {
	s := p.NewSession(info)
	checkPackets(t, s.Start(env, nil))
	for len(in) > 0 {
		n, out, act := s.Handle(env, in, nil)
		if n > len(in) {
			t.Fatalf("consumed %d of %d", n, len(in))
		}
		checkPackets(t, out)
		if n == 0 || act != netio.Continue {
			return
		}
		in = in[n:]
	}
	c := s.Claims()
	if c == nil {
		return
	}
	if s.Authenticated() != (c != nil) {
		t.Fatal("claims without authentication")
	}
	checkPackets(t, s.Terminate(core.ErrRevoked, nil))
	if _, _, act := s.Handle(env, []byte{1, 0, 0, 0, 0x0e}, nil); act != netio.Close || s.Authenticated() {
		t.Fatal("a terminated session went on")
	}
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
