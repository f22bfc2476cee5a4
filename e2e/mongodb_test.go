package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// mongoURI is the URI the guide should show: PLAIN over TLS.
func mongoURI(d *daemon, token, extra string) string {
	return "mongodb://default:" + url.QueryEscape(token) + "@" + d.Mongo + "/main?authMechanism=PLAIN&tls=true&tlsCAFile=" +
		url.QueryEscape(d.CACert) + extra
}

func mongoConnect(t *testing.T, uri string) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second).SetConnectTimeout(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

func mongoCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestMongoGoDriver drives the real heliosd with mongo-go-driver v2: PLAIN
// over TLS, Ping and commands, scopes, and code 18 for bad tokens.
func TestMongoGoDriver(t *testing.T) {
	d := startDaemon(t)
	ctx := mongoCtx(t)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: core.ScopeSet(0).With(core.ScopeDatabaseRead)})
	c := mongoConnect(t, mongoURI(d, tok, ""))
	if err := c.Ping(ctx, nil); err != nil {
		t.Fatalf("ping: %v", err)
	}
	var st struct {
		AuthInfo struct {
			AuthenticatedUsers []struct{ User, DB string } `bson:"authenticatedUsers"`
		} `bson:"authInfo"`
		Token struct {
			Type   string   `bson:"type"`
			Scopes []string `bson:"scopes"`
		} `bson:"heliosdbToken"`
	}
	if err := c.Database("main").RunCommand(ctx, bson.D{{Key: "connectionStatus", Value: 1}}).Decode(&st); err != nil {
		t.Fatalf("connectionStatus: %v", err)
	}
	if u := st.AuthInfo.AuthenticatedUsers; len(u) != 1 || u[0].User != "default" || st.Token.Type != "live" ||
		strings.Join(st.Token.Scopes, ",") != "database:read" {
		t.Fatalf("connectionStatus: %+v", st)
	}
	var ce mongo.CommandError
	err := c.Database("main").Collection("orders").FindOne(ctx, bson.D{}).Err()
	if !errors.As(err, &ce) || ce.Code != 115 || !strings.Contains(ce.Message, "no upstream database is configured") {
		t.Fatalf("find: %v", err)
	}
	err = c.Database("main").RunCommand(ctx, bson.D{{Key: "drop", Value: "orders"}}).Err()
	want := `not authorized on main to execute command { drop: "orders", $db: "main" }: Token does not have required scope: schema:write`
	if !errors.As(err, &ce) || ce.Code != 13 || ce.Message != want {
		t.Fatalf("drop without schema:write: %v", err)
	}

	for name, bad := range map[string]string{
		"tampered": tamper(tok),
		"expired":  d.ExpiredToken(t),
		"garbage":  "hdb_live_nope",
	} {
		err := mongoConnect(t, mongoURI(d, bad, "")).Ping(ctx, nil)
		if err == nil || !strings.Contains(err.Error(), "(AuthenticationFailed)") {
			t.Errorf("%s token: %v", name, err)
		}
		if name == "expired" && !strings.Contains(err.Error(), core.MsgExpired) {
			t.Errorf("expired token: %v", err)
		}
	}

	// The guide's URI, without authMechanism: the driver picks SCRAM and
	// the error tells the user what to add.
	err = mongoConnect(t, "mongodb://default:"+tok+"@"+d.Mongo+"/main?tls=true&tlsCAFile="+url.QueryEscape(d.CACert)).Ping(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "?authMechanism=PLAIN&tls=true") {
		t.Fatalf("default mechanism: %v", err)
	}
}

