package testdaemon

import (
	"bytes"
	"fmt"
	"os"
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

// TestWithEnv starts a real heliosd with WithEnv and finds the entry in
// the process's environment, after the harness's own.
func TestWithEnv(t *testing.T) {
	d := Start(t, WithEnv("GOMAXPROCS=1"))
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", d.PID()))
	if err != nil {
		t.Fatal(err)
	}
	vars := bytes.Split(env, []byte{0})
	if i := slices.IndexFunc(vars, func(v []byte) bool { return string(v) == "GOMAXPROCS=1" }); i < 0 ||
		!slices.ContainsFunc(vars[:i], func(v []byte) bool { return string(v) == "HELIOS_CONFIG=" }) {
		t.Fatalf("heliosd's environment lacks GOMAXPROCS=1 after HELIOS_CONFIG=: %q", env)
	}
}
