package postgres

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"time"

	"github.com/heliosdb/auth/internal/connstr"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/internal/upstream"
	"github.com/jackc/pgx/v5/pgconn"
)

// Proxy mode on the event loop. A plaintext client's session stays on its
// gnet event loop, and so does its server connection: a parked one of the
// same loop (netio.Link.Take) or, when the loop has none, one the pool
// gives on a goroutine (an idle one or a new login, which block) that
// netio then registers on the client's loop (netio.Link.Attach). From then
// on both directions run on the loop: a client message is classified and
// written to the server in the same call (one write per client read), and
// the server's messages are forwarded whole by BackendTraffic. Refusals
// keep their place by the same count of ReadyForQuery messages as the
// goroutine proxy (proxy.go), without locks: what the gateway answers
// itself waits in the reply queue behind the server's answers still due.
// A client reading slowly stops the loop reading its server (netio pauses
// the backend). When the client leaves cleanly, DISCARD ALL is sent and
// answered on the loop, and the connection is parked on that loop for its
// next client — or handed to the pool when a client elsewhere is waiting
// for one. TLS clients, and upstreams reached over TLS or a Unix socket,
// keep the goroutine proxy.

// parkKey names the server connections parked on the event loops: one
// upstream's pool key.
type parkKey struct {
	up *Upstream
	k  upstream.Key
}

// cancelTarget is what a CancelRequest needs of a proxied session: the
// secret the client was given and the server connection to cancel on. It
// never changes once stored in Protocol.cancels.
type cancelTarget struct {
	secret uint32
	sc     *serverConn
}

// lpState is where a loop proxy is.
type lpState uint8

const (
	lpConnecting lpState = iota // waiting for a server connection
	lpStartup                   // the client's startup parameters are being set
	lpReady                     // relaying
	lpResetting                 // the client left: DISCARD ALL sent
	lpDone                      // nothing more: the server connection is closed or parked
)

// reply is one answer the client is owed, in order: a ReadyForQuery from
// the server (own: for a Sync the gateway sent itself, dropped), or the
// gateway's own answer (gw: msg, then ReadyForQuery when rfq).
type reply struct {
	own, gw, rfq bool
	msg          []byte
}

// loopProxy is a session's server side on its event loop.
type loopProxy struct {
	s       *Session
	up      *Upstream
	key     upstream.Key
	sc      *serverConn
	b       *netio.Backend
	target  *cancelTarget
	state   lpState
	replies []reply // replies[head:] are owed
	head    int
	status  byte   // the last ReadyForQuery's transaction status
	wbuf    []byte // client messages to write at the end of Handle
	// unsynced: extended-protocol messages forwarded since the last
	// Sync; clean: the client said Terminate; revoked: ended from
	// outside; gone: the client connection has closed.
	unsynced, clean, revoked, gone bool
	startErr                       *pgconn.PgError // the first error while setting startup parameters or resetting
}

// loopMode reports whether the session's proxy runs on its event loop:
// a client on a loop (not TLS, not offloaded) and an upstream reached in
// plaintext over TCP (netio registers the server's socket on the loop).
func (s *Session) loopMode() bool {
	return s.info.Link() != nil && s.p.up.plain.Load()
}

// startLoopProxy is password's ending in proxy mode on the event loop:
// take a parked server connection of this loop, or get one on a
// goroutine; the client is answered once it is ready (lp.ready).
func (s *Session) startLoopProxy(env *netio.Env, out []byte) ([]byte, netio.Action) {
	up := s.p.up
	key, test, e, ok := s.proxyKey(env)
	if !ok {
		return s.fatal(out, e)
	}
	link := s.info.Link()
	lp := &loopProxy{s: s, up: up, key: key, status: 'I'}
	s.lp = lp
	s.phase = phaseConnecting
	if b := link.Take(parkKey{up, key}); b != nil {
		return lp.attached(env, b, out)
	}
	go lp.connect(link, up, key, test)
	return out, netio.Continue
}

// proxyKey is the pool key of the session's token: its role and database
// (and whether that database is a test one). A token with no scope that
// reaches the database gets the error to answer.
func (s *Session) proxyKey(env *netio.Env) (upstream.Key, bool, ErrorFields, bool) {
	role, err := upstream.RoleFor(&s.claims)
	if err != nil {
		f := tokenError(err)
		f.Severity = "FATAL"
		env.Observer.Authenticated(s.info, &s.claims, err, env.Now)
		return upstream.Key{}, false, f, false
	}
	db := string(s.database)
	if db == "default" {
		db = connstr.Database
	}
	test := s.p.adm.Policy != nil && s.p.adm.Policy.IsTestDatabase([]byte(db))
	return upstream.Key{Role: role, Database: db}, test, ErrorFields{}, true
}

