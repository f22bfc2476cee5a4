package mysql

// Proxy mode: session start and forwarding of client commands to the upstream server.

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/internal/sqlscope"
	"github.com/heliosdb/auth/protocols/internal/upstream"
)

// Proxy mode: once the token is admitted, the session is paired with a
// pooled server connection logged in as the user its scopes allow
// (upstream.RoleFor), opened with the same format flags and character set
// as the client negotiated, and whole packets flow through. This file and
// proxy_pump.go, proxy_end.go are the proxy of a session on a goroutine
// (TLS, or moved there for the RSA exchange); loopproxy.go is the one on
// the event loop. Client to server, on the session's goroutine: every COM_QUERY and COM_STMT_PREPARE
// is classified first (wall 1), COM_INIT_DB is checked as a database
// change; a refused command never leaves, and its error is written once
// everything sent before it has been answered. Server to client, on the
// pump goroutine: whole packets, forwarded as they come; the write blocks
// while the client reads slowly, which stops the pump reading the server
// (bounded memory). The pump follows each response's structure (OK, ERR,
// result sets, prepared-statement metadata, LOCAL INFILE requests) to know
// when it ends and in which transaction state. The user is wall 2.

// Commands forwarded besides those of the built-in responder.
const (
	comFieldList  = 0x04
	comStatistics = 0x09
	comChangeUser = 0x11
	comSetOption  = 0x1b
	comStmtFetch  = 0x1c
)

// Server status flags ("SERVER_STATUS_flags_enum").
const (
	serverStatusInTrans      uint16 = 0x0001 // SERVER_STATUS_IN_TRANS
	serverMoreResultsExist   uint16 = 0x0008 // SERVER_MORE_RESULTS_EXISTS
	serverStatusCursorExists uint16 = 0x0040 // SERVER_STATUS_CURSOR_EXISTS
	// localInfileRequest is the first byte of the server's request for a
	// client file (LOAD DATA LOCAL INFILE).
	localInfileRequest byte = 0xfb
)

// proxyCaps are what the greeting offers beyond serverCapabilitiesWithoutSSL
// in proxy mode: an upstream server does what the built-in responder
// cannot (several statements per COM_QUERY, LOAD DATA LOCAL, session
// state tracking).
const proxyCaps = ClientLocalFiles | ClientMultiStatements | ClientPSMultiResults | ClientSessionTrack

// expect is the kind of response a forwarded command gets.
type expect uint8

const (
	expResult  expect = iota // COM_QUERY, COM_STMT_EXECUTE: OK, ERR, LOCAL INFILE or result sets
	expPrepare               // COM_STMT_PREPARE: COM_STMT_PREPARE_OK and its definitions, or ERR
	expOne                   // one packet: COM_PING, COM_INIT_DB, COM_RESET_CONNECTION, COM_STMT_RESET, COM_SET_OPTION, COM_STATISTICS
	expRows                  // COM_STMT_FETCH: rows up to the end of the fetch
	expFields                // COM_FIELD_LIST: column definitions up to EOF
)

// command is a forwarded command awaiting its response.
type command struct {
	kind expect
	seq  byte // the command packet's sequence id
}

// proxy is a session's server side.
type proxy struct {
	up           *Upstream
	key          upstream.Key
	sc           *serverConn
	deprecateEOF bool
	mayLoad      bool // database:write: LOAD DATA LOCAL may send the client's file
	// wbuf holds client packets queued for the server (the session's
	// goroutine only); wflush: one of them needs to go out now.
	wbuf   []byte
	wflush bool

	mu   sync.Mutex
	cond sync.Cond
	// pending holds the commands sent whose responses have not ended.
	pending []command
	status  uint16 // the status flags of the last OK or EOF
	lastSeq byte   // sequence id of the last packet of the exchange in progress
	infile  bool   // the server asked for a local file: the client's packets are its content
	dead    bool   // the pump has stopped (server gone, protocol error, LOCAL INFILE refused)
	// told: the client has already read (or will read as the reply to its
	// next command) why the server side is gone.
	told     bool
	stopping bool // closeProxy stopped the pump
	done     chan struct{}
	// What decides whether the server connection goes back to the pool.
	clean         bool // the client said COM_QUIT
	revoked       bool // the session was ended from outside
	dbChanged     bool // COM_INIT_DB or USE selected another database
	optionChanged bool // COM_SET_OPTION changed the multi-statement flag
}

