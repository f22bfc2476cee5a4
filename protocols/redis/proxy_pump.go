// Proxy mode, server to client: the pump that passes the server's replies
// on to the client, counts them, and writes the gateway's own replies
// (injections) in their place between them.

package redis

import (
	"bytes"
	"errors"
	"sync"
	"time"
)

// readBuffers are the pumps' read buffers (32 KB each: a session that
// connects, runs a command and leaves should not make one for the
// garbage collector).
var readBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// errClientGone: the pump could not write to the client.
var errClientGone = errors.New("redis proxy: the client is gone")

// reply writes a reply of the gateway's own in its place: now, when every
// command sent has been answered and the pump is between two values;
// otherwise the pump writes it when the replies before it have gone out.
// swallow replies to commands the session sends next for itself are
// dropped. False when the pump has stopped (nothing was written).
func (px *proxy) reply(data []byte, swallow int) bool {
	px.mu.Lock()
	defer px.mu.Unlock()
	if px.dead {
		return false
	}
	at := px.sent + px.queued
	if px.answered == at && !px.mid && len(px.inj) == 0 {
		if len(data) > 0 {
			if _, err := px.client.Write(data); err != nil {
				return false
			}
		}
		if swallow > 0 {
			px.inj = append(px.inj, injection{at: at, emitted: true, swallow: swallow})
			px.special.Store(true)
		}
		return true
	}
	px.inj = append(px.inj, injection{at: at, data: bytes.Clone(data), swallow: swallow})
	px.special.Store(true)
	return true
}

// pump passes the server's bytes on to the client until the server
// connection fails or is stopped (a read deadline in the past).
func (px *proxy) pump() {
	defer close(px.done)
	bp := readBuffers.Get().(*[]byte)
	defer readBuffers.Put(bp)
	rd := *bp
	for {
		n, rerr := px.sc.Read(rd)
		if n > 0 {
			var err error
			if px.holding || px.special.Load() {
				err = px.slow(rd[:n])
			} else {
				err = px.fast(rd[:n])
			}
			if err != nil {
				px.lost(err)
				return
			}
		}
		if rerr != nil {
			px.lost(rerr)
			return
		}
	}
}

// fast passes a read on when no reply of the gateway's own waits: one
// write, then the count.
func (px *proxy) fast(p []byte) error {
	_, counted, last, err := px.count(p, px.pubsub.Load() && !px.resp3.Load())
	if err != nil {
		return err
	}
	mid := !px.scan.between()
	if mid {
		px.mu.Lock()
		px.mid = true
		px.mu.Unlock()
	}
	if _, err := px.client.Write(p); err != nil {
		return errClientGone
	}
	px.mu.Lock()
	defer px.mu.Unlock()
	px.answered += counted
	if counted > 0 {
		px.lastType = last
	}
	px.mid = mid
	if len(px.inj) > 0 && !mid {
		// Queued while this read was passed on: due now, if at all.
		w := px.emit(px.out[:0])
		px.special.Store(len(px.inj) > 0)
		if len(w) > 0 {
			if _, werr := px.client.Write(w); werr != nil {
				err = errClientGone
			}
		}
	}
	if px.waiting > 0 {
		px.cond.Broadcast()
	}
	return err
}

// slow passes a read on value by value (relayState.pass) under the lock:
// a reply of the session's own cannot slip in between.
func (px *proxy) slow(p []byte) error {
	px.mu.Lock()
	defer px.mu.Unlock()
	w, err := px.pass(p, px.out[:0], px.pubsub.Load() && !px.resp3.Load())
	px.mid = !px.scan.between() && !px.holding
	px.special.Store(len(px.inj) > 0)
	if px.waiting > 0 {
		px.cond.Broadcast()
	}
	if len(w) > 0 {
		if _, werr := px.client.Write(w); werr != nil && err == nil {
			err = errClientGone
		}
	}
	if cap(w) > 256<<10 {
		w = nil
	}
	px.out = w[:0]
	return err
}

// lost ends the pump. When the server went away (not stopped by
// closeProxy) and the client waits for replies, each gets msgUpstreamLost
// in its place (a subscriber gets one), so that no client waits forever
// for a reply that cannot come; the session closes the connection at the
// client's next command.
func (px *proxy) lost(err error) {
	px.mu.Lock()
	defer px.mu.Unlock()
	px.dead = true
	defer px.cond.Broadcast()
	if px.stopping {
		return
	}
	px.failed = true
	if err == errClientGone || !px.scan.between() || px.holding {
		return // mid-value: nothing can be added that the client would parse
	}
	w := px.owed(nil, px.sent, px.pubsub.Load())
	if len(w) > 0 {
		_, _ = px.client.Write(w)
	}
}

// stop stops the pump and waits for it.
func (px *proxy) stop() {
	px.mu.Lock()
	px.stopping = true
	px.mu.Unlock()
	_ = px.sc.SetReadDeadline(time.Now())
	<-px.done
}
