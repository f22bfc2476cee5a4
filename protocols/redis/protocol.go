package redis

import (
	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
)

// serverVersion is the Redis version HELLO reports.
const serverVersion = "7.2.0"

// Options configure the Redis front end; the zero value refuses tokens
// with an IP allowlist and test tokens everywhere (fail closed).
type Options struct {
	// Policy holds per-token IP allowlists and the databases registry.
	Policy core.Policy
	// Usage records each accepted authentication for last_used (nil: not
	// recorded).
	Usage core.UsageRecorder
	// Upstream is the Redis server to proxy to; nil runs the built-in
	// responder.
	Upstream *Upstream
}

// Protocol makes Redis sessions. Redis clients start TLS from the first byte
// (rediss://, redis-cli --tls), so TLSFirstByte is true.
type Protocol struct {
	policy core.Policy     // Options.Policy, for the rules applied per command
	adm    netio.Admission // Options.Policy and Options.Usage, for AUTH and HELLO
	up     *Upstream       // Options.Upstream: proxy mode when set
}

// New returns the Redis protocol with opts.
func New(opts Options) *Protocol {
	return &Protocol{policy: opts.Policy, up: opts.Upstream,
		adm: netio.Admission{Policy: opts.Policy, Usage: opts.Usage, OtherToken: errOtherToken}}
}

// lookup returns the classification of a command (lower case): in proxy
// mode, from the table merged with the server's own once it is known.
func (p *Protocol) lookup(name []byte) command {
	if p.up != nil {
		if t := p.up.table.Load(); t != nil {
			return lookupIn(*t, name)
		}
	}
	return lookup(name)
}

// Name returns "redis".
func (*Protocol) Name() string { return "redis" }

// NewSession returns the state machine for one connection.
func (p *Protocol) NewSession(info *netio.ConnInfo) netio.Session {
	return &Session{p: p, info: info, proto: RESP2}
}

// TLSFirstByte is true: a Redis client that wants TLS starts with it.
func (*Protocol) TLSFirstByte() bool { return true }

// ALPN offers nothing: Redis clients do not send ALPN.
func (*Protocol) ALPN() []string { return nil }
