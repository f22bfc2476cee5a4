package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/spf13/pflag"

	"github.com/heliosdb/auth/internal/listeners"
)

// Config is the daemon's whole configuration. Precedence: flag > HELIOS_*
// environment variable > TOML file (--config) > the defaults of
// EnsureDefaults.
//
// Every field has a flag of the same name in kebab case (data_dir is
// --data-dir) and an environment variable HELIOS_ + the name in upper case
// (HELIOS_DATA_DIR). TOML keys and variables may also be spelled with
// dashes like the flag (data-dir, HELIOS_DATA-DIR); an unknown TOML key is
// an error naming the nearest known one. Lists are comma-separated in flags and variables,
// arrays in TOML; durations are Go durations ("10s", "168h").
type Config struct {
	// Role is "all" (the issuer and a gateway in one process, the default)
	// or "gateway" (a node following a remote issuer: no issuer store).
	Role    string `toml:"role"`
	DataDir string `toml:"data_dir"`
	// Listen holds every listener's address by protocol ("http",
	// "postgres", …): the listeners of internal/listeners, each with its
	// flag, TOML key and variable (--pg-listen, pg_listen,
	// HELIOS_PG_LISTEN). An empty address disables that listener.
	Listen map[string]string `toml:"-"`

	// TLSCert and TLSKey name a certificate to use; empty means the
	// self-signed one generated in the data directory.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// caFile is the absolute path of the certificate clients must trust when
	// the one served is self-signed, "" when another CA issued it: set at
	// start (caFileFor), printed in the connection guide and in MongoDB's
	// authentication advice. Not a setting.
	caFile string
	// PlaintextAllow lists the networks (CIDR) from which a token may be
	// sent without TLS. Default: loopback.
	PlaintextAllow []string `toml:"plaintext_allow"`
	// ProxyFrom lists the load balancers' networks (CIDR) whose connections
	// to the gateway listeners start with a PROXY protocol v2 header: from
	// them the header is required and names the client's address (for IP
	// allowlists, limits and the plaintext rule). Default: none.
	ProxyFrom []string `toml:"proxy_from"`
	// MetricsAllow lists the networks (CIDR, or single addresses) whose
	// scrapers read GET /metrics without a token; from anywhere else it
	// needs a Bearer token with metrics:read. Default: loopback.
	MetricsAllow []string `toml:"metrics_allow"`
	// SessionExpiry is what happens to an open session whose token expires:
	// "end" (default) ends it with the protocol's "expired" error; "keep"
	// lets it run until it is idle, closed or revoked.
	SessionExpiry string `toml:"session_expiry"`

	// Gateway limits.
	MaxConns          int           `toml:"max_conns"`
	MaxConnsPerIP     int           `toml:"max_conns_per_ip"`
	HandshakeTimeout  time.Duration `toml:"handshake_timeout"`
	IdleTimeout       time.Duration `toml:"idle_timeout"`
	MaxPreAuthMessage int           `toml:"max_preauth_message"`
	MaxMessage        int           `toml:"max_message"`

	// Issuer.
	// LiveTokenLifetime is a live token's default lifetime (the seed's
	// "7 days (configurable)").
	LiveTokenLifetime time.Duration `toml:"live_token_lifetime"`
	// RefreshGrace is how long a refreshed token keeps working.
	RefreshGrace time.Duration `toml:"refresh_grace"`
	// LoginPerEmail and LoginPerIP are failed logins allowed per minute per
	// email and per source address (0 disables the limit).
	LoginPerEmail int `toml:"login_per_email"`
	LoginPerIP    int `toml:"login_per_ip"`
	// StorageReserve is the free space kept on the issuer store's file
	// system ("64MiB"): below it the issuer refuses writes (507
	// STORAGE_FULL) except revocations, which may use three quarters of
	// it. 0 disables the check.
	StorageReserve byteSize `toml:"storage_reserve"`
	// SignupPerEmail and SignupPerIP are failed signups (409 EMAIL_TAKEN)
	// allowed per minute per email and per source address (0 disables the
	// limit); a signup that creates its account costs nothing.
	SignupPerEmail int `toml:"signup_per_email"`
	SignupPerIP    int `toml:"signup_per_ip"`

	// Issuer replicas (raft; see README "Three issuer replicas"). All
	// empty: a single issuer, exactly as without them.
	// RaftID is this replica's id; RaftListen its raft address (mutual
	// TLS with the cluster key; followers forward writes over it).
	RaftID     string `toml:"raft_id"`
	RaftListen string `toml:"raft_listen"`
	// RaftPeers is the initial voters, this replica included:
	// "id=host:port,id=host:port" (used once, to bootstrap).
	RaftPeers string `toml:"raft_peers"`
	// RaftElectionTimeout is raft's heartbeat and election timeout.
	RaftElectionTimeout time.Duration `toml:"raft_election_timeout"`
	// RaftSnapshotThreshold is how many raft log entries trigger a
	// snapshot of the store; RaftTrailingLogs how many stay in the log
	// after it (a replica further behind catches up from the snapshot).
	RaftSnapshotThreshold int `toml:"raft_snapshot_threshold"`
	RaftTrailingLogs      int `toml:"raft_trailing_logs"`

	// Gateway nodes (role "gateway").
	// IssuerURL is the issuer's base URL (https://issuer:8080; plain http
	// only on loopback or a plaintext_allow network of the issuer).
	IssuerURL string `toml:"issuer_url"`
	// ClusterKeyFile is a copy of the issuer's data-dir/cluster.key (mode
	// 0600); role "all" creates it there.
	ClusterKeyFile string `toml:"cluster_key_file"`
	// IssuerCA is a PEM file to trust for the issuer's certificate (its
	// data-dir/tls-cert.pem when self-signed); empty: the system roots.
	IssuerCA string `toml:"issuer_ca"`
	// StaleAfter is how long a node keeps verifying without hearing from
	// the issuer before it refuses every token (fails closed).
	StaleAfter time.Duration `toml:"stale_after"`
	// NodeState is where a node persists its revocation set and applied
	// sequence number (default data-dir/feed-state).
	NodeState string `toml:"node_state"`
	// UsageFlush is how often aggregated last_used times are flushed: a
	// node sends them to the issuer, the issuer writes them.
	UsageFlush time.Duration `toml:"usage_flush"`

	// Upstreams (proxy mode). PGUpstream is an administrator URL of the
	// PostgreSQL server behind the gateway (postgres://postgres:pw@host:5433/postgres);
	// PGUpstreamFile names a 0600 file holding it instead (kept out of ps and
	// the environment). Empty: the built-in responder.
	PGUpstream     string `toml:"pg_upstream"`
	PGUpstreamFile string `toml:"pg_upstream_file"`
	// PGUpstreamRolesFile (0600, JSON: role name → URL) logs in as roles
	// provisioned by someone else, instead of an administrator connection.
	PGUpstreamRolesFile string `toml:"pg_upstream_roles_file"`
	// PGPoolSize bounds the server connections of one role and database;
	// PGPoolWait is how long a client waits for one when all are in use
	// (then 53300).
	PGPoolSize int           `toml:"pg_pool_size"`
	PGPoolWait time.Duration `toml:"pg_pool_wait"`
	// SQLTimeout is the statement timeout of POST /api/v1/sql in proxy mode.
	SQLTimeout time.Duration `toml:"sql_timeout"`
	// MySQLUpstream is an administrator URL of the MySQL or MariaDB server
	// behind the gateway (mysql://root:pw@host:3307/); MySQLUpstreamFile
	// names a 0600 file holding it instead. Empty: the built-in responder.
	MySQLUpstream     string `toml:"mysql_upstream"`
	MySQLUpstreamFile string `toml:"mysql_upstream_file"`
	// MySQLUpstreamRolesFile (0600, JSON: role name → URL) logs in as users
	// provisioned by someone else, instead of an administrator connection.
	MySQLUpstreamRolesFile string `toml:"mysql_upstream_roles_file"`
	// MySQLPoolSize and MySQLPoolWait size its pools as PGPoolSize and
	// PGPoolWait do PostgreSQL's (then 1040).
	MySQLPoolSize int           `toml:"mysql_pool_size"`
	MySQLPoolWait time.Duration `toml:"mysql_pool_wait"`
	// RedisUpstream is a URL of a Redis user that may run ACL SETUSER
	// (redis://default:pw@host:6380/, rediss:// for TLS);
	// RedisUpstreamFile names a 0600 file holding it instead. Empty: the
	// built-in responder.
	RedisUpstream     string `toml:"redis_upstream"`
	RedisUpstreamFile string `toml:"redis_upstream_file"`
	// RedisPoolSize bounds the server connections of one ACL user;
	// RedisPoolWait is how long a client waits for one when all are in use
	// (then -ERR max number of clients reached).
	RedisPoolSize int           `toml:"redis_pool_size"`
	RedisPoolWait time.Duration `toml:"redis_pool_wait"`
	// MongoUpstream is the connection string of the MongoDB-wire server
	// behind the gateway (mongodb://127.0.0.1:27018/, with user:pw@ when
	// it authenticates): MongoDB, FerretDB or any server that speaks the
	// protocol; MongoUpstreamFile names a 0600 file holding it instead.
	// Empty: the built-in responder.
	MongoUpstream     string `toml:"mongo_upstream"`
	MongoUpstreamFile string `toml:"mongo_upstream_file"`
	// MongoPoolSize bounds the server connections of one token role (each
	// client session holds one for its life); MongoPoolWait is how long a
	// client waits for one when all are in use (then 402).
	MongoPoolSize int           `toml:"mongo_pool_size"`
	MongoPoolWait time.Duration `toml:"mongo_pool_wait"`

	LogLevel string `toml:"log_level"`
}

