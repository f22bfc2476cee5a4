package mysql

// Proxy mode on the event loop: the server's packets to the client, and
// the answers to the gateway's own reset.

import (
	"time"

	"github.com/heliosdb/auth/netio"
)

// BackendTraffic handles the server's bytes (netio.BackendHandler).
func (lp *loopProxy) BackendTraffic(_ *netio.Env, b *netio.Backend, in, out []byte) (int, []byte, netio.Action) {
	switch lp.state {
	case lpReady:
		return lp.relay(b, in, out)
	case lpResetting:
		return lp.resetReply(b, in)
	}
	return len(in), out, netio.Continue // nothing is owed to anyone: dropped
}

// BackendClosed: the server closed the connection (a restart, a KILL) or
// writing to it failed. The client is told as the goroutine proxy tells
// it: the ERR answers what it waits for, or, when idle, arrives as the
// reply to its next command (a database/sql pool's connection check sees
// it and drops the connection); the next packet it sends closes it.
func (lp *loopProxy) BackendClosed(_ *netio.Env, _ *netio.Backend, out []byte) ([]byte, netio.Action) {
	st := lp.state
	lp.state = lpDone
	if lp.gone || st != lpReady || lp.revoked {
		return out, netio.Continue
	}
	lp.told = true
	return appendUpstreamLost(out, lp.nextSeq()), netio.Continue
}

// relay forwards the server's packets to the client as they come, whole
// packets at a time (a result set is many packets: only the packet under
// way is ever held back). It follows each response's structure
// (response.next) to know where it ends and the transaction state; the
// gateway's own answers that waited for it follow it, a permission error
// gets the guide's words (wall 2), and a LOCAL INFILE request of a token
// without database:write is refused and ends the session.
func (lp *loopProxy) relay(b *netio.Backend, in, out []byte) (int, []byte, netio.Action) {
	i, start := 0, 0
	for len(in)-i >= packetHeaderLen {
		size := int(in[i]) | int(in[i+1])<<8 | int(in[i+2])<<16
		end := i + packetHeaderLen + size
		if end > len(in) {
			b.Await(packetHeaderLen + size)
			break
		}
		seq, p := in[i+3], in[i+packetHeaderLen:end]
		fragment := lp.cont
		lp.cont = size == maxPacketPayload
		lp.lastSeq = seq
		if !lp.active && !fragment && lp.head < len(lp.replies) && !lp.replies[lp.head].gw {
			lp.active, lp.r = true, response{phase: startPhase(lp.replies[lp.head].kind)}
		}
		if !lp.active || fragment {
			// An unsolicited packet (an ERR before the server closes) or
			// the rest of a large one: forwarded as it is.
			i = end
			continue
		}
		verdict, st, ok := lp.r.next(p, size, lp.deprecateEOF)
		if ok {
			lp.status = st
		}
		if verdict == pktInfile && !lp.mayLoad {
			// The classifier let a LOAD DATA LOCAL through for a token
			// without database:write: the file is never read, and the
			// server side cannot be brought back in step cheaply.
			out = appendLoadRefused(append(out, in[start:i]...), seq)
			lp.state = lpDone
			lp.s.state = stClosed
			b.Close()
			return len(in), out, netio.Close
		}
		if size > 0 && p[0] == headerERR {
			if a := annotatePermissionError(in[i:end], lp.key.Role); a != nil {
				out = append(append(out, in[start:i]...), a...)
				start = end
			}
		}
		i = end
		switch verdict {
		case pktInfile:
			lp.infile = true // the client's next packets are the file
		case pktDone:
			lp.active = false
			lp.head++
			if lp.head < len(lp.replies) && lp.replies[lp.head].gw {
				out = lp.gatewayReplies(append(out, in[start:i]...))
				start = i
			}
		}
	}
	out = append(out, in[start:i]...)
	if lp.head == len(lp.replies) {
		lp.head, lp.replies = 0, lp.replies[:0]
	}
	return i, out, netio.Continue
}

// gatewayReplies appends the gateway's own answers now at the head of the
// queue (their turn has come).
func (lp *loopProxy) gatewayReplies(out []byte) []byte {
	for lp.head < len(lp.replies) && lp.replies[lp.head].gw {
		r := &lp.replies[lp.head]
		out = append(out, r.msg...)
		r.msg = nil
		lp.head++
	}
	return out
}

// resetReply reads the OKs of the reset (COM_RESET_CONNECTION, then
// COM_INIT_DB when sent) and parks the connection, or closes it when the
// server refused, left a transaction open or said more.
func (lp *loopProxy) resetReply(b *netio.Backend, in []byte) (int, []byte, netio.Action) {
	i := 0
	for len(in)-i >= packetHeaderLen {
		size := int(in[i]) | int(in[i+1])<<8 | int(in[i+2])<<16
		end := i + packetHeaderLen + size
		if end > len(in) {
			b.Await(packetHeaderLen + size)
			return i, nil, netio.Continue
		}
		p := in[i+packetHeaderLen : end]
		i = end
		if _, st, ok := okStatus(p); ok && size > 0 && p[0] == headerOK {
			lp.status = st
		} else {
			lp.resetFailed = true
		}
		if lp.resets--; lp.resets > 0 {
			continue
		}
		lp.state = lpDone
		b.SetDeadline(time.Time{})
		if lp.resetFailed || lp.status&serverStatusInTrans != 0 || i != len(in) {
			b.Close()
		} else {
			lp.sc.status = lp.status
			lp.giveBack()
		}
		return len(in), nil, netio.Continue
	}
	return i, nil, netio.Continue
}