// connect gets a server connection from the pool (blocking: on its own
// goroutine) and attaches it to the client's loop; failures reach the
// client through link.Do.
func (lp *loopProxy) connect(link *netio.Link, up *Upstream, key upstream.Key, test bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	sc, err := up.get(ctx, key, test)
	if err != nil {
		e := upstreamConnectError(up, err)
		_ = link.Do(func(_ *netio.Env, out []byte) ([]byte, netio.Action) { return lp.failed(out, e) })
		return
	}
	if _, ok := sc.Conn.(*net.TCPConn); !ok { // cannot happen with a plain upstream
		up.pool.Discard(key, sc)
		_ = link.Do(func(_ *netio.Env, out []byte) ([]byte, netio.Action) { return lp.failed(out, upstreamLostError) })
		return
	}
	if err := link.Attach(sc.Conn, sc, func() { up.pool.Discard(key, sc) }, lp.attached); err != nil {
		up.pool.Discard(key, sc)
		_ = link.Do(func(_ *netio.Env, out []byte) ([]byte, netio.Action) { return lp.failed(out, upstreamLostError) })
	}
}

// failed ends a session that got no server connection.
func (lp *loopProxy) failed(out []byte, e ErrorFields) ([]byte, netio.Action) {
	lp.state = lpDone
	if lp.gone {
		return out, netio.Continue
	}
	return lp.s.fatal(out, e)
}

// attached takes the server connection b (parked on this loop, or just
// registered): the client's startup parameters are set on it, or the
// client is answered at once. A client gone meanwhile leaves it parked.
func (lp *loopProxy) attached(_ *netio.Env, b *netio.Backend, out []byte) ([]byte, netio.Action) {
	lp.b = b
	lp.sc = b.Value().(*serverConn)
	if lp.gone {
		lp.state = lpDone
		lp.giveBack() // clean: fresh from the pool or reset
		return out, netio.Continue
	}
	b.SetHandler(lp)
	lp.target = &cancelTarget{secret: rand.Uint32(), sc: lp.sc}
	if params := lp.s.startupParams; len(params) > 0 {
		lp.state = lpStartup
		if err := b.Write(startupQuery(params)); err != nil {
			lp.state = lpDone
			return lp.s.fatal(out, upstreamLostError)
		}
		return out, netio.Continue
	}
	return lp.ready(out), netio.Continue
}

// ready answers the client's password: AuthenticationOk, the server's
// ParameterStatus set, the gateway's BackendKeyData, ReadyForQuery.
func (lp *loopProxy) ready(out []byte) []byte {
	s := lp.s
	lp.state = lpReady
	s.phase = phaseReady
	s.p.cancels.Store(s.info.ID, lp.target)
	out = AppendAuthentication(out, AuthenticationOk)
	for k, v := range lp.sc.params {
		out = AppendParameterStatus(out, k, v)
	}
	out = AppendBackendKeyData(out, s.info.ID, lp.target.secret)
	return AppendReadyForQuery(out)
}

// BackendTraffic handles the server's bytes (netio.BackendHandler).
func (lp *loopProxy) BackendTraffic(_ *netio.Env, b *netio.Backend, in, out []byte) (int, []byte, netio.Action) {
	switch lp.state {
	case lpReady:
		return lp.relay(b, in, out)
	case lpStartup, lpResetting:
		return lp.roundTrip(b, in, out)
	}
	return len(in), out, netio.Continue // nothing is owed to anyone: drop it
}

// BackendClosed: the server closed the connection (a restart, a
// termination) or writing to it failed; the client is told and closed.
func (lp *loopProxy) BackendClosed(_ *netio.Env, _ *netio.Backend, out []byte) ([]byte, netio.Action) {
	st := lp.state
	lp.state = lpDone
	if lp.gone || st == lpDone || st == lpResetting {
		return out, netio.Continue
	}
	return lp.s.fatal(out, upstreamLostError)
}

