package mongoproxy

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testdaemon"
)

// OP_MSG flags.
const (
	flagChecksum   = 1 << 0
	flagMoreToCome = 1 << 1
	flagExhaust    = 1 << 16
)

// wire is a client that speaks the wire protocol by hand, for what drivers
// never send (checksums, moreToCome, OP_COMPRESSED, many requests in one
// write).
type wire struct {
	t  *testing.T
	c  net.Conn
	id int32
}

// dialWire connects to d's MongoDB listener and authenticates with tok
// (hello, then saslStart PLAIN, as drivers do).
func dialWire(t *testing.T, d *testdaemon.Daemon, tok string) *wire {
	t.Helper()
	c, err := net.Dial("tcp", d.Mongo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	w := &wire{t: t, c: c}
	w.ok(w.roundTrip(0, bson.D{{Key: "hello", Value: 1}, {Key: "$db", Value: "admin"}}))
	w.ok(w.roundTrip(0, bson.D{{Key: "saslStart", Value: 1}, {Key: "mechanism", Value: "PLAIN"},
		{Key: "payload", Value: bson.Binary{Data: []byte("\x00default\x00" + tok)}}, {Key: "$db", Value: "admin"}}))
	return w
}

// msg encodes an OP_MSG with one body and flags (a checksum is appended
// when the flag says so); it returns the message and its request id.
func (w *wire) msg(flags uint32, doc bson.D) ([]byte, int32) {
	w.t.Helper()
	body, err := bson.Marshal(doc)
	if err != nil {
		w.t.Fatal(err)
	}
	w.id++
	b := make([]byte, 16, 64+len(body))
	binary.LittleEndian.PutUint32(b[4:], uint32(w.id))
	binary.LittleEndian.PutUint32(b[12:], 2013)
	b = binary.LittleEndian.AppendUint32(b, flags)
	b = append(append(b, 0), body...)
	if flags&flagChecksum != 0 {
		binary.LittleEndian.PutUint32(b, uint32(len(b)+4))
		b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	}
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	return b, w.id
}

func (w *wire) send(b []byte) {
	w.t.Helper()
	if _, err := w.c.Write(b); err != nil {
		w.t.Fatal(err)
	}
}

// reply is one message read from the gateway.
type reply struct {
	responseTo int32
	opCode     int32
	flags      uint32
	doc        bson.Raw
}

// read reads one whole message; ok is false when the connection ended.
func (w *wire) read() (reply, bool) {
	w.t.Helper()
	var hdr [16]byte
	if _, err := io.ReadFull(w.c, hdr[:]); err != nil {
		return reply{}, false
	}
	n := int(binary.LittleEndian.Uint32(hdr[:]))
	if n < 21 || n > 64<<20 {
		w.t.Fatalf("a message of %d bytes", n)
	}
	body := make([]byte, n-16)
	if _, err := io.ReadFull(w.c, body); err != nil {
		w.t.Fatalf("a message cut short: %v", err)
	}
	r := reply{responseTo: int32(binary.LittleEndian.Uint32(hdr[8:])), opCode: int32(binary.LittleEndian.Uint32(hdr[12:])),
		flags: binary.LittleEndian.Uint32(body)}
	if r.opCode != 2013 || body[4] != 0 {
		w.t.Fatalf("not an OP_MSG reply: opcode %d", r.opCode)
	}
	doc := bson.Raw(body[5:])
	if err := doc.Validate(); err != nil {
		w.t.Fatalf("a reply that is not one whole BSON document (another message inside it?): %v", err)
	}
	r.doc = doc
	return r, true
}

// roundTrip sends doc and reads its reply.
func (w *wire) roundTrip(flags uint32, doc bson.D) reply {
	w.t.Helper()
	b, id := w.msg(flags, doc)
	w.send(b)
	r, ok := w.read()
	if !ok {
		w.t.Fatalf("the connection ended instead of answering %s", doc[0].Key)
	}
	if r.responseTo != id {
		w.t.Fatalf("reply to %d, not to %d", r.responseTo, id)
	}
	return r
}

func (w *wire) ok(r reply) {
	w.t.Helper()
	if v, _ := r.doc.Lookup("ok").AsFloat64OK(); v != 1 {
		w.t.Fatalf("not ok: %v", r.doc)
	}
}

func code(r reply) int32 {
	c, _ := r.doc.Lookup("code").AsInt64OK()
	return int32(c)
}

// TestWireChecksumMoreToComeCompressed: through the proxy, an OP_MSG with
// a CRC-32C checksum is checked and forwarded; a moreToCome insert gets no
// reply (the server's or the gateway's) and is done; a getMore that allows
// exhaust is answered once; a bad checksum and OP_COMPRESSED are refused
// with ProtocolError and the connection closed.
func TestWireChecksumMoreToComeCompressed(t *testing.T) {
	d := daemonWith(t)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: readWrite})
	w := dialWire(t, d, tok)
	coll := "wire_" + time.Now().Format("150405.000")
	r := w.roundTrip(flagChecksum, bson.D{{Key: "insert", Value: coll}, {Key: "documents", Value: bson.A{bson.D{{Key: "i", Value: 1}}}}, {Key: "$db", Value: "main"}})
	if n, _ := r.doc.Lookup("n").AsInt64OK(); n != 1 {
		t.Fatalf("insert with a checksum: %v", r.doc)
	}
	b, _ := w.msg(flagMoreToCome, bson.D{{Key: "insert", Value: coll}, {Key: "documents", Value: bson.A{bson.D{{Key: "i", Value: 2}}, bson.D{{Key: "i", Value: 3}}}},
		{Key: "writeConcern", Value: bson.D{{Key: "w", Value: 0}}}, {Key: "$db", Value: "main"}})
	w.send(b)
	// The next reply read is the find's: nothing answered the insert.
	r = w.roundTrip(flagChecksum, bson.D{{Key: "find", Value: coll}, {Key: "batchSize", Value: 1}, {Key: "sort", Value: bson.D{{Key: "i", Value: 1}}}, {Key: "$db", Value: "main"}})
	cursor := r.doc.Lookup("cursor").Document()
	id := cursor.Lookup("id").Int64()
	if id == 0 || len(mustValues(t, cursor.Lookup("firstBatch").Array())) != 1 {
		t.Fatalf("find: %v", r.doc)
	}
	b, gid := w.msg(flagExhaust, bson.D{{Key: "getMore", Value: id}, {Key: "collection", Value: coll}, {Key: "batchSize", Value: 1}, {Key: "$db", Value: "main"}})
	w.send(b)
	r, _ = w.read()
	if r.responseTo != gid || r.flags&flagMoreToCome != 0 {
		t.Fatalf("getMore with exhaustAllowed: reply to %d (flags %x): %v", r.responseTo, r.flags, r.doc)
	}
	r = w.roundTrip(0, bson.D{{Key: "count", Value: coll}, {Key: "$db", Value: "main"}})
	if n, _ := r.doc.Lookup("n").AsInt64OK(); n != 3 {
		t.Fatalf("the moreToCome insert was not done: %v", r.doc)
	}
	// A bad checksum.
	b, id2 := w.msg(flagChecksum, bson.D{{Key: "count", Value: coll}, {Key: "$db", Value: "main"}})
	b[len(b)-1] ^= 0xff
	w.send(b)
	r, _ = w.read()
	if r.responseTo != id2 || code(r) != 17 || !strings.Contains(r.doc.Lookup("errmsg").StringValue(), "checksum") {
		t.Fatalf("bad checksum: %v", r.doc)
	}
	if _, ok := w.read(); ok {
		t.Fatal("the connection stayed open after a bad checksum")
	}

	// OP_COMPRESSED after authentication.
	w = dialWire(t, d, tok)
	inner, _ := w.msg(0, bson.D{{Key: "count", Value: coll}, {Key: "$db", Value: "main"}})
	comp := make([]byte, 16, 64+len(inner))
	w.id++
	binary.LittleEndian.PutUint32(comp[4:], uint32(w.id))
	binary.LittleEndian.PutUint32(comp[12:], 2012)
	comp = binary.LittleEndian.AppendUint32(comp, 2013)
	comp = binary.LittleEndian.AppendUint32(comp, uint32(len(inner)-16))
	comp = append(comp, 0) // noop compressor
	comp = append(comp, inner[16:]...)
	binary.LittleEndian.PutUint32(comp, uint32(len(comp)))
	w.send(comp)
	r, _ = w.read()
	if code(r) != 17 || !strings.Contains(r.doc.Lookup("errmsg").StringValue(), "OP_COMPRESSED") {
		t.Fatalf("OP_COMPRESSED: %v", r.doc)
	}
	if _, ok := w.read(); ok {
		t.Fatal("the connection stayed open after OP_COMPRESSED")
	}
}

