package keyfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
)

func TestGenerateSaveLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyring.json")
	ring, created, err := LoadOrGenerate(path, time.Now())
	if err != nil || !created {
		t.Fatalf("generate: %v %v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", st.Mode().Perm(), err)
	}
	if _, err := ring.Rotate(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := ring.Retire(1); err != nil {
		t.Fatal(err)
	}
	if err := Save(path, ring); err != nil {
		t.Fatal(err)
	}
	back, created, err := LoadOrGenerate(path, time.Now())
	if err != nil || created {
		t.Fatalf("reload: %v %v", created, err)
	}
	if back.Signing().ID != 2 || !back.Lookup(1).Retired || back.Lookup(2).Secret != ring.Lookup(2).Secret {
		t.Fatalf("reloaded ring differs: %+v", back.Keys())
	}
	// A token minted before the save verifies with the reloaded ring.
	now := time.Now()
	tok, _, err := core.NewMinter(ring).Mint(nil, core.Claims{Type: core.TypeLive, ID: core.NewTokenID(), IssuedAt: now.Unix(), ExpiresAt: now.Unix() + 60})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := core.NewVerifier(back, nil).Verify(tok, now); err != nil {
		t.Fatal(err)
	}
}

func TestRefusesReadableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyring.json")
	if _, _, err := LoadOrGenerate(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("mode %#o: %v", mode, err)
		}
		if _, _, err := LoadOrGenerate(path, time.Now()); err == nil {
			t.Fatalf("LoadOrGenerate replaced a readable key file (mode %#o)", mode)
		}
	}
}

func TestRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"garbage":      "not json",
		"short secret": `{"signing":1,"keys":[{"id":1,"secret":"AAAA"}]}`,
		"no signing":   `{"signing":2,"keys":[{"id":1,"secret":"` + strings.Repeat("A", 43) + `="}]}`,
		"unknown":      `{"signing":1,"extra":true,"keys":[]}`,
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err == nil {
			t.Fatalf("%s: loaded", name)
		}
	}
}
