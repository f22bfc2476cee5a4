package upstream

import (
	"net"

	"github.com/heliosdb/auth/netio"
)

// GiveBack returns a clean server connection c of key k that b holds on an
// event loop (a loop proxy's, after its client left): detached and put back
// in p when a client elsewhere waits for one of k, since a parked
// connection serves only its own loop; else parked on b's loop under park.
// rebind gives c the connection Detach returns.
func GiveBack[C Conn](b *netio.Backend, p *Pool[C], k Key, c C, park any, rebind func(net.Conn)) {
	if p.Waiting(k) {
		if nc, err := b.Detach(); err == nil {
			rebind(nc)
			p.Put(k, c)
			return
		}
	}
	b.Park(park)
}
