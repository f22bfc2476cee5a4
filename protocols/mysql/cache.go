package mysql

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/heliosdb/auth/core"
)

// CacheConfig bounds the fast-authentication cache (see the package
// documentation). Zero fields take the defaults (EnsureDefaults).
type CacheConfig struct {
	// Disabled turns fast authentication off: every connection does full
	// authentication (01 04).
	Disabled bool
	// PerAddress is how many tokens are remembered per client address, the
	// most recently used first; default 8. A fast-auth attempt tries at
	// most this many entries.
	PerAddress int
	// MaxEntries bounds the whole cache; default 100 000 (measured: 11 MB
	// with 8 entries per address, 21 MB with one each).
	// Past it, the least recently used addresses lose their oldest entries.
	MaxEntries int
	// TTL is how long an entry lives after the full authentication that
	// made it (a hit does not extend it); default 15 minutes.
	TTL time.Duration
}

// Cache defaults.
const (
	defaultPerAddress = 8
	defaultMaxEntries = 100_000
	defaultTTL        = 15 * time.Minute
	cacheShards       = 64
)

// Fast-authentication counters, served at /metrics with the gateway's own
// series:
//
//	helios_gateway_mysql_fast_auth_total{result="hit|miss|rejected"}
//
// hit: the scramble matched a cached token that is still valid (01 03);
// miss: no cached token matched (full authentication follows);
// rejected: it matched, but the token has since expired or been revoked
// (1045, and the entry is evicted).
var (
	fastAuthHits     = metrics.GetOrCreateCounter(`helios_gateway_mysql_fast_auth_total{result="hit"}`)
	fastAuthMisses   = metrics.GetOrCreateCounter(`helios_gateway_mysql_fast_auth_total{result="miss"}`)
	fastAuthRejected = metrics.GetOrCreateCounter(`helios_gateway_mysql_fast_auth_total{result="rejected"}`)
)

// stage2 is SHA256(SHA256(token)), what caching_sha2_password's server
// side stores: enough to check a fast-auth scramble, useless for
// recovering the token or for authenticating with it.
type stage2 = [sha256.Size]byte

// cacheEntry is one token that passed full authentication from an address.
type cacheEntry struct {
	stage2 stage2
	claims core.Claims // as Verify returned them; re-checked on every hit
	added  int64       // Unix nanoseconds of the full authentication
}

// addrNode holds an address's entries, most recently used first, and links
// the address into its shard's LRU list.
type addrNode struct {
	addr       netip.Addr
	prev, next *addrNode
	entries    []cacheEntry
}

// cacheShard is one lock's worth of addresses.
type cacheShard struct {
	mu         sync.Mutex
	nodes      map[netip.Addr]*addrNode
	head, tail *addrNode // head: most recently used
	n          int       // entries in the shard
}

// authCache is the fast-authentication cache, shared by every event loop
// and TLS goroutine of one listener. Addresses hash to shards, each behind
// its own mutex; the SHA-256 work of a lookup runs outside the lock.
type authCache struct {
	shards   [cacheShards]cacheShard
	perAddr  int
	perShard int
	ttl      int64 // nanoseconds
}

// EnsureDefaults gives every unset bound of c its default and returns c.
func (c *CacheConfig) EnsureDefaults() *CacheConfig {
	if c.PerAddress <= 0 {
		c.PerAddress = defaultPerAddress
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = defaultMaxEntries
	}
	if c.TTL <= 0 {
		c.TTL = defaultTTL
	}
	return c
}

// newAuthCache returns the cache for cfg, or nil when it is disabled.
func newAuthCache(cfg CacheConfig) *authCache {
	if cfg.Disabled {
		return nil
	}
	cfg.EnsureDefaults()
	c := &authCache{perAddr: cfg.PerAddress, ttl: int64(cfg.TTL)}
	c.perShard = max((cfg.MaxEntries+cacheShards-1)/cacheShards, cfg.PerAddress)
	for i := range c.shards {
		c.shards[i].nodes = make(map[netip.Addr]*addrNode)
	}
	return c
}

// shard returns addr's shard.
func (c *authCache) shard(addr netip.Addr) *cacheShard {
	a := addr.As16()
	h := binary.LittleEndian.Uint64(a[:8]) ^ binary.LittleEndian.Uint64(a[8:])
	h ^= h >> 29
	h *= 0x9e3779b97f4a7c15
	return &c.shards[h>>(64-6)]
}

// cacheKey normalizes a client address (an IPv4-mapped IPv6 address and its
// IPv4 form are one client).
func cacheKey(addr netip.Addr) netip.Addr { return addr.Unmap().WithZone("") }

// tokenStage2 returns SHA256(SHA256(token)).
func tokenStage2(token []byte) stage2 {
	s1 := sha256.Sum256(token)
	s2 := sha256.Sum256(s1[:])
	clear(s1[:])
	return s2
}

// scrambleMatches reports whether scramble = SHA256(token) XOR
// SHA256(s2 ‖ nonce) for a token whose stage2 is s2: it recovers the
// candidate SHA256(token) and compares its hash with s2 in constant time.
func scrambleMatches(s2 *stage2, nonce, scramble []byte) bool {
	var buf [sha256.Size + nonceLen]byte
	copy(buf[:], s2[:])
	copy(buf[sha256.Size:], nonce)
	mask := sha256.Sum256(buf[:])
	var s1 [sha256.Size]byte
	subtle.XORBytes(s1[:], scramble, mask[:])
	h := sha256.Sum256(s1[:])
	return subtle.ConstantTimeCompare(h[:], s2[:]) == 1
}

