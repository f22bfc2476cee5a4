package netio

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio/proxyproto"
)

// connIDs numbers connections process-wide (ConnInfo.ID).
var connIDs atomic.Uint32

// connState is one gnet connection's context. It lives on its loop only,
// until a TLS hand-off gives the session (and info) to a goroutine.
type connState struct {
	info       ConnInfo
	sess       Session
	c          gnet.Conn
	loop       *loopState
	idx        int   // position in loop.conns, -1 when not tracked
	deadline   int64 // Unix nanoseconds
	authed     bool
	claims     *core.Claims // the session's token, once authenticated (Session.Claims)
	seen       bool         // the first byte has arrived
	hasSlot    bool         // holds a global connLimiter slot
	hasIP      bool         // holds a per-address slot, for slotIP
	refusing   bool         // a LateRefuser refusing the connection (LimitConnections)
	hasRefusal bool         // holds a refusal slot, for refusalIP
	refusalIP  netip.Addr   // the address whose refusal slot is held (invalid: counted globally only)
	proxy      bool         // a PROXY protocol header is expected first
	slotIP     netip.Addr   // the address whose slot is held
	handedOff  bool         // a goroutine (TLS or Offload) owns the session now
	await      int          // inbound bytes the session's pending message needs (Awaiter)
	indexed    bool         // claims are in loop.index
	pos        indexSlots   // positions in loop.index's sets
	closed     bool         // the connection has ended (OnClose ran)
	link       Link         // ConnInfo.Link
	// Pausing (pause.go): the backend whose queue must stop the client's
	// reads, the paused state, and inbound bytes carried across a pause.
	throttle *Backend
	paused   *pausedClient
	carry    []byte
}

func (cs *connState) slots() *indexSlots { return &cs.pos }

// refusal is a connection whose token no longer holds, and why.
type refusal struct {
	cs  *connState
	err error
}

// loopState is what one event loop owns: its Env (with its own verifier),
// its output buffer, its deadline list, and the index of its authenticated
// sessions by token id, account and key id. Only its loop touches it.
type loopState struct {
	s         *server
	el        gnet.EventLoop
	env       Env
	out       []byte
	conns     []*connState
	expired   []*connState
	refused   []refusal
	index     sessionIndex[*connState]
	lastSweep time.Time
	live      *Live    // the settings env's limits were taken from (refreshLive)
	revq      revQueue // revocations waiting for the loop (Gateway.Revoke)
	// Backends (backend.go): parked ones by key, paused ones, those with
	// a deadline, and whether a look at the paused ones is scheduled.
	parked        map[any][]*Backend
	paused        []*Backend
	pausedClients []*connState
	timed         []*Backend
	resumeArmed   bool
}

// loopSet maps gnet's event loops to their state. Loops appear on their
// first connection; reads are lock-free.
type loopSet struct {
	mu sync.Mutex
	v  atomic.Pointer[[]*loopState]
}

func (ls *loopSet) all() []*loopState {
	if p := ls.v.Load(); p != nil {
		return *p
	}
	return nil
}

