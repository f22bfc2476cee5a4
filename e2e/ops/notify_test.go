package ops

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// notifySocket is a unixgram socket standing in for systemd's
// notification socket.
type notifySocket struct {
	path string
	conn *net.UnixConn
	msgs chan string
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn") // short: sun_path is 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &notifySocket{path: filepath.Join(dir, "notify"), msgs: make(chan string, 1024)}
	s.conn, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := s.conn.Read(buf)
			if err != nil {
				close(s.msgs)
				return
			}
			s.msgs <- string(buf[:n])
		}
	}()
	return s
}

// next returns the next datagram, failing after within.
func (s *notifySocket) next(t *testing.T, within time.Duration) string {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-time.After(within):
		t.Fatalf("no notification within %s", within)
		return ""
	}
}

// TestNotifyReadyWatchdogStopping runs heliosd as systemd runs a
// Type=notify service with WatchdogSec: READY=1 comes once every listener
// accepts and the issuer store serves a signup, WATCHDOG=1 follows at half
// of WATCHDOG_USEC, SIGHUP brings RELOADING=1 and READY=1 again, and
// SIGTERM brings STOPPING=1 before the exit.
func TestNotifyReadyWatchdogStopping(t *testing.T) {
	s := newNotifySocket(t)
	p := startProc(t, t.TempDir(), []string{"NOTIFY_SOCKET=" + s.path, "WATCHDOG_USEC=300000"})
	first := s.next(t, 30*time.Second)
	if !strings.Contains(first, "READY=1") {
		t.Fatalf("first notification %q, want READY=1", first)
	}
	if !strings.Contains(first, "MAINPID="+strconv.Itoa(p.cmd.Process.Pid)) {
		t.Errorf("READY notification %q does not name MAINPID %d", first, p.cmd.Process.Pid)
	}
	// At READY every listener accepts and the store answers at once.
	if down := p.notAccepting(); len(down) > 0 {
		t.Fatalf("READY=1 sent while %v did not accept", down)
	}
	signup(t, p.addrs["http-listen"], "ready@example.com")

	// Drop the keep-alives sent meanwhile, then time six intervals. The
	// shortest is the ticker's period (a late tick only lengthens the one
	// before it): half of 300ms is about 150ms — not 300ms (the full
	// interval), not a spin.
	for len(s.msgs) > 0 {
		<-s.msgs
	}
	if m := s.next(t, 10*time.Second); m != "WATCHDOG=1" {
		t.Fatalf("notification %q, want WATCHDOG=1", m)
	}
	last, shortest := time.Now(), time.Hour
	for i := 0; i < 6; i++ {
		if m := s.next(t, 10*time.Second); m != "WATCHDOG=1" {
			t.Fatalf("notification %q, want WATCHDOG=1", m)
		}
		now := time.Now()
		shortest, last = min(shortest, now.Sub(last)), now
	}
	if shortest > 250*time.Millisecond || shortest < 50*time.Millisecond {
		t.Errorf("shortest WATCHDOG=1 interval %s, want about 150ms (half of WATCHDOG_USEC 300ms)", shortest)
	}

	// SIGHUP: RELOADING=1, then READY=1 once the reload is done.
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	var seen []string
	for len(seen) < 2 {
		if m := s.next(t, 5*time.Second); m != "WATCHDOG=1" {
			seen = append(seen, m)
		}
	}
	if !strings.HasPrefix(seen[0], "RELOADING=1") || !strings.HasPrefix(seen[1], "READY=1") || !strings.Contains(seen[1], "reloaded") {
		t.Fatalf("after SIGHUP: %q, want RELOADING=1 then READY=1", seen)
	}

	_ = p.cmd.Process.Signal(syscallTERM)
	for {
		m := s.next(t, 5*time.Second)
		if m == "WATCHDOG=1" {
			continue
		}
		if m != "STOPPING=1" {
			t.Fatalf("after SIGTERM: notification %q, want STOPPING=1", m)
		}
		break
	}
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
}

// TestNotifyWatchdogOtherPID: WATCHDOG_PID naming another process (the
// variable was inherited) means no keep-alives from this one.
func TestNotifyWatchdogOtherPID(t *testing.T) {
	s := newNotifySocket(t)
	startProc(t, t.TempDir(), []string{"NOTIFY_SOCKET=" + s.path, "WATCHDOG_USEC=100000", "WATCHDOG_PID=1"})
	if m := s.next(t, 30*time.Second); !strings.Contains(m, "READY=1") {
		t.Fatalf("first notification %q, want READY=1", m)
	}
	select {
	case m := <-s.msgs:
		t.Fatalf("notification %q although WATCHDOG_PID names another process", m)
	case <-time.After(500 * time.Millisecond):
	}
}
