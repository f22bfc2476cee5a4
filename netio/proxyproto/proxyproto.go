// Package proxyproto parses the PROXY protocol version 2 header that a load
// balancer puts before a client's first byte, so the gateway sees (and checks
// IP allowlists against) the client's real address. It is a pure decoder: no
// I/O, no allocation, and it must never trust a header on a listener that was
// not configured to accept one (the caller decides).
package proxyproto

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// Signature starts every version 2 header.
const Signature = "\r\n\r\n\x00\r\nQUIT\n"

// headerLen is the fixed part: signature, version/command, family, length.
const headerLen = 16

// MaxHeader bounds a header with its TLVs; a longer one is refused.
const MaxHeader = 536

// Errors.
var (
	// ErrNeedMore: the buffer holds only part of a header.
	ErrNeedMore = errors.New("proxyproto: incomplete header")
	// ErrNotProxy: the connection does not start with a version 2 header.
	ErrNotProxy = errors.New("proxyproto: no PROXY protocol v2 header")
	// ErrMalformed: a header that does not follow the specification.
	ErrMalformed = errors.New("proxyproto: malformed PROXY protocol v2 header")
)

// Header is a decoded header.
type Header struct {
	// Local is true for a LOCAL command (a health check from the balancer
	// itself): the connection's own addresses apply.
	Local bool
	// Source and Destination are the client's and the balancer's addresses
	// (zero for LOCAL and for address families other than TCP over IPv4/6).
	Source, Destination netip.AddrPort
}

// Parse decodes the header at the start of b and returns it with its length
// in bytes. It returns ErrNeedMore when b is a prefix of a header.
func Parse(b []byte) (Header, int, error) {
	var h Header
	n := min(len(b), len(Signature))
	if string(b[:n]) != Signature[:n] {
		return h, 0, ErrNotProxy
	}
	if len(b) < headerLen {
		return h, 0, ErrNeedMore
	}
	verCmd, fam := b[12], b[13]
	size := headerLen + int(binary.BigEndian.Uint16(b[14:16]))
	if verCmd>>4 != 2 || size > MaxHeader {
		return h, 0, ErrMalformed
	}
	if len(b) < size {
		return h, 0, ErrNeedMore
	}
	body := b[headerLen:size]
	switch verCmd & 0x0F {
	case 0x0: // LOCAL
		h.Local = true
		return h, size, nil
	case 0x1: // PROXY
	default:
		return h, 0, ErrMalformed
	}
	switch fam {
	case 0x11: // TCP over IPv4
		if len(body) < 12 {
			return h, 0, ErrMalformed
		}
		src := netip.AddrFrom4([4]byte(body[0:4]))
		dst := netip.AddrFrom4([4]byte(body[4:8]))
		h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[8:10]))
		h.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[10:12]))
	case 0x21: // TCP over IPv6
		if len(body) < 36 {
			return h, 0, ErrMalformed
		}
		src := netip.AddrFrom16([16]byte(body[0:16])).Unmap()
		dst := netip.AddrFrom16([16]byte(body[16:32])).Unmap()
		h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[32:34]))
		h.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[34:36]))
	case 0x00: // UNSPEC: keep the connection's addresses
		h.Local = true
	default:
		return h, 0, ErrMalformed
	}
	return h, size, nil
}
