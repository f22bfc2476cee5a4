package rest

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/core/tlsfile"
	"github.com/valyala/fasthttp"
)

// serve runs a fasthttp server behind NewListener and returns its address
// and the CA to trust.
func serve(t *testing.T, allow []netip.Prefix) (string, *x509.CertPool) {
	t.Helper()
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
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello") }}
	go srv.Serve(NewListener(ln, cfg, allow, nil))
	t.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String(), pool
}

func TestListenerPlaintextAndTLSOnOnePort(t *testing.T) {
	addr, pool := serve(t, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello" {
		t.Fatalf("plaintext: %s", body)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	resp, err = c.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello" || resp.TLS == nil {
		t.Fatalf("TLS: %s", body)
	}
}

func TestListenerRefusesPlaintextFromOtherNetworks(t *testing.T) {
	addr, _ := serve(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 403 || !strings.Contains(string(body), "TLS_REQUIRED") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}
