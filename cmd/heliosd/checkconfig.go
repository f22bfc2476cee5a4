package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/heliosdb/auth/internal/listeners"
	"github.com/heliosdb/auth/netio"
)

// runCheckConfig is `heliosd check-config [--config F] [flags]`: it builds
// the configuration exactly as the daemon would (file, HELIOS_* variables,
// flags), validates everything that can be checked without starting
// (loadConfig's checks and checkDeep's), and prints the effective settings
// as TOML with credentials redacted. A bad setting is an error naming its
// key; the daemon is never started and the data directory never touched.
func runCheckConfig(args []string, out io.Writer) error {
	cfg, err := loadConfig(args, os.LookupEnv, out)
	if errors.Is(err, errShowVersion) {
		return errors.New("check-config: --version is not a setting")
	}
	if err != nil {
		return fmt.Errorf("check-config: %w", err)
	}
	if err := checkDeep(&cfg); err != nil {
		return fmt.Errorf("check-config: %w", err)
	}
	fmt.Fprintln(out, "# heliosd check-config: configuration OK; the effective settings (credentials redacted):")
	writeEffective(out, &cfg)
	return nil
}

// checkDeep validates what loadConfig leaves to the start: network lists,
// listen addresses, the TLS pair and the credential files. Each error
// names the setting.
func checkDeep(c *Config) error {
	for _, l := range listeners.All {
		if a := c.Listen[l.Protocol]; a != "" {
			if _, port, err := net.SplitHostPort(a); err != nil {
				return fmt.Errorf("%s %q: %w", l.TOMLKey(), a, err)
			} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
				return fmt.Errorf("%s %q: port %q is not a number 0-65535", l.TOMLKey(), a, port)
			}
		}
	}
	if _, err := netio.ParsePrefixes(c.PlaintextAllow); err != nil {
		return fmt.Errorf("plaintext_allow: %w", err)
	}
	if _, err := netio.ParsePrefixes(c.ProxyFrom); err != nil {
		return fmt.Errorf("proxy_from: %w", err)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("tls_cert and tls_key: give both or neither")
	}
	if c.TLSCert != "" {
		if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
			return fmt.Errorf("tls_cert/tls_key: %w", err)
		}
	}
	for name, v := range map[string]int{"max_conns": c.MaxConns, "max_conns_per_ip": c.MaxConnsPerIP,
		"max_preauth_message": c.MaxPreAuthMessage, "max_message": c.MaxMessage, "pg_pool_size": c.PGPoolSize,
		"mysql_pool_size": c.MySQLPoolSize, "redis_pool_size": c.RedisPoolSize, "mongo_pool_size": c.MongoPoolSize} {
		if v < 0 {
			return fmt.Errorf("%s must not be negative (%d)", name, v)
		}
	}
	for name, d := range map[string]time.Duration{"handshake_timeout": c.HandshakeTimeout, "idle_timeout": c.IdleTimeout,
		"pg_pool_wait": c.PGPoolWait, "mysql_pool_wait": c.MySQLPoolWait, "redis_pool_wait": c.RedisPoolWait,
		"mongo_pool_wait": c.MongoPoolWait, "sql_timeout": c.SQLTimeout} {
		if d < 0 {
			return fmt.Errorf("%s must not be negative (%s)", name, d)
		}
	}
	for _, s := range []struct{ key, inline, file string }{
		{"pg_upstream", c.PGUpstream, c.PGUpstreamFile}, {"mysql_upstream", c.MySQLUpstream, c.MySQLUpstreamFile},
		{"redis_upstream", c.RedisUpstream, c.RedisUpstreamFile}, {"mongo_upstream", c.MongoUpstream, c.MongoUpstreamFile},
		{"pg_upstream_roles", "", c.PGUpstreamRolesFile}, {"mysql_upstream_roles", "", c.MySQLUpstreamRolesFile},
	} {
		v, err := secretSetting(strings.ReplaceAll(s.key, "_", "-"), s.inline, s.file)
		if err != nil {
			return fmt.Errorf("%s_file: %w", s.key, err)
		}
		if v != "" && !strings.HasSuffix(s.key, "_roles") {
			if u, err := url.Parse(v); err != nil || u.Scheme == "" || u.Host == "" {
				return fmt.Errorf("%s: not a URL such as scheme://user:pw@host:port/", s.key)
			}
		}
	}
	for _, f := range []struct{ key, path string }{{"cluster_key_file", c.ClusterKeyFile}, {"issuer_ca", c.IssuerCA}} {
		if f.path != "" {
			if _, err := os.Stat(f.path); err != nil {
				return fmt.Errorf("%s: %w", f.key, err)
			}
		}
	}
	return nil
}

// secretKeys are the settings that may carry a password: printed with it
// replaced by "xxxxx" (a URL's password) or "<redacted>".
var secretKeys = map[string]bool{"pg_upstream": true, "mysql_upstream": true, "redis_upstream": true, "mongo_upstream": true}

// writeEffective prints c as a TOML file heliosd would read back: every
// listener, then every setting in Config's order, credentials redacted.
func writeEffective(w io.Writer, c *Config) {
	for _, l := range listeners.All {
		fmt.Fprintf(w, "%s = %s\n", l.TOMLKey(), strconv.Quote(c.Listen[l.Protocol]))
	}
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := range t.NumField() {
		key := t.Field(i).Tag.Get("toml")
		if key == "" || key == "-" {
			continue
		}
		fmt.Fprintf(w, "%s = %s\n", key, tomlValue(key, v.Field(i)))
	}
}

// tomlValue renders one setting's value as TOML.
func tomlValue(key string, f reflect.Value) string {
	switch x := f.Interface().(type) {
	case string:
		if secretKeys[key] && x != "" {
			return strconv.Quote(redactURL(x))
		}
		return strconv.Quote(x)
	case []string:
		q := make([]string, len(x))
		for i, s := range x {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	case time.Duration:
		return strconv.Quote(x.String())
	case byteSize:
		return strconv.Quote(x.String())
	case int:
		return strconv.Itoa(x)
	}
	return strconv.Quote(fmt.Sprint(f.Interface()))
}

// redactURL hides a URL's password; a value that does not parse as a URL
// is hidden whole.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "<redacted>"
	}
	return u.Redacted()
}