// greetingVersion is the version the greeting announces: the upstream's
// in proxy mode once heliosd has logged in to it.
func (p *Protocol) greetingVersion() string {
	if p.up != nil {
		if v := p.up.serverVersion(); v != "" {
			return v
		}
	}
	return p.version
}

// startProxy ends a successful authentication in proxy mode: take a server
// connection for the token's role and the session's database, answer the
// client's authentication (01 03 first when fast), and start the pump.
func (s *Session) startProxy(env *netio.Env, out []byte, seq byte, fast bool) ([]byte, netio.Action) {
	up := s.p.up
	if s.info.Client == nil { // BUG: Handle offloads every proxied session before its handshake response
		return AppendERR(out, seq, erHandshake, stateCommunicationFailure, "Bad handshake: the proxied session is not on its own goroutine"), netio.Close
	}
	role, err := upstream.RoleFor(&s.claims)
	if err != nil {
		env.Observer.Authenticated(s.info, &s.claims, err, env.Now)
		return s.appendDBRefused(out, seq, s.db, err), netio.Close
	}
	key := upstream.Key{Role: role, Database: string(s.db), Variant: variant(s.caps, s.charset)}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	test := s.p.policy != nil && len(s.db) > 0 && s.p.policy.IsTestDatabase(s.db)
	sc, err := up.get(ctx, key, test)
	if err != nil {
		return appendUpstreamConnectError(out, seq, up, err), netio.Close
	}
	px := &proxy{up: up, key: key, sc: sc, deprecateEOF: s.caps&ClientDeprecateEOF != 0,
		mayLoad: s.claims.Scopes.Has(core.ScopeDatabaseWrite), status: sc.status, done: make(chan struct{})}
	px.cond.L = &px.mu
	s.px = px
	goroutineSessions.Inc()
	if fast {
		out = AppendAuthMoreData(out, seq, fastAuthOK[:])
		seq++
	}
	s.state = stCommand
	out = appendStatusOK(out, seq, sc.status, s.caps)
	go px.pump(s.info.Client)
	return out, netio.Continue
}

// appendStatusOK appends an OK packet with the given status flags (and,
// for a client with CLIENT_SESSION_TRACK, the empty info string that
// capability makes mandatory).
func appendStatusOK(dst []byte, seq byte, status uint16, caps uint32) []byte {
	dst, start := beginPacket(dst, seq)
	dst = append(dst, headerOK, 0, 0)
	dst = binary.LittleEndian.AppendUint16(dst, status)
	dst = append(dst, 0, 0)
	if caps&ClientSessionTrack != 0 {
		dst = append(dst, 0)
	}
	return endPacket(dst, start)
}

// forward handles one client packet in proxy mode (payload: the packet's
// payload; s.raw: the whole packet).
func (s *Session) forward(env *netio.Env, payload, out []byte) ([]byte, netio.Action) {
	px := s.px
	px.mu.Lock()
	infile, dead, told := px.infile, px.dead, px.told
	if infile && len(payload) == 0 {
		px.infile = false // the empty packet ends the file
	}
	px.mu.Unlock()
	if dead {
		if told {
			return out, netio.Close
		}
		return appendUpstreamLost(out, s.seq+1), netio.Close
	}
	if infile {
		px.wflush = true // the file's content goes on as it comes
		return px.queue(s, out, 0, false)
	}
	if len(payload) == 0 {
		return AppendERR(out, s.seq+1, erUnknownCom, stateCommunicationFailure, "Unknown command"), netio.Close
	}
	if payload[0] == comQuit {
		// The server connection is reset and returned now, before the
		// client's socket is even closed: a client that reconnects at once
		// finds it in the pool.
		px.mu.Lock()
		px.clean = true
		idle := len(px.pending) == 0 && !px.infile // so the pump is not writing to the client
		px.mu.Unlock()
		if idle {
			s.closeProxy()
			s.px = nil
		}
		return out, netio.Close
	}
	out, ok := s.recheck(env, out)
	if !ok {
		px.mu.Lock()
		px.revoked = true
		px.mu.Unlock()
		return out, netio.Close
	}
	return s.dispatch(env, px, payload, out)
}

