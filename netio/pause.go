package netio

import (
	"context"
	"net"
	"os"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Pausing a client: the other direction of a backend's backpressure. A
// client that sends faster than its server takes (a large COPY FROM STDIN)
// would otherwise grow the backend's gnet output buffer without bound. When
// a session's write leaves its backend with more than pauseAbove bytes
// queued (Backend.Write marks the owner), the loop takes the client off the
// poller once its Handle returns, as it pauses a backend: the socket is
// duplicated, gnet's descriptor closed, the unconsumed bytes carried. The
// loop's paused check registers the client again (EventLoop.Enroll) once
// the backend is below resumeBelow, or gone. What the session writes to the
// client meanwhile is kept (up to maxPending) and written first; a session
// ended meanwhile (a deadline, a revocation) is written to and closed on the
// duplicated socket directly.

// pausedClient is a client connection's state while it is off the poller.
type pausedClient struct {
	fd       int      // the duplicated descriptor; -1 once registered again
	pend     []byte   // output written meanwhile
	throttle *Backend // the backend whose queue stopped the client
	gen      uint32   // counts registrations (a stale check is ignored)
	resuming bool
}

// shouldPause reports whether the client's reads must stop now: its
// session's last writes left a backend with too much queued.
func (cs *connState) shouldPause() bool {
	b := cs.throttle
	if b == nil {
		return false
	}
	if b.state != bOpen || b.c == nil || b.c.OutboundBuffered() <= pauseAbove {
		cs.throttle = nil
		return false
	}
	return true
}

// pauseClient takes cs off the poller (from its OnTraffic, after the
// consumed bytes were discarded) and returns what gnet must do with c.
func (l *loopState) pauseClient(cs *connState, c gnet.Conn) gnet.Action {
	fd, ok := offPoller(c, func() bool { return !cs.closed }, &cs.carry)
	if !ok {
		return gnet.None // try again after its next read
	}
	cs.paused = &pausedClient{fd: fd, throttle: cs.throttle}
	cs.throttle = nil
	cs.c = nil
	c.SetContext(nil) // gnet's close is no event of the session's
	l.pausedClients = append(l.pausedClients, cs)
	l.armResume()
	return gnet.Close
}

// clientDrained reports whether a paused client may read again.
func clientDrained(p *pausedClient) bool {
	b := p.throttle
	return b == nil || b.state != bOpen || b.c == nil || b.c.OutboundBuffered() <= resumeBelow
}

// checkPausedClients resumes the paused clients whose backends drained.
func (l *loopState) checkPausedClients() {
	list := l.pausedClients
	l.pausedClients = nil
	for _, cs := range list {
		p := cs.paused
		if p == nil || cs.closed || p.resuming {
			continue
		}
		if !clientDrained(p) {
			l.pausedClients = append(l.pausedClients, cs)
			continue
		}
		l.resumeClient(cs)
	}
}

// resumeClient registers a paused client's socket on the loop again.
func (l *loopState) resumeClient(cs *connState) {
	p := cs.paused
	f := os.NewFile(uintptr(p.fd), "client")
	p.fd = -1
	nc, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		l.s.clientClosed(cs)
		return
	}
	p.resuming = true
	p.gen++
	gen := p.gen
	ch, err := l.el.Enroll(gnet.NewContext(context.Background(), cs), nc)
	if err != nil {
		_ = nc.Close()
		l.s.clientClosed(cs)
		return
	}
	go func() {
		t := time.NewTimer(attachWait)
		defer t.Stop()
		select {
		case <-ch:
		case <-t.C:
		}
		_ = l.el.Execute(context.Background(), loopTask(func() {
			if cs.paused == p && p.resuming && p.gen == gen && !cs.closed { // never registered
				l.s.clientClosed(cs)
			}
		}))
	}()
}

// clientResumed is OnOpen for a paused client registered again: the output
// kept meanwhile goes first, then the carried bytes are handled.
func (s *server) clientResumed(c gnet.Conn, cs *connState) gnet.Action {
	p := cs.paused
	if p == nil || !p.resuming || cs.closed {
		c.SetContext(nil)
		return gnet.Close
	}
	cs.paused, cs.c = nil, c
	if len(p.pend) > 0 {
		if _, err := c.Write(p.pend); err != nil || cs.closed {
			return gnet.None // closed by the failed write
		}
	}
	if len(cs.carry) > 0 {
		return s.OnTraffic(c)
	}
	return gnet.None
}

// pausedWrite keeps output for a paused client; false when too much is kept
// (the session is then ended).
func (cs *connState) pausedWrite(out []byte) bool {
	p := cs.paused
	if len(p.pend)+len(out) > maxPending {
		return false
	}
	p.pend = append(p.pend, out...)
	return true
}

// endPaused ends a paused client's session: the output kept and out are
// written on the duplicated socket as far as it takes them without
// waiting, and it is closed.
func (l *loopState) endPaused(cs *connState, out []byte) {
	p := cs.paused
	if p.fd >= 0 {
		buf := append(p.pend, out...)
		for len(buf) > 0 {
			n, err := unix.Write(p.fd, buf)
			if err != nil || n <= 0 {
				break
			}
			buf = buf[n:]
		}
	}
	l.s.clientClosed(cs)
}

// clientClosed releases what a client connection held once it has ended
// (gnet's OnClose, or a paused client's end): its place in the loop, its
// limiter slots, its count, and the session's Closed.
func (s *server) clientClosed(cs *connState) {
	if cs.closed {
		return
	}
	cs.closed = true
	if p := cs.paused; p != nil {
		if p.fd >= 0 {
			_ = unix.Close(p.fd)
			p.fd = -1
		}
		cs.paused = nil
		if cs.loop != nil {
			cs.loop.pausedClients = removeConn(cs.loop.pausedClients, cs)
		}
	}
	cs.carry = nil
	if cs.idx >= 0 {
		cs.loop.untrack(cs)
	}
	cs.releaseSlots(s.g.limiter)
	s.obs.Closed()
	if cl, ok := cs.sess.(Closer); ok {
		cl.Closed()
	}
}

// removeConn removes cs from list (order is not kept).
func removeConn(list []*connState, cs *connState) []*connState {
	for i, x := range list {
		if x == cs {
			last := len(list) - 1
			list[i] = list[last]
			list[last] = nil
			return list[:last]
		}
	}
	return list
}

// closePaused ends what is still off the poller once the engine has stopped
// (its loops have returned): paused clients and backends.
func (s *server) closePaused() {
	for _, l := range s.loops.all() {
		for _, cs := range append([]*connState(nil), l.pausedClients...) {
			s.clientClosed(cs)
		}
		for _, b := range append([]*Backend(nil), l.paused...) {
			l.endBackend(b, false)
		}
	}
}

// offPoller prepares taking c off the poller: what gnet still holds for it
// is flushed, and its socket duplicated (gnet then closes only its own
// descriptor), the bytes not consumed yet added to *carry. ok is false —
// try again later — while output is pending, when open says the
// connection is no longer usable after the flush, or when the dup fails.
func offPoller(c gnet.Conn, open func() bool, carry *[]byte) (fd int, ok bool) {
	if c.OutboundBuffered() > 0 {
		if err := c.Flush(); err != nil || !open() || c.OutboundBuffered() > 0 {
			return 0, false
		}
	}
	fd, err := c.Dup()
	if err != nil {
		return 0, false
	}
	if rest, _ := c.Peek(-1); len(rest) > 0 {
		*carry = append(*carry, rest...)
	}
	return fd, true
}
