//go:build !unix

package main

import "os"

// lockDataDir does nothing where flock is not available (the issuer store's
// own lock still refuses a second process).
func lockDataDir(string) (*os.File, error) { return nil, nil }
