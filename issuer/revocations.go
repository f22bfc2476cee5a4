package issuer

import (
	"net/netip"
	"sync"

	"github.com/heliosdb/auth/core"
)

// Revocations is the exact in-memory revocation view of a single-process
// daemon, fed by the store from committed log entries. Check takes a read
// lock and looks in plain maps: it allocates nothing, and a change costs O(1)
// (unlike core.MemoryRevocations, which copies its snapshot on every change).
type Revocations struct {
	mu        sync.RWMutex
	tokens    map[core.TokenID]int64 // id → when it would have expired
	notBefore map[uint64]int64       // account → logout-all epoch
	keys      map[uint16]struct{}    // retired key ids
}

// NewRevocations returns an empty view.
func NewRevocations() *Revocations {
	return &Revocations{tokens: map[core.TokenID]int64{}, notBefore: map[uint64]int64{}, keys: map[uint16]struct{}{}}
}

// Check implements core.RevocationView.
func (r *Revocations) Check(id core.TokenID, account uint64, issuedAt int64, keyID uint16) core.RevocationStatus {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.keys) > 0 {
		if _, ok := r.keys[keyID]; ok {
			return core.RevokedKey
		}
	}
	if nb, ok := r.notBefore[account]; ok && issuedAt < nb {
		return core.RevokedAccount
	}
	if _, ok := r.tokens[id]; ok {
		return core.RevokedToken
	}
	return core.NotRevoked
}

// apply adds one log entry to the view.
func (r *Revocations) apply(e *LogEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e.Kind {
	case LogToken:
		r.tokens[e.Token] = e.ExpiresAt
	case LogAccount:
		if e.NotBefore > r.notBefore[e.Account] {
			r.notBefore[e.Account] = e.NotBefore
		}
	case LogKey:
		r.keys[e.KeyID] = struct{}{}
	}
}

// Prune drops token entries whose token expired before now (Unix seconds):
// an expired token fails verification anyway. It returns how many remain.
func (r *Revocations) Prune(now int64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, exp := range r.tokens {
		if exp < now {
			delete(r.tokens, id)
		}
	}
	return len(r.tokens)
}

// NotBefore returns the account's logout-all epoch (0 when none).
func (r *Revocations) NotBefore(account uint64) int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.notBefore[account]
}

var _ core.RevocationView = (*Revocations)(nil)

// ParseIPOrCIDR parses "203.0.113.50" (a single address) or "10.0.0.0/8".
func ParseIPOrCIDR(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return p.Masked(), nil
}
