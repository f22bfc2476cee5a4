package console

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/tlsfile"
	"github.com/heliosdb/auth/issuer"
)

// fixture is a console over a real issuer (Pebble in a temp dir) served by
// fasthttp on a loopback port, and a browser-like client: a cookie jar,
// no redirects followed, Origin set on POSTs as a browser sets it.
type fixture struct {
	svc    *issuer.Service
	ring   *core.Keyring
	con    *Console
	base   string
	client *http.Client
	// ahead moves the console's clock forward (nanoseconds).
	ahead atomic.Int64
}

func newFixture(t *testing.T, mod func(*issuer.Options)) *fixture {
	t.Helper()
	store, err := issuer.OpenWith(t.TempDir(), issuer.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ring := core.GenerateKeyring(time.Now())
	o := issuer.DefaultOptions()
	o.Password = issuer.PasswordParams{Time: 1, Memory: 1024, Threads: 1}
	if mod != nil {
		mod(&o)
	}
	svc := issuer.NewService(store, ring, o)
	t.Cleanup(func() { svc.Close(); store.Close() })
	f := &fixture{svc: svc, ring: ring}
	f.con = New(Options{Service: svc, Keyring: ring, Listen: map[string]string{"http": "127.0.0.1:8080", "postgres": "0.0.0.0:5432"},
		CAFile: "/data/tls-cert.pem", Now: func() time.Time { return time.Now().Add(time.Duration(f.ahead.Load())) }})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: mux(f.con)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	f.base = "http://" + ln.Addr().String()
	f.client = browser(nil)
	return f
}

// mux dispatches to the console's routes as heliosd's router does (exact,
// or by prefix for paths ending in "/" other than "/").
func mux(c *Console) fasthttp.RequestHandler {
	routes := c.Routes()
	return func(ctx *fasthttp.RequestCtx) {
		p := string(ctx.Path())
		for _, r := range routes {
			if r.Method == string(ctx.Method()) && (p == r.Path || r.Path != "/" && strings.HasSuffix(r.Path, "/") && strings.HasPrefix(p, r.Path)) {
				r.Public(ctx)
				return
			}
		}
		ctx.Error("not found", 404)
	}
}

func browser(tr http.RoundTripper) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (f *fixture) get(t *testing.T, path string) page {
	t.Helper()
	resp, err := f.client.Get(f.base + path)
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp)
}

// post submits a form as a browser on the console's own page does, with
// extra headers (e.g. another Origin) when given.
func (f *fixture) post(t *testing.T, path string, form url.Values, headers ...string) page {
	t.Helper()
	req, _ := http.NewRequest("POST", f.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", f.base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp)
}

func read(t *testing.T, resp *http.Response) page {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{resp.StatusCode, resp.Header, string(b)}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF value of the first form of a page.
func csrf(t *testing.T, p page) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no csrf field in page %d:\n%s", p.status, p.body)
	}
	return m[1]
}

const password = "correct-horse-battery"

var netipLocal = netip.MustParseAddr("127.0.0.1")

