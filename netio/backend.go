package netio

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Backends: a proxying session's server connections on its client's event
// loop.
//
// A session on an event loop that relays its client to a server (a proxy
// mode) can put the server connection on the same loop instead of running
// goroutines: the protocol makes the connection (dialling blocks, so on a
// goroutine of its own) and hands it to Link.Attach, which registers it with
// gnet (EventLoop.Enroll) on the client's loop. From then on the server's
// bytes reach the protocol's BackendHandler on that loop, and what the
// handler returns goes to the client (its Backend's owner) as a Handle's
// output does; the session writes to the server with Backend.Write, a
// direct write on the same loop. A query then costs a read and a write on
// each socket and no goroutine switch.
//
// Idle server connections stay on their loop: Backend.Park keeps one under a
// key (the protocol's pool key), and Link.Take hands it to the next client
// of the same loop. A parked backend that the server closes or writes to is
// closed (the protocol's release function frees its place in the pool).
// Reclaim asks a loop holding a parked backend of a key to hand it back as a
// net.Conn (Backend.Detach): a pool at its limit gets idle connections
// parked on other loops that way.
//
// Backpressure: gnet reads whatever arrives. When a backend's owner has more
// than pauseAbove bytes waiting to go out (a client reading a large result
// slowly), the backend is taken off the poller — its socket is duplicated
// and gnet's descriptor closed, as for a TLS hand-off — so the server's
// bytes wait in the kernel and the server stops once its socket buffer is
// full. The loop checks paused backends every pauseCheck and registers the
// socket again (EventLoop.Enroll) once the owner is below resumeBelow.
// Unconsumed bytes are carried across; what the session writes meanwhile is
// kept and written first.

const (
	// pauseAbove is the client output that stops reading its backend.
	pauseAbove = 1 << 20
	// resumeBelow is the client output under which it reads again.
	resumeBelow = 256 << 10
	// pauseCheck is how often a loop looks at its paused backends.
	pauseCheck = time.Millisecond
	// maxPending bounds what a session may write to a paused backend.
	maxPending = 64 << 20
	// maxKeptOut is the largest output buffer a loop keeps after a
	// backend's bytes went through it.
	maxKeptOut = 256 << 10
	// attachWait bounds how long Attach waits for the loop to register a
	// connection (it only waits that long when the engine is stopping).
	attachWait = 10 * time.Second
)

// ErrBackendClosed is Backend.Write's error once the connection has ended.
var ErrBackendClosed = errors.New("netio: the server connection is closed")

// errBacklog is Backend.Write's error when a paused backend has been given
// more than maxPending bytes.
var errBacklog = errors.New("netio: too much written to a server connection that is not reading")

// BackendHandler receives a backend's events on its event loop. The output
// it returns and its Action apply to the backend's owner, the client
// connection it serves, when it has one that is still open (after the
// client has gone, they are dropped); Action may be Continue or Close.
type BackendHandler interface {
	// BackendTraffic handles the bytes the server sent (in is valid only
	// during the call) and returns how many it consumed; the rest is
	// delivered again with the next bytes (see Backend.Await).
	BackendTraffic(env *Env, b *Backend, in, out []byte) (int, []byte, Action)
	// BackendClosed reports that the connection ended without the
	// protocol asking (the server closed it, a write failed, a deadline
	// passed). The backend's release function runs after it.
	BackendClosed(env *Env, b *Backend, out []byte) ([]byte, Action)
}

// AttachFunc runs on the loop once Link.Attach has registered the
// connection: it must keep b (set its handler), park it or close it. When
// the client has gone meanwhile (Link.Open is false) its output is dropped.
type AttachFunc func(env *Env, b *Backend, out []byte) ([]byte, Action)

// LinkFunc runs on a connection's loop (Link.Do) and returns output for the
// client and what to do with it (Continue or Close).
type LinkFunc func(env *Env, out []byte) ([]byte, Action)

// backendState is where a backend's socket is.
type backendState uint8

const (
	bAttaching backendState = iota // Enroll in flight
	bOpen                          // registered on the loop
	bPaused                        // off the poller: reads stopped (fd)
	bResuming                      // registered again, not yet open
	bDetached                      // handed back as a net.Conn
	bClosed
)

