// Package upstreamtest runs a protocol's front end in proxy mode inside a
// test's own process, on a netio gateway on a free loopback port, so that
// the race detector watches its sessions, their server connections and
// the pool (e2e/ runs heliosd as a separate binary instead). The gateway
// has a keyring of its own, from which the test mints tokens, and
// revocations the test controls. Imported by the live tests of
// protocols/<name> only.
package upstreamtest

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
)

// Gateway is one front end served on 127.0.0.1 by a netio gateway in the
// test's process.
type Gateway struct {
	Addr string         // the listener's host:port
	GW   *netio.Gateway // the running gateway
	Ring *core.Keyring  // what the gateway verifies tokens against
	// Revs is the revocations the gateway checks a login against (Revoke).
	Revs *core.MemoryRevocations
}

// Serve serves p (the listener named name, as netio.Gateway.Addr names it)
// on a free port of 127.0.0.1 with cfg, whose Keyring, Revocations and
// Logger (discarded) it sets, and Loops if 0 (to 2). The gateway stops at
// the end of the test.
func Serve(t testing.TB, cfg netio.Config, name string, p netio.Protocol) *Gateway {
	t.Helper()
	g := &Gateway{Ring: core.GenerateKeyring(time.Now().Add(-time.Hour)), Revs: core.NewMemoryRevocations()}
	cfg.Keyring, cfg.Revocations = g.Ring, g.Revs
	if cfg.Loops == 0 {
		cfg.Loops = 2
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	var err error
	g.GW, err = netio.Serve(cfg, []netio.Listener{{Addr: "127.0.0.1:0", Protocol: p}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.GW.Stop(context.Background()) })
	g.Addr = g.GW.Addr(name).String()
	return g
}

// Mint returns a live token with scopes, valid for an hour, and its
// claims.
func (g *Gateway) Mint(t testing.TB, scopes core.ScopeSet) (string, core.Claims) {
	t.Helper()
	now := time.Now()
	c := core.Claims{Type: core.TypeLive, ID: core.NewTokenID(), Account: 7, IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix(), Scopes: scopes}
	tok, _, err := core.NewMinter(g.Ring).Mint(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	return string(tok), c
}

// Revoke revokes the token of c as heliosd does: in the revocations new
// logins are checked against, and on the sessions open with it.
func (g *Gateway) Revoke(c core.Claims) {
	g.Revs.RevokeToken(c.ID, c.ExpiresAt)
	g.GW.Revoke(netio.Revocation{Kind: netio.RevokeToken, Token: c.ID})
}

// Concurrently runs each of workers, for w from 0 to n-1, on a goroutine
// of its own (n of each: writers beside readers, say), and once all have
// returned reports every error one returned with t.Error.
func Concurrently(t testing.TB, n int, workers ...func(w int) error) {
	t.Helper()
	errs := make(chan error, n*len(workers))
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		for _, work := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := work(w); err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
