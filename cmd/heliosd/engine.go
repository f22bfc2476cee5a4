package main

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/heliosdb/auth/issuer/feed"
	"github.com/heliosdb/auth/netio"
)

// sessionRevocation converts a feed revocation to the gateway's form; ok is
// false for an event that names no sessions.
func sessionRevocation(e *feed.Event) (r netio.Revocation, ok bool) {
	switch e.Kind {
	case feed.KindToken:
		return netio.Revocation{Kind: netio.RevokeToken, Token: e.Token}, true
	case feed.KindAccount:
		return netio.Revocation{Kind: netio.RevokeAccount, Account: e.Account, NotBefore: e.NotBefore}, true
	case feed.KindKey:
		return netio.Revocation{Kind: netio.RevokeKey, KeyID: e.KeyID}, true
	case feed.KindSnapshotEnd:
		return netio.Revocation{}, true // the zero Revocation re-checks every session
	}
	return netio.Revocation{}, false
}

// startGateway serves every registered protocol whose listen address is set
// on the netio event-loop engine (gnet; TLS connections are handed to
// crypto/tls goroutines), and returns a function that stops them all.
func startGateway(ctx context.Context, d *gatewayDeps) (stop func(), err error) {
	c := d.Config
	allow, err := netio.ParsePrefixes(c.PlaintextAllow)
	if err != nil {
		return nil, err
	}
	if len(c.PlaintextAllow) == 0 {
		allow = []netip.Prefix{} // an explicit empty list: TLS is required from everywhere
	}
	proxyFrom, err := netio.ParsePrefixes(c.ProxyFrom)
	if err != nil {
		return nil, fmt.Errorf("proxy_from: %w", err)
	}
	cfg := netio.Config{
		MaxConns:          c.MaxConns,
		MaxConnsPerIP:     c.MaxConnsPerIP,
		HandshakeTimeout:  c.HandshakeTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxPreAuthMessage: c.MaxPreAuthMessage,
		MaxMessage:        c.MaxMessage,
		PlaintextAllow:    allow,
		ProxyFrom:         proxyFrom,
		SessionExpiry:     c.SessionExpiry,
		TLS:               d.TLS,
		Keyring:           d.Keyring,
		Revocations:       d.Revocations,
		Logger:            d.Logger,
		// Every applied revocation ends the open sessions it names, on
		// every loop and TLS goroutine, through the gateway's index.
		Subscribe: func(revoke func(netio.Revocation)) {
			d.Revoked.Subscribe(func(e *feed.Event) {
				if r, ok := sessionRevocation(e); ok {
					revoke(r)
				}
			})
		},
	}
	var lns []netio.Listener
	for _, f := range protocolFactories {
		addr := c.Listen[f.name]
		if addr == "" {
			continue
		}
		p, err := f.build(d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		lns = append(lns, netio.Listener{Addr: addr, Protocol: p})
	}
	gw, err := netio.Serve(cfg, lns)
	if err != nil {
		return nil, err
	}
	daemonReload.setGateway(gw)
	for _, ln := range lns {
		addr := ln.Addr
		if a := gw.Addr(ln.Protocol.Name()); a != nil {
			addr = a.String()
		}
		d.Logger.Info("listening", "protocol", ln.Protocol.Name(), "addr", addr)
	}
	_ = ctx
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		gw.Stop(sctx)
	}, nil
}
