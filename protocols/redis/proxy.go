package redis

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/internal/upstream"
)

// Proxy mode: once the token is admitted (AUTH, or HELLO … AUTH), the
// session takes a server connection logged in as the ACL user its scopes
// allow (upstream.RoleFor). A plaintext client's session keeps it on its
// event loop (loopproxy.go: the same rules without goroutines). A TLS
// client's session, or any session when the upstream is reached over TLS,
// runs on a goroutine (taking a pooled connection blocks), and from then
// on:
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

// proxy is a session's server side.
type proxy struct {
	up     *Upstream
	key    upstream.Key
	sc     *serverConn
	client io.Writer
	done   chan struct{}

	// The session's own (its goroutine only).
	wbuf   []byte // commands not yet written to the server
	queued uint64 // how many of them expect a reply
	cmdState
	revoked bool // the session was ended from outside

	// The pump's own, but for relayState's answered, lastType and inj,
	// which are mu's.
	relayState
	out []byte // what a read with injections writes

	pubsub  atomic.Bool // a SUBSCRIBE-family command was sent
	resp3   atomic.Bool // the server connection speaks RESP3
	special atomic.Bool // injections are queued

	mu       sync.Mutex
	cond     sync.Cond
	sent     uint64 // commands written to the server that expect a reply
	mid      bool   // the pump has written part of a value
	waiting  int    // session goroutines waiting on cond
	dead     bool   // the pump has stopped
	stopping bool   // closeProxy stopped it
	failed   bool   // it stopped on an error: the connection is not reusable
}