func (ls *loopSet) get(el gnet.EventLoop, mk func(gnet.EventLoop) *loopState) *loopState {
	for _, l := range ls.all() {
		if l.el == el {
			return l
		}
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	cur := ls.all()
	for _, l := range cur {
		if l.el == el {
			return l
		}
	}
	l := mk(el)
	next := append(append(make([]*loopState, 0, len(cur)+1), cur...), l)
	ls.v.Store(&next)
	return l
}

func (s *server) newLoop(el gnet.EventLoop) *loopState {
	cfg := &s.g.cfg
	return &loopState{
		s:  s,
		el: el,
		env: Env{
			Verifier:          core.NewVerifier(cfg.Keyring, cfg.Revocations),
			MaxPreAuthMessage: s.g.lv().MaxPreAuthMessage,
			MaxMessage:        s.g.lv().MaxMessage,
			Observer:          s.obs,
			keepExpired:       cfg.SessionExpiry == ExpiryKeep,
		},
		out:       make([]byte, 0, 4096),
		index:     newSessionIndex[*connState](),
		lastSweep: time.Now(),
		parked:    map[any][]*Backend{},
	}
}

func (l *loopState) track(cs *connState) {
	cs.idx = len(l.conns)
	l.conns = append(l.conns, cs)
}

func (l *loopState) untrack(cs *connState) {
	i := cs.idx
	if i < 0 || i >= len(l.conns) || l.conns[i] != cs {
		return
	}
	last := len(l.conns) - 1
	l.conns[i] = l.conns[last]
	l.conns[i].idx = i
	l.conns[last] = nil
	l.conns = l.conns[:last]
	cs.idx = -1
	if cs.indexed {
		cs.indexed = false
		l.index.remove(cs.claims, cs)
	}
}

// authenticated records that cs's session accepted its token: a session
// with claims is indexed (it is found by revocations from then on) and, unless expired
// sessions are kept, its deadline moves to the token's expiry if that comes
// before the idle deadline.
func (l *loopState) authenticated(cs *connState) {
	cs.authed = true
	cs.claims = cs.sess.Claims()
	if cs.claims != nil && cs.idx >= 0 {
		cs.indexed = true
		l.index.add(cs.claims, cs)
	}
}

// deadlineFor returns cs's deadline after activity at now: the idle
// deadline, or the token's expiry when that is sooner and expired
// sessions end.
func (l *loopState) deadlineFor(cs *connState, now time.Time) int64 {
	d := now.Add(l.s.g.lv().IdleTimeout).UnixNano()
	if cs.claims != nil && !l.env.keepExpired {
		d = min(d, cs.claims.ExpiresAt*int64(time.Second))
	}
	return d
}

// Run checks the loop's deadlines; OnTick schedules it on the loop. A
// session past its handshake or idle deadline gets LimitError; one whose
// token expired (the deadline of an authenticated session is at most its
// expiry, unless Config.SessionExpiry is "keep") gets Terminate; both are
// closed. Every Config.Sweep it also re-checks the token of each
// authenticated session (see sweep).
func (l *loopState) Run(context.Context) error {
	now := time.Now()
	ns := now.UnixNano()
	l.env.Now = now
	l.refreshLive()
	l.expired = l.expired[:0]
	for _, cs := range l.conns {
		if ns > cs.deadline {
			l.expired = append(l.expired, cs)
		}
	}
	for i, cs := range l.expired {
		l.expired[i] = nil
		if cs.claims != nil && !l.env.keepExpired && now.Unix() >= cs.claims.ExpiresAt {
			l.refused = append(l.refused, refusal{cs, core.ErrExpired})
			continue
		}
		if cs.refusing { // counted when it was refused
			l.end(cs, cs.sess.LimitError(LimitConnections, l.out[:0]))
			continue
		}
		lim := LimitHandshakeTimeout
		if cs.authed {
			lim = LimitIdleTimeout
		}
		l.s.obs.Limit(lim)
		l.end(cs, cs.sess.LimitError(lim, l.out[:0]))
	}
	l.expired = l.expired[:0]
	l.endRefused(now)
	if len(l.timed) > 0 {
		l.expireBackends(now)
	}
	if now.Sub(l.lastSweep) >= l.s.g.cfg.Sweep {
		l.lastSweep = now
		l.sweep(now)
		l.endRefused(now)
	}
	return nil
}

// sweep re-checks every authenticated session of the loop against the
// revocation view: a safety net, at the low frequency Config.Sweep, for
// what arrives without a Revocation (a feed gone stale failing closed, a
// snapshot reload). Its cost is one Recheck (tens of nanoseconds) per
// authenticated session per Sweep; revocations themselves go through the
// index (revoke) and expiry through the deadlines.
func (l *loopState) sweep(now time.Time) {
	for _, cs := range l.conns {
		if cs.indexed {
			if err := l.env.recheck(cs.claims, now); err != nil {
				l.refused = append(l.refused, refusal{cs, err})
			}
		}
	}
}

// endRefused ends the sessions in l.refused with their Terminate words.
func (l *loopState) endRefused(now time.Time) {
	for i, r := range l.refused {
		l.s.obs.Authenticated(&r.cs.info, r.cs.claims, r.err, now)
		l.end(r.cs, r.cs.sess.Terminate(r.err, l.out[:0]))
		l.refused[i] = refusal{}
	}
	l.refused = l.refused[:0]
}

// end writes a connection's last words and closes it.
func (l *loopState) end(cs *connState, out []byte) {
	if cs.paused != nil {
		l.endPaused(cs, out)
		return
	}
	_ = write(cs.c, out)
	l.untrack(cs)
	_ = l.el.Close(cs.c)
}

// OnOpen makes the session, applies the connection limits and starts the
// handshake deadline. A connection over the limits is refused: by a
// LateRefuser in reply to the client's first request (see refuse), by any
// other session at once.
func (s *server) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	switch v := c.Context().(type) {
	case *Backend: // a server connection Attach (or a resume) registered
		return nil, s.backendOpen(c, v)
	case *connState: // a paused client registered again
		return nil, s.clientResumed(c, v)
	}
	l := s.loops.get(c.EventLoop(), s.newLoop)
	now := time.Now()
	cs := &connState{c: c, loop: l, idx: -1}
	cs.link = Link{cs: cs, l: l}
	cs.info = ConnInfo{Remote: AddrPort(c.RemoteAddr()), Local: AddrPort(c.LocalAddr()), ID: connIDs.Add(1), Accepted: now, link: &cs.link}
	cs.info.PlaintextOK = inNets(s.g.lv().PlaintextAllow, cs.info.Remote.Addr())
	cs.info.TLSAvailable = s.tls != nil
	// A trusted balancer's connection starts with a PROXY header naming
	// the client: the per-address limit then applies to the client.
	cs.proxy = inNets(s.g.lv().ProxyFrom, cs.info.Remote.Addr())
	cs.sess = s.p.NewSession(&cs.info)
	c.SetContext(cs)
	s.obs.Opened()
	l.env.Now = now
	if !s.admit(cs) {
		s.obs.Limit(LimitConnections)
		if !s.refuse(cs, now) {
			return cs.sess.LimitError(LimitConnections, l.out[:0]), gnet.Close
		}
	} else {
		cs.deadline = now.Add(s.g.lv().HandshakeTimeout).UnixNano()
	}
	l.track(cs)
	if out := cs.sess.Start(&l.env, l.out[:0]); len(out) > 0 {
		return out, gnet.None
	}
	return nil, gnet.None // gnet writes any non-nil output: write(2) of nothing
}

