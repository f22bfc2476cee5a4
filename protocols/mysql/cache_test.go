package mysql

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
)

var (
	cacheNow   = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	cacheNonce = []byte("abcdefghij0123456789")
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// hit reports whether the cache proves tok from addr at now.
func hit(c *authCache, addr netip.Addr, tok string, now time.Time) bool {
	_, _, ok := c.lookup(addr, cacheNonce, clientScramble(tok, cacheNonce), now)
	return ok
}

func addTok(c *authCache, addr netip.Addr, tok string, now time.Time) {
	c.add(addr, []byte(tok), &core.Claims{Account: 1}, now)
}

func TestCacheStoresOnlyStage2(t *testing.T) {
	c := newAuthCache(CacheConfig{})
	tok := "hdb_live_secret"
	claims := core.Claims{Account: 42, ExpiresAt: 99}
	c.add(ip("192.0.2.1"), []byte(tok), &claims, cacheNow)
	s1 := sha256.Sum256([]byte(tok))
	s2 := sha256.Sum256(s1[:])
	nd := c.shard(ip("192.0.2.1")).nodes[ip("192.0.2.1")]
	if len(nd.entries) != 1 || nd.entries[0].stage2 != s2 || nd.entries[0].claims != claims {
		t.Fatalf("entry %+v", nd.entries)
	}
	got, key, ok := c.lookup(ip("192.0.2.1"), cacheNonce, clientScramble(tok, cacheNonce), cacheNow)
	if !ok || got != claims || key != s2 || bytes.Contains(key[:], s1[:]) {
		t.Fatalf("lookup: %v %+v", ok, got)
	}
}

func TestCachePerAddressLRU(t *testing.T) {
	c := newAuthCache(CacheConfig{PerAddress: 3})
	a := ip("192.0.2.1")
	toks := []string{"t0", "t1", "t2", "t3"}
	for _, tok := range toks[:3] {
		addTok(c, a, tok, cacheNow)
	}
	// A hit on the oldest makes it the most recently used; t1 is then the
	// least recently used and makes room for t3.
	if !hit(c, a, "t0", cacheNow) {
		t.Fatal("t0 missed")
	}
	addTok(c, a, "t3", cacheNow)
	for tok, want := range map[string]bool{"t0": true, "t1": false, "t2": true, "t3": true} {
		if hit(c, a, tok, cacheNow) != want {
			t.Errorf("%s: hit = %v", tok, !want)
		}
	}
	// Adding a cached token again refreshes it, not duplicates it.
	addTok(c, a, "t3", cacheNow)
	if n := c.len(); n != 3 {
		t.Fatalf("%d entries, want 3", n)
	}
	// Other addresses are not candidates.
	if hit(c, ip("192.0.2.2"), "t0", cacheNow) {
		t.Fatal("hit from another address")
	}
}

func TestCacheGlobalBound(t *testing.T) {
	const limit = 256
	c := newAuthCache(CacheConfig{PerAddress: 2, MaxEntries: limit})
	for i := range 5000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		addTok(c, a, fmt.Sprint("tok", i), cacheNow)
		addTok(c, a, fmt.Sprint("tok-b", i), cacheNow)
	}
	// Each shard holds at most its share (ceil(max/shards), at least
	// PerAddress).
	perShard := max((limit+cacheShards-1)/cacheShards, 2)
	if n := c.len(); n > cacheShards*perShard || n == 0 {
		t.Fatalf("%d entries for a bound of %d", n, cacheShards*perShard)
	}
	for i := range c.shards {
		sh := &c.shards[i]
		count := 0
		for nd := sh.head; nd != nil; nd = nd.next {
			count += len(nd.entries)
		}
		if sh.n > perShard || count != sh.n || len(sh.nodes) > sh.n {
			t.Fatalf("shard %d: n=%d counted=%d nodes=%d", i, sh.n, count, len(sh.nodes))
		}
	}
	// The most recent address survives; the first ones were evicted.
	last := netip.AddrFrom4([4]byte{10, 0, 4999 >> 8 & 0xff, 4999 & 0xff})
	if !hit(c, last, "tok4999", cacheNow) || hit(c, ip("10.0.0.0"), "tok0", cacheNow) {
		t.Fatal("LRU eviction across addresses")
	}
}

func TestCacheTTL(t *testing.T) {
	c := newAuthCache(CacheConfig{TTL: time.Minute})
	a := ip("2001:db8::1")
	addTok(c, a, "old", cacheNow)
	addTok(c, a, "new", cacheNow.Add(30*time.Second))
	// A hit does not extend the TTL.
	if !hit(c, a, "old", cacheNow.Add(59*time.Second)) {
		t.Fatal("miss before the TTL")
	}
	if hit(c, a, "old", cacheNow.Add(time.Minute)) {
		t.Fatal("hit after the TTL")
	}
	if n := c.len(); n != 1 {
		t.Fatalf("the expired entry was not dropped: %d entries", n)
	}
	// A new full authentication renews it.
	addTok(c, a, "old", cacheNow.Add(time.Minute))
	if !hit(c, a, "old", cacheNow.Add(90*time.Second)) || hit(c, a, "new", cacheNow.Add(90*time.Second)) {
		t.Fatal("renewal")
	}
	// Adding prunes expired entries of the address; an address whose
	// entries all expired is forgotten.
	if hit(c, a, "old", cacheNow.Add(3*time.Minute)) || c.len() != 0 || len(c.shard(a).nodes) != 0 {
		t.Fatalf("%d entries left", c.len())
	}
}

