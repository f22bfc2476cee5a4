package testdaemon

import (
	"slices"
	"testing"

	"github.com/heliosdb/auth/internal/listeners"
)

// TestEveryListenerStarts checks that the harness starts heliosd with an
// address for every listener heliosd has (internal/listeners), that Addr
// finds each, and that each named field holds its listener's address.
func TestEveryListenerStarts(t *testing.T) {
	d := &Daemon{}
	args := d.listen(t, "127.0.0.1")
	for _, l := range listeners.All {
		addr := d.Addr(l.Flag)
		if addr == "" {
			t.Errorf("no address for --%s", l.Flag)
			continue
		}
		if i := slices.Index(args, "--"+l.Flag); i < 0 || i+1 >= len(args) || args[i+1] != addr {
			t.Errorf("heliosd is not started with --%s %s: %v", l.Flag, addr, args)
		}
	}
	for flag, field := range listenerFields {
		if !slices.ContainsFunc(listeners.All[:], func(l listeners.Listener) bool { return l.Flag == flag }) {
			t.Errorf("field for --%s, which heliosd does not have", flag)
		}
		if got := *field(d); got == "" || got != d.Addr(flag) {
			t.Errorf("field for --%s holds %q, Addr %q", flag, got, d.Addr(flag))
		}
	}
}
