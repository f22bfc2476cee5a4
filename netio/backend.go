package netio

import (
	"context"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
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

// Write writes p to the server (directly, see write in rawwrite.go; gnet buffers what the
// socket does not take). While the backend is paused it is kept, up to
// maxPending bytes, and written first when reading resumes. An error means
// the connection has ended (its release function has run; BackendClosed
// is not called for it).
func (b *Backend) Write(p []byte) error {
	switch b.state {
	case bOpen:
		b.busy++
		err := write(b.c, p)
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

// loopTask is a function run on a loop (a gnet Runnable).
type loopTask func()

// Run runs the task.
func (t loopTask) Run(context.Context) error {
	t()
	return nil
}
