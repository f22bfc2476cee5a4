package bench

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Two Redis clients: a minimal RESP client (AUTH, wait, PING, wait: what
// the server costs) and go-redis v9 (HELLO 3 AUTH, CLIENT SETINFO, then the
// command: what a real driver sees). Both use plaintext from loopback.
func init() {
	register(Target{Name: "redis-wire", Listener: "redis-listen", Handshake: redisWireHandshake, Open: redisWireOpen})
	register(Target{Name: "redis-goredis", Listener: "redis-listen", Handshake: goRedisHandshake, Open: goRedisOpen})
}

var redisPing = []byte("*1\r\n$4\r\nPING\r\n")

// redisWire is a minimal RESP client connection.
type redisWire struct {
	c net.Conn
	r *bufio.Reader
}

// line reads one reply line and fails on an error reply.
func (w *redisWire) line() error {
	l, err := w.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if len(l) > 0 && l[0] == '-' {
		return errors.New("redis error: " + string(l))
	}
	return nil
}

func redisWireConnect(addr, token string) (*redisWire, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	w := &redisWire{c: c, r: bufio.NewReaderSize(c, 512)}
	auth := append([]byte("*2\r\n$4\r\nAUTH\r\n$"), strconv.Itoa(len(token))...)
	auth = append(append(append(auth, "\r\n"...), token...), "\r\n"...)
	if _, err := c.Write(auth); err != nil {
		closeNow(c)
		return nil, err
	}
	if err := w.line(); err != nil {
		closeNow(c)
		return nil, err
	}
	return w, nil
}

func redisWireHandshake(addr, token string) error {
	w, err := redisWireConnect(addr, token)
	if err != nil {
		return err
	}
	defer closeNow(w.c)
	return w.Do()
}

func redisWireOpen(addr, token string) (Client, error) {
	w, err := redisWireConnect(addr, token)
	if err != nil {
		return nil, err
	}
	_ = w.c.SetDeadline(time.Time{})
	return w, nil
}

// Do sends PING and waits for +PONG.
func (w *redisWire) Do() error {
	if _, err := w.c.Write(redisPing); err != nil {
		return err
	}
	return w.line()
}

// Close closes the connection.
func (w *redisWire) Close() error {
	closeNow(w.c)
	return nil
}

type goRedisClient struct{ c *redis.Client }

func goRedisOpen(addr, token string) (Client, error) {
	d := &net.Dialer{}
	c := redis.NewClient(&redis.Options{
		Addr: addr, Password: token, PoolSize: 1, MaxRetries: -1, DialTimeout: 30 * time.Second,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			return c, err
		},
		// go-redis asks for maintenance notifications and drops them on the
		// error it gets; disabling them saves that round trip for every
		// client alike.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	cl := goRedisClient{c}
	if err := cl.Do(); err != nil { // the first command dials and authenticates
		c.Close()
		return nil, err
	}
	return cl, nil
}

func goRedisHandshake(addr, token string) error {
	cl, err := goRedisOpen(addr, token)
	if err != nil {
		return err
	}
	return cl.Close()
}

// Do runs PING.
func (g goRedisClient) Do() error { return g.c.Ping(context.Background()).Err() }

func (g goRedisClient) Close() error { return g.c.Close() }
