package bench

import (
	"context"
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
}

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
	c   net.Conn
	buf []byte
}

// until reads messages until one of type want arrives; an ErrorResponse
// is returned as an error.
func (p *pgWire) until(want byte) error {
	var hdr [5]byte
	for {
		if err := readFull(p.c, hdr[:]); err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint32(hdr[1:])) - 4
		if n < 0 || n > 1<<20 {
			return fmt.Errorf("bad message length %d", n)
		}
		if cap(p.buf) < n {
			p.buf = make([]byte, n)
		}
		if _, err := io.ReadFull(p.c, p.buf[:n]); err != nil {
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

func pgWireConnect(addr, token string) (*pgWire, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &pgWire{c: c, buf: make([]byte, 256)}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(pgStartup); err != nil {
		closeNow(c)
		return nil, err
	}
	if err := p.until('R'); err != nil {
		closeNow(c)
		return nil, err
	}
	pw := pgMessage('p', append([]byte(token), 0))
	if _, err := c.Write(pw); err != nil {
		closeNow(c)
		return nil, err
	}
	if err := p.until('Z'); err != nil {
		closeNow(c)
		return nil, err
	}
	return p, nil
}

func pgWireHandshake(addr, token string) error {
	p, err := pgWireConnect(addr, token)
	if err != nil {
		return err
	}
	defer closeNow(p.c)
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
	closeNow(p.c)
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
