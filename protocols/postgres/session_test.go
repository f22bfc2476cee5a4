package postgres

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
)

type msg struct {
	typ  byte
	body []byte
}

// parseBackend splits server output into messages (a leading single 'S' or
// 'N' SSL answer is returned as a message with an empty body).
func parseBackend(t *testing.T, b []byte) []msg {
	t.Helper()
	var out []msg
	for len(b) > 0 {
		if len(b) < 5 {
			t.Fatalf("truncated output %q", b)
		}
		n := int(binary.BigEndian.Uint32(b[1:]))
		if n < 4 || len(b) < n+1 {
			t.Fatalf("bad length in %q", b)
		}
		out = append(out, msg{b[0], b[5 : n+1]})
		b = b[n+1:]
	}
	return out
}

// errField returns field f of an ErrorResponse body.
func errField(body []byte, f byte) string {
	for len(body) > 1 {
		k := body[0]
		v, rest, _ := cstring(body[1:])
		if k == f {
			return string(v)
		}
		body = rest
	}
	return ""
}

type rig struct {
	t     *testing.T
	ring  *core.Keyring
	env   *netio.Env
	info  *netio.ConnInfo
	sess  *Session
	obs   *countObs
	token string
}

type countObs struct {
	outcomes []netio.Outcome
	ids      []string
	limits   []netio.Limit
}

func (o *countObs) Authenticated(_ *netio.ConnInfo, c *core.Claims, err error, _ time.Time) {
	o.outcomes = append(o.outcomes, netio.OutcomeOf(err))
	if c != nil {
		o.ids = append(o.ids, c.ID.String())
	}
}
func (o *countObs) Refused(_ *netio.ConnInfo, oc netio.Outcome) { o.outcomes = append(o.outcomes, oc) }
func (o *countObs) Limit(l netio.Limit)                         { o.limits = append(o.limits, l) }

func newRig(t *testing.T, info netio.ConnInfo) *rig {
	ring := core.GenerateKeyring(time.Now())
	obs := &countObs{}
	r := &rig{t: t, ring: ring, info: &info, obs: obs}
	r.env = &netio.Env{Verifier: core.NewVerifier(ring, nil), Now: time.Now(), MaxPreAuthMessage: 16 << 10, MaxMessage: 1 << 20, Observer: obs}
	r.sess = New(Options{}).NewSession(r.info).(*Session)
	r.token = r.mint(core.AllScopes, 3600)
	return r
}

func (r *rig) mint(scopes core.ScopeSet, ttl int64) string {
	now := time.Now().Unix()
	tok, _, err := core.NewMinter(r.ring).Mint(nil, core.Claims{Type: core.TypeLive, ID: core.NewTokenID(), Account: 7, IssuedAt: now - 7200, ExpiresAt: now + ttl, Scopes: scopes})
	if err != nil {
		r.t.Fatal(err)
	}
	return string(tok)
}

// feed hands in to the session in one piece and returns the output and the
// last action; every byte must be consumed unless the session closed.
func (r *rig) feed(in []byte) ([]byte, netio.Action) {
	r.t.Helper()
	n, out, act := r.sess.Handle(r.env, in, nil)
	if act == netio.Continue && n != len(in) {
		r.t.Fatalf("consumed %d of %d", n, len(in))
	}
	return out, act
}

func startup(params ...string) []byte {
	b := []byte{0, 0, 0, 0, 0, 3, 0, 0}
	for _, p := range params {
		b = append(append(b, p...), 0)
	}
	b = append(b, 0)
	binary.BigEndian.PutUint32(b, uint32(len(b)))
	return b
}

func frontend(typ byte, body ...[]byte) []byte {
	b := []byte{typ, 0, 0, 0, 0}
	for _, p := range body {
		b = append(b, p...)
	}
	binary.BigEndian.PutUint32(b[1:], uint32(len(b)-1))
	return b
}

func cstr(s string) []byte { return append([]byte(s), 0) }

func (r *rig) login() {
	r.t.Helper()
	out, _ := r.feed(startup("user", "default", "database", "main"))
	if !bytes.Equal(out, []byte{'R', 0, 0, 0, 8, 0, 0, 0, 3}) {
		r.t.Fatalf("want AuthenticationCleartextPassword, got %q", out)
	}
	out, act := r.feed(frontend('p', cstr(r.token)))
	ms := parseBackend(r.t, out)
	if act != netio.Continue || ms[0].typ != 'R' || ms[len(ms)-1].typ != 'Z' || !r.sess.Authenticated() {
		r.t.Fatalf("login failed: %q", out)
	}
	params := map[string]string{}
	for _, m := range ms {
		if m.typ == 'S' {
			k, rest, _ := cstring(m.body)
			v, _, _ := cstring(rest)
			params[string(k)] = string(v)
		}
	}
	for k, v := range map[string]string{"client_encoding": "UTF8", "standard_conforming_strings": "on", "integer_datetimes": "on", "DateStyle": "ISO, MDY"} {
		if params[k] != v {
			r.t.Fatalf("ParameterStatus %s = %q, want %q", k, params[k], v)
		}
	}
}

