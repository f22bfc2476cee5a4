package mongodb

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/tlsfile"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/netio/netiotest"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// capture is a Session that records every byte its client sent.
type capture struct {
	netio.Session
	mu  *sync.Mutex
	buf *[][]byte
}

func (c capture) Handle(env *netio.Env, in, out []byte) (int, []byte, netio.Action) {
	n, o, a := c.Session.Handle(env, in, out)
	if n > 0 {
		c.mu.Lock()
		*c.buf = append(*c.buf, append([]byte(nil), in[:n]...))
		c.mu.Unlock()
	}
	return n, o, a
}

type captureProto struct {
	*Protocol
	mu   sync.Mutex
	msgs [][]byte
}

func (p *captureProto) NewSession(info *netio.ConnInfo) netio.Session {
	return capture{Session: p.Protocol.NewSession(info), mu: &p.mu, buf: &p.msgs}
}

// serve runs the MongoDB front end on a loopback port through netio's
// goroutine path (TLS from the first byte) until the test ends.
func serve(t *testing.T) (addr string, p *captureProto) {
	t.Helper()
	cfg, _, _, err := tlsfile.LoadOrGenerate(t.TempDir(), "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p = &captureProto{Protocol: New(Options{})}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		var id uint32
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			id++
			info := &netio.ConnInfo{Remote: netio.AddrPort(c.RemoteAddr()), ID: id, PlaintextOK: true, Accepted: time.Now()}
			env := &netio.Env{Verifier: core.NewVerifier(testRing, nil), Observer: netiotest.NopObserver{}}
			wg.Add(1)
			go func() {
				defer wg.Done()
				netio.ServeConn(c, p, p.NewSession(info), info, env, nil, netio.GoroutineOptions{TLS: cfg, HandshakeTimeout: 5 * time.Second})
			}()
		}
	}()
	return ln.Addr().String(), p
}

func connect(t *testing.T, uri string) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second).SetConnectTimeout(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

func TestGoDriverPlainOverTLS(t *testing.T) {
	addr, p := serve(t)
	tok := mint(t, core.ScopeSet(0).With(core.ScopeDatabaseRead), time.Hour)
	c := connect(t, "mongodb://default:"+tok+"@"+addr+"/main?authMechanism=PLAIN&tls=true&tlsInsecure=true")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Ping(ctx, nil); err != nil {
		t.Fatalf("ping: %v", err)
	}
	var st struct {
		AuthInfo struct {
			AuthenticatedUsers []struct{ User, DB string }
		} `bson:"authInfo"`
		Token struct{ Scopes []string } `bson:"heliosdbToken"`
	}
	if err := c.Database("main").RunCommand(ctx, bson.D{{Key: "connectionStatus", Value: 1}}).Decode(&st); err != nil {
		t.Fatalf("connectionStatus: %v", err)
	}
	if u := st.AuthInfo.AuthenticatedUsers; len(u) != 1 || u[0].User != "default" || len(st.Token.Scopes) != 1 {
		t.Fatalf("connectionStatus %+v", st)
	}
	err := c.Database("main").Collection("c").FindOne(ctx, bson.D{}).Err()
	var ce mongo.CommandError
	defer writeCapture(p, "go")
	if !errors.As(err, &ce) || ce.Code != CodeCommandNotSupported {
		t.Fatalf("find: %v", err)
	}
	_, err = c.Database("main").Collection("c").InsertOne(ctx, bson.D{{Key: "a", Value: 1}})
	if !errors.As(err, &ce) || ce.Code != 13 || !strings.Contains(ce.Message, "Token does not have required scope: database:write") {
		var we mongo.WriteException
		if !errors.As(err, &we) {
			t.Fatalf("insert: %v", err)
		}
	}
}

func TestGoDriverWrongTokenAndDefaultMechanism(t *testing.T) {
	addr, _ := serve(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := connect(t, "mongodb://default:hdb_live_wrong@"+addr+"/main?authMechanism=PLAIN&tls=true&tlsInsecure=true")
	err := c.Ping(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "AuthenticationFailed") || !strings.Contains(err.Error(), core.MsgInvalid) {
		t.Fatalf("wrong token: %v", err)
	}
	tok := mint(t, core.AllScopes, time.Hour)
	c = connect(t, "mongodb://default:"+tok+"@"+addr+"/main?tls=true&tlsInsecure=true")
	err = c.Ping(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "authMechanism=PLAIN&tls=true") {
		t.Fatalf("default mechanism: %v", err)
	}
	t.Logf("default URI error: %v", err)
}

// mongoshPath finds the project-local mongosh (scripts/install-deps.sh).
func mongoshPath(t *testing.T) string {
	dir, _ := os.Getwd()
	for ; dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		p := filepath.Join(dir, ".tools", "node_modules", ".bin", "mongosh")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("mongosh"); err == nil {
		return p
	}
	t.Skip("mongosh is not installed: run scripts/install-deps.sh")
	return ""
}

func TestMongosh(t *testing.T) {
	sh := mongoshPath(t)
	addr, p := serve(t)
	tok := mint(t, core.AllScopes, time.Hour)
	run := func(uri, eval string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, sh, uri, "--quiet", "--norc", "--eval", eval)
		if eval == "" { // the shell itself, fed from stdin
			cmd = exec.CommandContext(ctx, sh, uri, "--norc")
			cmd.Stdin = strings.NewReader("db.runCommand({ping:1})\ndb.runCommand({connectionStatus:1}).heliosdbToken\nexit\n")
		}
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "MONGOSH_NO_TELEMETRY=1")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("mongodb://default:"+tok+"@"+addr+"/main?authMechanism=PLAIN&tls=true&tlsAllowInvalidCertificates=true",
		"printjson(db.runCommand({ping:1})); printjson(db.runCommand({connectionStatus:1}).authInfo.authenticatedUsers)")
	if err != nil || !strings.Contains(out, "ok: 1") || !strings.Contains(out, "user: 'default'") {
		t.Fatalf("mongosh ping: %v\n%s", err, out)
	}
	out, err = run("mongodb://default:"+tok+"@"+addr+"/main?authMechanism=PLAIN&tls=true&tlsAllowInvalidCertificates=true", "")
	if err != nil || !strings.Contains(out, "ok: 1") || !strings.Contains(out, "scopes: [ '*' ]") {
		t.Fatalf("mongosh shell: %v\n%s", err, out)
	}
	t.Logf("mongosh shell:\n%s", out)
	out, err = run("mongodb://default:"+tok+"@"+addr+"/main?tls=true&tlsAllowInvalidCertificates=true", "db.runCommand({ping:1})")
	if err == nil || !strings.Contains(out, "authMechanism=PLAIN&tls=true") {
		t.Fatalf("mongosh default mechanism: %v\n%s", err, out)
	}
	t.Logf("mongosh default URI: %s", out)
	writeCapture(p, "mongosh")
}

// writeCapture saves what clients sent when MONGO_CAPTURE_DIR is set (the
// source of fuzz/mongodb's seed corpus; tokens are redacted there).
func writeCapture(p *captureProto, prefix string) {
	dir := os.Getenv("MONGO_CAPTURE_DIR")
	if dir == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, m := range p.msgs {
		_ = os.WriteFile(filepath.Join(dir, prefix+"-"+itoa3(i)), m, 0o644)
	}
}

func itoa3(i int) string {
	return string([]byte{byte('0' + i/100%10), byte('0' + i/10%10), byte('0' + i%10)})
}
