//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockHolder returns the pid of the heliosd holding dir's lock: the pid in
// the lock file, after checking the file is locked (a lock we can take
// means no daemon runs there).
func lockHolder(dir string) (int, error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("no heliosd runs on %s: %w", dir, err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err == nil {
		return 0, fmt.Errorf("no heliosd runs on %s (its lock is free)", dir)
	} else if !errors.Is(err, unix.EWOULDBLOCK) {
		return 0, fmt.Errorf("lock %s: %w", path, err)
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(text)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s holds no pid", path)
	}
	return pid, nil
}

// signalReload sends SIGHUP to pid.
func signalReload(pid int) error { return unix.Kill(pid, unix.SIGHUP) }
