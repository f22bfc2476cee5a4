package ops

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/keyfile"
	"github.com/heliosdb/auth/internal/testdaemon"
)

// writeCert writes a self-signed certificate with the given serial for
// localhost and 127.0.0.1, and its key, to dir/name.pem and dir/name.key.
func writeCert(t *testing.T, dir, name string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "heliosd test " + name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	write(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	write(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})))
	return certFile, keyFile
}

// httpsSerial opens a TLS connection to the REST listener and returns the
// serial of the certificate it presents, and the connection.
func httpsSerial(t *testing.T, addr string) (int64, *tls.Conn) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), c
}

// pgSerial asks the PostgreSQL listener for TLS (SSLRequest) and returns
// the serial of the certificate it presents.
func pgSerial(t *testing.T, addr string) int64 {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 8), 80877103)
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil || b[0] != 'S' {
		t.Fatalf("SSLRequest: %q %v", b, err)
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return tc.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// getHealth sends GET /healthz on an open HTTP/1.1 connection.
func getHealth(c net.Conn, br *bufio.Reader) (int, error) {
	if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// reloadCmd runs heliosd reload with args and returns its output and error.
func reloadCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(testdaemon.Build(t, "heliosd"), append([]string{"reload"}, args...)...).CombinedOutput()
	return string(out), err
}

// TestReload: heliosd reload (and SIGHUP) swaps the TLS certificate (new
// handshakes on the gateway and the REST port see the new serial while a
// PostgreSQL session and an HTTP keep-alive connection opened before keep
// working), applies handshake_timeout, plaintext_allow and log_level,
// takes a key added to the keyring file, refuses a changed listen address
// (session_expiry) by name while applying the rest, and refuses an invalid file whole.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	certA, keyA := writeCert(t, dir, "a", 1001)
	conf := filepath.Join(dir, "heliosd.toml")
	base := `tls_cert = "` + certA + `"` + "\n" + `tls_key = "` + keyA + `"` + "\n"
	write(t, conf, base+"log_level = \"info\"\n")
	d := testdaemon.Start(t, testdaemon.WithArgs("--config", conf))

	bearer := d.NewUser(t)
	tok, _ := d.CreateToken(t, bearer, map[string]any{"name": "reload", "scopes": []string{"database:read"}})
	ctx := context.Background()
	pg, err := pgx.Connect(ctx, "postgresql://default:"+tok+"@"+d.PG+"/main?sslmode=require&connect_timeout=10")
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(ctx)
	if s := pgSerial(t, d.PG); s != 1001 {
		t.Fatalf("PostgreSQL serves serial %d, want 1001", s)
	}
	serial, keep := httpsSerial(t, d.HTTP)
	defer keep.Close()
	keepBR := bufio.NewReader(keep)
	if serial != 1001 {
		t.Fatalf("REST serves serial %d, want 1001", serial)
	}
	if code, err := getHealth(keep, keepBR); err != nil || code != 200 {
		t.Fatalf("healthz before reload: %d %v", code, err)
	}

	// The certificate files are replaced in place (as certbot does), the
	// gateway limits, networks and log level changed, a listener moved.
	certB, keyB := writeCert(t, dir, "b", 2002)
	write(t, certA, read(t, certB))
	write(t, keyA, read(t, keyB))
	write(t, conf, base+`log_level = "warn"
handshake_timeout = "1s"
plaintext_allow = ["10.9.0.0/16"]
session_expiry = "keep"
`)
	out, err := reloadCmd(t, "--data-dir", d.DataDir)
	if err != nil {
		t.Fatalf("heliosd reload: %v\n%s", err, out)
	}
	for _, want := range []string{"tls certificate (serial 7d2)", "handshake_timeout", "plaintext_allow", "log_level", "refused: session_expiry (needs a restart)"} {
		if !strings.Contains(out, want) {
			t.Errorf("reload output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(d.Logs(), `msg=reloaded changed="`) {
		t.Errorf("no reloaded log line:\n%s", d.Logs())
	}

	// New handshakes see the new certificate on both kinds of listener.
	if s := pgSerial(t, d.PG); s != 2002 {
		t.Errorf("PostgreSQL serves serial %d after reload, want 2002", s)
	}
	if s, c := httpsSerial(t, d.HTTP); s != 2002 {
		t.Errorf("REST serves serial %d after reload, want 2002", s)
	} else {
		c.Close()
	}
	// The sessions opened before go on.
	var one int
	if err := pg.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Errorf("PostgreSQL session opened before the reload: %v", err)
	}
	if code, err := getHealth(keep, keepBR); err != nil || code != 200 {
		t.Errorf("HTTP keep-alive connection opened before the reload: %d %v", code, err)
	}
	// handshake_timeout 1s: a silent connection is closed within ~1s,
	// not the 10s of before.
	c, err := net.Dial("tcp", d.Redis)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(8 * time.Second))
	_, _ = io.Copy(io.Discard, c)
	c.Close()
	if el := time.Since(start); el > 4*time.Second {
		t.Errorf("a silent connection was closed after %s, want ~1s (handshake_timeout reloaded)", el)
	}
	// plaintext_allow without loopback: plain HTTP from here is refused.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := fresh.Get(d.URL("/healthz"))
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("plain HTTP from loopback after plaintext_allow = [10.9.0.0/16]: %s, want 403", resp.Status)
		}
	}
	// log_level warn: an account created now logs no info line.
	before := strings.Count(d.Logs(), "account created")
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	r2, err := tlsClient.Post("https://"+d.HTTP+"/v1/auth/signup", "application/json",
		strings.NewReader(`{"email":"quiet@example.com","password":"correct-horse-battery-staple"}`))
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode/100 != 2 {
		t.Fatalf("signup over TLS: %s", r2.Status)
	}
	if after := strings.Count(d.Logs(), "account created"); after != before {
		t.Errorf("an info line after log_level = warn was reloaded")
	}

	// A key added to the keyring file: tokens it signs verify after a
	// SIGHUP, not before.
	ringPath := filepath.Join(d.DataDir, "keyring.json")
	ring, err := keyfile.Load(ringPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ring.Rotate(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := keyfile.Save(ringPath, ring); err != nil {
		t.Fatal(err)
	}
	minted := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
	url := "postgresql://default:" + minted + "@" + d.PG + "/main?sslmode=require&connect_timeout=10"
	if c, err := pgx.Connect(ctx, url); err == nil {
		c.Close(ctx)
		t.Fatal("a token of a key the daemon has not loaded was accepted")
	}
	if err := syscall.Kill(d.PID(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var ok bool
	for i := 0; i < 100 && !ok; i++ {
		if c, err := pgx.Connect(ctx, url); err == nil {
			c.Close(ctx)
			ok = true
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !ok {
		t.Error("a token of the key added to the keyring file is refused after SIGHUP")
	}

	// An invalid file: refused whole, the daemon serves on.
	write(t, conf, base+"max_conns = \"many\"\n")
	if out, err := reloadCmd(t, "--data-dir", d.DataDir); err == nil || !strings.Contains(out, "max_conns") {
		t.Errorf("reload of an invalid file: %v\n%s", err, out)
	}
	if s := pgSerial(t, d.PG); s != 2002 {
		t.Errorf("after a refused reload: serial %d", s)
	}
}
