package netio

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Connection limits. connLimiter counts open connections globally and per
// source address, shared by every listener and loop.
//
// Fairness: a share of Config.MaxConns (reservedShare, 10%) is kept for
// addresses that hold few connections (fewer than lightConns, 8). An
// address that already holds lightConns or more may only fill the rest of
// the cap: once the connections open from everywhere reach that unreserved
// part, its next connection is refused, while an address holding few (a
// person's psql, a small service, a new client) still gets in. A flood
// from k addresses, each under the per-address limit, thus holds at most
// the unreserved part plus lightConns connections per address: with the
// defaults (10,000, and 1,000 per address) 11 flooding addresses hold at
// most 9,088 and leave at least 912 slots to everyone else, and it takes
// 125 addresses to exhaust the reserve (per-address limits cannot tell a
// flood's fresh address from a new client). The threshold is what the
// address holds now, which acquire reads anyway (it locks the address's
// shard of the map first), so the check stays O(1): one locked map lookup
// and one atomic add, as before. A connection pool above lightConns is only
// affected when the gateway is more than 90% full, when new clients need
// the room.
//
// Refusals: a connection over a limit is answered in its protocol's words
// and closed. Where the protocol refuses only in reply to the client's first
// request (a LateRefuser: PostgreSQL after its SSLRequest and TLS, MongoDB
// and Redis whose clients speak first and read only replies), the refused
// connection stays open for at most refuseWithin holding no connection slot
// but a refusal slot: at most maxRefusingPerIP per address and a global
// budget (1/16 of MaxConns, at least 16), so refusals cannot become a
// resource hole. Over those bounds the refusal is immediate.
const (
	// lightConns: an address holding fewer connections than this may use
	// the reserved share of the cap.
	lightConns = 8
	// reservedShare is the part of MaxConns kept for light addresses, in
	// percent.
	reservedShare = 10
	// maxRefusingPerIP bounds one address's connections in the middle of
	// a late refusal.
	maxRefusingPerIP = 8
	// refuseWithin bounds how long a late refusal may wait for the
	// client's first request (TLS handshake included).
	refuseWithin = 2 * time.Second
)

// LateRefuser is implemented by a Session whose protocol answers a
// connection refused for LimitConnections in reply to the client's first
// request rather than at accept: a client that speaks first and reads only
// replies (MongoDB, Redis), or one that negotiates TLS before the server may
// say anything (PostgreSQL answers an SSLRequest, then refuses inside TLS,
// as PostgreSQL itself does: a driver reads an error in place of the
// SSLRequest's answer as "server refused TLS").
//
// The transport calls RefuseLate once, before the session's first Handle.
// From then on the session answers what comes before the client's first
// request as usual (an SSLRequest, after which the transport runs TLS),
// answers requests with its LimitError(LimitConnections) reply, and returns
// Close when it is done; it must not authenticate. The transport holds no
// connection slot for it, and closes it after LimitError(LimitConnections)
// if the client has not been answered within a short deadline (about two
// seconds, TLS handshake included).
type LateRefuser interface {
	// RefuseLate switches the session to refusing its connection.
	RefuseLate()
}

// connLimiter counts open connections globally and per source address,
// and the connections in the middle of a late refusal.
type connLimiter struct {
	// The limits are atomics: Gateway.Reconfigure changes them while
	// connections come and go (setLimits).
	maxTotal    atomic.Int64
	maxHeavy    atomic.Int64 // total allowed when the address holds lightConns or more
	maxPerIP    atomic.Int32
	maxRefusing atomic.Int64
	total       atomic.Int64
	refusing    atomic.Int64
	shards      [32]ipShard
}

type ipShard struct {
	mu sync.Mutex
	m  map[netip.Addr]ipCount
}

// ipCount is what one address holds: connection slots and refusal slots.
type ipCount struct {
	held, refusing int32
}

// setLimits sets the bounds; connections already open beyond a lowered
// bound stay open, new ones wait for the count to come under it.
func (l *connLimiter) setLimits(maxTotal, maxPerIP int) {
	l.maxTotal.Store(int64(maxTotal))
	l.maxHeavy.Store(int64(maxTotal - maxTotal*reservedShare/100))
	l.maxPerIP.Store(int32(maxPerIP))
	l.maxRefusing.Store(int64(max(16, maxTotal/16)))
}

