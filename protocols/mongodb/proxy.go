package mongodb

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/internal/upstream"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Proxy mode: once a token is admitted by saslStart, the session takes a
// pooled server connection (upstream.Pool, keyed by the token's role) for
// the rest of its life, so cursors stay where they were opened. Client to
// server, on the session's goroutine: each command is decoded, validated,
// and classified (class, database, scope, the databases it names), and
// forwarded as the client sent it — or refused with the gateway's own
// reply, whose responseTo is the request's id. Server to client, on the
// pump goroutine: whole messages, as they come; MongoDB matches replies to
// requests by responseTo, so the gateway's replies and the server's may
// come in any order, but each is written whole (netio.ConnInfo.Client
// serializes the writes), never one inside the other. The write blocks
// while the client reads slowly, which stops the pump reading the server.

// maxServerMessage bounds one message from the server: the pump forwards
// whole messages only.
const maxServerMessage = 64 << 20

// proxy is a session's server side.
type proxy struct {
	up  *Upstream
	key upstream.Key
	sc  *serverConn // nil after a failed reconnection

	mu sync.Mutex
	// pending lists the requests forwarded whose reply has not come back
	// (not the moreToCome ones, which get none).
	pending []pendingRequest
	// cursors are the ids of the cursors the server opened on this
	// connection and has not closed.
	cursors  []int64
	failed   bool // the server connection failed (read or write error, bad message)
	stopping bool // closeProxy stopped the pump: it answers nothing more
	partial  bool // the pump stopped with part of a message read
	done     chan struct{}

	revoked bool // the session was ended from outside (session goroutine only)
}

// pendingRequest is a request forwarded and not yet answered.
type pendingRequest struct {
	id     int32
	cursor int64 // a getMore's cursor id
}

// replyIDs numbers the replies the pump writes itself (when the server is
// lost with requests in flight); drivers do not check them.
var replyIDs atomic.Int32

// startProxy is saslStart's proxy-mode ending, on the session's
// goroutine: take a server connection for the token's role. On failure the
// saslStart is answered with the reason and the connection closed.
func (s *Session) startProxy(m *Message, out []byte) ([]byte, bool) {
	role, err := upstream.RoleFor(&s.claims)
	if err != nil {
		// No data scope: the classifier refuses every data command; the
		// read pool serves what is left (serverStatus with metrics:read).
		role = upstream.Read
		if s.claims.Type == core.TypeTest {
			role |= upstream.Test
		}
	}
	key := upstream.Key{Role: role}
	sc, err := s.p.up.get(key)
	if err != nil {
		code, msg := upstreamConnectError(s.p.up, err)
		return s.errorReply(out, m, code, msg), false
	}
	px := &proxy{up: s.p.up, key: key, sc: sc, done: make(chan struct{})}
	s.px = px
	go px.pump(s.info.Client, sc)
	return out, true
}

// get takes a server connection for k, waiting at most the pool's wait
// in force (a reload may have changed it) and a dial.
func (u *Upstream) get(k upstream.Key) (*serverConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), u.pool.Wait()+15*time.Second)
	defer cancel()
	return u.pool.Get(ctx, k)
}

// upstreamConnectError words a failure to get a server connection: 402
// ResourceExhausted when every one stayed in use, 6 HostUnreachable
// otherwise (a retryable error for the drivers).
func upstreamConnectError(u *Upstream, err error) (int32, string) {
	if errors.Is(err, upstream.ErrExhausted) {
		return CodeResourceExhausted, "every upstream connection of this token's role stayed in use: try again, " +
			"or raise heliosd's --mongo-pool-size"
	}
	return CodeHostUnreachable, "HeliosDB could not open a connection to the upstream MongoDB server " + u.Address() +
		": " + err.Error() + "; it retries on the next connection"
}

