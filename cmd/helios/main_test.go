package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeAPI serves a canned /v1/auth API and records requests.
func fakeAPI(t *testing.T) (*httptest.Server, *[]string) {
	var seen []string
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/auth/login", func(w http.ResponseWriter, r *http.Request) {
		var c map[string]string
		_ = json.NewDecoder(r.Body).Decode(&c)
		if c["password"] != "pw" {
			w.WriteHeader(401)
			_, _ = w.Write([]byte(`{"error":{"code":"AUTH_REQUIRED","message":"Invalid email or password"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"token":"hdb_live_abc","token_type":"bearer","expires_at":"2099-01-01T00:00:00Z"}` + "\n"))
	})
	mux.HandleFunc("GET /v1/auth/tokens", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"tokens":[{"id":"tok_1","name":"dup"},{"id":"tok_2","name":"dup"},{"id":"tok_3","name":"one"}]}`))
	})
	mux.HandleFunc("DELETE /v1/auth/tokens/{id}", func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("Authorization")+" "+r.PathValue("id"))
		_, _ = w.Write([]byte(`{"id":"` + r.PathValue("id") + `","revoked":true}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &seen
}

// runCLI runs the command tree in-process.
func runCLI(t *testing.T, stdin string, args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	a := &app{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, interactive: func() bool { return false }}
	cmd := a.root()
	cmd.SetArgs(args)
	err := cmd.Execute()
	if err != nil {
		a.printError(err)
	}
	return out.String(), errb.String(), err
}

func isolate(t *testing.T, api string) string {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("HOME", dir)
	t.Setenv("HELIOS_TOKEN", "")
	t.Setenv("HELIOS_API_URL", api)
	t.Setenv("HELIOS_CA_CERT", "")
	return filepath.Join(dir, "helios", "credentials.json")
}

