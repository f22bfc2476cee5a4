package redis

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/internal/upstream"
)

// Proxy mode: once the token is admitted (AUTH, or HELLO … AUTH), the
// session moves off its event loop (taking a server connection blocks),
// takes a pooled server connection logged in as the ACL user its scopes
// allow (upstream.RoleFor), and from then on:
//
//   - Client to server, on the session's goroutine: every command is
//     checked as before (re-check of the token, administrative commands,
//     test databases, scope: wall 1) and forwarded as it came, the
//     commands of one read in one write; an inline command is forwarded
//     re-encoded from the arguments the gateway classified.
//   - Server to client, on the pump goroutine: the bytes as they come,
//     followed by a replyScanner that finds where each reply ends, so the
//     pump counts replies without keeping them (a 100 MB value streams
//     through in 32 KB reads; a slow client stops the pump, which stops
//     reading the server).
//   - The gateway's own replies (refusals, AUTH's +OK, HELIOS.WHOAMI…) are
//     written in their place: at once when every command sent before has
//     been answered, else queued (an injection) for the pump to write when
//     the replies before it have gone out, never inside a reply.
//
// Replies are counted against commands: a Pub/Sub confirmation or message
// (a RESP3 push, or on a RESP2 connection that subscribed, an array shaped
// as one) answers no command, and SUBSCRIBE and its kin expect none.
// CLIENT REPLY OFF and SKIP, which would break the count, are refused.
//
// MULTI: the gateway checks each command as it is queued; a refused one
// gets its error and makes the transaction fail at EXEC with EXECABORT, as
// Redis does for a command it refuses while queueing (the gateway sends
// DISCARD in place of EXEC). SELECT, HELLO, SUBSCRIBE and the commands the
// gateway answers itself are refused inside MULTI (their effect would
// depend on an EXEC the gateway cannot foresee).
//
// SELECT n and HELLO wait for the server's reply before the session goes
// on, so that the database the gateway checks the next command against is
// the one the server really selected.
//
// A session that ends cleanly (nothing outstanding, not revoked, the
// server connection healthy) returns its server connection to the pool:
// as it is when it ran only stateless commands, after RESET (and AUTH as
// its user again: RESET logs a connection out) when it selected, subscribed,
// watched, was in MULTI, changed its protocol or anything else
// (command.state). Anything else closes it.

// msgUpstreamLost answers the commands a lost server connection left
// unanswered, and every command after.
const msgUpstreamLost = "ERR the upstream Redis server closed the connection: reconnect"

// readBuffers are the pumps' read buffers (32 KB each: a session that
// connects, runs a command and leaves should not make one for the
// garbage collector).
var readBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// errClientGone: the pump could not write to the client.
var errClientGone = errors.New("redis proxy: the client is gone")

