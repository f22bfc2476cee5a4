package mongodb

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/heliosdb/auth/netio"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func ping(t testing.TB, id int32) []byte {
	return opMsg(t, id, 0, bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}})
}

// expectClose feeds a bad message and wants an error reply (when wantReply)
// and Close, never a panic.
func expectClose(t *testing.T, name string, msg []byte, wantCode int32) {
	t.Helper()
	s, env := newSession(true), newEnv(nil, nil)
	_, out, act := s.Handle(env, msg, nil)
	if act != netio.Close {
		t.Errorf("%s: act %v, want Close", name, act)
		return
	}
	if wantCode == 0 {
		return
	}
	_, doc := reply(t, out)
	if code(doc) != wantCode {
		t.Errorf("%s: reply %v, want code %d", name, doc, wantCode)
	}
}

func TestBadInput(t *testing.T) {
	good := ping(t, 1)

	badSum := opMsg(t, 1, FlagChecksumPresent, bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}})
	badSum[len(badSum)-1] ^= 0xff
	expectClose(t, "bad checksum", badSum, CodeProtocolError)

	noSum := append([]byte{}, good...)
	binary.LittleEndian.PutUint32(noSum[16:], FlagChecksumPresent) // flag set, no room for a checksum that matches
	expectClose(t, "checksum flag without checksum", noSum, CodeProtocolError)

	unknownFlag := opMsg(t, 1, 1<<4, bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}})
	expectClose(t, "unknown required flag", unknownFlag, CodeProtocolError)

	big := append([]byte{}, good[:16]...)
	binary.LittleEndian.PutUint32(big, 16<<20+1)
	expectClose(t, "16 MiB+ length prefix", big, CodeBSONObjectTooLarge)

	short := append([]byte{}, good[:16]...)
	binary.LittleEndian.PutUint32(short, 8)
	expectClose(t, "length below header", short, CodeProtocolError)

	lie := append([]byte{}, good...)
	binary.LittleEndian.PutUint32(lie[21:], 200) // body document claims 200 bytes
	expectClose(t, "document length beyond message", lie, CodeInvalidBSON)

	nested := opMsg(t, 1, 0, bson.D{{Key: "ping", Value: bson.D{{Key: "a", Value: "bc"}}}, {Key: "$db", Value: "admin"}})
	// The sub-document {a: "bc"} starts after type(1) + "ping\0"(5): inflate its length.
	off := 21 + 4 + 1 + 5
	str := append([]byte{}, nested...)
	binary.LittleEndian.PutUint32(nested[off:], 60)
	expectClose(t, "nested length lies", nested, CodeInvalidBSON)

	binary.LittleEndian.PutUint32(str[off+4+1+2:], 0x7fffffff) // the string "bc" claims 2 GiB
	expectClose(t, "string length lies", str, CodeInvalidBSON)

	noDB := opMsg(t, 1, 0, bson.D{{Key: "ping", Value: 1}})
	expectClose(t, "no $db", noDB, CodeNoDollarDB)

	comp := append([]byte{}, good...)
	binary.LittleEndian.PutUint32(comp[12:], uint32(OpCompressed))
	expectClose(t, "OP_COMPRESSED", comp, CodeProtocolError)

	legacyInsert := append([]byte{}, good...)
	binary.LittleEndian.PutUint32(legacyInsert[12:], uint32(OpInsert))
	expectClose(t, "OP_INSERT", legacyInsert, CodeProtocolError)

	query := opQuery(t, 1, "main.coll", bson.D{{Key: "x", Value: 1}})
	expectClose(t, "OP_QUERY on a collection", query, CodeUnsupportedOpQueryCommand)

	// A truncated header is "not yet", not an error.
	s, env := newSession(true), newEnv(nil, nil)
	if n, out, act := s.Handle(env, good[:10], nil); n != 0 || len(out) != 0 || act != netio.Continue {
		t.Fatalf("truncated header: n=%d act=%v", n, act)
	}

	// Pre-auth limit: a 20 KiB hello is refused before it is buffered.
	env.MaxPreAuthMessage = 16 << 10
	hdr := append([]byte{}, good[:16]...)
	binary.LittleEndian.PutUint32(hdr, 20<<10)
	if _, out, act := s.Handle(env, hdr, nil); act != netio.Close || code(must(t, out)) != CodeBSONObjectTooLarge {
		t.Fatal("pre-auth limit not enforced")
	}
}

func must(t *testing.T, out []byte) bson.Raw {
	_, doc := reply(t, out)
	return doc
}

// TestRandomBytesNeverPanic feeds random and mutated messages.
func TestRandomBytesNeverPanic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	seed := ping(t, 1)
	for i := 0; i < 20000; i++ {
		var b []byte
		if i%2 == 0 {
			b = make([]byte, r.IntN(64))
			for j := range b {
				b[j] = byte(r.Uint32())
			}
		} else {
			b = append([]byte{}, seed...)
			for k := 0; k < 1+r.IntN(4); k++ {
				b[r.IntN(len(b))] = byte(r.Uint32())
			}
		}
		s, env := newSession(true), newEnv(nil, nil)
		n, _, _ := s.Handle(env, b, nil)
		if n > len(b) {
			t.Fatalf("consumed %d of %d", n, len(b))
		}
	}
}

// opMsgWithSequence builds an OP_MSG insert whose documents travel in a
// kind-1 section, as drivers send them; seqSize overrides the section size
// when non-zero.
func opMsgWithSequence(t *testing.T, seqSize int32) []byte {
	body, _ := bson.Marshal(bson.D{{Key: "insert", Value: "c"}, {Key: "$db", Value: "main"}})
	d1, _ := bson.Marshal(bson.D{{Key: "a", Value: 1}})
	d2, _ := bson.Marshal(bson.D{{Key: "b", Value: "x"}})
	b := make([]byte, 16, 256)
	binary.LittleEndian.PutUint32(b[4:], 5)
	binary.LittleEndian.PutUint32(b[12:], uint32(OpMsg))
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = append(append(b, 0), body...)
	seq := append([]byte("documents\x00"), append(d1, d2...)...)
	size := int32(4 + len(seq))
	if seqSize != 0 {
		size = seqSize
	}
	b = append(b, 1)
	b = binary.LittleEndian.AppendUint32(b, uint32(size))
	b = append(b, seq...)
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	return b
}

func TestDocumentSequencesAndQueryWrapper(t *testing.T) {
	m, n, err := ReadMessage(opMsgWithSequence(t, 0), MaxMessageSize)
	if err != nil || n == 0 || m.Sequences != 1 || string(m.DB) != "main" {
		t.Fatalf("sequence: %+v n=%d err=%v", m, n, err)
	}
	expectClose(t, "sequence size too large", opMsgWithSequence(t, 500), CodeProtocolError)
	expectClose(t, "sequence size too small", opMsgWithSequence(t, 3), CodeProtocolError)
	expectClose(t, "sequence size splits a document", opMsgWithSequence(t, 20), CodeInvalidBSON)

	q := opQuery(t, 1, "admin.$cmd", bson.D{{Key: "$query", Value: bson.D{{Key: "ping", Value: 1}}},
		{Key: "$readPreference", Value: bson.D{{Key: "mode", Value: "secondaryPreferred"}}}})
	m, _, err = ReadMessage(q, MaxMessageSize)
	if err != nil || !m.Legacy || string(m.DB) != "admin" {
		t.Fatalf("legacy: %+v %v", m, err)
	}
	if first, _ := m.Command.IndexErr(0); first.Key() != "ping" {
		t.Fatalf("$query not unwrapped: %v", m.Command)
	}
}
