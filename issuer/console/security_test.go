package console

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/issuer"
)

// newTokenForm is a valid Create token form.
func newTokenForm(csrf, name string) url.Values {
	return url.Values{"csrf": {csrf}, "name": {name}, "type": {"live"}, "scope": {"database:read"}}
}

// TestCrossOriginPostRefused: a form posted from another origin — another
// port of the same host included, which SameSite does not stop — is
// refused with 403 and creates nothing, even when it carries the right
// CSRF value; so is a form without the CSRF value.
func TestCrossOriginPostRefused(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.signup(t, "eve-target@example.com")
	cases := []struct {
		name    string
		form    url.Values
		headers []string
	}{
		{"other origin", newTokenForm(tok, "x1"), []string{"Origin", "http://127.0.0.1:1", "Sec-Fetch-Site", ""}},
		{"same-site other port", newTokenForm(tok, "x2"), []string{"Origin", "http://127.0.0.1:1", "Sec-Fetch-Site", "same-site"}},
		{"cross-site fetch metadata", newTokenForm(tok, "x3"), []string{"Sec-Fetch-Site", "cross-site", "Origin", ""}},
		{"null origin", newTokenForm(tok, "x4"), []string{"Origin", "null", "Sec-Fetch-Site", ""}},
		{"no origin headers at all", newTokenForm(tok, "x5"), []string{"Origin", "", "Sec-Fetch-Site", ""}},
		{"no CSRF value", newTokenForm("", "x6"), nil},
		{"wrong CSRF value", newTokenForm("AAAA"+tok[4:], "x7"), nil},
	}
	for _, c := range cases {
		p := f.post(t, "/settings/tokens/new", c.form, c.headers...)
		if p.status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", c.name, p.status)
		}
	}
	for _, ti := range f.tokens(t, "eve-target@example.com") {
		if ti.Name != SessionTokenName {
			t.Fatalf("a refused request created token %q", ti.Name)
		}
	}
	// Log out everywhere from another origin changes nothing either.
	if p := f.post(t, "/settings/logout-all", url.Values{"csrf": {tok}, "confirmed": {"yes"}}, "Origin", "http://evil.example"); p.status != http.StatusForbidden {
		t.Fatalf("cross-origin logout-all: %d", p.status)
	}
	if p := f.get(t, "/settings/tokens"); p.status != 200 {
		t.Fatalf("session ended by a refused request: %d", p.status)
	}
	// The same form from the console's own origin works.
	if p := f.post(t, "/settings/tokens/new", newTokenForm(tok, "ok")); p.status != http.StatusSeeOther {
		t.Fatalf("same-origin create: %d\n%s", p.status, p.body)
	}
}

// TestSigninFormNeedsItsCookie: the sign-in form is CSRF-protected too (a
// login CSRF would sign the victim into the attacker's account).
func TestSigninFormNeedsItsCookie(t *testing.T) {
	f := newFixture(t, nil)
	f.signup(t, "login-csrf@example.com")
	f.client = browser(nil)
	p := f.post(t, "/signin", url.Values{"csrf": {"forged"}, "email": {"login-csrf@example.com"}, "password": {password}})
	if p.status != http.StatusForbidden {
		t.Fatalf("sign-in without the CSRF cookie: %d", p.status)
	}
	if p := f.get(t, "/settings/tokens"); p.status != http.StatusSeeOther {
		t.Fatalf("a forged sign-in started a session: %d", p.status)
	}
}

// TestTokenNameEscaped: a token named like markup is text on every page
// that shows it.
func TestTokenNameEscaped(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.signup(t, "xss@example.com")
	evil := `<script>alert(1)</script><img src=x onerror=alert(2)>"'`
	if p := f.post(t, "/settings/tokens/new", newTokenForm(tok, evil)); p.status != http.StatusSeeOther {
		t.Fatalf("create: %d\n%s", p.status, p.body)
	}
	created := f.get(t, "/settings/tokens/created")
	list := f.get(t, "/settings/tokens")
	for name, p := range map[string]page{"created": created, "list": list} {
		if strings.Contains(p.body, "<script>alert") || strings.Contains(p.body, "<img src=x") {
			t.Errorf("%s page holds the name as markup", name)
		}
		if !strings.Contains(p.body, html.EscapeString(`<script>alert(1)</script>`)) {
			t.Errorf("%s page does not show the name as text", name)
		}
	}
}

