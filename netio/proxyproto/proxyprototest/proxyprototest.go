// Package proxyprototest plays the load balancer in tests and benchmarks:
// it writes the PROXY protocol version 2 header that package proxyproto
// parses. It is written from the specification (HAProxy's
// proxy-protocol.txt, section 2.2), not from the parser, so that a test of
// one checks the other. The daemon never imports it.
package proxyprototest

import (
	"encoding/binary"
	"net/netip"
)

// The header: a 12-byte signature, the version and command, the address
// family and transport, the length of the addresses, then the addresses.
const (
	signature    = "\r\n\r\n\x00\r\nQUIT\n"
	versionPROXY = 0x21 // version 2, command PROXY
	tcpOverIPv4  = 0x11
	tcpOverIPv6  = 0x21
	ipv4AddrsLen = 12 // two IPv4 addresses and two ports
	ipv6AddrsLen = 36 // two IPv6 addresses and two ports
)

// Append appends a version 2 PROXY header for a TCP connection from src to
// dst (both IPv4, or else both sent as IPv6) to b: what a load balancer
// sends before the client's first byte.
func Append(b []byte, src, dst netip.AddrPort) []byte {
	b = append(b, signature...)
	if src.Addr().Is4() && dst.Addr().Is4() {
		b = append(b, versionPROXY, tcpOverIPv4, 0, ipv4AddrsLen)
		s, d := src.Addr().As4(), dst.Addr().As4()
		b = append(append(b, s[:]...), d[:]...)
	} else {
		b = append(b, versionPROXY, tcpOverIPv6, 0, ipv6AddrsLen)
		s, d := src.Addr().As16(), dst.Addr().As16()
		b = append(append(b, s[:]...), d[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}