func newConnLimiter(maxTotal, maxPerIP int) *connLimiter {
	l := &connLimiter{}
	l.setLimits(maxTotal, maxPerIP)
	for i := range l.shards {
		l.shards[i].m = make(map[netip.Addr]ipCount)
	}
	return l
}

func (l *connLimiter) shard(a netip.Addr) *ipShard {
	b := a.As16()
	h := binary.LittleEndian.Uint64(b[:8]) ^ binary.LittleEndian.Uint64(b[8:])
	h ^= h >> 32
	h ^= h >> 16
	return &l.shards[h%uint64(len(l.shards))]
}

// clientKey is what the per-address limits count: an IPv4 address, or an
// IPv6 address's /64. A single host is routinely given a whole /64, so
// counting its addresses one by one would let one client take any number
// of connections and the share reserved for light addresses.
func clientKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if !a.Is6() {
		return a
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.Addr()
}

// capFor is the total a connection may bring the gateway to when its
// address already holds n connections.
func (l *connLimiter) capFor(n int32) int64 {
	if n >= lightConns {
		return l.maxHeavy.Load()
	}
	return l.maxTotal.Load()
}

// acquire takes a global slot and one for address a; false means a limit
// is hit (nothing is held then). The address's count is read first, under
// its shard's lock, so that the global check knows whether the address may
// use the reserved share.
func (l *connLimiter) acquire(a netip.Addr) bool {
	a = clientKey(a)
	s := l.shard(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.m[a]
	if c.held >= l.maxPerIP.Load() {
		return false
	}
	if l.total.Add(1) > l.capFor(c.held) {
		l.total.Add(-1)
		return false
	}
	c.held++
	s.m[a] = c
	return true
}

// acquireTotal takes a global slot for a connection whose address is not
// known yet (a balancer's, before its PROXY header): it may use the whole
// cap, and acquireIPHeld applies the address's limits once it is known.
func (l *connLimiter) acquireTotal() bool {
	if l.total.Add(1) > l.maxTotal.Load() {
		l.total.Add(-1)
		return false
	}
	return true
}

// acquireIPHeld takes a slot for address a for a connection that already
// holds a global slot (acquireTotal): false when a holds its limit, or
// holds lightConns or more while the gateway is past the unreserved part
// (the held slot included, so the bound is the same as acquire's).
func (l *connLimiter) acquireIPHeld(a netip.Addr) bool {
	a = clientKey(a)
	s := l.shard(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.m[a]
	if c.held >= l.maxPerIP.Load() || l.total.Load() > l.capFor(c.held) {
		return false
	}
	c.held++
	s.m[a] = c
	return true
}

// acquireRefusal takes a refusal slot for address a (an invalid address,
// unknown before a PROXY header, counts only globally).
func (l *connLimiter) acquireRefusal(a netip.Addr) bool {
	if l.refusing.Add(1) > l.maxRefusing.Load() {
		l.refusing.Add(-1)
		return false
	}
	if !a.IsValid() {
		return true
	}
	a = clientKey(a)
	s := l.shard(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.m[a]
	if c.refusing >= maxRefusingPerIP {
		l.refusing.Add(-1)
		return false
	}
	c.refusing++
	s.m[a] = c
	return true
}

// releaseTotal gives back a global slot.
func (l *connLimiter) releaseTotal() { l.total.Add(-1) }

// releaseIP gives back a slot of address a.
func (l *connLimiter) releaseIP(a netip.Addr) {
	l.update(a, func(c *ipCount) { c.held-- })
}

// releaseRefusal gives back a refusal slot of address a.
func (l *connLimiter) releaseRefusal(a netip.Addr) {
	l.refusing.Add(-1)
	if a.IsValid() {
		l.update(a, func(c *ipCount) { c.refusing-- })
	}
}

// update changes a's counts and drops its entry once it holds nothing.
func (l *connLimiter) update(a netip.Addr, f func(*ipCount)) {
	a = clientKey(a)
	s := l.shard(a)
	s.mu.Lock()
	c := s.m[a]
	f(&c)
	if c.held <= 0 && c.refusing <= 0 {
		delete(s.m, a)
	} else {
		s.m[a] = c
	}
	s.mu.Unlock()
}

// open returns the number of connections held.
func (l *connLimiter) open() int64 { return l.total.Load() }
