package e2e

// Abuse of the public /v1/auth endpoints against the real heliosd: account
// enumeration through repeated signups (429 instead of endless 409s), and
// bodies whose strings are not UTF-8 (refused, where encoding/json would
// have folded them to U+FFFD). Requests go out as raw bytes through net/http
// and through the real curl binary.

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// curlPost POSTs body (raw bytes, from a file so nothing re-encodes them)
// with the real curl binary and returns the status, the response headers
// and the body. A missing curl is a failure.
func curlPost(t *testing.T, url, body string) (int, http.Header, []byte) {
	t.Helper()
	bin, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl is needed for this test: %v", err)
	}
	dir := t.TempDir()
	in, hdrs, out := filepath.Join(dir, "body"), filepath.Join(dir, "headers"), filepath.Join(dir, "out")
	if err := os.WriteFile(in, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-sS", "--max-time", "20", "-X", "POST", "-H", "Content-Type: application/json",
		"--data-binary", "@"+in, "-D", hdrs, "-o", out, "-w", "%{http_code}", url)
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %s: %v %s", url, err, stdout)
	}
	status, err := strconv.Atoi(strings.TrimSpace(string(stdout)))
	if err != nil {
		t.Fatalf("curl status %q: %v", stdout, err)
	}
	raw, err := os.ReadFile(hdrs)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return status, h, b
}

// retryAfter checks a 429 RATE_LIMITED answer and returns its Retry-After.
func retryAfter(t *testing.T, what string, status int, h http.Header, body []byte) int {
	t.Helper()
	if status != http.StatusTooManyRequests {
		t.Fatalf("%s: status %d, want 429: %s", what, status, body)
	}
	code, msg := issError(t, body)
	secs, err := strconv.Atoi(h.Get("Retry-After"))
	if code != "RATE_LIMITED" || err != nil || secs < 1 || secs > 60 || !strings.Contains(msg, "retry after "+strconv.Itoa(secs)+" seconds") {
		t.Fatalf("%s: %s %q, Retry-After %q", what, code, msg, h.Get("Retry-After"))
	}
	return secs
}

// TestSignupEnumerationRateLimited replays the attack sweep's finding: 120
// signups of an existing email in a row. With the default limits (10 failed
// signups per email, 20 per address, per minute) the 11th is 429 with
// Retry-After and every later one too; no 409 leaks after the first 429.
// Many new accounts from one loopback address, as the other e2e tests make,
// are never limited.
func TestSignupEnumerationRateLimited(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.Signup(t, "victim@example.com", "correct-horse-battery-staple")
	for range 30 {
		d.NewUser(t) // new accounts cost nothing
	}

	url := d.URL("/v1/auth/signup")
	const body = `{"email":"Victim@example.com","password":"another-good-password"}`
	first429, leaked := 0, 0
	start := time.Now()
	for i := 1; i <= 120; i++ {
		var r issResp
		if i%40 == 0 { // every 40th through the real curl binary
			r.status, r.header, r.body = curlPost(t, url, body)
		} else {
			r = issDo(t, httpClient, url, "POST", "", body)
		}
		if r.status == http.StatusConflict {
			if code, _ := issError(t, r.body); code != "EMAIL_TAKEN" {
				t.Fatalf("attempt %d: 409 %s", i, code)
			}
			if first429 != 0 {
				leaked++
			}
			continue
		}
		retryAfter(t, fmt.Sprintf("attempt %d", i), r.status, r.header, r.body)
		if first429 == 0 {
			first429 = i
		}
	}
	if first429 != 11 {
		t.Fatalf("first 429 at attempt %d, want 11 (10 failed signups per email per minute)", first429)
	}
	// The email's bucket refills one attempt every 6 s: only a machine
	// slow enough to take that long may have seen a 409 after the first 429.
	if elapsed := time.Since(start); leaked > int(elapsed/(6*time.Second)) {
		t.Fatalf("%d more 409s after the first 429 in %v", leaked, elapsed)
	}
	// Logins are a separate limit: the victim can still log in.
	d.Login(t, "victim@example.com", "correct-horse-battery-staple")
}

// TestSignupPerAddressLimitFlag: --signup-per-ip bounds 409s from one
// address across different emails (the enumeration pattern), while new
// accounts from that address stay free.
func TestSignupPerAddressLimitFlag(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, withArgs("--signup-per-ip=3", "--signup-per-email=0"))
	emails := make([]string, 6)
	for i := range emails {
		emails[i] = fmt.Sprintf("probe%d@example.com", i)
		d.Signup(t, emails[i], "correct-horse-battery-staple") // 6 > 3: new accounts cost nothing
	}
	for i, email := range emails {
		r := issDo(t, httpClient, d.URL("/v1/auth/signup"), "POST", "", `{"email":"`+email+`","password":"correct-horse-battery-staple"}`)
		if i < 3 {
			if r.status != http.StatusConflict {
				t.Fatalf("probe %d: %d %s, want 409", i, r.status, r.body)
			}
			continue
		}
		retryAfter(t, fmt.Sprintf("probe %d", i), r.status, r.header, r.body)
	}
}

