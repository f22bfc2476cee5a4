// Package policyset holds the gateway's policy data — per-token IP allowlists
// and the database registry — as a core.Policy. Readers take no lock and
// allocate nothing (an immutable snapshot behind an atomic pointer); writers
// (the issuer's apply path in one process, the feed follower on a node) copy
// what they change. It does no I/O.
package policyset

import (
	"maps"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/heliosdb/auth/core"
)

type ipEntry struct {
	prefixes []netip.Prefix
	expires  int64 // Unix seconds; the entry is dropped after the token expires
}

type snapshot struct {
	ips       map[core.TokenID]ipEntry
	databases map[string]bool // name → test flag
}

// Set implements core.Policy.
type Set struct {
	mu  sync.Mutex
	cur atomic.Pointer[snapshot]
}

// New returns an empty set.
func New() *Set {
	s := &Set{}
	s.cur.Store(&snapshot{ips: map[core.TokenID]ipEntry{}, databases: map[string]bool{}})
	return s
}

var _ core.Policy = (*Set)(nil)

// AllowedFrom implements core.Policy.
func (s *Set) AllowedFrom(id core.TokenID, addr netip.Addr) bool {
	e, ok := s.cur.Load().ips[id]
	if !ok {
		return false
	}
	addr = addr.Unmap()
	for _, p := range e.prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// IsTestDatabase implements core.Policy.
func (s *Set) IsTestDatabase(name []byte) bool { return s.cur.Load().databases[string(name)] }

// IsDatabase implements core.Registry: name is registered.
func (s *Set) IsDatabase(name []byte) bool {
	_, ok := s.cur.Load().databases[string(name)]
	return ok
}

// Database reports whether name is registered and whether it is a test database.
func (s *Set) Database(name string) (exists, test bool) {
	test, exists = s.cur.Load().databases[name]
	return exists, test
}

func (s *Set) update(fn func(next *snapshot)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cur.Load()
	next := &snapshot{ips: old.ips, databases: old.databases}
	fn(next)
	s.cur.Store(next)
}

// Databases returns the registered databases: name → test database.
func (s *Set) Databases() map[string]bool {
	cur := s.cur.Load().databases
	m := make(map[string]bool, len(cur))
	for k, v := range cur {
		m[k] = v
	}
	return m
}

// SetIPs records a token's allowlist until the token expires.
func (s *Set) SetIPs(id core.TokenID, prefixes []netip.Prefix, expires int64) {
	p := make([]netip.Prefix, len(prefixes))
	for i, pf := range prefixes {
		p[i] = pf.Masked()
	}
	s.update(func(n *snapshot) {
		n.ips = maps.Clone(n.ips)
		n.ips[id] = ipEntry{prefixes: p, expires: expires}
	})
}

// DeleteIPs forgets a token's allowlist (the token was revoked).
func (s *Set) DeleteIPs(id core.TokenID) {
	s.update(func(n *snapshot) {
		n.ips = maps.Clone(n.ips)
		delete(n.ips, id)
	})
}

// SetDatabase registers (or updates) a database.
func (s *Set) SetDatabase(name string, test bool) {
	s.update(func(n *snapshot) {
		n.databases = maps.Clone(n.databases)
		n.databases[name] = test
	})
}

// DeleteDatabase removes a database from the registry.
func (s *Set) DeleteDatabase(name string) {
	s.update(func(n *snapshot) {
		n.databases = maps.Clone(n.databases)
		delete(n.databases, name)
	})
}

// Prune drops allowlists of tokens that expired before now (Unix seconds).
func (s *Set) Prune(now int64) {
	s.update(func(n *snapshot) {
		n.ips = maps.Clone(n.ips)
		maps.DeleteFunc(n.ips, func(_ core.TokenID, e ipEntry) bool { return e.expires < now })
	})
}

// Sizes returns the number of allowlists and registered databases.
func (s *Set) Sizes() (allowlists, databases int) {
	c := s.cur.Load()
	return len(c.ips), len(c.databases)
}
