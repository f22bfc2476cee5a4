package e2e

// Framing of large messages (issue: a message over 64 KiB was split at
// offset 65536 on the gnet path). For each wire protocol, through the real
// daemon on the plaintext path and inside TLS, messages of 65,535, 65,536,
// 65,537 bytes, 1 MiB and --max-message bytes (as each protocol's own size
// limit counts them) are sent in one write and byte by byte, with a forged
// complete message planted at every 4 KiB boundary of the message. Exactly
// one command must run, the right one: its reply comes back, and a small
// sentinel command sent after it gets its own reply next. One byte over
// --max-message gets the protocol's "too large" error.
//
// The clients here are written by hand on purpose: only a raw client can
// put a message of an exact size on the wire, byte by byte, with other
// messages hidden inside it. The drivers' view of large messages is in
// TestLargeMessagesDrivers.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// framingMax is the daemon's --max-message in these tests: above 1 MiB and
// not a power of two.
const framingMax = 1_200_000

var framingSizes = []int{65535, 65536, 65537, 1 << 20, framingMax}

// wire is one authenticated raw connection.
type wire struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

// send writes b in one write, or one byte per write (TCP_NODELAY is Go's
// default, so each byte leaves in a segment of its own).
func (w *wire) send(b []byte, byteByByte bool) {
	w.t.Helper()
	_ = w.conn.SetWriteDeadline(time.Now().Add(2 * time.Minute))
	if !byteByByte {
		if _, err := w.conn.Write(b); err != nil {
			_ = w.conn.SetReadDeadline(time.Now().Add(time.Second))
			rest, _ := io.ReadAll(w.r)
			w.t.Fatalf("write: %v (server sent %q)", err, rest)
		}
		return
	}
	for i := range b {
		if _, err := w.conn.Write(b[i : i+1]); err != nil {
			w.t.Fatalf("write byte %d of %d: %v", i, len(b), err)
		}
	}
}