// forward sends a classified request to the server. raw is the whole
// message as the client sent it.
func (s *Session) forward(m *Message, name, raw, out []byte) []byte {
	px := s.px
	req := pendingRequest{id: m.Header.RequestID}
	switch string(name) {
	case "getMore":
		req.cursor, _ = m.Command.Lookup("getMore").AsInt64OK()
	case "killCursors":
		px.forgetCursors(m.Command.Lookup("cursors"))
	}
	if flags := binary.LittleEndian.Uint32(raw[HeaderLen:]); flags&FlagExhaustAllowed != 0 {
		// The server may then answer one getMore with many replies;
		// without the bit it answers each request once, which is what
		// the pump and the pool count on.
		raw = clearExhaust(raw, flags)
	}
	for attempt := 0; ; attempt++ {
		if err := s.reconnect(); err != nil {
			code, msg := upstreamConnectError(px.up, err)
			return s.errorReply(out, m, code, msg)
		}
		px.mu.Lock()
		if px.failed {
			// The server connection failed since reconnect looked: its
			// pump has answered what was pending and stopped.
			px.mu.Unlock()
			if attempt > 0 {
				return s.errorReply(out, m, CodeHostUnreachable, msgUpstreamLost)
			}
			continue
		}
		// The pump runs while failed is false (it sets it, under mu,
		// before it stops), so it answers this request, or answers it
		// with HostUnreachable.
		if !m.MoreToCome {
			px.pending = append(px.pending, req)
		}
		px.mu.Unlock()
		break
	}
	sc := px.sc
	if now := time.Now(); sc.wdl.Sub(now) < 20*time.Second {
		sc.wdl = now.Add(30 * time.Second)
		_ = sc.SetWriteDeadline(sc.wdl)
	}
	if _, err := sc.Write(raw); err != nil {
		// The pump answers what is pending once its read fails too.
		px.fail()
	}
	return out
}

// clearExhaust returns a copy of msg without the exhaustAllowed flag, with
// its checksum computed again when it has one.
func clearExhaust(msg []byte, flags uint32) []byte {
	c := append([]byte(nil), msg...)
	binary.LittleEndian.PutUint32(c[HeaderLen:], flags&^FlagExhaustAllowed)
	if flags&FlagChecksumPresent != 0 {
		end := len(c) - checksumLen
		binary.LittleEndian.PutUint32(c[end:], crc32.Checksum(c[:end], castagnoli))
	}
	return c
}

// reconnect gives a session whose server connection failed a new one, when
// it is idle: a server that restarted costs an idle session nothing. Its
// cursors are gone with the old connection (getMore gets the server's
// CursorNotFound).
func (s *Session) reconnect() error {
	px := s.px
	px.mu.Lock()
	failed := px.failed || px.sc == nil
	px.mu.Unlock()
	if !failed {
		return nil
	}
	if px.sc != nil {
		_ = px.sc.SetReadDeadline(time.Now())
		<-px.done
		px.up.pool.Discard(px.key, px.sc)
		px.sc = nil
	}
	sc, err := px.up.get(px.key)
	if err != nil {
		return err
	}
	px.mu.Lock()
	px.sc, px.failed, px.partial = sc, false, false
	px.pending, px.cursors = px.pending[:0], px.cursors[:0]
	px.done = make(chan struct{})
	px.mu.Unlock()
	go px.pump(s.info.Client, sc)
	return nil
}

// fail marks the server connection lost and stops the pump's read.
func (px *proxy) fail() {
	px.mu.Lock()
	px.failed = true
	px.mu.Unlock()
	_ = px.sc.SetReadDeadline(time.Now())
}

// forgetCursors drops the cursors a killCursors names.
func (px *proxy) forgetCursors(v bsoncore.Value) {
	arr, ok := v.ArrayOK()
	if !ok {
		return
	}
	vals, err := arr.Values()
	if err != nil {
		return
	}
	px.mu.Lock()
	defer px.mu.Unlock()
	for _, v := range vals {
		if id, ok := v.AsInt64OK(); ok {
			px.dropCursor(id)
		}
	}
}

// dropCursor forgets cursor id (px.mu held).
func (px *proxy) dropCursor(id int64) {
	for i, c := range px.cursors {
		if c == id {
			px.cursors = append(px.cursors[:i], px.cursors[i+1:]...)
			return
		}
	}
}

