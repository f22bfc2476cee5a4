package issuer

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
)

// fastPasswords keeps unit tests quick; the daemon uses DefaultPasswordParams.
var fastPasswords = PasswordParams{Time: 1, Memory: 64, Threads: 1}

type fixture struct {
	store *Store
	svc   *Service
	ring  *core.Keyring
	v     *core.Verifier
}

func newFixture(t testing.TB, mod func(*Options)) *fixture {
	t.Helper()
	store := openStore(t, t.TempDir())
	ring := core.GenerateKeyring(time.Now())
	o := DefaultOptions()
	o.Password = fastPasswords
	if mod != nil {
		mod(&o)
	}
	svc := NewService(store, ring, o)
	t.Cleanup(func() { svc.Close(); store.Close() })
	return &fixture{store: store, svc: svc, ring: ring, v: core.NewVerifier(ring, store.Revocations())}
}

func (f *fixture) verify(t testing.TB, tok string) (core.Claims, error) {
	t.Helper()
	return f.v.Verify([]byte(tok), time.Now())
}

var local = netip.MustParseAddr("127.0.0.1")

func (f *fixture) user(t testing.TB, email string) (string, core.Claims) {
	t.Helper()
	if _, err := f.svc.Signup(email, "correct-horse-battery", local); err != nil {
		t.Fatal(err)
	}
	tok, _, err := f.svc.Login(email, "correct-horse-battery", local)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.verify(t, tok)
	if err != nil {
		t.Fatal(err)
	}
	return tok, c
}