// add records that token, with the claims Verify returned for it, passed
// full authentication from addr at now, and returns the entry's key (for
// evict). The token itself is not kept.
func (c *authCache) add(addr netip.Addr, token []byte, claims *core.Claims, now time.Time) stage2 {
	addr = cacheKey(addr)
	e := cacheEntry{stage2: tokenStage2(token), claims: *claims, added: now.UnixNano()}
	sh := c.shard(addr)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if nd := sh.nodes[addr]; nd != nil {
		sh.prune(nd, e.added-c.ttl) // may remove an address left empty
	}
	nd := sh.nodes[addr]
	if nd == nil {
		nd = &addrNode{addr: addr}
		sh.nodes[addr] = nd
	} else {
		sh.unlink(nd)
	}
	sh.pushFront(nd)
	i := 0
	for i < len(nd.entries) && nd.entries[i].stage2 != e.stage2 {
		i++
	}
	switch {
	case i < len(nd.entries): // the same token again: refresh it
	case len(nd.entries) < c.perAddr:
		nd.entries = append(nd.entries, cacheEntry{})
		sh.n++
	default: // full: the least recently used entry makes room
		i = len(nd.entries) - 1
	}
	copy(nd.entries[1:i+1], nd.entries[:i])
	nd.entries[0] = e
	for sh.n > c.perShard {
		sh.dropOldest()
	}
	return e.stage2
}

// lookup finds the entry for addr whose token the scramble proves (nonce
// is the 20 bytes this server sent). On a match it marks the entry most
// recently used and returns its claims and stage2 (for evict); the caller
// must re-check the claims. Entries past their TTL are dropped on the way.
func (c *authCache) lookup(addr netip.Addr, nonce, scramble []byte, now time.Time) (core.Claims, stage2, bool) {
	addr = cacheKey(addr)
	sh := c.shard(addr)
	var buf [defaultPerAddress]stage2
	cand := buf[:0]
	if c.perAddr > len(buf) {
		cand = make([]stage2, 0, c.perAddr)
	}
	sh.mu.Lock()
	if nd := sh.nodes[addr]; nd != nil {
		sh.prune(nd, now.UnixNano()-c.ttl)
		for i := range nd.entries {
			cand = append(cand, nd.entries[i].stage2)
		}
	}
	sh.mu.Unlock()
	for i := range cand {
		if scrambleMatches(&cand[i], nonce, scramble) {
			cl, ok := c.touch(addr, &cand[i], now)
			return cl, cand[i], ok
		}
	}
	return core.Claims{}, stage2{}, false
}

// touch marks addr's entry s2 most recently used and returns its claims;
// false when it was evicted (or expired) since the lookup copied it.
func (c *authCache) touch(addr netip.Addr, s2 *stage2, now time.Time) (core.Claims, bool) {
	sh := c.shard(addr)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	nd := sh.nodes[addr]
	if nd == nil {
		return core.Claims{}, false
	}
	for i := range nd.entries {
		if nd.entries[i].stage2 != *s2 {
			continue
		}
		e := nd.entries[i]
		if e.added <= now.UnixNano()-c.ttl {
			return core.Claims{}, false
		}
		copy(nd.entries[1:i+1], nd.entries[:i])
		nd.entries[0] = e
		sh.unlink(nd)
		sh.pushFront(nd)
		return e.claims, true
	}
	return core.Claims{}, false
}

// evict drops addr's entry s2 (a token that failed its re-check).
func (c *authCache) evict(addr netip.Addr, s2 stage2) {
	addr = cacheKey(addr)
	sh := c.shard(addr)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	nd := sh.nodes[addr]
	if nd == nil {
		return
	}
	for i := range nd.entries {
		if nd.entries[i].stage2 == s2 {
			nd.entries = slices.Delete(nd.entries, i, i+1)
			sh.n--
			break
		}
	}
	if len(nd.entries) == 0 {
		sh.remove(nd)
	}
}

// dropOldest drops the least recently used entry of the least recently
// used address.
func (sh *cacheShard) dropOldest() {
	nd := sh.tail
	nd.entries = slices.Delete(nd.entries, len(nd.entries)-1, len(nd.entries))
	sh.n--
	if len(nd.entries) == 0 {
		sh.remove(nd)
	}
}

// prune drops nd's entries added at or before oldest (entries are in use
// order, not age order, so it looks at each). An address left empty is
// removed.
func (sh *cacheShard) prune(nd *addrNode, oldest int64) {
	k := 0
	for _, e := range nd.entries {
		if e.added > oldest {
			nd.entries[k] = e
			k++
		}
	}
	sh.n -= len(nd.entries) - k
	clear(nd.entries[k:])
	nd.entries = nd.entries[:k]
	if k == 0 {
		sh.remove(nd)
	}
}

// remove unlinks an address with no entries left and forgets it.
func (sh *cacheShard) remove(nd *addrNode) {
	sh.unlink(nd)
	delete(sh.nodes, nd.addr)
}

func (sh *cacheShard) pushFront(nd *addrNode) {
	nd.prev, nd.next = nil, sh.head
	if sh.head != nil {
		sh.head.prev = nd
	}
	sh.head = nd
	if sh.tail == nil {
		sh.tail = nd
	}
}

func (sh *cacheShard) unlink(nd *addrNode) {
	if nd.prev != nil {
		nd.prev.next = nd.next
	} else if sh.head == nd {
		sh.head = nd.next
	}
	if nd.next != nil {
		nd.next.prev = nd.prev
	} else if sh.tail == nd {
		sh.tail = nd.prev
	}
	nd.prev, nd.next = nil, nil
}
