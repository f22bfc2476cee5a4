package main

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "heliosd.toml")
	err := os.WriteFile(path, []byte(`
data_dir = "/from/file"
http_listen = "127.0.0.1:1"
pg_listen = "127.0.0.1:2"
redis_listen = "127.0.0.1:3"
handshake_timeout = "3s"
plaintext_allow = ["10.0.0.0/8"]
max_conns = 7
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HELIOS_CONFIG": path, "HELIOS_HTTP_LISTEN": "127.0.0.1:10", "HELIOS_PG_LISTEN": "127.0.0.1:20",
		"HELIOS_MONGO_LISTEN": "", "HELIOS_MAX_CONNS_PER_IP": "9"}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := loadConfig([]string{"--http-listen=127.0.0.1:100", "--plaintext-allow=192.168.0.0/16,10.1.0.0/16", "--refresh-grace=5s"}, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	def := *(&Config{}).EnsureDefaults()
	for name, c := range map[string]struct{ got, want any }{
		"flag over env":            {cfg.Listen["http"], "127.0.0.1:100"},
		"env over file":            {cfg.Listen["postgres"], "127.0.0.1:20"},
		"file over default":        {cfg.Listen["redis"], "127.0.0.1:3"},
		"file data dir":            {cfg.DataDir, "/from/file"},
		"default":                  {cfg.Listen["mysql"], def.Listen["mysql"]},
		"empty env disables":       {cfg.Listen["mongodb"], ""},
		"file duration":            {cfg.HandshakeTimeout, 3 * time.Second},
		"flag duration":            {cfg.RefreshGrace, 5 * time.Second},
		"flag list":                {cfg.PlaintextAllow, []string{"192.168.0.0/16", "10.1.0.0/16"}},
		"file int":                 {cfg.MaxConns, 7},
		"env int":                  {cfg.MaxConnsPerIP, 9},
		"default untouched by env": {cfg.LogLevel, "info"},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: %v, want %v", name, c.got, c.want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	if _, err := loadConfig([]string{"--max-conns=lots"}, none, io.Discard); err == nil {
		t.Error("bad int accepted")
	}
	if _, err := loadConfig([]string{"--log-level=loud"}, none, io.Discard); err == nil {
		t.Error("bad log level accepted")
	}
	path := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(path, []byte("http_lisen = \"x\"\n"), 0o600)
	if _, err := loadConfig([]string{"--config", path}, none, io.Discard); err == nil {
		t.Error("misspelt setting accepted")
	}
	env := func(k string) (string, bool) {
		return map[string]string{"HELIOS_IDLE_TIMEOUT": "forever"}[k], k == "HELIOS_IDLE_TIMEOUT"
	}
	if _, err := loadConfig(nil, env, io.Discard); err == nil {
		t.Error("bad env duration accepted")
	}
}

func TestConfigRoles(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	for _, c := range []struct {
		args []string
		ok   bool
	}{
		{nil, true},
		{[]string{"--role", "gateway"}, false},
		{[]string{"--role", "gateway", "--issuer-url", "http://127.0.0.1:8080"}, false},
		{[]string{"--role", "gateway", "--issuer-url", "127.0.0.1:8080", "--cluster-key-file", "k"}, false},
		{[]string{"--role", "gateway", "--issuer-url", "https://issuer:8080", "--cluster-key-file", "k", "--stale-after", "0s"}, false},
		{[]string{"--role", "gateway", "--issuer-url", "https://issuer:8080", "--cluster-key-file", "k", "--stale-after", "1s"}, true},
		{[]string{"--role", "issuer"}, false},
	} {
		cfg, err := loadConfig(c.args, noEnv, io.Discard)
		if (err == nil) != c.ok {
			t.Errorf("%v: %v", c.args, err)
		}
		if err == nil && cfg.Role == "gateway" && cfg.StaleAfter != time.Second {
			t.Errorf("%v: stale_after %s", c.args, cfg.StaleAfter)
		}
	}
	if d := (&Config{}).EnsureDefaults(); d.Role != "all" || d.StaleAfter != 30*time.Second {
		t.Fatalf("defaults: role %q, stale_after %s", d.Role, d.StaleAfter)
	}
}

// TestEnsureDefaultsKeepsSettings: EnsureDefaults fills what is unset and
// leaves what is set, a listener disabled with "" included.
func TestEnsureDefaultsKeepsSettings(t *testing.T) {
	c := Config{Listen: map[string]string{"postgres": ""}, MaxConns: 5, LogLevel: "debug"}
	c.EnsureDefaults()
	if c.Listen["postgres"] != "" || c.Listen["redis"] != "127.0.0.1:6379" || c.MaxConns != 5 || c.LogLevel != "debug" || c.MaxConnsPerIP != 1000 {
		t.Fatalf("%+v", c)
	}
}

// TestConfigKeySpellings: a TOML key and a HELIOS_* variable may be spelled
// like the flag (data-dir) or with underscores (data_dir).
func TestConfigKeySpellings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "heliosd.toml")
	if err := os.WriteFile(path, []byte("data-dir = \"/dashed\"\npg-listen = \"127.0.0.1:2\"\nhandshake-timeout = \"3s\"\nmax_conns = 7\nstorage-reserve = \"1MiB\"\nplaintext-allow = [\"10.0.0.0/8\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HELIOS_CONFIG": path, "HELIOS_MAX-CONNS-PER-IP": "9"}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := loadConfig(nil, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct{ got, want any }{
		"data-dir":                {cfg.DataDir, "/dashed"},
		"pg-listen":               {cfg.Listen["postgres"], "127.0.0.1:2"},
		"handshake-timeout":       {cfg.HandshakeTimeout, 3 * time.Second},
		"max_conns":               {cfg.MaxConns, 7},
		"storage-reserve":         {cfg.StorageReserve, byteSize(1 << 20)},
		"plaintext-allow":         {cfg.PlaintextAllow, []string{"10.0.0.0/8"}},
		"HELIOS_MAX-CONNS-PER-IP": {cfg.MaxConnsPerIP, 9},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: %v, want %v", name, c.got, c.want)
		}
	}

	if err := os.WriteFile(path, []byte("data-dir = \"/a\"\ndata_dir = \"/b\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadConfig(nil, getenv, io.Discard); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Errorf("data-dir and data_dir both: %v, want a 'given twice' error", err)
	}
}

// TestConfigUnknownKeySuggests: an unknown TOML key names the nearest known
// one when it is a likely typo, and only then.
func TestConfigUnknownKeySuggests(t *testing.T) {
	path := filepath.Join(t.TempDir(), "heliosd.toml")
	getenv := func(k string) (string, bool) {
		if k == "HELIOS_CONFIG" {
			return path, true
		}
		return "", false
	}
	for key, want := range map[string]string{
		"data-dri":      `unknown setting "data-dri": did you mean "data_dir"?`,
		"data_dri":      `unknown setting "data_dri": did you mean "data_dir"?`,
		"max_con":       `unknown setting "max_con": did you mean "max_conns"?`,
		"pg_listne":     `unknown setting "pg_listne": did you mean "pg_listen"?`,
		"zebra":         `unknown setting "zebra"`,
		"totally_wrong": `unknown setting "totally_wrong"`,
	} {
		if err := os.WriteFile(path, []byte(key+" = \"x\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := loadConfig(nil, getenv, io.Discard)
		if err == nil || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("%s: %v, want it to end with %s", key, err, want)
		}
	}
}

func TestLevenshtein(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "", 3}, {"", "ab", 2}, {"data_dri", "data_dir", 2}, {"kitten", "sitting", 3}, {"max_con", "max_conns", 2}} {
		if got := levenshtein(c.a, c.b); got != c.d {
			t.Errorf("levenshtein(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
}

// TestConfigMetricsAllow: metrics_allow defaults to loopback, is set by
// flag, variable and file like every list, and refuses what is not a
// network.
func TestConfigMetricsAllow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "heliosd.toml")
	if err := os.WriteFile(path, []byte("metrics-allow = [\"192.168.0.0/16\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"default", nil, nil, []string{"127.0.0.0/8", "::1/128"}},
		{"file", nil, map[string]string{"HELIOS_CONFIG": path}, []string{"192.168.0.0/16"}},
		{"env", nil, map[string]string{"HELIOS_CONFIG": path, "HELIOS_METRICS_ALLOW": "10.0.0.0/8,10.1.2.3"}, []string{"10.0.0.0/8", "10.1.2.3"}},
		{"flag", []string{"--metrics-allow=172.16.0.0/12"}, map[string]string{"HELIOS_METRICS_ALLOW": "10.0.0.0/8"}, []string{"172.16.0.0/12"}},
		{"empty", []string{"--metrics-allow="}, nil, nil},
	} {
		env = c.env
		cfg, err := loadConfig(c.args, getenv, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !reflect.DeepEqual(cfg.MetricsAllow, c.want) {
			t.Errorf("%s: %q, want %q", c.name, cfg.MetricsAllow, c.want)
		}
	}
	env = nil
	if _, err := loadConfig([]string{"--metrics-allow=10.0.0.0/33"}, getenv, io.Discard); err == nil || !strings.Contains(err.Error(), `metrics_allow: "10.0.0.0/33" is not a network`) {
		t.Errorf("bad network: %v", err)
	}
}

// TestSecretSettingFile: an upstream URL from a file is read only when no
// one else may read the file, and the flag's value stands when no file is
// given.
func TestSecretSettingFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "pg.url")
	if err := os.WriteFile(f, []byte("postgres://postgres:secret@127.0.0.1:5433/postgres\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := secretSetting("pg-upstream", "", f); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable credentials file: %v", err)
	}
	if err := os.Chmod(f, 0o600); err != nil {
		t.Fatal(err)
	}
	if v, err := secretSetting("pg-upstream", "postgres://ignored", f); err != nil || v != "postgres://postgres:secret@127.0.0.1:5433/postgres" {
		t.Fatalf("from the file: %q %v", v, err)
	}
	if v, err := secretSetting("pg-upstream", " postgres://inline ", ""); err != nil || v != "postgres://inline" {
		t.Fatalf("inline: %q %v", v, err)
	}
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := secretSetting("pg-upstream", "", f); err == nil {
		t.Fatal("an empty credentials file was accepted")
	}
}
