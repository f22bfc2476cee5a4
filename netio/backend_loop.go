package netio

// A backend on its event loop: gnet's open, traffic and close events for a
// server connection, what its handler returns delivered to its client, and
// the pausing of either side while the other has too much to write.

import (
	"context"
	"net"
	"os"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// endBackend ends b: off every list, its paused socket closed, the handler
// told when notify (and it has one), then its release function.
func (l *loopState) endBackend(b *Backend, notify bool) {
	if b.state == bClosed || b.state == bDetached {
		return
	}
	owner, h := b.owner, b.h
	b.state = bClosed
	l.unpark(b)
	b.SetDeadline(time.Time{})
	if b.fd >= 0 {
		_ = unix.Close(b.fd)
		b.fd = -1
	}
	l.paused = removeBackend(l.paused, b)
	b.carry, b.pend = nil, nil
	if notify && h != nil {
		l.env.Now = time.Now()
		out, act := h.BackendClosed(&l.env, b, l.out[:0])
		l.toClient(owner, out, act, false)
	}
	b.h, b.owner = nil, nil
	if r := b.release; r != nil {
		b.release = nil
		r()
	}
}

// toClient writes a backend's or a LinkFunc's output to the client cs and
// applies act (Continue or Close; anything else closes), then records an
// authentication that happened there. With rerun, client bytes that
// arrived while the session waited (an Attach, a Do) are handled next,
// those carried across a pause of the client included.
func (l *loopState) toClient(cs *connState, out []byte, act Action, rerun bool) {
	defer func() {
		// A backend's reads are up to 64 KiB (gnet's read buffer) plus a
		// message's start left from the read before: keep a buffer that
		// holds them, so that a large result does not allocate per read.
		if cap(out) > maxKeptOut {
			l.out = make([]byte, 0, 4096)
		} else {
			l.out = out[:0]
		}
	}()
	if cs == nil || cs.closed || cs.handedOff {
		return
	}
	if cs.paused != nil { // kept until it reads again
		if kept := cs.pausedWrite(out); !kept || act != Continue {
			l.endPaused(cs, nil)
		}
		return
	}
	c := cs.c
	_ = write(c, out) // a failure closes it (OnClose)
	if cs.closed {
		return
	}
	if act != Continue {
		l.untrack(cs)
		_ = l.el.Close(c)
		return
	}
	now := l.env.Now
	if (!cs.authed || cs.claims == nil) && !cs.refusing && cs.sess.Authenticated() {
		l.authenticated(cs)
		cs.deadline = l.deadlineFor(cs, now)
		// A revocation applied between the admission and now found no
		// session to end: check once more.
		if cs.claims != nil {
			if err := l.env.recheck(cs.claims, now); err != nil {
				l.refused = append(l.refused, refusal{cs, err})
				l.endRefused(now)
				return
			}
		}
	}
	if rerun && (c.InboundBuffered() > 0 || len(cs.carry) > 0) {
		if l.s.OnTraffic(c) == gnet.Close {
			_ = l.el.Close(c) // OnClose ends it (a pause or hand-off left it already)
		}
	}
}

// backendOpen is OnOpen for a connection Attach or a resume registered.
func (s *server) backendOpen(c gnet.Conn, b *Backend) gnet.Action {
	l := b.l
	switch b.state {
	case bAttaching:
		if !b.claim.CompareAndSwap(0, 1) { // Attach gave up: the caller cleaned up
			c.SetContext(nil)
			return gnet.Close
		}
		b.c, b.state = c, bOpen
		done, owner := b.done, b.owner
		b.done = nil
		l.env.Now = time.Now()
		b.busy++
		out, act := done(&l.env, b, l.out[:0])
		b.busy--
		l.toClient(owner, out, act, true)
		return b.afterCall(c)
	case bResuming:
		b.c, b.state = c, bOpen
		if len(b.pend) > 0 {
			p := b.pend
			b.pend = nil
			if b.Write(p) != nil {
				return gnet.None // closed by the failed write
			}
		}
		return gnet.None
	}
	c.SetContext(nil) // closed while it was registering
	return gnet.Close
}

// afterCall is what gnet should do with b's connection c after a callback
// of b's handler: close it when the handler closed or detached b.
func (b *Backend) afterCall(c gnet.Conn) gnet.Action {
	if b.closeConn || b.state != bOpen || b.c != c {
		b.closeConn = false
		if b.c != c {
			c.SetContext(nil)
		}
		return gnet.Close
	}
	return gnet.None
}

// backendTraffic is OnTraffic for a backend's connection.
func (s *server) backendTraffic(c gnet.Conn, b *Backend) gnet.Action {
	if b.c != c || b.state != bOpen {
		c.SetContext(nil)
		return gnet.Close
	}
	if b.h == nil { // parked: a server speaking unasked is not reusable
		return gnet.Close
	}
	l := b.l
	if b.await > 0 && c.InboundBuffered()+len(b.carry) < b.await {
		return gnet.None
	}
	b.await = 0
	in, _ := c.Peek(-1)
	carried := len(b.carry) > 0
	if carried {
		b.carry = append(b.carry, in...)
		discard(c, len(in))
		in = b.carry
	}
	owner := b.owner
	// A client that sent more behind its login while the server side was
	// being set up is handled once the session is ready.
	rerun := owner != nil && !owner.authed
	l.env.Now = time.Now()
	b.busy++
	n, out, act := b.h.BackendTraffic(&l.env, b, in, l.out[:0])
	b.busy--
	if n < 0 || n > len(in) {
		n = len(in) // a handler bug must not take the loop down
		b.closeConn = true
	}
	if carried {
		if b.carry = b.carry[:copy(b.carry, b.carry[n:])]; len(b.carry) == 0 {
			b.carry = nil
		}
	} else if b.state == bOpen && b.c == c {
		discard(c, n)
	}
	l.toClient(owner, out, act, rerun)
	if a := b.afterCall(c); a != gnet.None {
		return a
	}
	if o := b.owner; o != nil && !o.closed && ownerBehind(o, pauseAbove) {
		return l.pause(b, c)
	}
	return gnet.None
}

// ownerBehind reports whether the client o has more than limit bytes
// waiting to go out (gnet's buffer, or what is kept while it is paused).
func ownerBehind(o *connState, limit int) bool {
	if p := o.paused; p != nil {
		return len(p.pend) > limit
	}
	return o.c != nil && o.c.OutboundBuffered() > limit
}

// backendClose is OnClose for a backend's connection.
func (s *server) backendClose(c gnet.Conn, b *Backend) {
	if b.c != c {
		return // a connection the backend has left
	}
	b.c = nil
	b.l.endBackend(b, !b.quiet && b.busy == 0)
}

// pause takes b off the poller while its owner has too much to write: the
// socket is duplicated and gnet closes its own descriptor; the unconsumed
// bytes are kept. It is called from b's traffic callback.
func (l *loopState) pause(b *Backend, c gnet.Conn) gnet.Action {
	fd, ok := offPoller(c, func() bool { return b.state == bOpen }, &b.carry)
	if !ok {
		return gnet.None // try again on the next read
	}
	b.fd, b.state, b.c = fd, bPaused, nil
	c.SetContext(nil)
	l.paused = append(l.paused, b)
	l.armResume()
	return gnet.Close
}

// armResume schedules a look at the paused backends.
func (l *loopState) armResume() {
	if l.resumeArmed {
		return
	}
	l.resumeArmed = true
	time.AfterFunc(pauseCheck, func() {
		if l.el.Execute(context.Background(), loopTask(l.checkPaused)) != nil {
			l.resumeArmed = false // the loop has stopped
		}
	})
}

// checkPaused resumes the paused backends whose owners have drained (or
// gone).
func (l *loopState) checkPaused() {
	l.resumeArmed = false
	list := l.paused
	l.paused = nil
	for _, b := range list {
		if b.state != bPaused {
			continue
		}
		if o := b.owner; o != nil && !o.closed && ownerBehind(o, resumeBelow) {
			l.paused = append(l.paused, b)
			continue
		}
		l.resume(b)
	}
	l.checkPausedClients()
	if len(l.paused) > 0 || len(l.pausedClients) > 0 {
		l.armResume()
	}
}

// resume registers a paused backend's socket on the loop again.
func (l *loopState) resume(b *Backend) {
	f := os.NewFile(uintptr(b.fd), "backend")
	b.fd = -1
	nc, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		l.endBackend(b, true)
		return
	}
	b.state = bResuming
	b.gen++
	gen := b.gen
	ch, err := l.el.Enroll(gnet.NewContext(context.Background(), b), nc)
	if err != nil {
		_ = nc.Close()
		l.endBackend(b, true)
		return
	}
	go func() {
		<-ch
		_ = l.el.Execute(context.Background(), loopTask(func() {
			if b.state == bResuming && b.gen == gen { // never registered
				l.endBackend(b, true)
			}
		}))
	}()
}

// expireBackends closes the backends whose deadline has passed (on the
// loop's tick).
func (l *loopState) expireBackends(now time.Time) {
	var due []*Backend
	for _, b := range l.timed {
		if now.After(b.deadline) {
			due = append(due, b)
		}
	}
	for _, b := range due {
		b.SetDeadline(time.Time{})
		if b.state == bOpen && b.busy == 0 {
			_ = l.el.Close(b.c) // OnClose: BackendClosed, release
		}
		l.endBackend(b, true)
	}
}
