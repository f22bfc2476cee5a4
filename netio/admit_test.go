package netio

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/policyset"
)

// observation is one Observer.Authenticated call as a recordObserver saw
// it: the claims' id is copied, since the pointer is valid only during the
// call.
type observation struct {
	verified bool // claims was non-nil
	id       core.TokenID
	err      error
	started  time.Time
}

// recordObserver records what Admit reports.
type recordObserver struct {
	seen   []observation
	limits []Limit
}

func (o *recordObserver) Authenticated(_ *ConnInfo, c *core.Claims, err error, started time.Time) {
	ob := observation{verified: c != nil, err: err, started: started}
	if c != nil {
		ob.id = c.ID
	}
	o.seen = append(o.seen, ob)
}
func (o *recordObserver) Refused(*ConnInfo, Outcome) {}
func (o *recordObserver) Limit(l Limit)              { o.limits = append(o.limits, l) }

// use is one recorded last-used time.
type use struct {
	id      core.TokenID
	account uint64
	at      int64
}

type usageLog struct{ uses []use }

func (u *usageLog) Record(id core.TokenID, account uint64, at int64) {
	u.uses = append(u.uses, use{id, account, at})
}

// admitFixture is a keyring, a revocation view, a policy (a real
// policyset) and an Env whose observer and usage recorder record.
type admitFixture struct {
	ring  *core.Keyring
	revs  *core.MemoryRevocations
	pol   *policyset.Set
	obs   *recordObserver
	usage *usageLog
	env   *Env
	adm   Admission
	now   time.Time
	info  *ConnInfo
}

func newAdmitFixture(t *testing.T) *admitFixture {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	f := &admitFixture{ring: core.GenerateKeyring(now.Add(-time.Hour)), revs: core.NewMemoryRevocations(),
		pol: policyset.New(), obs: &recordObserver{}, usage: &usageLog{}, now: now,
		info: &ConnInfo{Remote: netip.MustParseAddrPort("192.0.2.10:40000")}}
	f.env = &Env{Verifier: core.NewVerifier(f.ring, f.revs), Now: now, Observer: f.obs}
	f.adm = Admission{Policy: f.pol, Usage: f.usage}
	f.pol.SetDatabase("ci_test", true)
	f.pol.SetDatabase("prod", false)
	return f
}

// mint returns a token of type typ with flags, issued a minute ago and
// expiring after life, and its claims.
func (f *admitFixture) mint(t *testing.T, typ core.TokenType, flags core.Flags, life time.Duration) ([]byte, core.Claims) {
	t.Helper()
	c := core.Claims{Type: typ, ID: core.NewTokenID(), Account: 77, IssuedAt: f.now.Add(-time.Minute).Unix(),
		ExpiresAt: f.now.Add(life).Unix(), Scopes: core.AllScopes, Flags: flags}
	tok, c, err := core.NewMinter(f.ring).Mint(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok, c
}

// TestAdmitRefusals: every refusal reason comes back as its error, is
// observed (with the claims exactly when the token's MAC verified), leaves
// the caller's claims untouched and records no use; a success fills the
// claims, is observed with them and recorded once.
func TestAdmitRefusals(t *testing.T) {
	f := newAdmitFixture(t)
	live, liveC := f.mint(t, core.TypeLive, 0, time.Hour)
	expired, expiredC := f.mint(t, core.TypeLive, 0, -time.Second)
	revoked, revokedC := f.mint(t, core.TypeLive, 0, time.Hour)
	f.revs.RevokeToken(revokedC.ID, revokedC.ExpiresAt)
	fenced, fencedC := f.mint(t, core.TypeService, core.FlagIPPolicy, time.Hour)
	f.pol.SetIPs(fencedC.ID, []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, fencedC.ExpiresAt)
	inside, insideC := f.mint(t, core.TypeService, core.FlagIPPolicy, time.Hour)
	f.pol.SetIPs(insideC.ID, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, insideC.ExpiresAt)
	test, testC := f.mint(t, core.TypeTest, core.FlagTestOnly, time.Hour)
	// Signed by a key with the same id and another secret: only the MAC
	// tells.
	forged, _, err := core.NewMinter(core.GenerateKeyring(f.now)).Mint(nil, liveC)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name     string
		token    []byte
		database string
		want     error // nil: admitted
		verified bool  // the observer got the claims
		id       core.TokenID
	}{
		{"missing", nil, "prod", core.ErrMissing, false, core.TokenID{}},
		{"garbage", []byte("hdb_live_nonsense"), "prod", core.ErrMalformed, false, core.TokenID{}},
		{"forged", forged, "prod", core.ErrBadMAC, false, core.TokenID{}},
		{"expired", expired, "prod", core.ErrExpired, true, expiredC.ID},
		{"revoked", revoked, "prod", core.ErrRevoked, true, revokedC.ID},
		{"ip not allowed", fenced, "prod", core.ErrAddrNotAllowed, true, fencedC.ID},
		{"test token on a live database", test, "prod", core.ErrTestDatabaseOnly, true, testC.ID},
		{"test token on an unknown database", test, "nowhere", core.ErrTestDatabaseOnly, true, testC.ID},
		{"live", live, "prod", nil, true, liveC.ID},
		{"ip allowed", inside, "prod", nil, true, insideC.ID},
		{"test token on a test database", test, "ci_test", nil, true, testC.ID},
		{"test token naming no database", test, "", nil, true, testC.ID},
	}
	for _, tc := range cases {
		f.obs.seen, f.usage.uses = nil, nil
		before := core.Claims{Account: 12345} // must survive a refusal
		c := before
		var db []byte
		if tc.database != "" {
			db = []byte(tc.database)
		}
		err := f.env.Admit(&f.adm, f.info, &c, tc.token, db)
		if err != tc.want {
			t.Fatalf("%s: got %v, want %v", tc.name, err, tc.want)
		}
		if len(f.obs.seen) != 1 {
			t.Fatalf("%s: %d observations", tc.name, len(f.obs.seen))
		}
		ob := f.obs.seen[0]
		if ob.err != tc.want || ob.verified != tc.verified || ob.id != tc.id || !ob.started.Equal(f.now) {
			t.Fatalf("%s: observed %+v, want err %v, verified %v, id %v", tc.name, ob, tc.want, tc.verified, tc.id)
		}
		if tc.want != nil {
			if c != before {
				t.Fatalf("%s: a refusal changed the claims: %+v", tc.name, c)
			}
			if len(f.usage.uses) != 0 {
				t.Fatalf("%s: a refusal was recorded as a use", tc.name)
			}
			continue
		}
		if c.ID != tc.id || !c.Verified() || c.Account != 77 {
			t.Fatalf("%s: claims %+v", tc.name, c)
		}
		if len(f.usage.uses) != 1 || f.usage.uses[0] != (use{tc.id, 77, f.now.Unix()}) {
			t.Fatalf("%s: uses %+v", tc.name, f.usage.uses)
		}
	}
}

