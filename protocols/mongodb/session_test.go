package mongodb

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestHelloOpQueryAnsweredWithOpReply(t *testing.T) {
	s, env := newSession(true), newEnv(nil, nil)
	msg := opQuery(t, 9, "admin.$cmd", bson.D{{Key: "isMaster", Value: 1}, {Key: "helloOk", Value: true},
		{Key: "saslSupportedMechs", Value: "main.default"},
		{Key: "speculativeAuthenticate", Value: bson.D{{Key: "saslStart", Value: 1}, {Key: "mechanism", Value: "SCRAM-SHA-256"}}}})
	n, out, act := s.Handle(env, msg, nil)
	if n != len(msg) || act != netio.Continue {
		t.Fatalf("n=%d act=%v", n, act)
	}
	h, doc := reply(t, out)
	if h.OpCode != OpReply || h.ResponseTo != 9 {
		t.Fatalf("header %+v", h)
	}
	want := map[string]any{"ismaster": true, "helloOk": true, "maxBsonObjectSize": int32(16777216),
		"maxMessageSizeBytes": int32(48000000), "maxWriteBatchSize": int32(100000),
		"logicalSessionTimeoutMinutes": int32(30), "connectionId": int32(42), "minWireVersion": int32(0),
		"maxWireVersion": int32(21), "ok": float64(1)}
	for k, v := range want {
		got := doc.Lookup(k)
		var gv any
		switch got.Type {
		case bson.TypeBoolean:
			gv = got.Boolean()
		case bson.TypeInt32:
			gv = got.Int32()
		case bson.TypeDouble:
			gv = got.Double()
		}
		if gv != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	if doc.Lookup("localTime").Type != bson.TypeDateTime {
		t.Error("localTime missing")
	}
	for _, k := range []string{"topologyVersion", "speculativeAuthenticate", "compression"} {
		if _, err := doc.LookupErr(k); err == nil {
			t.Errorf("%s must not be in the hello reply", k)
		}
	}
	if mechs := doc.Lookup("saslSupportedMechs").String(); mechs != `["PLAIN"]` {
		t.Errorf("saslSupportedMechs = %s", mechs)
	}
}

func TestHelloOpMsg(t *testing.T) {
	s, env := newSession(true), newEnv(nil, nil)
	n, out, _ := s.Handle(env, opMsg(t, 3, 0, bson.D{{Key: "hello", Value: 1}, {Key: "$db", Value: "admin"}}), nil)
	h, doc := reply(t, out)
	if n == 0 || h.OpCode != OpMsg || h.ResponseTo != 3 || !doc.Lookup("isWritablePrimary").Boolean() {
		t.Fatalf("header %+v doc %v", h, doc)
	}
	if _, err := doc.LookupErr("saslSupportedMechs"); err == nil {
		t.Error("saslSupportedMechs only when asked")
	}
}

func TestPlainAuthThenCommands(t *testing.T) {
	s, env := newSession(true), newEnv(nil, nil)
	tok := mint(t, core.ScopeSet(0).With(core.ScopeDatabaseRead), time.Hour)
	doc, act := roundTrip(t, s, env, opMsg(t, 1, 0, bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}}))
	if code(doc) != 0 || act != netio.Continue {
		t.Fatalf("ping before auth: %v", doc)
	}
	doc, _ = roundTrip(t, s, env, opMsg(t, 2, 0, bson.D{{Key: "connectionStatus", Value: 1}, {Key: "$db", Value: "admin"}}))
	if code(doc) != 13 || errmsg(doc) != "command connectionStatus requires authentication" {
		t.Fatalf("pre-auth connectionStatus: %v", doc)
	}
	doc, _ = roundTrip(t, s, env, opMsg(t, 3, 0, plainStart(tok)))
	if code(doc) != 0 || !doc.Lookup("done").Boolean() || doc.Lookup("conversationId").Int32() != 1 || !s.Authenticated() {
		t.Fatalf("saslStart: %v", doc)
	}
	if _, data := doc.Lookup("payload").Binary(); len(data) != 0 {
		t.Fatal("payload must be empty")
	}
	doc, _ = roundTrip(t, s, env, opMsg(t, 4, 0, bson.D{{Key: "connectionStatus", Value: 1}, {Key: "$db", Value: "main"}}))
	if got := doc.Lookup("authInfo", "authenticatedUsers").String(); got != `[{"user": "default","db": "$external"}]` {
		t.Errorf("authenticatedUsers = %s", got)
	}
	if got := doc.Lookup("heliosdbToken", "scopes").String(); got != `["database:read"]` {
		t.Errorf("scopes = %s", got)
	}
	if strings.Contains(doc.String(), tok) {
		t.Fatal("connectionStatus echoes the token")
	}
	doc, _ = roundTrip(t, s, env, opMsg(t, 5, 0, bson.D{{Key: "insert", Value: "c"}, {Key: "$db", Value: "main"}}))
	want := `not authorized on main to execute command { insert: "c", $db: "main" }: Token does not have required scope: database:write`
	if code(doc) != 13 || errmsg(doc) != want {
		t.Errorf("insert without scope: %v", doc)
	}
	doc, _ = roundTrip(t, s, env, opMsg(t, 6, 0, bson.D{{Key: "find", Value: "c"}, {Key: "$db", Value: "main"}}))
	if code(doc) != CodeCommandNotSupported || !strings.Contains(errmsg(doc), "no upstream database is configured") {
		t.Errorf("find: %v", doc)
	}
	doc, _ = roundTrip(t, s, env, opMsg(t, 7, 0, bson.D{{Key: "aggregate", Value: "c"},
		{Key: "pipeline", Value: bson.A{bson.D{{Key: "$out", Value: "x"}}}}, {Key: "$db", Value: "main"}}))
	if code(doc) != 13 || !strings.HasSuffix(errmsg(doc), "database:write") {
		t.Errorf("aggregate $out: %v", doc)
	}
	doc, _ = roundTrip(t, s, env, opMsg(t, 8, 0, bson.D{{Key: "frobnicate", Value: 1}, {Key: "$db", Value: "main"}}))
	if code(doc) != CodeCommandNotFound {
		t.Errorf("unknown: %v", doc)
	}
	for _, c := range []string{"endSessions", "getParameter", "getCmdLineOpts", "getLog", "whatsmyuri", "buildInfo", "hello"} {
		doc, _ = roundTrip(t, s, env, opMsg(t, 9, 0, bson.D{{Key: c, Value: 1}, {Key: "$db", Value: "admin"}}))
		if code(doc) != 0 {
			t.Errorf("%s: %v", c, doc)
		}
	}
	doc, _ = roundTrip(t, s, env, opMsg(t, 10, 0, bson.D{{Key: "atlasVersion", Value: 1}, {Key: "$db", Value: "admin"}}))
	if code(doc) != CodeCommandNotFound {
		t.Errorf("atlasVersion: %v", doc)
	}
}

