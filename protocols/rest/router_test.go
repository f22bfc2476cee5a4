package rest

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/heliosdb/auth/core/tlsfile"
	"github.com/valyala/fasthttp"
)

// TestRootRouteIsExact: a page at "/" (the web console's) answers "/" only;
// other paths keep their 404 and 405 answers instead of reaching it.
func TestRootRouteIsExact(t *testing.T) {
	f := newFixture(t)
	f.router.Public("POST", "/v1/auth/login", func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("login") })
	f.router.Public("GET", "/", func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("root") })
	if ctx := f.do("GET", "/", "", ""); string(ctx.Response.Body()) != "root" {
		t.Fatalf("GET /: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	if ctx := f.do("GET", "/nothing-here", "", ""); ctx.Response.StatusCode() != 404 {
		t.Fatalf("GET /nothing-here: %d %s, want 404", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	if ctx := f.do("GET", "/v1/auth/login", "", ""); ctx.Response.StatusCode() != 405 {
		t.Fatalf("GET /v1/auth/login: %d %s, want 405", ctx.Response.StatusCode(), ctx.Response.Body())
	}
}

// TestRequestTLS: on one port, a TLS request is told apart from a
// plaintext one, also through fasthttp's per-address wrapper.
func TestRequestTLS(t *testing.T) {
	dir := t.TempDir()
	cfg, certPath, _, err := tlsfile.LoadOrGenerate(dir, "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(filepath.Clean(certPath))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// MaxConnsPerIP makes fasthttp wrap each connection, as heliosd's
	// server does.
	srv := &fasthttp.Server{MaxConnsPerIP: 10, Handler: func(ctx *fasthttp.RequestCtx) {
		if RequestTLS(ctx) {
			ctx.SetBodyString("tls")
		} else {
			ctx.SetBodyString("plain")
		}
	}}
	go srv.Serve(NewListener(ln, cfg, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, nil))
	t.Cleanup(func() { srv.Shutdown() })
	get := func(c *http.Client, url string) string {
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	addr := ln.Addr().String()
	if got := get(http.DefaultClient, "http://"+addr+"/"); got != "plain" {
		t.Fatalf("plaintext request: %q", got)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	if got := get(c, "https://"+addr+"/"); got != "tls" {
		t.Fatalf("TLS request: %q", got)
	}
}