// TestAdmitNilPolicyFailsClosed: without a policy, a token with an IP
// allowlist and a test token naming a database are refused.
func TestAdmitNilPolicyFailsClosed(t *testing.T) {
	f := newAdmitFixture(t)
	fenced, fencedC := f.mint(t, core.TypeService, core.FlagIPPolicy, time.Hour)
	f.pol.SetIPs(fencedC.ID, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, fencedC.ExpiresAt)
	test, _ := f.mint(t, core.TypeTest, core.FlagTestOnly, time.Hour)
	var none Admission
	var c core.Claims
	if err := f.env.Admit(&none, f.info, &c, fenced, nil); err != core.ErrAddrNotAllowed {
		t.Fatalf("allowlist without a policy: %v", err)
	}
	if err := f.env.Admit(&none, f.info, &c, test, []byte("ci_test")); err != core.ErrTestDatabaseOnly {
		t.Fatalf("test token without a policy: %v", err)
	}
}

// TestAdmitBinding: with OtherToken set, a connection admitted once takes
// the same token again (observed and recorded again) and refuses another,
// observed with the other token's claims and leaving its own as they were.
func TestAdmitBinding(t *testing.T) {
	f := newAdmitFixture(t)
	other := &core.Error{Kind: core.KindForbidden, Message: "bound"}
	f.adm.OtherToken = other
	first, firstC := f.mint(t, core.TypeLive, 0, time.Hour)
	second, secondC := f.mint(t, core.TypeLive, 0, time.Hour)
	var c core.Claims
	if err := f.env.Admit(&f.adm, f.info, &c, first, nil); err != nil || c.ID != firstC.ID {
		t.Fatalf("first: %v", err)
	}
	if err := f.env.Admit(&f.adm, f.info, &c, first, nil); err != nil || c.ID != firstC.ID {
		t.Fatalf("the same token again: %v", err)
	}
	if err := f.env.Admit(&f.adm, f.info, &c, second, nil); err != other || c.ID != firstC.ID {
		t.Fatalf("another token: %v, bound to %v", err, c.ID)
	}
	if ob := f.obs.seen[2]; !ob.verified || ob.id != secondC.ID || ob.err != other {
		t.Fatalf("the refusal was observed as %+v", ob)
	}
	if len(f.usage.uses) != 2 {
		t.Fatalf("uses %+v", f.usage.uses)
	}
	// Without OtherToken the second token replaces the first.
	f.adm.OtherToken = nil
	if err := f.env.Admit(&f.adm, f.info, &c, second, nil); err != nil || c.ID != secondC.ID {
		t.Fatalf("unbound: %v, %v", err, c.ID)
	}
}

