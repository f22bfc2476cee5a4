package upstream

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
)

// Alive reports whether an idle server connection is still open and
// silent, without blocking: a server that restarted has closed it, and one
// that sent something unasked is not in a state to hand on. It peeks at the
// socket (MSG_PEEK|MSG_DONTWAIT), under TLS at the socket beneath it. A
// connection it cannot look into is taken as alive.
func Alive(c net.Conn) bool {
	if t, ok := c.(*tls.Conn); ok {
		c = t.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	_ = raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = n < 0 && (errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK))
		return true // never wait: this is a peek
	})
	return alive
}
