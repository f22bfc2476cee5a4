package mongodb

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/xdg-go/scram"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/heliosdb/auth/protocols/internal/upstream"
)

// UpstreamOptions configure proxy mode: the MongoDB-wire server behind the
// gateway. Any server that speaks the MongoDB wire protocol (OP_MSG) works:
// MongoDB itself (a standalone mongod, or a mongos), FerretDB, or another
// compatible server. Tests, benchmarks and make run use FerretDB 1.24 with
// its SQLite backend.
type UpstreamOptions struct {
	// URL is the server's connection string:
	// mongodb://[user:password@]host:port/[authSource][?authMechanism=…&tls=true&tlsCAFile=…].
	// With credentials, every server connection authenticates with them
	// (SCRAM-SHA-256 by default, SCRAM-SHA-1 or PLAIN by authMechanism);
	// without, it does not (FerretDB without authentication). Only the
	// first host is used: the gateway speaks to one server (a mongod or a
	// mongos), it does not follow a replica set. Never logged.
	URL string
	// PoolSize bounds the server connections of one token role (default
	// 100, the drivers' own maxPoolSize); PoolWait is how long a client
	// waits for one when all are in use (default 5s), then its
	// authentication fails with ResourceExhausted (402).
	PoolSize int
	PoolWait time.Duration
	// Logger receives connection messages (never a password).
	Logger *slog.Logger
}

// Upstream is the MongoDB-wire server behind the gateway and the pool of
// server connections to it. Each client session that authenticates takes
// one server connection for its whole life (session pooling): a cursor
// stays on the connection that opened it. The server enforces no roles of
// the gateway's (FerretDB 1.x has none): the command classifier is the only
// wall.
type Upstream struct {
	opts       UpstreamOptions
	addr       string
	user       string
	password   string
	authSource string
	mechanism  string // "", SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN
	tls        *tls.Config
	// scram256 and scram1 are the SCRAM clients, kept across dials: each
	// caches the salted password per salt and iteration count, so a dial
	// after the first costs no PBKDF2. Safe for concurrent use.
	scram256, scram1 *scram.Client
	pool             *upstream.Pool[*serverConn]
	log              *slog.Logger
	// hello is what the server said in its last hello (wire versions and
	// size limits), which the gateway's own hello replies reflect.
	hello atomic.Pointer[helloInfo]
	// status is what the last attempt to reach the server found.
	status upstream.Status
}

// Health is what /healthz says about the upstream: whether the last
// connection attempt reached it, and its pools.
type Health struct {
	upstream.Health
	// MaxWireVersion is the server's, from its last hello (0: not yet
	// reached).
	MaxWireVersion int32 `json:"max_wire_version,omitempty"`
}

// helloInfo is what the server's hello says that the gateway's hello must
// say as well: the wire versions it speaks and the sizes it accepts.
type helloInfo struct {
	minWire, maxWire  int32
	maxBSON, maxMsg   int32
	maxBatch          int32
	sessionTimeoutMin int32 // 0: the server has no logical sessions
}

// gatewayHello is what the built-in responder says (and what the gateway
// says before it has reached its upstream).
var gatewayHello = helloInfo{minWire: minWireVersion, maxWire: maxWireVersion, maxBSON: MaxBSONObjectSize,
	maxMsg: MaxMessageSize, maxBatch: maxWriteBatchSize, sessionTimeoutMin: logicalSessionTimeoutMinutes}

// serverConn is one server connection, past its hello and authentication.
type serverConn struct {
	net.Conn
	hello helloInfo
	// wdl is the write deadline last set by the session (moved only when
	// it falls 10s behind: a deadline costs a timer update).
	wdl time.Time
}

// serverError is an {ok: 0} reply of the server during the gateway's own
// conversation with it (hello, authentication).
type serverError struct {
	Code int32
	Msg  string
}

func (e *serverError) Error() string { return fmt.Sprintf("%s (code %d)", e.Msg, e.Code) }

