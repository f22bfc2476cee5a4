package main

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// allFlags returns a FlagSet with every flag loadConfig defines.
func allFlags() *pflag.FlagSet {
	fs := pflag.NewFlagSet("heliosd", pflag.ContinueOnError)
	fs.String("config", "", "")
	fs.Bool("version", false, "")
	var c Config
	c.EnsureDefaults()
	bindFlags(fs, &c)
	return fs
}

// TestEveryFlagInOneGroup: --help lists every flag once, in a group.
func TestEveryFlagInOneGroup(t *testing.T) {
	seen := map[string]int{}
	for _, g := range flagGroups() {
		for _, name := range g.flags {
			seen[name]++
		}
	}
	fs := allFlags()
	fs.VisitAll(func(f *pflag.Flag) {
		if seen[f.Name] != 1 {
			t.Errorf("--%s is in %d groups of --help, want 1", f.Name, seen[f.Name])
		}
		delete(seen, f.Name)
	})
	for name := range seen {
		t.Errorf("group names --%s, which is not a flag", name)
	}
	var help bytes.Buffer
	if _, err := loadConfig([]string{"--help"}, func(string) (string, bool) { return "", false }, &help); !errors.Is(err, pflag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"Usage:", "General:", "Listeners", "Gateway nodes (--role gateway):", "--data-dir string", "--metrics-allow networks"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, help.String())
		}
	}
}

// TestEveryFlagSpelling: every flag takes its value as --name value,
// --name=value and, as with Go's flag package before, -name value and
// -name=value, with the same result, which differs from not giving it.
func TestEveryFlagSpelling(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	base := []string{"--role", "gateway", "--issuer-url", "http://127.0.0.1:1", "--cluster-key-file", "k"}
	want, err := loadConfig(base, none, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	special := map[string]string{"role": "all", "log-level": "debug", "session-expiry": "keep", "issuer-url": "http://127.0.0.1:2",
		"raft-id": "x2", "raft-peers": "x=127.0.0.1:1"}
	byType := map[string]string{"string": "x", "duration": "7m", "int": "7", "networks": "10.0.0.0/8,10.1.2.3", "address": "127.0.0.1:1", "size": "1MiB"}
	n := 0
	allFlags().VisitAll(func(f *pflag.Flag) {
		if f.Name == "config" || f.Name == "version" {
			return
		}
		v, ok := special[f.Name]
		if !ok {
			if v, ok = byType[f.Value.Type()]; !ok {
				t.Errorf("--%s: no test value for type %s", f.Name, f.Value.Type())
				return
			}
		}
		base, want := base, want
		if strings.HasPrefix(f.Name, "raft-") {
			// Raft settings are an issuer's (role all), and come together.
			base = []string{"--raft-id", "x", "--raft-listen", "127.0.0.1:1"}
			if want, err = loadConfig(base, none, io.Discard); err != nil {
				t.Fatal(err)
			}
		}
		var first Config
		for i, form := range [][]string{{"--" + f.Name, v}, {"--" + f.Name + "=" + v}, {"-" + f.Name, v}, {"-" + f.Name + "=" + v}} {
			cfg, err := loadConfig(append(slices.Clone(base), form...), none, io.Discard)
			if err != nil {
				t.Errorf("%q: %v", form, err)
				return
			}
			if i == 0 {
				first = cfg
				if reflect.DeepEqual(cfg, want) {
					t.Errorf("%q changed nothing", form)
				}
			} else if !reflect.DeepEqual(cfg, first) {
				t.Errorf("%q: %+v, want as --%s %s: %+v", form, cfg, f.Name, v, first)
			}
		}
		n++
	})
	if n < 30 {
		t.Fatalf("only %d flags tested", n)
	}
	// A value that starts with a dash stays a value.
	cfg, err := loadConfig([]string{"-data-dir", "-odd-dir", "--pg-listen", ""}, none, io.Discard)
	if err != nil || cfg.DataDir != "-odd-dir" || cfg.Listen["postgres"] != "" {
		t.Fatalf("-data-dir -odd-dir --pg-listen '': %v %q %q", err, cfg.DataDir, cfg.Listen["postgres"])
	}
}

// TestUnknownFlagSuggests: an unknown flag names the nearest one.
func TestUnknownFlagSuggests(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	for args, want := range map[string]string{
		"--data-dri x": "unknown flag: --data-dri: did you mean --data-dir?",
		"-data_dir x":  "did you mean --data-dir?",
		"--zebra":      "unknown flag: --zebra (heliosd --help lists the flags)",
	} {
		_, err := loadConfig(strings.Fields(args), none, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", args, err, want)
		}
	}
}

// TestKeysFlags: heliosd keys takes its flags in pflag style too (and the
// single-dash form), suggests the nearest unknown one, and --help is help.
func TestKeysFlags(t *testing.T) {
	missing := t.TempDir() + "/no-such.key"
	for _, args := range [][]string{
		{"rotate", "--issuer-url", "http://127.0.0.1:1", "--cluster-key-file", missing},
		{"retire", "1", "-cluster-key-file=" + missing},
	} {
		if err := runKeys(args, io.Discard); err == nil || !strings.Contains(err.Error(), "no-such.key") {
			t.Errorf("%q: %v, want an error reading %s", args, err, missing)
		}
	}
	if err := runKeys([]string{"rotate", "--cluster-key-fil", missing}, io.Discard); err == nil || !strings.Contains(err.Error(), "did you mean --cluster-key-file?") {
		t.Errorf("misspelt flag: %v", err)
	}
	var help bytes.Buffer
	if err := runKeys([]string{"--help"}, &help); !errors.Is(err, pflag.ErrHelp) || !strings.Contains(help.String(), "--cluster-key-file") {
		t.Errorf("keys --help: %v\n%s", err, help.String())
	}
}