// TestCreateTokenFieldErrors: each bad field gets its message beside it
// (the element the field's aria-describedby names), the form keeps what
// was entered, and nothing is created.
func TestCreateTokenFieldErrors(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.signup(t, "fields@example.com")
	cases := []struct {
		form  url.Values
		field string
		says  string
	}{
		{url.Values{"name": {"  "}, "type": {"live"}, "scope": {"database:read"}}, "name-error", "Give the token a name"},
		{url.Values{"name": {"n"}, "type": {"live"}, "scope": {"database:drop"}}, "scopes-error", `Unknown scope &#34;database:drop&#34;`},
		{url.Values{"name": {"n"}, "type": {"live"}}, "scopes-error", "Choose at least one scope"},
		{url.Values{"name": {"n"}, "type": {"live"}, "scope": {"*"}, "expires_in_days": {"400"}}, "expires-error", "at most 365 days"},
		{url.Values{"name": {"n"}, "type": {"test"}, "scope": {"*"}, "expires_in_days": {"5"}}, "expires-error", "Test tokens last at most 24 hours"},
		{url.Values{"name": {"n"}, "type": {"live"}, "scope": {"*"}, "expires_in_days": {"soon"}}, "expires-error", "whole number"},
		{url.Values{"name": {"n"}, "type": {"live"}, "scope": {"*"}, "allowed_ips": {"10.0.0.0/8, nope"}}, "ips-error", "&#34;nope&#34; is not an IP address"},
		{url.Values{"name": {"n"}, "type": {"root"}, "scope": {"*"}}, "type-error", "Choose live, test or service"},
	}
	for _, c := range cases {
		c.form.Set("csrf", tok)
		p := f.post(t, "/settings/tokens/new", c.form)
		if p.status != http.StatusBadRequest {
			t.Errorf("%v: status %d, want 400", c.form, p.status)
			continue
		}
		i := strings.Index(p.body, `id="`+c.field+`"`)
		if i < 0 || !strings.Contains(p.body[i:min(len(p.body), i+300)], c.says) {
			t.Errorf("%v: no %s saying %q:\n%s", c.form, c.field, c.says, p.body)
		}
	}
	if got := f.tokens(t, "fields@example.com"); len(got) != 1 {
		t.Fatalf("refused forms created tokens: %+v", got)
	}
}

// TestTokenShownOnce: the new token is on the page after its creation and
// on no later one.
func TestTokenShownOnce(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.signup(t, "once@example.com")
	if p := f.post(t, "/settings/tokens/new", url.Values{"csrf": {tok}, "name": {"ci"}, "type": {"service"}, "scope": {"database:read", "branch:*"},
		"expires_in_days": {"30"}, "allowed_ips": {"203.0.113.50, 10.0.0.0/8"}}); p.status != http.StatusSeeOther {
		t.Fatalf("create: %d\n%s", p.status, p.body)
	}
	p := f.get(t, "/settings/tokens/created")
	if p.status != 200 || p.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("created page: %d %q", p.status, p.header.Get("Cache-Control"))
	}
	i := strings.Index(p.body, `id="token">hdb_svc_`)
	if i < 0 {
		t.Fatalf("no service token on the page:\n%s", p.body)
	}
	secret := p.body[i+len(`id="token">`) : i+strings.Index(p.body[i:], "</code>")]
	for _, want := range []string{"database:read, branch:read, branch:create, branch:merge, branch:delete", "203.0.113.50, 10.0.0.0/8",
		`psql &#34;postgresql://default:$HELIOS_TOKEN@`, "export HELIOS_TOKEN='" + secret + "'"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("created page lacks %q", want)
		}
	}
	if again := f.get(t, "/settings/tokens/created"); again.status != http.StatusSeeOther || strings.Contains(again.body, secret) {
		t.Fatalf("second visit: %d, shows token %v", again.status, strings.Contains(again.body, secret))
	}
	if list := f.get(t, "/settings/tokens"); strings.Contains(list.body, secret) || !strings.Contains(list.body, "shown only once") {
		t.Fatalf("tokens page after the created page: shows token %v", strings.Contains(list.body, secret))
	}
}

// TestSessionEndsWhenItsTokenIsRevoked: logging out everywhere through the
// API (or the CLI) ends the console session at its next request; signing
// out revokes the session's token.
func TestSessionEndsWhenItsTokenIsRevoked(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.signup(t, "ends@example.com")
	// Sign out revokes the token behind the session.
	if p := f.post(t, "/signout", url.Values{"csrf": {tok}}); p.status != http.StatusSeeOther || p.header.Get("Location") != "/signin?m=signedout" {
		t.Fatalf("signout: %d %s", p.status, p.header.Get("Location"))
	}
	if got := f.tokens(t, "ends@example.com"); len(got) != 0 {
		t.Fatalf("after sign-out the account still has %+v", got)
	}
	// A new session, then logout-all from the API.
	pre := f.get(t, "/signin")
	if p := f.post(t, "/signin", url.Values{"csrf": {csrf(t, pre)}, "email": {"ends@example.com"}, "password": {password}}); p.status != http.StatusSeeOther {
		t.Fatalf("signin: %d\n%s", p.status, p.body)
	}
	if p := f.get(t, "/settings/tokens"); p.status != 200 {
		t.Fatalf("signed in: %d", p.status)
	}
	api, _, err := f.svc.Login("ends@example.com", password, netipLocal)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newVerifier(f).Verify([]byte(api), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.LogoutAll(&c); err != nil {
		t.Fatal(err)
	}
	p := f.get(t, "/settings/tokens")
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/signin?m=ended" {
		t.Fatalf("after logout-all: %d %s", p.status, p.header.Get("Location"))
	}
}

