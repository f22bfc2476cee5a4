package mysql

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
)

type recObserver struct {
	outcomes []netio.Outcome
	refused  []netio.Outcome
	verified []bool // the observer was given the claims
}

func (o *recObserver) Authenticated(_ *netio.ConnInfo, c *core.Claims, err error, _ time.Time) {
	o.outcomes = append(o.outcomes, netio.OutcomeOf(err))
	o.verified = append(o.verified, c != nil)
}
func (o *recObserver) Refused(_ *netio.ConnInfo, oc netio.Outcome) { o.refused = append(o.refused, oc) }
func (o *recObserver) Limit(netio.Limit)                           {}

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

func key(t testing.TB) *rsa.PrivateKey {
	keyOnce.Do(func() {
		k, err := LoadOrGenerateKey(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		testKey = k
	})
	return testKey
}

type fixture struct {
	p    *Protocol
	env  *netio.Env
	obs  *recObserver
	mint *core.Minter
	now  time.Time
}

func newFixture(t testing.TB) *fixture {
	now := time.Now()
	ring := core.GenerateKeyring(now.Add(-time.Hour))
	obs := &recObserver{}
	p, err := New(Options{Key: key(t), TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{p: p, obs: obs, mint: core.NewMinter(ring), now: now,
		env: &netio.Env{Verifier: core.NewVerifier(ring, nil), Now: now, MaxPreAuthMessage: 16 << 10, MaxMessage: 16 << 20, Observer: obs}}
}

func (f *fixture) token(t testing.TB, scopes core.ScopeSet, ttl time.Duration) string {
	tok, _, err := f.mint.Mint(nil, core.Claims{Type: core.TypeLive, ID: core.NewTokenID(), Account: 7,
		IssuedAt: f.now.Add(-2 * time.Hour).Unix(), ExpiresAt: f.now.Add(ttl).Unix(), Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

func pkt(seq byte, payload []byte) []byte {
	return append([]byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), seq}, payload...)
}

const clientCaps = ClientLongPassword | ClientProtocol41 | ClientSecureConnection | ClientPluginAuth |
	ClientPluginAuthLenencData | ClientConnectWithDB | ClientTransactions | ClientMultiResults

func handshakeResponse(caps uint32, user, plugin string, auth []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, caps)
	b = binary.LittleEndian.AppendUint32(b, 1<<24)
	b = append(b, 45)
	b = append(b, make([]byte, 23)...)
	b = append(append(b, user...), 0)
	b = append(appendLenenc(b, uint64(len(auth))), auth...)
	b = append(b, "main\x00"...)
	return append(append(b, plugin...), 0)
}

func sslRequest(caps uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, caps|ClientSSL)
	b = binary.LittleEndian.AppendUint32(b, 1<<24)
	b = append(b, 45)
	return append(b, make([]byte, 23)...)
}

// conn drives one session, as a transport does.
type conn struct {
	t    *testing.T
	f    *fixture
	s    *Session
	info *netio.ConnInfo
	hs   []byte // the greeting
}

func newConn(t *testing.T, f *fixture, info *netio.ConnInfo) *conn {
	s := f.p.NewSession(info).(*Session)
	return &conn{t: t, f: f, s: s, info: info, hs: s.Start(f.env, nil)}
}

// send feeds in and returns the packets written (payloads) and the action.
func (c *conn) send(in []byte) ([][]byte, netio.Action) {
	c.t.Helper()
	n, out, act := c.s.Handle(c.f.env, in, nil)
	if act != netio.UpgradeTLS && n != len(in) {
		c.t.Fatalf("consumed %d of %d", n, len(in))
	}
	var pkts [][]byte
	for len(out) > 0 {
		p, _, k, err := ReadPacket(out, 1<<24)
		if err != nil || k == 0 {
			c.t.Fatalf("bad output %x", out)
		}
		pkts = append(pkts, p)
		out = out[k:]
	}
	return pkts, act
}

func (c *conn) nonce() []byte {
	p, _, _, _ := ReadPacket(c.hs, 1<<20)
	i := bytes.IndexByte(p[1:], 0) + 2 + 4
	n := append([]byte(nil), p[i:i+8]...)
	j := i + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10
	return append(n, p[j:j+12]...)
}

func errCode(p []byte) (uint16, string) {
	if len(p) < 9 || p[0] != 0xff {
		return 0, ""
	}
	return binary.LittleEndian.Uint16(p[1:]), string(p[3:])
}

func TestGreeting(t *testing.T) {
	f := newFixture(t)
	c := newConn(t, f, &netio.ConnInfo{ID: 9, PlaintextOK: true})
	p, seq, _, _ := ReadPacket(c.hs, 1<<20)
	if seq != 0 || p[0] != 10 || !bytes.HasSuffix(p, []byte("caching_sha2_password\x00")) {
		t.Fatalf("greeting %q", p)
	}
	i := bytes.IndexByte(p[1:], 0) + 2
	if binary.LittleEndian.Uint32(p[i:]) != 9 {
		t.Fatal("connection id")
	}
	lo := binary.LittleEndian.Uint16(p[i+4+9:])
	hi := binary.LittleEndian.Uint16(p[i+4+9+2+1+2:])
	caps := uint32(lo) | uint32(hi)<<16
	for _, want := range []uint32{ClientLongPassword, ClientProtocol41, ClientSSL, ClientSecureConnection, ClientPluginAuth, ClientConnectAttrs, ClientPluginAuthLenencData, ClientConnectWithDB, ClientDeprecateEOF} {
		if caps&want == 0 {
			t.Fatalf("capability %#x missing from %#x", want, caps)
		}
	}
	if n := c.nonce(); len(n) != 20 || bytes.IndexByte(n, 0) >= 0 {
		t.Fatalf("nonce %q", n)
	}
}

func TestTLSFullAuth(t *testing.T) {
	f := newFixture(t)
	c := newConn(t, f, &netio.ConnInfo{})
	clientHello := []byte{0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5}
	in := append(pkt(1, sslRequest(clientCaps)), clientHello...)
	n, out, act := c.s.Handle(f.env, in, nil)
	if act != netio.UpgradeTLS || n != 36 || len(out) != 0 {
		t.Fatalf("SSLRequest: n=%d act=%v out=%x", n, act, out)
	}
	c.info.TLS = true
	pk, act := c.send(pkt(2, handshakeResponse(clientCaps|ClientSSL, "default", "caching_sha2_password", make([]byte, 32))))
	if act != netio.Continue || len(pk) != 1 || !bytes.Equal(pk[0], []byte{1, 4}) {
		t.Fatalf("fast auth reply %x", pk)
	}
	tok := f.token(t, core.AllScopes, time.Hour)
	pk, _ = c.send(pkt(4, append([]byte(tok), 0)))
	if len(pk) != 1 || pk[0][0] != 0 || !c.s.Authenticated() {
		t.Fatalf("token reply %x", pk)
	}
	// SELECT 1 without DEPRECATE_EOF: count, column, EOF, row, EOF.
	pk, _ = c.send(pkt(0, []byte("\x03SELECT 1")))
	if len(pk) != 5 || !bytes.Equal(pk[0], []byte{1}) || pk[2][0] != 0xfe || !bytes.Equal(pk[3], []byte("\x011")) || pk[4][0] != 0xfe {
		t.Fatalf("SELECT 1: %q", pk)
	}
	pk, _ = c.send(pkt(0, []byte{comPing}))
	if len(pk) != 1 || pk[0][0] != 0 {
		t.Fatalf("ping %x", pk)
	}
	if pk, act = c.send(pkt(0, []byte{comQuit})); act != netio.Close || len(pk) != 0 {
		t.Fatalf("quit %x %v", pk, act)
	}
	if len(f.obs.outcomes) != 1 || f.obs.outcomes[0] != netio.OutcomeOK {
		t.Fatalf("outcomes %v", f.obs.outcomes)
	}
}

func TestRSAFullAuth(t *testing.T) {
	f := newFixture(t)
	c := newConn(t, f, &netio.ConnInfo{PlaintextOK: true})
	caps := clientCaps | ClientDeprecateEOF
	c.send(pkt(1, handshakeResponse(caps, "default", "caching_sha2_password", make([]byte, 32))))
	pk, act := c.send(pkt(3, []byte{2}))
	if len(pk) != 1 || pk[0][0] != 1 {
		t.Fatalf("key reply %q", pk)
	}
	// On an event loop the RSA decryption is moved off the loop.
	if act != netio.Offload {
		t.Fatalf("action after the public key %v, want Offload", act)
	}
	c.info.Offloaded = true // as the transport's goroutine sets it
	blk, _ := pem.Decode(pk[0][1:])
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	tok := f.token(t, 1<<core.ScopeDatabaseRead, time.Hour)
	plain := append([]byte(tok), 0)
	nonce := c.nonce()
	for i := range plain {
		plain[i] ^= nonce[i%len(nonce)]
	}
	enc, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub.(*rsa.PublicKey), plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ = c.send(pkt(5, enc))
	if len(pk) != 1 || pk[0][0] != 0 {
		t.Fatalf("auth reply %q", pk)
	}
	// SELECT 1 with DEPRECATE_EOF: count, column, row, OK with 0xfe.
	pk, _ = c.send(pkt(0, []byte("\x03  select 1 ;")))
	if len(pk) != 4 || pk[3][0] != 0xfe || len(pk[3]) != 7 {
		t.Fatalf("SELECT 1: %q", pk)
	}
	pk, _ = c.send(pkt(0, []byte("\x03SELECT * FROM helios_whoami()")))
	if len(pk) != 7 || !bytes.Contains(pk[5], []byte("database:read")) || !bytes.Contains(pk[5], []byte("tok_")) {
		t.Fatalf("whoami: %q", pk)
	}
	// Scope checks.
	pk, _ = c.send(pkt(0, []byte("\x03INSERT INTO t VALUES (1)")))
	if code, msg := errCode(pk[0]); code != 1142 || !strings.Contains(msg, "#42000INSERT command denied to user 'default'@") || !strings.HasSuffix(msg, "Token does not have required scope: database:write") {
		t.Fatalf("INSERT: %d %q", code, msg)
	}
	pk, _ = c.send(pkt(0, []byte("\x03/* x */ CREATE DATABASE d")))
	if code, msg := errCode(pk[0]); code != 1044 || !strings.Contains(msg, "database:create") {
		t.Fatalf("CREATE DATABASE: %d %q", code, msg)
	}
	pk, _ = c.send(pkt(0, []byte("\x03SELECT * FROM t")))
	if code, msg := errCode(pk[0]); code != 1235 || !strings.Contains(msg, "no upstream") {
		t.Fatalf("SELECT: %d %q", code, msg)
	}
	for _, q := range []string{"SET NAMES utf8mb4", "set autocommit=1", "USE `other`"} {
		pk, _ = c.send(pkt(0, append([]byte{comQuery}, q...)))
		if pk[0][0] != 0 {
			t.Fatalf("%s: %q", q, pk)
		}
	}
	pk, _ = c.send(pkt(0, []byte("\x03SELECT DATABASE()")))
	if !bytes.Equal(pk[2], []byte("\x05other")) {
		t.Fatalf("DATABASE(): %q", pk)
	}
}

func TestAuthSwitchAndFailures(t *testing.T) {
	f := newFixture(t)
	c := newConn(t, f, &netio.ConnInfo{PlaintextOK: true})
	pk, _ := c.send(pkt(1, handshakeResponse(clientCaps, "default", "mysql_native_password", make([]byte, 20))))
	if !bytes.HasPrefix(pk[0], []byte("\xfecaching_sha2_password\x00")) || len(pk[0]) != 1+22+20+1 {
		t.Fatalf("switch %q", pk)
	}
	pk, _ = c.send(pkt(3, make([]byte, 32)))
	if !bytes.Equal(pk[0], []byte{1, 4}) {
		t.Fatalf("after switch %q", pk)
	}
	pk, act := c.send(pkt(5, []byte("hdb_live_nope\x00")))
	if code, msg := errCode(pk[0]); code != 1045 || act != netio.Close || !strings.Contains(msg, "#28000Access denied for user 'default'@") || !strings.Contains(msg, core.MsgInvalid) {
		t.Fatalf("bad token: %d %q", code, msg)
	}
	// Expired, over TLS.
	c = newConn(t, f, &netio.ConnInfo{TLS: true})
	c.send(pkt(2, handshakeResponse(clientCaps, "default", "caching_sha2_password", make([]byte, 32))))
	pk, _ = c.send(pkt(4, []byte(f.token(t, core.AllScopes, -time.Minute)+"\x00")))
	if code, msg := errCode(pk[0]); code != 1045 || !strings.Contains(msg, core.MsgExpired) {
		t.Fatalf("expired: %d %q", code, msg)
	}
	// A plaintext client from an address that must use TLS: 3159 before the token.
	c = newConn(t, f, &netio.ConnInfo{})
	pk, act = c.send(pkt(1, handshakeResponse(clientCaps, "default", "caching_sha2_password", make([]byte, 32))))
	if code, _ := errCode(pk[0]); code != 3159 || act != netio.Close {
		t.Fatalf("plaintext: %q", pk)
	}
	if len(f.obs.refused) != 1 || f.obs.refused[0] != netio.OutcomeTLSRequired {
		t.Fatalf("refused %v", f.obs.refused)
	}
	want := []netio.Outcome{netio.OutcomeInvalid, netio.OutcomeExpired}
	if len(f.obs.outcomes) != 2 || f.obs.outcomes[0] != want[0] || f.obs.outcomes[1] != want[1] {
		t.Fatalf("outcomes %v", f.obs.outcomes)
	}
}

func TestNoScopes(t *testing.T) {
	f := newFixture(t)
	c := newConn(t, f, &netio.ConnInfo{TLS: true})
	c.send(pkt(2, handshakeResponse(clientCaps, "default", "caching_sha2_password", make([]byte, 32))))
	c.send(pkt(4, []byte(f.token(t, 0, time.Hour)+"\x00")))
	pk, _ := c.send(pkt(0, []byte("\x03SELECT 1")))
	if code, msg := errCode(pk[0]); code != 1142 || !strings.Contains(msg, "SELECT command denied") || !strings.Contains(msg, "database:read") {
		t.Fatalf("SELECT 1: %d %q", code, msg)
	}
	pk, _ = c.send(pkt(0, []byte("\x02main")))
	if code, msg := errCode(pk[0]); code != 1044 || !strings.Contains(msg, "to database 'main'") {
		t.Fatalf("INIT_DB: %d %q", code, msg)
	}
	if o := f.obs.outcomes; len(o) != 3 || o[1] != netio.OutcomeForbidden || o[2] != netio.OutcomeForbidden {
		t.Fatalf("outcomes %v", o)
	}
	pk, _ = c.send(pkt(0, []byte("\x03select @@version_comment limit 1")))
	if len(pk) != 5 || !bytes.Contains(pk[3], []byte("HeliosDB")) {
		t.Fatalf("version_comment: %q", pk)
	}
}

func TestBadInput(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		in   []byte
		code uint16
	}{
		{[]byte{0xff, 0xff, 0xff, 1}, 1153}, // 16 MiB+ length prefix
		{[]byte{0x00, 0x50, 0x00, 1}, 1153}, // 20 KiB before authentication
		{pkt(1, []byte("short")), 1043},     // truncated handshake response
		{pkt(1, handshakeResponse(clientCaps, "default", "", nil)[:40]), 1043},
		{pkt(1, handshakeResponse(ClientSecureConnection, "default", "", []byte("x"))), 1251},
		{pkt(1, handshakeResponse(clientCaps, "default", "caching_sha2_password", nil)), 1045},
	}
	for i, tc := range cases {
		c := newConn(t, f, &netio.ConnInfo{PlaintextOK: true})
		pk, act := c.send(tc.in)
		if code, _ := errCode(pk[0]); code != tc.code || act != netio.Close {
			t.Fatalf("case %d: %q %v", i, pk, act)
		}
	}
	// Byte-by-byte delivery waits for whole packets.
	c := newConn(t, f, &netio.ConnInfo{TLS: true})
	in := pkt(2, handshakeResponse(clientCaps, "default", "caching_sha2_password", make([]byte, 32)))
	var buf []byte
	for i := range in {
		buf = append(buf, in[i])
		n, out, _ := c.s.Handle(f.env, buf, nil)
		if i < len(in)-1 && (n != 0 || len(out) != 0) {
			t.Fatalf("partial packet consumed at %d", i)
		}
		if i == len(in)-1 && (n != len(in) || !bytes.Equal(out, pkt(3, []byte{1, 4}))) {
			t.Fatalf("complete packet: n=%d out=%x", n, out)
		}
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadOrGenerateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrGenerateKey(dir)
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("reload: %v", err)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFileName))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", st.Mode(), err)
	}
	os.Chmod(filepath.Join(dir, KeyFileName), 0o644)
	if _, err := LoadOrGenerateKey(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("0644 key accepted: %v", err)
	}
}

