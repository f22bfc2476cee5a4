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

// acquire takes a slot for a connection from a; false means a limit is hit
// (nothing is held then).
func (l *connLimiter) acquire(a netip.Addr) bool {
	if l.total.Add(1) > l.maxTotal {
		l.total.Add(-1)
		return false
	}
	s := l.shard(a)
	s.mu.Lock()
	n := s.m[a]
	if n >= l.maxPerIP {
		s.mu.Unlock()
		l.total.Add(-1)
		return false
	}
	s.m[a] = n + 1
	s.mu.Unlock()
	return true
}

// release gives back a slot taken by acquire.
func (l *connLimiter) release(a netip.Addr) {
	s := l.shard(a)
	s.mu.Lock()
	if n := s.m[a]; n <= 1 {
		delete(s.m, a)
	} else {
		s.m[a] = n - 1
	}
	s.mu.Unlock()
	l.total.Add(-1)
}

// open returns the number of connections held.
func (l *connLimiter) open() int64 { return l.total.Load() }
