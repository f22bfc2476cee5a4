package sqlscope

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/netio/netiotest"
	"github.com/heliosdb/auth/protocols/mysql"
	"github.com/heliosdb/auth/protocols/postgres"
	"github.com/heliosdb/auth/protocols/rest"
	"github.com/valyala/fasthttp"
)

// seeds are texts the old classifiers disagreed on, and some they agreed
// on.
var seeds = []string{
	"SELECT 1", "SELECT 1; DELETE FROM t", "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
	"EXPLAIN ANALYZE DELETE FROM t", "SELECT * INTO newt FROM t", "PREPARE p AS DELETE FROM t",
	"SET ROLE postgres", "SET SESSION AUTHORIZATION postgres", "-- DELETE FROM t\nSELECT 1",
	"SELECT 1 INTO OUTFILE '/tmp/x'", "WITH x AS (SELECT 1) DELETE FROM t", "SELECT $$ ' $$; DELETE FROM t; --'",
	"SELECT E'\\''; DELETE FROM t; --'", "SELECT 'a\\'; DELETE FROM t; -- '", "/*!50000 DELETE FROM t */",
	"PREPARE s FROM 'DELETE FROM t'", "SET GLOBAL x = 1", "select set_config('role','x',false)",
	"SELECT * FROM helios_whoami()", "SHOW server_version", "SET NAMES utf8mb4", "",
}

// frontEnds holds one logged-in session per SQL front end, reused for
// every input (sessions answer one message at a time).
type frontEnds struct {
	mu     sync.Mutex
	claims core.Claims
	pg     netio.Session
	pgEnv  *netio.Env
	my     netio.Session
	myEnv  *netio.Env
}

func newFrontEnds(f *testing.F) *frontEnds {
	now := time.Now()
	ring := core.GenerateKeyring(now.Add(-time.Hour))
	read := core.ScopeSet(0).With(core.ScopeDatabaseRead)
	tok, c, err := core.NewMinter(ring).Mint(nil, core.Claims{Type: core.TypeLive, ID: core.NewTokenID(), Account: 1,
		IssuedAt: now.Add(-time.Minute).Unix(), ExpiresAt: now.Add(24 * time.Hour).Unix(), Scopes: read})
	if err != nil {
		f.Fatal(err)
	}
	env := func() *netio.Env {
		return &netio.Env{Verifier: core.NewVerifier(ring, nil), Now: now, MaxPreAuthMessage: 16 << 10, MaxMessage: 1 << 20,
			Observer: netiotest.NopObserver{}}
	}
	fe := &frontEnds{claims: c, pgEnv: env(), myEnv: env()}

	fe.pg = postgres.New(postgres.Options{}).NewSession(&netio.ConnInfo{PlaintextOK: true, Remote: netip.MustParseAddrPort("127.0.0.1:5")})
	fe.pg.Start(fe.pgEnv, nil)
	login := pgMessage(0, append([]byte{0, 3, 0, 0}, "user\x00default\x00database\x00main\x00\x00"...))
	login = append(login, pgMessage('p', append(append([]byte(nil), tok...), 0))...)
	if _, out, _ := fe.pg.Handle(fe.pgEnv, login, nil); !bytes.HasSuffix(out, []byte{'Z', 0, 0, 0, 5, 'I'}) {
		f.Fatalf("postgres login: %q", out)
	}

	key, err := mysql.LoadOrGenerateKey(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	p, err := mysql.New(mysql.Options{Key: key, TLS: true})
	if err != nil {
		f.Fatal(err)
	}
	fe.my = p.NewSession(&netio.ConnInfo{TLS: true, Remote: netip.MustParseAddrPort("127.0.0.1:6")})
	fe.my.Start(fe.myEnv, nil)
	caps := mysql.ClientLongPassword | mysql.ClientProtocol41 | mysql.ClientSecureConnection | mysql.ClientPluginAuth |
		mysql.ClientPluginAuthLenencData | mysql.ClientConnectWithDB | mysql.ClientTransactions | mysql.ClientMultiResults
	hs := binary.LittleEndian.AppendUint32(nil, caps)
	hs = binary.LittleEndian.AppendUint32(hs, 1<<24)
	hs = append(hs, 45)
	hs = append(hs, make([]byte, 23)...)
	hs = append(hs, "default\x00"...)
	hs = append(append(hs, 32), make([]byte, 32)...)
	hs = append(hs, "main\x00caching_sha2_password\x00"...)
	fe.my.Handle(fe.myEnv, myPacket(1, hs), nil)
	if _, out, _ := fe.my.Handle(fe.myEnv, myPacket(3, append(append([]byte(nil), tok...), 0)), nil); len(out) < 5 || out[4] != 0 {
		f.Fatalf("mysql login: %q", out)
	}
	return fe
}

func pgMessage(typ byte, body []byte) []byte {
	var b []byte
	if typ != 0 {
		b = append(b, typ)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)+4))
	return append(b, body...)
}

