package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/heliosdb/auth/internal/listeners"
)

// TestListenersMatchProtocols holds the protocol registry (registerProtocol
// in proto_*.go) and the listener list (internal/listeners) to each other:
// every registered protocol has a listener and builds a netio.Protocol of
// that name, and every listener but the REST API's has a registered
// protocol. A protocol added to one and not the other fails here.
func TestListenersMatchProtocols(t *testing.T) {
	if len(protocolFactories) == 0 {
		t.Fatal("no protocol registered")
	}
	deps := &gatewayDeps{Config: &Config{}, DataDir: t.TempDir(), Upstreams: &upstreams{}}
	seen := map[string]bool{}
	for _, f := range protocolFactories {
		if seen[f.name] {
			t.Errorf("protocol %q registered twice", f.name)
		}
		seen[f.name] = true
		if !slices.ContainsFunc(listeners.All[:], func(l listeners.Listener) bool { return l.Protocol == f.name }) {
			t.Errorf("protocol %q is registered but internal/listeners has no listener for it", f.name)
		}
		p, err := f.build(deps)
		if err != nil {
			t.Fatalf("build %s: %v", f.name, err)
		}
		if p.Name() != f.name {
			t.Errorf("protocol registered as %q is named %q: the gateway finds its address by that name", f.name, p.Name())
		}
	}
	for _, l := range listeners.All {
		if l.Protocol != listeners.HTTP && !seen[l.Protocol] {
			t.Errorf("listener %s (--%s) has no registered protocol (registerProtocol in proto_%s.go)", l.Protocol, l.Flag, l.Protocol)
		}
		if l.Flag == "" || l.Default == "" || l.Title == "" {
			t.Errorf("listener %+v: flag, default and title are required", l)
		}
	}
}

// TestEveryListenerIsConfigured checks each listener in every place the
// daemon lists listeners: its default, its flag (and --help), its
// environment variable, its TOML key, and the host names of the generated
// certificate.
func TestEveryListenerIsConfigured(t *testing.T) {
	def := (&Config{}).EnsureDefaults()
	var help bytes.Buffer
	if _, err := loadConfig([]string{"-h"}, func(string) (string, bool) { return "", false }, &help); !errors.Is(err, pflag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	var file strings.Builder
	var args []string
	env := map[string]string{}
	for i, l := range listeners.All {
		if got := def.Listen[l.Protocol]; got != l.Default {
			t.Errorf("%s: default %q, want %q", l.Protocol, got, l.Default)
		}
		if !strings.Contains(help.String(), "-"+l.Flag+" ") {
			t.Errorf("--help does not list -%s:\n%s", l.Flag, help.String())
		}
		// Each listener set in one of the three places, by turns.
		addr := fmt.Sprintf("192.0.2.%d:%d", i+1, 1000+i)
		switch i % 3 {
		case 0:
			fmt.Fprintf(&file, "%s = %q\n", l.TOMLKey(), addr)
		case 1:
			env[envName(l.Flag)] = addr
		case 2:
			args = append(args, "--"+l.Flag, addr)
		}
	}
	path := filepath.Join(t.TempDir(), "heliosd.toml")
	if err := os.WriteFile(path, []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	env["HELIOS_CONFIG"] = path
	cfg, err := loadConfig(args, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, &help)
	if err != nil {
		t.Fatal(err)
	}
	hosts := certHosts(&cfg)
	for i, l := range listeners.All {
		want := fmt.Sprintf("192.0.2.%d:%d", i+1, 1000+i)
		if got := cfg.Listen[l.Protocol]; got != want {
			t.Errorf("%s: address %q, want %q (set through %s)", l.Protocol, got, want, [...]string{"TOML " + l.TOMLKey(), envName(l.Flag), "--" + l.Flag}[i%3])
		}
		if !slices.Contains(hosts, fmt.Sprintf("192.0.2.%d", i+1)) {
			t.Errorf("%s: certificate hosts %v lack its address", l.Protocol, hosts)
		}
	}
}

// TestListenerTOMLErrors: a listener's key must hold a string, and a key
// that is no setting and no listener is still refused.
func TestListenerTOMLErrors(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	for _, text := range []string{"pg_listen = 5432\n", "pg_listn = \"127.0.0.1:1\"\n", "[pg_listen]\nx = 1\n"} {
		path := filepath.Join(t.TempDir(), "c.toml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := loadConfig([]string{"--config", path}, none, &bytes.Buffer{}); err == nil {
			t.Errorf("%q accepted", text)
		}
	}
}
