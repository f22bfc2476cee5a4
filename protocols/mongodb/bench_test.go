package mongodb

import (
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// BenchmarkHandshake is one connection's whole conversation on the session:
// the driver's OP_QUERY isMaster, saslStart PLAIN with a token, and a ping.
func BenchmarkHandshake(b *testing.B) {
	tok := mint(b, core.AllScopes, time.Hour)
	hello := opQuery(b, 1, "admin.$cmd", bson.D{{Key: "isMaster", Value: 1}, {Key: "helloOk", Value: true},
		{Key: "client", Value: bson.D{{Key: "driver", Value: bson.D{{Key: "name", Value: "mongo-go-driver"}, {Key: "version", Value: "2.10.0"}}}}},
		{Key: "saslSupportedMechs", Value: "$external.default"}})
	sasl := opMsg(b, 2, 0, plainStart(tok))
	ping := opMsg(b, 3, 0, bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "main"}})
	env := newEnv(nil, nil)
	out := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := newSession(true)
		for _, m := range [][]byte{hello, sasl, ping} {
			n, o, _ := s.Handle(env, m, out[:0])
			if n != len(m) || len(o) == 0 {
				b.Fatal("no reply")
			}
		}
		if !s.Authenticated() {
			b.Fatal("not authenticated")
		}
	}
}

// BenchmarkCommand is one authenticated command (find, refused for want of
// an upstream) on an open session.
func BenchmarkCommand(b *testing.B) {
	s, env := newSession(true), newEnv(nil, nil)
	roundTrip(b, s, env, opMsg(b, 1, 0, plainStart(mint(b, core.AllScopes, time.Hour))))
	find := opMsg(b, 2, 0, bson.D{{Key: "find", Value: "orders"}, {Key: "filter", Value: bson.D{{Key: "a", Value: 1}}}, {Key: "$db", Value: "main"}})
	out := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, o, _ := s.Handle(env, find, out[:0]); len(o) == 0 {
			b.Fatal("no reply")
		}
	}
}