// NewUpstream parses the connection string; it connects to nothing (the
// first client session does).
func NewUpstream(o UpstreamOptions) (*Upstream, error) {
	if o.PoolSize <= 0 {
		o.PoolSize = 100
	}
	if o.PoolWait <= 0 {
		o.PoolWait = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if !strings.HasPrefix(o.URL, connstring.SchemeMongoDB+"://") {
		// Checked before parsing: the parser resolves mongodb+srv:// names.
		return nil, errors.New("--mongo-upstream: use a mongodb:// URL (mongodb+srv:// needs DNS discovery, which the gateway does not do)")
	}
	cs, err := connstring.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("--mongo-upstream: %s", redactURLError(err, o.URL))
	}
	if len(cs.Hosts) == 0 {
		return nil, errors.New("--mongo-upstream: the URL names no host")
	}
	u := &Upstream{opts: o, addr: cs.Hosts[0], user: cs.Username, password: cs.Password, log: o.Logger}
	if !strings.Contains(u.addr, ":") || strings.HasSuffix(u.addr, "]") {
		u.addr = net.JoinHostPort(strings.Trim(u.addr, "[]"), "27017")
	}
	u.authSource = "admin"
	if cs.Database != "" {
		u.authSource = cs.Database
	}
	if cs.AuthSourceSet {
		u.authSource = cs.AuthSource
	}
	switch m := strings.ToUpper(cs.AuthMechanism); m {
	case "", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN":
		u.mechanism = m
	default:
		return nil, fmt.Errorf("--mongo-upstream: authMechanism %s is not supported for the upstream (use SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN)", cs.AuthMechanism)
	}
	if u.mechanism != "" && u.user == "" {
		return nil, errors.New("--mongo-upstream: authMechanism is set but the URL has no user")
	}
	if u.user != "" {
		if err := u.newSCRAM(); err != nil {
			return nil, err
		}
	}
	if cs.SSL {
		host, _, _ := net.SplitHostPort(u.addr)
		u.tls = &tls.Config{ServerName: host, InsecureSkipVerify: cs.SSLInsecure, MinVersion: tls.VersionTLS12}
		if cs.SSLCaFileSet {
			pem, err := os.ReadFile(cs.SSLCaFile)
			if err != nil {
				return nil, fmt.Errorf("--mongo-upstream: tlsCAFile: %w", err)
			}
			u.tls.RootCAs = x509.NewCertPool()
			if !u.tls.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--mongo-upstream: tlsCAFile %s holds no PEM certificate", cs.SSLCaFile)
			}
		}
	}
	u.pool = upstream.NewPool(upstream.PoolOptions{Size: o.PoolSize, Wait: o.PoolWait, Unreachable: unreachable}, u.dial, healthy)
	return u, nil
}

// redactURLError keeps the parser's reason but never the password it may
// quote.
func redactURLError(err error, url string) string {
	msg := err.Error()
	if cs, perr := connstring.Parse(url); perr == nil && cs.Password != "" {
		msg = strings.ReplaceAll(msg, cs.Password, "xxxxx")
	}
	if i := strings.Index(url, "://"); i >= 0 {
		if j := strings.LastIndex(url, "@"); j > i {
			msg = strings.ReplaceAll(msg, url[i+3:j], "xxxxx")
		}
	}
	return msg
}

// URL is the connection string (with its credentials): the issuer serves
// it to gateway nodes over the cluster channel.
func (u *Upstream) URL() string { return u.opts.URL }

// Address is the server's host:port, for messages.
func (u *Upstream) Address() string { return u.addr }

// Close closes the pool's idle connections.
func (u *Upstream) Close() { u.pool.Close() }

// Health reports the upstream's last known state (no I/O).
func (u *Upstream) Health() Health {
	h := Health{Health: u.status.Health(u.addr, u.pool.Stats())}
	if hi := u.hello.Load(); hi != nil {
		h.MaxWireVersion = hi.maxWire
	}
	return h
}

// record keeps the outcome of an attempt to reach the server (an error's
// text never holds the password: the gateway's own errors name the user at
// most, and the server's say no more than "Authentication failed").
func (u *Upstream) record(err error) {
	if err == nil {
		u.status.Record(u.addr, true, "")
		return
	}
	u.status.Record(u.addr, !unreachable(err), err.Error())
}

// lastHello is the server's hello as last seen, or nil before the first
// connection.
func (u *Upstream) lastHello() *helloInfo { return u.hello.Load() }

