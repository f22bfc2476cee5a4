package postgres

import (
	"context"
	"crypto/subtle"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/internal/upstream"
)

// Proxy mode: once the token is admitted, the session is paired with a
// pooled server connection logged in as the role its scopes allow
// (upstream.RoleFor) and the bytes flow through. Client to server, on the
// session's goroutine: every Query and Parse is classified first (wall 1);
// a refused one never leaves, and its error is written once everything sent
// before it has been answered, so replies stay in order. Server to client,
// on the pump goroutine: whole messages, forwarded as they come; the write
// blocks while the client reads slowly, which stops the pump reading the
// server (bounded memory). The role is wall 2. This goroutine proxy serves
// TLS clients and upstreams that cannot be registered on an event loop;
// every other session runs the same protocol on its loop (loopproxy.go).

// maxServerMessage bounds one message from the server (a DataRow): the pump
// forwards whole messages only, so that the gateway's own errors never land
// inside one.
const maxServerMessage = 64 << 20

// proxy is a session's server side.
type proxy struct {
	up     *Upstream
	key    upstream.Key
	sc     *serverConn
	target *cancelTarget // the BackendKeyData secret the client was given, for CancelRequest

	mu   sync.Mutex
	cond sync.Cond
	// syncs holds one entry per Query, Sync or FunctionCall sent whose
	// ReadyForQuery has not come back: true for a Sync the gateway sent
	// itself, whose ReadyForQuery the client must not see.
	syncs    []bool
	status   byte // the last ReadyForQuery's transaction status
	dead     bool // the pump has stopped (server gone, protocol error)
	done     chan struct{}
	unsynced bool // extended-protocol messages forwarded since the last Sync
	clean    bool // the client said Terminate
	revoked  bool // the session was ended from outside
}