// Backend is a server connection on the event loop of the client it serves
// (see the comment above). Its methods must be called on that loop: from
// the session's Handle, Closed or Terminate, a BackendHandler, an
// AttachFunc or a LinkFunc.
type Backend struct {
	l       *loopState
	c       gnet.Conn  // gnet's connection while bOpen
	owner   *connState // the client served; nil while parked
	h       BackendHandler
	value   any
	release func()
	done    AttachFunc
	state   backendState
	claim   atomic.Int32 // Attach: 1 once OnOpen took it, 2 once Attach gave up
	gen     uint32       // counts registrations (a stale resume check is ignored)
	await   int
	carry   []byte // inbound bytes not consumed when the backend was paused
	pend    []byte // bytes written while paused
	fd      int    // bPaused: the duplicated descriptor; -1 otherwise
	busy    int    // inside its traffic callback or a write: closes wait
	// closeConn: close gnet's connection once the callback returns;
	// quiet: the protocol asked for the end (no BackendClosed).
	closeConn, quiet bool
	parkKey          any
	parked           bool
	deadline         time.Time
	timed            bool
}

// Value returns what the protocol attached with the connection (its
// server-side state: process id, keys, parameters).
func (b *Backend) Value() any { return b.value }

// SetHandler sets who receives the backend's bytes from now on.
func (b *Backend) SetHandler(h BackendHandler) { b.h = h }

// Await says that the message at the front of what BackendTraffic left
// unconsumed needs n bytes in all: the handler is called again only once
// that many are buffered (0: on every read).
func (b *Backend) Await(n int) { b.await = n }

// Open reports whether the connection is still usable (registered or
// paused, not closed, detached or still attaching).
func (b *Backend) Open() bool {
	return b.state == bOpen || b.state == bPaused || b.state == bResuming
}

// Write writes p to the server (gnet writes directly and buffers what the
// socket does not take). While the backend is paused it is kept, up to
// maxPending bytes, and written first when reading resumes. An error means
// the connection has ended (its release function has run; BackendClosed
// is not called for it).
func (b *Backend) Write(p []byte) error {
	switch b.state {
	case bOpen:
		b.busy++
		_, err := b.c.Write(p)
		b.busy--
		if err != nil || b.state != bOpen {
			return ErrBackendClosed
		}
		if o := b.owner; o != nil && b.c.OutboundBuffered() > pauseAbove {
			o.throttle = b // the client's reads stop after its Handle (pause.go)
		}
		return nil
	case bPaused, bResuming:
		if len(b.pend)+len(p) > maxPending {
			return errBacklog
		}
		b.pend = append(b.pend, p...)
		return nil
	}
	return ErrBackendClosed
}

// Close closes the connection (never pooled); its release function runs,
// BackendClosed does not.
func (b *Backend) Close() {
	switch b.state {
	case bClosed, bDetached:
		return
	case bOpen:
		b.quiet = true
		if b.busy > 0 {
			b.closeConn = true // closed when its callback returns
			return
		}
		c := b.c
		_ = b.l.el.Close(c) // OnClose ends it
		if b.state != bClosed {
			b.c = nil
			c.SetContext(nil)
			b.l.endBackend(b, false)
		}
	default:
		b.l.endBackend(b, false)
	}
}

// SetDeadline closes the backend (with BackendClosed) if it is still open
// at t; the zero time clears it. The loop checks it on its tick.
func (b *Backend) SetDeadline(t time.Time) {
	b.deadline = t
	l := b.l
	switch {
	case t.IsZero() && b.timed:
		b.timed = false
		l.timed = removeBackend(l.timed, b)
	case !t.IsZero() && !b.timed:
		b.timed = true
		l.timed = append(l.timed, b)
	}
}

