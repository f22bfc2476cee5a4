package redis

import (
	"context"
	"net"
	"time"

	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/internal/upstream"
)

// Proxy mode on the event loop. A plaintext client's session stays on its
// gnet event loop, and so does its server connection: one parked on the
// same loop (netio.Link.Take) when there is one — the AUTH and the
// commands behind it in the same read are then answered without leaving
// the loop — else one the pool gives on a goroutine (an idle connection or
// a new login, which block) that netio registers on the client's loop
// (netio.Link.Attach). From then on both directions run on the loop,
// without goroutines or locks: the commands of a read are checked as on
// the goroutine path (proxy.go) and written to the server in one write
// when Handle returns, and the server's bytes are passed on as they come
// by BackendTraffic, followed by the same replyScanner, which counts the
// replies so that the gateway's own replies are put in their place
// (loopproxy_relay.go, relay.go). A client reading slowly stops the loop
// reading its server, and a server reading slowly stops the loop reading
// its client (netio pauses either side).
//
// Where the goroutine path waits for the server (SELECT, HELLO and RESET,
// whose effect on the session depends on the reply; QUIT, which closes
// once every reply is out), the loop stops handling the client's commands
// until the reply has come: what the client sent behind stays in the
// transport's buffer and is handled then.
//
// When the client leaves cleanly (everything answered, not revoked), the
// server connection is parked on the loop for its next client — after
// RESET and AUTH as its user again, answered on the loop, when the session
// changed the connection's state — or handed to the pool when a client
// elsewhere waits for one (the pool also reclaims parked ones, see
// Upstream.reclaim). A reset that fails closes it. TLS clients and
// upstreams reached over TLS keep the goroutine proxy.

// parkKey names the server connections parked on the event loops: one
// upstream's pool key.
type parkKey struct {
	up *Upstream
	k  upstream.Key
}

// lpState is where a loop proxy is.
type lpState uint8

const (
	lpConnecting lpState = iota // waiting for a server connection
	lpReady                     // relaying
	lpLost                      // the server connection ended under the session
	lpResetting                 // the client left: RESET and AUTH sent
	lpDone                      // nothing more: the connection is closed or parked
)

// waitKind is what a loop proxy waits for before it handles the client's
// next command.
type waitKind uint8

const (
	waitNone   waitKind = iota
	waitSelect          // SELECT's reply: the database the session is in
	waitHello           // HELLO's reply: the protocol and name
	waitReset           // RESET's and AUTH's: the session starts afresh
)

// loopProxy is a session's server side on its event loop. Every field is
// the loop's: no locks.
type loopProxy struct {
	s     *Session
	up    *Upstream
	key   upstream.Key
	link  *netio.Link
	sc    *serverConn
	b     *netio.Backend
	state lpState

	// first is the reply owed to the command that started the session
	// (AUTH's +OK), written once the server connection is there; hello,
	// when it was HELLO … AUTH, is sent to the server then.
	first []byte
	hello *helloArgs
	// front is first when the client sent more behind: the next Handle
	// writes it before its own replies.
	front []byte

	wbuf []byte // commands not yet written to the server
	sent uint64 // commands queued or written that expect a reply
	now  []byte // the gateway's replies due at once (Handle writes them)
	// The server's bytes passed on and their replies counted (hold also
	// keeps, resetting, a short value's bytes).
	relayState

	// waiting: no client command is handled until answered reaches
	// waitAt; then wait's effect applies (waitDB, hello).
	wait   waitKind
	waitAt uint64
	waitDB int
	// stalled: Handle left client bytes unread while waiting.
	stalled bool

	cmdState
	pubsub, resp3   bool // a SUBSCRIBE-family command was sent; the connection speaks RESP3
	quit            bool // QUIT: close once every reply is out
	revoked, gone   bool // ended from outside; the client connection has closed
	writeFailed     bool // a write to the server failed during Handle
	noHold          bool // this Handle call forwarded a command whose reply may wait (holdFront)
	resetOK, resetL bool // resetting: RESET's reply came; the current value is long
}

