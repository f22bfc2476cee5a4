package netio

import (
	"bufio"
	"context"
	"encoding/binary"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
)

// sizedProto is a toy protocol of length-prefixed messages (a 4-byte
// big-endian length, then the body), answered "ok <length> <Handle calls>".
// Its sessions count every Handle call and, when aware, report the size of
// the message they wait for (Awaiter).
type sizedProto struct{}

func (sizedProto) Name() string                       { return "sized" }
func (sizedProto) NewSession(*ConnInfo) Session       { return &sizedSession{} }
func (sizedProto) TLSFirstByte() bool                 { return false }
func (sizedProto) ALPN() []string                     { return nil }
func (s *sizedSession) Start(_ *Env, o []byte) []byte { return o }
func (s *sizedSession) Authenticated() bool           { return true }
func (s *sizedSession) Claims() *core.Claims          { return nil }
func (s *sizedSession) Terminate(_ error, o []byte) []byte {
	return o
}
func (s *sizedSession) LimitError(l Limit, o []byte) []byte {
	return append(o, "ERR "+l.String()+"\n"...)
}

type sizedSession struct {
	calls int
	await int
}

func (s *sizedSession) Awaiting() int { return s.await }

func (s *sizedSession) Handle(_ *Env, in, out []byte) (int, []byte, Action) {
	s.calls++
	s.await = 0
	if len(in) < 4 {
		return 0, out, Continue
	}
	size := 4 + int(binary.BigEndian.Uint32(in))
	if len(in) < size {
		s.await = size
		return 0, out, Continue
	}
	return size, append(out, "ok "+strconv.Itoa(size)+" "+strconv.Itoa(s.calls)+"\n"...), Continue
}

// TestAwaiterParsesALargeMessageOnce sends a 4 MiB message in 64 pieces,
// apart in time, with an idle timeout shorter than the whole transfer: the
// session is asked to parse it only when it is complete (not once per read,
// which copies the buffered prefix out of gnet every time), and the
// connection stays alive while the message arrives.
func TestAwaiterParsesALargeMessageOnce(t *testing.T) {
	ring := core.GenerateKeyring(time.Now())
	gw, err := Serve(Config{Keyring: ring, Revocations: core.NewMemoryRevocations(), Loops: 1,
		MaxMessage: 8 << 20, IdleTimeout: 700 * time.Millisecond},
		[]Listener{{Addr: "127.0.0.1:0", Protocol: sizedProto{}}})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Stop(context.Background())
	c, err := net.Dial("tcp", gw.Addr("sized").String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	const size = 4 << 20
	msg := make([]byte, 4+size)
	binary.BigEndian.PutUint32(msg, size)
	const pieces = 64
	step := len(msg) / pieces
	for off := 0; off < len(msg); off += step {
		if _, err := c.Write(msg[off:min(off+step, len(msg))]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond) // about 2 s in all, past the idle timeout
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "ok" || f[1] != strconv.Itoa(len(msg)) {
		t.Fatalf("reply %q", line)
	}
	// The first read (the header), perhaps one before the message is
	// complete, and the last: never one per piece.
	if calls, _ := strconv.Atoi(f[2]); calls > 3 {
		t.Fatalf("Handle ran %d times for one message in %d pieces", calls, pieces)
	}
}
