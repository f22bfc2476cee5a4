package netio

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/heliosdb/auth/core"
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
	// MaxBuffered bounds unconsumed input (default 1 MiB); the Env's
	// message limits apply as well.
	MaxBuffered int
	// Started means the session's Start already ran on another transport
	// (a hand-off from an event loop): ServeConn neither calls Start again
	// nor sniffs the first byte.
	Started bool
	// UpgradeFirst runs the TLS handshake before anything else: pending
	// is the beginning of the client's TLS stream.
	UpgradeFirst bool
	// Recheck is how often an authenticated session's token is checked
	// again while the connection is silent (default 1s): a revoked token
	// ends the session (Session.Terminate) without waiting for the client's next
	// command. On a Gateway it is Config.Sweep, a safety net: revocations
	// wake the goroutine through the gateway's index, and the goroutine
	// also wakes at the token's expiry (unless expired sessions are kept).
	Recheck time.Duration
	// index, when set, is the gateway's index of goroutine sessions: an
	// authenticated session with claims is added to it until ServeConn returns.
	index *goIndex
	// refusing: the session is a LateRefuser refusing the connection, and
	// HandshakeTimeout is what is left of its refusal deadline. It never
	// counts as authenticated, and the deadline ends it with
	// LimitError(LimitConnections) (already counted when it was refused).
	refusing bool
}

// EnsureDefaults gives every unset field of o its default and returns o.
func (o *GoroutineOptions) EnsureDefaults() *GoroutineOptions {
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 5 * time.Minute
	}
	if o.MaxBuffered <= 0 {
		o.MaxBuffered = 1 << 20
	}
	if o.Recheck <= 0 {
		o.Recheck = time.Second
	}
	return o
}

// ServeConn runs sess over conn on the calling goroutine until the session
// closes, the peer goes away or a limit is hit. pending holds bytes already
// read from conn (they are delivered first). When the session asks for
// UpgradeTLS, or the protocol takes TLS from the first byte and the first
// byte is 0x16, the connection is wrapped in crypto/tls and the session
// continues on the decrypted stream. Offload is a Continue here: the session
// already has this goroutine to itself (ServeConn sets info.Offloaded).
// ServeConn closes conn.
func ServeConn(conn net.Conn, p Protocol, sess Session, info *ConnInfo, env *Env, pending []byte, opts GoroutineOptions) {
	opts.EnsureDefaults()
	if cl, ok := sess.(Closer); ok {
		defer cl.Closed() // after the close below: a pump blocked writing to the client wakes
	}
	defer func() { _ = conn.Close() }() // conn may become the TLS conn
	raw := conn                         // its read deadline is the TLS conn's
	var gs *goSession
	defer func() {
		if gs != nil {
			opts.index.remove(gs)
		}
	}()
	in := append(make([]byte, 0, max(4096, len(pending))), pending...)
	out := make([]byte, 0, 4096)
	// cw serializes this goroutine's writes with a proxy pump's
	// (ConnInfo.Client); it follows conn into TLS.
	cw := &clientWriter{conn: conn}
	write := func(b []byte) bool {
		if len(b) == 0 {
			return true
		}
		_, err := cw.write(b, 30*time.Second)
		return err == nil
	}
	limit := func(l Limit) {
		env.Observer.Limit(l)
		_, _ = cw.write(sess.LimitError(l, out[:0]), time.Second)
	}
	if !opts.Started {
		info.TLSAvailable = opts.TLS != nil
	}
	info.Offloaded = true
	info.Client = cw
	handshakeBy := time.Now().Add(opts.HandshakeTimeout)
	sniff := !opts.Started && !info.TLS && p.TLSFirstByte()
	upgradeNow := opts.UpgradeFirst
	if !opts.Started {
		env.Now = time.Now()
		out = sess.Start(env, out[:0])
		if !write(out) {
			return
		}
	}
	buf := make([]byte, 16<<10)
	var setWake time.Time // the read deadline last set (zero: set it)
	authed := false
	var claims *core.Claims
	end := func(err error, now time.Time) {
		env.Observer.Authenticated(info, claims, err, now)
		_, _ = cw.write(sess.Terminate(err, out[:0]), time.Second)
	}
	for {
		if upgradeNow {
			upgradeNow = false
			c, err := upgrade(conn, in, opts.TLS, info, handshakeBy)
			if err != nil {
				return
			}
			conn, in = c, in[:0]
			cw.set(conn)
		}
		for len(in) > 0 {
			if sniff {
				sniff = false
				if in[0] == 0x16 {
					upgradeNow = true
					break
				}
			}
			env.Now = time.Now()
			n, o, act := sess.Handle(env, in, out[:0])
			out = o
			if n < 0 || n > len(in) {
				return
			}
			in = in[:copy(in, in[n:])]
			if !write(out) || act == Close {
				return
			}
			if act == UpgradeTLS {
				upgradeNow = true
				break
			}
			if n == 0 {
				break
			}
		}
		if upgradeNow {
			continue
		}
		if cap(out) > 64<<10 {
			out = make([]byte, 0, 4096)
		}
		// As on the loop: indexed once it has claims, even if it said it
		// was authenticated before it held any (a MongoDB hello).
		if (!authed || claims == nil) && !opts.refusing && sess.Authenticated() {
			authed = true
			claims = sess.Claims()
			if claims != nil && opts.index != nil {
				gs = &goSession{claims: claims, raw: raw}
				opts.index.add(gs)
				// A revocation applied between the verification and the
				// add found no session to wake: check once more.
				now := time.Now()
				if err := env.recheck(claims, now); err != nil {
					end(err, now)
					return
				}
			}
		}
		maxIn, deadline, lim := env.MaxPreAuthMessage, handshakeBy, LimitHandshakeTimeout
		if authed {
			maxIn, deadline, lim = env.MaxMessage, time.Now().Add(opts.IdleTimeout), LimitIdleTimeout
		}
		if maxIn <= 0 || maxIn > opts.MaxBuffered {
			maxIn = opts.MaxBuffered
		}
		if len(in) > maxIn+1024 {
			limit(LimitMessageSize)
			return
		}
		// Read until the deadline, waking every Recheck, at the token's
		// expiry, and when a revocation names the session, to check the
		// token again (a read timeout leaves a TLS connection usable).
		for {
			wake := deadline
			if claims != nil {
				wake = minTime(wake, time.Now().Add(opts.Recheck))
				if !env.keepExpired {
					wake = minTime(wake, time.Unix(claims.ExpiresAt, 0))
				}
			}
			// A deadline costs a timer update: it is moved only when it
			// must come sooner, or has fallen more than a quarter of
			// Recheck behind (an early wake is harmless: the loop checks
			// and reads again). After a timeout it is always set again
			// (a poke leaves it in the past).
			if setWake.IsZero() || wake.Before(setWake) || wake.Sub(setWake) > opts.Recheck/4 {
				_ = conn.SetReadDeadline(wake)
				setWake = wake
			}
			// After the deadline, so that a poke between the two is seen
			// here or interrupts the Read (goIndex.poke sets the reverse).
			if gs != nil {
				if r := gs.pending.Swap(nil); r != nil {
					now := time.Now()
					if err := verdict(env, claims, r, now); err != nil {
						end(err, now)
						return
					}
				}
			}
			k, err := conn.Read(buf)
			in = append(in, buf[:k]...)
			if err == nil || k > 0 {
				break
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return
			}
			setWake = time.Time{}
			now := time.Now()
			if !now.Before(deadline) {
				if opts.refusing {
					_, _ = cw.write(sess.LimitError(LimitConnections, out[:0]), time.Second)
					return
				}
				limit(lim)
				return
			}
			if claims == nil {
				continue
			}
			var r *Revocation
			if gs != nil {
				r = gs.pending.Swap(nil)
			}
			err = env.recheck(claims, now)
			if r != nil {
				err = verdict(env, claims, r, now)
			}
			if err != nil {
				end(err, now)
				return
			}
		}
	}
}

