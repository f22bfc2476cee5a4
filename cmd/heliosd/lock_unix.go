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

// lockFileName is the file in the data directory that one heliosd at a time
// holds an exclusive flock on; it contains that process's pid.
const lockFileName = "heliosd.lock"

// lockDataDir takes the data directory for this process: an exclusive,
// non-blocking flock on dir/heliosd.lock, into which it writes its pid. When
// another process holds it, the error names that process's pid (read back
// from the file) instead of flock's "resource temporarily unavailable". The
// lock lasts until the returned file is closed or the process exits.
func lockDataDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, heldError(dir, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// heldError describes a data directory another process holds, naming its pid
// when the lock file has one.
func heldError(dir, path string) error {
	text, _ := os.ReadFile(path)
	if pid, err := strconv.Atoi(strings.TrimSpace(string(text))); err == nil && pid > 0 {
		return fmt.Errorf("data directory %s is in use: another heliosd (pid %d) holds it (%s)", dir, pid, path)
	}
	return fmt.Errorf("data directory %s is in use: another heliosd holds it (%s)", dir, path)
}