// unreachable reports whether a dial error means the server could not be
// reached (anything but an answer from it).
func unreachable(err error) bool {
	var se *serverError
	return !errors.As(err, &se)
}

// dial opens a server connection: TCP (and TLS), hello, authentication.
func (u *Upstream) dial(ctx context.Context, _ upstream.Key) (*serverConn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sc, err := u.connect(ctx)
	u.record(err)
	if err != nil {
		return nil, err
	}
	return sc, nil
}

func (u *Upstream) connect(ctx context.Context) (*serverConn, error) {
	d := net.Dialer{KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", u.addr)
	if err != nil {
		return nil, err
	}
	if u.tls != nil {
		tc := tls.Client(nc, u.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	c := &conversation{conn: nc}
	hello, err := c.hello(u)
	if err == nil && u.user != "" {
		err = c.authenticate(u, hello.mechs)
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	hi := hello.info
	u.hello.Store(&hi)
	return &serverConn{Conn: nc, hello: hi}, nil
}

// healthy reports whether an idle server connection may be handed out
// (upstream.Alive).
func healthy(c *serverConn) bool { return upstream.Alive(c.Conn) }

// Probe opens one server connection (and leaves it in the pool), so that
// /healthz and the gateway's hello know the server before the first client
// session.
func (u *Upstream) Probe(ctx context.Context) error {
	k := upstream.Key{Role: upstream.Read}
	sc, err := u.pool.Get(ctx, k)
	if err != nil {
		return err
	}
	u.pool.Put(k, sc)
	return nil
}

// DropDatabase drops db on the server: DELETE /v1/databases. MongoDB
// creates a database on its first write, so there is no CreateDatabase.
func (u *Upstream) DropDatabase(ctx context.Context, db string) error {
	k := upstream.Key{Role: upstream.Owner}
	sc, err := u.pool.Get(ctx, k)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = sc.SetDeadline(dl)
	} else {
		_ = sc.SetDeadline(time.Now().Add(30 * time.Second))
	}
	c := &conversation{conn: sc.Conn}
	_, err = c.run(func(dst []byte) []byte {
		dst = bsoncore.AppendInt32Element(dst, "dropDatabase", 1)
		return bsoncore.AppendStringElement(dst, "$db", db)
	})
	if err != nil {
		var se *serverError
		if !errors.As(err, &se) {
			u.pool.Discard(k, sc)
			return err
		}
	}
	_ = sc.SetDeadline(time.Time{})
	u.pool.Put(k, sc)
	return err
}

// conversation is the gateway's own exchange with a server connection
// before a session uses it: one command at a time, each reply read whole.
type conversation struct {
	conn   net.Conn
	nextID int32
}

// maxOwnReply bounds a reply to the gateway's own commands.
const maxOwnReply = 16 << 20

// run sends one command (fields appends its elements, $db included) and
// returns its reply; {ok: 0} is a *serverError.
func (c *conversation) run(fields func([]byte) []byte) (bsoncore.Document, error) {
	c.nextID++
	msg := make([]byte, 0, 256)
	msg = binary.LittleEndian.AppendUint32(msg, 0)
	msg = binary.LittleEndian.AppendUint32(msg, uint32(c.nextID))
	msg = binary.LittleEndian.AppendUint32(msg, 0)
	msg = binary.LittleEndian.AppendUint32(msg, uint32(OpMsg))
	msg = binary.LittleEndian.AppendUint32(msg, 0)
	msg = append(msg, sectionBody)
	idx, msg := bsoncore.AppendDocumentStart(msg)
	msg = fields(msg)
	msg, _ = bsoncore.AppendDocumentEnd(msg, idx)
	binary.LittleEndian.PutUint32(msg, uint32(len(msg)))
	if _, err := c.conn.Write(msg); err != nil {
		return nil, err
	}
	var hdr [HeaderLen]byte
	if _, err := io.ReadFull(c.conn, hdr[:]); err != nil {
		return nil, err
	}
	h, _ := ReadHeader(hdr[:])
	if h.MessageLength < HeaderLen+5 || h.MessageLength > maxOwnReply {
		return nil, errors.New("the upstream sent a message of invalid length")
	}
	body := make([]byte, h.MessageLength-HeaderLen)
	if _, err := io.ReadFull(c.conn, body); err != nil {
		return nil, err
	}
	if h.OpCode != OpMsg || h.ResponseTo != c.nextID {
		return nil, errors.New("the upstream answered with an unexpected message")
	}
	doc, err := replyBody(body)
	if err != nil {
		return nil, err
	}
	if ok, _ := doc.Lookup("ok").AsFloat64OK(); ok != 1 {
		e := &serverError{Code: doc.Lookup("code").AsInt32(), Msg: "the upstream refused the gateway's command"}
		if m, ok := doc.Lookup("errmsg").StringValueOK(); ok {
			e.Msg = m
		}
		return nil, e
	}
	return doc, nil
}

// replyBody returns the body document of an OP_MSG reply (after its
// header), validated in full.
func replyBody(body []byte) (bsoncore.Document, error) {
	if len(body) < 5 || body[4] != sectionBody {
		return nil, errors.New("the upstream's reply has no body section")
	}
	doc, _, err := readDocument(body[5:])
	if err != nil {
		return nil, fmt.Errorf("the upstream's reply: %w", err)
	}
	return doc, nil
}

// serverHello is what the gateway reads of a server's hello reply.
type serverHello struct {
	info  helloInfo
	mechs []string // saslSupportedMechs
}

// hello sends hello (asking which SCRAM mechanisms the user has).
func (c *conversation) hello(u *Upstream) (serverHello, error) {
	doc, err := c.run(func(dst []byte) []byte {
		dst = bsoncore.AppendInt32Element(dst, "hello", 1)
		di, d := bsoncore.AppendDocumentElementStart(dst, "client")
		ai, d := bsoncore.AppendDocumentElementStart(d, "application")
		d = bsoncore.AppendStringElement(d, "name", "heliosdb-gateway")
		d, _ = bsoncore.AppendDocumentEnd(d, ai)
		ri, d := bsoncore.AppendDocumentElementStart(d, "driver")
		d = bsoncore.AppendStringElement(d, "name", "heliosdb-gateway")
		d = bsoncore.AppendStringElement(d, "version", "1")
		d, _ = bsoncore.AppendDocumentEnd(d, ri)
		oi, d := bsoncore.AppendDocumentElementStart(d, "os")
		d = bsoncore.AppendStringElement(d, "type", "Linux")
		d, _ = bsoncore.AppendDocumentEnd(d, oi)
		dst, _ = bsoncore.AppendDocumentEnd(d, di)
		if u.user != "" && u.mechanism == "" {
			dst = bsoncore.AppendStringElement(dst, "saslSupportedMechs", u.authSource+"."+u.user)
		}
		return bsoncore.AppendStringElement(dst, "$db", "admin")
	})
	if err != nil {
		return serverHello{}, err
	}
	h := serverHello{info: gatewayHello}
	num := func(key string, dst *int32) {
		if v, ok := doc.Lookup(key).AsInt64OK(); ok {
			*dst = int32(v)
		}
	}
	num("minWireVersion", &h.info.minWire)
	num("maxWireVersion", &h.info.maxWire)
	num("maxBsonObjectSize", &h.info.maxBSON)
	num("maxMessageSizeBytes", &h.info.maxMsg)
	num("maxWriteBatchSize", &h.info.maxBatch)
	h.info.sessionTimeoutMin = 0
	num("logicalSessionTimeoutMinutes", &h.info.sessionTimeoutMin)
	if arr, ok := doc.Lookup("saslSupportedMechs").ArrayOK(); ok {
		vals, _ := arr.Values()
		for _, v := range vals {
			if s, ok := v.StringValueOK(); ok {
				h.mechs = append(h.mechs, s)
			}
		}
	}
	return h, nil
}

// authenticate logs the connection in with the URL's credentials: the
// mechanism the URL names, else SCRAM-SHA-256 unless the server says the
// user has SCRAM-SHA-1 only.
func (c *conversation) authenticate(u *Upstream, mechs []string) error {
	mech := u.mechanism
	if mech == "" {
		mech = "SCRAM-SHA-256"
		if len(mechs) > 0 && !contains(mechs, "SCRAM-SHA-256") && contains(mechs, "SCRAM-SHA-1") {
			mech = "SCRAM-SHA-1"
		}
	}
	if mech == "PLAIN" {
		payload := append(append(append([]byte{0}, u.user...), 0), u.password...)
		doc, err := c.run(func(dst []byte) []byte {
			dst = bsoncore.AppendInt32Element(dst, "saslStart", 1)
			dst = bsoncore.AppendStringElement(dst, "mechanism", "PLAIN")
			dst = bsoncore.AppendBinaryElement(dst, "payload", 0, payload)
			return bsoncore.AppendStringElement(dst, "$db", "$external")
		})
		if err != nil {
			return authError(u, mech, err)
		}
		if done, _ := doc.Lookup("done").BooleanOK(); !done {
			return authError(u, mech, errors.New("PLAIN did not complete"))
		}
		return nil
	}
	client, err := u.scramClient(mech)
	if err != nil {
		return authError(u, mech, err)
	}
	conv := client.NewConversation()
	first, err := conv.Step("")
	if err != nil {
		return authError(u, mech, err)
	}
	doc, err := c.run(func(dst []byte) []byte {
		dst = bsoncore.AppendInt32Element(dst, "saslStart", 1)
		dst = bsoncore.AppendStringElement(dst, "mechanism", mech)
		dst = bsoncore.AppendBinaryElement(dst, "payload", 0, []byte(first))
		dst = bsoncore.AppendInt32Element(dst, "autoAuthorize", 1)
		oi, d := bsoncore.AppendDocumentElementStart(dst, "options")
		d = bsoncore.AppendBooleanElement(d, "skipEmptyExchange", true)
		dst, _ = bsoncore.AppendDocumentEnd(d, oi)
		return bsoncore.AppendStringElement(dst, "$db", u.authSource)
	})
	for step := 0; err == nil; step++ {
		id := doc.Lookup("conversationId")
		done, _ := doc.Lookup("done").BooleanOK()
		_, payload, _ := doc.Lookup("payload").BinaryOK()
		var next string
		if !conv.Done() {
			if next, err = conv.Step(string(payload)); err != nil {
				break
			}
		}
		if done {
			if !conv.Done() || !conv.Valid() {
				err = errors.New("the server ended the SCRAM conversation without proving itself")
			}
			break
		}
		if step > 3 {
			err = errors.New("the SCRAM conversation did not end")
			break
		}
		doc, err = c.run(func(dst []byte) []byte {
			dst = bsoncore.AppendInt32Element(dst, "saslContinue", 1)
			dst = bsoncore.AppendValueElement(dst, "conversationId", id)
			dst = bsoncore.AppendBinaryElement(dst, "payload", 0, []byte(next))
			return bsoncore.AppendStringElement(dst, "$db", u.authSource)
		})
	}
	if err != nil {
		return authError(u, mech, err)
	}
	return nil
}

// newSCRAM makes the SCRAM clients of the URL's credentials.
func (u *Upstream) newSCRAM() error {
	var err error
	if u.scram256, err = scram.SHA256.NewClient(u.user, u.password, ""); err != nil {
		return fmt.Errorf("--mongo-upstream: the password cannot be used with SCRAM-SHA-256: %w", err)
	}
	// MongoDB's SCRAM-SHA-1 password is the hex MD5 of
	// "user:mongo:password", not SASLprep'd.
	sum := md5.Sum([]byte(u.user + ":mongo:" + u.password))
	u.scram1, err = scram.SHA1.NewClientUnprepped(u.user, hex.EncodeToString(sum[:]), "")
	return err
}

// scramClient returns the SCRAM client for mech.
func (u *Upstream) scramClient(mech string) (*scram.Client, error) {
	if mech == "SCRAM-SHA-1" {
		return u.scram1, nil
	}
	return u.scram256, nil
}

// authError says which login failed (never the password).
func authError(u *Upstream, mech string, err error) error {
	var se *serverError
	if errors.As(err, &se) {
		return &serverError{Code: se.Code, Msg: "authentication to the upstream as " + u.user + " (" + mech + ", authSource " + u.authSource + ") failed: " + se.Msg}
	}
	return fmt.Errorf("authentication to the upstream as %s (%s): %w", u.user, mech, err)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