// pump forwards the server's messages to the client, whole, until the
// server connection fails or is stopped (a read deadline in the past).
// When it fails with requests in flight, each is answered with
// HostUnreachable, which drivers retry on another connection.
func (px *proxy) pump(client io.Writer, sc *serverConn) {
	defer close(px.done)
	limit := int(max(sc.hello.maxMsg, MaxMessageSize)) + 1<<20
	limit = min(limit, maxServerMessage)
	buf := make([]byte, 0, 64<<10)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, rerr := sc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		i, start := 0, 0
		for len(buf)-i >= HeaderLen {
			h, _ := ReadHeader(buf[i:])
			size := int(h.MessageLength)
			if size < HeaderLen || size > limit {
				rerr = errors.New("the upstream sent a message of invalid length")
				break
			}
			if len(buf)-i < size {
				if cap(buf) < size { // room for the whole message
					grown := make([]byte, len(buf)-i, size+HeaderLen)
					copy(grown, buf[i:])
					buf, i = grown, 0
				}
				break
			}
			if !px.account(h, buf[i:i+size]) {
				// An answer to no request in flight: a server that
				// answered a moreToCome request (FerretDB 1.24 does),
				// which the client must not read.
				if start < i && !px.write(client, buf[start:i]) {
					return
				}
				start = i + size
			}
			i += size
		}
		if i > 0 {
			if start < i && !px.write(client, buf[start:i]) {
				return
			}
			buf = buf[:copy(buf, buf[i:])]
			if cap(buf) > 1<<20 && len(buf) < 64<<10 { // do not keep a huge reply's buffer
				buf = append(make([]byte, 0, 64<<10), buf...)
			}
		}
		if rerr != nil {
			px.mu.Lock()
			px.partial = len(buf) > 0
			if px.stopping {
				px.mu.Unlock()
				return
			}
			px.failed = true
			lost := px.pending
			px.pending = nil
			px.mu.Unlock()
			var out []byte
			for _, r := range lost {
				start, o := beginReply(out, false, replyIDs.Add(1), r.id)
				o = appendErrorDoc(o, CodeHostUnreachable, msgUpstreamLost)
				out = endReply(o, start)
			}
			if len(out) > 0 {
				_, _ = client.Write(out)
			}
			return
		}
	}
}

// write forwards whole server messages to the client; false when the
// client is gone.
func (px *proxy) write(client io.Writer, b []byte) bool {
	if _, err := client.Write(b); err != nil {
		px.mu.Lock()
		px.failed = true
		px.mu.Unlock()
		return false
	}
	return true
}

// account matches one server message to the request it answers, and
// reports whether the client is waiting for it, and keeps the open
// cursors: a reply whose cursor.id is not 0 opened one (or kept a
// getMore's open), a getMore answered with cursor.id 0 closed its cursor.
func (px *proxy) account(h Header, msg []byte) bool {
	moreToCome := h.OpCode == OpMsg && len(msg) >= HeaderLen+4 &&
		binary.LittleEndian.Uint32(msg[HeaderLen:])&FlagMoreToCome != 0
	cursor, hasCursor := replyCursor(h, msg)
	px.mu.Lock()
	defer px.mu.Unlock()
	var req pendingRequest
	found := false
	for i, r := range px.pending {
		if r.id == h.ResponseTo {
			req, found = r, true
			if !moreToCome {
				px.pending = append(px.pending[:i], px.pending[i+1:]...)
			}
			break
		}
	}
	if !found {
		return false
	}
	if !hasCursor {
		return true
	}
	if cursor == 0 {
		if req.cursor != 0 {
			px.dropCursor(req.cursor)
		}
		return true
	}
	for _, c := range px.cursors {
		if c == cursor {
			return true
		}
	}
	px.cursors = append(px.cursors, cursor)
	return true
}

