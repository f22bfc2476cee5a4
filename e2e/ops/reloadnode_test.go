package ops

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/heliosdb/auth/internal/testdaemon"
)

// TestReloadGatewayNode: a gateway node (--role gateway) reloads its TLS
// certificate and limits the same way; a restart-only setting of nodes
// (stale_after) is refused by name.
func TestReloadGatewayNode(t *testing.T) {
	iss := testdaemon.Start(t)
	dir := t.TempDir()
	certA, keyA := writeCert(t, dir, "a", 3003)
	conf := filepath.Join(dir, "node.toml")
	base := `tls_cert = "` + certA + `"` + "\n" + `tls_key = "` + keyA + `"` + "\n"
	write(t, conf, base)
	key := filepath.Join(dir, "cluster.key")
	write(t, key, read(t, filepath.Join(iss.DataDir, "cluster.key")))
	node := testdaemon.Start(t, testdaemon.WithArgs("--role", "gateway", "--issuer-url", "http://"+iss.HTTP,
		"--cluster-key-file", key, "--config", conf))
	if s := pgSerial(t, node.PG); s != 3003 {
		t.Fatalf("node serves serial %d, want 3003", s)
	}
	certB, keyB := writeCert(t, dir, "b", 4004)
	write(t, certA, read(t, certB))
	write(t, keyA, read(t, keyB))
	write(t, conf, base+"max_conns_per_ip = 2\nstale_after = \"1m\"\n")
	out, err := reloadCmd(t, "--data-dir", node.DataDir)
	if err != nil {
		t.Fatalf("heliosd reload on a node: %v\n%s", err, out)
	}
	for _, want := range []string{"tls certificate (serial fa4)", "max_conns_per_ip", "refused: stale_after (needs a restart)"} {
		if !strings.Contains(out, want) {
			t.Errorf("reload output lacks %q:\n%s", want, out)
		}
	}
	if s := pgSerial(t, node.PG); s != 4004 {
		t.Errorf("node serves serial %d after reload, want 4004", s)
	}
	oneRefused := func(r []string) bool { return count(r, "max number of clients reached") == 1 }
	if r := settledReplies(t, node.Redis, 3, oneRefused); !oneRefused(r) {
		t.Errorf("three connections at max_conns_per_ip 2 on the node: %q", r)
	}
}
