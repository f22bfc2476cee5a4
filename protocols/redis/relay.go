// Proxy mode, server to client, on both paths (the pump goroutine,
// proxy_pump.go, and the event loop, loopproxy_relay.go): the server's
// bytes followed by the reply scanner, the replies counted, and the
// gateway's own replies (injections) put in their place between them.

package redis

// relayState is what passing the server's bytes on keeps: embedded in
// proxy (where answered, lastType and inj are guarded by its mu, and the
// rest is the pump's) and in loopProxy (all the loop's).
type relayState struct {
	scan     replyScanner
	answered uint64 // replies passed on (or dropped)
	lastType byte   // the type of the last reply passed on
	inj      []injection
	holding  bool   // the current value may be a reply to drop: held
	hold     []byte // its bytes so far
}

// injection is a reply of the gateway's own, to write once the first at
// replies have been passed on; then the next swallow replies (to commands
// the gateway sent for itself: RESET and AUTH, DISCARD) are dropped.
type injection struct {
	at      uint64
	data    []byte
	emitted bool
	swallow int
}

// count follows p (a read passed on whole) with the scanner: how far it
// got (all of p but on an error), how many replies ended in it and the
// type of the last. It changes only the scanner: the caller adds the
// count to answered.
func (r *relayState) count(p []byte, resp2PubSub bool) (n int, counted uint64, last byte, err error) {
	for n < len(p) {
		k, done, ferr := r.scan.feed(p[n:])
		if ferr != nil {
			return n, counted, last, ferr
		}
		n += k
		if done {
			if !r.scan.pushed(resp2PubSub) {
				counted++
				last = r.scan.top
			}
			r.scan.next()
		}
	}
	return n, counted, last, nil
}

// pass appends p to w value by value, counting the replies, with the
// gateway's replies between values where they are due, and dropping the
// replies it was told to swallow (held until they end: a Pub/Sub message
// that turns out to answer no command is passed on).
func (r *relayState) pass(p, w []byte, resp2PubSub bool) ([]byte, error) {
	for i := 0; ; {
		if r.scan.between() {
			w = r.emit(w)
		}
		if i >= len(p) {
			return w, nil
		}
		if r.scan.between() {
			e := r.inj
			r.holding = len(e) > 0 && e[0].emitted && e[0].swallow > 0 && e[0].at <= r.answered
		}
		k, done, err := r.scan.feed(p[i:])
		if err != nil {
			return w, err
		}
		seg := p[i : i+k]
		i += k
		if r.holding {
			r.hold = append(r.hold, seg...)
		} else {
			w = append(w, seg...)
		}
		if !done {
			continue
		}
		counted := !r.scan.pushed(resp2PubSub)
		if counted {
			r.answered++
			r.lastType = r.scan.top
		}
		if r.holding {
			if counted {
				e := &r.inj[0]
				if e.swallow--; e.swallow == 0 {
					r.inj = r.inj[1:]
				}
			} else {
				w = append(w, r.hold...)
			}
			if cap(r.hold) > 64<<10 {
				r.hold = nil
			}
			r.hold, r.holding = r.hold[:0], false
		}
		r.scan.next()
	}
}

// emit appends the gateway's replies that are due (their at replies
// passed on) to w.
func (r *relayState) emit(w []byte) []byte {
	for len(r.inj) > 0 {
		e := &r.inj[0]
		if e.at > r.answered {
			break
		}
		if !e.emitted {
			w = append(w, e.data...)
			e.emitted, e.data = true, nil
		}
		if e.swallow > 0 {
			break
		}
		r.inj = r.inj[1:]
	}
	if len(r.inj) == 0 {
		r.inj = nil
	}
	return w
}

// owed appends what the client is owed when the server connection ends
// between two values with sent commands sent: the gateway's replies in
// their place, and msgUpstreamLost for each reply that cannot come (one
// for a subscriber waiting for none), so that no client waits forever.
func (r *relayState) owed(w []byte, sent uint64, pubsub bool) []byte {
	outstanding := r.answered < sent
	for {
		w = r.emit(w)
		if r.answered >= sent {
			break
		}
		r.answered++
		if e := r.inj; len(e) > 0 && e[0].emitted && e[0].swallow > 0 {
			if e[0].swallow--; e[0].swallow == 0 {
				r.inj = r.inj[1:]
			}
			continue
		}
		w = AppendError(w, msgUpstreamLost)
	}
	if !outstanding && pubsub {
		w = AppendError(w, msgUpstreamLost)
	}
	return w
}
