// Package buildinfo describes the build of the running binary for the
// --version of helios and heliosd: module version, VCS revision and time,
// and Go version, from runtime/debug.ReadBuildInfo. It only reads what the
// Go toolchain recorded; it never runs git or reads files.
package buildinfo

import (
	"fmt"
	"runtime/debug"
)

// Version describes the running binary's build, e.g.
// "v1.2.0 (rev 0123456789ab, 2026-01-02T03:04:05Z, go1.26.0)".
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown version)"
	}
	return Describe(bi)
}

// Describe is Version for bi: the module version ("(devel)" for a build
// inside the repository), the VCS revision (12 digits, "-dirty" when the
// tree had uncommitted changes) and time when the build recorded them, and
// the Go version.
func Describe(bi *debug.BuildInfo) string {
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