// signup signs up through the console and returns the CSRF value of the
// signed-in pages.
func (f *fixture) signup(t *testing.T, email string) string {
	t.Helper()
	p := f.post(t, "/signup", url.Values{"csrf": {csrf(t, f.get(t, "/signup"))}, "email": {email}, "password": {password}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/settings/tokens" {
		t.Fatalf("signup: %d %s\n%s", p.status, p.header.Get("Location"), p.body)
	}
	return csrf(t, f.get(t, "/settings/tokens"))
}

// tokens lists the account's tokens through the API's own service.
func (f *fixture) tokens(t *testing.T, email string) []issuer.TokenInfo {
	t.Helper()
	tok, _, err := f.svc.Login(email, password, netipLocal)
	if err != nil {
		t.Fatal(err)
	}
	c, err := core.NewVerifier(f.ring, f.svc.Store().Revocations()).Verify([]byte(tok), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	list, err := f.svc.ListTokens(&c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Logout(&c); err != nil {
		t.Fatal(err)
	}
	var out []issuer.TokenInfo
	for _, ti := range list {
		if ti.ID != c.ID.String() {
			out = append(out, ti)
		}
	}
	return out
}

func TestPagesCarrySecurityHeaders(t *testing.T) {
	f := newFixture(t, nil)
	p := f.get(t, "/signin")
	if p.status != 200 {
		t.Fatalf("GET /signin: %d", p.status)
	}
	csp := p.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP allows inline code: %q", csp)
	}
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
		"X-Content-Type-Options": "nosniff"} {
		if got := p.header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	if strings.Contains(p.body, "<script>") || strings.Contains(p.body, " style=") {
		t.Errorf("page has inline script or style")
	}
	for _, m := range regexp.MustCompile(`(src|href|action)="[a-z]+:[^"]*"`).FindAllString(p.body, -1) {
		t.Errorf("page names another origin: %s", m)
	}
	// Every asset the page names is served, cached for good by its hash.
	for _, m := range regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`).FindAllStringSubmatch(p.body, -1) {
		a := f.get(t, strings.ReplaceAll(m[1], "&amp;", "&"))
		if a.status != 200 || !strings.Contains(a.header.Get("Cache-Control"), "immutable") || len(a.body) == 0 {
			t.Errorf("asset %s: %d %q", m[1], a.status, a.header.Get("Cache-Control"))
		}
	}
}

func TestSessionCookieAndWebConsoleToken(t *testing.T) {
	f := newFixture(t, nil)
	f.signup(t, "ada@example.com")
	u, _ := url.Parse(f.base)
	var raw string
	// Sign in again from a fresh browser and inspect the Set-Cookie itself.
	f.client = browser(nil)
	pre := f.get(t, "/signin")
	req, _ := http.NewRequest("POST", f.base+"/signin", strings.NewReader(url.Values{"csrf": {csrf(t, pre)}, "email": {"ada@example.com"}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", f.base)
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, sessionCookie+"=") {
			raw = sc
		}
	}
	if raw == "" {
		t.Fatalf("sign-in set no session cookie: %v (status %d)", resp.Header.Values("Set-Cookie"), resp.StatusCode)
	}
	low := strings.ToLower(raw)
	for _, want := range []string{"httponly", "samesite=strict", "path=/"} {
		if !strings.Contains(low, want) {
			t.Errorf("session cookie %q lacks %s", raw, want)
		}
	}
	if strings.Contains(low, "secure") {
		t.Errorf("session cookie over plain HTTP is Secure (a browser would drop it): %q", raw)
	}
	if v := f.client.Jar.Cookies(u); len(v) == 0 || strings.HasPrefix(v[0].Value, "hdb_") {
		t.Fatalf("cookie holds a token or nothing: %v", v)
	}
	// The session is a "Web console" token of the account, listed and
	// revocable; two sign-ins are two of them.
	var console int
	for _, ti := range f.tokens(t, "ada@example.com") {
		if ti.Name == SessionTokenName {
			console++
		}
	}
	if console != 2 {
		t.Fatalf("%d %q tokens, want 2 (signup's session and this sign-in)", console, SessionTokenName)
	}
	page := f.get(t, "/settings/tokens")
	if !strings.Contains(page.body, "This session") || !strings.Contains(page.body, SessionTokenName) {
		t.Fatalf("tokens page does not show the session's token:\n%s", page.body)
	}
}

func TestSecureCookieOverTLS(t *testing.T) {
	f := newFixture(t, nil)
	cfg, certPath, _, err := tlsfile.LoadOrGenerate(t.TempDir(), "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(certPath)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: mux(f.con)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	f.base = "https://" + ln.Addr().String()
	f.client = browser(&http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}})
	p := f.get(t, "/signup")
	var pre string
	for _, sc := range p.header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, hostPrefix+preCookie+"=") {
			pre = sc
		}
	}
	if !strings.Contains(pre, "secure") && !strings.Contains(pre, "Secure") {
		t.Fatalf("CSRF cookie over TLS: %q (all: %v)", pre, p.header.Values("Set-Cookie"))
	}
	req, _ := http.NewRequest("POST", f.base+"/signup", strings.NewReader(url.Values{"csrf": {csrf(t, p)}, "email": {"tls@example.com"}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", f.base)
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var sess string
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, hostPrefix+sessionCookie+"=") {
			sess = sc
		}
	}
	low := strings.ToLower(sess)
	if !strings.Contains(low, "secure") || !strings.Contains(low, "httponly") || !strings.Contains(low, "samesite=strict") {
		t.Fatalf("session cookie over TLS: %q (status %d, all %v)", sess, resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	if got := f.get(t, "/settings/tokens"); got.status != 200 {
		t.Fatalf("signed-in page over TLS: %d", got.status)
	}
}

func newVerifier(f *fixture) *core.Verifier {
	return core.NewVerifier(f.ring, f.svc.Store().Revocations())
}

// TestAuditMarks: the list marks the guide's audit findings: tokens never
// used and tokens near their expiry.
func TestAuditMarks(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.signup(t, "audit@example.com")
	if p := f.post(t, "/settings/tokens/new", url.Values{"csrf": {tok}, "name": {"idle"}, "type": {"live"}, "scope": {"metrics:read"}}); p.status != http.StatusSeeOther {
		t.Fatalf("create: %d", p.status)
	}
	row := func(p page, name string) string {
		i := strings.Index(p.body, `<span class="tok-name">`+name+`</span>`)
		if i < 0 {
			t.Fatalf("no row %s:\n%s", name, p.body)
		}
		return p.body[i : i+strings.Index(p.body[i:], "</tr>")]
	}
	now := f.get(t, "/settings/tokens")
	if r := row(now, "idle"); !strings.Contains(r, "mark-never") || strings.Contains(r, "mark-soon") {
		t.Fatalf("a new unused token: %s", r)
	}
	if r := row(now, SessionTokenName); strings.Contains(r, "mark-never") {
		t.Fatalf("this session's token is marked never used: %s", r)
	}
	// Six days later both 7-day tokens have less than three days left.
	f.ahead.Store(int64(6 * 24 * time.Hour))
	later := f.get(t, "/settings/tokens")
	if r := row(later, "idle"); !strings.Contains(r, "mark-soon") {
		t.Fatalf("a token with a day left: %s", r)
	}
	for _, c := range []struct {
		life, left time.Duration
		soon       bool
	}{
		{7 * 24 * time.Hour, 4 * 24 * time.Hour, false},
		{7 * 24 * time.Hour, 41 * time.Hour, true},
		{7 * 24 * time.Hour, 47 * time.Hour, false},
		{24 * time.Hour, 7 * time.Hour, false},
		{24 * time.Hour, 5 * time.Hour, true},
		{90 * 24 * time.Hour, 4 * 24 * time.Hour, false},
	} {
		n := time.Now()
		ti := issuer.TokenInfo{CreatedAt: n.Add(c.left - c.life), ExpiresAt: n.Add(c.left)}
		if got := expiresSoon(ti, n); got != c.soon {
			t.Errorf("lifetime %v, %v left: soon %v, want %v", c.life, c.left, got, c.soon)
		}
	}
}