// admit takes the connection's slots: the global one and its address's,
// or, from a trusted balancer, a global one until the PROXY header names
// the client (proxyHeader).
func (s *server) admit(cs *connState) bool {
	lim := s.g.limiter
	if cs.proxy {
		cs.hasSlot = lim.acquireTotal()
		return cs.hasSlot
	}
	a := cs.info.Remote.Addr()
	if !lim.acquire(a) {
		return false
	}
	cs.hasSlot, cs.hasIP, cs.slotIP = true, true, a
	return true
}

// refuse turns a connection over the limits (holding no slot) into a late
// refusal when its session is a LateRefuser and a refusal slot is free: it
// then stays open until the session has answered the client's first
// request, for at most refuseWithin. It reports false when the refusal
// must be immediate.
func (s *server) refuse(cs *connState, now time.Time) bool {
	lr, ok := cs.sess.(LateRefuser)
	if !ok {
		return false
	}
	var a netip.Addr // unknown behind a balancer until its header
	if !cs.proxy {
		a = cs.info.Remote.Addr()
	}
	if !s.g.limiter.acquireRefusal(a) {
		return false
	}
	cs.refusing, cs.hasRefusal, cs.refusalIP = true, true, a
	cs.deadline = now.Add(min(refuseWithin, s.g.lv().HandshakeTimeout)).UnixNano()
	lr.RefuseLate()
	return true
}

// OnClose releases what the connection held, unless a TLS goroutine took it.
func (s *server) OnClose(c gnet.Conn, _ error) gnet.Action {
	if b, ok := c.Context().(*Backend); ok {
		s.backendClose(c, b)
		return gnet.None
	}
	cs, _ := c.Context().(*connState)
	if cs == nil || cs.handedOff {
		return gnet.None
	}
	s.clientClosed(cs)
	return gnet.None
}

// takeIP takes the per-address slot of the connection's client, which
// already holds a global slot (a balancer's connection after its header).
func (s *server) takeIP(cs *connState) bool {
	a := cs.info.Remote.Addr()
	if !s.g.limiter.acquireIPHeld(a) {
		return false
	}
	cs.hasIP, cs.slotIP = true, a
	return true
}

// releaseSlots gives back what the connection holds in the limiter.
func (cs *connState) releaseSlots(l *connLimiter) {
	if cs.hasIP {
		cs.hasIP = false
		l.releaseIP(cs.slotIP)
	}
	if cs.hasSlot {
		cs.hasSlot = false
		l.releaseTotal()
	}
	if cs.hasRefusal {
		cs.hasRefusal = false
		l.releaseRefusal(cs.refusalIP)
	}
}

