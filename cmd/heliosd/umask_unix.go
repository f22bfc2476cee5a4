//go:build unix

package main

import "golang.org/x/sys/unix"

// restrictUmask makes every file heliosd creates 0600 and every directory
// 0700 at most, whatever the caller's umask (Pebble creates its files 0666
// and directories 0755 before the umask).
func restrictUmask() { unix.Umask(0o077) }
