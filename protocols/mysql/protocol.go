package mysql

import (
	"crypto/rsa"
	"errors"
	"runtime"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
)

// Options configure the MySQL front end; New fills unset fields
// (EnsureDefaults).
type Options struct {
	// Key is the RSA key pair for the key exchange without TLS (see
	// LoadOrGenerateKey). Required.
	Key *rsa.PrivateKey
	// TLS offers CLIENT_SSL in the greeting (the transport must then have a
	// TLS configuration for the upgrade).
	TLS bool
	// ServerVersion is the version the greeting announces; default
	// "8.0.40-HeliosDB".
	ServerVersion string
	// FastAuth bounds the fast-authentication cache (on by default).
	FastAuth CacheConfig
	// Policy holds per-token IP allowlists and the databases registry
	// (see policy.go). Nil refuses every token that has an allowlist and
	// every test token, as core.AllowAddr and core.AllowDatabase do.
	Policy core.Policy
	// Usage records each accepted authentication, full or fast, for
	// last_used (nil: not recorded).
	Usage core.UsageRecorder
	// Upstream is the MySQL or MariaDB server to proxy to; nil runs the
	// built-in responder.
	Upstream *Upstream
}

// Protocol makes MySQL sessions.
type Protocol struct {
	key     *rsa.PrivateKey
	pubPEM  []byte
	caps    uint32
	version string
	cache   *authCache      // nil when fast authentication is disabled
	policy  core.Policy     // Options.Policy, for the rules applied per statement
	adm     netio.Admission // Options.Policy and Options.Usage, for authentication
	// rsaSlots bounds the RSA decryptions running at once on offloaded
	// connections' goroutines to half the cores (at least one): each takes
	// about 1 ms of CPU, and a flood of them must leave the event loops
	// (every other connection) a core to run on.
	rsaSlots chan struct{}
	up       *Upstream // Options.Upstream: proxy mode when set
}

// EnsureDefaults gives every unset field of o its default, the
// fast-authentication cache's included, and returns o. Key has no default.
func (o *Options) EnsureDefaults() *Options {
	if o.ServerVersion == "" {
		o.ServerVersion = "8.0.40-HeliosDB"
	}
	o.FastAuth.EnsureDefaults()
	return o
}

// New returns the MySQL protocol for cfg.
func New(cfg Options) (*Protocol, error) {
	cfg.EnsureDefaults()
	if cfg.Key == nil {
		return nil, errors.New("mysql: an RSA key is required")
	}
	pub, err := publicKeyPEM(cfg.Key)
	if err != nil {
		return nil, err
	}
	p := &Protocol{key: cfg.Key, pubPEM: pub, caps: serverCapabilitiesWithoutSSL, version: cfg.ServerVersion,
		cache: newAuthCache(cfg.FastAuth), policy: cfg.Policy, adm: netio.Admission{Policy: cfg.Policy, Usage: cfg.Usage},
		rsaSlots: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2)), up: cfg.Upstream}
	if cfg.Upstream != nil {
		p.caps |= proxyCaps
	}
	if cfg.TLS {
		p.caps |= ClientSSL
	}
	return p, nil
}

// Name returns "mysql".
func (*Protocol) Name() string { return "mysql" }

// NewSession returns the state machine for one connection.
func (p *Protocol) NewSession(info *netio.ConnInfo) netio.Session {
	return &Session{p: p, info: info}
}

// TLSFirstByte is false: MySQL negotiates TLS with CLIENT_SSL and an
// SSLRequest after the server's greeting.
func (*Protocol) TLSFirstByte() bool { return false }

// ALPN offers nothing.
func (*Protocol) ALPN() []string { return nil }