// TestScramRefusedWithAdvice: SCRAM (the drivers' default) and other
// mechanisms are refused with the exact connection string that works on
// this connection: PLAIN alone where the client may and does send its token
// in cleartext, PLAIN with TLS and the CA file everywhere else.
func TestScramRefusedWithAdvice(t *testing.T) {
	const ca = "/var/lib/heliosd/tls-cert.pem"
	for _, c := range []struct {
		name             string
		plaintextOK, tls bool
		db, want         string
	}{
		{"loopback plaintext", true, false, "main", "mongodb://default:$HELIOS_TOKEN@127.0.0.1:27017/main?authMechanism=PLAIN"},
		{"loopback TLS", true, true, "main", "mongodb://default:$HELIOS_TOKEN@127.0.0.1:27017/main?authMechanism=PLAIN&tls=true&tlsCAFile=" + ca},
		{"remote plaintext", false, false, "admin", "mongodb://default:$HELIOS_TOKEN@127.0.0.1:27017/main?authMechanism=PLAIN&tls=true&tlsCAFile=" + ca},
		{"remote TLS", false, true, "orders", "mongodb://default:$HELIOS_TOKEN@127.0.0.1:27017/orders?authMechanism=PLAIN&tls=true&tlsCAFile=" + ca},
	} {
		for _, mech := range []string{"SCRAM-SHA-1", "SCRAM-SHA-256", "MONGODB-OIDC"} {
			info := &netio.ConnInfo{Remote: netip.MustParseAddrPort("10.1.2.3:5555"), Local: netip.MustParseAddrPort("127.0.0.1:27017"),
				PlaintextOK: c.plaintextOK, TLS: c.tls, ID: 42}
			s, env := New(Options{CAFile: ca}).NewSession(info).(*Session), newEnv(nil, nil)
			doc, act := roundTrip(t, s, env, opMsg(t, 1, 0, bson.D{{Key: "saslStart", Value: 1}, {Key: "mechanism", Value: mech},
				{Key: "payload", Value: bson.Binary{Data: []byte("n,,n=default,r=abc")}}, {Key: "$db", Value: c.db}}))
			if !c.tls && !c.plaintextOK {
				// Refused before any mechanism is looked at, with the TLS advice.
				if code(doc) != 18 || errmsg(doc) != msgTLSRequired+c.want || act != netio.Close {
					t.Errorf("%s %s: %v", c.name, mech, doc)
				}
				continue
			}
			if code(doc) != 18 || !strings.HasSuffix(errmsg(doc), "Connect with authMechanism=PLAIN: "+c.want) || act != netio.Continue {
				t.Errorf("%s %s: %v", c.name, mech, doc)
			}
		}
	}
}

