package main

// TOML keys and flag values of the configuration: the value types of the
// listener and list flags, flags' environment variable names, and the
// known keys with the nearest-key suggestion for a typo (also used for
// unknown flags).

import (
	"reflect"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/heliosdb/auth/internal/listeners"
)

// listenValue is a listener's address flag: an entry of Config.Listen.
type listenValue struct {
	m        map[string]string
	protocol string
}

func (v listenValue) String() string { return v.m[v.protocol] }

func (v listenValue) Set(s string) error {
	v.m[v.protocol] = s
	return nil
}

// Type names the value in --help.
func (listenValue) Type() string { return "address" }

// listValue is a comma-separated list flag.
type listValue []string

// Type names the value in --help.
func (*listValue) Type() string { return "networks" }

func (l *listValue) String() string { return strings.Join(*l, ",") }

func (l *listValue) Set(s string) error {
	*l = nil
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l = append(*l, part)
		}
	}
	return nil
}

// envName is the environment variable of a flag: HELIOS_DATA_DIR for data-dir.
func envName(flagName string) string {
	return "HELIOS_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// lookupEnv returns the environment variable of flag name: HELIOS_DATA_DIR
// or, spelled like the flag, HELIOS_DATA-DIR (which a shell cannot set but
// env(1) and service managers can).
func lookupEnv(getenv func(string) (string, bool), name string) (string, bool) {
	if v, ok := getenv(envName(name)); ok {
		return v, true
	}
	return getenv("HELIOS_" + strings.ToUpper(name))
}

// knownKeys returns every TOML key of the configuration: Config's fields
// and the listeners' addresses.
func knownKeys() []string {
	var keys []string
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		if k := t.Field(i).Tag.Get("toml"); k != "" && k != "-" {
			keys = append(keys, k)
		}
	}
	for _, l := range listeners.All {
		keys = append(keys, l.TOMLKey())
	}
	return keys
}

// nearestKey returns the known key closest to name by edit distance
// (dashes read as underscores), or "" when none is close enough to be a
// likely typo: at most a third of the name's length, and at least 2.
func nearestKey(name string) string {
	n := strings.ToLower(strings.ReplaceAll(name, "-", "_"))
	best, bestD := "", max(2, len(n)/3)+1
	for _, k := range knownKeys() {
		if d := levenshtein(n, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// levenshtein is the edit distance between a and b (bytes).
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// listenerKey returns the listener whose TOML key k is.
func listenerKey(k toml.Key) (listeners.Listener, bool) {
	if len(k) == 1 {
		for _, l := range listeners.All {
			if l.TOMLKey() == k[0] {
				return l, true
			}
		}
	}
	return listeners.Listener{}, false
}
