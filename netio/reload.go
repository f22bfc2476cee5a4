package netio

import (
	"net/netip"
	"time"
)

// Live is the part of Config a running Gateway takes new values of
// (Reconfigure): limits, timeouts and networks. New connections use the new
// values at once; an open session keeps its state but meets the new
// timeouts at its next deadline and the new message limits at its loop's
// next tick.
type Live struct {
	// MaxConns and MaxConnsPerIP are Config's connection bounds.
	MaxConns      int
	MaxConnsPerIP int
	// HandshakeTimeout and IdleTimeout are Config's timeouts.
	HandshakeTimeout time.Duration
	IdleTimeout      time.Duration
	// MaxPreAuthMessage and MaxMessage are Config's message bounds.
	MaxPreAuthMessage int
	MaxMessage        int
	// PlaintextAllow and ProxyFrom are Config's networks (nil
	// PlaintextAllow: loopback; an empty one: nowhere).
	PlaintextAllow []netip.Prefix
	ProxyFrom      []netip.Prefix
}

// liveOf is the Live part of c (after EnsureDefaults).
func liveOf(c *Config) *Live {
	return &Live{MaxConns: c.MaxConns, MaxConnsPerIP: c.MaxConnsPerIP, HandshakeTimeout: c.HandshakeTimeout,
		IdleTimeout: c.IdleTimeout, MaxPreAuthMessage: c.MaxPreAuthMessage, MaxMessage: c.MaxMessage,
		PlaintextAllow: c.PlaintextAllow, ProxyFrom: c.ProxyFrom}
}

// Reconfigure replaces the live settings (zero values take their
// defaults, as in Config) and returns what is in force. Safe to call while
// serving: readers load the settings through one atomic pointer, and the
// connection limits are atomics.
func (g *Gateway) Reconfigure(l Live) Live {
	c := Config{MaxConns: l.MaxConns, MaxConnsPerIP: l.MaxConnsPerIP, HandshakeTimeout: l.HandshakeTimeout,
		IdleTimeout: l.IdleTimeout, MaxPreAuthMessage: l.MaxPreAuthMessage, MaxMessage: l.MaxMessage,
		PlaintextAllow: l.PlaintextAllow, ProxyFrom: l.ProxyFrom}
	c.EnsureDefaults()
	lv := liveOf(&c)
	g.limiter.setLimits(lv.MaxConns, lv.MaxConnsPerIP)
	g.settings.Store(lv)
	return *lv
}

// lv returns the live settings in force.
func (g *Gateway) lv() *Live { return g.settings.Load() }

// refreshLive gives the loop's Env the message limits in force; it runs
// on the loop (each tick).
func (l *loopState) refreshLive() {
	if lv := l.s.g.lv(); lv != l.live {
		l.live = lv
		l.env.MaxPreAuthMessage, l.env.MaxMessage = lv.MaxPreAuthMessage, lv.MaxMessage
	}
}
