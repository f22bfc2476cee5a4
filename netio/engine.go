package netio

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"
)

// Listener is one protocol served on one address ("127.0.0.1:5432"; port 0
// picks a free port, see Gateway.Addr).
type Listener struct {
	Addr     string
	Protocol Protocol
	// Observer counts and logs this listener's outcomes; nil means a new
	// Metrics for the protocol's name.
	Observer *Metrics
}

// Gateway is the running transport: one gnet engine per listener, sharing
// the connection limits, plus the TLS goroutines handed off from them.
type Gateway struct {
	cfg     Config
	limiter *connLimiter
	// live holds the settings Reconfigure may change (reload.go); read
	// them through lv, never from cfg.
	settings atomic.Pointer[Live]
	servers  []*server
	tlsWG    sync.WaitGroup
	tlsMu    sync.Mutex
	tlsConn  map[net.Conn]struct{}
	closing  bool
	// verifiers pools the TLS goroutines' verifiers.
	verifiers sync.Pool
	// live lists the servers for Revoke (set before each engine runs).
	live atomic.Pointer[[]*server]
	// goIdx indexes the TLS goroutines' authenticated sessions.
	goIdx *goIndex
}

// Serve starts every listener and returns once each is accepting. On an
// error nothing is left running.
func Serve(cfg Config, lns []Listener) (*Gateway, error) {
	cfg.EnsureDefaults()
	if cfg.Keyring == nil {
		return nil, errors.New("netio: no keyring")
	}
	if cfg.SessionExpiry != ExpiryEnd && cfg.SessionExpiry != ExpiryKeep {
		return nil, fmt.Errorf("netio: session expiry %q: want %q or %q", cfg.SessionExpiry, ExpiryEnd, ExpiryKeep)
	}
	g := &Gateway{cfg: cfg, limiter: newConnLimiter(cfg.MaxConns, cfg.MaxConnsPerIP), tlsConn: make(map[net.Conn]struct{}), goIdx: newGoIndex()}
	g.settings.Store(liveOf(&cfg))
	if cfg.Subscribe != nil {
		cfg.Subscribe(g.Revoke)
	}
	for _, ln := range lns {
		s, err := g.start(ln)
		if err != nil {
			g.Stop(context.Background())
			return nil, err
		}
		g.servers = append(g.servers, s)
	}
	return g, nil
}

func (g *Gateway) start(ln Listener) (*server, error) {
	obs := ln.Observer
	if obs == nil {
		obs = NewMetrics(ln.Protocol.Name(), g.cfg.Logger)
	}
	s := &server{g: g, p: ln.Protocol, obs: obs, tls: serverTLS(g.cfg.TLS, ln.Protocol.ALPN()), booted: make(chan struct{}), done: make(chan struct{})}
	// With SO_REUSEPORT every loop accepts on its own socket (no hand-over
	// from an acceptor loop); on port 0 each socket would get its own port.
	// A probe without SO_REUSEPORT first, so that a second daemon on the
	// same port fails to start instead of sharing its connections.
	_, port, _ := net.SplitHostPort(ln.Addr)
	reusePort := !g.cfg.NoReusePort && port != "0" && port != ""
	if reusePort {
		probe, err := net.Listen("tcp", ln.Addr)
		if err != nil {
			return nil, fmt.Errorf("%s listen %s: %w", ln.Protocol.Name(), ln.Addr, err)
		}
		_ = probe.Close()
	}
	live := append(append([]*server(nil), g.servers...), s) // Serve starts listeners one at a time
	g.live.Store(&live)
	go func() {
		defer close(s.done)
		s.runErr = gnet.Run(s, "tcp://"+ln.Addr,
			gnet.WithMulticore(true),
			gnet.WithReusePort(reusePort),
			gnet.WithNumEventLoop(g.cfg.Loops),
			gnet.WithReuseAddr(true),
			gnet.WithTicker(true),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithLogger(gnetLog{g.cfg.Logger}),
			gnet.WithLogLevel(logging.WarnLevel))
		s.closePaused() // the loops have returned: end what was off the poller
	}()
	select {
	case <-s.booted:
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("%s listen %s: %w", ln.Protocol.Name(), ln.Addr, s.runErr)
	}
}

// Addr returns the bound address of the listener for protocol name (useful
// after listening on port 0), or nil.
func (g *Gateway) Addr(name string) net.Addr {
	for _, s := range g.servers {
		if s.p.Name() == name {
			return s.addr
		}
	}
	return nil
}

// Open returns the number of connections held (every listener, TLS included).
func (g *Gateway) Open() int { return int(g.limiter.open()) }

// Stop closes the listeners and every connection, and waits for the event
// loops and TLS goroutines to end (or ctx to expire).
func (g *Gateway) Stop(ctx context.Context) {
	var wg sync.WaitGroup
	for _, s := range g.servers { // in parallel: gnet polls for its shutdown
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.eng.Stop(ctx)
			select {
			case <-s.done:
			case <-ctx.Done():
			}
		}()
	}
	wg.Wait()
	g.tlsMu.Lock()
	g.closing = true
	for c := range g.tlsConn {
		_ = c.Close()
	}
	g.tlsMu.Unlock()
	done := make(chan struct{})
	go func() { g.tlsWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// server is one listener's gnet engine and event handler.
type server struct {
	gnet.BuiltinEventEngine
	g      *Gateway
	p      Protocol
	obs    *Metrics
	tls    *tls.Config
	eng    gnet.Engine
	addr   net.Addr
	loops  loopSet
	booted chan struct{}
	done   chan struct{}
	runErr error
}

// OnBoot records the engine and its bound address.
func (s *server) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	if fd, err := eng.Dup(); err == nil {
		f := os.NewFile(uintptr(fd), "listener")
		if l, err := net.FileListener(f); err == nil {
			s.addr = l.Addr()
			_ = l.Close()
		}
		_ = f.Close()
	}
	close(s.booted)
	return gnet.None
}

// OnTick asks every loop to check its deadlines on its own goroutine.
func (s *server) OnTick() (time.Duration, gnet.Action) {
	for _, ls := range s.loops.all() {
		_ = ls.el.Execute(context.Background(), ls)
	}
	return s.g.cfg.Tick, gnet.None
}

// gnetLog sends gnet's own messages to slog: warnings and errors only.
type gnetLog struct{ l *slog.Logger }

// Debugf and Infof drop gnet's chatter; Warnf, Errorf and Fatalf log it
// (gnet's Fatalf does not exit here).
func (gnetLog) Debugf(string, ...any) {}
func (gnetLog) Infof(string, ...any)  {}
func (g gnetLog) Warnf(f string, a ...any) {
	g.l.Warn("gnet", "msg", fmt.Sprintf(f, a...))
}
func (g gnetLog) Errorf(f string, a ...any) {
	g.l.Error("gnet", "msg", fmt.Sprintf(f, a...))
}
func (g gnetLog) Fatalf(f string, a ...any) {
	g.l.Error("gnet fatal", "msg", fmt.Sprintf(f, a...))
}
