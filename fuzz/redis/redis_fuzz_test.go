package redis

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/netio/netiotest"
	"github.com/heliosdb/auth/protocols/redis"
)

// placeholder is the redacted token in the seed corpus (88 bytes, a live
// token's length).
var placeholder = append([]byte("hdb_live_REDACTED"), bytes.Repeat([]byte("0"), 71)...)

// FuzzReadCommand parses arbitrary bytes as a stream of commands: no panic,
// no read past the input, and a parsed command re-encoded as multibulk
// parses back to the same arguments.
func FuzzReadCommand(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		var argsbuf [][]byte
		for in := b; len(in) > 0; {
			args, n, _, err := redis.ReadCommand(in, argsbuf, 1<<20)
			if err != nil || n == 0 {
				return
			}
			if n > len(in) {
				t.Fatalf("n = %d > %d", n, len(in))
			}
			total := 0
			for _, a := range args {
				total += len(a)
			}
			if total > n {
				t.Fatalf("arguments (%d bytes) larger than the command (%d)", total, n)
			}
			var enc []byte
			enc = redis.AppendArray(enc, len(args))
			for _, a := range args {
				enc = redis.AppendBulk(enc, a)
			}
			again, m, _, err := redis.ReadCommand(enc, nil, 1<<30)
			if len(args) > 0 && (err != nil || m != len(enc) || len(again) != len(args)) {
				t.Fatalf("re-encoded command did not parse back: %v %d/%d", err, m, len(enc))
			}
			for i := range again {
				if !bytes.Equal(again[i], args[i]) {
					t.Fatalf("argument %d: %q != %q", i, again[i], args[i])
				}
			}
			argsbuf = args[:0]
			in = in[n:]
		}
	})
}

// FuzzSession runs arbitrary bytes through a session, over TLS and as a
// plaintext client that must use TLS: no panic, every reply a whole RESP
// line sequence, no more consumed than given, and no error reply quoting
// the token.
func FuzzSession(f *testing.F) {
	now := time.Now()
	ring := core.GenerateKeyring(now.Add(-time.Hour))
	tok, _, err := core.NewMinter(ring).Mint(nil, core.Claims{Type: core.TypeLive, ID: core.NewTokenID(), Account: 1,
		IssuedAt: now.Add(-time.Minute).Unix(), ExpiresAt: now.Add(time.Hour).Unix(), Scopes: 1 << core.ScopeDatabaseRead})
	if err != nil {
		f.Fatal(err)
	}
	env := &netio.Env{Verifier: core.NewVerifier(ring, nil), Now: now, MaxPreAuthMessage: 16 << 10, MaxMessage: 1 << 20, Observer: netiotest.NopObserver{}}
	p := redis.New(redis.Options{})
	f.Fuzz(func(t *testing.T, b []byte) {
		b = bytes.ReplaceAll(b, placeholder, tok)
		for _, info := range []*netio.ConnInfo{
			{Remote: netip.MustParseAddrPort("127.0.0.1:1"), TLS: true},
			{Remote: netip.MustParseAddrPort("192.0.2.1:1")},
		} {
			s := p.NewSession(info)
			for in := b; len(in) > 0; {
				n, out, act := s.Handle(env, in, nil)
				if n > len(in) {
					t.Fatalf("consumed %d of %d", n, len(in))
				}
				if len(out) > 0 && !bytes.HasSuffix(out, []byte("\r\n")) {
					t.Fatalf("bad reply %q", out)
				}
				for _, line := range bytes.Split(out, []byte("\r\n")) {
					if len(line) > 0 && line[0] == '-' && bytes.Contains(line, tok) {
						t.Fatalf("error reply quotes the token: %q", line)
					}
				}
				if n == 0 || act == netio.Close {
					break
				}
				in = in[n:]
			}
		}
	})
}
