package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"database/sql/driver"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Three MySQL clients, all connect + authenticate + SELECT 1 + close:
//   - mysql-wire: a minimal client on the plaintext loopback path. Like real
//     drivers it sends caching_sha2_password's fast-auth scramble of the
//     token; the gateway recognizes it from its cache after the first
//     connection (01 03, then OK) and otherwise asks for full
//     authentication, which is the RSA key exchange (the server's RSA-2048
//     decryption dominates it);
//   - mysql-wire-full: the same client sending a scramble no cache can
//     match, so every connection does full authentication (the RSA path):
//     the gateway's cost without fast authentication, for comparison;
//   - mysql-gosql: go-sql-driver 1.10 on the same path (on a cache miss it
//     fetches the public key, as configured by default);
//   - mysql-gosql-tls: go-sql-driver with tls=skip-verify (a TLS handshake,
//     then fast authentication, or the token in cleartext inside TLS).
func init() {
	register(Target{Name: "mysql-wire", Listener: "mysql-listen", Handshake: mysqlWireHandshake(true), Open: mysqlWireOpen})
	register(Target{Name: "mysql-wire-full", Listener: "mysql-listen", Handshake: mysqlWireHandshake(false)})
	register(Target{Name: "mysql-gosql", Listener: "mysql-listen", Handshake: goSQLHandshake(""), Open: goSQLOpen("")})
	register(Target{Name: "mysql-gosql-tls", Listener: "mysql-listen", Handshake: goSQLHandshake("skip-verify"), Open: goSQLOpen("skip-verify")})
}

// mysqlWire is a minimal MySQL client connection.
type mysqlWire struct {
	c   net.Conn
	r   *bufio.Reader // reads as drivers do: one read per server write
	buf []byte
	out []byte // the packet being written
	seq byte
}

// read reads one packet into w.buf; an ERR packet is returned as an error.
func (w *mysqlWire) read() ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(w.r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	if cap(w.buf) < n {
		w.buf = make([]byte, n)
	}
	p := w.buf[:n]
	if _, err := io.ReadFull(w.r, p); err != nil {
		return nil, err
	}
	w.seq = hdr[3] + 1
	if n > 0 && p[0] == 0xff {
		return nil, errors.New("mysql error: " + string(p))
	}
	return p, nil
}

// write sends payload as the next packet.
func (w *mysqlWire) write(payload []byte) error {
	w.out = append(append(w.out[:0], byte(len(payload)), byte(len(payload)>>8), byte(len(payload)>>16), w.seq), payload...)
	_, err := w.c.Write(w.out)
	return err
}

const wireCaps = 0x1 | 0x8 | 0x200 | 0x8000 | 0x80000 | 0x200000 | 0x1000000

// pubKeys caches the server's parsed public key: PEM → *rsa.PublicKey.
var pubKeys sync.Map

// mysqlResponse returns the HandshakeResponse41 carrying the fast-auth
// scramble of token for nonce (fast), or 32 zero bytes, which match no
// token (!fast).
func mysqlResponse(token string, nonce []byte, fast bool) []byte {
	b := binary.LittleEndian.AppendUint32(nil, wireCaps)
	b = binary.LittleEndian.AppendUint32(b, 1<<24)
	b = append(b, 45)
	b = append(b, make([]byte, 23)...)
	b = append(b, "default\x00"...)
	b = append(b, 32)
	if fast {
		b = append(b, scrambleSHA256(token, nonce)...)
	} else {
		b = append(b, make([]byte, 32)...)
	}
	return append(b, "main\x00caching_sha2_password\x00"...)
}

// scrambleSHA256 is caching_sha2_password's fast-auth scramble:
// SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) ‖ nonce).
func scrambleSHA256(pw string, nonce []byte) []byte {
	s1 := sha256.Sum256([]byte(pw))
	s2 := sha256.Sum256(s1[:])
	m := sha256.Sum256(append(s2[:], nonce...))
	for i := range s1 {
		s1[i] ^= m[i]
	}
	return s1[:]
}

func mysqlWireConnect(addr, token string, fast bool) (*mysqlWire, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	w := &mysqlWire{c: c, r: bufio.NewReaderSize(c, 4096), buf: make([]byte, 2048), out: make([]byte, 0, 512)}
	if err := w.auth(token, fast); err != nil {
		closeNow(c)
		return nil, err
	}
	return w, nil
}

// auth answers the greeting: the scramble, then, unless the server
// accepts it (01 03), full authentication by the RSA key exchange.
func (w *mysqlWire) auth(token string, fast bool) error {
	g, err := w.read()
	if err != nil {
		return err
	}
	i := bytes.IndexByte(g[1:], 0) + 2 + 4 // after the version and connection id
	if i+8+1+2+1+2+2+1+10+12 > len(g) {
		return fmt.Errorf("short greeting")
	}
	nonce := append([]byte(nil), g[i:i+8]...)
	nonce = append(nonce, g[i+8+1+2+1+2+2+1+10:][:12]...)
	if err := w.write(mysqlResponse(token, nonce, fast)); err != nil {
		return err
	}
	p, err := w.read()
	if err != nil {
		return err
	}
	switch {
	case len(p) == 2 && p[0] == 1 && p[1] == 3: // fast authentication
		_, err = w.read() // OK
		return err
	case len(p) != 2 || p[0] != 1 || p[1] != 4:
		return fmt.Errorf("unexpected reply to the scramble: %x", p)
	}
	if err := w.write([]byte{2}); err != nil { // request the public key
		return err
	}
	p, err = w.read() // 01 + PEM
	if err != nil {
		return err
	}
	pemKey := p[1:]
	k, ok := pubKeys.Load(string(pemKey))
	if !ok {
		blk, _ := pem.Decode(pemKey)
		if blk == nil {
			return errors.New("no public key")
		}
		pk, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return err
		}
		k, _ = pubKeys.LoadOrStore(string(pemKey), pk)
	}
	plain := append([]byte(token), 0)
	for j := range plain {
		plain[j] ^= nonce[j%len(nonce)]
	}
	enc, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, k.(*rsa.PublicKey), plain, nil)
	if err != nil {
		return err
	}
	if err := w.write(enc); err != nil {
		return err
	}
	_, err = w.read() // OK
	return err
}

