package console

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/jackc/pgx/v5"

	"github.com/heliosdb/auth/internal/testdaemon"
)

const password = "correct-horse-battery-staple"

// runLine runs a line the console showed, with HELIOS_TOKEN set as its
// export line says, plus the client's own arguments.
func runLine(t *testing.T, line, token, args string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", line+" "+args)
	cmd.Env = append(os.Environ(), "HELIOS_TOKEN="+token, "PGCONNECT_TIMEOUT=5")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// needClients fails (never skips) when a client the test drives is missing.
func needClients(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s is not installed: run scripts/install-deps.sh", n)
		}
	}
}

// apiTokens lists the account's token names through the REST API, with a
// login token of its own (left out of the list).
func apiTokens(t *testing.T, d *testdaemon.Daemon, email string) []string {
	t.Helper()
	tok := d.Login(t, email, password)
	defer d.Do(t, "POST", "/v1/auth/logout", tok, nil)
	var r struct {
		Tokens []struct{ Name string } `json:"tokens"`
	}
	d.MustJSON(t, http.StatusOK, "GET", "/v1/auth/tokens", tok, nil, &r)
	var names []string
	for _, x := range r.Tokens {
		if x.Name != "login" {
			names = append(names, x.Name)
		}
	}
	return names
}

// createToken fills and submits Create token and returns the token the
// next page shows.
func (b *browser) createToken(name string, scopes ...string) string {
	b.t.Helper()
	b.open("/settings/tokens/new", "#name")
	actions := []chromedp.Action[chromedp.Void]{chromedp.SetValue(chromedp.CSS("#name"), name)}
	for _, s := range scopes {
		actions = append(actions, chromedp.Click(chromedp.CSS(`input[name=scope][value="`+s+`"]`)))
	}
	actions = append(actions, andLoad(chromedp.Click(chromedp.CSS("#create"))), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.run("create token "+name, actions...)
	return b.text("#token")
}

// revoke clicks Revoke in the row of the token named name (confirm()
// accepted) and waits for the list to come back.
func (b *browser) revoke(name string) {
	b.t.Helper()
	before := b.confirms()
	b.open("/settings/tokens", "#tokens")
	b.run("revoke "+name,
		andLoad(chromedp.Click(chromedp.Search(fmt.Sprintf(`//tr[.//span[@class="tok-name" and text()=%q]]//button[starts-with(normalize-space(.), "Revoke")]`, name)))),
		chromedp.WaitVisible(chromedp.CSS(".flash")))
	if b.confirms() != before+1 {
		b.t.Fatalf("revoking %s asked for no confirmation", name)
	}
}

// TestConsoleInBrowser walks the console as a person does, in headless
// Chromium against the real heliosd, and uses what the pages show with the
// real clients.
func TestConsoleInBrowser(t *testing.T) {
	needClients(t, "psql", "redis-cli", "mariadb", "curl")
	d := testdaemon.Start(t)
	b := newBrowser(t, "http://"+d.HTTP)
	email := fmt.Sprintf("ada-%d@example.com", time.Now().UnixNano())

	// Sign up (signed in at once), sign out, sign in.
	b.open("/", "#email")
	if loc := b.location(); loc != "/signin" {
		t.Fatalf("/ sent a signed-out browser to %s", loc)
	}
	b.run("open sign-up", andLoad(chromedp.Click(chromedp.CSS(`a[href="/signup"]`))), chromedp.WaitVisible(chromedp.CSS("#password-hint")))
	b.screenshot("signup")
	b.run("sign up", chromedp.SendKeys(chromedp.CSS("#email"), email), chromedp.SendKeys(chromedp.CSS("#password"), password),
		andLoad(chromedp.Submit(chromedp.CSS("#password"))), chromedp.WaitVisible(chromedp.CSS("#tokens")))
	b.run("sign out", andLoad(chromedp.Click(chromedp.CSS(`form[action="/signout"] button`))), chromedp.WaitVisible(chromedp.CSS(".notice")))
	if got := b.text(".notice"); !strings.Contains(got, "signed out") {
		t.Fatalf("after sign-out: %q", got)
	}
	b.run("wrong password", chromedp.SendKeys(chromedp.CSS("#email"), email), chromedp.SendKeys(chromedp.CSS("#password"), "not-my-password"),
		andLoad(chromedp.Submit(chromedp.CSS("#password"))), chromedp.WaitVisible(chromedp.CSS("#form-error")))
	if got := b.text("#form-error"); got != "Email or password is incorrect." {
		t.Fatalf("wrong password says %q", got)
	}
	b.screenshot("signin-failed")
	// With the keyboard only: the email field has the focus, Tab moves to
	// the password, Enter submits.
	b.run("sign in with the keyboard", chromedp.Clear(chromedp.CSS("#email")),
		chromedp.Focus(chromedp.CSS("#email")), chromedp.KeyEvent(email), chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(password),
		andLoad(chromedp.KeyEvent(kb.Enter)), chromedp.WaitVisible(chromedp.CSS("#tokens")))
	if got := b.text("#tokens tbody"); !strings.Contains(got, "Web console") || !strings.Contains(got, "This session") {
		t.Fatalf("the session's token is not listed: %q", got)
	}

	// Bad input: each error beside its field, nothing created.
	b.open("/settings/tokens/new", "#name")
	b.screenshot("new-token")
	b.run("empty name", chromedp.Click(chromedp.CSS(`input[name=scope][value="database:read"]`)), andLoad(chromedp.Click(chromedp.CSS("#create"))),
		chromedp.WaitVisible(chromedp.CSS("#name-error")))
	b.screenshot("new-token-errors")
	if got := b.text("#name-error"); !strings.Contains(got, "Give the token a name") {
		t.Fatalf("empty name: %q", got)
	}
	described := value(b, "aria", chromedp.AttributeValue(chromedp.CSS("#name"), "aria-describedby")).Value
	if !strings.Contains(described, "name-error") {
		t.Fatalf("the name field is not described by its error: %q", described)
	}
	b.run("unknown scope", chromedp.SetValue(chromedp.CSS("#name"), "n"),
		chromedp.Evaluate[chromedp.Void](`(() => { const c = document.querySelector('input[name=scope][value="database:read"]'); c.value = "database:drop"; c.checked = true; })()`),
		andLoad(chromedp.Click(chromedp.CSS("#create"))), chromedp.WaitVisible(chromedp.CSS("#scopes-error")))
	if got := b.text("#scopes-error"); !strings.Contains(got, `Unknown scope "database:drop"`) {
		t.Fatalf("unknown scope: %q", got)
	}
	b.run("test token for 5 days", chromedp.Click(chromedp.CSS("#type-test")), chromedp.Click(chromedp.CSS(`input[name=scope][value="database:read"]`)),
		chromedp.SetValue(chromedp.CSS("#expires"), "5"), andLoad(chromedp.Click(chromedp.CSS("#create"))), chromedp.WaitVisible(chromedp.CSS("#expires-error")))
	if got := b.text("#expires-error"); !strings.Contains(got, "Test tokens last at most 24 hours") {
		t.Fatalf("test token for 5 days: %q", got)
	}
	b.run("live token for 400 days", chromedp.Click(chromedp.CSS("#type-live")), chromedp.SetValue(chromedp.CSS("#expires"), "400"),
		andLoad(chromedp.Click(chromedp.CSS("#create"))), chromedp.WaitVisible(chromedp.CSS("#expires-error")))
	if got := b.text("#expires-error"); !strings.Contains(got, "at most 365 days") {
		t.Fatalf("live token for 400 days: %q", got)
	}
	if names := apiTokens(t, d, email); len(names) != 1 {
		t.Fatalf("refused forms created tokens: %v", names)
	}

	// A database:read token, read from the page, used with the lines the
	// page shows: psql, redis-cli, mariadb and curl through the gateway.
	token := b.createToken("reader", "database:read")
	if !strings.HasPrefix(token, "hdb_live_") {
		t.Fatalf("the page shows %q", token)
	}
	b.screenshot("token-created")
	if exp := b.text("#export-line"); exp != "export HELIOS_TOKEN='"+token+"'" {
		t.Fatalf("export line %q", exp)
	}
	for _, perm := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(b.ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: perm, AllowWithoutSanitization: true}, Setting: "granted", Origin: b.base}); err != nil {
			t.Fatalf("grant %s: %v", perm, err)
		}
	}
	b.run("copy button",
		chromedp.Click(chromedp.CSS("#copy-token")), chromedp.WaitVisible(chromedp.Search(`//button[@id="copy-token" and text()="Copied"]`)))
	copied := value(b, "read clipboard", chromedp.Evaluate[string](`navigator.clipboard.readText()`, func(p *runtime.EvaluateParams) { p.AwaitPromise = new(true) }))
	if copied != token {
		t.Fatalf("the copy button copied %q", copied)
	}
	lines := map[string]string{}
	for _, id := range []string{"connect-postgresql", "connect-redis", "connect-mysql", "connect-rest"} {
		lines[id] = b.text("#" + id)
	}
	if !strings.Contains(lines["connect-postgresql"], d.PG[strings.LastIndexByte(d.PG, ':')+1:]) || !strings.Contains(lines["connect-postgresql"], d.CACert) {
		t.Fatalf("psql line %q names neither the gateway's port nor its CA %s", lines["connect-postgresql"], d.CACert)
	}
	use := func(id, args, want string) {
		t.Helper()
		out, err := runLine(t, lines[id], token, args)
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("%s %s: %v\n%s", lines[id], args, err, out)
		}
	}
	use("connect-postgresql", "-tAc 'SELECT 1'", "1")
	use("connect-redis", "PING", "PONG")
	use("connect-mysql", "-N -e 'SELECT 1'", "1")
	use("connect-rest", "-sS", `"rows"`)
	b.noAlerts()

	// The list shows it with its audit marks; a token named like markup
	// stays text.
	b.run("done", andLoad(chromedp.Click(chromedp.CSS("#done"))), chromedp.WaitVisible(chromedp.CSS("#tokens")))
	evil := `<script>alert(1)</script><img src=x onerror=alert(2)>`
	b.createToken(evil, "database:read")
	if got := b.text("#created-name"); got != evil {
		t.Fatalf("created page shows the name as %q", got)
	}
	b.open("/settings/tokens", "#tokens")
	names := value(b, "names", chromedp.Evaluate[[]string](`[...document.querySelectorAll("#tokens .tok-name")].map(e => e.textContent)`))
	// Both were created within the same second: their order is not fixed.
	evilRow := slices.Index(names, evil) + 1
	if len(names) != 3 || evilRow == 0 || !slices.Contains(names, "reader") {
		t.Fatalf("token names in the list: %q", names)
	}
	imgs := value(b, "count injected", chromedp.Evaluate[int](`document.querySelectorAll("#tokens img, #tokens script").length`))
	if imgs != 0 {
		t.Fatalf("the name became %d elements", imgs)
	}
	if got := b.text(fmt.Sprintf(`#tokens tbody tr:nth-child(%d) .mark-never`, evilRow)); got != "Never used" {
		t.Fatalf("a token never used is marked %q", got)
	}
	b.screenshot("tokens")
	b.noAlerts()

	// Revoke in the console: the same clients are refused.
	b.revoke("reader")
	if got := b.text(".flash"); !strings.Contains(got, "reader") {
		t.Fatalf("after revoke: %q", got)
	}
	time.Sleep(300 * time.Millisecond) // the gateway follows the issuer's log
	if out, err := runLine(t, lines["connect-postgresql"], token, "-tAc 'SELECT 1'"); err == nil || !strings.Contains(out, "revoked") {
		t.Fatalf("psql with the revoked token: %v\n%s", err, out)
	}
	if out, _ := runLine(t, lines["connect-redis"], token, "PING"); strings.Contains(out, "PONG") || !strings.Contains(out, "revoked") {
		t.Fatalf("redis-cli with the revoked token:\n%s", out)
	}

	// A form posted from another origin is refused and changes nothing:
	// another port of the same host (same-site, so the SameSite=Strict
	// cookie is sent) and another site.
	evilSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<form id=f method=post action="http://%s/settings/tokens/new"><input name=name value=stolen>`+
			`<input name=type value=service><input name=scope value="*"><input name=csrf value=guess></form>`+
			`<script>document.getElementById("f").submit()</script>`, d.HTTP)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go evilSrv.Serve(ln)
	t.Cleanup(func() { evilSrv.Close() })
	_, evilPort, _ := net.SplitHostPort(ln.Addr().String())
	for _, origin := range []string{"http://127.0.0.1:" + evilPort, "http://localhost:" + evilPort} {
		b.run("cross-origin post from "+origin, chromedp.Navigate(origin+"/"), chromedp.WaitVisible(chromedp.CSS(".alert")))
		if got := b.text(".alert"); !strings.Contains(got, "came from another site") {
			t.Fatalf("cross-origin post from %s: %q", origin, got)
		}
	}
	b.screenshot("cross-origin-refused")
	for _, n := range apiTokens(t, d, email) {
		if n == "stolen" {
			t.Fatal("a cross-origin form created a token")
		}
	}

	// Databases: create a test database, see its flag, delete it.
	b.open("/databases", "#databases")
	b.run("create database", chromedp.SendKeys(chromedp.CSS("#db-name"), "analytics_test"), chromedp.Click(chromedp.CSS("#db-test")),
		andLoad(chromedp.Submit(chromedp.CSS("#db-name"))), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if got := b.text("#databases tbody"); !strings.Contains(got, "analytics_test") || !strings.Contains(got, "test") {
		t.Fatalf("databases: %q", got)
	}
	b.screenshot("databases")
	var dbs struct {
		Databases []struct {
			Name string
			Test bool
		}
	}
	api := d.Login(t, email, password)
	d.MustJSON(t, http.StatusOK, "GET", "/v1/databases", api, nil, &dbs)
	if len(dbs.Databases) != 2 || dbs.Databases[0].Name != "analytics_test" || !dbs.Databases[0].Test {
		t.Fatalf("GET /v1/databases: %+v", dbs)
	}
	b.run("delete database", andLoad(chromedp.Click(chromedp.Search(`//tr[.//span[text()="analytics_test"]]//button`))),
		chromedp.WaitVisible(chromedp.CSS(".flash")))
	if got := b.text("#databases tbody"); strings.Contains(got, "analytics_test") {
		t.Fatalf("deleted database still listed: %q", got)
	}

	b.open("/connect", "#connect-postgresql")
	b.screenshot("connect")

	// On a phone.
	b.run("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	b.open("/settings/tokens", "#tokens")
	b.screenshot("tokens-phone")
	b.run("desktop", chromedp.EmulateViewport(1280, 900))

	// Log out everywhere ends a psql session that was open.
	holder := b.createToken("pgx-holder", "database:read")
	pgURL := strings.TrimSuffix(strings.TrimPrefix(lines["connect-postgresql"], `psql "`), `"`)
	pgURL = strings.Replace(pgURL, "$HELIOS_TOKEN", holder, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatalf("pgx with the console's line: %v", err)
	}
	defer conn.Close(context.Background())
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 before logout-all: %v", err)
	}
	// This time as a browser without the script would: the server asks on
	// a page of its own.
	b.open("/settings/tokens", "#logout-all")
	b.run("log out everywhere", chromedp.Evaluate[chromedp.Void](`document.querySelector('form[action="/settings/logout-all"]').removeAttribute("data-confirm")`),
		andLoad(chromedp.Click(chromedp.CSS("#logout-all"))), chromedp.WaitVisible(chromedp.CSS(".btn-danger")))
	b.screenshot("confirm")
	if conn.QueryRow(ctx, "SELECT 1").Scan(&one) != nil {
		t.Fatal("the confirmation page already logged out everywhere")
	}
	b.run("confirm", andLoad(chromedp.Click(chromedp.CSS(".btn-danger"))), chromedp.WaitVisible(chromedp.CSS(".notice")))
	if loc := b.location(); loc != "/signin?m=everywhere" {
		t.Fatalf("after logout-all the browser is at %s", loc)
	}
	b.screenshot("logged-out-everywhere")
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := conn.QueryRow(ctx, "SELECT 1").Scan(&one)
		if err != nil {
			t.Logf("the open psql session ended: %v", err)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the pgx connection still answers 5 s after log out everywhere")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The console session ended with it.
	b.open("/settings/tokens", "#email")
	if loc := b.location(); !strings.HasPrefix(loc, "/signin") {
		t.Fatalf("a logged-out browser reached %s", loc)
	}
	if n := len(apiTokens(t, d, email)); n != 0 {
		t.Fatalf("%d tokens left after log out everywhere", n)
	}
	b.noAlerts()
}