func TestCacheEvict(t *testing.T) {
	c := newAuthCache(CacheConfig{})
	a := ip("192.0.2.1")
	addTok(c, a, "t0", cacheNow)
	addTok(c, a, "t1", cacheNow)
	_, key, ok := c.lookup(a, cacheNonce, clientScramble("t0", cacheNonce), cacheNow)
	if !ok {
		t.Fatal("miss")
	}
	c.evict(a, key)
	c.evict(ip("192.0.2.9"), key) // an unknown address: nothing happens
	if hit(c, a, "t0", cacheNow) || !hit(c, a, "t1", cacheNow) || c.len() != 1 {
		t.Fatal("evict")
	}
}

// TestCacheConcurrent runs adds, lookups and evictions from several
// goroutines (event loops) over shared addresses; -race checks the locking.
func TestCacheConcurrent(t *testing.T) {
	c := newAuthCache(CacheConfig{PerAddress: 4, MaxEntries: 512})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				a := netip.AddrFrom4([4]byte{10, 0, byte(i % 7), byte(g)})
				tok := fmt.Sprint("tok", i%5)
				addTok(c, a, tok, cacheNow)
				if _, key, ok := c.lookup(a, cacheNonce, clientScramble(tok, cacheNonce), cacheNow); ok && i%3 == 0 {
					c.evict(a, key)
				}
			}
		}()
	}
	wg.Wait()
	if n := c.len(); n > 4*7*4 {
		t.Fatalf("%d entries", n)
	}
}

func BenchmarkCacheLookupHit(b *testing.B) {
	c := newAuthCache(CacheConfig{})
	a := ip("192.0.2.1")
	for i := range defaultPerAddress {
		addTok(c, a, fmt.Sprint("tok", i), cacheNow)
	}
	// The reconnecting client's token is the address's most recently used
	// after its first hit: one candidate to hash.
	scr := clientScramble("tok0", cacheNonce)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := c.lookup(a, cacheNonce, scr, cacheNow); !ok {
			b.Fatal("miss")
		}
	}
}

// BenchmarkCacheLookupMiss is the worst case: every one of the address's 8
// entries is tried.
func BenchmarkCacheLookupMiss(b *testing.B) {
	c := newAuthCache(CacheConfig{})
	a := ip("192.0.2.1")
	for i := range defaultPerAddress {
		addTok(c, a, fmt.Sprint("tok", i), cacheNow)
	}
	scr := clientScramble("unknown", cacheNonce)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := c.lookup(a, cacheNonce, scr, cacheNow); ok {
			b.Fatal("hit")
		}
	}
}

// checkInvariants checks the cache's bookkeeping: every shard's count is
// the sum of its addresses' entries and within the shard's bound, each
// address holds 1..PerAddress entries with distinct hashes, and the LRU
// list and the map hold the same addresses.
func checkInvariants(t *testing.T, c *authCache) {
	t.Helper()
	for i := range c.shards {
		sh := &c.shards[i]
		count, nodes := 0, 0
		var prev *addrNode
		for nd := sh.head; nd != nil; nd = nd.next {
			if nd.prev != prev || sh.nodes[nd.addr] != nd || c.shard(nd.addr) != sh {
				t.Fatalf("shard %d: broken list at %v", i, nd.addr)
			}
			if len(nd.entries) == 0 || len(nd.entries) > c.perAddr {
				t.Fatalf("shard %d: %v holds %d entries", i, nd.addr, len(nd.entries))
			}
			for j := range nd.entries {
				for k := j + 1; k < len(nd.entries); k++ {
					if nd.entries[j].stage2 == nd.entries[k].stage2 {
						t.Fatalf("shard %d: %v holds a token twice", i, nd.addr)
					}
				}
			}
			count += len(nd.entries)
			nodes++
			prev = nd
		}
		if sh.tail != prev || nodes != len(sh.nodes) || count != sh.n || sh.n > c.perShard {
			t.Fatalf("shard %d: n=%d counted=%d nodes=%d/%d bound=%d", i, sh.n, count, nodes, len(sh.nodes), c.perShard)
		}
	}
}

// FuzzCacheOps runs a sequence of adds, lookups and evictions decoded from
// the input (3 bytes an operation: kind and time step, address, token)
// against a small cache and checks its invariants after each, that a token
// hits right after its add, that an evicted one no longer hits, and that a
// token never added never hits.
func FuzzCacheOps(f *testing.F) {
	f.Add([]byte{0x00, 1, 1, 0x01, 1, 1, 0x02, 1, 1, 0x01, 1, 1})
	f.Add([]byte{0x00, 1, 1, 0x00, 1, 2, 0x00, 1, 3, 0x00, 1, 4, 0x01, 1, 1, 0xf1, 1, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		c := newAuthCache(CacheConfig{PerAddress: 3, MaxEntries: cacheShards * 4, TTL: 10 * time.Second})
		now := cacheNow
		for ; len(b) >= 3; b = b[3:] {
			now = now.Add(time.Duration(b[0]>>4) * time.Second)
			addr := netip.AddrFrom4([4]byte{10, 0, 0, b[1] % 16})
			tok := fmt.Sprint("tok", b[2]%8)
			switch b[0] % 4 {
			case 0:
				addTok(c, addr, tok, now)
				if !hit(c, addr, tok, now) {
					t.Fatalf("%s from %v missed right after its add", tok, addr)
				}
			case 1, 3:
				hit(c, addr, tok, now)
			case 2:
				if _, key, ok := c.lookup(addr, cacheNonce, clientScramble(tok, cacheNonce), now); ok {
					c.evict(addr, key)
					if hit(c, addr, tok, now) {
						t.Fatalf("%s from %v hit after its eviction", tok, addr)
					}
				}
			}
			checkInvariants(t, c)
			if hit(c, addr, "never-added", now) {
				t.Fatal("a token never added hit")
			}
		}
	})
}

// len returns the number of entries.
func (c *authCache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += sh.n
		sh.mu.Unlock()
	}
	return n
}