// loopMode reports whether the session's proxy runs on its event loop: a
// client on a loop (not TLS, not offloaded) and an upstream every user
// reaches without TLS.
func (s *Session) loopMode() bool {
	return s.info.Link() != nil && s.p.up.plain.Load()
}

// proxying reports whether the session has a server side.
func (s *Session) proxying() bool { return s.px != nil || s.lp != nil }

// startLoopProxy is AUTH's (first is its +OK) or HELLO … AUTH's (hello)
// proxy-mode ending on the event loop: a server connection parked on this
// loop is taken at once, else one is got on a goroutine and the client's
// next commands wait for it.
func (s *Session) startLoopProxy(env *netio.Env, out, first []byte, hello *helloArgs) ([]byte, netio.Action) {
	up := s.p.up
	key, out, ok := s.proxyKey(env, out)
	if !ok {
		return out, netio.Close
	}
	link := s.info.Link()
	lp := &loopProxy{s: s, up: up, key: key, link: link, first: first, hello: hello}
	s.lp = lp
	if b := link.Take(parkKey{up, key}); b != nil {
		return lp.attached(env, b, out)
	}
	go lp.connect(key)
	return out, netio.Continue
}

// connect gets a server connection from the pool (blocking: on its own
// goroutine) and attaches it to the client's loop; a failure reaches the
// client through link.Do.
func (lp *loopProxy) connect(key upstream.Key) {
	up, link := lp.up, lp.link
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	sc, err := up.get(ctx, key)
	if err == nil {
		if _, ok := sc.Conn.(*net.TCPConn); !ok { // cannot happen with a plain upstream
			up.pool.Discard(key, sc)
			err = errUpstreamLost
		} else if err = link.Attach(sc.Conn, sc, func() { up.pool.Discard(key, sc) }, lp.attached); err != nil {
			up.pool.Discard(key, sc)
			err = errUpstreamLost
		}
	}
	if err != nil {
		_ = link.Do(func(_ *netio.Env, out []byte) ([]byte, netio.Action) { return lp.failed(out, err) })
	}
}

// failed ends the start of a session that got no server connection: the
// client gets the error in place of AUTH's reply (and may try once more,
// as go-redis does after a failed HELLO), its next commands -NOAUTH.
func (lp *loopProxy) failed(out []byte, err error) ([]byte, netio.Action) {
	lp.state = lpDone
	s := lp.s
	if lp.gone || s.lp != lp {
		return out, netio.Continue
	}
	s.lp = nil
	s.authed = false
	s.upFailures++
	out = appendUpstreamConnectError(out, lp.up, err)
	if s.upFailures >= 2 {
		return out, netio.Close
	}
	return out, netio.Continue
}

// attached takes the server connection b (parked on this loop, or just
// registered): the reply owed to AUTH goes out, or HELLO is sent. A client
// gone meanwhile leaves the connection parked (it is fresh or reset).
func (lp *loopProxy) attached(_ *netio.Env, b *netio.Backend, out []byte) ([]byte, netio.Action) {
	lp.b = b
	lp.sc = b.Value().(*serverConn)
	if lp.gone || lp.revoked {
		lp.state = lpDone
		lp.giveBack()
		return out, netio.Continue
	}
	b.SetHandler(lp)
	lp.state = lpReady
	if lp.stalled {
		// What the client sent behind is handled next (netio): the reply
		// goes out with theirs (Handle, holdFront).
		lp.front = lp.first
	} else {
		out = append(out, lp.first...)
	}
	lp.first, lp.stalled = nil, false
	if h := lp.hello; h != nil {
		lp.hello = nil
		lp.sendHello(h)
		return lp.flush(out)
	}
	return out, netio.Continue
}

// giveBack returns a clean server connection: to the pool when a client
// elsewhere waits for one of its key, else parked on this loop.
func (lp *loopProxy) giveBack() {
	sc := lp.sc
	upstream.GiveBack(lp.b, lp.up.pool, lp.key, sc, parkKey{lp.up, lp.key}, func(nc net.Conn) { sc.Conn = nc })
}