func apiCode(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

func TestSignupValidation(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct{ email, pw, code string }{
		{"not-an-email", "correct-horse-battery", CodeInvalidEmail},
		{"Ann <ann@example.com>", "correct-horse-battery", CodeInvalidEmail},
		{"ann@localhost", "correct-horse-battery", CodeInvalidEmail},
		{"ann@example.com", "short", CodeWeakPassword},
		{"ann@example.com", "password1", CodeWeakPassword},
		{"ann@example.com", "ann@example.com", CodeWeakPassword},
		{"ann@example.com", "aaaaaaaaaaaa", CodeWeakPassword},
		{"ann@example.com", "éééééééé", CodeWeakPassword},
		{"ann@example.com", "\ufffd\ufffd\ufffd\ufffd\ufffd\ufffd\ufffd\ufffd", CodeWeakPassword},
	} {
		if _, err := f.svc.Signup(tc.email, tc.pw, local); apiCode(err) != tc.code {
			t.Errorf("signup(%q, %q): %v, want %s", tc.email, tc.pw, err, tc.code)
		}
	}
	if f.store.LastSeq() != 1 { // the default database only
		t.Fatal("refused signups changed state")
	}
	if _, err := f.svc.Signup("ann@example.com", "correct-horse-battery", local); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Signup("ANN@example.com", "correct-horse-battery", local); apiCode(err) != CodeEmailTaken {
		t.Fatalf("duplicate: %v", err)
	}
}

func TestLoginFailuresAndRateLimit(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.LoginPerEmail = 3 })
	f.user(t, "ann@example.com")
	for i := range 3 {
		if _, _, err := f.svc.Login("ann@example.com", "wrong-password!", local); apiCode(err) != CodeInvalidCredentials {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	_, _, err := f.svc.Login("ann@example.com", "correct-horse-battery", local)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != CodeRateLimited || ae.RetryAfter < 1 {
		t.Fatalf("after 3 failures: %v", err)
	}
	// Unknown email: the same answer as a wrong password.
	if _, _, err := f.svc.Login("nobody@example.com", "correct-horse-battery", local); apiCode(err) != CodeInvalidCredentials {
		t.Fatalf("unknown email: %v", err)
	}
}

// TestFailedLoginCostsTheSame: an unknown email still costs one argon2id
// hash (with the daemon's parameters).
func TestFailedLoginCostsTheSame(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Password = DefaultPasswordParams; o.LoginPerEmail, o.LoginPerIP = 0, 0 })
	if _, err := f.svc.Signup("ann@example.com", "correct-horse-battery", local); err != nil {
		t.Fatal(err)
	}
	// The process's CPU time, not the wall clock: a loaded machine
	// stretches wall time by whole seconds, but not the work a login does.
	// Interleaved, best of seven each. An unknown email that skipped the
	// password hash would cost a hundredth of a known one.
	once := func(email string) time.Duration {
		start := cpuTime(t)
		f.svc.Login(email, "wrong-password!", local)
		return cpuTime(t) - start
	}
	known, unknown := time.Hour, time.Hour
	for range 7 {
		known = min(known, once("ann@example.com"))
		unknown = min(unknown, once("nobody@example.com"))
	}
	t.Logf("failed login: known email %v, unknown email %v", known, unknown)
	if unknown < known/2 || known < unknown/2 {
		t.Fatalf("failed logins differ in cost: known %v, unknown %v", known, unknown)
	}
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestCreateTokenRules(t *testing.T) {
	f := newFixture(t, nil)
	_, login := f.user(t, "ann@example.com")
	days := 400
	for name, tc := range map[string]struct {
		req  CreateTokenRequest
		code string
	}{
		"no name":          {CreateTokenRequest{Scopes: []string{"database:read"}}, CodeInvalidRequest},
		"unknown scope":    {CreateTokenRequest{Name: "x", Scopes: []string{"database:fly"}}, CodeUnknownScope},
		"svc no scopes":    {CreateTokenRequest{Name: "x", Type: "service"}, CodeInvalidRequest},
		"empty scopes":     {CreateTokenRequest{Name: "x", Scopes: []string{}}, CodeInvalidRequest},
		"bad type":         {CreateTokenRequest{Name: "x", Type: "admin"}, CodeInvalidRequest},
		"bad ip":           {CreateTokenRequest{Name: "x", AllowedIPs: []string{"300.1.1.1"}}, CodeInvalidRequest},
		"too many days":    {CreateTokenRequest{Name: "x", ExpiresInDays: &days}, CodeInvalidRequest},
		"test beyond 24 h": {CreateTokenRequest{Name: "x", Type: "test", ExpiresInDays: new(int(2))}, CodeInvalidRequest},
	} {
		if _, _, err := f.svc.CreateToken(&login, &tc.req); apiCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", name, err, tc.code)
		}
	}

	// A read-only live token creates nothing, not even a narrower token
	// (the account endpoint table in handlers_test.go covers every kind).
	ro, _, err := f.svc.CreateToken(&login, &CreateTokenRequest{Name: "ro", Scopes: []string{"database:read", "metrics:read"}})
	if err != nil {
		t.Fatal(err)
	}
	roc, _ := f.verify(t, ro)
	for _, req := range []CreateTokenRequest{{Name: "x", Scopes: []string{"database:write"}}, {Name: "x", Scopes: []string{"database:read"}}, {Name: "x"}} {
		if _, _, err := f.svc.CreateToken(&roc, &req); apiCode(err) != core.CodeForbidden {
			t.Fatalf("read-only token creates %+v: %v", req, err)
		}
	}
	// A token created from the login without scopes has every scope and
	// the login's session.
	full, rec, err := f.svc.CreateToken(&login, &CreateTokenRequest{Name: "full"})
	if err != nil || rec.Scopes != core.AllScopes || rec.Session != login.ID.String() {
		t.Fatalf("default scopes %v session %q: %v", rec, rec.Session, err)
	}
	fc, _ := f.verify(t, full)
	if _, rec, err := f.svc.CreateToken(&fc, &CreateTokenRequest{Name: "grandchild", Scopes: []string{"branch:*"}}); err != nil ||
		rec.Scopes.Strings()[0] != "branch:read" || rec.Session != login.ID.String() {
		t.Fatalf("grandchild %+v: %v", rec, err)
	}

	// Service tokens cannot manage tokens; test tokens carry FlagTestOnly;
	// allowed_ips sets FlagIPPolicy and the policy.
	svcTok, _, err := f.svc.CreateToken(&login, &CreateTokenRequest{Name: "ci", Type: "service", Scopes: []string{"branch:*"},
		AllowedIPs: []string{"203.0.113.50", "10.0.0.0/8"}})
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := f.verify(t, svcTok)
	if sc.Type != core.TypeService || sc.Flags&core.FlagIPPolicy == 0 || sc.ExpiresAt-sc.IssuedAt != 90*86400 {
		t.Fatalf("service claims %+v", sc)
	}
	ips := f.store.Policy()
	if !ips.AllowedFrom(sc.ID, netip.MustParseAddr("10.1.2.3")) || ips.AllowedFrom(sc.ID, netip.MustParseAddr("203.0.113.51")) {
		t.Fatal("IP policy wrong")
	}
	if _, err := f.svc.ListTokens(&sc); apiCode(err) != core.CodeForbidden {
		t.Fatalf("service token listing: %v", err)
	}
	testTok, _, _ := f.svc.CreateToken(&login, &CreateTokenRequest{Name: "t", Type: "test"})
	tc, _ := f.verify(t, testTok)
	if tc.Flags&core.FlagTestOnly == 0 || tc.ExpiresAt-tc.IssuedAt != 86400 {
		t.Fatalf("test claims %+v", tc)
	}
	list, err := f.svc.ListTokens(&login)
	if err != nil || len(list) != 6 {
		t.Fatalf("list: %d tokens, %v", len(list), err)
	}
}

