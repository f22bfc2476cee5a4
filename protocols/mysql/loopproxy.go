package mysql

// Proxy mode on the event loop: session start, client commands to the
// server, and the session's end (reset and park, or close).

import (
	"context"
	"net"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/internal/upstream"
)

// A plaintext client's proxied session stays on its gnet event loop, and
// so does its server connection: one parked on the same loop
// (netio.Link.Take), or, when the loop has none, one the pool gives on a
// goroutine (an idle one or a new login, which block) that netio then
// registers on the client's loop (netio.Link.Attach). From then on both
// directions run on the loop, without goroutine switches or locks: client
// commands are checked as the goroutine proxy checks them (dispatch) and
// written to the server in one write per client read; the server's packets
// are forwarded as they come (loopproxy_relay.go), following each
// response's structure to know where it ends. A command the gateway
// refuses is answered in its turn: its ERR waits in the reply queue behind
// the responses still owed. A client reading slowly stops the loop reading
// its server (netio pauses the backend). When the client leaves cleanly
// (COM_QUIT, nothing owed, no transaction), COM_RESET_CONNECTION is sent
// and answered on the loop and the connection is parked there for the
// loop's next client of the same pool key — or handed to the pool when a
// client elsewhere waits for one. A session whose fast-auth cache missed
// has moved to a goroutine for the RSA exchange, and TLS clients are
// served on goroutines: both keep the goroutine proxy (proxy.go).

// Proxied sessions by where they run.
var (
	loopSessions      = metrics.GetOrCreateCounter(`helios_gateway_mysql_proxy_sessions_total{path="loop"}`)
	goroutineSessions = metrics.GetOrCreateCounter(`helios_gateway_mysql_proxy_sessions_total{path="goroutine"}`)
)

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
	lpResetting                 // the client left cleanly: COM_RESET_CONNECTION sent
	lpDone                      // the server side is closed, parked or lost
)

// lpReply is one answer the client is owed, in order: the server's response
// to a command (kind, and the command's sequence id), or the gateway's own
// ERR for a refused command (gw: msg).
type lpReply struct {
	kind expect
	seq  byte
	gw   bool
	msg  []byte
}

// loopProxy is a session's server side on its event loop.
type loopProxy struct {
	s     *Session
	up    *Upstream
	key   upstream.Key
	sc    *serverConn
	b     *netio.Backend
	state lpState
	// authSeq is the sequence id of the client's answer once the server
	// connection is ready, fast whether 01 03 goes first.
	authSeq      byte
	fast         bool
	deprecateEOF bool
	mayLoad      bool      // database:write: LOAD DATA LOCAL may send the client's file
	replies      []lpReply // replies[head:] are owed
	head         int
	r            response // the response being read
	active       bool     // r is under way
	cont         bool     // the last packet was a 16 MiB - 1 fragment
	lastSeq      byte     // the sequence id of the last server packet
	status       uint16   // the status flags of the last OK or EOF
	infile       bool     // the client's packets are a LOCAL INFILE file
	wbuf         []byte   // client packets to write at the end of Handle
	wflush       bool     // one of them needs to go out now
	resets       int      // OKs still owed to the reset
	// told: the client has been sent why the server side is gone; clean:
	// it said COM_QUIT; revoked: ended from outside; gone: its connection
	// has closed; resetFailed: the reset met an error.
	told, clean, revoked, gone, resetFailed bool
	dbChanged, optionChanged                bool
}

// loopMode reports whether the session's proxy runs on its event loop: a
// client on a loop (not TLS, not offloaded). The MySQL upstream is always
// reached in plaintext over TCP.
func (s *Session) loopMode() bool { return s.info.Link() != nil }

// startLoopProxy is admitted's ending in proxy mode on the event loop: take
// a parked server connection of this loop, or get one on a goroutine; the
// client is answered (01 03 first when fast, then OK) once it is there.
func (s *Session) startLoopProxy(env *netio.Env, out []byte, seq byte, fast bool) ([]byte, netio.Action) {
	up := s.p.up
	role, err := upstream.RoleFor(&s.claims)
	if err != nil {
		env.Observer.Authenticated(s.info, &s.claims, err, env.Now)
		return s.appendDBRefused(out, seq, s.db, err), netio.Close
	}
	key := upstream.Key{Role: role, Database: string(s.db), Variant: variant(s.caps, s.charset)}
	test := s.p.policy != nil && len(s.db) > 0 && s.p.policy.IsTestDatabase(s.db)
	lp := &loopProxy{s: s, up: up, key: key, authSeq: seq, fast: fast, deprecateEOF: s.caps&ClientDeprecateEOF != 0,
		mayLoad: s.claims.Scopes.Has(core.ScopeDatabaseWrite)}
	s.lp = lp
	s.state = stConnecting
	loopSessions.Inc()
	link := s.info.Link()
	if b := link.Take(parkKey{up, key}); b != nil {
		return lp.attached(env, b, out)
	}
	go lp.connect(link, key, test)
	return out, netio.Continue
}