// cmdState is what the commands forwarded did to the server connection,
// on both paths.
type cmdState struct {
	inMulti bool // MULTI sent, no EXEC or DISCARD yet
	txDirty bool // a command was refused while queued: EXEC fails
	dirty   bool // the connection's state changed: RESET before reuse
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

// local writes a reply of the gateway's own in proxy mode (an error while
// queueing a transaction makes its EXEC fail); false when the server side
// is gone and the reply must go out with the session's output instead.
func (s *Session) local(o []byte) bool {
	if lp := s.lp; lp != nil {
		if lp.state != lpReady {
			return false
		}
		if lp.inMulti && len(o) > 0 && o[0] == '-' {
			lp.txDirty = true
		}
		lp.reply(o, 0)
		return true
	}
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
	cmd := s.raw
	if len(cmd) == 0 || cmd[0] != '*' {
		cmd = appendCommandBytes(nil, args)
	}
	s.send(cmd, counted)
}

// send queues cmd for the server, on either path.
func (s *Session) send(cmd []byte, counted bool) {
	if s.lp != nil {
		s.lp.queue(cmd, counted)
		return
	}
	s.px.queue(cmd, counted)
}

// proxied runs a command that passed the checks in proxy mode: forwarded,
// or answered by the gateway (HELIOS.WHOAMI, ACL WHOAMI, QUIT, RESET), or
// refused where the proxy cannot keep its promises (see the file's doc).
// The gateway's replies go through local; what it returns in out is
// written after the proxy is gone (a lost server, a revocation).
func (s *Session) proxied(env *netio.Env, cmd command, name []byte, args [][]byte, out []byte) ([]byte, netio.Action) {
	if s.lp != nil {
		return s.loopProxied(env, cmd, name, args, out)
	}
	px := s.px
	if px.isDead() {
		return appendUpstreamLost(out)
	}
	if s.refusedInMulti(&px.cmdState, cmd, name) {
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
	}
	if done, selected, db := s.proxyLocal(env, cmd, args); selected {
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
	} else if done {
		return out, netio.Continue
	}
	if !s.forwardChecked(&px.cmdState, cmd, name, args) {
		return appendUpstreamLost(out)
	}
	return out, netio.Continue
}

// refusedInMulti, on both paths, notes a command that changes the
// connection's state (c.dirty) and refuses, inside MULTI, one whose effect
// would depend on EXEC (notInMulti): true when it was refused.
func (s *Session) refusedInMulti(c *cmdState, cmd command, name []byte) bool {
	if cmd.state {
		c.dirty = true
	}
	if c.inMulti && notInMulti(cmd) {
		s.local(notInMultiError(name))
		return true
	}
	return false
}

// forwardChecked forwards a command that passed the checks, on both paths
// (c is the proxy's): a SUBSCRIBE-family command expects no reply of its
// own; EXEC after a command refused while queued gets the gateway's
// EXECABORT and DISCARD goes in its place; MULTI, EXEC and DISCARD are
// followed. False when the goroutine proxy's pump has stopped.
func (s *Session) forwardChecked(c *cmdState, cmd command, name []byte, args [][]byte) bool {
	switch {
	case cmd.pubsub:
		if s.lp != nil {
			s.lp.pubsub = true
		} else {
			s.px.pubsub.Store(true)
		}
		s.forwardRaw(args, false)
	case c.txDirty && string(name) == "exec":
		// A command was refused while queued: the transaction fails as
		// Redis fails it, and the server's is discarded.
		if lp := s.lp; lp != nil {
			lp.reply(execAbortReply, 1)
		} else if !s.px.reply(execAbortReply, 1) {
			return false
		}
		s.send(appendCommand(nil, "DISCARD"), true)
		c.inMulti, c.txDirty = false, false
	default:
		s.forwardRaw(args, true)
		switch string(name) {
		case "multi":
			c.inMulti = true
		case "exec", "discard":
			c.inMulti, c.txDirty = false, false
		}
	}
	return true
}

// proxyLocal runs, on both paths, what proxied does alike: the commands
// the gateway answers (HELIOS.WHOAMI, ACL WHOAMI) or refuses (CLIENT
// REPLY OFF and SKIP, a SELECT of a database the token may not reach)
// itself, and a SELECT that passed, forwarded. done reports that the
// command was dealt with; selected, that a SELECT of db was forwarded:
// the session is in db once the server has answered +OK.
func (s *Session) proxyLocal(env *netio.Env, cmd command, args [][]byte) (done, selected bool, db int) {
	switch cmd.id {
	case cmdWhoami:
		s.local(s.whoami(nil))
		return true, false, 0
	case cmdACL:
		if len(args) == 2 && bytes.EqualFold(args[1], []byte("whoami")) {
			s.local(AppendBulkString(nil, "default"))
			return true, false, 0
		}
	case cmdSelect:
		db, refusal := s.checkSelect(env, args)
		if refusal != nil {
			s.local(refusal)
			return true, false, 0
		}
		s.forwardRaw(args, true)
		return true, true, db
	case cmdClient:
		if len(args) >= 3 && bytes.EqualFold(args[1], []byte("reply")) && !bytes.EqualFold(args[2], []byte("on")) {
			s.local([]byte("-ERR CLIENT REPLY OFF and SKIP are not supported through the HeliosDB gateway, which pairs every command with its reply\r\n"))
			return true, false, 0
		}
	}
	return false, false, 0
}

// okReply is +OK.
var okReply = []byte("+OK\r\n")

// execAbortReply answers EXEC after a command refused while queued.
var execAbortReply = []byte("-EXECABORT Transaction discarded because of previous errors.\r\n")

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
	if !s.proxying() && !s.info.Offloaded && !s.loopMode() && (id == cmdAuth || helloHasAuth(args)) {
		return out, netio.Offload // taking a server connection blocks (unless on the loop: loopproxy.go)
	}
	if s.px != nil && s.px.isDead() || s.lp != nil && s.lp.state != lpReady {
		return appendUpstreamLost(out)
	}
	if s.px != nil && s.px.inMulti || s.lp != nil && s.lp.inMulti {
		s.local(notInMultiError(s.lowerName(args[0])))
		return out, netio.Continue
	}
	if id == cmdAuth {
		reply := s.auth(env, args, nil)
		if s.proxying() {
			s.local(reply)
			return out, netio.Continue
		}
		if !s.authed {
			return append(out, reply...), netio.Continue
		}
		if s.loopMode() {
			return s.startLoopProxy(env, out, reply, nil)
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
		if !s.proxying() || !s.local(refusal) {
			return append(out, refusal...), netio.Continue
		}
		return out, netio.Continue
	}
	if s.lp != nil {
		s.lp.sendHello(cloneHello(h))
		return out, netio.Continue
	}
	if s.px == nil {
		if s.loopMode() {
			return s.startLoopProxy(env, out, nil, cloneHello(h))
		}
		var act netio.Action
		if out, act = s.startProxy(env, out); s.px == nil {
			return out, act
		}
	}
	px := s.px
	px.dirty = true
	px.queue(helloCommand(&h), true)
	if err := px.wait(env, &s.claims, false); err != nil {
		return s.waitError(env, err, out)
	}
	px.mu.Lock()
	last := px.lastType
	px.mu.Unlock()
	if s.helloTook(&h, last) {
		px.resp3.Store(h.proto == RESP3)
	}
	return out, netio.Continue
}

// helloCommand is the HELLO [proto [SETNAME name]] the gateway sends for
// the client's (the token, if any, was the gateway's), on both paths.
func helloCommand(h *helloArgs) []byte {
	cmd := []string{"HELLO"}
	if h.proto != 0 {
		cmd = append(cmd, strconv.Itoa(h.proto))
		if h.setname != nil {
			cmd = append(cmd, "SETNAME", string(h.setname))
		}
	}
	return appendCommand(nil, cmd...)
}

// helloTook gives the session HELLO's protocol and name when the server's
// reply (of type last) accepted a HELLO that named a protocol, on both
// paths; true when it did (the caller notes whether the connection now
// speaks RESP3).
func (s *Session) helloTook(h *helloArgs, last byte) bool {
	if last == '-' || last == '!' || h.proto == 0 {
		return false
	}
	s.proto = h.proto
	if h.setname != nil {
		s.name = append(s.name[:0], h.setname...)
	}
	return true
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
