// Package pgfuzz fuzzes the PostgreSQL front end's session: arbitrary bytes,
// cut into arbitrary pieces, must never panic, never consume more than they
// were given, and only ever produce well-framed backend messages.
package pgfuzz

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/netio/netiotest"
	"github.com/heliosdb/auth/protocols/postgres"
)

var now = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// fixedRing has a fixed key so that the committed seeds' token stays valid.
func fixedRing() *core.Keyring {
	k := core.Key{ID: 3}
	for i := range k.Secret {
		k.Secret[i] = byte(i * 7)
	}
	ring, err := core.NewKeyring(3, k)
	if err != nil {
		panic(err)
	}
	return ring
}

func seedToken(scopes core.ScopeSet) []byte {
	var id core.TokenID
	copy(id[:], "pg-fuzz-seed")
	tok, _, err := core.NewMinter(fixedRing()).Mint(nil, core.Claims{Type: core.TypeLive, ID: id, Account: 9,
		IssuedAt: now.Add(-time.Hour).Unix(), ExpiresAt: now.Add(24 * 365 * time.Hour).Unix(), Scopes: scopes})
	if err != nil {
		panic(err)
	}
	return tok
}

func startup() []byte {
	b := []byte{0, 0, 0, 0, 0, 3, 0, 0}
	b = append(b, "user\x00default\x00database\x00main\x00\x00"...)
	binary.BigEndian.PutUint32(b, uint32(len(b)))
	return b
}

func msg(typ byte, body ...[]byte) []byte {
	b := []byte{typ, 0, 0, 0, 0}
	for _, p := range body {
		b = append(b, p...)
	}
	binary.BigEndian.PutUint32(b[1:], uint32(len(b)-1))
	return b
}

func cstr(s string) []byte { return append([]byte(s), 0) }

func login(scopes core.ScopeSet) []byte {
	return append(startup(), msg('p', append(seedToken(scopes), 0))...)
}

// Seeds returns the inputs the corpus starts from.
func Seeds() [][]byte {
	full := login(core.AllScopes)
	ext := append([]byte(nil), full...)
	ext = append(ext, msg('P', cstr("s"), cstr("SELECT 1"), []byte{0, 0})...)
	ext = append(ext, msg('D', []byte{'S'}, cstr("s"))...)
	ext = append(ext, msg('B', cstr(""), cstr("s"), []byte{0, 0, 0, 0, 0, 1, 0, 1})...)
	ext = append(ext, msg('E', cstr(""), []byte{0, 0, 0, 0})...)
	ext = append(ext, msg('C', []byte{'S'}, cstr("s"))...)
	ext = append(ext, msg('S')...)
	return [][]byte{
		{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f},
		append([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30}, full...),
		{0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 1, 0, 0, 0, 2},
		{0x40, 0, 0, 0, 0, 3, 0, 0},
		startup(),
		append(append([]byte(nil), full...), msg('Q', cstr("SELECT 1; show server_version; SELECT * FROM helios_whoami()"))...),
		append(append([]byte(nil), full...), msg('Q', cstr("/* x */ -- y\n select version(); DROP TABLE t"))...),
		append(login(core.ScopeSet(0).With(core.ScopeBillingRead)), msg('Q', cstr("SELECT current_user"))...),
		ext,
		append(startup(), msg('p', cstr("hdb_live_not-a-token"))...),
		[]byte("GET / HTTP/1.1\r\n\r\n"),
	}
}

func FuzzSession(f *testing.F) {
	for i, s := range Seeds() {
		f.Add(s, byte(i*37))
	}
	ring := fixedRing()
	proto := postgres.New(postgres.Options{})
	f.Fuzz(func(t *testing.T, data []byte, mode byte) {
		info := &netio.ConnInfo{PlaintextOK: mode&1 == 0, TLS: mode&2 != 0, TLSAvailable: mode&0x80 == 0, ID: 1}
		env := &netio.Env{Verifier: core.NewVerifier(ring, nil), Now: now, MaxPreAuthMessage: 1 << 10, MaxMessage: 1 << 16, Observer: netiotest.NopObserver{}}
		sess := proto.NewSession(info)
		out := sess.Start(env, nil)
		chunk := int(mode>>2&0x1f) + 1
		var in []byte
		closed := false
		for off := 0; off < len(data) && !closed; off += chunk {
			in = append(in, data[off:min(off+chunk, len(data))]...)
			for len(in) > 0 {
				n, o, act := sess.Handle(env, in, out[:0])
				if n < 0 || n > len(in) {
					t.Fatalf("consumed %d of %d", n, len(in))
				}
				checkFraming(t, o)
				in = in[n:]
				if act == netio.Close {
					closed = true
					break
				}
				if act == netio.UpgradeTLS {
					info.TLS = true
				}
				if n == 0 {
					break
				}
			}
		}
		_ = sess.LimitError(netio.LimitIdleTimeout, nil)
	})
}

// checkFraming requires o to be whole backend messages, after any single
// 'N' bytes (GSSENCRequest answers; the server sends no NoticeResponse) and
// a final lone 'S' (the SSLRequest answer).
func checkFraming(t *testing.T, o []byte) {
	for len(o) > 0 && o[0] == 'N' {
		o = o[1:]
	}
	if len(o) == 1 && o[0] == 'S' {
		return
	}
	for len(o) > 0 {
		if len(o) < 5 {
			t.Fatalf("truncated message %q", o)
		}
		n := int(binary.BigEndian.Uint32(o[1:]))
		if n < 4 || n+1 > len(o) {
			t.Fatalf("bad length %d in %q", n, o)
		}
		o = o[n+1:]
	}
}
