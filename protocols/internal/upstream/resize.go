package upstream

import (
	"fmt"
	"time"
)

// minCapacity is the least a pool may grow to by Resize (see capacity).
const minCapacity = 256

// A bucket's slots channel has the pool's capacity (four times the size it
// was made with, at least minCapacity); the tokens above the size in force
// are reserved: they sit in the channel for no connection, so a Get finds
// the channel full at the size in force. Resize moves the reserve: growing
// takes reserved tokens out at once; shrinking puts tokens in as far as
// there is room, and owes the rest, paid by connections as they close
// (release keeps their token as reserved). Open connections above a
// lowered size are not closed: they are simply not replaced.

// newBucket makes a bucket with the reserve for the size in force.
func (p *Pool[C]) newBucket() *bucket[C] {
	b := &bucket[C]{slots: make(chan struct{}, p.capacity), idle: make(chan C, p.capacity)}
	n := p.capacity - int(p.size.Load())
	for range n {
		b.slots <- struct{}{}
	}
	b.reserved.Store(int32(n))
	return b
}

// release frees the slot of a connection that closed (or was never made),
// unless the bucket owes reserve: then the slot becomes reserved.
func (b *bucket[C]) release() {
	for {
		o := b.owed.Load()
		if o <= 0 {
			break
		}
		if b.owed.CompareAndSwap(o, o-1) {
			b.reserved.Add(1)
			return
		}
	}
	select {
	case <-b.slots:
	default:
	}
}

// open is the number of connections holding a slot.
func (b *bucket[C]) open() int {
	return max(0, len(b.slots)-int(b.reserved.Load()))
}

// Wait is how long Get waits for a connection now (the last Resize's).
func (p *Pool[C]) Wait() time.Duration { return time.Duration(p.wait.Load()) }

// Resize changes the pool's size (connections per key) and wait for every
// key, now and for keys seen later. A size above the pool's capacity (four
// times the size it was made with, at least 256) is refused: it needs a
// restart. Growing lets waiting Gets dial at once; shrinking closes nothing
// but replaces no connection until fewer than size are open.
func (p *Pool[C]) Resize(size int, wait time.Duration) error {
	if size <= 0 || wait <= 0 {
		return fmt.Errorf("pool size %d and wait %s must be positive", size, wait)
	}
	if size > p.capacity {
		return fmt.Errorf("pool size %d is above %d, the most this pool can grow to without a restart", size, p.capacity)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wait.Store(int64(wait))
	p.size.Store(int32(size))
	want := int32(p.capacity - size)
	for _, b := range p.buckets {
		for b.reserved.Load()+b.owed.Load() < want { // shrink: reserve more
			select {
			case b.slots <- struct{}{}:
				b.reserved.Add(1)
				continue
			default:
			}
			b.owed.Add(want - b.reserved.Load() - b.owed.Load())
		}
		for b.reserved.Load()+b.owed.Load() > want { // grow: cancel debt, then free reserve
			if o := b.owed.Load(); o > 0 {
				if b.owed.CompareAndSwap(o, o-1) {
					continue
				}
				continue
			}
			<-b.slots // a reserved token is always there
			b.reserved.Add(-1)
		}
	}
	return nil
}
