package main

import (
	"crypto/tls"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/heliosdb/auth/core/tlsfile"
	"github.com/heliosdb/auth/internal/connstr"
	"github.com/heliosdb/auth/internal/listeners"
)

// connectGuide is the block heliosd prints to stderr once every listener is
// up: where the CA certificate is, and for each listener one ready-to-paste
// line that connects with the client people use, verification on. ca is
// the absolute path of the certificate to trust when it is self-signed
// (the generated default); "" means a certificate issued by another CA, which
// clients verify with their system trust store. hostname names the machine
// for listeners on a wildcard address. The token is always $HELIOS_TOKEN:
// the guide never holds one. issuer adds the helios CLI line (a gateway
// node serves no /v1/auth).
func connectGuide(listen map[string]string, ca, hostname string, issuer bool) string {
	var b strings.Builder
	if ca != "" {
		b.WriteString("TLS: clients verify heliosd with the CA certificate " + ca + " (self-signed).\n")
	} else {
		b.WriteString("TLS: clients verify heliosd's certificate with their system trust store.\n")
	}
	b.WriteString("Connect (a token in HELIOS_TOKEN: export HELIOS_TOKEN=$(helios auth token)):\n")
	for _, l := range listeners.All {
		addr := listen[l.Protocol]
		if addr == "" {
			continue
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			continue
		}
		if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
			host = hostname
		}
		for _, line := range connstr.Lines(l.Protocol, host, port, ca, issuer) {
			b.WriteString("  " + line + "\n")
		}
	}
	return b.String()
}

// caFileFor is the certificate clients must trust, made absolute (it is
// printed to be pasted anywhere): the served certificate when it is
// self-signed, "" when another CA issued it.
func caFileFor(tlsCfg *tls.Config, certPath string) string {
	if !tlsfile.SelfSigned(tlsCfg) {
		return ""
	}
	if abs, err := filepath.Abs(certPath); err == nil {
		return abs
	}
	return certPath
}

// guideFor is the connection guide for this configuration.
func guideFor(cfg *Config, issuer bool) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return connectGuide(cfg.Listen, cfg.caFile, host, issuer)
}
