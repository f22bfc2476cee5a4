package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/heliosdb/auth/internal/listeners"
)

// Type names the value in --help.
func (*byteSize) Type() string { return "size" }

// flagGroup is a section of --help.
type flagGroup struct {
	title string
	flags []string
}

// flagGroups lays out --help; every flag is in exactly one group
// (TestEveryFlagInOneGroup).
func flagGroups() []flagGroup {
	lis := flagGroup{title: "Listeners (an empty address disables one)"}
	for _, l := range listeners.All {
		lis.flags = append(lis.flags, l.Flag)
	}
	return []flagGroup{
		{"General", []string{"config", "role", "data-dir", "log-level", "version"}},
		lis,
		{"TLS and networks", []string{"tls-cert", "tls-key", "plaintext-allow", "proxy-from", "metrics-allow"}},
		{"Gateway limits and sessions", []string{"max-conns", "max-conns-per-ip", "handshake-timeout", "idle-timeout",
			"max-preauth-message", "max-message", "session-expiry"}},
		{"Issuer", []string{"live-token-lifetime", "refresh-grace", "login-per-email", "login-per-ip",
			"signup-per-email", "signup-per-ip", "storage-reserve", "usage-flush"}},
		{"Issuer replicas (raft)", []string{"raft-id", "raft-listen", "raft-peers", "raft-election-timeout", "raft-snapshot-threshold", "raft-trailing-logs"}},
		{"Gateway nodes (--role gateway)", []string{"issuer-url", "cluster-key-file", "issuer-ca", "stale-after", "node-state"}},
		{"Upstream databases (proxy mode)", []string{"pg-upstream", "pg-upstream-file", "pg-upstream-roles-file", "pg-pool-size", "pg-pool-wait", "sql-timeout",
			"mysql-upstream", "mysql-upstream-file", "mysql-upstream-roles-file", "mysql-pool-size", "mysql-pool-wait",
			"redis-upstream", "redis-upstream-file", "redis-pool-size", "redis-pool-wait",
			"mongo-upstream", "mongo-upstream-file", "mongo-pool-size", "mongo-pool-wait"}},
	}
}

// printUsage writes heliosd's --help: the synopsis, then the flags by group.
func printUsage(w io.Writer, fs *pflag.FlagSet) {
	fmt.Fprint(w, `heliosd is the HeliosDB Auth daemon: the issuer (/v1/auth) and the gateway (PostgreSQL, MySQL, MongoDB, Redis, REST).

Usage:
  heliosd [flags]
  heliosd keys rotate|retire ID [--issuer-url URL] [--cluster-key-file FILE] [--issuer-ca PEM]
  heliosd raft status|add ID ADDR|remove ID [--issuer-url URL] [--cluster-key-file FILE] [--issuer-ca PEM]
  heliosd check-config [--config FILE] [flags]   validate and print the effective settings
  heliosd reload [--config FILE] [--data-dir DIR]  apply a changed configuration, certificate or keyring (SIGHUP)
  heliosd backup --to FILE [--issuer-url URL] [--cluster-key-file FILE] [--issuer-ca PEM]
  heliosd restore --from FILE --data-dir DIR      into an empty directory

Every flag is also a HELIOS_* environment variable (--data-dir: HELIOS_DATA_DIR) and a key of the
--config TOML file (data_dir or data-dir); flags win over variables, variables over the file.
`)
	for _, g := range flagGroups() {
		set := pflag.NewFlagSet(g.title, pflag.ContinueOnError)
		set.SortFlags = false
		for _, name := range g.flags {
			if f := fs.Lookup(name); f != nil {
				set.AddFlag(f)
			}
		}
		fmt.Fprintf(w, "\n%s:\n%s", g.title, set.FlagUsages())
	}
}

// longDashes rewrites the single-dash long flags Go's flag package accepted
// (-data-dir, -pg-listen=…) to pflag's double dash, so existing scripts keep
// working. Only where a flag may stand (not a flag's value, not after
// "--"); heliosd has no shorthand flags, so nothing is lost, and an
// unknown -name is reported as --name with a suggestion.
func longDashes(fs *pflag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			a = "-" + a
		}
		out = append(out, a)
		if strings.HasPrefix(a, "--") && !strings.Contains(a, "=") {
			if f := fs.Lookup(a[2:]); f != nil && f.NoOptDefVal == "" && i+1 < len(args) {
				i++
				out = append(out, args[i]) // its value, even if it starts with "-"
			}
		}
	}
	return out
}

// suggestFlag adds the nearest known flag to an unknown-flag error.
func suggestFlag(fs *pflag.FlagSet, err error) error {
	var ne *pflag.NotExistError
	if !errors.As(err, &ne) || ne.GetSpecifiedName() == "" {
		return err
	}
	name := ne.GetSpecifiedName()
	best, bestD := "", max(2, len(name)/3)+1
	fs.VisitAll(func(f *pflag.Flag) {
		if d := levenshtein(strings.ReplaceAll(name, "_", "-"), f.Name); d < bestD {
			best, bestD = f.Name, d
		}
	})
	if best == "" {
		return fmt.Errorf("%w (heliosd --help lists the flags)", err)
	}
	return fmt.Errorf("%w: did you mean --%s?", err, best)
}