// TestSignupInvalidUTF8Refused: strings that are not UTF-8, or escape a lone
// UTF-16 surrogate, are 400 INVALID_JSON on every /v1/auth body. Before,
// encoding/json folded them to U+FFFD: a signup stored a password nobody
// typed, and 0x80 bytes logged in to an account whose password is U+FFFD
// characters.
func TestSignupInvalidUTF8Refused(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	signup, login := d.URL("/v1/auth/signup"), d.URL("/v1/auth/login")
	expect400 := func(what string, status int, body []byte) {
		t.Helper()
		if status != http.StatusBadRequest {
			t.Fatalf("%s: status %d, want 400: %s", what, status, body)
		}
		if code, msg := issError(t, body); code != "INVALID_JSON" || !strings.Contains(msg, "byte") {
			t.Fatalf("%s: %s %q", what, code, msg)
		}
	}

	// Signup with an invalid UTF-8 password: refused, and no account.
	r := issDo(t, httpClient, signup, "POST", "", `{"email":"ff@example.com","password":"`+"\xff\xfe"+`horse-battery-staple"}`)
	expect400("signup, 0xff 0xfe password", r.status, r.body)
	status, _, body := curlPost(t, signup, `{"email":"ff@example.com","password":"`+strings.Repeat("\xff", 12)+`"}`)
	expect400("curl signup, 0xff password", status, body)
	r = issDo(t, httpClient, signup, "POST", "", `{"email":"ff@example.com","password":"horse-battery-staple\udcff"}`)
	expect400("signup, lone surrogate", r.status, r.body)
	for _, pw := range []string{"\ufffd\ufffdhorse-battery-staple", strings.Repeat("\ufffd", 12)} {
		if r := issDo(t, httpClient, login, "POST", "", `{"email":"ff@example.com","password":"`+pw+`"}`); r.status != http.StatusUnauthorized {
			t.Fatalf("a refused signup created an account: login %d %s", r.status, r.body)
		}
	}
	d.Signup(t, "ff@example.com", "correct-horse-battery-staple") // the email is still free

	// An account whose password really is U+FFFD characters (valid UTF-8):
	// 0x80 bytes, or \udcff escapes, no longer log in to it.
	const real = "\ufffd\ufffd\ufffd\ufffdabcd"
	d.Signup(t, "fffd@example.com", real)
	status, _, body = curlPost(t, login, `{"email":"fffd@example.com","password":"`+"\x80\x80\x80\x80"+`abcd"}`)
	expect400("curl login, 0x80 password", status, body)
	for what, body := range map[string]string{
		"login, 0x80 x4 + abcd":  `{"email":"fffd@example.com","password":"` + "\x80\x80\x80\x80" + `abcd"}`,
		"login, \\udcff escapes": `{"email":"fffd@example.com","password":"\udcff\udcff\udcff\udcffabcd"}`,
		"login, 0x80 x8":         `{"email":"fffd@example.com","password":"` + strings.Repeat("\x80", 8) + `"}`,
		"login, invalid email":   `{"email":"fffd@example.com` + "\xc0" + `","password":"` + real + `"}`,
	} {
		r := issDo(t, httpClient, login, "POST", "", body)
		expect400(what, r.status, r.body)
	}
	tok := d.Login(t, "fffd@example.com", real) // the real password still works

	// Authenticated /v1/auth bodies too; nothing was created.
	for what, body := range map[string]string{
		"token name":     `{"name":"ci` + "\xe2\x82" + `","scopes":["database:read"]}`,
		"token scope":    `{"name":"ci","scopes":["database:read\ud800"]}`,
		"token ip":       `{"name":"ci","allowed_ips":["10.0.0.1` + "\xc0\xaf" + `"]}`,
		"unpaired high":  `{"name":"ci\ud83d\u0041","scopes":["database:read"]}`,
		"token field":    `{"na` + "\x80" + `me":"ci"}`,
		"surrogate pair": `{"name":"\ud83d\ude00 ok","scopes":["database:read"]}`,
	} {
		r := issDo(t, httpClient, d.URL("/v1/auth/tokens"), "POST", tok, body)
		if what == "surrogate pair" { // valid: one character
			if r.status != http.StatusCreated {
				t.Fatalf("a surrogate pair: %d %s", r.status, r.body)
			}
			continue
		}
		expect400(what, r.status, r.body)
	}
	if list := issList(t, d, tok); len(list) != 2 { // the login and the pair-named token
		t.Fatalf("refused bodies created tokens: %v", list)
	}
	for _, path := range []string{"/v1/auth/refresh", "/v1/auth/logout"} {
		r := issDo(t, httpClient, d.URL(path), "POST", tok, `{"`+"\xff"+`":1}`)
		expect400(path, r.status, r.body)
	}
	if status, _ := issSQL(t, d, tok, "SELECT 1"); status != 200 {
		t.Fatal("a refused logout revoked the token")
	}
}
