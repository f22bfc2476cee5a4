package main

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/heliosdb/auth/issuer"
)

// byteSize is a size in bytes written as a number with an optional unit:
// 64MiB, 512KiB, 1GB, 1048576 (flags, environment and TOML alike).
type byteSize int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

// Set parses s.
func (b *byteSize) Set(s string) error {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n < 0 || n*float64(mult) > 1<<62 {
		return fmt.Errorf("%q is not a size: use e.g. 64MiB, 512KiB or a number of bytes", s)
	}
	*b = byteSize(n * float64(mult))
	return nil
}

// String writes the size in the largest binary unit that divides it.
func (b *byteSize) String() string {
	n := int64(*b)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// UnmarshalText parses a TOML string such as "64MiB".
func (b *byteSize) UnmarshalText(text []byte) error { return b.Set(string(text)) }

// warnOpenDataDir logs a warning when the data directory is readable,
// writable or searchable by group or others: it holds the keyring, the
// cluster key and the issuer store (emails, password hashes). heliosd
// creates everything in it 0700/0600 but leaves the directory's own mode
// to its owner.
func warnOpenDataDir(dir string, log *slog.Logger) {
	st, err := os.Stat(dir)
	if err != nil {
		return
	}
	// Group traverse alone (0710: make run lets the postgres group reach
	// data/upstreams/postgres) reveals nothing: every file in it is 0600
	// and every directory 0700.
	if perm := st.Mode().Perm(); perm&0o067 != 0 {
		log.Warn("the data directory is accessible by group or others: it holds the signing keys, the cluster key and the issuer store; run chmod 700 on it",
			"dir", dir, "mode", fmt.Sprintf("%04o", perm))
	}
}

// issuerDefaultReserve is the default --storage-reserve.
const issuerDefaultReserve = byteSize(issuer.DefaultReserve)
