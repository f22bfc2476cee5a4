package netio

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"time"

	"github.com/heliosdb/auth/core"
)

// Config is the gateway transport's configuration: limits, TLS, the keyring
// every loop verifies against, and where failures are logged. The zero value
// of each limit means its default (see EnsureDefaults, which Serve calls).
type Config struct {
	// MaxConns bounds open connections across every listener (default
	// 10000). A tenth of it is kept for addresses holding fewer than 8
	// connections: an address holding more is refused once 90% are open.
	// Refused connections waiting to be answered (LateRefuser) hold none
	// of it; at most MaxConns/16 (at least 16) of them are open at once.
	MaxConns int
	// MaxConnsPerIP bounds open connections from one source address, an
	// IPv6 client's /64 counting as one address (default 1000).
	MaxConnsPerIP int
	// HandshakeTimeout bounds the time from accept to authentication
	// (default 10s).
	HandshakeTimeout time.Duration
	// IdleTimeout bounds silence on an authenticated connection
	// (default 30 minutes).
	IdleTimeout time.Duration
	// MaxPreAuthMessage bounds one message before authentication
	// (default 16 KiB).
	MaxPreAuthMessage int
	// MaxMessage bounds one message after authentication (default 16 MiB).
	MaxMessage int
	// PlaintextAllow lists the networks whose clients may send a token
	// without TLS (ConnInfo.PlaintextOK). Nil means loopback only.
	PlaintextAllow []netip.Prefix
	// ProxyFrom lists the networks of load balancers whose connections
	// start with a PROXY protocol v2 header: from them the header is
	// required, and its source address is the client's for PlaintextOK,
	// the per-address limit and ConnInfo.Remote. Nil trusts no header.
	ProxyFrom []netip.Prefix
	// TLS is the server configuration for upgrades; nil refuses them. The
	// transport clones it per listener to set ALPN and forces TLS 1.2+.
	TLS *tls.Config
	// Keyring and Revocations feed each loop's own core.Verifier.
	Keyring     *core.Keyring
	Revocations core.RevocationView
	// Logger receives failed authentications and transport errors
	// (default slog.Default()).
	Logger *slog.Logger
	// Loops is the number of event loops per listener (default GOMAXPROCS,
	// so GOMAXPROCS=1 runs one loop per listener, as PgBouncer runs one
	// thread; gnet's own default is the number of CPUs, whatever
	// GOMAXPROCS or a container's CPU limit says).
	Loops int
	// NoReusePort turns off SO_REUSEPORT listeners (one per loop, so that
	// each loop accepts by itself); they are used unless the port is 0.
	NoReusePort bool
	// Tick is how often each loop checks its deadlines (default: a quarter
	// of the shorter timeout, between 10ms and 1s).
	Tick time.Duration
	// SessionExpiry says what happens to an authenticated session whose
	// token expires while it is open: ExpiryEnd (the default, "end") ends
	// it at the expiry with the protocol's "expired" termination;
	// ExpiryKeep ("keep") lets it run until it is idle, closed or revoked.
	// End is the default because a token's lifetime is the grant the
	// issuer made: a long-lived connection would otherwise outlive its
	// credential indefinitely (connection pools hold sessions for days),
	// and a client reconnects with a fresh token the way it would after a
	// database restart.
	SessionExpiry string
	// Sweep is how often each loop and TLS goroutine re-checks every
	// authenticated session's token against the revocation view (default
	// 10s): a safety net for what reaches a node without a Revocation (a
	// feed gone stale failing closed, a snapshot reload). Revocations are
	// delivered through Gateway.Revoke and the session index, and expiry
	// through the deadlines, so neither waits for it.
	Sweep time.Duration
	// Subscribe, when set, is called once by Serve before any listener
	// accepts, with the function that ends the sessions a revocation names
	// (Gateway.Revoke); the daemon passes its revocation feed's
	// subscription. Revoke may also be called directly.
	Subscribe func(revoke func(Revocation))
}

// Values of Config.SessionExpiry.
const (
	// ExpiryEnd ends a session when its token expires.
	ExpiryEnd = "end"
	// ExpiryKeep keeps a session open past its token's expiry, until it is
	// idle, closed or revoked.
	ExpiryKeep = "keep"
)

// EnsureDefaults gives every unset field of c its default and returns c.
func (c *Config) EnsureDefaults() *Config {
	if c.Loops <= 0 {
		c.Loops = runtime.GOMAXPROCS(0)
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 10000
	}
	if c.MaxConnsPerIP <= 0 {
		c.MaxConnsPerIP = 1000
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 30 * time.Minute
	}
	if c.MaxPreAuthMessage <= 0 {
		c.MaxPreAuthMessage = 16 << 10
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = 16 << 20
	}
	if c.PlaintextAllow == nil {
		c.PlaintextAllow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.SessionExpiry == "" {
		c.SessionExpiry = ExpiryEnd
	}
	if c.Sweep <= 0 {
		c.Sweep = 10 * time.Second
	}
	if c.Tick <= 0 {
		c.Tick = min(c.HandshakeTimeout, c.IdleTimeout) / 4
		c.Tick = max(10*time.Millisecond, min(c.Tick, time.Second))
	}
	return c
}

// ParsePrefixes parses CIDR strings ("127.0.0.1/32", "::1/128"); a bare
// address means that one host.
func ParsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, s := range cidrs {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("plaintext allow %q: not a CIDR or an address", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// inNets reports whether addr falls in one of the networks.
func inNets(allow []netip.Prefix, addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range allow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// serverTLS returns cfg cloned for one listener: TLS 1.2 or later and the
// protocol's ALPN names. It returns nil when cfg is nil.
func serverTLS(cfg *tls.Config, alpn []string) *tls.Config {
	if cfg == nil {
		return nil
	}
	c := cfg.Clone()
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	if len(alpn) > 0 {
		c.NextProtos = append(append([]string(nil), alpn...), c.NextProtos...)
	}
	return c
}
