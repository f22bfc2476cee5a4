package e2e

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// TestDaemonStartsAndStops checks the harness itself: the daemon listens on
// every configured port and, restarted on the same data directory, keeps its
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
	for _, addr := range []string{d.HTTP, d.PG, d.Redis, d.MySQL, d.Mongo} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("%s after restart: %v", addr, err)
		}
		c.Close()
	}
	after, _ := os.ReadFile(keyPath)
	if string(before) != string(after) {
		t.Fatal("keyring changed across a restart")
	}
}