func TestRevokeLogoutRefresh(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.RefreshGrace = time.Second })
	tok, login := f.user(t, "ann@example.com")
	_, bob := f.user(t, "bob@example.com")
	app, rec, _ := f.svc.CreateToken(&login, &CreateTokenRequest{Name: "app-v1"})
	// Bob cannot revoke Ann's token: it is "not found" for him.
	if _, err := f.svc.RevokeToken(&bob, rec.ID.String()); apiCode(err) != CodeTokenNotFound {
		t.Fatalf("cross-account revoke: %v", err)
	}
	if _, err := f.svc.RevokeToken(&login, "tok_nope"); apiCode(err) != CodeTokenNotFound {
		t.Fatalf("malformed id: %v", err)
	}
	if _, err := f.svc.RevokeToken(&login, rec.ID.String()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.verify(t, app); !errors.Is(err, core.ErrRevoked) {
		t.Fatalf("revoked token verifies: %v", err)
	}

	newTok, _, err := f.svc.Refresh(&login)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Refresh(&login); apiCode(err) != CodeAlreadyRefreshed {
		t.Fatalf("second refresh: %v", err)
	}
	if _, err := f.verify(t, tok); err != nil {
		t.Fatalf("old token during grace: %v", err)
	}
	nc, err := f.verify(t, newTok)
	if err != nil || nc.Scopes != core.AllScopes {
		t.Fatalf("new token %+v: %v", nc, err)
	}
	deadline := time.Now().Add(8 * time.Second)
	for {
		_, err := f.verify(t, tok)
		if errors.Is(err, core.ErrRevoked) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("old token long after grace: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	if _, err := f.svc.LogoutAll(&nc); err != nil {
		t.Fatal(err)
	}
	if _, err := f.verify(t, newTok); !errors.Is(err, core.ErrLoggedOut) {
		t.Fatalf("after logout-all: %v", err)
	}
	again, _, err := f.svc.Login("ann@example.com", "correct-horse-battery", local)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.verify(t, again); err != nil {
		t.Fatalf("token minted right after logout-all: %v", err)
	}
	if _, err := f.verify(t, bobTok(t, f)); err != nil {
		t.Fatalf("logout-all touched another account: %v", err)
	}
}

func bobTok(t *testing.T, f *fixture) string {
	tok, _, err := f.svc.Login("bob@example.com", "correct-horse-battery", local)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestUsageFlush(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.UsageFlush = 50 * time.Millisecond })
	_, login := f.user(t, "ann@example.com")
	at := time.Now().Unix()
	f.svc.Used(login.ID, login.Account, at)
	deadline := time.Now().Add(3 * time.Second)
	for {
		list, _ := f.svc.ListTokens(&login)
		if len(list) == 1 && list[0].LastUsed != nil && list[0].LastUsed.Unix() == at {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("last_used not flushed: %+v", list)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if a := testing.AllocsPerRun(100, func() { f.svc.Used(login.ID, login.Account, at) }); a != 0 {
		t.Fatalf("Used allocates %v", a)
	}
}
