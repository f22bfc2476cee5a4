package ops

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/heliosdb/auth/internal/testdaemon"
)

// makeIn runs make with args in the repository and returns its output.
func makeIn(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("make", args...)
	cmd.Dir = testdaemon.RepoRoot()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestMakeInstall stages `make install DESTDIR=…` and checks the files and
// their modes, that heliosd check-config accepts the example configuration
// as installed, that systemd-analyze verify passes on the unit (with its
// commands pointing at the staged binaries) and that the unit carries the
// settings the README promises; then `make uninstall` removes every file
// install wrote, keeps a changed configuration and never touches the data
// directory.
func TestMakeInstall(t *testing.T) {
	stage := t.TempDir()
	bin := t.TempDir()
	makeIn(t, "install", "DESTDIR="+stage, "BIN="+bin, "PREFIX=/usr")
	want := map[string]fs.FileMode{
		"usr/bin/heliosd":                        0o755,
		"usr/bin/helios":                         0o755,
		"usr/lib/systemd/system/heliosd.service": 0o644,
		"usr/lib/sysusers.d/heliosd.conf":        0o644,
		"usr/lib/tmpfiles.d/heliosd.conf":        0o644,
		"etc/heliosd/heliosd.toml":               0o640,
		"etc/heliosd":                            0o750 | fs.ModeDir,
		"var/lib/heliosd":                        0o700 | fs.ModeDir,
	}
	for rel, mode := range want {
		st, err := os.Stat(filepath.Join(stage, rel))
		if err != nil {
			t.Errorf("install did not write %s: %v", rel, err)
			continue
		}
		if st.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", rel, st.Mode(), mode)
		}
	}
	if t.Failed() {
		return
	}
	heliosd := filepath.Join(stage, "usr/bin/heliosd")
	conf := filepath.Join(stage, "etc/heliosd/heliosd.toml")
	out, err := exec.Command(heliosd, "check-config", "--config", conf).CombinedOutput()
	if err != nil {
		t.Fatalf("check-config of the installed example: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `data_dir = "/var/lib/heliosd"`) {
		t.Errorf("the example configuration does not use /var/lib/heliosd:\n%s", out)
	}

	unitText := read(t, filepath.Join(stage, "usr/lib/systemd/system/heliosd.service"))
	for _, line := range []string{"Type=notify", "ExecStart=/usr/bin/heliosd --config /etc/heliosd/heliosd.toml",
		"ExecReload=/bin/kill -HUP $MAINPID", "NoNewPrivileges=yes", "ProtectSystem=strict",
		"ReadWritePaths=/var/lib/heliosd", "PrivateTmp=yes", "ProtectHome=yes", "LimitNOFILE=65536",
		"Restart=on-failure", "WatchdogSec=30s", "User=heliosd"} {
		if !strings.Contains(unitText, "\n"+line+"\n") {
			t.Errorf("unit lacks %q", line)
		}
	}
	if !strings.Contains(read(t, filepath.Join(stage, "usr/lib/sysusers.d/heliosd.conf")), "u heliosd - ") {
		t.Error("sysusers.d entry does not create the heliosd user")
	}
	if !strings.Contains(read(t, filepath.Join(stage, "usr/lib/tmpfiles.d/heliosd.conf")), "d /var/lib/heliosd 0700 heliosd heliosd") {
		t.Error("tmpfiles.d entry does not make /var/lib/heliosd 0700 heliosd")
	}
	// systemd-analyze verify needs the commands to exist: a copy of the
	// unit naming the staged binary.
	unit := filepath.Join(t.TempDir(), "heliosd.service")
	write(t, unit, strings.ReplaceAll(unitText, "/usr/bin/heliosd", heliosd))
	if out, err := exec.Command("systemd-analyze", "verify", unit).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	// The user and the data directory as systemd makes them from the two
	// entries (in a scratch root: systemd-sysusers --root, systemd-tmpfiles --root).
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("systemd-sysusers", "--root="+root, filepath.Join(stage, "usr/lib/sysusers.d/heliosd.conf")).CombinedOutput(); err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	var uid int
	for _, line := range strings.Split(read(t, filepath.Join(root, "etc/passwd")), "\n") {
		if f := strings.Split(line, ":"); len(f) == 7 && f[0] == "heliosd" {
			if f[5] != "/var/lib/heliosd" || f[6] != "/usr/sbin/nologin" {
				t.Errorf("heliosd user: %q", line)
			}
			uid, _ = strconv.Atoi(f[2])
		}
	}
	if uid == 0 {
		t.Fatalf("systemd-sysusers made no heliosd user:\n%s", read(t, filepath.Join(root, "etc/passwd")))
	}
	if out, err := exec.Command("systemd-tmpfiles", "--root="+root, "--create", filepath.Join(stage, "usr/lib/tmpfiles.d/heliosd.conf")).CombinedOutput(); err != nil {
		t.Fatalf("systemd-tmpfiles: %v\n%s", err, out)
	}
	if st, err := os.Stat(filepath.Join(root, "var/lib/heliosd")); err != nil || st.Mode() != 0o700|fs.ModeDir || int(st.Sys().(*syscall.Stat_t).Uid) != uid {
		t.Errorf("data directory from tmpfiles.d: %v %v (want 0700, owner uid %d)", st, err, uid)
	}

	// Data written by the daemon and an operator's edit survive uninstall.
	write(t, filepath.Join(stage, "var/lib/heliosd/keyring.json"), "{}")
	makeIn(t, "install", "DESTDIR="+stage, "BIN="+bin, "PREFIX=/usr") // again: keeps the config
	out2 := makeIn(t, "uninstall", "DESTDIR="+stage, "PREFIX=/usr")
	var left []string
	_ = filepath.WalkDir(stage, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, strings.TrimPrefix(p, stage+"/"))
		}
		return nil
	})
	if len(left) != 1 || left[0] != "var/lib/heliosd/keyring.json" {
		t.Errorf("after uninstall: files %v, want only the data directory's", left)
	}
	if _, err := os.Stat(filepath.Join(stage, "etc/heliosd")); !os.IsNotExist(err) {
		t.Errorf("uninstall left etc/heliosd: %v\n%s", err, out2)
	}

	makeIn(t, "install", "DESTDIR="+stage, "BIN="+bin, "PREFIX=/usr")
	write(t, conf, read(t, conf)+"max_conns = 100\n")
	out3 := makeIn(t, "uninstall", "DESTDIR="+stage, "PREFIX=/usr")
	if _, err := os.Stat(conf); err != nil || !strings.Contains(out3, "keeping") {
		t.Errorf("uninstall removed a changed configuration (%v):\n%s", err, out3)
	}
	if _, err := os.Stat(heliosd); !os.IsNotExist(err) {
		t.Errorf("uninstall left %s", heliosd)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
