package console

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/internal/testdaemon"
)

// TestConsoleOverHTTPS: on heliosd's one HTTP port, a console page reached
// over TLS sets its cookies Secure with the __Host- prefix (over plain HTTP
// from loopback they cannot be Secure), and the API beside it keeps its
// JSON answers for unknown paths and methods.
func TestConsoleOverHTTPS(t *testing.T) {
	d := testdaemon.Start(t)
	pem, err := os.ReadFile(d.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(url string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("https://" + d.HTTP + "/signin")
	if resp.StatusCode != 200 || !strings.Contains(body, `action="/signin"`) {
		t.Fatalf("GET /signin over TLS: %d\n%s", resp.StatusCode, body)
	}
	cookie := strings.Join(resp.Header.Values("Set-Cookie"), "\n")
	if !strings.HasPrefix(cookie, "__Host-") || !strings.Contains(strings.ToLower(cookie), "; secure") {
		t.Fatalf("cookie over TLS: %q", cookie)
	}
	resp, _ = get("http://" + d.HTTP + "/signin")
	if cookie := strings.Join(resp.Header.Values("Set-Cookie"), "\n"); strings.HasPrefix(cookie, "__Host-") || strings.Contains(strings.ToLower(cookie), "secure") {
		t.Fatalf("cookie over plain HTTP: %q", cookie)
	}
	for path, want := range map[string]int{"/v1/auth/nothing": 404, "/v1/auth/login": 405, "/nothing": 404} {
		resp, body := get("https://" + d.HTTP + path)
		if resp.StatusCode != want || !strings.Contains(body, `"error"`) {
			t.Errorf("GET %s: %d %s, want %d and a JSON error", path, resp.StatusCode, body, want)
		}
	}
}