// roundTrip reads the answer to the gateway's own query (the startup
// parameters, DISCARD ALL) up to its ReadyForQuery, keeping ParameterStatus
// values and the first error.
func (lp *loopProxy) roundTrip(b *netio.Backend, in, out []byte) (int, []byte, netio.Action) {
	i := 0
	for len(in)-i >= 5 {
		size := int(binary.BigEndian.Uint32(in[i+1:]))
		if size < 4 || size > maxServerMessage {
			o, a := lp.lost(out)
			return len(in), o, a
		}
		end := i + 1 + size
		if end > len(in) {
			b.Await(1 + size)
			return i, out, netio.Continue
		}
		body := in[i+5 : end]
		typ := in[i]
		i = end
		switch typ {
		case 'S':
			lp.sc.setParam(body)
		case 'E':
			if lp.startErr == nil {
				lp.startErr = parseServerError(body)
			}
		case 'Z':
			if len(body) == 1 {
				lp.status = body[0]
			}
			return lp.answered(i, len(in), out)
		}
	}
	return i, out, netio.Continue
}

// answered finishes the gateway's own query once its ReadyForQuery came
// (used bytes of n were read).
func (lp *loopProxy) answered(used, n int, out []byte) (int, []byte, netio.Action) {
	b := lp.b
	if lp.state == lpResetting {
		lp.state = lpDone
		b.SetDeadline(time.Time{})
		if lp.startErr != nil || lp.status != 'I' || used != n {
			b.Close()
		} else {
			lp.giveBack()
		}
		return n, out, netio.Continue
	}
	if lp.startErr != nil { // a startup parameter the server refused
		lp.state = lpDone
		e := upstreamError(lp.startErr)
		b.Close()
		o, a := lp.s.fatal(out, e)
		return n, o, a
	}
	return used, lp.ready(out), netio.Continue
}

// lost ends the session over a broken server connection.
func (lp *loopProxy) lost(out []byte) ([]byte, netio.Action) {
	lp.state = lpDone
	lp.b.Close()
	if lp.gone {
		return out, netio.Continue
	}
	return lp.s.fatal(out, upstreamLostError)
}

// relay forwards the server's whole messages to the client: the
// ReadyForQuery of a Sync the gateway sent itself is dropped, an answer of
// the gateway's own that waited for the ones before it follows them, and a
// permission error gets the guide's scope message (wall 2).
func (lp *loopProxy) relay(b *netio.Backend, in, out []byte) (int, []byte, netio.Action) {
	i, start := 0, 0
	for len(in)-i >= 5 {
		size := int(binary.BigEndian.Uint32(in[i+1:]))
		if size < 4 || size > maxServerMessage {
			o, a := lp.lost(append(out, in[start:i]...))
			return len(in), o, a
		}
		end := i + 1 + size
		if end > len(in) {
			b.Await(1 + size)
			break
		}
		switch in[i] {
		case 'Z':
			if size == 5 {
				lp.status = in[i+5]
			}
			if lp.head < len(lp.replies) && !lp.replies[lp.head].gw {
				own := lp.replies[lp.head].own
				lp.head++
				if own { // the gateway's own Sync: the client never sees it
					out = append(out, in[start:i]...)
					start = end
				}
			}
			if lp.head < len(lp.replies) && lp.replies[lp.head].gw {
				out = append(out, in[start:end]...)
				start = end
				out = lp.gatewayReplies(out)
			}
		case 'S':
			lp.sc.setParam(in[i+5 : end])
		case 'E':
			if msg := annotatePermissionError(in[i:end], lp.key.Role); msg != nil {
				out = append(append(out, in[start:i]...), msg...)
				start = end
			}
		}
		i = end
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
		if r.rfq {
			out = AppendReadyForQueryStatus(out, lp.status)
		}
		r.msg = nil
		lp.head++
	}
	return out
}

// owed reports whether the server still owes a ReadyForQuery.
func (lp *loopProxy) owed() bool {
	for _, r := range lp.replies[lp.head:] {
		if !r.gw {
			return true
		}
	}
	return false
}

// directWrite is the size from which a client message is written to the
// server at once rather than gathered (COPY data, large binds).
const directWrite = 16 << 10

// send queues a client message for the server (written at the end of
// Handle, or at once when large). sync is true for a message answered by a
// ReadyForQuery (Query, Sync, FunctionCall).
func (lp *loopProxy) send(out, msg []byte, sync, ext bool) ([]byte, netio.Action) {
	if lp.b == nil || !lp.b.Open() {
		return lp.s.fatal(out, upstreamLostError)
	}
	if sync {
		lp.replies = append(lp.replies, reply{})
		lp.unsynced = false
	} else if ext {
		lp.unsynced = true
	}
	if len(msg) >= directWrite {
		if err := lp.flush(); err != nil {
			return lp.s.fatal(out, upstreamLostError)
		}
		if err := lp.b.Write(msg); err != nil {
			return lp.s.fatal(out, upstreamLostError)
		}
		return out, netio.Continue
	}
	lp.wbuf = append(lp.wbuf, msg...)
	return out, netio.Continue
}

