package testdaemon

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/listeners"
)

// MakeRun is scripts/run.sh (make run's recipe) set up as a newcomer runs
// it from a checkout: the binaries built into BIN, a data directory of its
// own (DATA_DIR) and every listener of heliosd on a free loopback address
// (HELIOSD_ARGS).
type MakeRun struct {
	// DataDir is the run's DATA_DIR, in a folder every user can reach, as
	// a checkout is (run.sh runs the servers as their system users).
	DataDir string
	// Listen is heliosd's address by listener flag ("pg-listen").
	Listen map[string]string
	// Term, when set, stops the run with SIGTERM to run.sh alone (as kill
	// or a service manager does) instead of Ctrl-C to its whole group.
	Term bool
	// Env is what run.sh gets besides the test's environment: BIN,
	// DATA_DIR (DataDir relative to the checkout, as make run's default
	// ./data is) and HELIOSD_ARGS; a test adds the upstream ports it picks
	// (PG_UPSTREAM_PORT, …).
	Env []string
}

// NewMakeRun builds heliosd and helios and sets up a run of scripts/run.sh
// in a temporary folder.
func NewMakeRun(t *testing.T) *MakeRun {
	t.Helper()
	bin := filepath.Dir(Build(t, "heliosd"))
	Build(t, "helios")
	top := t.TempDir()
	for _, d := range []string{filepath.Dir(top), top} { // a folder the postgres user can reach
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r := &MakeRun{DataDir: filepath.Join(top, "data"), Listen: map[string]string{}}
	var flags []string
	for _, l := range listeners.All {
		r.Listen[l.Flag] = FreeAddr(t, "127.0.0.1")
		flags = append(flags, "--"+l.Flag, r.Listen[l.Flag])
	}
	// DATA_DIR as the Makefile gives it (./data): relative to the checkout.
	rel, err := filepath.Rel(RepoRoot(), r.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	r.Env = []string{"BIN=" + bin, "DATA_DIR=" + rel, "HELIOSD_ARGS=" + strings.Join(flags, " ")}
	return r
}

// FreePort is the port of a loopback address that was free a moment ago
// (FreeAddr), for an upstream server run.sh starts.
func FreePort(t testing.TB) string {
	t.Helper()
	addr := FreeAddr(t, "127.0.0.1")
	return addr[strings.LastIndexByte(addr, ':')+1:]
}

// Run starts scripts/run.sh in a process group of its own and waits at
// most up for heliosd to come up (its "Connect (" lines); it calls check,
// which reads the output with logs, then stops the run as Ctrl-C does (SIGINT to the
// group; SIGTERM to run.sh alone with Term), waits at most 30 seconds for it to end and returns its whole
// output. Whatever of the group is left after a failure is killed.
func (r *MakeRun) Run(t *testing.T, up time.Duration, check func(logs func() string)) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(RepoRoot(), "scripts", "run.sh"))
	cmd.Env = append(os.Environ(), r.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logs := &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }() // whatever is left after a failure
	deadline := time.Now().Add(up)
	for !strings.Contains(logs.String(), "Connect (") {
		if time.Now().After(deadline) {
			t.Fatalf("make run did not come up:\n%s", logs.String())
		}
		select {
		case err := <-done:
			t.Fatalf("make run exited: %v\n%s", err, logs.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	check(logs.String)
	// Ctrl-C: the terminal signals the whole foreground group.
	pid, sig, how := -cmd.Process.Pid, syscall.SIGINT, "Ctrl-C"
	if r.Term {
		pid, sig, how = cmd.Process.Pid, syscall.SIGTERM, "SIGTERM to run.sh"
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("make run did not stop on %s:\n%s", how, logs.String())
	}
	return logs.String()
}

// Mint returns a token with claims signed with the key in the run's data
// directory, as heliosd's API would issue it.
func (r *MakeRun) Mint(t testing.TB, c core.Claims) string {
	t.Helper()
	return (&Daemon{DataDir: r.DataDir}).Mint(t, c)
}
