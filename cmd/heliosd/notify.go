package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"
)

// sdNotifier speaks systemd's notification protocol (sd_notify(3)): one
// datagram of newline-separated KEY=VALUE assignments to the unix datagram
// socket named by $NOTIFY_SOCKET (a path, or "@name" in the abstract
// namespace). Without $NOTIFY_SOCKET (not started by systemd with
// Type=notify) every method does nothing. The protocol is a few lines, so
// heliosd speaks it itself rather than taking a dependency for it.
type sdNotifier struct {
	addr string // $NOTIFY_SOCKET; "" disables
	log  *slog.Logger
}

// newNotifier reads $NOTIFY_SOCKET through getenv.
func newNotifier(getenv func(string) string, log *slog.Logger) *sdNotifier {
	return &sdNotifier{addr: getenv("NOTIFY_SOCKET"), log: log}
}

// send sends one notification (e.g. "READY=1"); failures are logged at
// debug level, never fatal: the service manager may be gone while we stop.
func (n *sdNotifier) send(state string) {
	if n == nil || n.addr == "" {
		return
	}
	if err := sdNotify(n.addr, state); err != nil {
		n.log.Debug("sd_notify", "state", state, "err", err)
	}
}

// sdNotify sends state to the notification socket addr.
func sdNotify(addr, state string) error {
	if addr == "" {
		return errors.New("no NOTIFY_SOCKET")
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, err = conn.Write([]byte(state))
	return err
}

// ready tells the service manager the daemon is up (every listener bound,
// the store open) and starts the watchdog keep-alive when systemd asked
// for one (WatchdogSec= sets $WATCHDOG_USEC, and $WATCHDOG_PID when it
// names a process): WATCHDOG=1 every half of that interval until ctx ends.
func (n *sdNotifier) ready(ctx context.Context, getenv func(string) string) {
	if n == nil || n.addr == "" {
		return
	}
	n.send("READY=1\nSTATUS=serving\nMAINPID=" + strconv.Itoa(os.Getpid()))
	every, ok := watchdogInterval(getenv, os.Getpid())
	if !ok {
		return
	}
	n.log.Info("systemd watchdog", "every", every.String())
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				n.send("WATCHDOG=1")
			}
		}
	}()
}

// watchdogInterval returns half of $WATCHDOG_USEC when it is set, positive
// and (with $WATCHDOG_PID) meant for the process pid.
func watchdogInterval(getenv func(string) string, pid int) (time.Duration, bool) {
	usec, err := strconv.ParseInt(getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0, false
	}
	if p := getenv("WATCHDOG_PID"); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n != pid {
			return 0, false
		}
	}
	return max(time.Duration(usec)*time.Microsecond/2, time.Millisecond), true
}
