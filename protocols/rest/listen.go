package rest

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"github.com/heliosdb/auth/internal/httpapi"
	"github.com/heliosdb/auth/netio"
)

// NewListener wraps ln so that one port serves HTTPS and, from the networks
// in plaintextAllow only (loopback by default), plain HTTP. Each connection's
// first byte decides: 0x16 (a TLS handshake record) starts TLS with cfg;
// anything else is plaintext HTTP, and from a network not allowed it gets a
// 403 TLS_REQUIRED response and is closed without the request being served.
// (A client that sends a token in plaintext over a real network has already
// exposed it; the refusal makes sure such a setup fails loudly instead of
// working.) The first byte is read on the serving goroutine, not in Accept,
// so a silent client cannot stall other connections.
//
// Connections are counted in the gateway's series with protocol="rest"
// (helios_gateway_connections_open and _total), and a refused plaintext
// connection as helios_gateway_auth_total{protocol="rest",
// outcome="tls_required"}, logged to log.
func NewListener(ln net.Listener, cfg *tls.Config, plaintextAllow []netip.Prefix, log *slog.Logger) net.Listener {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &listener{Listener: ln, cfg: cfg, metrics: netio.NewMetrics(Protocol, log)}
	l.allow.Store(&plaintextAllow)
	return l
}

// SetPlaintextAllow replaces the networks a listener made by NewListener
// accepts plain HTTP from (heliosd's live reload); new connections use
// them at once. It reports false for another listener.
func SetPlaintextAllow(ln net.Listener, plaintextAllow []netip.Prefix) bool {
	l, ok := ln.(*listener)
	if ok {
		l.allow.Store(&plaintextAllow)
	}
	return ok
}

type listener struct {
	net.Listener
	cfg     *tls.Config
	allow   atomic.Pointer[[]netip.Prefix]
	metrics *netio.Metrics
}

// Accept returns the next connection, undecided until its first Read.
func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.metrics.Opened()
	return &sniffConn{Conn: c, l: l}, nil
}

// plaintextOK reports whether addr may speak plain HTTP.
func (l *listener) plaintextOK(addr net.Addr) bool {
	ip := httpapi.AddrPort(addr).Addr()
	if !ip.IsValid() {
		return false
	}
	for _, p := range *l.allow.Load() {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// errTLSRequired ends a plaintext connection from a network not allowed.
var errTLSRequired = errors.New("plaintext HTTP from a network not allowed")

var tlsRequiredBody = string(httpapi.AppendErrorJSON(nil, "TLS_REQUIRED", "plaintext HTTP is accepted only from loopback "+
	"(or the networks in plaintext_allow): connect with https:// and trust the server's CA certificate", "")) + "\n"

var tlsRequiredResponse = "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
	strconv.Itoa(len(tlsRequiredBody)) + "\r\n\r\n" + tlsRequiredBody

// sniffConn decides between TLS and plaintext on its first Read. fasthttp
// reads and writes a connection from one goroutine at a time.
type sniffConn struct {
	net.Conn
	l       *listener
	once    sync.Once
	tc      atomic.Pointer[tls.Conn] // set once by decide; Close may run on another goroutine
	closed  atomic.Bool
	first   [1]byte
	pending []byte
	err     error
}

func (c *sniffConn) decide() {
	n, err := c.Conn.Read(c.first[:])
	if n == 0 {
		if err == nil {
			err = errors.New("empty read")
		}
		c.err = err
		return
	}
	if c.first[0] == 0x16 && c.l.cfg != nil {
		c.tc.Store(tls.Server(&prefixConn{Conn: c.Conn, pending: c.first[:1]}, c.l.cfg))
		return
	}
	if !c.l.plaintextOK(c.Conn.RemoteAddr()) {
		c.l.metrics.Refused(&netio.ConnInfo{Remote: httpapi.AddrPort(c.Conn.RemoteAddr())}, netio.OutcomeTLSRequired)
		_, _ = c.Conn.Write([]byte(tlsRequiredResponse))
		c.err = errTLSRequired
		return
	}
	c.pending = c.first[:1]
}

// Read decides TLS or plaintext on the first call, then reads.
func (c *sniffConn) Read(p []byte) (int, error) {
	c.once.Do(c.decide)
	switch {
	case c.err != nil:
		return 0, c.err
	case c.tc.Load() != nil:
		return c.tc.Load().Read(p)
	case len(c.pending) > 0:
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// Write writes through TLS when the connection chose it.
func (c *sniffConn) Write(p []byte) (int, error) {
	if tc := c.tc.Load(); tc != nil {
		return tc.Write(p)
	}
	return c.Conn.Write(p)
}

// Close closes the TLS layer (sending close_notify) or the socket, and
// counts the connection's end once.
func (c *sniffConn) Close() error {
	if !c.closed.Swap(true) {
		c.l.metrics.Closed()
	}
	if tc := c.tc.Load(); tc != nil {
		return tc.Close()
	}
	return c.Conn.Close()
}

// RequestTLS reports whether the request arrived over TLS: on a listener
// from NewListener, whether its connection chose TLS at its first byte;
// on any other, fasthttp's own answer. The web console marks its cookies
// Secure by it.
//
// fasthttp hands the handler its own wrapper of the connection when
// Server.MaxConnsPerIP is set (an unexported struct that embeds the
// net.Conn as its field Conn, as its own IsTLS knows); RequestTLS looks
// through such wrappers.
func RequestTLS(ctx *fasthttp.RequestCtx) bool {
	c := ctx.Conn()
	for range 4 {
		if sc, ok := c.(*sniffConn); ok {
			return sc.tc.Load() != nil
		}
		v := reflect.ValueOf(c)
		if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
			break
		}
		f := v.Elem().FieldByName("Conn")
		if !f.IsValid() || !f.CanInterface() {
			break
		}
		inner, ok := f.Interface().(net.Conn)
		if !ok || inner == nil {
			break
		}
		c = inner
	}
	return ctx.IsTLS()
}

// prefixConn replays bytes already read before reading the connection.
type prefixConn struct {
	net.Conn
	pending []byte
}

// Read returns the replayed bytes first.
func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
