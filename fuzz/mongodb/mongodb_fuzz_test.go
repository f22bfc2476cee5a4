package mongodb

import (
	"net/netip"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/policyset"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/netio/netiotest"
	"github.com/heliosdb/auth/protocols/mongodb"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

var ring = core.GenerateKeyring(time.Now())

// FuzzReadMessage decodes arbitrary bytes as wire messages and runs them
// through a session: no panic, no read past the input, every accepted
// command document valid BSON, every reply well framed.
func FuzzReadMessage(f *testing.F) {
	env := &netio.Env{Verifier: core.NewVerifier(ring, nil), Now: time.Now(), Observer: netiotest.NopObserver{}}
	p := mongodb.New(mongodb.Options{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, n, err := mongodb.ReadMessage(b, mongodb.MaxMessageSize)
		if n > len(b) {
			t.Fatalf("n = %d > %d", n, len(b))
		}
		if err == nil && n > 0 {
			if verr := mongodb.ValidateDocument(m.Command); verr != nil {
				t.Fatalf("accepted an invalid command: %v", verr)
			}
		}
		info := &netio.ConnInfo{Remote: netip.MustParseAddrPort("127.0.0.1:1"), PlaintextOK: true}
		s := p.NewSession(info)
		in := b
		for len(in) > 0 {
			k, out, act := s.Handle(env, in, nil)
			checkReplies(t, out)
			if k == 0 || act == netio.Close {
				break
			}
			in = in[k:]
		}
	})
}

// checkReplies checks that out is a sequence of whole replies, each
// carrying one valid BSON document whose strings are valid UTF-8.
func checkReplies(t *testing.T, out []byte) {
	for len(out) > 0 {
		h, ok := mongodb.ReadHeader(out)
		if !ok || int(h.MessageLength) > len(out) || h.MessageLength < mongodb.HeaderLen {
			t.Fatalf("bad reply framing: %x", out)
		}
		msg := out[:h.MessageLength]
		out = out[h.MessageLength:]
		doc := msg[mongodb.HeaderLen+5:] // OP_MSG: flags, kind 0
		if h.OpCode == mongodb.OpReply {
			doc = msg[mongodb.HeaderLen+20:]
		}
		if err := mongodb.ValidateDocument(doc); err != nil {
			t.Fatalf("reply document: %v", err)
		}
		if v, ok := bsoncore.Document(doc).Lookup("errmsg").StringValueOK(); ok && !utf8.ValidString(v) {
			t.Fatalf("errmsg is not UTF-8: %q", v)
		}
	}
}

// FuzzValidateDocument checks that a document ValidateDocument accepts is
// one bsoncore accepts too, and that reading all of it stays in bounds.
func FuzzValidateDocument(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if mongodb.ValidateDocument(b) != nil {
			return
		}
		if err := bsoncore.Document(b).Validate(); err != nil {
			t.Fatalf("accepted what bsoncore rejects: %v", err)
		}
		walk(t, bsoncore.Document(b), 0)
	})
}

// walk reads every element and sub-document.
func walk(t *testing.T, d bsoncore.Document, depth int) {
	elems, err := d.Elements()
	if err != nil {
		t.Fatalf("elements of a valid document: %v", err)
	}
	for _, e := range elems {
		v := e.Value()
		_ = v.String()
		if sub, ok := v.DocumentOK(); ok {
			walk(t, sub, depth+1)
		}
		if arr, ok := v.ArrayOK(); ok {
			walk(t, bsoncore.Document(arr), depth+1)
		}
	}
}

// FuzzAuthenticatedSession runs arbitrary messages on sessions that have
// authenticated with a read-only token and with a test token (checked
// against the databases registry by each command's $db, with a revocation
// view behind the per-command re-check), reaching the classifier, the scope
// and test-database errors and the built-in responder.
func FuzzAuthenticatedSession(f *testing.F) {
	now := time.Now()
	minter := core.NewMinter(ring)
	live, _, err := minter.Mint(nil, core.Claims{Type: core.TypeLive, ID: core.NewTokenID(), Account: 1,
		IssuedAt: now.Unix(), ExpiresAt: now.Add(24 * time.Hour).Unix(), Scopes: core.ScopeSet(0).With(core.ScopeDatabaseRead)})
	if err != nil {
		f.Fatal(err)
	}
	test, _, err := minter.Mint(nil, core.Claims{Type: core.TypeTest, ID: core.NewTokenID(), Account: 2, Flags: core.FlagTestOnly,
		IssuedAt: now.Unix(), ExpiresAt: now.Add(24 * time.Hour).Unix(), Scopes: core.AllScopes})
	if err != nil {
		f.Fatal(err)
	}
	logins := [][]byte{saslStart(string(live)), saslStart(string(test))}
	revs := core.NewMemoryRevocations()
	revs.RevokeToken(core.NewTokenID(), now.Add(time.Hour).Unix())
	pol := policyset.New()
	pol.SetDatabase("main", true)
	env := &netio.Env{Verifier: core.NewVerifier(ring, revs), Now: now, Observer: netiotest.NopObserver{}}
	p := mongodb.New(mongodb.Options{Policy: pol})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, login := range logins {
			s := p.NewSession(&netio.ConnInfo{Remote: netip.MustParseAddrPort("127.0.0.1:1"), PlaintextOK: true})
			if n, out, _ := s.Handle(env, login, nil); n != len(login) || !s.Authenticated() {
				t.Fatalf("login failed: %x", out)
			}
			in := b
			for len(in) > 0 {
				k, out, act := s.Handle(env, in, nil)
				checkReplies(t, out)
				if k == 0 || act == netio.Close {
					break
				}
				in = in[k:]
			}
		}
	})
}

// saslStart encodes the OP_MSG saslStart PLAIN a driver sends.
func saslStart(token string) []byte {
	idx, doc := bsoncore.AppendDocumentStart(nil)
	doc = bsoncore.AppendInt32Element(doc, "saslStart", 1)
	doc = bsoncore.AppendStringElement(doc, "mechanism", "PLAIN")
	doc = bsoncore.AppendBinaryElement(doc, "payload", 0, []byte("\x00default\x00"+token))
	doc = bsoncore.AppendStringElement(doc, "$db", "$external")
	doc, _ = bsoncore.AppendDocumentEnd(doc, idx)
	msg := make([]byte, 16, 32+len(doc))
	msg[12] = 0xdd // opcode 2013 (OP_MSG), little-endian
	msg[13] = 0x07
	msg = append(msg, 0, 0, 0, 0, 0)
	msg = append(msg, doc...)
	msg[0], msg[1], msg[2] = byte(len(msg)), byte(len(msg)>>8), byte(len(msg)>>16)
	return msg
}