func TestSSLRequestUpgrades(t *testing.T) {
	r := newRig(t, netio.ConnInfo{TLSAvailable: true})
	out, act := r.feed([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f})
	if string(out) != "S" || act != netio.UpgradeTLS {
		t.Fatalf("got %q %v", out, act)
	}
}

func TestSSLRequestDeclinedWithoutCertificate(t *testing.T) {
	r := newRig(t, netio.ConnInfo{PlaintextOK: true})
	out, act := r.feed([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f})
	if string(out) != "N" || act != netio.Continue {
		t.Fatalf("got %q %v", out, act)
	}
	r.login()
}

func TestGSSENCRequestDeclined(t *testing.T) {
	r := newRig(t, netio.ConnInfo{PlaintextOK: true})
	out, act := r.feed([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30})
	if string(out) != "N" || act != netio.Continue {
		t.Fatalf("got %q %v", out, act)
	}
	r.login()
}

func TestPlaintextRefusedBeforePassword(t *testing.T) {
	r := newRig(t, netio.ConnInfo{PlaintextOK: false})
	out, act := r.feed(startup("user", "default"))
	ms := parseBackend(t, out)
	if act != netio.Close || len(ms) != 1 || ms[0].typ != 'E' {
		t.Fatalf("got %q", out)
	}
	if c, m := errField(ms[0].body, 'C'), errField(ms[0].body, 'M'); c != "28000" || m != MsgInsecure {
		t.Fatalf("got %s %s", c, m)
	}
	if len(r.obs.outcomes) != 1 || r.obs.outcomes[0] != netio.OutcomeTLSRequired {
		t.Fatalf("outcomes %v", r.obs.outcomes)
	}
}

func TestTLSStartupAsksPassword(t *testing.T) {
	r := newRig(t, netio.ConnInfo{TLS: true})
	r.login()
}

func TestTokenErrors(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		tok        func(r *rig) string
		outcome    netio.Outcome
	}{
		{"tampered", core.MsgInvalid, func(r *rig) string { b := []byte(r.token); b[40] ^= 1; return string(b) }, netio.OutcomeInvalid},
		{"expired", core.MsgExpired, func(r *rig) string { return r.mint(core.AllScopes, -60) }, netio.OutcomeExpired},
		{"garbage", core.MsgInvalid, func(*rig) string { return "hunter2" }, netio.OutcomeInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, netio.ConnInfo{PlaintextOK: true})
			r.feed(startup("user", "default"))
			out, act := r.feed(frontend('p', cstr(tc.tok(r))))
			ms := parseBackend(t, out)
			if act != netio.Close || len(ms) != 1 || ms[0].typ != 'E' {
				t.Fatalf("got %q", out)
			}
			if c, m := errField(ms[0].body, 'C'), errField(ms[0].body, 'M'); c != "28P01" || m != tc.want {
				t.Fatalf("got %s %q", c, m)
			}
			if r.obs.outcomes[0] != tc.outcome {
				t.Fatalf("outcome %v", r.obs.outcomes)
			}
			// Only a token whose MAC verified may have its id logged.
			if verified := tc.outcome == netio.OutcomeExpired; (len(r.obs.ids) == 1) != verified || len(r.obs.ids) > 1 {
				t.Fatalf("ids observed: %v", r.obs.ids)
			}
			if strings.Contains(string(out), r.token[9:]) {
				t.Fatal("token echoed")
			}
		})
	}
}

