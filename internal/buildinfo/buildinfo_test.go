package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestDescribeBuild(t *testing.T) {
	for _, c := range []struct {
		bi   debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{GoVersion: "go1.24.0", Main: debug.Module{Version: "v1.2.0"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"}}},
			"v1.2.0 (rev 0123456789ab-dirty, 2026-01-02T03:04:05Z, go1.24.0)"},
		{debug.BuildInfo{GoVersion: "go1.24.0", Main: debug.Module{Version: "(devel)"}}, "(devel) (go1.24.0)"},
		{debug.BuildInfo{GoVersion: "go1.24.0"}, "(devel) (go1.24.0)"},
	} {
		if got := Describe(&c.bi); got != c.want {
			t.Errorf("Describe = %q, want %q", got, c.want)
		}
	}
	if v := Version(); !strings.Contains(v, "go1.") {
		t.Errorf("Version() = %q, want the Go version in it", v)
	}
}
