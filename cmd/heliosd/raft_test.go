package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRaftSettings: the raft settings come from flags, HELIOS_RAFT_*
// variables and the TOML file like every other; none given is a single
// issuer; an incomplete or inconsistent set is refused with what to fix.
func TestRaftSettings(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	cfg, err := loadConfig(nil, none, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.raftEnabled() || cfg.RaftElectionTimeout != 300*time.Millisecond {
		t.Fatalf("defaults: raft enabled %v, election timeout %v", cfg.raftEnabled(), cfg.RaftElectionTimeout)
	}
	cfg, err = loadConfig([]string{"--raft-id", "r1", "--raft-listen", "127.0.0.1:7001", "--raft-peers", "r1=127.0.0.1:7001,r2=127.0.0.1:7002"}, none, io.Discard)
	if err != nil || !cfg.raftEnabled() || cfg.RaftID != "r1" {
		t.Fatalf("flags: %+v, %v", cfg, err)
	}
	env := map[string]string{"HELIOS_RAFT_ID": "r2", "HELIOS_RAFT_LISTEN": "127.0.0.1:7002", "HELIOS_RAFT_PEERS": "r1=127.0.0.1:7001,r2=127.0.0.1:7002",
		"HELIOS_RAFT_ELECTION_TIMEOUT": "500ms"}
	cfg, err = loadConfig(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, io.Discard)
	if err != nil || cfg.RaftID != "r2" || cfg.RaftElectionTimeout != 500*time.Millisecond {
		t.Fatalf("environment: %+v, %v", cfg, err)
	}
	file := filepath.Join(t.TempDir(), "heliosd.toml")
	if err := os.WriteFile(file, []byte("raft_id = \"r3\"\nraft_listen = \"127.0.0.1:7003\"\nraft_peers = \"r3=127.0.0.1:7003\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = loadConfig([]string{"--config", file}, none, io.Discard)
	if err != nil || cfg.RaftID != "r3" || cfg.RaftPeers != "r3=127.0.0.1:7003" {
		t.Fatalf("TOML: %+v, %v", cfg, err)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--raft-id", "r1"}, "raft_listen"},
		{[]string{"--raft-id", "r1", "--raft-listen", "127.0.0.1:7001", "--raft-peers", "r2=127.0.0.1:7002"}, "does not name this replica"},
		{[]string{"--raft-id", "r1", "--raft-listen", "127.0.0.1:7001", "--raft-peers", "r1"}, "id=host:port"},
		{[]string{"--raft-id", "r1", "--raft-listen", "127.0.0.1:7001", "--raft-election-timeout", "1ms"}, "at least 50ms"},
		{[]string{"--role", "gateway", "--issuer-url", "http://a:1", "--cluster-key-file", "k", "--raft-id", "r1"}, "role all"},
		{[]string{"--role", "gateway", "--issuer-url", "http://a:1,b:2", "--cluster-key-file", "k"}, `"b:2"`},
	} {
		if _, err := loadConfig(bad.args, none, io.Discard); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v: %v, want an error saying %q", bad.args, err, bad.want)
		}
	}
	if _, err := loadConfig([]string{"--role", "gateway", "--issuer-url", "http://a:1, http://b:2", "--cluster-key-file", "k"}, none, io.Discard); err != nil {
		t.Errorf("a gateway following two replicas: %v", err)
	}
}