// startProxy is password's proxy-mode ending: take a server connection for
// the token's role and database, apply the client's startup parameters,
// and answer the client with the server's ParameterStatus set.
func (s *Session) startProxy(env *netio.Env, out []byte) ([]byte, netio.Action) {
	up := s.p.up
	key, test, e, ok := s.proxyKey(env)
	if !ok {
		return s.fatal(out, e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	sc, err := up.get(ctx, key, test)
	if err != nil {
		return s.fatal(out, upstreamConnectError(up, err))
	}
	px := &proxy{up: up, key: key, sc: sc, target: &cancelTarget{secret: rand.Uint32(), sc: sc}, status: 'I', done: make(chan struct{})}
	px.cond.L = &px.mu
	if len(s.startupParams) > 0 {
		if err := px.applyStartup(s.startupParams); err != nil {
			up.pool.Discard(key, sc)
			return s.fatal(out, upstreamError(err))
		}
	}
	s.px = px
	s.p.cancels.Store(s.info.ID, px.target)
	s.phase = phaseReady
	out = AppendAuthentication(out, AuthenticationOk)
	for k, v := range sc.params {
		out = AppendParameterStatus(out, k, v)
	}
	out = AppendBackendKeyData(out, s.info.ID, px.target.secret)
	out = AppendReadyForQuery(out)
	go px.pump(s.info.Client)
	return out, netio.Continue
}

// forward handles one client message in proxy mode (msg is the whole
// message: type, length, body).
func (s *Session) forward(env *netio.Env, msg, out []byte) ([]byte, netio.Action) {
	px := s.px
	if err := env.Recheck(&s.claims); err != nil {
		env.Observer.Authenticated(s.info, &s.claims, err, env.Now)
		s.markRevoked()
		return s.fatal(out, tokenError(err))
	}
	typ, body := msg[0], msg[messageHeaderLen:]
	if s.skipSync {
		if typ != 'S' {
			return out, netio.Continue // after a refusal, discard until Sync
		}
		s.skipSync = false
		if s.lp != nil {
			return s.lp.gateway(out, nil, true), netio.Continue
		}
		st, ok := px.waitIdle()
		if !ok {
			return s.fatal(out, upstreamLostError)
		}
		return AppendReadyForQueryStatus(out, st), netio.Continue
	}
	switch typ {
	case 'Q':
		q, rest, ok := cstring(body)
		if !ok || len(rest) > 0 {
			return s.refuseMessage(out, ErrorFields{Severity: "ERROR", Code: codeProtocolViolation, Message: "invalid message format"}, true)
		}
		if _, e, bad := s.allowed(env, q); bad && !bypassClassifier {
			return s.refuseMessage(out, e, true)
		}
		return s.send(out, msg, true, false)
	case 'P':
		var m Parse
		if err := m.Decode(body); err != nil {
			return s.fatal(out, protocolViolation("invalid Parse message"))
		}
		if _, e, bad := s.allowed(env, m.Query); bad && !bypassClassifier {
			return s.refuseMessage(out, e, false)
		}
		return s.send(out, msg, false, true)
	case 'S':
		return s.send(out, msg, true, false)
	case 'F':
		// A function called by OID: no statement to classify. Only a token
		// that may change data may call one; its role is the wall.
		if !s.claims.Scopes.Has(core.ScopeDatabaseWrite) {
			e := tokenError(core.ForbiddenError(core.ScopeDatabaseWrite))
			env.Observer.Authenticated(s.info, &s.claims, core.ForbiddenError(core.ScopeDatabaseWrite), env.Now)
			return s.refuseMessage(out, e, true)
		}
		return s.send(out, msg, true, false)
	case 'B', 'E', 'D', 'C', 'H':
		return s.send(out, msg, false, true)
	case 'd', 'c', 'f':
		return s.send(out, msg, false, false)
	}
	return s.fatal(out, protocolViolation("invalid frontend message type "+string(rune(typ))))
}

// send writes a client message to the server. sync is true for a message
// answered by a ReadyForQuery (Query, Sync, FunctionCall).
func (s *Session) send(out, msg []byte, sync, ext bool) ([]byte, netio.Action) {
	if s.lp != nil {
		return s.lp.send(out, msg, sync, ext)
	}
	px := s.px
	px.mu.Lock()
	if px.dead {
		px.mu.Unlock()
		return s.fatal(out, upstreamLostError)
	}
	if sync {
		px.syncs = append(px.syncs, false)
		px.unsynced = false
	} else if ext {
		px.unsynced = true
	}
	px.mu.Unlock()
	if _, err := px.sc.Write(msg); err != nil {
		px.kill()
		return s.fatal(out, upstreamLostError)
	}
	return out, netio.Continue
}

// refuseMessage answers a refused message once everything sent before it has been
// answered. A Query gets the error and ReadyForQuery; an extended-protocol
// message gets the error, and the messages up to Sync are discarded, as a
// server does. Extended messages already forwarded without a Sync are
// closed with a Sync of the gateway's own whose ReadyForQuery is dropped.
func (s *Session) refuseMessage(out []byte, e ErrorFields, query bool) ([]byte, netio.Action) {
	if s.lp != nil {
		return s.lp.refuse(out, e, query)
	}
	px := s.px
	px.mu.Lock()
	if px.unsynced {
		px.syncs = append(px.syncs, true)
		px.unsynced = false
		px.mu.Unlock()
		if _, err := px.sc.Write([]byte{'S', 0, 0, 0, 4}); err != nil {
			px.kill()
			return s.fatal(out, upstreamLostError)
		}
	} else {
		px.mu.Unlock()
	}
	st, ok := px.waitIdle()
	if !ok {
		return s.fatal(out, upstreamLostError)
	}
	out = AppendErrorResponse(out, e)
	if query {
		return AppendReadyForQueryStatus(out, st), netio.Continue
	}
	s.skipSync = true
	return out, netio.Continue
}

// waitIdle waits until every Query and Sync sent has been answered and
// returns the transaction status; false when the server is gone.
func (px *proxy) waitIdle() (byte, bool) {
	px.mu.Lock()
	defer px.mu.Unlock()
	for len(px.syncs) > 0 && !px.dead {
		px.cond.Wait()
	}
	return px.status, !px.dead
}

// kill marks the server side lost and wakes whoever waits for it.
func (px *proxy) kill() {
	px.mu.Lock()
	px.dead = true
	px.cond.Broadcast()
	px.mu.Unlock()
	_ = px.sc.SetReadDeadline(time.Now())
}

// pump forwards the server's messages to the client, whole, until the
// server connection fails or is stopped (a read deadline in the past).
func (px *proxy) pump(client io.Writer) {
	defer close(px.done)
	buf := make([]byte, 0, 64<<10)
	rd := make([]byte, 32<<10)
	for {
		n, rerr := px.sc.Read(rd)
		buf = append(buf, rd[:n]...)
		i, start, answered := 0, 0, 0
		var status byte
		for len(buf)-i >= 5 {
			size := int(binary.BigEndian.Uint32(buf[i+1:]))
			if size < 4 || size > maxServerMessage {
				px.kill()
				return
			}
			if len(buf)-i < 1+size {
				break
			}
			switch buf[i] {
			case 'Z':
				if size == 5 {
					status = buf[i+5]
				}
				px.mu.Lock()
				own := answered < len(px.syncs) && px.syncs[answered]
				px.mu.Unlock()
				answered++
				if own { // the gateway's own Sync: the client never sees it
					if _, err := client.Write(buf[start:i]); err != nil {
						px.kill()
						return
					}
					start = i + 1 + size
				}
			case 'S':
				px.mu.Lock()
				px.sc.setParam(buf[i+5 : i+1+size])
				px.mu.Unlock()
			case 'E':
				// The role refused what the classifier let through (wall 2):
				// the client reads which scope would have allowed it.
				if msg := annotatePermissionError(buf[i:i+1+size], px.key.Role); msg != nil {
					if _, err := client.Write(buf[start:i]); err != nil {
						px.kill()
						return
					}
					if _, err := client.Write(msg); err != nil {
						px.kill()
						return
					}
					start = i + 1 + size
				}
			}
			i += 1 + size
		}
		if start < i {
			if _, err := client.Write(buf[start:i]); err != nil {
				px.kill()
				return
			}
		}
		if answered > 0 {
			px.mu.Lock()
			px.syncs = px.syncs[:copy(px.syncs, px.syncs[min(answered, len(px.syncs)):])]
			px.status = status
			px.cond.Broadcast()
			px.mu.Unlock()
		}
		buf = buf[:copy(buf, buf[i:])]
		if rerr != nil {
			px.mu.Lock()
			px.dead = true
			px.cond.Broadcast()
			px.mu.Unlock()
			return
		}
	}
}

// closeProxy ends the server side when the client connection ends: the
// server connection goes back to the pool, reset with DISCARD ALL, when the
// client left cleanly (Terminate, nothing outstanding, not in a
// transaction, not revoked); otherwise it is closed.
func (s *Session) closeProxy() {
	px := s.px
	if px == nil {
		return
	}
	s.p.cancels.CompareAndDelete(s.info.ID, px.target)
	_ = px.sc.SetReadDeadline(time.Now()) // stop the pump
	select {
	case <-px.done:
	case <-time.After(5 * time.Second):
		// The pump is stuck in a write to the client (it cannot be, once
		// the client's socket is closed: this only guards the guard): the
		// server connection is closed, which ends it.
		px.mu.Lock()
		px.dead = true
		px.mu.Unlock()
		px.up.pool.Discard(px.key, px.sc)
		return
	}
	px.mu.Lock()
	reusable := px.clean && !px.revoked && len(px.syncs) == 0 && px.status == 'I' && !px.unsynced
	running := len(px.syncs) > 0
	px.dead = true
	px.mu.Unlock()
	if !reusable {
		if running {
			// A statement still runs for a client that is gone (revoked
			// mid-query, or it hung up): stop it on the server too, which
			// would otherwise finish it first.
			_ = px.sc.cancel()
		}
		px.up.pool.Discard(px.key, px.sc)
		return
	}
	go func() {
		_ = px.sc.SetReadDeadline(time.Time{})
		msg, at := begin(nil, 'Q')
		msg = finish(appendCString(msg, "DISCARD ALL"), at)
		if err := px.roundTrip(msg, 5*time.Second); err != nil || px.status != 'I' {
			px.up.pool.Discard(px.key, px.sc)
			return
		}
		px.up.pool.Put(px.key, px.sc)
	}()
}

// cancelFor forwards a CancelRequest from a client that holds the key the
// gateway gave one of its sessions.
func (p *Protocol) cancelFor(pid, secret uint32) {
	v, ok := p.cancels.Load(pid)
	if !ok {
		return
	}
	t := v.(*cancelTarget)
	var a, b [4]byte
	binary.BigEndian.PutUint32(a[:], secret)
	binary.BigEndian.PutUint32(b[:], t.secret)
	if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		return
	}
	_ = t.sc.cancel()
}
