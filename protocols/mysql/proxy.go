package mysql

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
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
// as the client negotiated, and whole packets flow through. Client to
// server, on the session's goroutine: every COM_QUERY and COM_STMT_PREPARE
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
		return s.send(out, 0, false)
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
	refused := func(o []byte) ([]byte, netio.Action) {
		// What was queued before goes out first, and is answered before
		// the refusal is.
		if px.wflush && px.flush() != nil || !px.waitIdle() {
			return appendUpstreamLost(out, s.seq+1), netio.Close
		}
		return o, netio.Continue
	}
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
			return s.send(out, expPrepare, true)
		}
		if o, ok := s.useStatements(q, out); !ok {
			return refused(o)
		}
		return s.send(out, expResult, true)
	case comStmtExecute:
		return s.send(out, expResult, true)
	case comStmtFetch:
		return s.send(out, expRows, true)
	case comStmtClose, comStmtSendLong:
		return s.send(out, 0, false)
	case comStmtReset, comPing, comResetConnection, comStatistics:
		return s.send(out, expOne, true)
	case comSetOption:
		px.mu.Lock()
		px.optionChanged = true
		px.mu.Unlock()
		return s.send(out, expOne, true)
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
		s.selected(db)
		return s.send(out, expOne, true)
	case comFieldList:
		if !s.claims.Scopes.Has(core.ScopeDatabaseRead) {
			return refused(s.deny(env, out, denyScope(core.ScopeDatabaseRead, "SHOW", false, nil)))
		}
		if o, ok := s.allowStatements(env, nil, out); !ok {
			return refused(o)
		}
		return s.send(out, expFields, true)
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
func (s *Session) useStatements(q, out []byte) ([]byte, bool) {
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
		s.selected(last)
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
func (s *Session) selected(db []byte) {
	s.db = append(s.db[:0], clip(db)...)
	px := s.px
	px.mu.Lock()
	px.dbChanged = true
	px.mu.Unlock()
}

// send queues the client packet being handled (s.raw) for the server;
// reply is true for a command answered by a response of kind kind. The
// packets queued while handling one read from the client go out in one
// write at its end (flushProxy), or with the next packet that needs an
// answer: COM_STMT_CLOSE, which has none, rides with the command after it
// (go-sql-driver sends one after every query with arguments).
func (s *Session) send(out []byte, kind expect, reply bool) ([]byte, netio.Action) {
	px := s.px
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

// Response phases (the pump's parser).
const (
	phStart       uint8 = iota // a result: OK, ERR, LOCAL INFILE or a column count
	phColumns                  // column definitions (n left)
	phColumnsEOF               // the EOF after them
	phRows                     // rows up to EOF/OK or ERR
	phPrepare                  // COM_STMT_PREPARE_OK or ERR
	phParams                   // parameter definitions (n left, then m columns)
	phParamsEOF                // the EOF after them
	phPrepCols                 // column definitions of a prepared statement (n left)
	phPrepColsEOF              // the EOF after them
	phOne                      // a single packet
	phFields                   // COM_FIELD_LIST definitions up to EOF
)

// response follows one response's packets.
type response struct {
	phase uint8
	n, m  int
}

// startPhase is the first phase of a response of kind k.
func startPhase(k expect) uint8 {
	switch k {
	case expPrepare:
		return phPrepare
	case expOne:
		return phOne
	case expRows:
		return phRows
	case expFields:
		return phFields
	}
	return phStart
}

// Verdicts of response.next on one packet.
const (
	pktMore   = iota // the response goes on
	pktDone          // the response ended with this packet
	pktInfile        // a LOCAL INFILE request: the client's file comes next
)

// isEnd reports whether p, in a phase where rows or definitions are
// expected, is the EOF (or OK with the EOF header) that ends them: a row or
// definition starting with 0xfe fills a packet of 16 MiB - 1.
func isEnd(p []byte, size int) bool { return p[0] == headerEOF && size < maxPacketPayload }

// endStatus reads the status flags of an EOF, or of an OK with the EOF
// header when deprecateEOF.
func endStatus(p []byte, deprecateEOF bool) (uint16, bool) {
	if deprecateEOF {
		_, st, ok := okStatus(p)
		return st, ok
	}
	if len(p) < 5 {
		return 0, false
	}
	return binary.LittleEndian.Uint16(p[3:]), true
}

// next advances r over one packet (p: its payload, size > 0 and not a
// continuation fragment); status is set when the packet carried status
// flags.
func (r *response) next(p []byte, size int, deprecateEOF bool) (verdict int, status uint16, hasStatus bool) {
	if size == 0 {
		return pktDone, 0, false // nothing a server sends; ends the response to stay in step
	}
	switch r.phase {
	case phStart:
		switch p[0] {
		case headerOK:
			st, ok := statusOf(okStatus(p))
			if ok && st&serverMoreResultsExist != 0 {
				return pktMore, st, true
			}
			return pktDone, st, ok
		case headerERR:
			return pktDone, 0, false
		case localInfileRequest:
			return pktInfile, 0, false
		}
		n, _, ok := readLenenc(p)
		if !ok || n == 0 {
			return pktDone, 0, false
		}
		r.phase, r.n = phColumns, int(min(n, 1<<16))
		return pktMore, 0, false
	case phColumns, phPrepCols, phParams:
		r.n--
		if r.n > 0 {
			return pktMore, 0, false
		}
		switch {
		case !deprecateEOF:
			r.phase++ // the EOF after them
		case r.phase == phColumns:
			r.phase = phRows
		case r.phase == phParams && r.m > 0:
			r.phase, r.n = phPrepCols, r.m
		default:
			return pktDone, 0, false
		}
		return pktMore, 0, false
	case phColumnsEOF:
		st, ok := endStatus(p, false)
		if ok && st&serverStatusCursorExists != 0 {
			return pktDone, st, true // a cursor: rows come with COM_STMT_FETCH
		}
		r.phase = phRows
		return pktMore, st, ok
	case phRows:
		if p[0] == headerERR {
			return pktDone, 0, false
		}
		if !isEnd(p, size) {
			return pktMore, 0, false
		}
		st, ok := endStatus(p, deprecateEOF)
		if ok && st&serverMoreResultsExist != 0 {
			r.phase = phStart
			return pktMore, st, true
		}
		return pktDone, st, ok
	case phPrepare:
		if p[0] != headerOK || len(p) < 9 {
			return pktDone, 0, false
		}
		cols, params := int(binary.LittleEndian.Uint16(p[5:])), int(binary.LittleEndian.Uint16(p[7:]))
		switch {
		case params > 0:
			r.phase, r.n, r.m = phParams, params, cols
		case cols > 0:
			r.phase, r.n = phPrepCols, cols
		default:
			return pktDone, 0, false
		}
		return pktMore, 0, false
	case phParamsEOF:
		if r.m > 0 {
			r.phase, r.n = phPrepCols, r.m
			return pktMore, 0, false
		}
		return pktDone, 0, false
	case phPrepColsEOF:
		return pktDone, 0, false
	case phFields:
		if p[0] == headerERR {
			return pktDone, 0, false
		}
		if isEnd(p, size) {
			st, ok := endStatus(p, deprecateEOF)
			return pktDone, st, ok
		}
		return pktMore, 0, false
	}
	// phOne
	switch p[0] {
	case headerOK:
		st, ok := statusOf(okStatus(p))
		return pktDone, st, ok
	case headerEOF:
		st, ok := endStatus(p, deprecateEOF)
		return pktDone, st, ok
	}
	return pktDone, 0, false
}

func statusOf(_ uint64, st uint16, ok bool) (uint16, bool) { return st, ok }

// Pump buffer sizes: it reads into 64 KiB and grows only for a larger
// packet (at most 16 MiB + 4), shrinking back once that has passed.
const (
	pumpBuffer    = 64 << 10
	pumpBufferMax = 256 << 10
)

// pumpBuffers recycles the pumps' buffers (a session that connects,
// queries once and leaves would otherwise allocate 64 KiB each time).
var pumpBuffers = sync.Pool{New: func() any { b := make([]byte, 0, pumpBuffer); return &b }}

// pump forwards the server's packets to the client, whole, until the
// server connection fails or is stopped (a read deadline in the past).
func (px *proxy) pump(client io.Writer) {
	defer close(px.done)
	bp := pumpBuffers.Get().(*[]byte)
	buf := (*bp)[:0]
	defer func() {
		if cap(buf) == pumpBuffer {
			*bp = buf[:0]
			pumpBuffers.Put(bp)
		}
	}()
	var r response
	active := false
	var respSeq byte // sequence id of the last packet of the current response
	cont := false    // the last packet was a 16 MiB - 1 fragment: the next continues it
	for {
		n, rerr := px.sc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		px.mu.Lock()
		revoked := px.revoked
		px.mu.Unlock()
		write := func(b []byte) bool {
			if len(b) == 0 || revoked {
				return true
			}
			_, err := client.Write(b)
			return err == nil
		}
		i, start, ended := 0, 0, 0
		var status uint16
		hasStatus, refusedLoad := false, false
		for len(buf)-i >= packetHeaderLen {
			size := int(buf[i]) | int(buf[i+1])<<8 | int(buf[i+2])<<16
			end := i + packetHeaderLen + size
			if end > len(buf) {
				break
			}
			seq, p := buf[i+3], buf[i+packetHeaderLen:end]
			fragment := cont
			cont = size == maxPacketPayload
			if !active && !fragment {
				px.mu.Lock()
				if ended < len(px.pending) {
					active, r = true, response{phase: startPhase(px.pending[ended].kind)}
				}
				px.mu.Unlock()
			}
			respSeq = seq
			if !active || fragment {
				// An unsolicited packet (an ERR before the server closes)
				// or the rest of a large one: forwarded as it is.
				i = end
				continue
			}
			verdict, st, ok := r.next(p, size, px.deprecateEOF)
			if ok {
				status, hasStatus = st, true
			}
			switch verdict {
			case pktInfile:
				if !px.mayLoad {
					// The classifier let a LOAD DATA LOCAL through for a
					// token without database:write: the file is never
					// read. The server side cannot be brought back in step
					// cheaply; it is dropped, and the client told why.
					if !write(buf[start:i]) || !write(appendLoadRefused(nil, seq)) {
						px.kill()
						return
					}
					refusedLoad = true
				} else {
					px.mu.Lock()
					px.infile = true // before the client can see the request
					px.mu.Unlock()
				}
			case pktDone:
				ended++
				active = false
			}
			if refusedLoad {
				break
			}
			if size > 0 && p[0] == headerERR {
				if a := annotatePermissionError(buf[i:end], px.key.Role); a != nil {
					if !write(buf[start:i]) || !write(a) {
						px.kill()
						return
					}
					start = end
				}
			}
			i = end
		}
		if !refusedLoad && !write(buf[start:i]) {
			px.kill()
			return
		}
		px.mu.Lock()
		if ended > 0 {
			px.pending = px.pending[:copy(px.pending, px.pending[min(ended, len(px.pending)):])]
		}
		if hasStatus {
			px.status = status
		}
		if active {
			px.lastSeq = respSeq
		} else if len(px.pending) > 0 {
			px.lastSeq = px.pending[0].seq
		}
		if refusedLoad {
			px.dead, px.told = true, true
		}
		px.cond.Broadcast()
		px.mu.Unlock()
		if refusedLoad {
			return
		}
		buf = buf[:copy(buf, buf[i:])]
		if len(buf) >= packetHeaderLen {
			size := int(buf[0]) | int(buf[1])<<8 | int(buf[2])<<16
			if need := packetHeaderLen + size; need > cap(buf) {
				buf = append(make([]byte, 0, need), buf...)
			}
		} else if cap(buf) > pumpBufferMax {
			buf = append(make([]byte, 0, pumpBuffer), buf...)
		}
		if rerr != nil {
			px.lost(client, rerr)
			return
		}
	}
}

// lost ends the server side after the server connection failed: a client
// waiting for a response gets ERR in its place; an idle client gets it
// unsolicited, as the reply to its next command (a database/sql pool's
// connection check sees it and drops the connection before reuse).
func (px *proxy) lost(client io.Writer, rerr error) {
	var ne net.Error
	if errors.As(rerr, &ne) && ne.Timeout() {
		// kill (which marked the server side dead) or closeProxy (which
		// may still return it to the pool) stopped the pump.
		return
	}
	px.mu.Lock()
	quiet := px.stopping || px.revoked
	seq := byte(1)
	if len(px.pending) > 0 {
		seq = px.lastSeq + 1
	}
	px.mu.Unlock()
	told := false
	if !quiet {
		_, err := client.Write(appendUpstreamLost(nil, seq))
		told = err == nil
	}
	px.mu.Lock()
	px.dead, px.told = true, told
	px.cond.Broadcast()
	px.mu.Unlock()
}

// closeProxy ends the server side when the client connection ends: the
// server connection goes back to the pool, reset with COM_RESET_CONNECTION,
// when the client left cleanly (COM_QUIT, nothing outstanding, not in a
// transaction, not revoked); otherwise it is closed, and a statement still
// running on it is ended with KILL.
func (s *Session) closeProxy() {
	px := s.px
	if px == nil {
		return
	}
	px.mu.Lock()
	px.stopping = true
	px.mu.Unlock()
	_ = px.sc.SetReadDeadline(time.Now()) // stop the pump
	<-px.done
	px.mu.Lock()
	reusable := px.clean && !px.revoked && !px.dead && len(px.pending) == 0 && !px.infile &&
		px.status&serverStatusInTrans == 0 && !px.optionChanged && !(px.dbChanged && px.key.Database == "")
	busy := len(px.pending) > 0 || px.infile
	px.dead = true
	px.mu.Unlock()
	if !reusable {
		px.up.pool.Discard(px.key, px.sc)
		if busy {
			px.up.kill(px.sc.threadID)
		}
		return
	}
	// On the session's own goroutine (a proxied session always runs on
	// one): the client is gone already, and the next client of this pool
	// finds the connection ready.
	px.reset()
}

// reset makes a cleanly left server connection ready for the next client
// (COM_RESET_CONNECTION: rolls back, drops temporary tables, prepared
// statements and user variables, restores session variables; then the
// pool's database again when the client selected another) and returns it
// to the pool.
func (px *proxy) reset() {
	sc := px.sc
	_ = sc.SetDeadline(time.Now().Add(5 * time.Second))
	status, err := roundTrip(sc, []byte{comResetConnection})
	if err == nil && px.dbChanged {
		status, err = roundTrip(sc, append([]byte{comInitDB}, px.key.Database...))
	}
	if err != nil || status&serverStatusInTrans != 0 {
		px.up.pool.Discard(px.key, sc)
		return
	}
	_ = sc.SetDeadline(time.Time{})
	sc.status = status
	px.up.pool.Put(px.key, sc)
}

// roundTrip sends a command whose reply is one OK packet (sequence id 0)
// and reads the reply; an ERR is returned as a *serverError.
func roundTrip(c net.Conn, payload []byte) (uint16, error) {
	b, start := beginPacket(make([]byte, 0, packetHeaderLen+len(payload)), 0)
	if _, err := c.Write(endPacket(append(b, payload...), start)); err != nil {
		return 0, err
	}
	var h [packetHeaderLen]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return 0, err
	}
	p := make([]byte, int(h[0])|int(h[1])<<8|int(h[2])<<16)
	if _, err := io.ReadFull(c, p); err != nil {
		return 0, err
	}
	if len(p) > 0 && p[0] == headerERR {
		return 0, parseERR(p)
	}
	_, status, ok := okStatus(p)
	if len(p) == 0 || p[0] != headerOK || !ok {
		return 0, errors.New("upstream: unexpected reply")
	}
	return status, nil
}

// Errors of proxy mode.
const (
	erCantConnect  = 2003 // CR_CONN_HOST_ERROR: Can't connect to MySQL server
	erServerLost   = 2013 // CR_SERVER_LOST: Lost connection to MySQL server during query
	msgUpstreamGot = "Lost connection to MySQL server during query: the upstream server behind the HeliosDB gateway closed the connection; reconnect"
)

// appendUpstreamLost appends the ERR that ends a session whose server
// connection failed.
func appendUpstreamLost(dst []byte, seq byte) []byte {
	return AppendERR(dst, seq, erServerLost, stateGeneralError, msgUpstreamGot)
}

// appendLoadRefused appends the ERR for a LOCAL INFILE request on a
// session whose token may not write.
func appendLoadRefused(dst []byte, seq byte) []byte {
	return AppendERR(dst, seq, erTableAccessDenied, stateSyntaxOrAccessRule,
		"LOAD DATA LOCAL command denied: "+core.ForbiddenError(core.ScopeDatabaseWrite).Message+" (the session is closed)")
}

// appendUpstreamConnectError words a failure to get a server connection:
// 1040 when the pool stayed exhausted, the server's own error when it
// refused the login, 2003 when it could not be reached.
func appendUpstreamConnectError(dst []byte, seq byte, up *Upstream, err error) []byte {
	var se *serverError
	switch {
	case errors.Is(err, upstream.ErrExhausted):
		return AppendERR(dst, seq, erConCount, stateConnectionRejected,
			"Too many connections: every upstream connection of this role and database stayed in use; try again, or raise --mysql-pool-size")
	case errors.As(err, &se):
		return AppendERR(dst, seq, se.Code, se.State, "The upstream server behind the HeliosDB gateway refused its login: "+se.Message)
	}
	why := "it is not available"
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		why = "it did not answer in time"
	} else if err != nil {
		why = err.Error()
	}
	return AppendERR(dst, seq, erCantConnect, stateGeneralError,
		"Can't connect to MySQL server on '"+up.Address()+"': the HeliosDB gateway could not reach its upstream server ("+why+"); it retries on the next connection")
}