// TestAdmitClaims: claims cached from an admission are re-checked as a
// fresh verification would (revocation, expiry even when open sessions
// outlive their tokens), then go through the same policy, observer and
// usage steps.
func TestAdmitClaims(t *testing.T) {
	f := newAdmitFixture(t)
	_, liveC := f.mint(t, core.TypeLive, 0, time.Hour)
	_, testC := f.mint(t, core.TypeTest, core.FlagTestOnly, time.Hour)
	_, fencedC := f.mint(t, core.TypeService, core.FlagIPPolicy, time.Hour)
	f.pol.SetIPs(fencedC.ID, []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, fencedC.ExpiresAt)
	_, expiredC := f.mint(t, core.TypeLive, 0, -time.Second)
	f.env.keepExpired = true // Config.SessionExpiry "keep": not for a new connection

	cases := []struct {
		name     string
		c        core.Claims
		database string
		want     error
	}{
		{"live", liveC, "prod", nil},
		{"test token on a test database", testC, "ci_test", nil},
		{"test token on a live database", testC, "prod", core.ErrTestDatabaseOnly},
		{"ip not allowed", fencedC, "", core.ErrAddrNotAllowed},
		{"expired", expiredC, "", core.ErrExpired},
	}
	for _, tc := range cases {
		f.obs.seen, f.usage.uses = nil, nil
		c := tc.c
		err := f.env.AdmitClaims(&f.adm, f.info, &c, []byte(tc.database))
		if err != tc.want || c != tc.c {
			t.Fatalf("%s: %v (claims changed: %v)", tc.name, err, c != tc.c)
		}
		if len(f.obs.seen) != 1 || f.obs.seen[0].err != tc.want || !f.obs.seen[0].verified || f.obs.seen[0].id != tc.c.ID {
			t.Fatalf("%s: observed %+v", tc.name, f.obs.seen)
		}
		if (len(f.usage.uses) == 1) != (tc.want == nil) || len(f.usage.uses) > 1 {
			t.Fatalf("%s: uses %+v", tc.name, f.usage.uses)
		}
	}
	f.obs.seen, f.usage.uses = nil, nil
	f.revs.RevokeToken(liveC.ID, liveC.ExpiresAt)
	c := liveC
	if err := f.env.AdmitClaims(&f.adm, f.info, &c, nil); err != core.ErrRevoked || len(f.usage.uses) != 0 {
		t.Fatalf("revoked since: %v, uses %v", err, f.usage.uses)
	}
}

// TestAdmitAllocatesNothing: admitting a token (observed by the
// transport's Metrics, with a real policy), refusing one, and admitting
// cached claims allocate nothing.
func TestAdmitAllocatesNothing(t *testing.T) {
	f := newAdmitFixture(t)
	metrics := NewMetrics("admitalloc", slog.New(slog.DiscardHandler))
	f.adm.Usage = nil // the test recorder appends
	live, liveC := f.mint(t, core.TypeLive, 0, time.Hour)
	test, _ := f.mint(t, core.TypeTest, core.FlagTestOnly, time.Hour)
	expired, _ := f.mint(t, core.TypeLive, 0, -time.Second)
	var c core.Claims
	ci, prod := []byte("ci_test"), []byte("prod")
	if err := f.env.Admit(&f.adm, f.info, &c, live, prod); err != nil { // meets the key
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(200, func() {
		f.env.Observer = metrics // a failure is logged: slog allocates
		_ = f.env.Admit(&f.adm, f.info, &c, live, prod)
		_ = f.env.Admit(&f.adm, f.info, &c, test, ci)
		_ = f.env.AdmitClaims(&f.adm, f.info, &liveC, prod)
		f.env.Observer = nopObserver{}
		_ = f.env.Admit(&f.adm, f.info, &c, test, prod)
		_ = f.env.Admit(&f.adm, f.info, &c, expired, prod)
		_ = f.env.Admit(&f.adm, f.info, &c, []byte("hdb_live_x"), prod)
	}); n != 0 {
		t.Fatalf("%v allocations per round of admissions", n)
	}
}

// nopObserver records nothing (netiotest.NopObserver, which imports this
// package).
type nopObserver struct{}

func (nopObserver) Authenticated(*ConnInfo, *core.Claims, error, time.Time) {}
func (nopObserver) Refused(*ConnInfo, Outcome)                              {}
func (nopObserver) Limit(Limit)                                             {}
