package postgres

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/policyset"
	"github.com/heliosdb/auth/netio"
)

type usageLog struct{ ids []core.TokenID }

func (u *usageLog) Record(id core.TokenID, _ uint64, _ int64) { u.ids = append(u.ids, id) }

// policyLogin runs a startup for database db and a password message with a
// token carrying flags, from addr, and returns the server's messages.
func policyLogin(t *testing.T, pol core.Policy, usage core.UsageRecorder, addr string, flags core.Flags, db string) ([]msg, *countObs) {
	t.Helper()
	r := newRig(t, netio.ConnInfo{Remote: netip.MustParseAddrPort(addr), TLS: true, PlaintextOK: true})
	r.sess = New(Options{Policy: pol, Usage: usage}).NewSession(r.info).(*Session)
	now := time.Now().Unix()
	tok, c, err := core.NewMinter(r.ring).Mint(nil, core.Claims{Type: core.TypeLive, ID: core.NewTokenID(), Account: 7,
		IssuedAt: now, ExpiresAt: now + 60, Scopes: core.AllScopes, Flags: flags})
	if err != nil {
		t.Fatal(err)
	}
	if ps, ok := pol.(*policyset.Set); ok && flags&core.FlagIPPolicy != 0 {
		ps.SetIPs(c.ID, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, now+60)
	}
	params := []string{"user", "default"}
	if db != "" {
		params = append(params, "database", db)
	}
	r.feed(startup(params...))
	out, _ := r.feed(frontend('p', cstr(string(tok))))
	return parseBackend(t, out), r.obs
}

func TestPolicyIPAllowlist(t *testing.T) {
	pol := policyset.New()
	pol.SetDatabase("main", false)
	usage := &usageLog{}
	ms, obs := policyLogin(t, pol, usage, "10.1.2.3:5000", core.FlagIPPolicy, "main")
	if ms[len(ms)-1].typ != 'Z' || len(usage.ids) != 1 || obs.outcomes[0] != netio.OutcomeOK {
		t.Fatalf("allowed address refused: %q", ms)
	}
	ms, obs = policyLogin(t, pol, usage, "192.0.2.1:5000", core.FlagIPPolicy, "main")
	if ms[0].typ != 'E' || errField(ms[0].body, 'C') != "28000" || errField(ms[0].body, 'M') != core.ErrAddrNotAllowed.Message {
		t.Fatalf("disallowed address: %q", ms)
	}
	if obs.outcomes[0] != netio.OutcomeForbidden || len(usage.ids) != 1 {
		t.Fatalf("outcome %v, %d uses", obs.outcomes, len(usage.ids))
	}
	if ms, _ := policyLogin(t, nil, nil, "10.1.2.3:5000", core.FlagIPPolicy, "main"); ms[0].typ != 'E' {
		t.Fatal("an allowlisted token passed without a policy (must fail closed)")
	}
}

func TestPolicyTestDatabases(t *testing.T) {
	pol := policyset.New()
	pol.SetDatabase("main", false)
	pol.SetDatabase("scratch", true)
	for db, ok := range map[string]bool{"main": false, "scratch": true, "": false, "nosuch": false} {
		ms, _ := policyLogin(t, pol, nil, "127.0.0.1:5000", core.FlagTestOnly, db)
		if ok != (ms[len(ms)-1].typ == 'Z') {
			t.Fatalf("test token on %q: %q", db, ms)
		}
		if !ok && (errField(ms[0].body, 'C') != "42501" || errField(ms[0].body, 'S') != "FATAL") {
			t.Fatalf("test token on %q: %q", db, ms)
		}
	}
	if ms, _ := policyLogin(t, pol, nil, "127.0.0.1:5000", 0, "main"); ms[len(ms)-1].typ != 'Z' {
		t.Fatal("a live token was refused on main")
	}
}

// TestNamesChecked: a database that is not registered gets FATAL 3D000
// after authentication (the implied name "default" and a registered name
// pass), and a user other than default gets FATAL 28P01 right after the
// StartupMessage, before the password is asked for.
func TestNamesChecked(t *testing.T) {
	pol := policyset.New()
	pol.SetDatabase("main", false)
	for db, want := range map[string]string{"main": "", "": "", "default": "", "nope": "3D000"} {
		ms, _ := policyLogin(t, pol, nil, "127.0.0.1:5000", 0, db)
		last := ms[len(ms)-1]
		if want == "" && last.typ != 'Z' {
			t.Fatalf("database %q refused: %q", db, ms)
		}
		if want != "" && (last.typ != 'E' || errField(last.body, 'C') != want || errField(last.body, 'S') != "FATAL" ||
			errField(last.body, 'M') != `database "nope" does not exist`) {
			t.Fatalf("database %q: %q", db, ms)
		}
	}
	r := newRig(t, netio.ConnInfo{Remote: netip.MustParseAddrPort("127.0.0.1:5000"), TLS: true, PlaintextOK: true})
	r.sess = New(Options{Policy: pol}).NewSession(r.info).(*Session)
	out, act := r.feed(startup("user", "alice", "database", "main"))
	ms := parseBackend(t, out)
	if act != netio.Close || len(ms) != 1 || ms[0].typ != 'E' || errField(ms[0].body, 'C') != "28P01" ||
		errField(ms[0].body, 'M') != `password authentication failed for user "alice"` ||
		!strings.Contains(errField(ms[0].body, 'H'), "connect as user default with the token as the password") {
		t.Fatalf("user alice: %v %q", act, ms)
	}
	if len(r.obs.outcomes) != 1 || r.obs.outcomes[0] != netio.OutcomeInvalid {
		t.Fatalf("outcomes %v", r.obs.outcomes)
	}
}
