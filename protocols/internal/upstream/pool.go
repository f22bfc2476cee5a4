package upstream

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Key names a pool of interchangeable server connections: one role logged
// in to one database, with what else a protocol needs identical between
// two clients to hand one's server connection to the other (Variant: MySQL's
// capability flags, which shape every result the server sends).
type Key struct {
	Role     Role
	Database string
	Variant  uint64
}

// Conn is a pooled server connection.
type Conn interface {
	// Close closes the connection (it is not returned).
	Close() error
}

// PoolOptions size a Pool.
type PoolOptions struct {
	// Size is how many server connections one key may have open, idle and
	// in use together (default 20).
	Size int
	// Wait is how long Get waits for one when all Size are in use (default
	// 5s); then it returns ErrExhausted, never a hang.
	Wait time.Duration
	// Unreachable tells a dial error that means the server cannot be
	// reached (refused, timed out) from one it answered (a login refused).
	// After such errors the pool backs off: for 100ms, doubling up to 5s,
	// Get returns the last error without dialling, so that a server coming
	// back is not met by every waiting client at once. nil: never.
	Unreachable func(error) bool
	// Reclaim, when set, is called when Get must wait because every
	// connection of k is open (and again every reclaimEvery while it
	// waits): it asks whoever keeps idle connections of k outside the
	// pool (a protocol's event loops, which park them where their clients
	// are) to give one back with Put. It must not block.
	Reclaim func(k Key)
}

// reclaimEvery is how often a waiting Get asks for idle connections kept
// outside the pool again (PoolOptions.Reclaim).
const reclaimEvery = 50 * time.Millisecond

// EnsureDefaults gives every unset field of o its default and returns o.
func (o *PoolOptions) EnsureDefaults() *PoolOptions {
	if o.Size <= 0 {
		o.Size = 20
	}
	if o.Wait <= 0 {
		o.Wait = 5 * time.Second
	}
	return o
}

// ErrExhausted is Get's error when every connection of a key stayed in use
// for PoolOptions.Wait (PostgreSQL 53300, MySQL 1040 to the client).
var ErrExhausted = errors.New("upstream pool exhausted: every server connection stayed in use")

// ErrClosed is Get's error after Close.
var ErrClosed = errors.New("upstream pool closed")

// Pool keeps authenticated server connections per Key: Get hands out an
// idle one (checked with the protocol's healthy function) or dials a new
// one while fewer than Size are open; Put returns a clean one; Discard
// closes a dirty one and frees its place. It is safe for concurrent use.
type Pool[C Conn] struct {
	opts    PoolOptions
	dial    func(ctx context.Context, k Key) (C, error)
	healthy func(C) bool
	mu      sync.Mutex
	buckets map[Key]*bucket[C]
	// size and wait are in force (Resize); capacity bounds size.
	size     atomic.Int32
	wait     atomic.Int64
	capacity int
	closed   bool
	done     chan struct{}
	// Backoff after unreachable dials (PoolOptions.Unreachable), for
	// every key: the server is down for all of them.
	backoffMu    sync.Mutex
	backoffUntil time.Time
	backoff      time.Duration
	backoffErr   error
}

// backingOff returns the last unreachable dial's error while the pool backs
// off from the server.
func (p *Pool[C]) backingOff() error {
	p.backoffMu.Lock()
	defer p.backoffMu.Unlock()
	if time.Now().Before(p.backoffUntil) {
		return p.backoffErr
	}
	return nil
}

// dialed records a dial's outcome for the backoff.
func (p *Pool[C]) dialed(err error) {
	p.backoffMu.Lock()
	defer p.backoffMu.Unlock()
	if err == nil || p.opts.Unreachable == nil || !p.opts.Unreachable(err) {
		p.backoff, p.backoffUntil = 0, time.Time{}
		return
	}
	p.backoff = min(max(2*p.backoff, 100*time.Millisecond), 5*time.Second)
	p.backoffUntil, p.backoffErr = time.Now().Add(p.backoff), err
}

// bucket is one key's connections: slots holds a token per open
// connection (its capacity is Size), idle the ones waiting for a client.
type bucket[C Conn] struct {
	slots chan struct{}
	idle  chan C
	// waiting counts the Gets waiting for a connection (Waiting).
	waiting atomic.Int32
	// reserved counts the tokens in slots that stand for no connection
	// (the capacity above the size in force), owed those still to be
	// reserved as connections close (Resize, resize.go).
	reserved, owed atomic.Int32
}