// EnsureDefaults gives every unset field of c its default and returns c:
// every listener on loopback (listeners.All's defaults; a listener present
// in Listen with "" stays disabled), plaintext allowed from loopback, and
// the limits below. loadConfig calls it on an empty Config before it applies
// the file, the variables and the flags, so a setting given there as 0 or
// "" (disabling a limit or a listener) stays so.
func (c *Config) EnsureDefaults() *Config {
	if c.Role == "" {
		c.Role = "all"
	}
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.Listen == nil {
		c.Listen = make(map[string]string, len(listeners.All))
	}
	for _, l := range listeners.All {
		if _, set := c.Listen[l.Protocol]; !set {
			c.Listen[l.Protocol] = l.Default
		}
	}
	if c.PlaintextAllow == nil {
		c.PlaintextAllow = []string{"127.0.0.0/8", "::1/128"}
	}
	if c.MetricsAllow == nil {
		c.MetricsAllow = []string{"127.0.0.0/8", "::1/128"}
	}
	if c.SessionExpiry == "" {
		c.SessionExpiry = "end"
	}
	ensure(&c.MaxConns, 10000)
	ensure(&c.MaxConnsPerIP, 1000)
	ensure(&c.HandshakeTimeout, 10*time.Second)
	ensure(&c.IdleTimeout, 30*time.Minute)
	ensure(&c.MaxPreAuthMessage, 16<<10)
	ensure(&c.MaxMessage, 16<<20)
	ensure(&c.LiveTokenLifetime, 7*24*time.Hour)
	ensure(&c.RefreshGrace, 60*time.Second)
	ensure(&c.LoginPerEmail, 10)
	ensure(&c.LoginPerIP, 60)
	ensure(&c.StorageReserve, issuerDefaultReserve)
	ensure(&c.SignupPerEmail, 10)
	ensure(&c.SignupPerIP, 20)
	ensure(&c.StaleAfter, 30*time.Second)
	ensure(&c.RaftElectionTimeout, 300*time.Millisecond)
	ensure(&c.RaftSnapshotThreshold, 8192)
	ensure(&c.RaftTrailingLogs, 10240)
	ensure(&c.UsageFlush, 5*time.Second)
	ensure(&c.PGPoolSize, 20)
	ensure(&c.PGPoolWait, 5*time.Second)
	ensure(&c.MySQLPoolSize, 20)
	ensure(&c.MySQLPoolWait, 5*time.Second)
	ensure(&c.RedisPoolSize, 20)
	ensure(&c.RedisPoolWait, 5*time.Second)
	ensure(&c.MongoPoolSize, 100)
	ensure(&c.MongoPoolWait, 5*time.Second)
	ensure(&c.SQLTimeout, 30*time.Second)
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	return c
}

