package postgres

import (
	"sync"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
)

// Protocol is the PostgreSQL front end (netio.Protocol).
type Protocol struct {
	params [][2]string
	adm    netio.Admission // Options.Policy and Options.Usage
	up     *Upstream       // Options.Upstream: proxy mode when set
	// cancels maps the BackendKeyData process ids given to proxied
	// sessions (ConnInfo.ID) to their *proxy, for CancelRequest.
	cancels sync.Map
}

// Options configure the front end; New fills unset fields (EnsureDefaults).
type Options struct {
	// ServerVersion is reported in ParameterStatus and by SHOW and
	// version() (default "16.4"; clients need ≥ 12).
	ServerVersion string
	// Policy holds IP allowlists and the databases registry; nil refuses
	// tokens with an allowlist and test tokens (fail closed).
	Policy core.Policy
	// Usage records each accepted token for last_used (nil: not recorded).
	Usage core.UsageRecorder
	// Upstream is the PostgreSQL server to proxy to; nil runs the built-in
	// responder.
	Upstream *Upstream
}

// EnsureDefaults gives every unset field of o its default and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.ServerVersion == "" {
		o.ServerVersion = "16.4"
	}
	return o
}

// New returns the PostgreSQL front end.
func New(o Options) *Protocol {
	o.EnsureDefaults()
	return &Protocol{adm: netio.Admission{Policy: o.Policy, Usage: o.Usage}, up: o.Upstream, params: [][2]string{
		{"server_version", o.ServerVersion},
		{"server_encoding", "UTF8"},
		{"client_encoding", "UTF8"},
		{"DateStyle", "ISO, MDY"},
		{"IntervalStyle", "postgres"},
		{"TimeZone", "UTC"},
		{"integer_datetimes", "on"},
		{"standard_conforming_strings", "on"},
		{"is_superuser", "off"},
		{"default_transaction_read_only", "off"},
		{"in_hot_standby", "off"},
	}}
}

// Name is "postgres".
func (*Protocol) Name() string { return "postgres" }

// NewSession returns a session for a new connection.
func (p *Protocol) NewSession(info *netio.ConnInfo) netio.Session {
	return &Session{p: p, info: info}
}

// TLSFirstByte is true: PostgreSQL 17 clients may start TLS directly
// (sslnegotiation=direct, ALPN "postgresql").
func (*Protocol) TLSFirstByte() bool { return true }

// ALPN offers "postgresql" (required by direct TLS).
func (*Protocol) ALPN() []string { return []string{"postgresql"} }

// param returns a ParameterStatus value by case-insensitive name.
func (p *Protocol) param(name string) (string, bool) {
	for _, kv := range p.params {
		if equalFold(kv[0], name) {
			return kv[1], true
		}
	}
	return "", false
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if y >= 'A' && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
