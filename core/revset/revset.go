// Package revset is a gateway node's revocation view: what the issuer's feed
// has revoked (tokens, logout-all epochs, retired keys), answered without
// locks or allocations on the verification path.
//
// Design. Readers load one immutable snapshot through an atomic pointer. A
// snapshot has a base — a Bloom filter (github.com/bits-and-blooms/bloom/v3)
// over the revoked token ids plus the exact ids in a sorted array, both built
// once and never written again — and a small overlay of the changes applied
// since the base was built. The Bloom filter answers "certainly not revoked"
// for almost every token; a hit is confirmed by binary search in the exact
// array, so a false positive costs a lookup, never a wrong answer. Applying a
// change copies only the overlay; when the overlay grows past a bound, or on
// Rebuild, a new base is built from base ∪ overlay minus entries whose tokens
// have expired anyway, and swapped in. A Bloom filter is therefore never
// written while a reader tests it (bloom/v3 is not safe for that).
//
// Memory: the filter uses 9.6 to 19.2 bits per revoked token (at most 2.4 MB
// per million; see bitsPerEntry), the exact array 16 bytes per token (12-byte id, 4-byte
// expiry). Entries leave at the first rebuild after their token's expiry, so
// the set is bounded by the revocations of still-valid tokens.
//
// revset does no I/O; the feed client fills it.
package revset

import (
	"bytes"
	"encoding/binary"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/heliosdb/auth/core"
)

// Bloom filter parameters. The filter has at least bitsPerEntry bits per
// revoked token, rounded up to a power of two (so between 9.6 and 19.2 bits,
// at most 2.4 MB per million), and filterK bits per token, all within one
// 512-bit block (one cache line pair), so a lookup touches one block: the
// false-positive rate is at most ~1.5% at 9.6 bits per entry and ~0.1% at
// 19.2 (measured by TestFalsePositiveRate).
const (
	bitsPerEntry = 9.6
	filterK      = 7
	blockBits    = 512
)

// filter is a blocked Bloom filter stored in a bloom/v3 BloomFilter's bit
// set. Token ids are 96 uniformly random bits minted by the issuer (and a
// forged token fails its MAC before the revocation check), so the id's own
// bits are the hash: the low bits pick the block, the rest the bits in it.
type filter struct {
	bf        *bloom.BloomFilter
	words     []uint64 // bf's bit set, read directly on the hot path
	blockMask uint64   // number of blocks - 1
}

func newFilter(n int) filter {
	bits := uint64(blockBits)
	for float64(bits) < float64(n)*bitsPerEntry {
		bits <<= 1
	}
	bf := bloom.New(uint(bits), filterK)
	return filter{bf: bf, words: bf.BitSet().Words(), blockMask: bits/blockBits - 1}
}

// positions returns the block's first bit and the id's in-block positions
// source: 7 positions of 9 bits each are taken from pos.
func positions(id *core.TokenID, mask uint64) (block uint64, pos uint64) {
	lo := binary.LittleEndian.Uint64(id[0:8])
	hi := uint64(binary.LittleEndian.Uint32(id[8:12]))
	return (lo & mask) * blockBits, hi<<32 | lo>>32
}

func (f *filter) add(id *core.TokenID) {
	block, pos := positions(id, f.blockMask)
	bs := f.bf.BitSet()
	for i := 0; i < filterK; i++ {
		bs.Set(uint(block + pos&(blockBits-1)))
		pos >>= 9
	}
	f.words = bs.Words()
}

func (f *filter) test(id *core.TokenID) bool {
	block, pos := positions(id, f.blockMask)
	w := f.words[block/64 : block/64+blockBits/64]
	for i := 0; i < filterK; i++ {
		b := pos & (blockBits - 1)
		if w[b/64]&(1<<(b%64)) == 0 {
			return false
		}
		pos >>= 9
	}
	return true
}

// DefaultOverlayLimit is how many token revocations the overlay holds before
// a new base is built.
const DefaultOverlayLimit = 4096

// Kind is the kind of one revocation entry.
type Kind uint8

// Entry kinds.
const (
	// KindToken revokes one token until it would have expired.
	KindToken Kind = iota + 1
	// KindAccount revokes every token of an account issued before NotBefore.
	KindAccount
	// KindKey retires a key id.
	KindKey
)