// connect gets a server connection from the pool (blocking: on its own
// goroutine) and attaches it to the client's loop; failures reach the
// client through link.Do.
func (lp *loopProxy) connect(link *netio.Link, key upstream.Key, test bool) {
	up := lp.up
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	sc, err := up.get(ctx, key, test)
	if err != nil {
		_ = link.Do(func(_ *netio.Env, out []byte) ([]byte, netio.Action) {
			return lp.failed(appendUpstreamConnectError(out, lp.authSeq, up, err))
		})
		return
	}
	if _, ok := sc.Conn.(*net.TCPConn); !ok { // cannot happen: dial makes TCP connections
		up.pool.Discard(key, sc)
		_ = link.Do(func(_ *netio.Env, out []byte) ([]byte, netio.Action) {
			return lp.failed(appendUpstreamLost(out, lp.authSeq))
		})
		return
	}
	if err := link.Attach(sc.Conn, sc, func() { up.pool.Discard(key, sc) }, lp.attached); err != nil {
		up.pool.Discard(key, sc)
		_ = link.Do(func(_ *netio.Env, out []byte) ([]byte, netio.Action) {
			return lp.failed(appendUpstreamLost(out, lp.authSeq))
		})
	}
}

// failed ends a session that got no server connection (out holds its
// ERR).
func (lp *loopProxy) failed(out []byte) ([]byte, netio.Action) {
	lp.state = lpDone
	lp.s.state = stClosed
	return out, netio.Close // dropped when the client has gone
}

// attached takes the server connection b (parked on this loop, or just
// registered) and answers the client's authentication. A client gone
// meanwhile leaves it parked (it is clean: fresh from the pool, or reset).
func (lp *loopProxy) attached(_ *netio.Env, b *netio.Backend, out []byte) ([]byte, netio.Action) {
	lp.b = b
	lp.sc = b.Value().(*serverConn)
	if lp.gone {
		lp.state = lpDone
		lp.giveBack()
		return out, netio.Continue
	}
	b.SetHandler(lp)
	lp.state = lpReady
	lp.status = lp.sc.status
	s := lp.s
	s.state = stCommand
	seq := lp.authSeq
	if lp.fast {
		out = AppendAuthMoreData(out, seq, fastAuthOK[:])
		seq++
	}
	return appendStatusOK(out, seq, lp.status, s.caps), netio.Continue
}

// loopForward handles one client packet in proxy mode on the event loop
// (payload: the packet's payload; s.raw: the whole packet).
func (s *Session) loopForward(env *netio.Env, payload, out []byte) ([]byte, netio.Action) {
	lp := s.lp
	if lp.state != lpReady || !lp.b.Open() {
		if lp.told {
			return out, netio.Close
		}
		return appendUpstreamLost(out, s.seq+1), netio.Close
	}
	if lp.infile {
		lp.infile = len(payload) > 0 // the empty packet ends the file
		lp.wflush = true             // its content goes on as it comes
		return lp.queue(s, out, 0, false)
	}
	if len(payload) == 0 {
		return AppendERR(out, s.seq+1, erUnknownCom, stateCommunicationFailure, "Unknown command"), netio.Close
	}
	if payload[0] == comQuit {
		lp.clean = true // Closed resets and parks the server connection
		return out, netio.Close
	}
	out, ok := s.recheck(env, out)
	if !ok {
		lp.revoked = true
		return out, netio.Close
	}
	return s.dispatch(env, lp, payload, out)
}

// directWrite is the size from which client packets are written to the
// server at once rather than gathered (a LOCAL INFILE file, large
// arguments).
const directWrite = 16 << 10