func BenchmarkTLSAuthSelect1(b *testing.B) {
	f := newFixture(b)
	info := &netio.ConnInfo{TLS: true}
	resp := pkt(2, handshakeResponse(clientCaps, "default", "caching_sha2_password", make([]byte, 32)))
	tok := pkt(4, []byte(f.token(b, core.AllScopes, time.Hour)+"\x00"))
	q := pkt(0, []byte("\x03SELECT 1"))
	out := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		s := f.p.NewSession(info)
		out = s.Start(f.env, out[:0])
		_, out, _ = s.Handle(f.env, resp, out[:0])
		_, out, _ = s.Handle(f.env, tok, out[:0])
		_, out, _ = s.Handle(f.env, q, out[:0])
	}
}

// BenchmarkRSAAuth is the key-exchange path without TLS: the RSA-2048
// decryption dominates it.
func BenchmarkRSAAuth(b *testing.B) {
	f := newFixture(b)
	info := &netio.ConnInfo{PlaintextOK: true}
	resp := pkt(1, handshakeResponse(clientCaps, "default", "caching_sha2_password", make([]byte, 32)))
	var nonce [nonceLen]byte
	copy(nonce[:], "0123456789abcdefghij")
	plain := append([]byte(f.token(b, core.AllScopes, time.Hour)), 0)
	for i := range plain {
		plain[i] ^= nonce[i%nonceLen]
	}
	enc, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, &key(b).PublicKey, plain, nil)
	if err != nil {
		b.Fatal(err)
	}
	encPkt := pkt(5, enc)
	out := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		s := f.p.NewSession(info).(*Session)
		out = s.Start(f.env, out[:0])
		s.nonce = nonce
		_, out, _ = s.Handle(f.env, resp, out[:0])
		_, out, _ = s.Handle(f.env, pkt(3, []byte{2}), out[:0])
		if _, out, _ = s.Handle(f.env, encPkt, out[:0]); !s.Authenticated() {
			b.Fatalf("not authenticated: %q", out)
		}
	}
}
