package netio

import (
	"net"
	"os"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/heliosdb/auth/core"
)

// handoff moves a connection from its event loop to a goroutine running
// ServeConn: for the standard crypto/tls (gnet has no TLS) when upgrade is
// true, or, for an Offload, to keep running the session in plaintext off the
// loop. It flushes what gnet still holds, duplicates the socket, copies the
// inbound bytes the session has not consumed (a ClientHello sent right
// behind an SSLRequest, or whatever a client sent behind the message that
// asked for Offload), and returns gnet.Close: gnet closes only its own
// descriptor, without a shutdown, so the socket lives on in the duplicate.
// out is written first, in plaintext (the 'S' answering an SSLRequest). The
// connection keeps its limiter slot and open-connection count until the
// goroutine ends; its deadlines go with it (ServeConn counts the handshake
// deadline from ConnInfo.Accepted), and an authenticated session moves from
// the loop's index to the gateway's goroutine index.
func (s *server) handoff(c gnet.Conn, cs *connState, l *loopState, pending, out []byte, upgrade bool) gnet.Action {
	if upgrade && s.tls == nil {
		if len(out) > 0 {
			_, _ = c.Write(out)
		}
		return gnet.Close
	}
	if c.OutboundBuffered() > 0 {
		if err := c.Flush(); err != nil || c.OutboundBuffered() > 0 {
			return gnet.Close
		}
	}
	fd, err := c.Dup()
	if err != nil {
		return gnet.Close
	}
	f := os.NewFile(uintptr(fd), "handoff")
	nc, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		return gnet.Close
	}
	pend := append([]byte(nil), pending...)
	first := append([]byte(nil), out...)
	l.out = l.out[:0]
	cs.handedOff = true
	l.untrack(cs)
	cs.c, cs.loop = nil, nil
	g := s.g
	g.tlsMu.Lock()
	if g.closing {
		g.tlsMu.Unlock()
		_ = nc.Close()
		s.release(cs)
		return gnet.Close
	}
	g.tlsConn[nc] = struct{}{}
	g.tlsWG.Add(1)
	g.tlsMu.Unlock()
	go s.serveTLS(nc, cs, pend, first, upgrade)
	return gnet.Close
}

// release gives back a handed-off connection's slot and count.
func (s *server) release(cs *connState) {
	cs.releaseSlots(s.g.limiter)
	s.obs.Closed()
}

// serveTLS runs a handed-off session with ServeConn on its own goroutine
// (TLS or, when upgrade is false, an Offload).
func (s *server) serveTLS(nc net.Conn, cs *connState, pending, first []byte, upgrade bool) {
	g := s.g
	defer func() {
		g.tlsMu.Lock()
		delete(g.tlsConn, nc)
		g.tlsMu.Unlock()
		s.release(cs)
		g.tlsWG.Done()
	}()
	if len(first) > 0 {
		_ = nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := nc.Write(first); err != nil {
			_ = nc.Close()
			return
		}
		_ = nc.SetWriteDeadline(time.Time{})
	}
	v := g.verifier()
	defer g.verifiers.Put(v)
	env := &Env{Verifier: v, MaxPreAuthMessage: g.lv().MaxPreAuthMessage, MaxMessage: g.lv().MaxMessage, Observer: s.obs,
		keepExpired: g.cfg.SessionExpiry == ExpiryKeep}
	hs := time.Until(cs.info.Accepted.Add(g.lv().HandshakeTimeout))
	if cs.refusing {
		hs = time.Until(time.Unix(0, cs.deadline)) // the refusal's deadline
	}
	if hs <= 0 {
		hs = time.Millisecond
	}
	ServeConn(nc, s.p, cs.sess, &cs.info, env, pending, GoroutineOptions{
		TLS:              s.tls,
		HandshakeTimeout: hs,
		IdleTimeout:      g.lv().IdleTimeout,
		MaxBuffered:      g.lv().MaxMessage + 1024,
		Started:          true,
		UpgradeFirst:     upgrade,
		Recheck:          g.cfg.Sweep, // a timer wake per Sweep per idle TLS session
		index:            g.goIdx,
		refusing:         cs.refusing,
	})
}

// verifiers pools the TLS goroutines' verifiers: each is used by one
// goroutine at a time, and its keyed hashers are expensive to make.
func (g *Gateway) verifier() *core.Verifier {
	if v, ok := g.verifiers.Get().(*core.Verifier); ok {
		return v
	}
	return core.NewVerifier(g.cfg.Keyring, g.cfg.Revocations)
}