// Entry is one revocation as the feed carries it.
type Entry struct {
	Kind      Kind
	ID        core.TokenID // KindToken
	Expires   int64        // KindToken: the token's expiry (Unix seconds)
	Account   uint64       // KindAccount
	NotBefore int64        // KindAccount (Unix seconds)
	KeyID     uint16       // KindKey
}

// base is an immutable, fully built set of token revocations.
type base struct {
	filter filter
	ids    []core.TokenID // sorted
	exps   []uint32       // exps[i] is the expiry of ids[i]
}

func (b *base) has(id *core.TokenID) bool {
	if b == nil || len(b.ids) == 0 || !b.filter.test(id) {
		return false
	}
	_, ok := slices.BinarySearchFunc(b.ids, *id, func(e, t core.TokenID) int { return bytes.Compare(e[:], t[:]) })
	return ok
}

type snapshot struct {
	seq       uint64
	base      *base
	overlay   map[core.TokenID]int64 // token revocations since base
	notBefore map[uint64]int64       // account epochs (small: one per logout-all account)
	keys      []uint16               // retired key ids
}

// Set is a revocation view fed by the issuer's log. Check is safe for any
// number of concurrent readers; Apply, Load and Rebuild are serialized.
type Set struct {
	mu           sync.Mutex
	cur          atomic.Pointer[snapshot]
	overlayLimit int
}

// New returns an empty set. overlayLimit ≤ 0 means DefaultOverlayLimit.
func New(overlayLimit int) *Set {
	if overlayLimit <= 0 {
		overlayLimit = DefaultOverlayLimit
	}
	s := &Set{overlayLimit: overlayLimit}
	s.cur.Store(&snapshot{overlay: map[core.TokenID]int64{}, notBefore: map[uint64]int64{}})
	return s
}

// Seq returns the sequence number of the last change applied.
func (s *Set) Seq() uint64 { return s.cur.Load().seq }

// Check implements core.RevocationView. It takes no lock and allocates nothing.
func (s *Set) Check(id core.TokenID, account uint64, issuedAt int64, keyID uint16) core.RevocationStatus {
	snap := s.cur.Load()
	for _, k := range snap.keys {
		if k == keyID {
			return core.RevokedKey
		}
	}
	if len(snap.notBefore) > 0 {
		if nb, ok := snap.notBefore[account]; ok && issuedAt < nb {
			return core.RevokedAccount
		}
	}
	if len(snap.overlay) > 0 {
		if _, ok := snap.overlay[id]; ok {
			return core.RevokedToken
		}
	}
	if snap.base.has(&id) {
		return core.RevokedToken
	}
	return core.NotRevoked
}

// Apply applies entries in order and records seq as applied. now (Unix
// seconds) lets a rebuild drop expired entries when the overlay is full.
func (s *Set) Apply(seq uint64, now int64, entries ...Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cur.Load()
	next := &snapshot{seq: max(seq, old.seq), base: old.base, overlay: old.overlay, notBefore: old.notBefore, keys: old.keys}
	var copiedOverlay, copiedAccounts, copiedKeys bool
	for _, e := range entries {
		switch e.Kind {
		case KindToken:
			if !copiedOverlay {
				next.overlay, copiedOverlay = maps.Clone(old.overlay), true
			}
			next.overlay[e.ID] = e.Expires
		case KindAccount:
			if !copiedAccounts {
				next.notBefore, copiedAccounts = maps.Clone(old.notBefore), true
			}
			if e.NotBefore > next.notBefore[e.Account] {
				next.notBefore[e.Account] = e.NotBefore
			}
		case KindKey:
			if !copiedKeys {
				next.keys, copiedKeys = slices.Clone(old.keys), true
			}
			if !slices.Contains(next.keys, e.KeyID) {
				next.keys = append(next.keys, e.KeyID)
			}
		}
	}
	if len(next.overlay) > s.overlayLimit {
		next = rebuilt(next, now)
	}
	s.cur.Store(next)
}