// serverSide is what dispatch needs of a proxied session's server side:
// the goroutine proxy (proxy) or the one on the event loop (loopProxy).
type serverSide interface {
	// queue queues the client packet being handled (Session.raw) for the
	// server; reply: the server answers it with a response of kind kind.
	queue(s *Session, out []byte, kind expect, reply bool) ([]byte, netio.Action)
	// refusal answers a command the gateway refused (o: out with its ERR
	// appended) in its turn: after everything sent before it.
	refusal(s *Session, out, o []byte) ([]byte, netio.Action)
	// changed records that the server connection selected another
	// database (db) or changed the multi-statement option (option).
	changed(db, option bool)
}

// refusal answers a refused command once everything queued before it has
// been sent and answered (serverSide).
func (px *proxy) refusal(s *Session, out, o []byte) ([]byte, netio.Action) {
	if px.wflush && px.flush() != nil || !px.waitIdle() {
		return appendUpstreamLost(out, s.seq+1), netio.Close
	}
	return o, netio.Continue
}

// changed records a change to the server connection's session (serverSide).
func (px *proxy) changed(db, option bool) {
	px.mu.Lock()
	px.dbChanged = px.dbChanged || db
	px.optionChanged = px.optionChanged || option
	px.mu.Unlock()
}

// dispatch checks one client command of a proxied session (its first byte
// and payload) and queues it for the server side, or refuses it.
func (s *Session) dispatch(env *netio.Env, side serverSide, payload, out []byte) ([]byte, netio.Action) {
	refused := func(o []byte) ([]byte, netio.Action) { return side.refusal(s, out, o) }
	switch payload[0] {
	case comQuery, comStmtPrepare:
		q := payload[1:]
		if !bypassClassifier {
			if _, o, ok := s.checkSQL(env, q, out); !ok {
				return refused(o)
			}
		}
		if o, ok := s.allowStatements(env, q, out); !ok {
			return refused(o)
		}
		if payload[0] == comStmtPrepare {
			return side.queue(s, out, expPrepare, true)
		}
		if o, ok := s.useStatements(side, q, out); !ok {
			return refused(o)
		}
		return side.queue(s, out, expResult, true)
	case comStmtExecute:
		return side.queue(s, out, expResult, true)
	case comStmtFetch:
		return side.queue(s, out, expRows, true)
	case comStmtClose, comStmtSendLong:
		return side.queue(s, out, 0, false)
	case comStmtReset, comPing, comResetConnection, comStatistics:
		return side.queue(s, out, expOne, true)
	case comSetOption:
		side.changed(false, true)
		return side.queue(s, out, expOne, true)
	case comInitDB:
		db := payload[1:]
		if !s.claims.Scopes.Has(core.ScopeDatabaseRead) {
			return refused(s.deny(env, out, denyScope(core.ScopeDatabaseRead, "USE", true, db)))
		}
		if o, ok := s.allowUse(env, db, out); !ok {
			return refused(o)
		}
		if !s.knownDB(db) {
			return refused(appendUnknownDB(out, s.seq+1, db))
		}
		s.selected(side, db)
		return side.queue(s, out, expOne, true)
	case comFieldList:
		if !s.claims.Scopes.Has(core.ScopeDatabaseRead) {
			return refused(s.deny(env, out, denyScope(core.ScopeDatabaseRead, "SHOW", false, nil)))
		}
		if o, ok := s.allowStatements(env, nil, out); !ok {
			return refused(o)
		}
		return side.queue(s, out, expFields, true)
	case comChangeUser:
		return refused(AppendERR(out, s.seq+1, erNotSupportedYet, stateSyntaxOrAccessRule,
			"COM_CHANGE_USER is not supported through the HeliosDB gateway: connect again with the other token"))
	}
	return refused(AppendERR(out, s.seq+1, erUnknownCom, stateCommunicationFailure,
		"Unknown command: the HeliosDB gateway does not forward this command"))
}

