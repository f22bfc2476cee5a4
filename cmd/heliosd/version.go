package main

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// errShowVersion is loadConfig's answer to --version: run prints the
// version and exits 0.
var errShowVersion = errors.New("version requested")

// version describes the build from runtime/debug.ReadBuildInfo: the module
// version ("(devel)" for a build inside the repository), the VCS revision
// (12 digits, "-dirty" when the tree had uncommitted changes) and time when
// the build recorded them, and the Go version, e.g.
// "v1.2.0 (rev 0123456789ab, 2026-01-02T03:04:05Z, go1.24.0)".
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown version)"
	}
	return describeBuild(bi)
}

// describeBuild is version for bi.
func describeBuild(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = ", " + s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return v + " (" + bi.GoVersion + ")"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return fmt.Sprintf("%s (rev %s%s%s, %s)", v, rev, dirty, at, bi.GoVersion)
}