// Upstream permission errors the gateway annotates.
const (
	erColumnAccessDenied   = 1143 // ER_COLUMNACCESS_DENIED_ERROR
	erSpecificAccessDenied = 1227 // ER_SPECIFIC_ACCESS_DENIED_ERROR
	erProcAccessDenied     = 1370 // ER_PROCACCESS_DENIED_ERROR
)

// annotatePermissionError returns an upstream ERR packet (pkt: header and
// payload) for a privilege the session's user lacks, with the reason in
// the guide's words added to its message, as the gateway's own refusals
// word it: the scope the token lacks, or, when the token holds it, that
// the user reaches only HeliosDB's databases (test tokens: only test
// databases). It returns nil for any other error.
func annotatePermissionError(pkt []byte, role upstream.Role) []byte {
	p := pkt[packetHeaderLen:]
	if len(p) < 9 || p[0] != headerERR || p[3] != sqlStateMarker {
		return nil
	}
	msg := string(p[9:])
	reason := ""
	switch binary.LittleEndian.Uint16(p[1:]) {
	case erTableAccessDenied, erColumnAccessDenied, erProcAccessDenied:
		verb, _, ok := strings.Cut(msg, " command denied")
		if !ok {
			return nil
		}
		if sc := verbScope(strings.ToUpper(verb)); !roleHas(role, sc) {
			reason = core.ForbiddenError(sc).Message
		} else {
			reason = reachReason(role)
		}
	case erDBAccessDenied:
		reason = reachReason(role)
	case erSpecificAccessDenied:
		reason = "the HeliosDB users hold no server-wide privilege"
	default:
		return nil
	}
	out, start := beginPacket(make([]byte, 0, len(pkt)+len(reason)+3), pkt[3])
	out = append(out, p[:9]...)
	out = append(out, msg...)
	out = append(out, " ("...)
	out = append(out, reason...)
	out = append(out, ')')
	return endPacket(out, start)
}

// verbScope is the scope a privilege named in "<VERB> command denied"
// belongs to.
func verbScope(verb string) core.Scope {
	switch verb {
	case "SELECT", "SHOW VIEW":
		return core.ScopeDatabaseRead
	case "INSERT", "UPDATE", "DELETE", "LOCK TABLES", "CREATE TEMPORARY TABLES", "EXECUTE", "DELETE HISTORY":
		return core.ScopeDatabaseWrite
	}
	return core.ScopeSchemaWrite
}

// roleHas reports whether role's privileges include those of scope sc.
func roleHas(role upstream.Role, sc core.Scope) bool {
	switch sc {
	case core.ScopeDatabaseRead:
		return true
	case core.ScopeDatabaseWrite:
		return role.Level() >= upstream.Write
	}
	return role.Level() >= upstream.Owner
}

// reachReason explains a refusal the token's scopes do not: the user
// reaches only the registered databases, a test user only test ones.
func reachReason(role upstream.Role) string {
	if role.IsTest() {
		return core.ErrTestDatabaseOnly.Message
	}
	return "HeliosDB reaches only its registered databases (POST /v1/databases)"
}
