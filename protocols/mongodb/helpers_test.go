package mongodb

import (
	"encoding/binary"
	"hash/crc32"
	"net/netip"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/netio/netiotest"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// testRing is one keyring for the package's tests.
var testRing = core.GenerateKeyring(time.Now())

// mint returns a live token with scopes that expires after ttl.
func mint(t testing.TB, scopes core.ScopeSet, ttl time.Duration) string {
	t.Helper()
	now := time.Now()
	issued := now.Add(-time.Hour)
	tok, _, err := core.NewMinter(testRing).Mint(nil, core.Claims{
		Type: core.TypeLive, ID: core.NewTokenID(), Account: 7,
		IssuedAt: issued.Unix(), ExpiresAt: now.Add(ttl).Unix(), Scopes: scopes,
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

// recorder is an Observer that remembers what it saw.
type recorder struct {
	auths    []error
	refused  []netio.Outcome
	verified []bool // the observer was given the claims
}

func (r *recorder) Authenticated(_ *netio.ConnInfo, c *core.Claims, err error, _ time.Time) {
	r.auths = append(r.auths, err)
	r.verified = append(r.verified, c != nil)
}
func (r *recorder) Refused(_ *netio.ConnInfo, o netio.Outcome) { r.refused = append(r.refused, o) }
func (r *recorder) Limit(netio.Limit)                          {}

func newEnv(revs core.RevocationView, obs netio.Observer) *netio.Env {
	if obs == nil {
		obs = netiotest.NopObserver{}
	}
	return &netio.Env{Verifier: core.NewVerifier(testRing, revs), Now: time.Now(), Observer: obs}
}

func newSession(plaintextOK bool) *Session {
	info := &netio.ConnInfo{Remote: netip.MustParseAddrPort("10.1.2.3:5555"), PlaintextOK: plaintextOK, ID: 42}
	return New(Options{}).NewSession(info).(*Session)
}

// opMsg encodes an OP_MSG with one kind-0 body.
func opMsg(t testing.TB, reqID int32, flags uint32, doc any) []byte {
	t.Helper()
	body, err := bson.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 16, 64+len(body))
	binary.LittleEndian.PutUint32(b[4:], uint32(reqID))
	binary.LittleEndian.PutUint32(b[12:], uint32(OpMsg))
	b = binary.LittleEndian.AppendUint32(b, flags)
	b = append(b, 0)
	b = append(b, body...)
	if flags&FlagChecksumPresent != 0 {
		binary.LittleEndian.PutUint32(b, uint32(len(b)+4))
		b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	}
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	return b
}

// opQuery encodes an OP_QUERY on ns.
func opQuery(t testing.TB, reqID int32, ns string, doc any) []byte {
	t.Helper()
	body, err := bson.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 16, 64+len(body))
	binary.LittleEndian.PutUint32(b[4:], uint32(reqID))
	binary.LittleEndian.PutUint32(b[12:], uint32(OpQuery))
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = append(b, ns...)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 0xffffffff)
	b = append(b, body...)
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	return b
}

// reply decodes one reply (OP_MSG or OP_REPLY) and returns its header and
// document, checking that it fills b exactly.
func reply(t testing.TB, b []byte) (Header, bson.Raw) {
	t.Helper()
	h, ok := ReadHeader(b)
	if !ok || int(h.MessageLength) != len(b) {
		t.Fatalf("reply framing: %d bytes, header %+v", len(b), h)
	}
	var doc []byte
	switch h.OpCode {
	case OpMsg:
		doc = b[16+5:]
	case OpReply:
		doc = b[16+20:]
	default:
		t.Fatalf("reply opcode %d", h.OpCode)
	}
	if err := ValidateDocument(doc); err != nil {
		t.Fatalf("reply document: %v", err)
	}
	return h, bson.Raw(doc)
}

// roundTrip feeds msg to s and returns the reply document and action.
func roundTrip(t testing.TB, s *Session, env *netio.Env, msg []byte) (bson.Raw, netio.Action) {
	t.Helper()
	n, out, act := s.Handle(env, msg, nil)
	if n != len(msg) {
		t.Fatalf("consumed %d of %d", n, len(msg))
	}
	if len(out) == 0 {
		return nil, act
	}
	_, doc := reply(t, out)
	return doc, act
}

// code returns a reply's error code (0 when ok).
func code(doc bson.Raw) int32 {
	v, ok := doc.Lookup("code").Int32OK()
	if !ok {
		return 0
	}
	return v
}

func errmsg(doc bson.Raw) string {
	s, _ := doc.Lookup("errmsg").StringValueOK()
	return s
}

// plainStart is the saslStart a driver sends for PLAIN.
func plainStart(token string) bson.D {
	return bson.D{{Key: "saslStart", Value: 1}, {Key: "mechanism", Value: "PLAIN"},
		{Key: "payload", Value: bson.Binary{Data: []byte("\x00default\x00" + token)}},
		{Key: "autoAuthorize", Value: 1}, {Key: "$db", Value: "$external"}}
}
