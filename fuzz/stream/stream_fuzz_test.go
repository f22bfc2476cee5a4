// Package stream fuzzes the transport's framing: valid streams of large
// commands, written to a real netio gateway (gnet event loops, the
// PostgreSQL and Redis front ends) in pieces split at fuzzer-chosen points,
// must get exactly the replies of their commands, in order. It guards the
// read path that once dropped the first 64 KiB read of a message whose
// session had consumed nothing yet, so that the bytes at offset 65536 were
// framed as a new message.
package stream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/postgres"
	"github.com/heliosdb/auth/protocols/redis"
)

// gateway is one in-process gateway per fuzzing process, with a token it
// accepts.
var gateway = sync.OnceValues(func() (*fixture, error) {
	ring := core.GenerateKeyring(time.Now())
	gw, err := netio.Serve(netio.Config{Keyring: ring, Revocations: core.NewMemoryRevocations(), Loops: 2, MaxMessage: 1 << 20},
		[]netio.Listener{
			{Addr: "127.0.0.1:0", Protocol: redis.New(redis.Options{})},
			{Addr: "127.0.0.1:0", Protocol: postgres.New(postgres.Options{})},
		})
	if err != nil {
		return nil, err
	}
	now := time.Now().Unix()
	tok, _, err := core.NewMinter(ring).Mint(nil, core.Claims{Type: core.TypeLive, ID: core.NewTokenID(), Account: 1,
		IssuedAt: now, ExpiresAt: now + 24*3600, Scopes: core.AllScopes})
	if err != nil {
		gw.Stop(context.Background())
		return nil, err
	}
	return &fixture{redis: gw.Addr("redis").String(), pg: gw.Addr("postgres").String(), token: string(tok)}, nil
})

type fixture struct {
	redis, pg string
	token     string
}

// plan is what one fuzz input means: the protocol, the sizes and contents
// of up to four commands, and where the written stream is cut.
type plan struct {
	postgres bool
	sizes    []int
	content  []byte
	cuts     []int
}

// decode turns fuzz bytes into a plan: byte 0 picks the protocol and the
// command count, then two bytes per command give its size (up to 256 KiB),
// two bytes per cut its distance from the previous one (up to 80 KiB),
// and the rest fills the commands.
func decode(b []byte) (plan, bool) {
	if len(b) < 3 {
		return plan{}, false
	}
	p := plan{postgres: b[0]&1 == 1}
	n := 1 + int(b[0]>>1)%4
	b = b[1:]
	for i := 0; i < n && len(b) >= 2; i++ {
		p.sizes = append(p.sizes, int(binary.BigEndian.Uint16(b))*4)
		b = b[2:]
	}
	for i := 0; i < 24 && len(b) >= 2; i++ {
		p.cuts = append(p.cuts, 1+int(binary.BigEndian.Uint16(b))*5/4)
		b = b[2:]
	}
	p.content = b
	if len(p.content) == 0 {
		p.content = []byte("x")
	}
	return p, true
}

// fill returns n bytes of content, cycled; for PostgreSQL inside a comment,
// so without NUL and without "*/".
func (p *plan) fill(n int, pg bool) []byte {
	out := make([]byte, n)
	for i := range out {
		c := p.content[i%len(p.content)]
		if pg && (c == 0 || c == '*') {
			c = 'x'
		}
		out[i] = c
	}
	return out
}

func FuzzSplitStream(f *testing.F) {
	// Seeds: one command just over a 64 KiB read cut at its boundaries,
	// several commands cut byte-wise and at odd points, both protocols.
	f.Add([]byte("\x00\x40\x01\xff\xff\x33\x33*1\r\n$13\r\nHELIOS.WHOAMI\r\n"))
	f.Add([]byte("\x01\x40\x01\xff\xff\x33\x33Q\x00\x00\x00\x10SELECT 4242\x00"))
	f.Add([]byte("\x06\x00\x10\x20\x00\x00\x01\x40\x00\x00\x02\x00\x00\x00\x01\x00\x01abc\r\n"))
	f.Add([]byte("\x07\x00\x10\x20\x00\x00\x01\x40\x00\x00\x02\x00\x00\x00\x01\x00\x01select 1;"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, ok := decode(b)
		if !ok {
			return
		}
		fx, err := gateway()
		if err != nil {
			t.Fatal(err)
		}
		if p.postgres {
			runPostgres(t, fx, &p)
		} else {
			runRedis(t, fx, &p)
		}
	})
}

