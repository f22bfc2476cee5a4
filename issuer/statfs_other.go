//go:build !(linux || darwin || freebsd)

package issuer

import "errors"

// freeBytes cannot read the free space on this system: the store's reserve
// is not enforced (a full disk still fails writes closed, see Fatalf).
func freeBytes(string) (uint64, error) {
	return 0, errors.New("free space is not readable on this operating system")
}