// ensure sets *v to def when it is zero.
func ensure[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// bindFlags registers a flag for every Config field, writing into c.
func bindFlags(fs *pflag.FlagSet, c *Config) {
	fs.StringVar(&c.Role, "role", c.Role, "all (issuer and gateway) or gateway (a node following --issuer-url)")
	fs.StringVar(&c.IssuerURL, "issuer-url", c.IssuerURL, "gateway nodes: the issuer's base URL (its replicas': URL1,URL2,…)")
	fs.StringVar(&c.ClusterKeyFile, "cluster-key-file", c.ClusterKeyFile, "gateway nodes: the issuer's cluster.key (mode 0600)")
	fs.StringVar(&c.IssuerCA, "issuer-ca", c.IssuerCA, "gateway nodes: PEM certificate to trust for the issuer")
	fs.DurationVar(&c.StaleAfter, "stale-after", c.StaleAfter, "gateway nodes: fail closed after this long without the issuer's feed")
	fs.StringVar(&c.NodeState, "node-state", c.NodeState, "gateway nodes: revocation state file (default data-dir/feed-state)")
	fs.DurationVar(&c.UsageFlush, "usage-flush", c.UsageFlush, "how often last_used times are flushed (nodes: sent to the issuer; issuer: written)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "data directory (keyring, TLS certificate, issuer store)")
	for _, l := range listeners.All {
		fs.Var(listenValue{c.Listen, l.Protocol}, l.Flag, l.Title+" listen `address` (empty disables)")
	}
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "TLS certificate (PEM); empty: self-signed in the data directory")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "TLS private key (PEM)")
	fs.Var((*listValue)(&c.PlaintextAllow), "plaintext-allow", "comma-separated networks (CIDR) allowed to send tokens without TLS")
	fs.Var((*listValue)(&c.ProxyFrom), "proxy-from", "comma-separated load-balancer networks (CIDR) that send a PROXY protocol v2 header")
	fs.Var((*listValue)(&c.MetricsAllow), "metrics-allow", "comma-separated networks (CIDR) whose scrapers read /metrics without a token (others need metrics:read)")
	fs.StringVar(&c.SessionExpiry, "session-expiry", c.SessionExpiry, "an open session whose token expires: end (default) or keep")
	fs.IntVar(&c.MaxConns, "max-conns", c.MaxConns, "maximum gateway connections")
	fs.IntVar(&c.MaxConnsPerIP, "max-conns-per-ip", c.MaxConnsPerIP, "maximum gateway connections per source address")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", c.HandshakeTimeout, "time allowed to authenticate")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", c.IdleTimeout, "idle time before an authenticated connection is closed")
	fs.IntVar(&c.MaxPreAuthMessage, "max-preauth-message", c.MaxPreAuthMessage, "largest message before authentication (bytes)")
	fs.IntVar(&c.MaxMessage, "max-message", c.MaxMessage, "largest message after authentication (bytes)")
	fs.DurationVar(&c.LiveTokenLifetime, "live-token-lifetime", c.LiveTokenLifetime, "default lifetime of live tokens")
	fs.DurationVar(&c.RefreshGrace, "refresh-grace", c.RefreshGrace, "how long a refreshed token keeps working")
	fs.IntVar(&c.LoginPerEmail, "login-per-email", c.LoginPerEmail, "failed logins allowed per minute per email (0: unlimited)")
	fs.IntVar(&c.LoginPerIP, "login-per-ip", c.LoginPerIP, "failed logins allowed per minute per source address (0: unlimited)")
	fs.IntVar(&c.SignupPerEmail, "signup-per-email", c.SignupPerEmail, "failed signups (email taken) allowed per minute per email (0: unlimited)")
	fs.IntVar(&c.SignupPerIP, "signup-per-ip", c.SignupPerIP, "failed signups (email taken) allowed per minute per source address (0: unlimited)")
	fs.StringVar(&c.RaftID, "raft-id", c.RaftID, "issuer replicas: this replica's raft id (with --raft-listen and --raft-peers; none: a single issuer)")
	fs.StringVar(&c.RaftListen, "raft-listen", c.RaftListen, "issuer replicas: raft `address` (mutual TLS with the cluster key)")
	fs.StringVar(&c.RaftPeers, "raft-peers", c.RaftPeers, "issuer replicas: the initial voters, id=host:port,… (this replica included)")
	fs.DurationVar(&c.RaftElectionTimeout, "raft-election-timeout", c.RaftElectionTimeout, "issuer replicas: raft heartbeat and election timeout")
	fs.IntVar(&c.RaftSnapshotThreshold, "raft-snapshot-threshold", c.RaftSnapshotThreshold, "issuer replicas: raft log entries that trigger a snapshot of the store")
	fs.IntVar(&c.RaftTrailingLogs, "raft-trailing-logs", c.RaftTrailingLogs, "issuer replicas: raft log entries kept after a snapshot")
	fs.Var(&c.StorageReserve, "storage-reserve", "free space kept on the issuer store's file system, e.g. 64MiB: below it writes other than revocations are refused (0: no check)")
	fs.StringVar(&c.PGUpstream, "pg-upstream", c.PGUpstream, "PostgreSQL administrator URL to proxy to (postgres://user:pw@host:port/db); empty: built-in responder")
	fs.StringVar(&c.PGUpstreamFile, "pg-upstream-file", c.PGUpstreamFile, "file (mode 0600) holding the --pg-upstream URL")
	fs.StringVar(&c.PGUpstreamRolesFile, "pg-upstream-roles-file", c.PGUpstreamRolesFile, "file (mode 0600, JSON {\"helios_read\": URL, …}) of the six role URLs, instead of --pg-upstream")
	fs.IntVar(&c.PGPoolSize, "pg-pool-size", c.PGPoolSize, "PostgreSQL server connections per role and database")
	fs.DurationVar(&c.PGPoolWait, "pg-pool-wait", c.PGPoolWait, "how long a client waits for a PostgreSQL server connection when all are in use")
	fs.StringVar(&c.MySQLUpstream, "mysql-upstream", c.MySQLUpstream, "MySQL/MariaDB administrator URL to proxy to (mysql://user:pw@host:port/); empty: built-in responder")
	fs.StringVar(&c.MySQLUpstreamFile, "mysql-upstream-file", c.MySQLUpstreamFile, "file (mode 0600) holding the --mysql-upstream URL")
	fs.StringVar(&c.MySQLUpstreamRolesFile, "mysql-upstream-roles-file", c.MySQLUpstreamRolesFile, "file (mode 0600, JSON {\"helios_read\": URL, …}) of the six role URLs, instead of --mysql-upstream")
	fs.IntVar(&c.MySQLPoolSize, "mysql-pool-size", c.MySQLPoolSize, "MySQL server connections per role, database and client flags")
	fs.DurationVar(&c.MySQLPoolWait, "mysql-pool-wait", c.MySQLPoolWait, "how long a client waits for a MySQL server connection when all are in use")
	fs.StringVar(&c.RedisUpstream, "redis-upstream", c.RedisUpstream, "Redis URL of a user that may run ACL SETUSER, to proxy to (redis://default:pw@host:port/); empty: built-in responder")
	fs.StringVar(&c.RedisUpstreamFile, "redis-upstream-file", c.RedisUpstreamFile, "file (mode 0600) holding the --redis-upstream URL")
	fs.IntVar(&c.RedisPoolSize, "redis-pool-size", c.RedisPoolSize, "Redis server connections per ACL user")
	fs.DurationVar(&c.RedisPoolWait, "redis-pool-wait", c.RedisPoolWait, "how long a client waits for a Redis server connection when all are in use")
	fs.StringVar(&c.MongoUpstream, "mongo-upstream", c.MongoUpstream, "MongoDB-wire server to proxy to: MongoDB, FerretDB, … (mongodb://[user:pw@]host:port/); empty: built-in responder")
	fs.StringVar(&c.MongoUpstreamFile, "mongo-upstream-file", c.MongoUpstreamFile, "file (mode 0600) holding the --mongo-upstream URL")
	fs.IntVar(&c.MongoPoolSize, "mongo-pool-size", c.MongoPoolSize, "MongoDB server connections per token role (one per client session)")
	fs.DurationVar(&c.MongoPoolWait, "mongo-pool-wait", c.MongoPoolWait, "how long a client waits for a MongoDB server connection when all are in use")
	fs.DurationVar(&c.SQLTimeout, "sql-timeout", c.SQLTimeout, "statement timeout of POST /api/v1/sql in proxy mode")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")
}

