package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Two PostgreSQL clients: a minimal wire client (what the server costs,
// with next to no client work, comparable to the raw-TCP ceiling) and pgx's
// pgconn (what a real driver sees). Both use plaintext from loopback, so the
// handshake is gnet-only; TLS handshakes measure crypto/tls instead.
func init() {
	register(Target{Name: "postgres-wire", Listener: "pg-listen", Handshake: pgWireHandshake, Open: pgWireOpen})
	register(Target{Name: "postgres-pgx", Listener: "pg-listen", Handshake: pgxHandshake, Open: pgxOpen})
	register(Target{Name: "postgres-wire-tls", Listener: "pg-listen", Handshake: func(addr, token string) error {
		p, err := pgWireDial(addr, token, true)
		if err != nil {
			return err
		}
		defer closeNow(p.raw)
		return p.Do()
	}})
}

// pgTLS is the client side of the benchmarks' TLS: no verification (the
// daemon's certificate is self-signed) and no session resumption, as psql.
var pgTLS = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}

var (
	pgStartup   = pgStartupPacket()
	pgSelect1   = pgMessage('Q', []byte("SELECT 1\x00"))
	pgTerminate = pgMessage('X', nil)
)

func pgStartupPacket() []byte {
	b := []byte{0, 0, 0, 0, 0, 3, 0, 0}
	b = append(b, "user\x00default\x00database\x00main\x00application_name\x00bench\x00\x00"...)
	binary.BigEndian.PutUint32(b, uint32(len(b)))
	return b
}

func pgMessage(typ byte, body []byte) []byte {
	b := append([]byte{typ, 0, 0, 0, 0}, body...)
	binary.BigEndian.PutUint32(b[1:], uint32(len(b)-1))
	return b
}

// pgWire is a minimal PostgreSQL client connection.
type pgWire struct {
	c   net.Conn // the TLS connection when TLS is on
	raw net.Conn
	r   *bufio.Reader // reads as libpq does: one read per server write
	buf []byte
}

// until reads messages until one of type want arrives; an ErrorResponse
// is returned as an error.
func (p *pgWire) until(want byte) error {
	var hdr [5]byte
	for {
		if _, err := io.ReadFull(p.r, hdr[:]); err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint32(hdr[1:])) - 4
		if n < 0 || n > 1<<20 {
			return fmt.Errorf("bad message length %d", n)
		}
		if cap(p.buf) < n {
			p.buf = make([]byte, n)
		}
		if _, err := io.ReadFull(p.r, p.buf[:n]); err != nil {
			return err
		}
		switch hdr[0] {
		case 'E':
			return errors.New("postgres error: " + string(p.buf[:n]))
		case want:
			return nil
		}
	}
}

func pgWireConnect(addr, token string) (*pgWire, error) { return pgWireDial(addr, token, false) }

// pgWireDial connects, optionally upgrades with SSLRequest, and logs in.
func pgWireDial(addr, token string, useTLS bool) (*pgWire, error) {
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &pgWire{c: raw, raw: raw, buf: make([]byte, 256)}
	_ = raw.SetDeadline(time.Now().Add(30 * time.Second))
	fail := func(err error) (*pgWire, error) {
		closeNow(raw)
		return nil, err
	}
	if useTLS {
		if _, err := raw.Write([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}); err != nil {
			return fail(err)
		}
		var s [1]byte
		if err := readFull(raw, s[:]); err != nil || s[0] != 'S' {
			return fail(fmt.Errorf("SSLRequest answered %q: %v", s[:], err))
		}
		tc := tls.Client(raw, pgTLS)
		if err := tc.Handshake(); err != nil {
			return fail(err)
		}
		p.c = tc
	}
	p.r = bufio.NewReaderSize(p.c, 4096)
	if _, err := p.c.Write(pgStartup); err != nil {
		return fail(err)
	}
	if err := p.until('R'); err != nil {
		return fail(err)
	}
	if _, err := p.c.Write(pgMessage('p', append([]byte(token), 0))); err != nil {
		return fail(err)
	}
	if err := p.until('Z'); err != nil {
		return fail(err)
	}
	return p, nil
}

func pgWireHandshake(addr, token string) error {
	p, err := pgWireConnect(addr, token)
	if err != nil {
		return err
	}
	defer closeNow(p.raw)
	return p.Do()
}

func pgWireOpen(addr, token string) (Client, error) {
	p, err := pgWireConnect(addr, token)
	if err != nil {
		return nil, err
	}
	_ = p.c.SetDeadline(time.Time{})
	return p, nil
}

// Do runs SELECT 1 (simple protocol) and waits for ReadyForQuery.
func (p *pgWire) Do() error {
	if _, err := p.c.Write(pgSelect1); err != nil {
		return err
	}
	return p.until('Z')
}

// Close sends Terminate and closes.
func (p *pgWire) Close() error {
	_, _ = p.c.Write(pgTerminate)
	closeNow(p.raw)
	return nil
}

// pgxConfigs caches parsed configurations: ParseConfig costs more than the
// server's whole handshake, and a pool would parse once too.
var pgxConfigs sync.Map

func pgxConfig(addr, token string) (*pgconn.Config, error) {
	if c, ok := pgxConfigs.Load(addr + token); ok {
		return c.(*pgconn.Config), nil
	}
	host, port, _ := net.SplitHostPort(addr)
	cfg, err := pgconn.ParseConfig("postgresql://default:" + token + "@" + host + ":" + port + "/main?sslmode=disable")
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{}
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		return c, err
	}
	pgxConfigs.Store(addr+token, cfg)
	return cfg, nil
}

func pgxHandshake(addr, token string) error {
	cl, err := pgxOpen(addr, token)
	if err != nil {
		return err
	}
	defer cl.Close()
	return cl.Do()
}

type pgxClient struct{ c *pgconn.PgConn }

func pgxOpen(addr, token string) (Client, error) {
	cfg, err := pgxConfig(addr, token)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return pgxClient{c}, nil
}

// Do runs SELECT 1 with the extended protocol (as pgx's Query does).
func (p pgxClient) Do() error {
	rr := p.c.ExecParams(context.Background(), "SELECT 1", nil, nil, nil, []int16{1})
	for rr.NextRow() {
	}
	_, err := rr.Close()
	return err
}

func (p pgxClient) Close() error { return p.c.Close(context.Background()) }