func myPacket(seq byte, payload []byte) []byte {
	return append([]byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), seq}, payload...)
}

// verdict is what a front end made of a text: "" when the scope check let
// it through, else the refusal's message (after MySQL's "… to user …: ").
type verdict string

// rest runs POST /api/v1/sql with {"query": q} through the REST handler.
func (fe *frontEnds) rest(t *testing.T, q string) verdict {
	body, _ := json.Marshal(map[string]string{"query": q})
	var req fasthttp.Request
	req.Header.SetMethod("POST")
	req.SetRequestURI("/api/v1/sql")
	req.SetBody(body)
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7}, nil)
	c := fe.claims
	rest.SQLHandler(nil, nil)(&ctx, &c)
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	status := ctx.Response.StatusCode()
	if status != 200 && json.Unmarshal(ctx.Response.Body(), &e) != nil {
		t.Fatalf("REST %q: %d %q", q, status, ctx.Response.Body())
	}
	if status == 403 {
		if e.Error.Code != "FORBIDDEN" {
			t.Fatalf("REST %q: %d %s", q, status, ctx.Response.Body())
		}
		return verdict(e.Error.Message)
	}
	return ""
}

// postgres runs q as a simple Query (q without NUL bytes).
func (fe *frontEnds) postgres(t *testing.T, q string) verdict {
	n, out, act := fe.pg.Handle(fe.pgEnv, pgMessage('Q', append([]byte(q), 0)), nil)
	if act != netio.Continue || n == 0 {
		t.Fatalf("postgres %q: %v %q", q, act, out)
	}
	var v verdict
	for len(out) > 0 {
		if len(out) < 5 {
			t.Fatalf("postgres %q: torn message %q", q, out)
		}
		size := int(binary.BigEndian.Uint32(out[1:]))
		if size < 4 || 1+size > len(out) {
			t.Fatalf("postgres %q: bad framing %q", q, out)
		}
		if out[0] == 'E' && bytes.Contains(out[:1+size], []byte("C42501\x00")) {
			i := bytes.Index(out[:1+size], []byte("\x00M")) + 2
			v = verdict(out[i : i+bytes.IndexByte(out[i:], 0)])
		}
		out = out[1+size:]
	}
	return v
}

// mysql runs q as a COM_QUERY.
func (fe *frontEnds) mysql(t *testing.T, q string) verdict {
	n, out, act := fe.my.Handle(fe.myEnv, myPacket(0, append([]byte{0x03}, q...)), nil)
	if act != netio.Continue || n == 0 {
		t.Fatalf("mysql %q: %v %q", q, act, out)
	}
	var v verdict
	for first := true; len(out) > 0; first = false {
		payload, _, k, err := mysql.ReadPacket(out, 1<<24)
		if err != nil || k == 0 {
			t.Fatalf("mysql %q: bad framing %q", q, out)
		}
		if first && len(payload) > 9 && payload[0] == 0xff {
			code := binary.LittleEndian.Uint16(payload[1:])
			if code == 1142 || code == 1044 {
				msg := string(payload[9:])
				v = verdict(msg[strings.Index(msg, "': ")+3:])
			}
		}
		out = out[k:]
	}
	return v
}

// FuzzFrontEnds: a database:read token's text through REST, PostgreSQL
// and MySQL.
func FuzzFrontEnds(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	fe := newFrontEnds(f)
	f.Fuzz(func(t *testing.T, q string) {
		fe.mu.Lock()
		defer fe.mu.Unlock()
		// JSON carries the text REST sees; invalid UTF-8 is replaced on
		// the way, so PostgreSQL gets the same replaced text.
		b, _ := json.Marshal(q)
		var sent string
		if json.Unmarshal(b, &sent) != nil {
			t.Fatal("json round trip")
		}
		r, m := fe.rest(t, sent), fe.mysql(t, q)
		if strings.IndexByte(sent, 0) < 0 && strings.TrimSpace(sent) != "" {
			if p := fe.postgres(t, sent); p != r {
				t.Fatalf("%q: REST %q, PostgreSQL %q", sent, r, p)
			}
		}
		prefixed := " \n\t;; ;" + q
		if fe.mysql(t, prefixed) != m {
			t.Fatalf("%q: MySQL changed its verdict with a prefix", q)
		}
		if strings.TrimSpace(sent) != "" && fe.rest(t, " \n\t;; ;"+sent) != r {
			t.Fatalf("%q: REST changed its verdict with a prefix", sent)
		}
	})
}