// replyCursor reads cursor.id of an OP_MSG reply, without trusting the
// server's lengths (bsoncore's reads are bounds-checked).
func replyCursor(h Header, msg []byte) (int64, bool) {
	if h.OpCode != OpMsg || len(msg) < HeaderLen+4+1+5 || msg[HeaderLen+4] != sectionBody {
		return 0, false
	}
	b := msg[HeaderLen+5:]
	l := int(int32(binary.LittleEndian.Uint32(b)))
	if l < minDocumentLen || l > len(b) {
		return 0, false
	}
	doc := bsoncore.Document(b[:l])
	cur, err := doc.LookupErr("cursor")
	if err != nil {
		return 0, false
	}
	cd, ok := cur.DocumentOK()
	if !ok {
		return 0, false
	}
	id, err := cd.LookupErr("id")
	if err != nil {
		return 0, false
	}
	v, ok := id.AsInt64OK()
	return v, ok
}

// closeProxy ends the server side when the client connection ends: the
// server connection goes back to the pool when nothing is left on it (no
// request in flight, no cursor open, no part of a message read) and the
// session was not ended from outside; otherwise it is closed.
func (s *Session) closeProxy() {
	px := s.px
	if px == nil {
		return
	}
	s.px = nil
	px.mu.Lock()
	px.stopping = true
	px.mu.Unlock()
	if px.sc == nil {
		return
	}
	_ = px.sc.SetReadDeadline(time.Now()) // stop the pump
	<-px.done
	px.mu.Lock()
	reusable := !px.revoked && !px.failed && !px.partial && len(px.pending) == 0 && len(px.cursors) == 0
	px.mu.Unlock()
	if !reusable {
		px.up.pool.Discard(px.key, px.sc)
		return
	}
	_ = px.sc.SetDeadline(time.Time{})
	px.sc.wdl = time.Time{}
	px.up.pool.Put(px.key, px.sc)
}

// proxyCommand handles an authenticated command in proxy mode that the
// classifier let through: the rules that hold only in front of a real
// server, then the forward.
func (s *Session) proxyCommand(env *netio.Env, m *Message, name, raw, out []byte) []byte {
	if m.Legacy {
		// As mongod 5.1 and later: OP_QUERY carries hello and isMaster only.
		return s.errorReply(out, m, CodeUnsupportedOpQueryCommand, "Unsupported OP_QUERY command: "+printable(name)+
			". The client driver may require an upgrade: this server takes commands in OP_MSG")
	}
	if isServerDB(m.DB) && !isServerCommand(name) {
		env.Observer.Authenticated(s.info, &s.claims, errServerDatabase, env.Now) // counted as forbidden
		return s.errorReply(out, m, CodeUnauthorized, serverDBMessage(m.DB, m.Command))
	}
	if m.Sequences > 0 && !sequencesAllowed(name, raw) {
		return s.errorReply(out, m, CodeBadValue, "an OP_MSG document sequence (kind 1) is accepted for insert's documents, "+
			"update's updates and delete's deletes only: send the other fields of "+printable(name)+" in the command body")
	}
	if string(name) == "listDatabases" {
		if rewritten, ok := s.listDatabasesFilter(m, raw); ok {
			raw = rewritten
		}
	}
	return s.forward(m, name, raw, out)
}

// isServerDB reports whether db is one of the server's own databases.
func isServerDB(db []byte) bool {
	switch string(db) {
	case "admin", "local", "config":
		return true
	}
	return false
}

// errServerDatabase is the error observed for a data command on the
// server's own databases.
var errServerDatabase = &core.Error{Kind: core.KindForbidden, Message: "The server's own databases are not reachable with a token",
	Detail: "admin, local and config hold the upstream's users and state"}

// serverDBMessage words the refusal of a data command on admin, local or
// config in proxy mode.
func serverDBMessage(db []byte, cmd bsoncore.Document) string {
	return "not authorized on " + printable(db) + " to execute command " + describeCommand(cmd, db) + ": database " +
		strconv.Quote(printable(db)) + " belongs to the upstream server (its users, replication and sessions); " +
		"HeliosDB forwards only server-wide commands there (listDatabases, serverStatus, currentOp, top, " +
		"renameCollection, commitTransaction, abortTransaction): use a registered database"
}

