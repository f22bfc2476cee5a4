package testdaemon

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Main is the TestMain of a package whose tests share servers started once
// for the package (internal/testupstream): setup starts them and registers
// with atExit what stops each. Then the tests run, the binaries Build made
// are removed, what atExit registered runs (last first) and the process
// exits with the tests' status. If setup fails, its error is printed, what
// it registered so far runs, and the package fails without running a
// test.
func Main(m *testing.M, setup func(atExit func(func())) error) {
	os.Exit(runMain(m, setup))
}

func runMain(m *testing.M, setup func(atExit func(func())) error) int {
	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()
	if err := setup(func(stop func()) { stops = append(stops, stop) }); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	RemoveBuilds()
	return code
}

// upstreamRoles are the roles heliosd makes on an upstream server in proxy
// mode (protocols/internal/upstream).
var upstreamRoles = [...]string{"helios_read", "helios_write", "helios_owner", "helios_test_read", "helios_test_write", "helios_test_owner"}

// WriteRolePasswords writes a passwords file as heliosd keeps one for an
// upstream server in its data directory (upstream-postgres.json, …): every
// upstream role with a fixed password ("pw-<role>-for-tests"). The file is
// roles.json in a new temporary directory, and atExit (Main's) is given
// what removes that directory. Daemons that start with a copy of the file
// (DataDirWith) set the same passwords on a server they share, so that
// daemons started side by side do not change each other's.
func WriteRolePasswords(atExit func(func())) (path string, err error) {
	dir, err := os.MkdirTemp("", "helios-role-passwords-")
	if err != nil {
		return "", err
	}
	atExit(func() { os.RemoveAll(dir) })
	pw := map[string]string{}
	for _, r := range upstreamRoles {
		pw[r] = "pw-" + r + "-for-tests"
	}
	js, _ := json.Marshal(pw)
	path = filepath.Join(dir, "roles.json")
	if err := os.WriteFile(path, js, 0o600); err != nil {
		return "", err
	}
	return path, nil
}

// DataDirWith returns a new private data directory for a daemon (WithDataDir),
// removed at the end of the test, that holds a copy of the file src under
// each of names: heliosd's passwords files (upstream-postgres.json, …) made
// by WriteRolePasswords.
func DataDirWith(t testing.TB, src string, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(dir, name), js, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