// TestSigninFailuresAreTheAPIs: a wrong password and an unknown email get
// the same words and status, and the console obeys the login rate limit.
func TestSigninFailuresAreTheAPIs(t *testing.T) {
	f := newFixture(t, func(o *issuer.Options) { o.LoginPerEmail = 3 })
	f.signup(t, "limited@example.com")
	f.client = browser(nil)
	try := func(email string) page {
		return f.post(t, "/signin", url.Values{"csrf": {csrf(t, f.get(t, "/signin"))}, "email": {email}, "password": {"wrong-password-1"}})
	}
	unknown, wrong := try("nobody@example.com"), try("limited@example.com")
	if unknown.status != http.StatusUnauthorized || wrong.status != http.StatusUnauthorized {
		t.Fatalf("statuses %d, %d, want 401", unknown.status, wrong.status)
	}
	msg := func(p page) string {
		i := strings.Index(p.body, `id="form-error">`)
		if i < 0 {
			t.Fatalf("no form error:\n%s", p.body)
		}
		return p.body[i : i+strings.Index(p.body[i:], "<")]
	}
	if msg(unknown) != msg(wrong) {
		t.Fatalf("an unknown email and a wrong password read differently: %q vs %q", msg(unknown), msg(wrong))
	}
	try("limited@example.com")
	try("limited@example.com")
	limited := try("limited@example.com")
	if limited.status != http.StatusTooManyRequests || limited.header.Get("Retry-After") == "" || !strings.Contains(limited.body, "Too many failed attempts") {
		t.Fatalf("after the limit: %d Retry-After %q\n%s", limited.status, limited.header.Get("Retry-After"), limited.body)
	}
}

// TestConfirmWithoutScript: a revocation, a deletion or log out everywhere
// posted without the script's confirmation (no JavaScript) gets a
// confirmation page and changes nothing until that page's form is sent.
func TestConfirmWithoutScript(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.signup(t, "nojs@example.com")
	f.post(t, "/settings/tokens/new", newTokenForm(tok, "app"))
	f.get(t, "/settings/tokens/created")
	var id string
	for _, ti := range f.tokens(t, "nojs@example.com") {
		if ti.Name == "app" {
			id = ti.ID
		}
	}
	p := f.post(t, "/settings/tokens/revoke", url.Values{"csrf": {tok}, "id": {id}})
	if p.status != 200 || !strings.Contains(p.body, "Revoke “app”?") || !strings.Contains(p.body, `name="confirmed" value="yes"`) {
		t.Fatalf("revoke without confirmation: %d\n%s", p.status, p.body)
	}
	if n := len(f.tokens(t, "nojs@example.com")); n != 2 {
		t.Fatalf("an unconfirmed revoke changed the tokens: %d left", n)
	}
	if p := f.post(t, "/settings/tokens/revoke", url.Values{"csrf": {tok}, "id": {id}, "confirmed": {"yes"}}); p.status != http.StatusSeeOther {
		t.Fatalf("confirmed revoke: %d", p.status)
	}
	if n := len(f.tokens(t, "nojs@example.com")); n != 1 {
		t.Fatalf("confirmed revoke left %d tokens", n)
	}
	if p := f.post(t, "/settings/logout-all", url.Values{"csrf": {tok}}); p.status != 200 || !strings.Contains(p.body, "Log out everywhere?") {
		t.Fatalf("logout-all without confirmation: %d", p.status)
	}
	if p := f.post(t, "/databases/delete", url.Values{"csrf": {tok}, "name": {"main"}}); p.status != 200 || !strings.Contains(p.body, "Delete database “main”?") {
		t.Fatalf("delete without confirmation: %d", p.status)
	}
	if p := f.get(t, "/databases"); !strings.Contains(p.body, ">main<") {
		t.Fatal("an unconfirmed delete removed the database")
	}
}

// TestDatabaseFormErrors: a bad or taken name is said beside the field.
func TestDatabaseFormErrors(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.signup(t, "dbs@example.com")
	for name, want := range map[string]string{"": "Give the database a name", "9lives": "is not valid", "main": "already exists",
		"<b>x</b>": "&#34;&lt;b&gt;x&lt;/b&gt;&#34; is not valid"} {
		p := f.post(t, "/databases", url.Values{"csrf": {tok}, "name": {name}})
		i := strings.Index(p.body, `id="db-error"`)
		if p.status < 400 || i < 0 || !strings.Contains(p.body[i:], want) {
			t.Errorf("name %q: %d, want %q beside the field\n%s", name, p.status, want, p.body)
		}
	}
	if p := f.post(t, "/databases", url.Values{"csrf": {tok}, "name": {"analytics_test"}, "test": {"on"}}); p.status != http.StatusSeeOther {
		t.Fatalf("create: %d\n%s", p.status, p.body)
	}
	if p := f.get(t, "/databases"); !strings.Contains(p.body, "analytics_test") || !strings.Contains(p.body, "type-test") {
		t.Fatalf("the test database is not listed as one:\n%s", p.body)
	}
}
