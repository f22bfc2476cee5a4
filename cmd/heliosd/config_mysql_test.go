package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMySQLRolesFileSetting: --mysql-upstream-roles-file is read from TOML
// (mysql_upstream_roles_file) and the environment
// (HELIOS_MYSQL_UPSTREAM_ROLES_FILE) like every flag; a file others may
// read is refused, and a malformed one is refused without being quoted (it
// holds passwords).
func TestMySQLRolesFileSetting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "heliosd.toml")
	if err := os.WriteFile(path, []byte("mysql_upstream_roles_file = \"/from/toml\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HELIOS_CONFIG": path}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := loadConfig(nil, getenv, io.Discard)
	if err != nil || cfg.MySQLUpstreamRolesFile != "/from/toml" {
		t.Fatalf("TOML: %q %v", cfg.MySQLUpstreamRolesFile, err)
	}
	env["HELIOS_MYSQL_UPSTREAM_ROLES_FILE"] = "/from/env"
	if cfg, err = loadConfig(nil, getenv, io.Discard); err != nil || cfg.MySQLUpstreamRolesFile != "/from/env" {
		t.Fatalf("environment: %q %v", cfg.MySQLUpstreamRolesFile, err)
	}
	if cfg, err = loadConfig([]string{"--mysql-upstream-roles-file", "/from/flag"}, getenv, io.Discard); err != nil || cfg.MySQLUpstreamRolesFile != "/from/flag" {
		t.Fatalf("flag: %q %v", cfg.MySQLUpstreamRolesFile, err)
	}

	log := slog.New(slog.DiscardHandler)
	roles := filepath.Join(dir, "roles.json")
	for _, c := range []struct {
		body string
		mode os.FileMode
		want string
	}{
		{`{"helios_read": "mysql://u:secret-pw@127.0.0.1:1/"}`, 0o644, "chmod 600"},
		{`{"helios_read": "mysql://u:secret-pw@127.0.0.1:1/"`, 0o600, "not a JSON object"},
		{`{"helios_read": "mysql://u:secret-pw@127.0.0.1:1/"}`, 0o600, "no URL for role helios_write"},
	} {
		if err := os.WriteFile(roles, []byte(c.body), c.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(roles, c.mode); err != nil {
			t.Fatal(err)
		}
		c2 := Config{MySQLUpstreamRolesFile: roles}
		c2.EnsureDefaults()
		err := (&upstreams{}).mysqlFromRoles(&c2, log)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "secret-pw") {
			t.Errorf("%s (mode %v): %v, want an error saying %q without the password", c.body, c.mode, err, c.want)
		}
	}
}
