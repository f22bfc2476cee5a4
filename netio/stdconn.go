package netio

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"time"
)

// GoroutineOptions configure ServeConn, the goroutine-per-connection path
// (TLS connections handed off from an event loop, and tests).
type GoroutineOptions struct {
	// TLS is the server TLS configuration for UpgradeTLS and for a first
	// byte 0x16; nil refuses upgrades (the session's output is written and
	// the connection closed).
	TLS *tls.Config
	// HandshakeTimeout bounds the time until Authenticated (default 10s).
	HandshakeTimeout time.Duration
	// IdleTimeout bounds silence after authentication (default 5 minutes).
	IdleTimeout time.Duration
	// MaxBuffered bounds unconsumed input (default 1 MiB).
	MaxBuffered int
}

func (o *GoroutineOptions) defaults() {
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 5 * time.Minute
	}
	if o.MaxBuffered <= 0 {
		o.MaxBuffered = 1 << 20
	}
}

// ServeConn runs sess over conn on the calling goroutine until the session
// closes, the peer goes away or a limit is hit. pending holds bytes already
// read from conn (they are delivered first). When the session asks for
// UpgradeTLS, or the protocol takes TLS from the first byte and the first
// byte is 0x16, the connection is wrapped in crypto/tls and the session
// continues on the decrypted stream. ServeConn closes conn.
func ServeConn(conn net.Conn, p Protocol, sess Session, info *ConnInfo, env *Env, pending []byte, opts GoroutineOptions) {
	opts.defaults()
	defer conn.Close()
	in := append(make([]byte, 0, 4096), pending...)
	out := make([]byte, 0, 4096)
	buf := make([]byte, 16<<10)
	started := false
	for {
		if !started && len(in) > 0 && !info.TLS && p.TLSFirstByte() && in[0] == 0x16 {
			c, err := upgrade(conn, in, opts.TLS, info)
			if err != nil {
				return
			}
			conn, in = c, in[:0]
			defer c.Close()
			continue
		}
		if !started {
			started = true
			out = sess.Start(env, out[:0])
			if len(out) > 0 {
				if _, err := conn.Write(out); err != nil {
					return
				}
			}
		}
		for len(in) > 0 {
			env.Now = time.Now()
			n, o, act := sess.Handle(env, in, out[:0])
			out = o
			in = in[:copy(in, in[n:])]
			if len(out) > 0 {
				if _, err := conn.Write(out); err != nil {
					return
				}
			}
			switch act {
			case Close:
				return
			case UpgradeTLS:
				c, err := upgrade(conn, in, opts.TLS, info)
				if err != nil {
					return
				}
				conn, in = c, in[:0]
				defer c.Close()
				continue
			}
			if n == 0 {
				break
			}
		}
		if len(in) >= opts.MaxBuffered {
			_, _ = conn.Write(sess.LimitError(LimitMessageSize, out[:0]))
			return
		}
		deadline, limit := opts.HandshakeTimeout, LimitHandshakeTimeout
		if sess.Authenticated() {
			deadline, limit = opts.IdleTimeout, LimitIdleTimeout
		}
		_ = conn.SetReadDeadline(time.Now().Add(deadline))
		k, err := conn.Read(buf)
		in = append(in, buf[:k]...)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = conn.Write(sess.LimitError(limit, out[:0]))
			}
			if k == 0 || err == io.EOF {
				return
			}
		}
	}
}

// upgrade runs a server TLS handshake over conn, replaying pending first.
func upgrade(conn net.Conn, pending []byte, cfg *tls.Config, info *ConnInfo) (*tls.Conn, error) {
	if cfg == nil || info.TLS {
		return nil, errors.New("netio: TLS is not configured")
	}
	raw := conn
	if len(pending) > 0 {
		raw = &prefixConn{Conn: conn, prefix: append([]byte(nil), pending...)}
	}
	tc := tls.Server(raw, cfg)
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	_ = tc.SetDeadline(time.Time{})
	info.TLS = true
	info.ALPN = tc.ConnectionState().NegotiatedProtocol
	return tc, nil
}

// prefixConn is a net.Conn whose first reads return bytes read earlier.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// AddrPort converts a net.Addr to a netip.AddrPort (zero when it is not TCP).
func AddrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}