// loadConfig builds the configuration from defaults, the TOML file named by
// --config or HELIOS_CONFIG, HELIOS_* variables and flags, in increasing
// precedence.
func loadConfig(args []string, getenv func(string) (string, bool), usage io.Writer) (Config, error) {
	// Parse the flags once to learn which were given and where the file is.
	var given Config
	given.EnsureDefaults()
	fs := pflag.NewFlagSet("heliosd", pflag.ContinueOnError)
	fs.SetOutput(usage)
	fs.SortFlags = false
	configPath := fs.String("config", "", "TOML configuration `file` (also HELIOS_CONFIG)")
	showVersion := fs.Bool("version", false, "print the version (module version, VCS revision, Go version) and exit")
	bindFlags(fs, &given)
	fs.Usage = func() { printUsage(usage, fs) }
	if err := fs.Parse(longDashes(fs, args)); err != nil {
		return Config{}, suggestFlag(fs, err)
	}
	if *showVersion {
		return Config{}, errShowVersion
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q: every setting is a --flag", fs.Arg(0))
	}
	path := *configPath
	if path == "" {
		path, _ = getenv("HELIOS_CONFIG")
	}

	var cfg Config
	cfg.EnsureDefaults()
	if path != "" {
		if err := decodeFile(path, &cfg); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	final := pflag.NewFlagSet("heliosd", pflag.ContinueOnError)
	final.SetOutput(io.Discard)
	bindFlags(final, &cfg)
	var errs []error
	final.VisitAll(func(f *pflag.Flag) {
		if v, ok := lookupEnv(getenv, f.Name); ok {
			if err := final.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", envName(f.Name), err))
			}
		}
	})
	fs.Visit(func(f *pflag.Flag) {
		if f.Name == "config" || f.Name == "version" {
			return
		}
		if err := final.Set(f.Name, f.Value.String()); err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", f.Name, err))
		}
	})
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return cfg, cfg.validate()
}

