package core

import (
	"encoding/binary"
	"maps"
	"sync"
	"sync/atomic"
)

// RevocationStatus is a revocation view's answer for one token.
type RevocationStatus uint8

// Revocation answers.
const (
	NotRevoked RevocationStatus = iota
	// RevokedToken: the token itself was revoked (revoke, logout, refresh).
	RevokedToken
	// RevokedAccount: the account logged out everywhere after the token was
	// issued (a "not before" epoch).
	RevokedAccount
	// RevokedKey: the token's signing key was retired.
	RevokedKey
	// RevocationUnavailable: the view cannot answer (a node whose feed is
	// staler than its bound); Verify fails closed with ErrUnavailable.
	RevocationUnavailable
)

// RevocationView answers whether a genuine, unexpired token has been revoked.
// Arguments are plain values so that calling through the interface does not
// make the caller's claims escape to the heap. Implementations must be safe
// for concurrent use and must not allocate.
type RevocationView interface {
	Check(id TokenID, account uint64, issuedAt int64, keyID uint16) RevocationStatus
}

// NoRevocations is a view in which nothing is revoked.
type NoRevocations struct{}

// Check always answers NotRevoked.
func (NoRevocations) Check(TokenID, uint64, int64, uint16) RevocationStatus { return NotRevoked }

// MemoryRevocations is a simple exact revocation view in memory: per-token
// revocations, per-account "not before" epochs and retired key ids. Readers
// are lock-free: they read an immutable snapshot through an atomic pointer.
// Each change copies the snapshot, so changes cost O(entries): it serves tests
// and single-process use; gateway nodes use the Bloom-filtered view fed by
// the issuer.
type MemoryRevocations struct {
	mu   sync.Mutex // serializes writers
	snap atomic.Pointer[memSnap]
}

type memSnap struct {
	// tokens is keyed by the first 8 bytes of the token id (random, so a
	// fast 64-bit map key); the entry holds the whole id. Ids that share a
	// prefix with an entry already present go to collide.
	tokens    map[uint64]memEntry
	collide   map[TokenID]int64
	notBefore map[uint64]int64    // account → tokens issued before this are revoked
	keys      map[uint16]struct{} // retired key ids
}

type memEntry struct {
	id      TokenID
	expires int64 // when the token would have expired (Unix seconds)
}

func idKey(id TokenID) uint64 { return binary.LittleEndian.Uint64(id[:8]) }

// NewMemoryRevocations returns an empty view.
func NewMemoryRevocations() *MemoryRevocations {
	m := &MemoryRevocations{}
	m.snap.Store(&memSnap{tokens: map[uint64]memEntry{}, collide: map[TokenID]int64{}, notBefore: map[uint64]int64{}, keys: map[uint16]struct{}{}})
	return m
}

// update publishes a modified copy of the snapshot.
func (m *MemoryRevocations) update(fn func(s *memSnap)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.snap.Load()
	s := &memSnap{tokens: maps.Clone(old.tokens), collide: maps.Clone(old.collide), notBefore: maps.Clone(old.notBefore), keys: maps.Clone(old.keys)}
	fn(s)
	m.snap.Store(s)
}

// RevokeToken revokes one token; expiresAt (Unix seconds) lets Prune drop the
// entry once the token would have expired anyway.
func (m *MemoryRevocations) RevokeToken(id TokenID, expiresAt int64) {
	m.update(func(s *memSnap) {
		if e, ok := s.tokens[idKey(id)]; ok && e.id != id {
			s.collide[id] = expiresAt
			return
		}
		s.tokens[idKey(id)] = memEntry{id: id, expires: expiresAt}
	})
}

// RevokeAccountBefore revokes every token of the account issued strictly
// before notBefore (Unix seconds). Epochs only move forward.
func (m *MemoryRevocations) RevokeAccountBefore(account uint64, notBefore int64) {
	m.update(func(s *memSnap) {
		if notBefore > s.notBefore[account] {
			s.notBefore[account] = notBefore
		}
	})
}

// RetireKey revokes every token signed by key id.
func (m *MemoryRevocations) RetireKey(id uint16) {
	m.update(func(s *memSnap) { s.keys[id] = struct{}{} })
}

// Prune drops token entries that expired before now (Unix seconds) and
// returns how many remain.
func (m *MemoryRevocations) Prune(now int64) int {
	var n int
	m.update(func(s *memSnap) {
		maps.DeleteFunc(s.tokens, func(_ uint64, e memEntry) bool { return e.expires < now })
		maps.DeleteFunc(s.collide, func(_ TokenID, exp int64) bool { return exp < now })
		n = len(s.tokens) + len(s.collide)
	})
	return n
}

// Check implements RevocationView.
func (m *MemoryRevocations) Check(id TokenID, account uint64, issuedAt int64, keyID uint16) RevocationStatus {
	s := m.snap.Load()
	if len(s.keys) > 0 {
		if _, ok := s.keys[keyID]; ok {
			return RevokedKey
		}
	}
	if len(s.notBefore) > 0 {
		if nb, ok := s.notBefore[account]; ok && issuedAt < nb {
			return RevokedAccount
		}
	}
	if e, ok := s.tokens[idKey(id)]; ok {
		if e.id == id {
			return RevokedToken
		}
		if _, ok := s.collide[id]; ok {
			return RevokedToken
		}
	}
	return NotRevoked
}
