package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestStorageReserveSetting(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	cfg, err := loadConfig(nil, none, io.Discard)
	if err != nil || cfg.StorageReserve != 64<<20 {
		t.Fatalf("default reserve %v: %v", cfg.StorageReserve, err)
	}
	for in, want := range map[string]byteSize{"2MiB": 2 << 20, "512KiB": 512 << 10, "1.5MiB": 3 << 19, "1GB": 1e9,
		"64m": 64 << 20, "0": 0, "4096": 4096, " 3 GiB ": 3 << 30} {
		cfg, err := loadConfig([]string{"--storage-reserve", in}, none, io.Discard)
		if err != nil || cfg.StorageReserve != want {
			t.Errorf("--storage-reserve %q: %d %v, want %d", in, cfg.StorageReserve, err, want)
		}
	}
	for _, bad := range []string{"lots", "-1MiB", "1.2.3KiB", "MiB"} {
		if _, err := loadConfig([]string{"--storage-reserve", bad}, none, io.Discard); err == nil {
			t.Errorf("--storage-reserve %q accepted", bad)
		}
	}
	env := func(k string) (string, bool) {
		if k == "HELIOS_STORAGE_RESERVE" {
			return "256KiB", true
		}
		return "", false
	}
	if cfg, err := loadConfig(nil, env, io.Discard); err != nil || cfg.StorageReserve != 256<<10 {
		t.Errorf("HELIOS_STORAGE_RESERVE: %d %v", cfg.StorageReserve, err)
	}
	path := filepath.Join(t.TempDir(), "heliosd.toml")
	if err := os.WriteFile(path, []byte("storage_reserve = \"8MiB\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err := loadConfig([]string{"--config", path}, none, io.Discard); err != nil || cfg.StorageReserve != 8<<20 {
		t.Errorf("storage_reserve in TOML: %d %v", cfg.StorageReserve, err)
	}
	if s := byteSize(3 << 19); s.String() != "1536KiB" {
		t.Errorf("String %q", s.String())
	}
}