// Park keeps the backend idle on its loop under key (a comparable value:
// the protocol's pool key), for Link.Take. It has no owner or handler from
// then on; if the server closes it or sends anything, it is closed. A
// backend that is not open, or holds bytes not yet delivered or written,
// is closed instead.
func (b *Backend) Park(key any) {
	if b.state != bOpen || len(b.carry) > 0 || len(b.pend) > 0 {
		b.Close()
		return
	}
	l := b.l
	b.owner, b.h, b.await = nil, nil, 0
	b.SetDeadline(time.Time{})
	b.parkKey, b.parked = key, true
	l.parked[key] = append(l.parked[key], b)
	parkReg.add(key, l)
}

// Detach takes the connection off the loop and returns it as a net.Conn on
// the same socket (for a pool of goroutine sessions, or another loop); the
// release function does not run: the caller owns the connection now. It
// fails, leaving the backend as it was, when bytes are still pending in
// either direction.
func (b *Backend) Detach() (net.Conn, error) {
	if b.state != bOpen || len(b.carry) > 0 {
		return nil, errors.New("netio: the server connection cannot be detached now")
	}
	c := b.c
	if c.OutboundBuffered() > 0 {
		if err := c.Flush(); err != nil || b.state != bOpen || c.OutboundBuffered() > 0 {
			return nil, errors.New("netio: the server connection cannot be detached now")
		}
	}
	fd, err := c.Dup()
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "backend")
	nc, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		return nil, err
	}
	l := b.l
	l.unpark(b)
	b.SetDeadline(time.Time{})
	b.state, b.c, b.owner, b.h = bDetached, nil, nil, nil
	c.SetContext(nil) // gnet's close below is no event of the backend's
	if b.busy > 0 {
		b.closeConn = true
	} else {
		_ = l.el.Close(c)
	}
	return nc, nil
}

// Link is a client connection on an event loop as its session reaches it
// from elsewhere: from another goroutine (Do, Attach) or for backends
// (Take). ConnInfo.Link returns it.
type Link struct {
	cs *connState
	l  *loopState
}

// Link returns the connection's link to its event loop, or nil when the
// session does not run on one (TLS, Offload, ServeConn).
func (i *ConnInfo) Link() *Link {
	if i.Offloaded || i.link == nil {
		return nil
	}
	return i.link
}

// Open reports whether the client connection is still open on its loop.
// Call it on the loop.
func (k *Link) Open() bool { return !k.cs.closed && !k.cs.handedOff }

// Do runs fn on the connection's loop (from any goroutine) and writes its
// output to the client; Close closes the connection. When the connection
// has ended by then, fn still runs and its output is dropped. It fails only
// when the loop has stopped.
func (k *Link) Do(fn LinkFunc) error {
	l, cs := k.l, k.cs
	return l.el.Execute(context.Background(), loopTask(func() {
		l.env.Now = time.Now()
		out, act := fn(&l.env, l.out[:0])
		l.toClient(cs, out, act, true)
	}))
}

// Attach registers nc, an established TCP connection to a server, on the
// client's event loop as a Backend owned by the client, and runs done there
// with it. value is the protocol's (Backend.Value); release runs once when
// the backend's connection ends (not when it is detached): the protocol
// frees its place in a pool there. Attach blocks until the connection is
// registered, so it is called from a goroutine, never on a loop. On an
// error nc is closed, neither done nor release run, and the caller cleans
// up (Do reaches the client).
func (k *Link) Attach(nc net.Conn, value any, release func(), done AttachFunc) error {
	b := &Backend{l: k.l, owner: k.cs, value: value, release: release, done: done, state: bAttaching, fd: -1}
	b.gen = 1
	ch, err := k.l.el.Enroll(gnet.NewContext(context.Background(), b), nc)
	if err != nil {
		_ = nc.Close()
		return err
	}
	t := time.NewTimer(attachWait)
	defer t.Stop()
	var r gnet.RegisteredResult
	select {
	case r = <-ch:
	case <-t.C:
	}
	if b.claim.CompareAndSwap(0, 2) { // OnOpen never ran: it never will do anything
		_ = nc.Close()
		if r.Err != nil {
			return r.Err
		}
		return errors.New("netio: the server connection could not be registered on the event loop")
	}
	return nil
}

