package bench

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Two MongoDB clients: a minimal wire client that sends what a driver sends
// on a new pooled connection (OP_QUERY isMaster, saslStart PLAIN, one
// command: three round trips where the raw-TCP ceiling has one), and
// mongo-go-driver v2 (Connect + Ping + Disconnect, which also opens a
// monitoring connection). Plaintext from loopback, as the other targets.
func init() {
	register(Target{Name: "mongodb-wire", Listener: "mongo-listen", Handshake: mongoWireHandshake, Open: mongoWireOpen})
	register(Target{Name: "mongodb-driver", Listener: "mongo-listen", Handshake: mongoDriverHandshake, Open: mongoDriverOpen})
	register(Target{Name: "mongodb-wire-tls", Listener: "mongo-listen", Handshake: func(addr, token string) error {
		m, err := mongoWireDial(addr, token, true)
		if err != nil {
			return err
		}
		defer closeNow(m.raw)
		return m.Do()
	}})
}

// mongoTLS is the client side of the TLS target: no verification (the
// daemon's certificate is self-signed) and no session resumption.
var mongoTLS = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}

// mongoMsg encodes an OP_MSG (opcode 2013) or, with ns set, an OP_QUERY
// (2004) on ns.
func mongoMsg(id int32, ns string, doc bson.D) []byte {
	body, err := bson.Marshal(doc)
	if err != nil {
		panic(err)
	}
	b := make([]byte, 16, 64+len(body))
	binary.LittleEndian.PutUint32(b[4:], uint32(id))
	if ns == "" {
		binary.LittleEndian.PutUint32(b[12:], 2013)
		b = append(binary.LittleEndian.AppendUint32(b, 0), 0)
	} else {
		binary.LittleEndian.PutUint32(b[12:], 2004)
		b = binary.LittleEndian.AppendUint32(b, 0)
		b = append(append(b, ns...), 0)
		b = binary.LittleEndian.AppendUint32(b, 0)
		b = binary.LittleEndian.AppendUint32(b, 0xffffffff)
	}
	b = append(b, body...)
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	return b
}

var (
	mongoHello = mongoMsg(1, "admin.$cmd", bson.D{{Key: "isMaster", Value: 1}, {Key: "helloOk", Value: true},
		{Key: "client", Value: bson.D{{Key: "driver", Value: bson.D{{Key: "name", Value: "bench"}, {Key: "version", Value: "1"}}}}}})
	mongoPing = mongoMsg(3, "", bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "main"}})
)

func mongoSASL(token string) []byte {
	return mongoMsg(2, "", bson.D{{Key: "saslStart", Value: 1}, {Key: "mechanism", Value: "PLAIN"},
		{Key: "payload", Value: bson.Binary{Data: []byte("\x00default\x00" + token)}}, {Key: "$db", Value: "$external"}})
}

// mongoWire is a minimal MongoDB client connection.
type mongoWire struct {
	c   net.Conn // raw, or TLS over raw
	raw net.Conn
	buf []byte
}

// roundTrip writes msg and reads one whole reply; {ok: 0} is an error.
func (m *mongoWire) roundTrip(msg []byte) error {
	if _, err := m.c.Write(msg); err != nil {
		return err
	}
	if err := readFull(m.c, m.buf[:4]); err != nil {
		return err
	}
	n := int(binary.LittleEndian.Uint32(m.buf))
	if n < 21 || n > len(m.buf) {
		return fmt.Errorf("bad reply length %d", n)
	}
	if err := readFull(m.c, m.buf[4:n]); err != nil {
		return err
	}
	doc := m.buf[21:n] // OP_MSG: header, flags, kind 0
	if binary.LittleEndian.Uint32(m.buf[12:]) == 1 {
		doc = m.buf[36:n] // OP_REPLY
	}
	if ok, _ := bson.Raw(doc).Lookup("ok").AsFloat64OK(); ok != 1 {
		return errors.New("mongodb error: " + bson.Raw(doc).String())
	}
	return nil
}

// mongoWireDial connects (with TLS from the first byte when useTLS) and
// runs isMaster and saslStart PLAIN.
func mongoWireDial(addr, token string, useTLS bool) (*mongoWire, error) {
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = raw.SetDeadline(time.Now().Add(30 * time.Second))
	m := &mongoWire{c: raw, raw: raw, buf: make([]byte, 4096)}
	if useTLS {
		tc := tls.Client(raw, mongoTLS)
		if err := tc.Handshake(); err != nil {
			closeNow(raw)
			return nil, err
		}
		m.c = tc
	}
	for _, msg := range [][]byte{mongoHello, mongoSASL(token)} {
		if err := m.roundTrip(msg); err != nil {
			closeNow(raw)
			return nil, err
		}
	}
	return m, nil
}

func mongoWireConnect(addr, token string) (*mongoWire, error) {
	return mongoWireDial(addr, token, false)
}

func mongoWireHandshake(addr, token string) error {
	m, err := mongoWireConnect(addr, token)
	if err != nil {
		return err
	}
	defer closeNow(m.c)
	return m.Do()
}

func mongoWireOpen(addr, token string) (Client, error) {
	m, err := mongoWireConnect(addr, token)
	if err != nil {
		return nil, err
	}
	_ = m.c.SetDeadline(time.Time{})
	return m, nil
}

// Do runs ping.
func (m *mongoWire) Do() error { return m.roundTrip(mongoPing) }

// Close closes the connection.
func (m *mongoWire) Close() error { closeNow(m.c); return nil }

func mongoDriverOptions(addr, token string) *options.ClientOptions {
	return options.Client().ApplyURI("mongodb://default:" + token + "@" + addr + "/main?authMechanism=PLAIN&directConnection=true").
		SetMaxPoolSize(1).SetServerSelectionTimeout(10 * time.Second)
}

func mongoDriverHandshake(addr, token string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := mongo.Connect(mongoDriverOptions(addr, token))
	if err != nil {
		return err
	}
	defer c.Disconnect(ctx)
	return c.Ping(ctx, nil)
}

// mongoDriver is a persistent mongo-go-driver client with one connection.
type mongoDriver struct{ c *mongo.Client }

func mongoDriverOpen(addr, token string) (Client, error) {
	c, err := mongo.Connect(mongoDriverOptions(addr, token))
	if err != nil {
		return nil, err
	}
	d := &mongoDriver{c: c}
	if err := d.Do(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Do runs ping.
func (d *mongoDriver) Do() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return d.c.Database("main").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err()
}

// Close disconnects.
func (d *mongoDriver) Close() error { return d.c.Disconnect(context.Background()) }