// conn is a client connection with a read deadline, written by a
// goroutine of its own while the test reads.
type conn struct {
	t       *testing.T
	c       net.Conn
	r       *bufio.Reader
	written chan struct{}
}

// start writes stream, cut, beside the reader.
func (c *conn) start(stream []byte, cuts []int) {
	c.written = make(chan struct{})
	go func() {
		defer close(c.written)
		c.writeCut(stream, cuts)
	}()
}

// stop closes the connection and waits for the writer.
func (c *conn) stop() {
	c.c.Close()
	if c.written != nil {
		<-c.written
	}
}

func dial(t *testing.T, addr string) *conn {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return &conn{t: t, c: c, r: bufio.NewReaderSize(c, 64<<10)}
}

// writeCut writes stream in the plan's pieces (the rest in one piece),
// pausing after each so that the gateway reads them apart. It runs beside
// the reader; a failed write closes the connection, so the reader fails.
func (c *conn) writeCut(stream []byte, cuts []int) {
	for _, k := range append(cuts, len(stream)) {
		if len(stream) == 0 {
			return
		}
		k = min(k, len(stream))
		if _, err := c.c.Write(stream[:k]); err != nil {
			c.c.Close() // the reader fails (or has failed) on it
			return
		}
		stream = stream[k:]
		time.Sleep(100 * time.Microsecond)
	}
}

func (c *conn) readN(n int) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(c.r, b); err != nil {
		c.t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

func runRedis(t *testing.T, fx *fixture, p *plan) {
	c := dial(t, fx.redis)
	defer c.stop()
	var stream, want []byte
	stream = redis.AppendArray(stream, 3)
	for _, a := range []string{"AUTH", "default", fx.token} {
		stream = redis.AppendBulk(stream, []byte(a))
	}
	want = append(want, "+OK\r\n"...)
	for _, n := range p.sizes {
		v := p.fill(n, false)
		stream = redis.AppendArray(stream, 2)
		stream = redis.AppendBulk(redis.AppendBulk(stream, []byte("ECHO")), v)
		want = redis.AppendBulk(want, v)
	}
	stream = redis.AppendBulk(redis.AppendArray(stream, 1), []byte("PING"))
	want = append(want, "+PONG\r\n"...)
	c.start(stream, p.cuts)
	if got := c.readN(len(want)); !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && got[i] == want[i] {
			i++
		}
		t.Fatalf("replies differ at byte %d of %d: got %q, want %q", i, len(want), clip(got[i:]), clip(want[i:]))
	}
}

func runPostgres(t *testing.T, fx *fixture, p *plan) {
	c := dial(t, fx.pg)
	defer c.stop()
	startup := []byte("\x00\x03\x00\x00user\x00default\x00database\x00main\x00\x00")
	stream := binary.BigEndian.AppendUint32(nil, uint32(4+len(startup)))
	stream = append(stream, startup...)
	pw := append([]byte(fx.token), 0)
	stream = append(binary.BigEndian.AppendUint32(append(stream, 'p'), uint32(4+len(pw))), pw...)
	for i, n := range p.sizes {
		q := append([]byte("SELECT "+strconv.Itoa(i+10)+" /*"), p.fill(n, true)...)
		q = append(q, "*/\x00"...)
		stream = append(binary.BigEndian.AppendUint32(append(stream, 'Q'), uint32(4+len(q))), q...)
	}
	// The password goes in the same stream as the startup message: the
	// gateway must not lose it either.
	c.start(stream, p.cuts)
	var rows []string
	ready := 0
	for ready < len(p.sizes)+1 {
		h := c.readN(5)
		body := c.readN(int(binary.BigEndian.Uint32(h[1:])) - 4)
		switch h[0] {
		case 'E':
			t.Fatalf("error: %q", body)
		case 'D':
			n := int(binary.BigEndian.Uint32(body[2:]))
			rows = append(rows, string(body[6:6+n]))
		case 'Z':
			ready++
		}
	}
	want := make([]string, len(p.sizes))
	for i := range want {
		want[i] = strconv.Itoa(i + 10)
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Fatalf("rows %v, want %v", rows, want)
	}
}

func clip(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%q…", b[:40])
	}
	return string(b)
}
