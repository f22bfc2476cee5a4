// Proxy mode on the event loop, server to client: the server's bytes
// passed on as they come and counted reply by reply, the gateway's own
// replies put in their place between them, and the client's commands
// written to the server.

package redis

import (
	"bytes"

	"github.com/heliosdb/auth/netio"
)

// queue adds a command for the server (counted: it expects one reply). A
// large batch is written at once; the rest when Handle returns (flush).
func (lp *loopProxy) queue(cmd []byte, counted bool) {
	lp.wbuf = append(lp.wbuf, cmd...)
	if counted {
		lp.sent++
	}
	if len(lp.wbuf) >= 64<<10 {
		lp.write()
	}
}

// write writes the queued commands to the server; a failure is reported by
// flush.
func (lp *loopProxy) write() {
	if len(lp.wbuf) == 0 || lp.state != lpReady {
		return
	}
	if err := lp.b.Write(lp.wbuf); err != nil {
		lp.writeFailed = true
	}
	if cap(lp.wbuf) > 256<<10 {
		lp.wbuf = nil
	} else {
		lp.wbuf = lp.wbuf[:0]
	}
}

// flush writes the queued commands to the server. When a write failed (the
// connection has ended), the replies owed get msgUpstreamLost (lose).
func (lp *loopProxy) flush(out []byte) ([]byte, netio.Action) {
	lp.write()
	if !lp.writeFailed {
		return out, netio.Continue
	}
	lp.writeFailed = false
	lp.wbuf = lp.wbuf[:0]
	if lp.state != lpReady {
		return out, netio.Continue
	}
	return lp.lose(out)
}

// reply puts a reply of the gateway's own in its place: in lp.now when
// every command sent has been answered and the server is between two
// values, else queued behind the replies still owed. swallow replies to
// commands the session sends next for itself are dropped.
func (lp *loopProxy) reply(data []byte, swallow int) {
	at := lp.sent
	if lp.answered == at && lp.scan.between() && !lp.holding && len(lp.inj) == 0 {
		lp.now = append(lp.now, data...)
		if swallow > 0 {
			lp.inj = append(lp.inj, injection{at: at, emitted: true, swallow: swallow})
		}
		return
	}
	lp.inj = append(lp.inj, injection{at: at, data: bytes.Clone(data), swallow: swallow})
}

// holdFront keeps the gateway's replies a Handle call wrote in their turn
// (out, at once, before every reply still owed) to go out with the
// server's next bytes, in one write: an AUTH answered by the gateway and
// the PING behind it forwarded get their replies in one write, not two.
// It reports false, keeping nothing, unless a reply of the server is
// sure to come soon: a command is owed one, none of this call's commands
// may be held back by the server (BLPOP…) or changes the connection's
// state, and the server is between two values.
func (lp *loopProxy) holdFront(out []byte) bool {
	if lp.noHold || lp.state != lpReady || lp.answered == lp.sent || !lp.scan.between() || lp.holding || lp.quit {
		return false
	}
	lp.inj = append(lp.inj, injection{})
	copy(lp.inj[1:], lp.inj)
	lp.inj[0] = injection{at: lp.answered, data: bytes.Clone(out)}
	return true
}

// waitFor stops the session's commands until the command just queued has
// been answered; then kind's effect applies (finishWait).
func (lp *loopProxy) waitFor(kind waitKind) {
	lp.wait, lp.waitAt = kind, lp.sent
}

// blocked reports whether the session must not handle the client's next
// command yet.
func (lp *loopProxy) blocked() bool {
	return lp.state == lpConnecting || lp.wait != waitNone || lp.quit
}

// sendHello sends HELLO [proto [SETNAME name]] (the token, if any, was the
// gateway's) and waits for its reply.
func (lp *loopProxy) sendHello(h *helloArgs) {
	lp.dirty = true
	lp.queue(helloCommand(h), true)
	lp.hello = h
	lp.waitFor(waitHello)
}

// finishWait applies what the session waited for, now that the reply has
// come (or the connection was lost), and has the client's unread commands
// handled.
func (lp *loopProxy) finishWait() {
	s, ok := lp.s, lp.state == lpReady
	switch lp.wait {
	case waitSelect:
		if ok && lp.lastType == '+' {
			s.db = lp.waitDB
		}
	case waitHello:
		h := lp.hello
		lp.hello = nil
		if ok && s.helloTook(h, lp.lastType) {
			lp.resp3 = h.proto == RESP3
		}
	case waitReset:
		lp.resp3, lp.pubsub = false, false
	}
	lp.wait = waitNone
	if lp.stalled {
		lp.stalled = false
		_ = lp.link.Do(func(_ *netio.Env, out []byte) ([]byte, netio.Action) { return out, netio.Continue })
	}
}

// relay passes a read of the server's on to the client, counting replies;
// a QUIT closes the client once every reply is out.
func (lp *loopProxy) relay(in, out []byte) ([]byte, netio.Action) {
	var err error
	if !lp.holding && len(lp.inj) == 0 {
		out, err = lp.fast(in, out)
	} else {
		out, err = lp.slow(in, out)
	}
	if err != nil {
		lp.b.Close()
		return lp.lose(out)
	}
	if lp.wait != waitNone && lp.answered >= lp.waitAt {
		lp.finishWait()
	}
	if lp.quit && lp.settled() {
		return out, netio.Close
	}
	return out, netio.Continue
}

// fast passes a read on whole when no reply of the gateway's own waits.
func (lp *loopProxy) fast(in, out []byte) ([]byte, error) {
	n, counted, last, err := lp.count(in, lp.pubsub && !lp.resp3)
	if counted > 0 {
		lp.answered += counted
		lp.lastType = last
	}
	return append(out, in[:n]...), err
}

// slow passes a read on value by value (relayState.pass).
func (lp *loopProxy) slow(p, w []byte) ([]byte, error) {
	return lp.pass(p, w, lp.pubsub && !lp.resp3)
}

// lose ends the server side under the session (the server closed the
// connection, a write failed, its bytes made no sense): each reply the
// client waits for gets msgUpstreamLost in its place (a subscriber gets
// one), so that no client waits forever, and its next command gets it too
// and closes. Mid-value, where nothing the client could parse can be
// added, the client is closed at once.
func (lp *loopProxy) lose(out []byte) ([]byte, netio.Action) {
	lp.state = lpLost
	lp.wbuf = lp.wbuf[:0]
	if !lp.scan.between() || lp.holding {
		return out, netio.Close
	}
	out = lp.owed(out, lp.sent, lp.pubsub)
	if lp.wait != waitNone {
		lp.finishWait()
	}
	if lp.quit {
		return out, netio.Close
	}
	return out, netio.Continue
}