func TestSimpleQueries(t *testing.T) {
	r := newRig(t, netio.ConnInfo{PlaintextOK: true})
	r.login()
	out, _ := r.feed(frontend('Q', cstr("SELECT 1;")))
	ms := parseBackend(t, out)
	if len(ms) != 4 || ms[0].typ != 'T' || ms[1].typ != 'D' || ms[2].typ != 'C' || ms[3].typ != 'Z' {
		t.Fatalf("got %q", out)
	}
	if oid := binary.BigEndian.Uint32(ms[0].body[2+len("?column?")+1+6:]); oid != oidInt4 {
		t.Fatalf("SELECT 1 type %d, want int4", oid)
	}
	if !bytes.HasSuffix(ms[1].body, []byte{0, 0, 0, 1, '1'}) {
		t.Fatalf("row %q", ms[1].body)
	}
	for q, want := range map[string]string{
		"select current_user":            "default",
		"SHOW server_version":            "16.4",
		"/* hi */ SELECT version() -- x": "PostgreSQL 16.4",
		"SELECT * FROM helios_whoami()":  "tok_",
	} {
		out, _ := r.feed(frontend('Q', cstr(q)))
		if ms := parseBackend(t, out); len(ms) != 4 || ms[1].typ != 'D' || !strings.Contains(string(ms[1].body), want) {
			t.Fatalf("%s: %q", q, out)
		}
	}
	out, _ = r.feed(frontend('Q', cstr("-- ping")))
	if ms := parseBackend(t, out); len(ms) != 2 || ms[0].typ != 'I' {
		t.Fatalf("empty query: %q", out)
	}
	out, _ = r.feed(frontend('Q', cstr("DELETE FROM users")))
	if ms := parseBackend(t, out); len(ms) != 2 || errField(ms[0].body, 'C') != "0A000" || !strings.Contains(errField(ms[0].body, 'M'), "no upstream") {
		t.Fatalf("other statement: %q", out)
	}
}

func TestMissingScope(t *testing.T) {
	r := newRig(t, netio.ConnInfo{PlaintextOK: true})
	r.token = r.mint(core.ScopeSet(0).With(core.ScopeBillingRead), 3600)
	r.login()
	out, _ := r.feed(frontend('Q', cstr("SELECT 1")))
	ms := parseBackend(t, out)
	if errField(ms[0].body, 'C') != "42501" || errField(ms[0].body, 'M') != "Token does not have required scope: database:read" {
		t.Fatalf("got %q", out)
	}
}

func TestExtendedProtocolBinaryInt4(t *testing.T) {
	r := newRig(t, netio.ConnInfo{PlaintextOK: true})
	r.login()
	in := frontend('P', cstr("s1"), cstr("SELECT 1"), []byte{0, 0})
	in = append(in, frontend('D', []byte{'S'}, cstr("s1"))...)
	in = append(in, frontend('S')...)
	out, _ := r.feed(in)
	if got := types(parseBackend(t, out)); got != "1tTZ" {
		t.Fatalf("prepare: %s", got)
	}
	in = frontend('B', cstr(""), cstr("s1"), []byte{0, 0, 0, 0, 0, 1, 0, 1})
	in = append(in, frontend('D', []byte{'P'}, cstr(""))...)
	in = append(in, frontend('E', cstr(""), []byte{0, 0, 0, 0})...)
	in = append(in, frontend('S')...)
	out, _ = r.feed(in)
	ms := parseBackend(t, out)
	if got := types(ms); got != "2TDCZ" {
		t.Fatalf("execute: %s", got)
	}
	if !bytes.Equal(ms[2].body, []byte{0, 1, 0, 0, 0, 4, 0, 0, 0, 1}) {
		t.Fatalf("binary int4 row %v", ms[2].body)
	}
	// An error discards until Sync.
	in = frontend('P', cstr(""), cstr("UPDATE t SET x=1"), []byte{0, 0})
	in = append(in, frontend('B', cstr(""), cstr(""), []byte{0, 0, 0, 0, 0, 0})...)
	in = append(in, frontend('E', cstr(""), []byte{0, 0, 0, 0})...)
	in = append(in, frontend('S')...)
	out, _ = r.feed(in)
	if got := types(parseBackend(t, out)); got != "EZ" {
		t.Fatalf("error path: %s", got)
	}
}

func types(ms []msg) string {
	var b []byte
	for _, m := range ms {
		b = append(b, m.typ)
	}
	return string(b)
}

func TestByteByByte(t *testing.T) {
	r := newRig(t, netio.ConnInfo{PlaintextOK: true})
	stream := append(startup("user", "default"), frontend('p', cstr(r.token))...)
	stream = append(stream, frontend('Q', cstr("SELECT 1"))...)
	var in, out []byte
	for _, c := range stream {
		in = append(in, c)
		n, o, act := r.sess.Handle(r.env, in, out)
		out = o
		if act != netio.Continue {
			t.Fatalf("action %v", act)
		}
		in = in[n:]
	}
	if len(in) != 0 || !strings.HasSuffix(types(parseBackend(t, out[9:])), "TDCZ") {
		t.Fatalf("left %d, out %q", len(in), out)
	}
}

