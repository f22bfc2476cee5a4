package main

import "time"

// Config is the daemon's whole configuration. Precedence: flag > HELIOS_*
// environment variable > TOML file (--config) > the defaults in
// defaultConfig. An empty listen address disables that listener.
type Config struct {
	DataDir     string `toml:"data_dir"`
	HTTPListen  string `toml:"http_listen"`
	PGListen    string `toml:"pg_listen"`
	RedisListen string `toml:"redis_listen"`
	MySQLListen string `toml:"mysql_listen"`
	MongoListen string `toml:"mongo_listen"`

	// TLSCert and TLSKey name a certificate to use; empty means the
	// self-signed one generated in the data directory.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// PlaintextAllow lists the networks (CIDR) from which a token may be
	// sent without TLS. Default: loopback.
	PlaintextAllow []string `toml:"plaintext_allow"`

	// Gateway limits.
	MaxConns          int           `toml:"max_conns"`
	MaxConnsPerIP     int           `toml:"max_conns_per_ip"`
	HandshakeTimeout  time.Duration `toml:"handshake_timeout"`
	IdleTimeout       time.Duration `toml:"idle_timeout"`
	MaxPreAuthMessage int           `toml:"max_preauth_message"`
	MaxMessage        int           `toml:"max_message"`

	LogLevel string `toml:"log_level"`
}

// defaultConfig returns the embedded defaults: every listener on loopback.
func defaultConfig() Config {
	return Config{
		DataDir:           "./data",
		HTTPListen:        "127.0.0.1:8080",
		PGListen:          "127.0.0.1:5432",
		RedisListen:       "127.0.0.1:6379",
		MySQLListen:       "127.0.0.1:3306",
		MongoListen:       "127.0.0.1:27017",
		PlaintextAllow:    []string{"127.0.0.0/8", "::1/128"},
		MaxConns:          10000,
		MaxConnsPerIP:     1000,
		HandshakeTimeout:  10 * time.Second,
		IdleTimeout:       30 * time.Minute,
		MaxPreAuthMessage: 16 << 10,
		MaxMessage:        16 << 20,
		LogLevel:          "info",
	}
}
