// Package testupstream starts real database servers — PostgreSQL 15,
// MariaDB 10.11 and Redis 7 from Debian's packages — for the tests and
// benchmarks of heliosd's proxy mode, which forwards sessions to them.
//
// Each server lives in its own temporary directory under os.TempDir(): data,
// Unix socket and log. It listens on 127.0.0.1 only, on a port picked free
// (a start that loses the port to another process retries on a new one), and
// its superuser has a random password that is never logged. A start waits
// until a real client (pgx, go-sql-driver/mysql) logs in, at most 30 seconds,
// and a failure says why with the tail of the server's log. A missing binary
// is an error naming the Debian package to install, never a skip.
//
// Process ownership: every server (and every initdb or mariadb-install-db
// run) is started as the leader of a process group of its own. Stop asks the
// server to shut down; if it has not within the grace period, the leader is
// frozen (SIGSTOP), its children are killed by parent PID (PostgreSQL's
// backends leave the postmaster's group, and one busy in a query would
// outlive its postmaster), then the leader and its group. The leader is
// reaped only after that, so neither its PID nor its group's ID can have
// been reused: nothing this package did not start is ever killed. A server
// whose test binary dies without Stop is killed by the kernel (parent-death
// signal; idle PostgreSQL backends then exit as they notice the postmaster is
// gone); its directory is left behind.
//
// When the tests run as root (as on the project's machine) the servers run as
// the postgres and mysql system users that the Debian packages create,
// because PostgreSQL refuses to run as root; their directory is handed to
// that user. Otherwise they run as the current user.
package testupstream

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Timings shared by both servers.
const (
	// readyTimeout bounds how long a start waits for the server to accept
	// a login.
	readyTimeout = 30 * time.Second
	// setupTimeout bounds initdb and mariadb-install-db.
	setupTimeout = 60 * time.Second
	// defaultStopGrace is how long Stop waits for a clean shutdown before
	// it kills the server's process group.
	defaultStopGrace = 15 * time.Second
	// portAttempts is how many free ports a start tries when another
	// process takes the port between picking and binding.
	portAttempts = 5
	// maxSocketPath is the longest Unix socket path the kernel accepts
	// (sun_path is 108 bytes with the terminating NUL).
	maxSocketPath = 107
)

// errAddrInUse marks a start that failed because the port was taken.
var errAddrInUse = errors.New("address already in use")

// process is one server or setup program this package started: the leader
// of its own process group.
type process struct {
	cmd *exec.Cmd
	// exited is closed once the leader has exited. The leader is reaped
	// only by stop, so until then its PID (the group's ID) stays taken.
	exited chan struct{}
	// logPath is the file the process writes its output to; logFrom is
	// the file's size when the process started, so its own lines follow.
	logPath string
	logFrom int64
}

// startProcess starts path with args in dir, its output appended to
// logPath, as the user cred names (nil: the current user).
func startProcess(path string, args []string, dir, logPath string, cred *syscall.Credential) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	defer logf.Close()
	fi, err := logf.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat log: %w", err)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
		Credential: cred,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{}), logPath: logPath, logFrom: fi.Size()}
	pid := cmd.Process.Pid
	go func() {
		defer close(p.exited)
		var info unix.Siginfo
		for {
			// WNOWAIT: learn that the leader exited without reaping it.
			err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if err != unix.EINTR {
				return
			}
		}
	}()
	return p, nil
}

// pid is the leader's process ID, which is also its group's ID.
func (p *process) pid() int { return p.cmd.Process.Pid }

// stop sends sig to the leader and waits up to grace for it to exit, else
// kills it and its children (killChildren); then it kills whatever is left
// in the process group and reaps the leader.
func (p *process) stop(sig syscall.Signal, grace time.Duration) {
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Signal(sig)
		t := time.NewTimer(grace)
		select {
		case <-p.exited:
		case <-t.C:
			p.killChildren()
		}
		t.Stop()
	}
	// The leader is not reaped yet, so no other group can have its ID:
	// this reaches only processes started in the group (by a setup
	// script, say).
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	<-p.exited
	_ = p.cmd.Wait()
}