func TestBadInput(t *testing.T) {
	for name, in := range map[string][]byte{
		"1GiB length":      {0x40, 0, 0, 0, 0, 3, 0, 0},
		"negative length":  {0xff, 0xff, 0xff, 0xff, 0, 3, 0, 0},
		"short length":     {0, 0, 0, 4, 0, 3, 0, 0},
		"protocol 2":       {0, 0, 0, 9, 0, 2, 0, 0, 0},
		"unterminated":     {0, 0, 0, 12, 0, 3, 0, 0, 'u', 's', 'e', 'r'},
		"http":             []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"cancel":           {0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 1, 0, 0, 0, 2},
		"password first":   frontend('p', cstr("x")),
		"huge after login": nil,
	} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, netio.ConnInfo{PlaintextOK: true})
			if in == nil {
				r.login()
				in = []byte{'Q', 0x7f, 0xff, 0xff, 0xff}
			}
			_, out, act := r.sess.Handle(r.env, in, nil)
			if act != netio.Close {
				t.Fatalf("action %v, out %q", act, out)
			}
			if name == "huge after login" && (len(r.obs.limits) != 1 || r.obs.limits[0] != netio.LimitMessageSize) {
				t.Fatalf("limits observed: %v", r.obs.limits)
			}
		})
	}
	r := newRig(t, netio.ConnInfo{PlaintextOK: true})
	if n, out, act := r.sess.Handle(r.env, startup("user", "default")[:7], nil); n != 0 || len(out) != 0 || act != netio.Continue {
		t.Fatal("a truncated startup packet must wait for more bytes")
	}
}

func TestOpenSessionEndsWhenItsTokenIsRevoked(t *testing.T) {
	r := newRig(t, netio.ConnInfo{PlaintextOK: true})
	revs := core.NewMemoryRevocations()
	r.env.Verifier = core.NewVerifier(r.ring, revs)
	r.login()
	out, _ := r.feed(frontend('Q', cstr("SELECT 1")))
	if types(parseBackend(t, out)) != "TDCZ" {
		t.Fatalf("before revocation: %q", out)
	}
	revs.RevokeToken(r.sess.claims.ID, r.sess.claims.ExpiresAt)
	out, act := r.feed(frontend('Q', cstr("SELECT 1")))
	ms := parseBackend(t, out)
	if act != netio.Close || errField(ms[0].body, 'C') != "28P01" || errField(ms[0].body, 'M') != core.MsgRevoked {
		t.Fatalf("after revocation: %q %v", out, act)
	}
}

func TestOpenSessionEndsWhenItsTokenExpires(t *testing.T) {
	r := newRig(t, netio.ConnInfo{PlaintextOK: true})
	r.login()
	r.env.Now = time.Unix(r.sess.claims.ExpiresAt, 0)
	out, act := r.feed(frontend('Q', cstr("SELECT 1")))
	if ms := parseBackend(t, out); act != netio.Close || errField(ms[0].body, 'M') != core.MsgExpired {
		t.Fatalf("after expiry: %q %v", out, act)
	}
}

func TestProtocol32NegotiatedDown(t *testing.T) {
	r := newRig(t, netio.ConnInfo{PlaintextOK: true})
	in := startup("user", "default", "_pq_.test", "1")
	in[7] = 2 // protocol 3.2
	out, act := r.feed(in)
	ms := parseBackend(t, out)
	if act != netio.Continue || types(ms) != "vR" {
		t.Fatalf("got %q", out)
	}
	if minor := binary.BigEndian.Uint32(ms[0].body); minor != 0 || !bytes.Contains(ms[0].body, []byte("_pq_.test")) {
		t.Fatalf("NegotiateProtocolVersion %q", ms[0].body)
	}
}

// TestOptionSettings: PGOPTIONS's settings pass on as PostgreSQL reads
// them; other server switches are refused by name.
func TestOptionSettings(t *testing.T) {
	got, err := optionSettings(`-c search_path=app,public --statement-timeout=5s -cwork_mem=64MB -c application_name=a\ b`)
	want := [][2]string{{"search_path", "app,public"}, {"statement_timeout", "5s"}, {"work_mem", "64MB"}, {"application_name", "a b"}}
	if err != nil || len(got) != len(want) {
		t.Fatalf("%v %v", got, err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("setting %d: %v, want %v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"-B 100", "-c", "-c nameonly", "--=x"} {
		if _, err := optionSettings(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}
