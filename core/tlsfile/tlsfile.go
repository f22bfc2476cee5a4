// Package tlsfile loads the node's TLS certificate, or generates a
// self-signed one on first start into the data directory. The issuer's HTTPS
// and every gateway listener share it. It must never log key material.
package tlsfile

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/heliosdb/auth/core/atomicfile"
)

// File names inside the data directory.
const (
	CertFile = "tls-cert.pem"
	KeyFile  = "tls-key.pem"
)

// LoadOrGenerate returns a TLS 1.2+ server configuration. With certFile and
// keyFile set it loads them; otherwise it uses dataDir/tls-cert.pem and
// dataDir/tls-key.pem, generating a self-signed ECDSA P-256 certificate for
// localhost, 127.0.0.1 and ::1 (plus hosts) when they do not exist yet.
// certPath is the certificate clients should trust (the CA path to print).
func LoadOrGenerate(dataDir, certFile, keyFile string, hosts []string) (cfg *tls.Config, certPath string, generated bool, err error) {
	if certFile == "" && keyFile == "" {
		certFile, keyFile = filepath.Join(dataDir, CertFile), filepath.Join(dataDir, KeyFile)
		if _, err := os.Stat(certFile); errors.Is(err, fs.ErrNotExist) {
			if err := generate(certFile, keyFile, hosts); err != nil {
				return nil, "", false, err
			}
			generated = true
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, "", false, fmt.Errorf("load TLS certificate %s: %w", certFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, certFile, generated, nil
}

func generate(certFile, keyFile string, hosts []string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return fmt.Errorf("generate TLS serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "heliosdb self-signed", Organization: []string{"HeliosDB"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(825 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("generate TLS certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("generate TLS key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(keyFile, 0o600, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})); err != nil {
		return fmt.Errorf("write TLS key: %w", err)
	}
	// The certificate last: its presence is what marks the pair complete.
	// It is public, but 0600 like everything else in the 0700 data
	// directory (nobody else can reach it there anyway).
	if err := atomicfile.WriteBytes(certFile, 0o600, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); err != nil {
		return fmt.Errorf("write TLS certificate: %w", err)
	}
	return nil
}

// SelfSigned reports whether the certificate cfg serves signs itself: then
// it is the CA clients must be told to trust (the generated default, or an
// operator's own self-signed one). A certificate issued by another CA is
// verified with that CA, which heliosd does not hold.
func SelfSigned(cfg *tls.Config) bool {
	if cfg == nil || len(cfg.Certificates) == 0 {
		return false
	}
	c := cfg.Certificates[0]
	leaf := c.Leaf
	if leaf == nil && len(c.Certificate) > 0 {
		leaf, _ = x509.ParseCertificate(c.Certificate[0])
	}
	return leaf != nil && bytes.Equal(leaf.RawIssuer, leaf.RawSubject) && leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil
}
