// Package testfs gives tests small file systems of their own: a tmpfs of a
// chosen size, and a way to fill it. It is for tests only (the daemon never
// imports it) and must never touch a file system it did not mount.
package testfs

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// MountTmpfs mounts a tmpfs of size (mount(8) syntax, "8m") on a new
// directory, unmounted when the test ends (after the cleanups registered
// later, such as stopping a daemon that uses it). It skips the test, saying
// why, only when this process may not mount.
func MountTmpfs(t testing.TB, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Skipf("cannot mount a %s tmpfs on %s (%v): this test needs a small file system of its own; run it as root", size, dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			_ = unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir
}

// FillTo writes dir/filler until the file system is full, then gives back
// keep bytes, and returns the free space left.
func FillTo(t testing.TB, dir string, keep int64) uint64 {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "filler"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for n := len(buf); n >= 512; {
		if _, err := f.Write(buf[:n]); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			n /= 2
		}
	}
	if keep > 0 {
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(max(st.Size()-keep, 0)); err != nil {
			t.Fatal(err)
		}
	}
	return Free(t, dir)
}

// Free returns the bytes an unprivileged writer may still use in dir's
// file system.
func Free(t testing.TB, dir string) uint64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}