func mysqlWireHandshake(fast bool) func(addr, token string) error {
	return func(addr, token string) error {
		w, err := mysqlWireConnect(addr, token, fast)
		if err != nil {
			return err
		}
		defer w.Close()
		return w.Do()
	}
}

func mysqlWireOpen(addr, token string) (Client, error) {
	w, err := mysqlWireConnect(addr, token, true)
	if err != nil {
		return nil, err
	}
	_ = w.c.SetDeadline(time.Time{})
	return w, nil
}

// Do runs SELECT 1 and reads the result set up to its closing OK.
func (w *mysqlWire) Do() error {
	w.seq = 0
	if err := w.write([]byte("\x03SELECT 1")); err != nil {
		return err
	}
	for {
		p, err := w.read()
		if err != nil {
			return err
		}
		if len(p) > 0 && len(p) < 9 && p[0] == 0xfe {
			return nil
		}
	}
}

// Close sends COM_QUIT and closes.
func (w *mysqlWire) Close() error {
	w.seq = 0
	_ = w.write([]byte{0x01})
	closeNow(w.c)
	return nil
}

type goSQLClient struct{ c driver.Conn }

func goSQLOpen(tlsMode string) func(addr, token string) (Client, error) {
	return func(addr, token string) (Client, error) {
		cfg := mysql.NewConfig()
		cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName, cfg.TLSConfig = "default", token, "tcp", addr, "main", tlsMode
		cfg.Timeout = 30 * time.Second
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			return nil, err
		}
		c, err := conn.Connect(context.Background())
		if err != nil {
			return nil, err
		}
		return goSQLClient{c}, nil
	}
}

func goSQLHandshake(tlsMode string) func(addr, token string) error {
	open := goSQLOpen(tlsMode)
	return func(addr, token string) error {
		cl, err := open(addr, token)
		if err != nil {
			return err
		}
		defer cl.Close()
		return cl.Do()
	}
}

// Do runs SELECT 1 through the driver's text protocol.
func (g goSQLClient) Do() error {
	rows, err := g.c.(driver.QueryerContext).QueryContext(context.Background(), "SELECT 1", nil)
	if err != nil {
		return err
	}
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		return err
	}
	return rows.Close()
}

func (g goSQLClient) Close() error { return g.c.Close() }

// BenchmarkMySQLRSAFlood measures SELECT 1 on one persistent connection
// (fast-authenticated, so it stays on its event loop) alone and then while
// 8 clients flood heliosd with RSA-path handshakes (mysql-wire-full: every
// one an RSA-2048 decryption on the server). Before netio.Offload the
// decryptions ran on the event loops and stalled the persistent
// connection's loop; now they run on the connections' own goroutines. It
// reports p50/p99 of both phases; run with -benchtime 1x (each phase has
// a fixed duration).
func BenchmarkMySQLRSAFlood(b *testing.B) {
	d := sharedDaemon(b)
	addr, tok := d.Addr("mysql-listen"), d.Token
	if err := mysqlWireHandshake(true)(addr, tok); err != nil { // caches the token
		b.Fatal(err)
	}
	w, err := mysqlWireConnect(addr, tok, true)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	_ = w.c.SetDeadline(time.Time{})
	sample := func(d time.Duration) (p50, p99, worst time.Duration, n int) {
		var lat []time.Duration
		for end := time.Now().Add(d); time.Now().Before(end); {
			start := time.Now()
			if err := w.Do(); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		q := func(f float64) time.Duration { return lat[int(f*float64(len(lat)-1))] }
		return q(0.5), q(0.99), lat[len(lat)-1], len(lat)
	}
	for range b.N {
		idle50, idle99, idleMax, idleN := sample(time.Second)
		stop := make(chan struct{})
		var logins atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := mysqlWireHandshake(false)(addr, tok); err != nil {
						b.Error(err)
						return
					}
					logins.Add(1)
				}
			}()
		}
		time.Sleep(300 * time.Millisecond)
		const flood = 3 * time.Second
		f50, f99, fMax, fN := sample(flood)
		close(stop)
		wg.Wait()
		ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
		b.ReportMetric(ms(idle99), "idle-p99-ms")
		b.ReportMetric(ms(f50), "flood-p50-ms")
		b.ReportMetric(ms(f99), "flood-p99-ms")
		b.Logf("SELECT 1 alone: p50 %v p99 %v max %v (%d); during an RSA flood of 8 clients (%d logins/s): p50 %v p99 %v max %v (%d)",
			idle50, idle99, idleMax, idleN, int(float64(logins.Load())/(flood+300*time.Millisecond).Seconds()), f50, f99, fMax, fN)
	}
}
