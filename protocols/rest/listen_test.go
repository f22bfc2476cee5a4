package rest

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
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

// TestListenerRefusesPlaintextFromOtherNetworks: a plaintext request from a
// network not allowed gets 403 TLS_REQUIRED, counted as the gateway's
// tls_required outcome for protocol="rest"; the connection is counted open
// and then closed.
func TestListenerRefusesPlaintextFromOtherNetworks(t *testing.T) {
	tlsRequired := metrics.GetOrCreateCounter(`helios_gateway_auth_total{protocol="rest",outcome="tls_required"}`)
	total := metrics.GetOrCreateCounter(`helios_gateway_connections_total{protocol="rest"}`)
	open := func() float64 {
		var b strings.Builder
		metrics.WritePrometheus(&b, false)
		for _, line := range strings.Split(b.String(), "\n") {
			if v, ok := strings.CutPrefix(line, `helios_gateway_connections_open{protocol="rest"} `); ok {
				f, _ := strconv.ParseFloat(v, 64)
				return f
			}
		}
		return -1
	}
	refusedBefore, totalBefore, openBefore := tlsRequired.Get(), total.Get(), open()
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
	if resp.StatusCode != 403 || !strings.Contains(string(body), "TLS_REQUIRED") || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var eb errBody
	if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code != "TLS_REQUIRED" || !strings.Contains(eb.Error.Message, "https://") {
		t.Fatalf("body %s: %v", body, err)
	}
	if got := tlsRequired.Get() - refusedBefore; got != 1 {
		t.Fatalf("tls_required counted %d times", got)
	}
	if got := total.Get() - totalBefore; got != 1 {
		t.Fatalf("connections_total counted %d", got)
	}
	for deadline := time.Now().Add(5 * time.Second); open() != openBefore; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("connections_open stays %v after the refused connection closed", open())
		}
	}
}