// proxyHeader consumes a PROXY protocol v2 header at the front of buf and
// returns its length, or -1 to wait for more bytes, or an error to close
// (errPerIP, with the header's length, when the client is over its limits).
func (s *server) proxyHeader(cs *connState, buf []byte) (int, error) {
	h, n, err := proxyproto.Parse(buf)
	if err == proxyproto.ErrNeedMore {
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	cs.proxy = false
	if !h.Local {
		cs.info.Remote, cs.info.Local = h.Source, h.Destination
		cs.info.PlaintextOK = inNets(s.g.lv().PlaintextAllow, h.Source.Addr())
	}
	if cs.refusing { // refused before the header: nothing to take
		return n, nil
	}
	if !s.takeIP(cs) {
		return n, errPerIP
	}
	return n, nil
}

var errPerIP = errors.New("netio: too many connections from one address")

// OnTraffic feeds the inbound bytes to the session and acts on its answer.
// The bytes from Peek are gnet's and valid only during this call: the
// session copies what it keeps, and a hand-off copies the rest.
func (s *server) OnTraffic(c gnet.Conn) gnet.Action {
	if b, ok := c.Context().(*Backend); ok {
		return s.backendTraffic(c, b)
	}
	cs, _ := c.Context().(*connState)
	if cs == nil || cs.handedOff {
		return gnet.Close
	}
	l := cs.loop
	if cs.await > 0 && c.InboundBuffered()+len(cs.carry) < cs.await {
		// The rest of a large message is still arriving: nothing to parse.
		if cs.authed {
			cs.deadline = l.deadlineFor(cs, time.Now())
		}
		return gnet.None
	}
	cs.await = 0
	all, _ := c.Peek(-1)
	if len(cs.carry) > 0 { // bytes from before a pause come first
		cs.carry = append(cs.carry, all...)
		discard(c, len(all))
		all = cs.carry
	}
	buf, skip := all, 0
	if cs.proxy {
		n, err := s.proxyHeader(cs, all)
		switch {
		case err == errPerIP:
			s.obs.Limit(LimitConnections)
			cs.releaseSlots(s.g.limiter)
			if !s.refuse(cs, time.Now()) {
				_, _ = c.Write(cs.sess.LimitError(LimitConnections, l.out[:0]))
				return gnet.Close
			}
		case err != nil:
			return gnet.Close // a trusted balancer always sends a header
		case n < 0:
			return gnet.None // the handshake deadline bounds the wait
		}
		buf, skip = all[n:], n
		if len(buf) == 0 {
			cs.consume(c, skip)
			return gnet.None
		}
	}
	if !cs.seen && len(buf) > 0 {
		cs.seen = true
		if buf[0] == 0x16 && s.p.TLSFirstByte() {
			return s.handoff(c, cs, l, buf, nil, true)
		}
	}
	now := time.Now()
	l.env.Now = now
	out := l.out[:0]
	consumed, act := 0, Continue
	for consumed < len(buf) {
		n, o, a := cs.sess.Handle(&l.env, buf[consumed:], out)
		out, act = o, a
		if n < 0 || n > len(buf)-consumed {
			act = Close // a session bug must not take the loop down
			break
		}
		consumed += n
		if a != Continue || n == 0 {
			break
		}
	}
	switch act {
	case UpgradeTLS:
		return s.handoff(c, cs, l, buf[consumed:], out, true)
	case Offload:
		return s.handoff(c, cs, l, buf[consumed:], out, false)
	}
	_ = write(c, out)
	if cap(out) > 64<<10 {
		out = make([]byte, 0, 4096) // do not keep a huge reply's buffer
	}
	l.out = out[:0]
	if act == Close {
		return gnet.Close
	}
	cs.consume(c, skip+consumed)
	if aw, ok := cs.sess.(Awaiter); ok {
		if need := aw.Awaiting(); need > len(buf)-consumed {
			cs.await = need
		}
	}
	// A session may report itself authenticated before it holds claims
	// (MongoDB: a monitoring connection's hello), then take a token later:
	// it is indexed once it has claims, or revocations would not find it.
	if (!cs.authed || cs.claims == nil) && !cs.refusing && cs.sess.Authenticated() {
		l.authenticated(cs)
	}
	limit := l.env.MaxPreAuthMessage
	if cs.authed {
		limit = l.env.MaxMessage
		cs.deadline = l.deadlineFor(cs, now)
	}
	if len(buf)-consumed > limit+1024 {
		s.obs.Limit(LimitMessageSize)
		_, _ = c.Write(cs.sess.LimitError(LimitMessageSize, l.out[:0]))
		return gnet.Close
	}
	if cs.shouldPause() { // a backend's queue is full: stop reading the client
		return l.pauseClient(cs, c)
	}
	return gnet.None
}

// consume drops the first n bytes of what OnTraffic handled: carried bytes
// from before a pause (then the whole of gnet's buffer was taken), or
// gnet's.
func (cs *connState) consume(c gnet.Conn, n int) {
	if cs.carry == nil {
		discard(c, n)
		return
	}
	if cs.carry = cs.carry[:copy(cs.carry, cs.carry[n:])]; len(cs.carry) == 0 {
		cs.carry = nil
	}
}

// discard drops the first n inbound bytes, which the session consumed.
// gnet's Discard drops the whole inbound buffer for n <= 0, so a call for
// zero bytes (a session waiting for the rest of a message) must not reach
// it: it would lose the message's first read and frame its continuation as
// a new message.
func discard(c gnet.Conn, n int) {
	if n > 0 {
		_, _ = c.Discard(n)
	}
}