// decodeFile reads the TOML file at path into c: the listeners' addresses
// (one key each, listeners.Listener.TOMLKey) into c.Listen, every other key
// into its field. A key may be spelled with underscores (data_dir) or
// dashes like its flag (data-dir). A key that is neither a field nor a
// listener is an error naming the nearest known key.
func decodeFile(path string, c *Config) error {
	text, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var top map[string]any
	if _, err := toml.Decode(string(text), &top); err != nil {
		return err
	}
	src, spelled := string(text), map[string]string{}
	if dashed := slices.ContainsFunc(slices.Collect(maps.Keys(top)), func(k string) bool { return strings.Contains(k, "-") }); dashed {
		norm := make(map[string]any, len(top))
		for k, v := range top {
			n := strings.ReplaceAll(k, "-", "_")
			if _, dup := norm[n]; dup {
				return fmt.Errorf("setting %q given twice (spelled with dashes and with underscores)", n)
			}
			norm[n], spelled[n] = v, k
		}
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(norm); err != nil {
			return err
		}
		src, top = buf.String(), norm
	}
	md, err := toml.Decode(src, c)
	if err != nil {
		return err
	}
	for _, l := range listeners.All {
		v, ok := top[l.TOMLKey()]
		if !ok {
			continue
		}
		addr, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: want an address string such as %q", l.TOMLKey(), l.Default)
		}
		c.Listen[l.Protocol] = addr
	}
	for _, k := range md.Undecoded() {
		if _, ok := listenerKey(k); !ok {
			name := k.String()
			if len(k) == 1 && spelled[k[0]] != "" {
				name = spelled[k[0]] // as the file spells it
			}
			if s := nearestKey(name); s != "" {
				return fmt.Errorf("unknown setting %q: did you mean %q?", name, s)
			}
			return fmt.Errorf("unknown setting %q", name)
		}
	}
	return nil
}

