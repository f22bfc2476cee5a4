package netio

import (
	"unsafe"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// write sends p on c from its event loop. When gnet holds nothing
// unwritten for c, p goes out with a raw write(2) first: the socket is
// non-blocking, so the call never blocks, and the Go scheduler does not
// mark the loop's P as in a system call. A write on loopback wakes its
// reader, which often preempts the writer before write(2) returns; with
// gnet's own write (unix.Write, which enters the scheduler's syscall
// state) a preempted write looked to the runtime's monitor like a blocked
// system call, so it handed the P to another thread and parked this one
// when it came back — two futex calls and two context switches, and the
// monitor kept polling every 20µs. What the socket does not take (or an
// error) goes through gnet's Write, whose error it returns, which buffers the rest and waits for
// the socket to drain, or closes the connection on a real error.
func write(c gnet.Conn, p []byte) error {
	if len(p) > 0 && c.OutboundBuffered() == 0 {
		n, _, errno := unix.RawSyscall(unix.SYS_WRITE, uintptr(c.Fd()), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if errno == 0 {
			p = p[n:]
		}
	}
	if len(p) > 0 {
		_, err := c.Write(p)
		return err
	}
	return nil
}
