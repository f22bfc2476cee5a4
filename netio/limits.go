package netio

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

// connLimiter counts open connections globally and per source address,
// shared by every listener and loop. Acquire and release cost one atomic add
// and one locked map update in a shard chosen by the address.
type connLimiter struct {
	maxTotal int64
	maxPerIP int32
	total    atomic.Int64
	shards   [32]ipShard
}

type ipShard struct {
	mu sync.Mutex
	m  map[netip.Addr]int32
}

func newConnLimiter(maxTotal, maxPerIP int) *connLimiter {
	l := &connLimiter{maxTotal: int64(maxTotal), maxPerIP: int32(maxPerIP)}
	for i := range l.shards {
		l.shards[i].m = make(map[netip.Addr]int32)
	}
	return l
}

func (l *connLimiter) shard(a netip.Addr) *ipShard {
	b := a.As16()
	h := uint32(b[15]) ^ uint32(b[14])<<3 ^ uint32(b[13])<<5 ^ uint32(b[12])<<7
	return &l.shards[h%uint32(len(l.shards))]
}

// acquire takes a global slot and one for address a; false means a limit
// is hit (nothing is held then).
func (l *connLimiter) acquire(a netip.Addr) bool {
	if !l.acquireTotal() {
		return false
	}
	if !l.acquireIP(a) {
		l.releaseTotal()
		return false
	}
	return true
}

// acquireTotal takes a global slot.
func (l *connLimiter) acquireTotal() bool {
	if l.total.Add(1) > l.maxTotal {
		l.total.Add(-1)
		return false
	}
	return true
}

// acquireIP takes a slot for address a.
func (l *connLimiter) acquireIP(a netip.Addr) bool {
	s := l.shard(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.m[a]
	if n >= l.maxPerIP {
		return false
	}
	s.m[a] = n + 1
	return true
}

// releaseTotal gives back a global slot.
func (l *connLimiter) releaseTotal() { l.total.Add(-1) }

// releaseIP gives back a slot of address a.
func (l *connLimiter) releaseIP(a netip.Addr) {
	s := l.shard(a)
	s.mu.Lock()
	if n := s.m[a]; n <= 1 {
		delete(s.m, a)
	} else {
		s.m[a] = n - 1
	}
	s.mu.Unlock()
}

// open returns the number of connections held.
func (l *connLimiter) open() int64 { return l.total.Load() }