// queue queues the client packet being handled for the server
// (serverSide): written at the end of Handle when one of the packets
// gathered needs an answer, at once when large.
func (lp *loopProxy) queue(s *Session, out []byte, kind expect, reply bool) ([]byte, netio.Action) {
	if reply {
		lp.replies = append(lp.replies, lpReply{kind: kind, seq: s.seq})
		lp.wflush = true
	}
	lp.wbuf = append(lp.wbuf, s.raw...)
	if len(lp.wbuf) >= directWrite && lp.flush() != nil {
		return appendUpstreamLost(out, s.seq+1), netio.Close
	}
	return out, netio.Continue
}

// flush writes the gathered client packets to the server.
func (lp *loopProxy) flush() error {
	lp.wflush = false
	if len(lp.wbuf) == 0 {
		return nil
	}
	err := lp.b.Write(lp.wbuf)
	if cap(lp.wbuf) > pumpBufferMax {
		lp.wbuf = nil
	} else {
		lp.wbuf = lp.wbuf[:0]
	}
	return err
}

// flushLoopProxy ends a Handle of a session proxied on the loop: what it
// queued goes to the server in one write.
func (s *Session) flushLoopProxy(out []byte, act netio.Action) ([]byte, netio.Action) {
	lp := s.lp
	if !lp.wflush || lp.state != lpReady {
		return out, act
	}
	if err := lp.flush(); err != nil && act != netio.Close {
		s.state = stClosed
		return appendUpstreamLost(out, s.seq+1), netio.Close
	}
	return out, act
}

// refusal answers a refused command now when the server owes nothing,
// else queues its ERR behind the responses owed (serverSide).
func (lp *loopProxy) refusal(_ *Session, out, o []byte) ([]byte, netio.Action) {
	if lp.head == len(lp.replies) {
		return o, netio.Continue
	}
	lp.replies = append(lp.replies, lpReply{gw: true, msg: append([]byte(nil), o[len(out):]...)})
	return o[:len(out)], netio.Continue
}

// changed records a change to the server connection's session
// (serverSide).
func (lp *loopProxy) changed(db, option bool) {
	lp.dbChanged = lp.dbChanged || db
	lp.optionChanged = lp.optionChanged || option
}

// owed reports whether the server still owes a response.
func (lp *loopProxy) owed() bool {
	for _, r := range lp.replies[lp.head:] {
		if !r.gw {
			return true
		}
	}
	return false
}

// nextSeq is the sequence id of the packet the client expects next: the
// one after the last of the response under way, or after the command still
// waiting for its response; 1 when idle (the reply to its next command).
func (lp *loopProxy) nextSeq() byte {
	if lp.active {
		return lp.lastSeq + 1
	}
	for _, r := range lp.replies[lp.head:] {
		if !r.gw {
			return r.seq + 1
		}
	}
	return 1
}

// clientGone ends the server side when the client connection has closed
// (Session.Closed): a clean, idle session's connection is reset and
// parked; otherwise it is closed, and a statement still running on it is
// ended with KILL.
func (lp *loopProxy) clientGone() {
	lp.gone = true
	if lp.state != lpReady {
		return // connecting: attached parks what arrives; done: nothing left
	}
	busy := lp.owed() || lp.infile
	if lp.clean && !lp.revoked && !busy && lp.status&serverStatusInTrans == 0 && !lp.optionChanged &&
		!(lp.dbChanged && lp.key.Database == "") && lp.b.Open() {
		lp.reset()
		return
	}
	lp.state = lpDone
	lp.b.Close()
	if busy {
		lp.up.kill(lp.key.Role, lp.sc.threadID)
	}
}

// reset sends COM_RESET_CONNECTION (and COM_INIT_DB with the pool's
// database when the client selected another); their OKs park the
// connection (resetReply).
func (lp *loopProxy) reset() {
	lp.state = lpResetting
	lp.wbuf = lp.wbuf[:0]
	b, start := beginPacket(nil, 0)
	msg := endPacket(append(b, comResetConnection), start)
	lp.resets = 1
	if lp.dbChanged {
		b, start = beginPacket(msg, 0)
		msg = endPacket(append(append(b, comInitDB), lp.key.Database...), start)
		lp.resets = 2
	}
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

// reclaim asks the event loops for a server connection of k parked there,
// for a client waiting in the pool (upstream.PoolOptions.Reclaim).
func (u *Upstream) reclaim(k upstream.Key) {
	netio.Reclaim(parkKey{u, k}, func(v any, nc net.Conn) {
		sc := v.(*serverConn)
		sc.Conn = nc
		u.pool.Put(k, sc)
	})
}
