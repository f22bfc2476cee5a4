package ops

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heliosdb/auth/internal/testdaemon"
)

// checkConfig runs heliosd check-config with args and returns its output
// and exit code.
func checkConfig(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(testdaemon.Build(t, "heliosd"), append([]string{"check-config"}, args...)...)
	cmd.Env = append(append(os.Environ(), "HELIOS_CONFIG="), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		t.Fatal(err)
	}
	return string(out), 0
}

// TestCheckConfig: a good file (with a variable and a flag over it) prints
// the effective settings with the upstream password redacted, and that
// output is itself a configuration check-config accepts with the same
// result; each kind of bad setting exits non-zero naming its key; nothing
// is created in the data directory.
func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	file := filepath.Join(dir, "heliosd.toml")
	write(t, file, `
data_dir = "`+data+`"
pg_listen = "127.0.0.1:6432"
max_conns = 500
idle_timeout = "5m"
plaintext_allow = ["127.0.0.0/8", "10.1.0.0/16"]
pg_upstream = "postgres://postgres:s3cr3t-pw@127.0.0.1:5433/postgres"
log_level = "warn"
`)
	out, code := checkConfig(t, []string{"HELIOS_MAX_CONNS_PER_IP=77"}, "--config", file, "--max-conns", "600")
	if code != 0 {
		t.Fatalf("check-config of a good file exited %d:\n%s", code, out)
	}
	for _, want := range []string{`pg_listen = "127.0.0.1:6432"`, "max_conns = 600", "max_conns_per_ip = 77",
		`idle_timeout = "5m0s"`, `plaintext_allow = ["127.0.0.0/8", "10.1.0.0/16"]`, `log_level = "warn"`,
		`pg_upstream = "postgres://postgres:xxxxx@127.0.0.1:5433/postgres"`, `http_listen = "127.0.0.1:8080"`} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("effective settings lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "s3cr3t-pw") {
		t.Errorf("check-config printed the upstream password:\n%s", out)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("check-config touched the data directory: %v", err)
	}
	// The printed settings read back to the same settings.
	eff := filepath.Join(dir, "effective.toml")
	write(t, eff, out)
	again, code := checkConfig(t, nil, "--config", eff)
	if code != 0 || again != out {
		t.Errorf("check-config of its own output: exit %d\n%s\nwant the same output", code, again)
	}

	for _, c := range []struct{ name, toml, key string }{
		{"bad CIDR", `plaintext_allow = ["10.0.0.0/33"]`, "plaintext_allow"},
		{"bad proxy network", `proxy_from = ["lb.example"]`, "proxy_from"},
		{"unknown key", `max_conn = 5`, `"max_conn"`},
		{"bad duration", `idle_timeout = "soon"`, "idle_timeout"},
		{"bad listen", `pg_listen = "127.0.0.1"`, "pg_listen"},
		{"bad port", `redis_listen = "127.0.0.1:99999"`, "redis_listen"},
		{"bad level", `log_level = "loud"`, "log_level"},
		{"cert without key", `tls_cert = "/nonexistent.pem"`, "tls_cert and tls_key"},
		{"missing cert", "tls_cert = \"/nonexistent.pem\"\ntls_key = \"/nonexistent.key\"", "tls_cert/tls_key"},
		{"missing upstream file", `pg_upstream_file = "/nonexistent"`, "pg_upstream_file"},
		{"bad role", `role = "leader"`, "role"},
		{"negative", `max_conns = -1`, "max_conns"},
	} {
		f := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".toml")
		write(t, f, c.toml+"\n")
		out, code := checkConfig(t, nil, "--config", f)
		if code == 0 {
			t.Errorf("%s: check-config exited 0:\n%s", c.name, out)
			continue
		}
		if !strings.Contains(out, c.key) || strings.Contains(out, "configuration OK") {
			t.Errorf("%s: output does not name %s:\n%s", c.name, c.key, out)
		}
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