// NewPool returns a pool that dials with dial and checks an idle
// connection with healthy before handing it out (nil: always healthy).
func NewPool[C Conn](opts PoolOptions, dial func(ctx context.Context, k Key) (C, error), healthy func(C) bool) *Pool[C] {
	opts.EnsureDefaults()
	p := &Pool[C]{opts: opts, dial: dial, healthy: healthy, buckets: map[Key]*bucket[C]{}, done: make(chan struct{}),
		capacity: max(4*opts.Size, minCapacity)}
	p.size.Store(int32(opts.Size))
	p.wait.Store(int64(opts.Wait))
	return p
}

func (p *Pool[C]) bucket(k Key) (*bucket[C], error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	b := p.buckets[k]
	if b == nil {
		b = p.newBucket()
		p.buckets[k] = b
	}
	return b, nil
}

// Get returns a server connection for k: an idle one, a new one, or one
// released within the wait; ErrExhausted after it, the dialer's error when
// a new one cannot be made.
func (p *Pool[C]) Get(ctx context.Context, k Key) (C, error) {
	var zero C
	b, err := p.bucket(k)
	if err != nil {
		return zero, err
	}
	for { // an idle connection first, without a timer
		select {
		case c := <-b.idle:
			if p.usable(b, c) {
				return c, nil
			}
			continue
		default:
		}
		break
	}
	var reclaim <-chan time.Time
	if p.opts.Reclaim != nil {
		select {
		case b.slots <- struct{}{}:
			return p.dialSlot(ctx, b, k)
		default: // every connection is open: ask for idle ones kept elsewhere
		}
		b.waiting.Add(1)
		defer b.waiting.Add(-1)
		p.opts.Reclaim(k)
		t := time.NewTicker(reclaimEvery)
		defer t.Stop()
		reclaim = t.C
	}
	timer := time.NewTimer(time.Duration(p.wait.Load()))
	defer timer.Stop()
	for {
		select {
		case <-reclaim:
			p.opts.Reclaim(k)
		case c := <-b.idle:
			if p.usable(b, c) {
				return c, nil
			}
		case b.slots <- struct{}{}:
			return p.dialSlot(ctx, b, k)
		case <-timer.C:
			return zero, ErrExhausted
		case <-ctx.Done():
			return zero, ctx.Err()
		case <-p.done:
			return zero, ErrClosed
		}
	}
}

// dialSlot dials a connection for k with the slot just taken in b (given
// back when the dial fails, or while the pool backs off).
func (p *Pool[C]) dialSlot(ctx context.Context, b *bucket[C], k Key) (C, error) {
	var zero C
	if err := p.backingOff(); err != nil {
		b.release()
		return zero, err
	}
	c, err := p.dial(ctx, k)
	p.dialed(err)
	if err != nil {
		b.release()
		return zero, err
	}
	return c, nil
}

// Waiting reports whether a Get is waiting for a connection of k: whoever
// keeps an idle one outside the pool should Put it rather than keep it.
func (p *Pool[C]) Waiting(k Key) bool {
	p.mu.Lock()
	b := p.buckets[k]
	p.mu.Unlock()
	return b != nil && b.waiting.Load() > 0
}

// usable reports whether an idle connection may be handed out, closing it
// when it may not.
func (p *Pool[C]) usable(b *bucket[C], c C) bool {
	if p.healthy == nil || p.healthy(c) {
		return true
	}
	p.discard(b, c)
	return false
}

// Put returns a clean connection of k for the next client.
func (p *Pool[C]) Put(k Key, c C) {
	b, err := p.bucket(k)
	if err != nil {
		_ = c.Close()
		return
	}
	select {
	case b.idle <- c:
	default: // cannot happen while every connection holds a slot
		p.discard(b, c)
	}
}

// Discard closes a connection of k that must not be reused (it ended in an
// error, a revocation or mid-transaction) and frees its place.
func (p *Pool[C]) Discard(k Key, c C) {
	p.mu.Lock()
	b := p.buckets[k]
	p.mu.Unlock()
	if b == nil {
		_ = c.Close()
		return
	}
	p.discard(b, c)
}

func (p *Pool[C]) discard(b *bucket[C], c C) {
	_ = c.Close()
	b.release()
}

// Stats reports, per key, the open and idle connections.
func (p *Pool[C]) Stats() map[Key][2]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[Key][2]int, len(p.buckets))
	for k, b := range p.buckets {
		m[k] = [2]int{b.open(), len(b.idle)}
	}
	return m
}

// Close closes every idle connection and makes Get fail; connections in
// use are closed by their sessions (Put closes them from now on).
func (p *Pool[C]) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.done)
	buckets := p.buckets
	p.mu.Unlock()
	for _, b := range buckets {
		for {
			select {
			case c := <-b.idle:
				p.discard(b, c)
				continue
			default:
			}
			break
		}
	}
}