// killChildren kills the leader and its children. PostgreSQL's children
// leave the postmaster's process group (setsid), and a backend busy in a
// query would outlive a killed postmaster, so they are found by parent: the
// leader is frozen first (SIGSTOP), so that it can neither reap a child —
// whose PID could then be reused — nor start one while they are listed.
func (p *process) killChildren() {
	pid := p.pid()
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if st, ok := readStat(pid); !ok || st.state != 'R' && st.state != 'S' && st.state != 'D' {
			break // stopped ('T'), or exited: then it has no children left
		}
	}
	for _, child := range childrenOf(pid) {
		_ = syscall.Kill(child, syscall.SIGKILL)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// stat is what this package reads of a process's /proc/PID/stat.
type stat struct {
	state byte // R running, S sleeping, D disk wait, T stopped, Z zombie…
	ppid  int
	pgrp  int
}

// readStat reads /proc/PID/stat; ok is false if the process is gone.
func readStat(pid int) (st stat, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, false
	}
	// "pid (comm) state ppid pgrp …"; comm may hold spaces and ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 || len(f[0]) != 1 {
		return stat{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgrp, err2 := strconv.Atoi(f[2])
	return stat{state: f[0][0], ppid: ppid, pgrp: pgrp}, err1 == nil && err2 == nil
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	return processes(func(st stat) bool { return st.ppid == pid })
}

// processes lists the processes in /proc whose stat matches.
func processes(match func(stat) bool) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(pid); ok && match(st) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// runToEnd runs a setup program to completion (at most setupTimeout) and
// returns an error with its output's tail if it fails.
func runToEnd(path string, args []string, dir, logPath string, cred *syscall.Credential) error {
	p, err := startProcess(path, args, dir, logPath, cred)
	if err != nil {
		return err
	}
	t := time.NewTimer(setupTimeout)
	defer t.Stop()
	select {
	case <-p.exited:
		p.stop(syscall.SIGKILL, 0)
		if !p.cmd.ProcessState.Success() {
			return fmt.Errorf("%s: %s; output:\n%s", path, p.cmd.ProcessState, p.logTail())
		}
		return nil
	case <-t.C:
		p.stop(syscall.SIGKILL, 0)
		return fmt.Errorf("%s did not finish in %s; output:\n%s", path, setupTimeout, p.logTail())
	}
}

// waitReady polls ping until it succeeds, the process exits or readyTimeout
// passes. An exit caused by a taken port wraps errAddrInUse.
func (p *process) waitReady(name string, ping func(context.Context) error) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-p.exited:
			return p.exitError(name)
		default:
		}
		// A login attempt ends early if the server exits: a port taken
		// by a process that accepts but never answers would hold it.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		go func() {
			select {
			case <-p.exited:
				cancel()
			case <-ctx.Done():
			}
		}()
		err := ping(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not accept a login within %s (last error: %v); log:\n%s", name, readyTimeout, err, p.logTail())
		}
		select {
		case <-p.exited:
			return p.exitError(name)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// exitError describes a server that exited during its start.
func (p *process) exitError(name string) error {
	tail := p.logTail()
	if strings.Contains(tail, "Address already in use") {
		return fmt.Errorf("%s exited during start: %w; log:\n%s", name, errAddrInUse, tail)
	}
	return fmt.Errorf("%s exited during start; log:\n%s", name, tail)
}

// logTail returns the last lines this process wrote to its log.
func (p *process) logTail() string {
	const maxBytes, maxLines = 4096, 20
	f, err := os.Open(p.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	from := p.logFrom
	if fi, err := f.Stat(); err == nil && fi.Size()-from > maxBytes {
		from = fi.Size() - maxBytes
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return "(no log: " + err.Error() + ")"
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return strings.Join(lines, "\n")
}

// childEnv is the environment of the servers and setup programs: the
// current one without client settings (PG*, MYSQL*, MARIADB*) that could
// steer them, in the C locale.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "PG") || strings.HasPrefix(name, "MYSQL") ||
			strings.HasPrefix(name, "MARIADB") || strings.HasPrefix(name, "LC_") || name == "LANG" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

// runAs returns the credential to run a server as the system user name when
// this process is root (nil otherwise: it runs as the current user). The
// Debian package pkg creates that user.
func runAs(name, pkg string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("system user %s (created by the Debian package %s; run scripts/install-deps.sh): %w", name, pkg, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q: %w", name, u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// makeDir creates a new private temporary directory named for kind and
// hands it to cred's user.
func makeDir(kind string, cred *syscall.Credential) (string, error) {
	dir, err := os.MkdirTemp(os.TempDir(), "testupstream-"+kind+"-")
	if err != nil {
		return "", fmt.Errorf("temporary directory: %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("hand %s to uid %d: %w", dir, cred.Uid, err)
		}
	}
	return dir, nil
}

// writeOwned writes a private file that cred's user can read.
func writeOwned(path string, data []byte, cred *syscall.Credential) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	if cred != nil {
		return os.Chown(path, int(cred.Uid), int(cred.Gid))
	}
	return nil
}

// needBinary checks that path exists, naming the Debian package otherwise.
func needBinary(path, pkg string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%s is missing: install the Debian package %s (scripts/install-deps.sh): %w", path, pkg, err)
	}
	return nil
}

// checkSocketPath refuses a Unix socket path too long for the kernel.
func checkSocketPath(path string) error {
	if len(path) > maxSocketPath {
		return fmt.Errorf("socket path %s is longer than %d bytes: set TMPDIR to a shorter directory", path, maxSocketPath)
	}
	return nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port, nil
}

// randomPassword returns 32 hex digits from crypto/rand: no character that a
// URL, a DSN or an SQL string literal would need to escape.
func randomPassword() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux.
	return hex.EncodeToString(b[:])
}

// startOnFreePort calls start with free ports until one is not lost to
// another process between picking and binding.
func startOnFreePort(start func(port int) error) error {
	var err error
	for range portAttempts {
		var port int
		if port, err = freePort(); err != nil {
			return err
		}
		if err = start(port); !errors.Is(err, errAddrInUse) {
			return err
		}
	}
	return err
}

// startOnSamePort calls start with port, waiting a little and retrying while
// another process holds it.
func startOnSamePort(port int, start func(port int) error) error {
	var err error
	for range portAttempts {
		if err = start(port); !errors.Is(err, errAddrInUse) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return err
}

// Started starts a test's own server with start (StartPostgres, …): it
// fails the test if the server does not start, and stops it at the end of
// the test.
func Started[S interface{ Stop() }](t testing.TB, start func() (S, error)) S {
	t.Helper()
	s, err := start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}
