package main

import (
	"strings"
	"testing"
)

// TestConnectGuideShapes: wildcard listeners are named by the host name,
// IPv6 hosts are bracketed in URIs, a CA path with spaces or quotes stays one
// shell word and one URI value, a certificate from another CA leaves the
// system trust store to the clients, and a gateway node prints no CLI line.
func TestConnectGuideShapes(t *testing.T) {
	listen := map[string]string{"http": "0.0.0.0:8080", "postgres": "[::1]:5432", "mysql": "", "redis": "127.0.0.1:6379", "mongodb": "[::]:27017"}
	g := connectGuide(listen, "/var/lib/helios d/it's.pem", "db1.example.com", true)
	for _, want := range []string{
		"https://db1.example.com:8080/api/v1/sql",
		`curl --cacert '/var/lib/helios d/it'\''s.pem' `,
		"postgresql://default:$HELIOS_TOKEN@[::1]:5432/main?sslmode=verify-full&sslrootcert=/var/lib/helios%20d/it%27s.pem\"",
		"redis-cli -h 127.0.0.1 -p 6379 --tls --cacert '/var/lib/helios d/it'\\''s.pem' --user default",
		"mongodb://default:$HELIOS_TOKEN@db1.example.com:27017/main?authMechanism=PLAIN&tls=true&tlsCAFile=/var/lib/helios%20d/it%27s.pem\"",
		"helios CLI  export HELIOS_API_URL=https://db1.example.com:8080 HELIOS_CA_CERT='/var/lib/helios d/it'\\''s.pem'",
		"NODE_EXTRA_CA_CERTS=",
	} {
		if !strings.Contains(g, want) {
			t.Errorf("guide lacks %q:\n%s", want, g)
		}
	}
	if strings.Contains(g, "mariadb") {
		t.Errorf("a disabled listener has a line:\n%s", g)
	}
	node := connectGuide(listen, "", "db1.example.com", false)
	if strings.Contains(node, "helios CLI") || strings.Contains(node, "--cacert") || strings.Contains(node, "tlsCAFile") ||
		!strings.Contains(node, "system trust store") || !strings.Contains(node, "sslrootcert=system") {
		t.Errorf("a node with a CA-issued certificate:\n%s", node)
	}
}
