package tlsfile

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
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