// Take returns a backend parked under key on this connection's loop, now
// owned by the connection (without a handler: set one), or nil. Call it on
// the loop.
func (k *Link) Take(key any) *Backend {
	l := k.l
	for {
		list := l.parked[key]
		if len(list) == 0 {
			return nil
		}
		b := list[len(list)-1]
		l.unpark(b)
		if b.state != bOpen || b.c.InboundBuffered() > 0 {
			b.Close() // the server spoke unasked: not reusable
			continue
		}
		b.owner = k.cs
		return b
	}
}

// Reclaim asks an event loop holding a backend parked under key to detach
// it and call give with its Value and the connection (on that loop: give
// must not block). It reports whether a loop was asked; the loop may find
// the backend gone by then (taken or closed) and give nothing.
func Reclaim(key any, give func(value any, nc net.Conn)) bool {
	for _, l := range parkReg.holders(key) {
		err := l.el.Execute(context.Background(), loopTask(func() {
			list := l.parked[key]
			if len(list) == 0 {
				return
			}
			b := list[0]
			nc, err := b.Detach()
			if err != nil {
				b.Close()
				return
			}
			give(b.value, nc)
		}))
		if err == nil {
			return true
		}
	}
	return false
}

// Parked returns how many backends are parked under key on every loop.
func Parked(key any) int {
	parkReg.mu.Lock()
	defer parkReg.mu.Unlock()
	n := 0
	for _, c := range parkReg.m[key] {
		n += c
	}
	return n
}

// parkReg records, process-wide, which loops hold parked backends of each
// key (for Reclaim).
var parkReg = parkRegistry{m: map[any]map[*loopState]int{}}

type parkRegistry struct {
	mu sync.Mutex
	m  map[any]map[*loopState]int
}

func (r *parkRegistry) add(key any, l *loopState) {
	r.mu.Lock()
	ls := r.m[key]
	if ls == nil {
		ls = map[*loopState]int{}
		r.m[key] = ls
	}
	ls[l]++
	r.mu.Unlock()
}

func (r *parkRegistry) remove(key any, l *loopState) {
	r.mu.Lock()
	if ls := r.m[key]; ls != nil {
		if ls[l]--; ls[l] <= 0 {
			delete(ls, l)
		}
		if len(ls) == 0 {
			delete(r.m, key)
		}
	}
	r.mu.Unlock()
}

// holders returns the loops holding backends parked under key, the one
// holding most first.
func (r *parkRegistry) holders(key any) []*loopState {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*loopState
	for l := range r.m[key] {
		out = append(out, l)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && r.m[key][out[j]] > r.m[key][out[j-1]]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// loopTask is a function run on a loop (a gnet Runnable).
type loopTask func()

// Run runs the task.
func (t loopTask) Run(context.Context) error {
	t()
	return nil
}

// unpark drops b from its loop's parked backends.
func (l *loopState) unpark(b *Backend) {
	if !b.parked {
		return
	}
	b.parked = false
	list := removeBackend(l.parked[b.parkKey], b)
	if len(list) == 0 {
		delete(l.parked, b.parkKey)
	} else {
		l.parked[b.parkKey] = list
	}
	parkReg.remove(b.parkKey, l)
	b.parkKey = nil
}

// removeBackend removes b from list (order is not kept).
func removeBackend(list []*Backend, b *Backend) []*Backend {
	for i, x := range list {
		if x == b {
			last := len(list) - 1
			list[i] = list[last]
			list[last] = nil
			return list[:last]
		}
	}
	return list
}

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
// arrived while the session waited (an Attach) are handled next.
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
	if len(out) > 0 {
		_, _ = c.Write(out) // a failure closes it (OnClose)
	}
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
	if rerun && c.InboundBuffered() > 0 {
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
	if c.OutboundBuffered() > 0 {
		if err := c.Flush(); err != nil || b.state != bOpen || c.OutboundBuffered() > 0 {
			return gnet.None // try again on the next read
		}
	}
	fd, err := c.Dup()
	if err != nil {
		return gnet.None
	}
	if rest, _ := c.Peek(-1); len(rest) > 0 {
		b.carry = append(b.carry, rest...)
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
