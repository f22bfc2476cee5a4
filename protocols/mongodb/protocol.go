package mongodb

import (
	"bytes"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
)

// DefaultMaxPreAuthMessage bounds a message before authentication when the
// Env sets no bound (a hello with client metadata is well under 2 KiB).
const DefaultMaxPreAuthMessage = 16 << 10

// Options configure the MongoDB front end; New fills unset fields
// (EnsureDefaults). The zero value refuses tokens with an IP allowlist and
// test tokens everywhere (fail closed).
type Options struct {
	// ServerVersion is the version buildInfo reports (default "7.0.0", the
	// release whose wire version is maxWireVersion 21).
	ServerVersion string
	// Policy holds per-token IP allowlists and the databases registry.
	Policy core.Policy
	// Usage records each successful authentication for last_used (nil: not
	// recorded).
	Usage core.UsageRecorder
	// CAFile is the certificate clients must trust for TLS (heliosd's
	// self-signed one), named in the connection string that authentication
	// errors give; "" when clients verify with their system trust store.
	CAFile string
	// Upstream is the MongoDB-wire server to proxy to; nil runs the
	// built-in responder.
	Upstream *Upstream
}

// Protocol is the MongoDB front end: it makes one Session per connection.
type Protocol struct {
	version      string
	versionArray [4]int32
	policy       core.Policy     // Options.Policy, for the rules applied per command
	adm          netio.Admission // Options.Policy and Options.Usage, for saslStart
	caFile       string          // Options.CAFile
	up           *Upstream       // Options.Upstream: proxy mode when set
}

// EnsureDefaults gives every unset field of o its default and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.ServerVersion == "" {
		o.ServerVersion = "7.0.0"
	}
	return o
}

// New returns the MongoDB protocol with opts.
func New(opts Options) *Protocol {
	opts.EnsureDefaults()
	p := &Protocol{version: opts.ServerVersion, policy: opts.Policy,
		adm: netio.Admission{Policy: opts.Policy, Usage: opts.Usage, OtherToken: errOtherToken}, caFile: opts.CAFile,
		up: opts.Upstream}
	parts := bytes.SplitN([]byte(p.version), []byte("."), 4)
	for i, part := range parts {
		n := int32(0)
		for _, c := range part {
			if c < '0' || c > '9' {
				break
			}
			n = n*10 + int32(c-'0')
		}
		p.versionArray[i] = n
	}
	return p
}

// Name is "mongodb".
func (p *Protocol) Name() string { return "mongodb" }

// NewSession returns the state machine for one connection.
func (p *Protocol) NewSession(info *netio.ConnInfo) netio.Session {
	return &Session{p: p, info: info}
}

// TLSFirstByte is true: MongoDB clients with tls=true start TLS at once.
func (p *Protocol) TLSFirstByte() bool { return true }

// ALPN offers nothing: MongoDB drivers send no ALPN.
func (p *Protocol) ALPN() []string { return nil }