// TestMongoIssuedTokens uses tokens from the issuer: a created token works,
// and is refused with code 18 once revoked.
func TestMongoIssuedTokens(t *testing.T) {
	d := startDaemon(t)
	ctx := mongoCtx(t)
	session := d.NewUser(t)
	tok, id := d.CreateToken(t, session, map[string]any{"name": "mongo-app", "scopes": []string{"database:read"}})
	if err := mongoConnect(t, mongoURI(d, tok, "")).Ping(ctx, nil); err != nil {
		t.Fatalf("issued token: %v", err)
	}
	d.Revoke(t, session, id)
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := mongoConnect(t, mongoURI(d, tok, "")).Ping(ctx, nil)
		if err != nil && strings.Contains(err.Error(), core.MsgRevoked) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked token: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mongosh returns the project-local mongosh (scripts/install-deps.sh).
func mongosh(t *testing.T) string {
	p := filepath.Join(repoRoot(), ".tools", "node_modules", ".bin", "mongosh")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if p, err := exec.LookPath("mongosh"); err == nil {
		return p
	}
	t.Fatal("mongosh is not installed: run scripts/install-deps.sh (make test does)")
	return ""
}

// TestMongosh runs the real mongosh against heliosd: the PLAIN URI works
// (also as an interactive shell on stdin); the guide's URI fails with the
// teaching error.
func TestMongosh(t *testing.T) {
	sh := mongosh(t)
	d := startDaemon(t)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
	run := func(stdin string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, sh, append(args, "--norc")...)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "MONGOSH_NO_TELEMETRY=1")
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	uri := "mongodb://default:" + tok + "@" + d.Mongo + "/main?authMechanism=PLAIN&tls=true&tlsAllowInvalidCertificates=true"
	out, err := run("", uri, "--quiet", "--eval", "db.runCommand({ping:1})")
	if err != nil || !strings.Contains(out, "ok: 1") {
		t.Fatalf("mongosh --eval ping: %v\n%s", err, out)
	}
	out, err = run("db.runCommand({connectionStatus:1}).authInfo.authenticatedUsers\nexit\n", uri)
	if err != nil || !strings.Contains(out, "main>") || !strings.Contains(out, "user: 'default'") {
		t.Fatalf("mongosh shell: %v\n%s", err, out)
	}
	// A read-only token: mongosh shows the scope error in mongod's words.
	ro := d.Mint(t, core.Claims{Account: 1, Scopes: core.ScopeSet(0).With(core.ScopeDatabaseRead)})
	out, err = run("", "mongodb://default:"+ro+"@"+d.Mongo+"/main?authMechanism=PLAIN&tls=true&tlsAllowInvalidCertificates=true",
		"--quiet", "--eval", "db.orders.insertOne({a: 1})")
	if err == nil || !strings.Contains(out, "MongoServerError") || !strings.Contains(out, "not authorized on main to execute command { insert: ") ||
		!strings.Contains(out, "Token does not have required scope: database:write") {
		t.Fatalf("mongosh insert with a read-only token: %v\n%s", err, out)
	}
	out, err = run("", "mongodb://default:"+tok+"@"+d.Mongo+"/main?tls=true&tlsAllowInvalidCertificates=true", "--quiet", "--eval", "db.runCommand({ping:1})")
	if err == nil || !strings.Contains(out, "authMechanism=PLAIN&tls=true") {
		t.Fatalf("mongosh with the guide's URI: %v\n%s", err, out)
	}
	if strings.Contains(out, tok) {
		t.Fatal("the error output holds the token")
	}
}

// TestMongoBadInput sends hostile bytes straight to the port (plaintext from
// loopback); each connection gets an error or is closed, and the next client
// is served.
func TestMongoBadInput(t *testing.T) {
	d := startDaemon(t)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
	ctx := mongoCtx(t)
	r := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	random[0] = 0x7f // not a TLS record
	hello := rawOpMsg(t, 1, 0, bson.D{{Key: "hello", Value: 1}, {Key: "$db", Value: "admin"}})
	huge := append([]byte{}, hello[:16]...)
	binary.LittleEndian.PutUint32(huge, 16<<20+1)
	lying := append([]byte{}, hello...)
	binary.LittleEndian.PutUint32(lying[21:], 4000) // body document claims more than the message holds
	nested := rawOpMsg(t, 1, 0, bson.D{{Key: "hello", Value: bson.D{{Key: "x", Value: "y"}}}, {Key: "$db", Value: "admin"}})
	binary.LittleEndian.PutUint32(nested[21+4+1+6:], 0x7ffffff0) // sub-document length lies
	badSum := rawOpMsg(t, 1, 1, bson.D{{Key: "hello", Value: 1}, {Key: "$db", Value: "admin"}})
	badSum[len(badSum)-2] ^= 0x55

	for name, in := range map[string][]byte{
		"random bytes": random, "truncated header": hello[:9], "16 MiB+ length": huge,
		"lying BSON length": lying, "lying nested length": nested, "bad checksum": badSum,
	} {
		c, err := net.Dial("tcp", d.Mongo)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(in)
		if name == "truncated header" {
			c.Close() // the server waits for the rest; the client gives up
		} else {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 1<<16)
			n, _ := readAll(c, buf)
			c.Close()
			if n > 0 && n < 16 {
				t.Errorf("%s: partial reply of %d bytes", name, n)
			}
		}
		if err := mongoConnect(t, mongoURI(d, tok, "")).Ping(ctx, nil); err != nil {
			t.Fatalf("after %s, the next client was not served: %v", name, err)
		}
	}
}

