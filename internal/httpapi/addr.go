package httpapi

import (
	"net"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// RemoteAddr returns the client's address: the connection's TCP peer, an
// IPv4-mapped IPv6 address as its IPv4 form; the zero Addr when the
// connection is not TCP. The HTTP port takes no PROXY protocol header and
// ignores X-Forwarded-For and Forwarded (any client can send them), so the
// peer is the client, as the IP allowlists and rate limits must see it. It
// does not allocate.
func RemoteAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	return RemoteAddrPort(ctx).Addr()
}

// RemoteAddrPort is RemoteAddr with the client's port.
func RemoteAddrPort(ctx *fasthttp.RequestCtx) netip.AddrPort {
	return AddrPort(ctx.RemoteAddr())
}

// AddrPort returns a's address (unmapped) and port when a is a
// *net.TCPAddr, else the zero AddrPort.
func AddrPort(a net.Addr) netip.AddrPort {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	ap := ta.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