func (w *wire) full(n int) []byte {
	w.t.Helper()
	_ = w.conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
	b := make([]byte, n)
	if _, err := io.ReadFull(w.r, b); err != nil {
		w.t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

// closed reports whether the server closed the connection (within 5 s).
func (w *wire) closed() bool {
	_ = w.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := w.r.ReadByte()
	return err == io.EOF || (err != nil && !isTimeout(err))
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// plant writes forged at every 4 KiB boundary of msg that falls inside
// [lo, hi) with room for it.
func plant(msg []byte, lo, hi int, forged []byte) int {
	n := 0
	for off := 0; off+len(forged) <= hi; off += 4096 {
		if off >= lo {
			copy(msg[off:], forged)
			n++
		}
	}
	return n
}

// framer is one protocol's raw client.
type framer struct {
	name string
	// login opens an authenticated connection (inside TLS when useTLS).
	login func(t *testing.T, d *daemon, tok string, useTLS bool) *wire
	// big builds a message whose size, as the protocol's limit counts it,
	// is n, and the filler range where forged messages may be planted.
	big func(n int) (msg []byte, lo, hi int)
	// forged is a complete message that must never run.
	forged []byte
	// expect reads and checks the reply to big (planted tells whether
	// forged messages were planted in it).
	expect func(w *wire, msg []byte, lo, hi int, planted bool)
	// sentinel sends a small command and checks its reply.
	sentinel func(w *wire)
	// tooBig reads the refusal of a message one byte over the limit.
	tooBig func(w *wire)
}

func TestLargeMessageFraming(t *testing.T) {
	d := startDaemon(t, withArgs("--max-message", strconv.Itoa(framingMax)))
	tok := d.NewUser(t)
	for _, f := range []framer{pgFramer(), mysqlFramer(), redisFramer(), mongoFramer()} {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			for _, path := range []string{"plaintext", "tls"} {
				t.Run(path, func(t *testing.T) {
					useTLS := path == "tls"
					w := f.login(t, d, tok, useTLS)
					defer w.conn.Close()
					for _, n := range framingSizes {
						for _, mode := range []string{"clean", "planted", "planted-byte-by-byte"} {
							msg, lo, hi := f.big(n)
							planted := mode != "clean"
							if planted && plant(msg, lo, hi, f.forged) < n/4096-1 {
								t.Fatalf("%d bytes: too few forged messages planted", n)
							}
							w.t = t
							w.send(msg, mode == "planted-byte-by-byte")
							f.expect(w, msg, lo, hi, planted)
							f.sentinel(w)
						}
					}
					// One byte over the limit: the header says so, and the
					// refusal comes before the rest is read. Only the head is
					// sent, so that the close after the refusal is a FIN,
					// not a reset that could overtake the reply.
					msg, _, _ := f.big(framingMax + 1)
					w.send(msg[:32<<10], false)
					f.tooBig(w)
					if !w.closed() {
						t.Fatal("connection still open after a message over --max-message")
					}
				})
			}
		})
	}
}

func framingTLS(t *testing.T, d *daemon) *tls.Config {
	t.Helper()
	pemBytes, err := os.ReadFile(d.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("no CA certificate in " + d.CACert)
	}
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

func dialWire(t *testing.T, addr string) *wire {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return &wire{t: t, conn: c, r: bufio.NewReaderSize(c, 64<<10)}
}

func (w *wire) startTLS(cfg *tls.Config) {
	w.t.Helper()
	tc := tls.Client(w.conn, cfg)
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		w.t.Fatalf("TLS handshake: %v", err)
	}
	_ = tc.SetDeadline(time.Time{})
	w.conn, w.r = tc, bufio.NewReaderSize(tc, 64<<10)
}

// ---- PostgreSQL ----

func pgFramer() framer {
	const head = "SELECT 7 /*"
	return framer{
		name:   "postgres",
		forged: []byte("Q\x00\x00\x00\x10SELECT 4242\x00"),
		login: func(t *testing.T, d *daemon, tok string, useTLS bool) *wire {
			w := dialWire(t, d.PG)
			if useTLS {
				w.send([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}, false)
				if b := w.full(1); b[0] != 'S' {
					t.Fatalf("SSLRequest answered %q", b)
				}
				w.startTLS(framingTLS(t, d))
			}
			body := []byte("\x00\x03\x00\x00user\x00default\x00database\x00main\x00\x00")
			w.send(binary.BigEndian.AppendUint32(nil, uint32(len(body)+4)), false)
			w.send(body, false)
			for {
				typ, b := pgRead(w)
				switch {
				case typ == 'R' && binary.BigEndian.Uint32(b) == 3:
					pw := append([]byte(tok), 0)
					w.send(append(binary.BigEndian.AppendUint32([]byte{'p'}, uint32(len(pw)+4)), pw...), false)
				case typ == 'E':
					t.Fatalf("login: %s", b)
				case typ == 'Z':
					return w
				}
			}
		},
		big: func(n int) ([]byte, int, int) {
			// 'Q', int32 length n (itself included), the query, NUL.
			msg := make([]byte, n+1)
			msg[0] = 'Q'
			binary.BigEndian.PutUint32(msg[1:], uint32(n))
			copy(msg[5:], head)
			lo, hi := 5+len(head), n+1-3
			for i := lo; i < hi; i++ {
				msg[i] = 'x'
			}
			copy(msg[hi:], "*/\x00")
			return msg, lo, hi
		},
		expect: func(w *wire, _ []byte, _, _ int, planted bool) {
			got := pgResult(w)
			// With NULs planted, PostgreSQL runs nothing (bytes behind
			// the query's NUL): ERROR 08P01 and ReadyForQuery.
			want := "row 7"
			if planted {
				want = "error 08P01"
			}
			if got != want {
				w.t.Fatalf("reply %q, want %q", got, want)
			}
		},
		sentinel: func(w *wire) {
			w.send([]byte("Q\x00\x00\x00\x0dSELECT 9\x00"), false)
			if got := pgResult(w); got != "row 9" {
				w.t.Fatalf("sentinel SELECT 9: %q", got)
			}
		},
		tooBig: func(w *wire) {
			typ, b := pgRead(w)
			if typ != 'E' || !bytes.Contains(b, []byte("C54000\x00")) {
				w.t.Fatalf("over the limit: %c %q, want ErrorResponse 54000", typ, b)
			}
		},
	}
}

func pgRead(w *wire) (byte, []byte) {
	w.t.Helper()
	h := w.full(5)
	return h[0], w.full(int(binary.BigEndian.Uint32(h[1:])) - 4)
}

// pgResult reads one query's replies up to ReadyForQuery: "row V" for one
// DataRow, "error CODE", or what else came.
func pgResult(w *wire) string {
	w.t.Helper()
	var got []string
	for {
		typ, b := pgRead(w)
		switch typ {
		case 'D':
			n := int(binary.BigEndian.Uint32(b[2:]))
			got = append(got, "row "+string(b[6:6+n]))
		case 'E':
			i := bytes.Index(b, []byte{0, 'C'})
			got = append(got, "error "+string(b[i+2:i+7]))
		case 'Z':
			return strings.Join(got, "; ")
		case 'T', 'C':
		default:
			got = append(got, fmt.Sprintf("message %c", typ))
		}
	}
}

// ---- MySQL ----

func mysqlFramer() framer {
	const head = "\x03SELECT 7 /*"
	return framer{
		name:   "mysql",
		forged: []byte("\x09\x00\x00\x00\x03SELECT 1"),
		login: func(t *testing.T, d *daemon, tok string, useTLS bool) *wire {
			if !useTLS {
				// The first login from an address is a full RSA
				// authentication, which moves the connection off the event
				// loop; the second is a fast-auth hit and stays on it.
				mysqlLogin(t, d, tok, false).conn.Close()
			}
			return mysqlLogin(t, d, tok, useTLS)
		},
		big: func(n int) ([]byte, int, int) {
			msg := make([]byte, 4+n)
			msg[0], msg[1], msg[2] = byte(n), byte(n>>8), byte(n>>16)
			copy(msg[4:], head)
			lo, hi := 4+len(head), len(msg)-2
			for i := lo; i < hi; i++ {
				msg[i] = 'x'
			}
			copy(msg[hi:], "*/")
			return msg, lo, hi
		},
		expect: func(w *wire, _ []byte, _, _ int, _ bool) {
			// Without an upstream the gateway refuses the SELECT with
			// 1235; a forged SELECT 1 that ran would answer a row.
			if got := mysqlResult(w); got != "error 1235" {
				w.t.Fatalf("reply %q, want error 1235 (no upstream)", got)
			}
		},
		sentinel: func(w *wire) {
			w.send([]byte("\x09\x00\x00\x00\x03SELECT 1"), false)
			if got := mysqlResult(w); got != "row 1" {
				w.t.Fatalf("sentinel SELECT 1: %q", got)
			}
		},
		tooBig: func(w *wire) {
			_, p := mysqlRead(w)
			if len(p) < 3 || p[0] != 0xff || binary.LittleEndian.Uint16(p[1:]) != 1153 {
				w.t.Fatalf("over the limit: %q, want error 1153", p)
			}
		},
	}
}

func mysqlRead(w *wire) (seq byte, payload []byte) {
	w.t.Helper()
	h := w.full(4)
	return h[3], w.full(int(h[0]) | int(h[1])<<8 | int(h[2])<<16)
}

// mysqlLogin authenticates with caching_sha2_password by hand: the
// fast-auth scramble, then (on a miss) the token inside TLS or RSA-encrypted
// with the server's public key.
func mysqlLogin(t *testing.T, d *daemon, tok string, useTLS bool) *wire {
	w := dialWire(t, d.MySQL)
	_, g := mysqlRead(w)
	// Greeting: version, server version NUL, connection id, nonce part 1,
	// filler, capabilities, charset, status, capabilities, nonce length,
	// 10 reserved bytes, nonce part 2.
	i := 1 + bytes.IndexByte(g[1:], 0) + 1 + 4
	nonce := append(append([]byte(nil), g[i:i+8]...), g[i+8+1+2+1+2+2+1+10:][:12]...)
	const caps = 0x1 | 0x200 | 0x2000 | 0x8000 | 0x80000 // long password, 4.1, transactions, secure conn, plugin auth
	seq := byte(1)
	packet := func(p []byte) {
		w.send(append([]byte{byte(len(p)), byte(len(p) >> 8), byte(len(p) >> 16), seq}, p...), false)
		seq++
	}
	fixed := binary.LittleEndian.AppendUint32(nil, caps)
	if useTLS {
		fixed = binary.LittleEndian.AppendUint32(nil, caps|0x800)
	}
	fixed = binary.LittleEndian.AppendUint32(fixed, 1<<24)
	fixed = append(fixed, 45)
	fixed = append(fixed, make([]byte, 23)...)
	if useTLS {
		packet(fixed)
		w.startTLS(framingTLS(t, d))
	}
	h1 := sha256.Sum256([]byte(tok))
	h2 := sha256.Sum256(h1[:])
	h3 := sha256.Sum256(append(h2[:], nonce...))
	scramble := make([]byte, 32)
	for k := range scramble {
		scramble[k] = h1[k] ^ h3[k]
	}
	resp := append(append([]byte(nil), fixed...), "default\x00"...)
	resp = append(append(resp, byte(len(scramble))), scramble...)
	resp = append(resp, "caching_sha2_password\x00"...)
	packet(resp)
	for {
		s, p := mysqlRead(w)
		seq = s + 1
		switch {
		case len(p) == 2 && p[0] == 1 && p[1] == 3: // fast auth: OK follows
		case len(p) == 2 && p[0] == 1 && p[1] == 4: // full authentication
			if useTLS {
				packet(append([]byte(tok), 0))
			} else {
				packet([]byte{2})
			}
		case len(p) > 1 && p[0] == 1: // the server's public key
			blk, _ := pem.Decode(p[1:])
			if blk == nil {
				t.Fatalf("public key: %q", p)
			}
			key, err := x509.ParsePKIXPublicKey(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			plain := append([]byte(tok), 0)
			for k := range plain {
				plain[k] ^= nonce[k%len(nonce)]
			}
			enc, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, key.(*rsa.PublicKey), plain, nil)
			if err != nil {
				t.Fatal(err)
			}
			packet(enc)
		case len(p) > 0 && p[0] == 0:
			return w
		default:
			t.Fatalf("MySQL login: %q", p)
		}
	}
}

// mysqlResult reads one COM_QUERY's result set: "row V" per row, or
// "error N".
func mysqlResult(w *wire) string {
	w.t.Helper()
	_, p := mysqlRead(w)
	if p[0] == 0xff {
		return "error " + strconv.Itoa(int(binary.LittleEndian.Uint16(p[1:])))
	}
	cols := int(p[0])
	for k := 0; k < cols; k++ {
		mysqlRead(w)
	}
	if _, p = mysqlRead(w); p[0] != 0xfe {
		w.t.Fatalf("no EOF after the column definitions: %q", p)
	}
	var got []string
	for {
		_, p = mysqlRead(w)
		if p[0] == 0xfe && len(p) < 9 {
			return strings.Join(got, "; ")
		}
		got = append(got, "row "+string(p[1:1+int(p[0])]))
	}
}

// ---- Redis ----

func redisFramer() framer {
	return framer{
		name:   "redis",
		forged: []byte("*1\r\n$13\r\nHELIOS.WHOAMI\r\n"),
		login: func(t *testing.T, d *daemon, tok string, useTLS bool) *wire {
			w := dialWire(t, d.Redis)
			if useTLS {
				w.startTLS(framingTLS(t, d))
			}
			w.send(respCommand("AUTH", "default", tok), false)
			if line := respLine(w); line != "+OK" {
				t.Fatalf("AUTH: %q", line)
			}
			return w
		},
		big: func(n int) ([]byte, int, int) {
			// *2 $4 ECHO $L value: 19 bytes, the digits of L, and L.
			for digits := 1; digits < 10; digits++ {
				l := n - 19 - digits
				if len(strconv.Itoa(l)) != digits {
					continue
				}
				msg := respCommand("ECHO", strings.Repeat("x", l))
				return msg, len(msg) - l - 2, len(msg) - 2
			}
			panic("no ECHO of that size")
		},
		expect: func(w *wire, msg []byte, lo, hi int, _ bool) {
			value := msg[lo:hi]
			if head := respLine(w); head != "$"+strconv.Itoa(len(value)) {
				w.t.Fatalf("reply %q, want a bulk string of %d bytes", head, len(value))
			}
			if got := w.full(len(value) + 2); !bytes.Equal(got[:len(value)], value) {
				w.t.Fatal("ECHO answered with other bytes than it was sent")
			}
		},
		sentinel: func(w *wire) {
			w.send(respCommand("PING"), false)
			if line := respLine(w); line != "+PONG" {
				w.t.Fatalf("sentinel PING: %q", line)
			}
		},
		tooBig: func(w *wire) {
			if line := respLine(w); !strings.HasPrefix(line, "-ERR Protocol error") {
				w.t.Fatalf("over the limit: %q", line)
			}
		},
	}
}

func respCommand(args ...string) []byte {
	b := []byte("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b = append(b, "$"+strconv.Itoa(len(a))+"\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	return b
}

func respLine(w *wire) string {
	w.t.Helper()
	_ = w.conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
	line, err := w.r.ReadString('\n')
	if err != nil {
		w.t.Fatalf("read reply: %v", err)
	}
	return strings.TrimSuffix(line, "\r\n")
}

// ---- MongoDB ----

const mongoReqID = 77

func mongoMsg(reqID int32, doc []byte) []byte {
	msg := binary.LittleEndian.AppendUint32(nil, uint32(16+4+1+len(doc)))
	msg = binary.LittleEndian.AppendUint32(msg, uint32(reqID))
	msg = binary.LittleEndian.AppendUint32(msg, 0)
	msg = binary.LittleEndian.AppendUint32(msg, 2013)
	msg = append(msg, 0, 0, 0, 0, 0)
	return append(msg, doc...)
}

func mongoFramer() framer {
	ping := func(db string) []byte {
		return bsoncore.NewDocumentBuilder().AppendInt32("ping", 1).AppendString("$db", db).Build()
	}
	return framer{
		name:   "mongodb",
		forged: mongoMsg(4242, ping("admin")),
		login: func(t *testing.T, d *daemon, tok string, useTLS bool) *wire {
			w := dialWire(t, d.Mongo)
			if useTLS {
				w.startTLS(framingTLS(t, d))
			}
			auth := bsoncore.NewDocumentBuilder().AppendInt32("saslStart", 1).AppendString("mechanism", "PLAIN").
				AppendBinary("payload", 0, []byte("\x00default\x00"+tok)).AppendString("$db", "$external").Build()
			w.send(mongoMsg(1, auth), false)
			if to, doc := mongoReply(w); to != 1 || !mongoOK(doc) {
				t.Fatalf("saslStart: reply to %d: %v", to, doc)
			}
			return w
		},
		big: func(n int) ([]byte, int, int) {
			// header 16, flags 4, kind 1, then {ping: 1, pad: binary, $db}:
			// 39 bytes of document around the binary's n-60 bytes.
			pad := bytes.Repeat([]byte{'x'}, n-60)
			doc := bsoncore.NewDocumentBuilder().AppendInt32("ping", 1).AppendBinary("pad", 0, pad).
				AppendString("$db", "main").Build()
			msg := mongoMsg(mongoReqID, doc)
			if len(msg) != n {
				panic(fmt.Sprintf("OP_MSG of %d bytes, want %d", len(msg), n))
			}
			lo := bytes.Index(msg, pad)
			return msg, lo, lo + len(pad)
		},
		expect: func(w *wire, _ []byte, _, _ int, _ bool) {
			if to, doc := mongoReply(w); to != mongoReqID || !mongoOK(doc) {
				w.t.Fatalf("reply to request %d (want %d): %v", to, mongoReqID, doc)
			}
		},
		sentinel: func(w *wire) {
			w.send(mongoMsg(78, ping("main")), false)
			if to, doc := mongoReply(w); to != 78 || !mongoOK(doc) {
				w.t.Fatalf("sentinel ping: reply to %d: %v", to, doc)
			}
		},
		tooBig: func(w *wire) {
			to, doc := mongoReply(w)
			code, _ := doc.Lookup("code").AsInt64OK()
			if to != mongoReqID || mongoOK(doc) || code != 10334 {
				w.t.Fatalf("over the limit: reply to %d: %v, want code 10334 (BSONObjectTooLarge)", to, doc)
			}
		},
	}
}

// mongoReply reads one OP_MSG reply: the request it answers and its body.
func mongoReply(w *wire) (int32, bsoncore.Document) {
	w.t.Helper()
	h := w.full(16)
	body := w.full(int(binary.LittleEndian.Uint32(h)) - 16)
	if op := binary.LittleEndian.Uint32(h[12:]); op != 2013 || body[4] != 0 {
		w.t.Fatalf("reply opcode %d kind %d", op, body[4])
	}
	return int32(binary.LittleEndian.Uint32(h[8:])), bsoncore.Document(body[5:])
}

func mongoOK(doc bsoncore.Document) bool {
	v, err := doc.LookupErr("ok")
	if err != nil {
		return false
	}
	f, ok := v.AsFloat64OK()
	return ok && f == 1
}

// TestLargeMessagesDrivers sends large commands with the real drivers —
// pgx, go-sql-driver/mysql, go-redis and mongo-driver — over plaintext and
// TLS: each gets its own answer, and the connection goes on.
func TestLargeMessagesDrivers(t *testing.T) {
	d := startDaemon(t)
	tok := d.NewUser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, n := range []int{65537, 1 << 20, 3 << 20} {
		filler := strings.Repeat("x", n)
		for _, sslmode := range []string{"disable", "require"} {
			t.Run(fmt.Sprintf("pgx/%s/%d", sslmode, n), func(t *testing.T) {
				c, err := pgx.Connect(ctx, "postgresql://default:"+tok+"@"+d.PG+"/main?sslmode="+sslmode)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close(ctx)
				var v int
				if err := c.QueryRow(ctx, "SELECT 7 /*"+filler+"*/", pgx.QueryExecModeSimpleProtocol).Scan(&v); err != nil || v != 7 {
					t.Fatalf("SELECT 7 with a %d-byte comment: %d, %v", n, v, err)
				}
				if err := c.QueryRow(ctx, "SELECT 9", pgx.QueryExecModeSimpleProtocol).Scan(&v); err != nil || v != 9 {
					t.Fatalf("SELECT 9 after it: %d, %v", v, err)
				}
			})
		}
		for _, tlsMode := range []string{"false", "skip-verify"} {
			t.Run(fmt.Sprintf("mysql/tls=%s/%d", tlsMode, n), func(t *testing.T) {
				db, err := sql.Open("mysql", "default:"+tok+"@tcp("+d.MySQL+")/main?tls="+tlsMode+"&allowCleartextPasswords=false")
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				conn, err := db.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				// Without an upstream the built-in responder refuses the
				// SELECT with 1235, on the same connection that then runs
				// SELECT 1.
				var v int
				err = conn.QueryRowContext(ctx, "SELECT 7 /*"+filler+"*/").Scan(&v)
				var me *mysql.MySQLError
				if !errors.As(err, &me) || me.Number != 1235 {
					t.Fatalf("SELECT 7 with a %d-byte comment: %v, want error 1235 (no upstream)", n, err)
				}
				if err := conn.QueryRowContext(ctx, "SELECT 1").Scan(&v); err != nil || v != 1 {
					t.Fatalf("SELECT 1 after it: %d, %v", v, err)
				}
			})
		}
		for _, useTLS := range []bool{false, true} {
			t.Run(fmt.Sprintf("go-redis/tls=%v/%d", useTLS, n), func(t *testing.T) {
				opt := &redis.Options{Addr: d.Redis, Username: "default", Password: tok, PoolSize: 1}
				if useTLS {
					opt.TLSConfig = framingTLS(t, d)
				}
				rdb := redis.NewClient(opt)
				defer rdb.Close()
				got, err := rdb.Echo(ctx, filler).Result()
				if err != nil || got != filler {
					t.Fatalf("ECHO of %d bytes: %d bytes back, %v", n, len(got), err)
				}
				if err := rdb.Ping(ctx).Err(); err != nil {
					t.Fatalf("PING after it: %v", err)
				}
			})
			t.Run(fmt.Sprintf("mongo-driver/tls=%v/%d", useTLS, n), func(t *testing.T) {
				uri := mongoURI(d, tok, "")
				if !useTLS {
					uri = "mongodb://default:" + url.QueryEscape(tok) + "@" + d.Mongo + "/main?authMechanism=PLAIN"
				}
				c := mongoConnect(t, uri)
				res := c.Database("main").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}, {Key: "pad", Value: bson.Binary{Data: []byte(filler)}}})
				if err := res.Err(); err != nil {
					t.Fatalf("ping with a %d-byte field: %v", n, err)
				}
				if err := c.Database("main").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
					t.Fatalf("ping after it: %v", err)
				}
			})
		}
	}
}