// useStatements checks the USE statements of a COM_QUERY text (their
// scopes and the test-database rule have passed): each must name a
// registered database (1049 otherwise). The last one becomes the
// session's database.
func (s *Session) useStatements(side serverSide, q, out []byte) ([]byte, bool) {
	if !hasWordUSE(q) {
		return out, true
	}
	var last []byte
	w := sqlscope.NewWalker(sqlscope.MySQL, q)
	for {
		st, more := w.Next()
		if !more {
			break
		}
		if st.Pass != 0 || st.Verb != "USE" || st.Target == nil {
			continue
		}
		if !s.knownDB(st.Target) {
			return appendUnknownDB(out, s.seq+1, st.Target), false
		}
		last = st.Target
	}
	if last != nil {
		s.selected(side, last)
	}
	return out, true
}

// hasWordUSE reports whether q contains the letters "use" in any case:
// without them it holds no USE statement, and the walk is skipped.
func hasWordUSE(q []byte) bool {
	for i := 0; i+3 <= len(q); i++ {
		if q[i]|0x20 == 'u' && q[i+1]|0x20 == 's' && q[i+2]|0x20 == 'e' {
			return true
		}
	}
	return false
}

// selected records a database selected on the server connection.
func (s *Session) selected(side serverSide, db []byte) {
	s.db = append(s.db[:0], clip(db)...)
	side.changed(true, false)
}

// queue queues the client packet being handled (s.raw) for the server;
// reply is true for a command answered by a response of kind kind. The
// packets queued while handling one read from the client go out in one
// write at its end (flushProxy), or with the next packet that needs an
// answer: COM_STMT_CLOSE, which has none, rides with the command after it
// (go-sql-driver sends one after every query with arguments).
func (px *proxy) queue(s *Session, out []byte, kind expect, reply bool) ([]byte, netio.Action) {
	px.mu.Lock()
	if px.dead {
		told := px.told
		px.mu.Unlock()
		if told {
			return out, netio.Close
		}
		return appendUpstreamLost(out, s.seq+1), netio.Close
	}
	if reply {
		if len(px.pending) == 0 {
			px.lastSeq = s.seq
		}
		px.pending = append(px.pending, command{kind: kind, seq: s.seq})
	}
	px.mu.Unlock()
	px.wbuf = append(px.wbuf, s.raw...)
	px.wflush = px.wflush || reply
	return out, netio.Continue
}

// flushProxy writes the packets queued for the server when one of them
// needs an answer (or is part of a LOCAL INFILE file).
func (s *Session) flushProxy(out []byte) ([]byte, netio.Action) {
	px := s.px
	if px == nil || !px.wflush {
		return out, netio.Continue
	}
	if err := px.flush(); err != nil {
		s.state = stClosed
		return appendUpstreamLost(out, s.seq+1), netio.Close
	}
	return out, netio.Continue
}

// flush writes the queued packets.
func (px *proxy) flush() error {
	px.wflush = false
	if len(px.wbuf) == 0 {
		return nil
	}
	_ = px.sc.SetWriteDeadline(time.Now().Add(time.Minute))
	_, err := px.sc.Write(px.wbuf)
	if cap(px.wbuf) > pumpBufferMax {
		px.wbuf = nil
	} else {
		px.wbuf = px.wbuf[:0]
	}
	if err != nil {
		px.kill()
	}
	return err
}

// waitIdle waits until every command sent has been answered; false when
// the server is gone.
func (px *proxy) waitIdle() bool {
	px.mu.Lock()
	defer px.mu.Unlock()
	for len(px.pending) > 0 && !px.dead {
		px.cond.Wait()
	}
	return !px.dead
}

// kill marks the server side lost and wakes whoever waits for it.
func (px *proxy) kill() {
	px.mu.Lock()
	px.dead = true
	px.cond.Broadcast()
	px.mu.Unlock()
	_ = px.sc.SetReadDeadline(time.Now())
}

// terminated is Terminate's proxy side: the session ends from outside, its
// server connection will be closed, and the ERR goes out with the sequence
// id the client expects next.
func (px *proxy) terminated() byte {
	px.mu.Lock()
	defer px.mu.Unlock()
	px.revoked = true
	if len(px.pending) > 0 {
		return px.lastSeq + 1
	}
	return 1
}