// Load replaces the whole set with a snapshot's entries, as of seq.
func (s *Set) Load(seq uint64, now int64, entries []Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := &snapshot{seq: seq, overlay: make(map[core.TokenID]int64), notBefore: make(map[uint64]int64)}
	var toks []tokenEntry
	for _, e := range entries {
		switch e.Kind {
		case KindToken:
			toks = append(toks, tokenEntry{e.ID, e.Expires})
		case KindAccount:
			if e.NotBefore > next.notBefore[e.Account] {
				next.notBefore[e.Account] = e.NotBefore
			}
		case KindKey:
			if !slices.Contains(next.keys, e.KeyID) {
				next.keys = append(next.keys, e.KeyID)
			}
		}
	}
	next.base = buildBase(toks, now)
	s.cur.Store(next)
}

// Rebuild folds the overlay into a new base and drops token entries that
// expired before now (Unix seconds). Readers keep using the old snapshot
// until the new one is swapped in.
func (s *Set) Rebuild(now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur.Store(rebuilt(s.cur.Load(), now))
}

// Entries returns every entry of the set (for a snapshot or a persisted copy).
func (s *Set) Entries() (seq uint64, out []Entry) {
	snap := s.cur.Load()
	if snap.base != nil {
		for i, id := range snap.base.ids {
			if _, dup := snap.overlay[id]; !dup {
				out = append(out, Entry{Kind: KindToken, ID: id, Expires: int64(snap.base.exps[i])})
			}
		}
	}
	for id, exp := range snap.overlay {
		out = append(out, Entry{Kind: KindToken, ID: id, Expires: exp})
	}
	for acc, nb := range snap.notBefore {
		out = append(out, Entry{Kind: KindAccount, Account: acc, NotBefore: nb})
	}
	for _, k := range snap.keys {
		out = append(out, Entry{Kind: KindKey, KeyID: k})
	}
	return snap.seq, out
}

// Stats describes the set's size.
type Stats struct {
	Seq         uint64
	Tokens      int // token revocations (base + overlay)
	Overlay     int // of which not yet folded into the base
	Accounts    int
	Keys        int
	FilterBytes int // the Bloom filter's bit array
	ExactBytes  int // the sorted id and expiry arrays
}

// Stats returns the set's current size.
func (s *Set) Stats() Stats {
	snap := s.cur.Load()
	st := Stats{Seq: snap.seq, Overlay: len(snap.overlay), Accounts: len(snap.notBefore), Keys: len(snap.keys)}
	st.Tokens = st.Overlay
	if b := snap.base; b != nil {
		st.Tokens += len(b.ids)
		st.FilterBytes = len(b.filter.words) * 8
		st.ExactBytes = len(b.ids) * (len(core.TokenID{}) + 4)
	}
	return st
}

type tokenEntry struct {
	id  core.TokenID
	exp int64
}

// rebuilt returns snap with its overlay folded into a new base.
func rebuilt(snap *snapshot, now int64) *snapshot {
	var toks []tokenEntry
	if b := snap.base; b != nil {
		toks = make([]tokenEntry, 0, len(b.ids)+len(snap.overlay))
		for i, id := range b.ids {
			toks = append(toks, tokenEntry{id, int64(b.exps[i])})
		}
	}
	for id, exp := range snap.overlay {
		toks = append(toks, tokenEntry{id, exp})
	}
	return &snapshot{seq: snap.seq, base: buildBase(toks, now), overlay: map[core.TokenID]int64{}, notBefore: snap.notBefore, keys: snap.keys}
}

// buildBase builds a base from toks, dropping tokens expired before now and
// duplicate ids (the later expiry wins).
func buildBase(toks []tokenEntry, now int64) *base {
	live := toks[:0]
	for _, t := range toks {
		if t.exp >= now {
			live = append(live, t)
		}
	}
	slices.SortFunc(live, func(a, b tokenEntry) int {
		if c := bytes.Compare(a.id[:], b.id[:]); c != 0 {
			return c
		}
		return int(a.exp - b.exp)
	})
	b := &base{ids: make([]core.TokenID, 0, len(live)), exps: make([]uint32, 0, len(live))}
	for i, t := range live {
		if i+1 < len(live) && live[i+1].id == t.id {
			continue // keep the last (largest expiry) of equal ids
		}
		b.ids = append(b.ids, t.id)
		b.exps = append(b.exps, uint32(t.exp))
	}
	b.filter = newFilter(len(b.ids))
	for i := range b.ids {
		b.filter.add(&b.ids[i])
	}
	return b
}
