package mongodb

import (
	"strings"
	"testing"

	"github.com/heliosdb/auth/netio"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestRefuseLate: a refused connection answers the driver's first request,
// hello over OP_MSG or isMaster over OP_QUERY, with 402 ResourceExhausted
// in the request's form, and closes.
func TestRefuseLate(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		s, env := newSession(true), newEnv(nil, nil)
		s.RefuseLate()
		msg := opMsg(t, 5, 0, bson.D{{Key: "hello", Value: 1}, {Key: "speculativeAuthenticate", Value: plainStart(mint(t, 0, 3600))}, {Key: "$db", Value: "admin"}})
		if legacy {
			msg = opQuery(t, 5, "admin.$cmd", bson.D{{Key: "isMaster", Value: 1}})
		}
		n, out, act := s.Handle(env, msg, nil)
		if n != len(msg) || act != netio.Close {
			t.Fatalf("legacy=%v: n=%d act=%v", legacy, n, act)
		}
		h, doc := reply(t, out)
		if wantOp := map[bool]int32{false: OpMsg, true: OpReply}[legacy]; h.OpCode != wantOp || h.ResponseTo != 5 {
			t.Fatalf("legacy=%v: header %+v", legacy, h)
		}
		if code(doc) != CodeResourceExhausted || doc.Lookup("codeName").StringValue() != "ResourceExhausted" ||
			!strings.Contains(errmsg(doc), "too many open connections") {
			t.Fatalf("legacy=%v: reply %v", legacy, doc)
		}
		if s.Authenticated() {
			t.Fatal("a refused session is past its handshake")
		}
	}
}

// TestRefuseLatePlaintextFromRemote: a refused hello sent in plaintext
// from an address that must use TLS (its speculativeAuthenticate may hold
// the token) still gets the TLS-required answer.
func TestRefuseLatePlaintextFromRemote(t *testing.T) {
	s, env := newSession(false), newEnv(nil, nil)
	s.RefuseLate()
	doc, act := roundTrip(t, s, env, opMsg(t, 1, 0, bson.D{{Key: "hello", Value: 1}, {Key: "$db", Value: "admin"}}))
	if code(doc) != CodeAuthenticationFailed || !strings.HasPrefix(errmsg(doc), msgTLSRequired+"mongodb://default:$HELIOS_TOKEN@") || act != netio.Close {
		t.Fatalf("%v %v", doc, act)
	}
}