// clientGone ends the server side once the client connection has closed
// (Session.Closed): a clean session's connection is parked (reset first
// when its state changed); any other is closed.
func (lp *loopProxy) clientGone() {
	lp.gone = true
	switch lp.state {
	case lpConnecting, lpResetting, lpDone:
		return // attached parks what arrives
	case lpReady:
		if !lp.revoked && lp.settled() && len(lp.wbuf) == 0 && lp.wait == waitNone && lp.b.Open() {
			if lp.dirty || lp.pubsub {
				lp.reset()
			} else {
				lp.state = lpDone
				lp.giveBack()
			}
			return
		}
	}
	lp.state = lpDone
	if lp.b != nil {
		lp.b.Close()
	}
}

// settled reports whether every command sent has been answered and every
// reply of the gateway's own written, between two values.
func (lp *loopProxy) settled() bool {
	return lp.answered == lp.sent && len(lp.inj) == 0 && lp.scan.between() && !lp.holding
}

// reset sends RESET (which also logs the connection out, unsubscribes,
// discards a transaction, unwatches, selects 0, goes back to RESP2) and
// AUTH as its user; resetReply parks it once both are answered.
func (lp *loopProxy) reset() {
	lp.state = lpResetting
	lp.resetOK, lp.resetL = false, false
	lp.hold = lp.hold[:0]
	l := lp.sc.login
	cmd := appendCommand(nil, "RESET")
	cmd = appendCommand(cmd, "AUTH", l.user, l.password)
	if err := lp.b.Write(cmd); err != nil {
		lp.state = lpDone
		return
	}
	lp.b.SetDeadline(time.Now().Add(5 * time.Second))
}

// resetReply reads the answers to RESET and AUTH: Pub/Sub messages may
// come before RESET's; anything else, an error, or more bytes after AUTH's
// +OK close the connection.
func (lp *loopProxy) resetReply(in []byte) int {
	for i := 0; i < len(in); {
		k, done, err := lp.scan.feed(in[i:])
		if err != nil {
			lp.resetFailed()
			return len(in)
		}
		if len(lp.hold)+k <= 16 {
			lp.hold = append(lp.hold, in[i:i+k]...)
		} else {
			lp.resetL = true
		}
		i += k
		if !done {
			continue
		}
		top, short := lp.scan.top, !lp.resetL
		v := string(lp.hold)
		lp.scan.next()
		lp.hold, lp.resetL = lp.hold[:0], false
		switch {
		case !lp.resetOK && short && v == "+RESET\r\n":
			lp.resetOK = true
		case !lp.resetOK && (top == '*' || top == '>'): // a message before RESET's reply
		case lp.resetOK && short && v == "+OK\r\n" && i == len(in):
			lp.state = lpDone
			lp.b.SetDeadline(time.Time{})
			lp.giveBack()
			return len(in)
		default:
			lp.resetFailed()
			return len(in)
		}
	}
	return len(in)
}

// resetFailed closes a connection whose reset did not succeed.
func (lp *loopProxy) resetFailed() {
	lp.state = lpDone
	lp.b.Close()
}

// BackendTraffic handles the server's bytes (netio.BackendHandler).
func (lp *loopProxy) BackendTraffic(_ *netio.Env, _ *netio.Backend, in, out []byte) (int, []byte, netio.Action) {
	switch lp.state {
	case lpReady:
		out, act := lp.relay(in, out)
		return len(in), out, act
	case lpResetting:
		return lp.resetReply(in), out, netio.Continue
	}
	return len(in), out, netio.Continue // owed to no one: dropped
}

// BackendClosed: the server closed the connection (a restart, CLIENT KILL),
// a write failed or a deadline passed. The replies the client waits for
// get msgUpstreamLost, and so does its next command, which closes.
func (lp *loopProxy) BackendClosed(_ *netio.Env, _ *netio.Backend, out []byte) ([]byte, netio.Action) {
	if lp.state != lpReady || lp.gone {
		lp.state = lpDone
		return out, netio.Continue
	}
	return lp.lose(out)
}
