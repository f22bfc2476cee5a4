package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
)

// startGateway starts a listener for every registered protocol whose listen
// address is set, and returns a function that stops them all.
//
// This is the goroutine-per-connection path (netio.ServeConn); the gnet
// event-loop engine replaces it.
func startGateway(ctx context.Context, d *gatewayDeps) (stop func(), err error) {
	var lns []net.Listener
	var wg sync.WaitGroup
	stop = func() {
		for _, ln := range lns {
			ln.Close()
		}
		wg.Wait()
	}
	for _, f := range protocolFactories {
		addr := f.listen(d.Config)
		if addr == "" {
			continue
		}
		p, err := f.build(d)
		if err != nil {
			stop()
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			stop()
			return nil, fmt.Errorf("%s listen %s: %w", f.name, addr, err)
		}
		lns = append(lns, ln)
		d.Logger.Info("listening", "protocol", f.name, "addr", ln.Addr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			var id uint32
			for {
				c, err := ln.Accept()
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					continue
				}
				id++
				info := &netio.ConnInfo{Remote: netio.AddrPort(c.RemoteAddr()), Local: netio.AddrPort(c.LocalAddr()), ID: id, Accepted: time.Now()}
				info.PlaintextOK = info.Remote.Addr().IsLoopback()
				env := &netio.Env{
					Verifier:          core.NewVerifier(d.Keyring, d.Revocations),
					MaxPreAuthMessage: d.Config.MaxPreAuthMessage,
					MaxMessage:        d.Config.MaxMessage,
					Observer:          netio.NopObserver{},
				}
				go netio.ServeConn(c, p, p.NewSession(info), info, env, nil, netio.GoroutineOptions{TLS: d.TLS})
			}
		}()
	}
	_ = ctx
	return stop, nil
}