// parseNets parses the setting name's networks: CIDRs, or single
// addresses meaning that one host.
func parseNets(name string, list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a network (CIDR such as 10.0.0.0/8) or an address", name, s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// validate checks values that the flag types do not.
func (c *Config) validate() error {
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log_level %q: use debug, info, warn or error", c.LogLevel)
	}
	if c.DataDir == "" {
		return errors.New("data_dir must be set")
	}
	if c.UsageFlush <= 0 {
		return errors.New("usage_flush must be positive")
	}
	if _, err := parseNets("metrics_allow", c.MetricsAllow); err != nil {
		return err
	}
	switch c.SessionExpiry {
	case "end", "keep":
	default:
		return fmt.Errorf("session_expiry %q: use end or keep", c.SessionExpiry)
	}
	if err := c.validateRaft(); err != nil {
		return err
	}
	switch c.Role {
	case "all":
	case "gateway":
		if c.IssuerURL == "" || c.ClusterKeyFile == "" {
			return errors.New("role gateway needs issuer_url (--issuer-url) and cluster_key_file (--cluster-key-file, a copy of the issuer's data-dir/cluster.key)")
		}
		// Several URLs, comma-separated: the issuer's raft replicas.
		for _, u := range strings.Split(c.IssuerURL, ",") {
			if u = strings.TrimSpace(u); !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
				return fmt.Errorf("issuer_url %q: use https://host:port (or http:// on loopback), comma-separated for replicas", u)
			}
		}
		if c.StaleAfter <= 0 {
			return errors.New("stale_after must be positive")
		}
	default:
		return fmt.Errorf("role %q: use all or gateway", c.Role)
	}
	for name, d := range map[string]time.Duration{"live_token_lifetime": c.LiveTokenLifetime, "refresh_grace": c.RefreshGrace} {
		if d < 0 {
			return fmt.Errorf("%s must not be negative", name)
		}
	}
	if c.LiveTokenLifetime < time.Minute {
		return fmt.Errorf("live_token_lifetime %s is shorter than a minute", c.LiveTokenLifetime)
	}
	return nil
}
