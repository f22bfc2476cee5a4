//go:build !unix

package main

import "errors"

// lockHolder is not available without flock.
func lockHolder(string) (int, error) {
	return 0, errors.New("heliosd reload needs a unix system; restart heliosd instead")
}

// signalReload is not available without SIGHUP.
func signalReload(int) error { return errors.New("no SIGHUP on this system") }
