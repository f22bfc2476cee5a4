package tlsfile

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestGenerateOnceAndReuse(t *testing.T) {
	dir := t.TempDir()
	cfg, certPath, generated, err := LoadOrGenerate(dir, "", "", []string{"db.example.com", "10.0.0.7"})
	if err != nil || !generated || certPath != filepath.Join(dir, CertFile) {
		t.Fatalf("%v %v %s", generated, err, certPath)
	}
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Fatal("TLS below 1.2 allowed")
	}
	if st, _ := os.Stat(filepath.Join(dir, KeyFile)); st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", st.Mode().Perm())
	}
	leaf, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "db.example.com", "10.0.0.7"} {
		if err := leaf.VerifyHostname(host); err != nil {
			t.Fatalf("%s: %v", host, err)
		}
	}
	again, _, generated, err := LoadOrGenerate(dir, "", "", nil)
	if err != nil || generated || string(again.Certificates[0].Certificate[0]) != string(cfg.Certificates[0].Certificate[0]) {
		t.Fatalf("second start regenerated the certificate: %v %v", generated, err)
	}
	if _, _, _, err := LoadOrGenerate(dir, filepath.Join(dir, "missing.pem"), filepath.Join(dir, "missing-key.pem"), nil); err == nil {
		t.Fatal("a configured but missing certificate was accepted")
	}
}

// TestSelfSigned tells the generated certificate (its own CA) from one an
// operator's CA issued (verified with that CA, which heliosd never holds).
func TestSelfSigned(t *testing.T) {
	dir := t.TempDir()
	cfg, _, _, err := LoadOrGenerate(dir, "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !SelfSigned(cfg) {
		t.Fatal("the generated certificate is its own CA")
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "operator CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "db.example.com"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"db.example.com"}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	if SelfSigned(&tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}}}}) {
		t.Fatal("a certificate issued by another CA was taken for a self-signed one")
	}
	if SelfSigned(nil) || SelfSigned(&tls.Config{}) {
		t.Fatal("no certificate is not self-signed")
	}
}