// clientWriter is ConnInfo.Client on the goroutine path: one lock around
// every write to the client, so that a proxy pump's messages and the
// session's own output never interleave.
type clientWriter struct {
	mu       sync.Mutex
	conn     net.Conn
	deadline time.Time // the write deadline last set
}

// set switches to the connection's TLS layer after an upgrade (before
// ConnInfo.Client can be in use by anyone else).
func (w *clientWriter) set(c net.Conn) {
	w.mu.Lock()
	w.conn, w.deadline = c, time.Time{}
	w.mu.Unlock()
}

// write writes b whole within timeout.
func (w *clientWriter) write(b []byte, timeout time.Duration) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// Moved only when it must come sooner or is a second behind: a
	// deadline costs a timer update, and a proxy writes per message.
	if d := time.Now().Add(timeout); d.Before(w.deadline) || d.Sub(w.deadline) > time.Second {
		_ = w.conn.SetWriteDeadline(d)
		w.deadline = d
	}
	return w.conn.Write(b)
}

// pumpWriteTimeout bounds how long a pump's write may wait for a client
// that has stopped reading: long, because a slow reader of a large result
// is not a fault, but not forever.
const pumpWriteTimeout = 5 * time.Minute

// Write writes b whole (io.Writer, for a proxy pump).
func (w *clientWriter) Write(b []byte) (int, error) { return w.write(b, pumpWriteTimeout) }

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// upgrade runs a server TLS handshake over conn, replaying pending first.
func upgrade(conn net.Conn, pending []byte, cfg *tls.Config, info *ConnInfo, by time.Time) (*tls.Conn, error) {
	if cfg == nil || info.TLS {
		return nil, errors.New("netio: TLS is not configured")
	}
	raw := conn
	if len(pending) > 0 {
		raw = &prefixConn{Conn: conn, prefix: append([]byte(nil), pending...)}
	}
	tc := tls.Server(raw, cfg)
	if limit := time.Now().Add(10 * time.Second); by.IsZero() || by.After(limit) {
		by = limit
	}
	_ = tc.SetDeadline(by)
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