func TestBadTokensGetCode18(t *testing.T) {
	revs := core.NewMemoryRevocations()
	revoked := mint(t, core.AllScopes, time.Hour)
	c, err := core.NewVerifier(testRing, nil).Verify([]byte(revoked), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	revs.RevokeToken(c.ID, c.ExpiresAt)
	cases := map[string]string{
		"hdb_live_nope":                          core.MsgInvalid,
		mint(t, core.AllScopes, -time.Minute):    core.MsgExpired,
		revoked:                                  core.MsgRevoked,
		mint(t, core.AllScopes, time.Hour) + "x": core.MsgInvalid,
	}
	for tok, want := range cases {
		rec := &recorder{}
		s, env := newSession(true), newEnv(revs, rec)
		doc, act := roundTrip(t, s, env, opMsg(t, 1, 0, plainStart(tok)))
		if code(doc) != 18 || !strings.HasPrefix(errmsg(doc), want) || act != netio.Close || s.Authenticated() {
			t.Errorf("%q: %v act %v", want, doc, act)
		}
		if len(rec.auths) != 1 || rec.auths[0] == nil {
			t.Errorf("observer: %v", rec.auths)
		}
		if strings.Contains(errmsg(doc), tok) {
			t.Error("error echoes the token")
		}
	}
	s, env := newSession(true), newEnv(nil, nil)
	doc, _ := roundTrip(t, s, env, opMsg(t, 1, 0, bson.D{{Key: "saslStart", Value: 1}, {Key: "mechanism", Value: "PLAIN"},
		{Key: "payload", Value: bson.Binary{Data: []byte("justatoken")}}, {Key: "$db", Value: "admin"}}))
	if code(doc) != 18 || !strings.Contains(errmsg(doc), `\0<user>\0<token>`) {
		t.Errorf("malformed payload: %v", doc)
	}
}

func TestPlaintextFromRemoteRefusedBeforeToken(t *testing.T) {
	rec := &recorder{}
	s, env := newSession(false), newEnv(nil, rec)
	doc, act := roundTrip(t, s, env, opQuery(t, 1, "admin.$cmd", bson.D{{Key: "isMaster", Value: 1}}))
	if code(doc) != 18 || !strings.Contains(errmsg(doc), "TLS is required") || act != netio.Close {
		t.Fatalf("%v %v", doc, act)
	}
	if len(rec.refused) != 1 || rec.refused[0] != netio.OutcomeTLSRequired {
		t.Fatalf("refused %v", rec.refused)
	}
	s.info.TLS = true
	doc, _ = roundTrip(t, s, env, opMsg(t, 2, 0, plainStart(mint(t, core.AllScopes, time.Hour))))
	if code(doc) != 0 {
		t.Fatalf("over TLS: %v", doc)
	}
}

func TestExpiryAfterAuthentication(t *testing.T) {
	s, env := newSession(true), newEnv(nil, nil)
	roundTrip(t, s, env, opMsg(t, 1, 0, plainStart(mint(t, core.AllScopes, time.Minute))))
	env.Now = env.Now.Add(2 * time.Minute)
	doc, act := roundTrip(t, s, env, opMsg(t, 2, 0, bson.D{{Key: "connectionStatus", Value: 1}, {Key: "$db", Value: "main"}}))
	if code(doc) != 18 || !strings.HasPrefix(errmsg(doc), core.MsgExpired+"; the server closed this connection") || act != netio.Close {
		t.Fatalf("%v %v", doc, act)
	}
}

func TestMoreToComeGetsNoReply(t *testing.T) {
	s, env := newSession(true), newEnv(nil, nil)
	msg := opMsg(t, 1, FlagMoreToCome, bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}})
	n, out, act := s.Handle(env, msg, nil)
	if n != len(msg) || len(out) != 0 || act != netio.Continue {
		t.Fatalf("n=%d out=%d act=%v", n, len(out), act)
	}
}