// readAll reads until EOF, error or a full buffer and returns the count.
func readAll(c net.Conn, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		k, err := c.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// rawOpMsg encodes an OP_MSG with one body; flags bit 0 adds a CRC-32C.
func rawOpMsg(t *testing.T, id int32, flags uint32, doc bson.D) []byte {
	t.Helper()
	body, err := bson.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 16, 64+len(body))
	binary.LittleEndian.PutUint32(b[4:], uint32(id))
	binary.LittleEndian.PutUint32(b[12:], 2013)
	b = binary.LittleEndian.AppendUint32(b, flags)
	b = append(append(b, 0), body...)
	if flags&1 != 0 {
		binary.LittleEndian.PutUint32(b, uint32(len(b)+4))
		b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	}
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	return b
}

// TestMongoPlaintextRefusedWhenNotAllowed: when the client's address may
// not send tokens in cleartext, even hello is refused (so a driver never
// reaches saslStart and never sends the token); TLS works.
func TestMongoPlaintextRefusedWhenNotAllowed(t *testing.T) {
	d := startDaemon(t, withArgs("--plaintext-allow", "192.0.2.0/24"))
	ctx := mongoCtx(t)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
	plain := "mongodb://default:" + tok + "@" + d.Mongo + "/main?authMechanism=PLAIN&serverSelectionTimeoutMS=2000"
	err := mongoConnect(t, plain).Ping(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "TLS is required") {
		t.Fatalf("plaintext: %v", err)
	}
	t.Logf("plaintext from a disallowed address: %v", err)
	if strings.Contains(err.Error(), tok) {
		t.Fatal("the error holds the token")
	}
	if err := mongoConnect(t, mongoURI(d, tok, "")).Ping(ctx, nil); err != nil {
		t.Fatalf("TLS: %v", err)
	}
}

// TestMongoMonitorOutlivesHandshakeTimeout: the driver's monitoring
// connection never authenticates; it must not be closed at the handshake
// deadline (the driver would mark the server unknown and clear its pool).
func TestMongoMonitorOutlivesHandshakeTimeout(t *testing.T) {
	d := startDaemon(t, withArgs("--handshake-timeout", "1s"))
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
	var cleared, failed atomic.Int32
	opts := options.Client().ApplyURI(mongoURI(d, tok, "&heartbeatFrequencyMS=500")).
		SetPoolMonitor(&event.PoolMonitor{Event: func(e *event.PoolEvent) {
			if e.Type == event.ConnectionPoolCleared {
				cleared.Add(1)
			}
		}}).
		SetServerMonitor(&event.ServerMonitor{ServerHeartbeatFailed: func(e *event.ServerHeartbeatFailedEvent) {
			failed.Add(1)
			t.Logf("heartbeat failed: %v", e.Failure)
		}})
	c, err := mongo.Connect(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(context.Background())
	for i := 0; i < 4; i++ {
		if err := c.Ping(mongoCtx(t), nil); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
		time.Sleep(time.Second)
	}
	if cleared.Load() != 0 || failed.Load() != 0 {
		t.Fatalf("pool cleared %d times, %d heartbeats failed", cleared.Load(), failed.Load())
	}
}

// TestMongoRevocationAfterHello: drivers say hello before they
// authenticate, and the gateway counts a hello as the end of the handshake
// (monitoring connections never authenticate). A token admitted after that
// hello must still be found by a revocation: the idle connection is ended
// at once, not at its next command. Checked on the event loop (plaintext)
// and on a TLS goroutine.
func TestMongoRevocationAfterHello(t *testing.T) {
	d := startDaemon(t)
	owner := d.NewUser(t)
	tok, id := d.CreateToken(t, owner, map[string]any{"name": "hello-first", "scopes": []string{"*"}})
	var wires []*wire
	for _, useTLS := range []bool{false, true} {
		w := dialWire(t, d.Mongo)
		if useTLS {
			w.startTLS(framingTLS(t, d))
		}
		hello := bsoncore.NewDocumentBuilder().AppendInt32("hello", 1).AppendString("$db", "admin").Build()
		w.send(mongoMsg(1, hello), false)
		if to, doc := mongoReply(w); to != 1 || !mongoOK(doc) {
			t.Fatalf("hello: %v", doc)
		}
		auth := bsoncore.NewDocumentBuilder().AppendInt32("saslStart", 1).AppendString("mechanism", "PLAIN").
			AppendBinary("payload", 0, []byte("\x00default\x00"+tok)).AppendString("$db", "$external").Build()
		w.send(mongoMsg(2, auth), false)
		if to, doc := mongoReply(w); to != 2 || !mongoOK(doc) {
			t.Fatalf("saslStart: %v", doc)
		}
		wires = append(wires, w)
	}
	d.Revoke(t, owner, id)
	for i, w := range wires {
		// The session is silent: only its end (a close, with or without the
		// code 18 message before it) may arrive.
		_ = w.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.ReadAll(w.r)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("connection %d (TLS %v): an idle session authenticated after hello outlived its revoked token", i, i == 1)
		}
	}
}