// flush writes the gathered client messages to the server.
func (lp *loopProxy) flush() error {
	if len(lp.wbuf) == 0 {
		return nil
	}
	err := lp.b.Write(lp.wbuf)
	if cap(lp.wbuf) > 64<<10 {
		lp.wbuf = nil
	} else {
		lp.wbuf = lp.wbuf[:0]
	}
	return err
}

// refuse answers a refused message in its turn (see refuseMessage): at once
// when nothing is owed, else behind what is. Extended-protocol messages
// already forwarded without a Sync are closed with a Sync of the gateway's
// own whose ReadyForQuery is dropped.
func (lp *loopProxy) refuse(out []byte, e ErrorFields, query bool) ([]byte, netio.Action) {
	if lp.unsynced {
		lp.replies = append(lp.replies, reply{own: true})
		lp.wbuf = append(lp.wbuf, 'S', 0, 0, 0, 4)
		lp.unsynced = false
	}
	if !query {
		lp.s.skipSync = true
	}
	return lp.gateway(out, AppendErrorResponse(nil, e), query), netio.Continue
}

// gateway answers the client with msg (and a ReadyForQuery when rfq) now,
// or once the server's answers still owed have gone before it.
func (lp *loopProxy) gateway(out, msg []byte, rfq bool) []byte {
	if lp.head == len(lp.replies) {
		out = append(out, msg...)
		if rfq {
			out = AppendReadyForQueryStatus(out, lp.status)
		}
		return out
	}
	lp.replies = append(lp.replies, reply{gw: true, msg: msg, rfq: rfq})
	return out
}

// clientGone ends the server side when the client connection has closed
// (Session.Closed): a clean, idle session's connection is reset and parked;
// otherwise it is closed, and a statement still running is cancelled on
// the server first.
func (lp *loopProxy) clientGone() {
	lp.gone = true
	s := lp.s
	if lp.target != nil {
		s.p.cancels.CompareAndDelete(s.info.ID, lp.target)
	}
	switch lp.state {
	case lpConnecting, lpDone, lpResetting:
		return // attached parks what arrives
	case lpReady:
		if lp.clean && !lp.revoked && !lp.unsynced && lp.head == len(lp.replies) && lp.status == 'I' && len(lp.wbuf) == 0 && lp.b.Open() {
			lp.reset()
			return
		}
		if lp.owed() {
			// A statement still runs for a client that is gone (revoked
			// mid-query, or it hung up): stop it on the server too.
			sc := lp.sc
			go func() { _ = sc.cancel() }()
		}
	}
	lp.state = lpDone
	lp.b.Close()
}

// reset sends DISCARD ALL; its answer parks the connection (roundTrip).
func (lp *loopProxy) reset() {
	lp.state = lpResetting
	lp.startErr = nil
	msg, at := begin(nil, 'Q')
	msg = finish(appendCString(msg, "DISCARD ALL"), at)
	if err := lp.b.Write(msg); err != nil {
		lp.state = lpDone
		return
	}
	lp.b.SetDeadline(time.Now().Add(5 * time.Second))
}

// giveBack returns a clean server connection: to the pool when a client
// elsewhere waits for one of its key, else parked on this loop.
func (lp *loopProxy) giveBack() {
	sc := lp.sc
	upstream.GiveBack(lp.b, lp.up.pool, lp.key, sc, parkKey{lp.up, lp.key}, func(nc net.Conn) { sc.Conn = nc })
}

// startupQuery sets the client's startup parameters, as a server takes them
// from the StartupMessage (see applyStartup).
func startupQuery(params [][2]string) []byte {
	q := []byte("SELECT ")
	for i, kv := range params {
		if i > 0 {
			q = append(q, ", "...)
		}
		q = append(q, "set_config("...)
		q = append(q, quoteLiteral(kv[0])...)
		q = append(q, ", "...)
		q = append(q, quoteLiteral(kv[1])...)
		q = append(q, ", false)"...)
	}
	msg, at := begin(nil, 'Q')
	return finish(appendCString(msg, string(q)), at)
}