func TestLoginSavesCredentials0600AndJSONIsVerbatim(t *testing.T) {
	srv, _ := fakeAPI(t)
	path := isolate(t, srv.URL)
	out, _, err := runCLI(t, "pw\n", "auth", "login", "--email", "a@b.io", "--output=json")
	if err != nil || out != `{"token":"hdb_live_abc","token_type":"bearer","expires_at":"2099-01-01T00:00:00Z"}`+"\n" {
		t.Fatalf("login json: %q %v", out, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials: %v %v", st, err)
	}
	c, err := loadCredentials()
	if err != nil || c.Token != "hdb_live_abc" || c.Email != "a@b.io" || c.APIURL != srv.URL || !c.ExpiresAt.Equal(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("saved %+v %v", c, err)
	}
	if out, _, _ := runCLI(t, "", "auth", "token"); out != "hdb_live_abc\n" {
		t.Fatalf("auth token: %q", out)
	}
	t.Setenv("HELIOS_TOKEN", "hdb_svc_override")
	if out, _, _ := runCLI(t, "", "auth", "token"); out != "hdb_svc_override\n" {
		t.Fatalf("HELIOS_TOKEN override: %q", out)
	}
}

func TestServerErrorIsPrintedWithCode(t *testing.T) {
	srv, _ := fakeAPI(t)
	isolate(t, srv.URL)
	_, errs, err := runCLI(t, "a@b.io\nwrong\n", "auth", "login")
	if err == nil || !strings.HasPrefix(errs, "Error: AUTH_REQUIRED: Invalid email or password\n") {
		t.Fatalf("got %q %v", errs, err)
	}
	_, errs, err = runCLI(t, "", "auth", "login")
	if err == nil || !strings.Contains(errs, "not a terminal") {
		t.Fatalf("no credentials on stdin: %q", errs)
	}
	_, errs, err = runCLI(t, "", "token", "list", "--output", "yaml")
	if err == nil || !strings.Contains(errs, "--output must be text or json") {
		t.Fatalf("bad output: %q", errs)
	}
}

func TestRevokeByName(t *testing.T) {
	srv, seen := fakeAPI(t)
	isolate(t, srv.URL)
	t.Setenv("HELIOS_TOKEN", "hdb_live_x")
	if out, _, err := runCLI(t, "", "token", "revoke", "one"); err != nil || !strings.Contains(out, `Revoked token "one" (tok_3)`) {
		t.Fatalf("%q %v", out, err)
	}
	if _, errs, err := runCLI(t, "", "token", "revoke", "dup"); err == nil || !strings.Contains(errs, "tok_1, tok_2") {
		t.Fatalf("ambiguous: %q", errs)
	}
	if _, errs, err := runCLI(t, "", "token", "revoke", "nope"); err == nil || !strings.Contains(errs, `no token named "nope"`) {
		t.Fatalf("missing: %q", errs)
	}
	if _, _, err := runCLI(t, "", "token", "revoke", "tok_9"); err != nil {
		t.Fatal(err)
	}
	if strings.Join(*seen, ";") != "Bearer hdb_live_x tok_3;Bearer hdb_live_x tok_9" {
		t.Fatalf("requests %v", *seen)
	}
}

func TestHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{
		168 * time.Hour: "7d 0h 0m", 90 * time.Minute: "1h 30m", 5 * time.Minute: "5m", 30 * time.Second: "30s",
	} {
		if got := human(d); got != want {
			t.Errorf("human(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestForbiddenHints: a 403 whose challenge names scope "*" (an account
// endpoint called with a narrower token) gets a hint that can succeed:
// logging in, and unsetting HELIOS_TOKEN when that is where the token came
// from (HELIOS_TOKEN overrides the saved login); refreshing a service
// token is answered with how to rotate it.
func TestForbiddenHints(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/auth/tokens", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="*"`)
		w.WriteHeader(403)
		_, _ = w.Write([]byte(`{"error":{"code":"FORBIDDEN","message":"listing tokens needs a full-access token (scope *); this token has database:read"}}`))
	})
	mux.HandleFunc("POST /v1/auth/refresh", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope"`)
		w.WriteHeader(403)
		_, _ = w.Write([]byte(`{"error":{"code":"FORBIDDEN","message":"service tokens are not refreshed"}}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	isolate(t, srv.URL)

	t.Setenv("HELIOS_TOKEN", "hdb_live_scoped")
	_, errs, err := runCLI(t, "", "token", "list")
	if err == nil || !strings.Contains(errs, "Error: FORBIDDEN: listing tokens needs a full-access token") ||
		!strings.Contains(errs, "Hint: this needs a full-access token (scope *), and HELIOS_TOKEN holds another one: unset HELIOS_TOKEN") {
		t.Fatalf("HELIOS_TOKEN: %q", errs)
	}
	t.Setenv("HELIOS_TOKEN", "")
	if _, err := (&credentials{APIURL: srv.URL, Token: "hdb_live_saved"}).save(); err != nil {
		t.Fatal(err)
	}
	_, errs, _ = runCLI(t, "", "token", "list")
	if !strings.Contains(errs, "Hint: this needs a full-access token (scope *): log in again: helios auth login.") || strings.Contains(errs, "HELIOS_TOKEN") {
		t.Fatalf("saved token: %q", errs)
	}
	t.Setenv("HELIOS_TOKEN", "hdb_svc_x")
	_, errs, _ = runCLI(t, "", "auth", "refresh")
	if !strings.Contains(errs, "Hint: rotate a service token instead: helios token create") || strings.Contains(errs, "required scope") {
		t.Fatalf("service token refresh: %q", errs)
	}
}

// TestReadLinesLeavesTheRest: commands chained in one script (helios auth
// signup && helios auth login) read their credentials from one stdin, so
// each must consume only its own lines.
func TestReadLinesLeavesTheRest(t *testing.T) {
	r := strings.NewReader("a@example.com\r\nsecret one\nb@example.com\nsecret two")
	first, err := readLines(r, 2)
	if err != nil || len(first) != 2 || first[0] != "a@example.com" || first[1] != "secret one" {
		t.Fatalf("first: %q %v", first, err)
	}
	second, err := readLines(r, 2)
	if err != nil || len(second) != 2 || second[0] != "b@example.com" || second[1] != "secret two" {
		t.Fatalf("second (the last line has no newline): %q %v", second, err)
	}
	if rest, err := readLines(r, 2); err != nil || len(rest) != 0 {
		t.Fatalf("after the end: %q %v", rest, err)
	}
}
