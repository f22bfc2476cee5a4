package e2e

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/heliosdb/auth/internal/listeners"
)

// TestDaemonStartsAndStops checks the harness itself: the daemon listens on
// every listener's port (every one of internal/listeners) and, restarted on the same data directory, keeps its
// keyring (so tokens issued before a restart stay valid).
func TestDaemonStartsAndStops(t *testing.T) {
	d := startDaemon(t)
	keyPath := filepath.Join(d.DataDir, "keyring.json")
	before, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(keyPath); st.Mode().Perm() != 0o600 {
		t.Fatalf("keyring mode %v", st.Mode().Perm())
	}
	d.Restart(t)
	for _, l := range listeners.All {
		c, err := net.Dial("tcp", d.Addr(l.Flag))
		if err != nil {
			t.Fatalf("%s (--%s %s) after restart: %v", l.Protocol, l.Flag, d.Addr(l.Flag), err)
		}
		c.Close()
	}
	after, _ := os.ReadFile(keyPath)
	if string(before) != string(after) {
		t.Fatal("keyring changed across a restart")
	}
}