// sequencesAllowed reports whether every kind-1 section of raw (a whole
// OP_MSG that decodeMsg validated) is one the command takes as an array:
// insert's documents, update's updates, delete's deletes. The classifier
// reads the body only, and the server merges a sequence into the command
// as a field: an aggregate's pipeline sent as one would not be classified.
func sequencesAllowed(name, raw []byte) bool {
	var want string
	switch string(name) {
	case "insert":
		want = "documents"
	case "update":
		want = "updates"
	case "delete":
		want = "deletes"
	default:
		return false
	}
	flags := binary.LittleEndian.Uint32(raw[HeaderLen:])
	body := raw[HeaderLen+4:]
	if flags&FlagChecksumPresent != 0 {
		body = body[:len(body)-checksumLen]
	}
	for len(body) > 0 {
		kind := body[0]
		body = body[1:]
		size := int(int32(binary.LittleEndian.Uint32(body)))
		if kind == sectionDocumentSequence {
			id, _, _ := readCString(body[4:size])
			if string(id) != want {
				return false
			}
		}
		body = body[size:]
	}
	return true
}

// listDatabasesFilter rewrites listDatabases so that the server lists only
// the registered databases the token may reach (for a test token, the test
// ones): mongosh's show dbs does not show the server's other databases.
// The client's own filter, if any, is kept (both must hold). ok is false
// when the gateway's policy cannot list the registry.
func (s *Session) listDatabasesFilter(m *Message, raw []byte) ([]byte, bool) {
	reg, ok := s.p.policy.(interface{ Databases() map[string]bool })
	if !ok {
		return nil, false
	}
	test := s.claims.Flags&core.FlagTestOnly != 0
	msg := make([]byte, 0, len(raw)+256)
	msg = append(msg, raw[:HeaderLen]...)
	flags := binary.LittleEndian.Uint32(raw[HeaderLen:]) & FlagMoreToCome
	msg = binary.LittleEndian.AppendUint32(msg, flags)
	msg = append(msg, sectionBody)
	idx, msg := bsoncore.AppendDocumentStart(msg)
	elems, _ := m.Command.Elements()
	var own bsoncore.Value
	for _, e := range elems {
		if string(e.Key()) == "filter" {
			own = e.Value()
			continue
		}
		msg = append(msg, e...)
	}
	fi, msg := bsoncore.AppendDocumentElementStart(msg, "filter")
	var ai int32
	if own.Type == bsoncore.TypeEmbeddedDocument {
		ai, msg = bsoncore.AppendArrayElementStart(msg, "$and")
		msg = bsoncore.AppendValueElement(msg, "0", own)
		var di int32
		di, msg = bsoncore.AppendDocumentElementStart(msg, "1")
		msg = appendNameIn(msg, reg.Databases(), test)
		msg, _ = bsoncore.AppendDocumentEnd(msg, di)
		msg, _ = bsoncore.AppendArrayEnd(msg, ai)
	} else {
		msg = appendNameIn(msg, reg.Databases(), test)
	}
	msg, _ = bsoncore.AppendDocumentEnd(msg, fi)
	msg, _ = bsoncore.AppendDocumentEnd(msg, idx)
	binary.LittleEndian.PutUint32(msg, uint32(len(msg)))
	return msg, true
}

// appendNameIn appends name: {$in: [the databases]} (test ones only when
// test is set).
func appendNameIn(dst []byte, dbs map[string]bool, test bool) []byte {
	ni, dst := bsoncore.AppendDocumentElementStart(dst, "name")
	ai, dst := bsoncore.AppendArrayElementStart(dst, "$in")
	i := 0
	for name, isTest := range dbs {
		if test && !isTest {
			continue
		}
		dst = bsoncore.AppendStringElement(dst, strconv.Itoa(i), name)
		i++
	}
	dst, _ = bsoncore.AppendArrayEnd(dst, ai)
	dst, _ = bsoncore.AppendDocumentEnd(dst, ni)
	return dst
}