// proxy is a session's server side.
type proxy struct {
	up     *Upstream
	key    upstream.Key
	sc     *serverConn
	client io.Writer
	done   chan struct{}

	// The session's own (its goroutine only).
	wbuf    []byte // commands not yet written to the server
	queued  uint64 // how many of them expect a reply
	inMulti bool   // MULTI sent, no EXEC or DISCARD yet
	txDirty bool   // a command was refused while queued: EXEC fails
	dirty   bool   // the connection's state changed: RESET before reuse
	revoked bool   // the session was ended from outside

	// The pump's own.
	scan    replyScanner
	holding bool   // the current value may be a reply to drop: held
	hold    []byte // its bytes so far
	out     []byte // what a read with injections writes

	pubsub  atomic.Bool // a SUBSCRIBE-family command was sent
	resp3   atomic.Bool // the server connection speaks RESP3
	special atomic.Bool // injections are queued

	mu       sync.Mutex
	cond     sync.Cond
	sent     uint64 // commands written to the server that expect a reply
	answered uint64 // their replies the pump has passed on (or dropped)
	lastType byte   // the type of the last reply passed on
	mid      bool   // the pump has written part of a value
	inj      []injection
	waiting  int  // session goroutines waiting on cond
	dead     bool // the pump has stopped
	stopping bool // closeProxy stopped it
	failed   bool // it stopped on an error: the connection is not reusable
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

// newProxy pairs a server connection with a client.
func newProxy(up *Upstream, key upstream.Key, sc *serverConn, client io.Writer) *proxy {
	px := &proxy{up: up, key: key, sc: sc, client: client, done: make(chan struct{})}
	px.cond.L = &px.mu
	return px
}

// queue adds a command for the server (counted: it expects one reply).
func (px *proxy) queue(cmd []byte, counted bool) {
	px.wbuf = append(px.wbuf, cmd...)
	if counted {
		px.queued++
	}
	if len(px.wbuf) >= 64<<10 {
		px.flush()
	}
}

// flush writes the queued commands to the server; false when it is lost.
func (px *proxy) flush() bool {
	if len(px.wbuf) == 0 {
		return !px.isDead()
	}
	px.mu.Lock()
	px.sent += px.queued
	dead := px.dead
	px.mu.Unlock()
	px.queued = 0
	var err error
	if !dead {
		_, err = px.sc.Write(px.wbuf)
	}
	if cap(px.wbuf) > 256<<10 {
		px.wbuf = nil
	} else {
		px.wbuf = px.wbuf[:0]
	}
	if err != nil {
		px.kill()
		return false
	}
	return !dead
}

// isDead reports whether the pump has stopped.
func (px *proxy) isDead() bool {
	px.mu.Lock()
	defer px.mu.Unlock()
	return px.dead
}

// kill stops the pump after a failure on the session's side.
func (px *proxy) kill() {
	px.mu.Lock()
	px.failed = true
	px.mu.Unlock()
	_ = px.sc.SetReadDeadline(time.Now())
}

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

// errRevoked reports a token that stopped holding while the session waited.
type errRevoked struct{ err error }

func (e errRevoked) Error() string { return e.err.Error() }

// wait flushes, then waits until every command sent has been answered
// (and, with all, every reply of the gateway's own written), re-checking
// the token every second: the reply to a blocking command may take long.
// It returns nil, errUpstreamLost or an errRevoked.
func (px *proxy) wait(env *netio.Env, claims *core.Claims, all bool) error {
	if !px.flush() {
		return errUpstreamLost
	}
	px.mu.Lock()
	defer px.mu.Unlock()
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for !px.dead && (px.answered < px.sent || (all && len(px.inj) > 0)) {
		if t == nil {
			t = time.AfterFunc(time.Second, px.wake)
		} else {
			t.Reset(time.Second)
		}
		px.waiting++
		px.cond.Wait()
		px.waiting--
		if err := env.Recheck(claims); err != nil {
			return errRevoked{err}
		}
	}
	if px.dead {
		return errUpstreamLost
	}
	return nil
}

var errUpstreamLost = errors.New(msgUpstreamLost)

// wake wakes the waiters (a timer's tick).
func (px *proxy) wake() {
	px.mu.Lock()
	px.cond.Broadcast()
	px.mu.Unlock()
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
	var counted uint64
	var last byte
	resp2PubSub := px.pubsub.Load() && !px.resp3.Load()
	for i := 0; i < len(p); {
		k, done, err := px.scan.feed(p[i:])
		if err != nil {
			return err
		}
		i += k
		if done {
			if !px.scan.pushed(resp2PubSub) {
				counted++
				last = px.scan.top
			}
			px.scan.next()
		}
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
	var err error
	if len(px.inj) > 0 && !mid {
		// Queued while this read was passed on: due now, if at all.
		if w := px.emit(px.out[:0]); len(w) > 0 {
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

// emit appends the gateway's replies that are due (their at replies
// passed on) to w.
func (px *proxy) emit(w []byte) []byte {
	for len(px.inj) > 0 {
		e := &px.inj[0]
		if e.at > px.answered {
			break
		}
		if !e.emitted {
			w = append(w, e.data...)
			e.emitted, e.data = true, nil
		}
		if e.swallow > 0 {
			break
		}
		px.inj = px.inj[1:]
	}
	if len(px.inj) == 0 {
		px.inj = nil
	}
	px.special.Store(len(px.inj) > 0)
	return w
}

// slow passes a read on value by value, writing the gateway's replies
// between values where they are due and dropping the replies it was told
// to swallow, all under the lock: a reply of the session's own cannot slip
// in between.
func (px *proxy) slow(p []byte) error {
	px.mu.Lock()
	defer px.mu.Unlock()
	w := px.out[:0]
	resp2PubSub := px.pubsub.Load() && !px.resp3.Load()
	var err error
	for i := 0; ; {
		if px.scan.between() {
			w = px.emit(w)
		}
		if i >= len(p) {
			break
		}
		if px.scan.between() {
			e := px.inj
			px.holding = len(e) > 0 && e[0].emitted && e[0].swallow > 0 && e[0].at <= px.answered
		}
		k, done, ferr := px.scan.feed(p[i:])
		if ferr != nil {
			err = ferr
			break
		}
		seg := p[i : i+k]
		i += k
		if px.holding {
			px.hold = append(px.hold, seg...)
		} else {
			w = append(w, seg...)
		}
		if !done {
			continue
		}
		counted := !px.scan.pushed(resp2PubSub)
		if counted {
			px.answered++
			px.lastType = px.scan.top
		}
		if px.holding {
			if counted {
				e := &px.inj[0]
				if e.swallow--; e.swallow == 0 {
					px.inj = px.inj[1:]
				}
			} else {
				w = append(w, px.hold...)
			}
			px.hold, px.holding = px.hold[:0], false
		}
		px.scan.next()
	}
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
	var w []byte
	outstanding := px.answered < px.sent
	for {
		w = px.emit(w)
		if px.answered >= px.sent {
			break
		}
		px.answered++
		if e := px.inj; len(e) > 0 && e[0].emitted && e[0].swallow > 0 {
			if e[0].swallow--; e[0].swallow == 0 {
				px.inj = px.inj[1:]
			}
			continue
		}
		w = AppendError(w, msgUpstreamLost)
	}
	if !outstanding && px.pubsub.Load() {
		w = AppendError(w, msgUpstreamLost)
	}
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

// reset makes a used server connection as new: RESET (which also logs it
// out, unsubscribes, discards a transaction, unwatches, selects 0, goes
// back to RESP2), then AUTH as its user again.
func (sc *serverConn) reset() error {
	_ = sc.SetDeadline(time.Now().Add(5 * time.Second))
	cmd := appendCommand(nil, "RESET")
	cmd = appendCommand(cmd, "AUTH", sc.login.user, sc.login.password)
	if _, err := sc.Write(cmd); err != nil {
		return err
	}
	r := bufio.NewReaderSize(sc.Conn, 4096)
	for {
		v, err := readReply(r)
		if err != nil {
			return err
		}
		if s, ok := v.(string); ok && s == "RESET" {
			break
		}
		if _, ok := v.([]any); !ok { // only Pub/Sub messages may come first
			return errors.New("redis upstream: unexpected reply before RESET's")
		}
	}
	v, err := readReply(r)
	if err := replyError(v, err); err != nil {
		return err
	}
	if r.Buffered() > 0 {
		return errors.New("redis upstream: unexpected data after RESET")
	}
	return sc.SetDeadline(time.Time{})
}

// closeProxy ends the server side when the client connection ends: the
// server connection goes back to the pool when everything sent was
// answered and nothing failed (after RESET when it is dirty); otherwise it
// is closed.
func (s *Session) closeProxy() {
	px := s.px
	if px == nil {
		return
	}
	px.stop()
	px.mu.Lock()
	reusable := !px.failed && !px.revoked && len(px.wbuf) == 0 && px.queued == 0 && px.answered == px.sent &&
		px.scan.between() && !px.holding && len(px.inj) == 0
	px.mu.Unlock()
	if !reusable {
		px.up.pool.Discard(px.key, px.sc)
		return
	}
	_ = px.sc.SetReadDeadline(time.Time{})
	if !px.dirty && !px.pubsub.Load() {
		px.up.pool.Put(px.key, px.sc)
		return
	}
	go func() {
		if err := px.sc.reset(); err != nil {
			px.up.pool.Discard(px.key, px.sc)
			return
		}
		px.up.pool.Put(px.key, px.sc)
	}()
}

// startProxy is AUTH's (or HELLO … AUTH's) proxy-mode ending: a server
// connection for the token's user, then the pump. The replies the session
// has made so far (out) are written first, so that they keep their place.
func (s *Session) startProxy(env *netio.Env, out []byte) ([]byte, netio.Action) {
	up := s.p.up
	role, err := upstream.RoleFor(&s.claims)
	if err != nil {
		s.authed = false
		env.Observer.Authenticated(s.info, &s.claims, err, env.Now) // counted as forbidden
		out = append(out, "-NOPERM "...)
		out = core.AppendError(out, err)
		return append(out, ": a Redis session reaches the upstream server as the user its database scopes allow\r\n"...), netio.Close
	}
	if s.info.Client == nil { // cannot happen: Handle offloads first
		s.authed = false
		return AppendError(out, "ERR internal error: the session did not leave its event loop"), netio.Close
	}
	key := upstream.Key{Role: role}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	sc, err := up.get(ctx, key)
	if err != nil {
		// go-redis follows a failed HELLO with AUTH on the same
		// connection and reports AUTH's reply: the connection stays open
		// for that second attempt, then closes.
		s.authed = false
		s.upFailures++
		out = appendUpstreamConnectError(out, up, err)
		if s.upFailures >= 2 {
			return out, netio.Close
		}
		return out, netio.Continue
	}
	if len(out) > 0 {
		if _, err := s.info.Client.Write(out); err != nil {
			up.pool.Put(key, sc) // nothing was sent on it
			return out[:0], netio.Close
		}
		out = out[:0]
	}
	px := newProxy(up, key, sc, s.info.Client)
	s.px = px
	go px.pump()
	return out, netio.Continue
}

// appendUpstreamConnectError words a failure to get a server connection.
func appendUpstreamConnectError(out []byte, up *Upstream, err error) []byte {
	var se serverError
	var ne net.Error
	switch {
	case errors.Is(err, upstream.ErrExhausted):
		return AppendError(out, "ERR max number of clients reached: every upstream Redis connection of this token's user "+
			"stayed in use; try again, or raise --redis-pool-size")
	case errors.As(err, &se):
		out = append(out, "-ERR the upstream Redis server "...)
		out = append(out, up.Address()...)
		out = append(out, " refused HeliosDB's login: "...)
		out = appendClean(out, []byte(se))
		return append(out, "\r\n"...)
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		out = append(out, "-ERR the upstream Redis server "...)
		out = append(out, up.Address()...)
		return append(out, " did not answer in time; HeliosDB tries again on the next connection\r\n"...)
	}
	out = append(out, "-ERR the upstream Redis server "...)
	out = append(out, up.Address()...)
	out = append(out, " is not available ("...)
	msg := []byte(err.Error())
	if len(msg) > 200 {
		msg = msg[:200]
	}
	out = appendCleanAll(out, msg)
	return append(out, "); HeliosDB tries again on the next connection\r\n"...)
}

// appendCleanAll appends b with CR, LF and control bytes replaced by
// spaces (appendClean without its length limit).
func appendCleanAll(dst, b []byte) []byte {
	for _, c := range b {
		if c < ' ' || c == 0x7f {
			c = ' '
		}
		dst = append(dst, c)
	}
	return dst
}

// local writes a reply of the gateway's own in proxy mode (an error while
// queueing a transaction makes its EXEC fail); false when the server side
// is gone and the reply must go out with the session's output instead.
func (s *Session) local(o []byte) bool {
	px := s.px
	if px.inMulti && len(o) > 0 && o[0] == '-' {
		px.txDirty = true
	}
	return px.reply(o, 0)
}

// appendUpstreamLost answers a command when the server connection is gone,
// and closes.
func appendUpstreamLost(out []byte) ([]byte, netio.Action) {
	return AppendError(out, msgUpstreamLost), netio.Close
}

// waitError turns wait's error into the session's last reply.
func (s *Session) waitError(env *netio.Env, err error, out []byte) ([]byte, netio.Action) {
	var re errRevoked
	if errors.As(err, &re) {
		s.authed = false
		s.px.revoked = true
		env.Observer.Authenticated(s.info, &s.claims, re.err, env.Now)
		return appendSessionEnded(out, re.err), netio.Close
	}
	return appendUpstreamLost(out)
}

// forwardRaw queues the command being handled as it came (an inline
// command re-encoded from its arguments).
func (s *Session) forwardRaw(args [][]byte, counted bool) {
	if len(s.raw) > 0 && s.raw[0] == '*' {
		s.px.queue(s.raw, counted)
		return
	}
	s.px.queue(appendCommandBytes(nil, args), counted)
}

// proxied runs a command that passed the checks in proxy mode: forwarded,
// or answered by the gateway (HELIOS.WHOAMI, ACL WHOAMI, QUIT, RESET), or
// refused where the proxy cannot keep its promises (see the file's doc).
// The gateway's replies go through local; what it returns in out is
// written after the proxy is gone (a lost server, a revocation).
func (s *Session) proxied(env *netio.Env, cmd command, name []byte, args [][]byte, out []byte) ([]byte, netio.Action) {
	px := s.px
	if px.isDead() {
		return appendUpstreamLost(out)
	}
	if cmd.state {
		px.dirty = true
	}
	if px.inMulti && notInMulti(cmd) {
		s.local(notInMultiError(name))
		return out, netio.Continue
	}
	switch cmd.id {
	case cmdQuit:
		if !s.local(okReply) {
			return appendUpstreamLost(out)
		}
		if err := px.wait(env, &s.claims, true); err != nil {
			return s.waitError(env, err, out)
		}
		return out, netio.Close
	case cmdReset:
		if !px.reply([]byte("+RESET\r\n"), 2) {
			return appendUpstreamLost(out)
		}
		l := px.sc.login
		px.queue(appendCommand(nil, "RESET"), true)
		px.queue(appendCommand(nil, "AUTH", l.user, l.password), true)
		px.dirty = true
		if err := px.wait(env, &s.claims, true); err != nil {
			return s.waitError(env, err, out)
		}
		s.authed, s.proto, s.name, s.db = false, RESP2, nil, 0
		px.inMulti, px.txDirty = false, false
		px.resp3.Store(false)
		px.pubsub.Store(false)
		return out, netio.Continue
	case cmdWhoami:
		s.local(s.whoami(nil))
		return out, netio.Continue
	case cmdACL:
		if len(args) == 2 && bytes.EqualFold(args[1], []byte("whoami")) {
			s.local(AppendBulkString(nil, "default"))
			return out, netio.Continue
		}
	case cmdSelect:
		db, refusal := s.checkSelect(env, args)
		if refusal != nil {
			s.local(refusal)
			return out, netio.Continue
		}
		s.forwardRaw(args, true)
		if err := px.wait(env, &s.claims, false); err != nil {
			return s.waitError(env, err, out)
		}
		px.mu.Lock()
		ok := px.lastType == '+'
		px.mu.Unlock()
		if ok {
			s.db = db
		}
		return out, netio.Continue
	case cmdClient:
		if len(args) >= 3 && bytes.EqualFold(args[1], []byte("reply")) && !bytes.EqualFold(args[2], []byte("on")) {
			s.local([]byte("-ERR CLIENT REPLY OFF and SKIP are not supported through the HeliosDB gateway, which pairs every command with its reply\r\n"))
			return out, netio.Continue
		}
	}
	switch {
	case cmd.pubsub:
		px.pubsub.Store(true)
		s.forwardRaw(args, false)
	case px.txDirty && string(name) == "exec":
		// A command was refused while queued: the transaction fails as
		// Redis fails it, and the server's is discarded.
		if !px.reply([]byte("-EXECABORT Transaction discarded because of previous errors.\r\n"), 1) {
			return appendUpstreamLost(out)
		}
		px.queue(appendCommand(nil, "DISCARD"), true)
		px.inMulti, px.txDirty = false, false
	default:
		s.forwardRaw(args, true)
		switch string(name) {
		case "multi":
			px.inMulti = true
		case "exec", "discard":
			px.inMulti, px.txDirty = false, false
		}
	}
	return out, netio.Continue
}

// okReply is +OK.
var okReply = []byte("+OK\r\n")

// notInMulti reports whether the proxy refuses a command inside MULTI.
func notInMulti(cmd command) bool {
	switch cmd.id {
	case cmdSelect, cmdHello, cmdAuth, cmdWhoami:
		return true
	case cmdACL:
		return true
	}
	return cmd.pubsub
}

// notInMultiError is the refusal of such a command.
func notInMultiError(name []byte) []byte {
	out := append([]byte(nil), "-ERR Command '"...)
	out = appendClean(out, name)
	return append(out, "' is not allowed inside MULTI through the HeliosDB gateway: run it before MULTI\r\n"...)
}

// authProxy runs AUTH and HELLO in proxy mode.
func (s *Session) authProxy(env *netio.Env, id cmdID, args [][]byte, out []byte) ([]byte, netio.Action) {
	if s.px == nil && !s.info.Offloaded && (id == cmdAuth || helloHasAuth(args)) {
		return out, netio.Offload // taking a server connection blocks
	}
	if s.px != nil && s.px.isDead() {
		return appendUpstreamLost(out)
	}
	if s.px != nil && s.px.inMulti {
		s.local(notInMultiError(s.lowerName(args[0])))
		return out, netio.Continue
	}
	if id == cmdAuth {
		reply := s.auth(env, args, nil)
		if s.px != nil {
			s.local(reply)
			return out, netio.Continue
		}
		if !s.authed {
			return append(out, reply...), netio.Continue
		}
		out, act := s.startProxy(env, out)
		if s.px == nil {
			return out, act
		}
		s.local(reply)
		return out, netio.Continue
	}
	h, refusal := parseHello(args)
	if refusal == nil && h.token != nil {
		if err := s.verify(env, h.user, h.token); err != nil {
			refusal = appendAuthError(nil, err)
		}
	}
	if refusal == nil && !s.authed {
		refusal = AppendError(nil, msgHelloNoAuth)
	}
	if refusal == nil && h.setname != nil && !validName(h.setname) {
		refusal = AppendError(nil, "ERR Client names cannot contain spaces, newlines or special characters.")
	}
	if refusal != nil {
		if s.px == nil || !s.local(refusal) {
			return append(out, refusal...), netio.Continue
		}
		return out, netio.Continue
	}
	if s.px == nil {
		var act netio.Action
		if out, act = s.startProxy(env, out); s.px == nil {
			return out, act
		}
	}
	px := s.px
	px.dirty = true
	cmd := []string{"HELLO"}
	if h.proto != 0 {
		cmd = append(cmd, strconv.Itoa(h.proto))
		if h.setname != nil {
			cmd = append(cmd, "SETNAME", string(h.setname))
		}
	}
	px.queue(appendCommand(nil, cmd...), true)
	if err := px.wait(env, &s.claims, false); err != nil {
		return s.waitError(env, err, out)
	}
	px.mu.Lock()
	ok := px.lastType != '-' && px.lastType != '!'
	px.mu.Unlock()
	if ok && h.proto != 0 {
		s.proto = h.proto
		px.resp3.Store(h.proto == RESP3)
		if h.setname != nil {
			s.name = append(s.name[:0], h.setname...)
		}
	}
	return out, netio.Continue
}

// helloHasAuth reports whether a HELLO carries AUTH.
func helloHasAuth(args [][]byte) bool {
	for _, a := range args[1:] {
		if bytes.EqualFold(a, []byte("auth")) {
			return true
		}
	}
	return false
}