func mustValues(t *testing.T, a bson.RawArray) []bson.RawValue {
	t.Helper()
	v, err := a.Values()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRepliesNeverInterleave: many requests in one write, refused ones
// (the gateway answers) between forwarded ones with large replies (the
// server answers, through the pump): every reply arrives whole, each
// request is answered once, with its own id.
func TestRepliesNeverInterleave(t *testing.T) {
	d := daemonWith(t)
	ctx := ctxT(t)
	coll := direct(t).Database("main").Collection("interleave")
	_ = coll.Drop(ctx)
	docs := make([]any, 200)
	for i := range docs {
		docs[i] = bson.D{{Key: "i", Value: i}, {Key: "pad", Value: strings.Repeat("p", 4000)}}
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	w := dialWire(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead)}))
	const rounds = 60
	want := map[int32]string{}
	var batch []byte
	for i := 0; i < rounds; i++ {
		b, id := w.msg(0, bson.D{{Key: "find", Value: "interleave"}, {Key: "batchSize", Value: 200}, {Key: "singleBatch", Value: true}, {Key: "$db", Value: "main"}})
		batch, want[id] = append(batch, b...), "find"
		b, id = w.msg(0, bson.D{{Key: "insert", Value: "interleave"}, {Key: "documents", Value: bson.A{bson.D{}}}, {Key: "$db", Value: "main"}})
		batch, want[id] = append(batch, b...), "insert"
	}
	go w.c.Write(batch)
	for len(want) > 0 {
		r, ok := w.read()
		if !ok {
			t.Fatalf("the connection ended with %d requests unanswered", len(want))
		}
		kind, found := want[r.responseTo]
		if !found {
			t.Fatalf("a reply to %d, which is not a request or was answered already", r.responseTo)
		}
		delete(want, r.responseTo)
		switch kind {
		case "find":
			if n := len(mustValues(t, r.doc.Lookup("cursor", "firstBatch").Array())); n != 200 {
				t.Fatalf("a find's reply holds %d documents", n)
			}
		case "insert":
			if code(r) != 13 {
				t.Fatalf("a refused insert's reply: %v", r.doc)
			}
		}
	}
}
