package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"database/sql/driver"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Three MySQL clients, all connect + authenticate + SELECT 1 + close:
//   - mysql-wire: a minimal client on the plaintext loopback path, which is
//     caching_sha2_password's RSA key exchange (the server's RSA-2048
//     decryption dominates it);
//   - mysql-gosql: go-sql-driver 1.10 on the same path (it fetches the
//     public key on every connection, as configured by default);
//   - mysql-gosql-tls: go-sql-driver with tls=skip-verify (a TLS handshake,
//     then the token in cleartext inside it).
func init() {
	register(Target{Name: "mysql-wire", Listener: "mysql-listen", Handshake: mysqlWireHandshake, Open: mysqlWireOpen})
	register(Target{Name: "mysql-gosql", Listener: "mysql-listen", Handshake: goSQLHandshake(""), Open: goSQLOpen("")})
	register(Target{Name: "mysql-gosql-tls", Listener: "mysql-listen", Handshake: goSQLHandshake("skip-verify"), Open: goSQLOpen("skip-verify")})
}

// mysqlWire is a minimal MySQL client connection.
type mysqlWire struct {
	c   net.Conn
	buf []byte
	seq byte
}

// read reads one packet into w.buf; an ERR packet is returned as an error.
func (w *mysqlWire) read() ([]byte, error) {
	var hdr [4]byte
	if err := readFull(w.c, hdr[:]); err != nil {
		return nil, err
	}
	n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	if cap(w.buf) < n {
		w.buf = make([]byte, n)
	}
	p := w.buf[:n]
	if _, err := io.ReadFull(w.c, p); err != nil {
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
	b := append([]byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), w.seq}, payload...)
	_, err := w.c.Write(b)
	return err
}

const wireCaps = 0x1 | 0x8 | 0x200 | 0x8000 | 0x80000 | 0x200000 | 0x1000000

var (
	mysqlResponse = func() []byte {
		b := binary.LittleEndian.AppendUint32(nil, wireCaps)
		b = binary.LittleEndian.AppendUint32(b, 1<<24)
		b = append(b, 45)
		b = append(b, make([]byte, 23)...)
		b = append(b, "default\x00"...)
		b = append(b, 32)
		b = append(b, make([]byte, 32)...) // a fast-auth scramble the server never checks
		return append(b, "main\x00caching_sha2_password\x00"...)
	}()
	pubKeys sync.Map // PEM → *rsa.PublicKey
)

func mysqlWireConnect(addr, token string) (*mysqlWire, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	w := &mysqlWire{c: c, buf: make([]byte, 2048)}
	if err := w.auth(token); err != nil {
		closeNow(c)
		return nil, err
	}
	return w, nil
}

func (w *mysqlWire) auth(token string) error {
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
	for _, step := range [][]byte{mysqlResponse, {2}} {
		if err := w.write(step); err != nil {
			return err
		}
		if _, err := w.read(); err != nil { // 01 04, then 01 + PEM
			return err
		}
	}
	pemKey := w.buf[1:len(w.buf)]
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

func mysqlWireHandshake(addr, token string) error {
	w, err := mysqlWireConnect(addr, token)
	if err != nil {
		return err
	}
	defer w.Close()
	return w.Do()
}

func mysqlWireOpen(addr, token string) (Client, error) {
	w, err := mysqlWireConnect(addr, token)
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