func TestPipelinedAndPartialMessages(t *testing.T) {
	s, env := newSession(true), newEnv(nil, nil)
	a := opMsg(t, 1, 0, bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}})
	b := opMsg(t, 2, FlagChecksumPresent, bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}})
	in := append(append([]byte{}, a...), b[:20]...)
	n, out, _ := s.Handle(env, in, nil)
	if n != len(a) {
		t.Fatalf("consumed %d, want %d", n, len(a))
	}
	reply(t, out)
	n, out, _ = s.Handle(env, in[n:], nil)
	if n != 0 || len(out) != 0 || !s.havePending {
		t.Fatalf("partial: n=%d out=%d", n, len(out))
	}
	if le := s.LimitError(netio.LimitMessageSize, nil); len(le) == 0 {
		t.Fatal("no limit error for the pending request")
	}
	n, out, _ = s.Handle(env, b, nil)
	h, doc := reply(t, out)
	if n != len(b) || h.ResponseTo != 2 || code(doc) != 0 {
		t.Fatalf("checksummed ping: %v", doc)
	}
}

// A monitoring connection (hello only, never authenticated) is past its
// handshake for the transport, but still may run nothing else and still
// has the pre-authentication size bound.
func TestMonitoringConnectionIsEstablished(t *testing.T) {
	s, env := newSession(true), newEnv(nil, nil)
	if s.Authenticated() {
		t.Fatal("established before hello")
	}
	roundTrip(t, s, env, opMsg(t, 1, 0, bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}}))
	if s.Authenticated() {
		t.Fatal("ping must not establish")
	}
	roundTrip(t, s, env, opMsg(t, 2, 0, bson.D{{Key: "hello", Value: 1}, {Key: "$db", Value: "admin"}}))
	if !s.Authenticated() || s.authed {
		t.Fatal("hello should establish without authenticating")
	}
	doc, _ := roundTrip(t, s, env, opMsg(t, 3, 0, bson.D{{Key: "connectionStatus", Value: 1}, {Key: "$db", Value: "admin"}}))
	if code(doc) != CodeUnauthorized {
		t.Fatalf("connectionStatus on a monitoring connection: %v", doc)
	}
	if s.maxMessage(env) != DefaultMaxPreAuthMessage {
		t.Fatal("size bound must stay the pre-authentication one")
	}
}
