package netio

// Parked server connections: idle ones kept on their event loop by key,
// taken again by a client on that loop, or reclaimed for a client waiting
// on another.

import (
	"context"
	"net"
	"sync"
	"time"
)

// Park keeps the backend idle on its loop under key (a comparable value:
// the protocol's pool key), for Link.Take. It has no owner or handler from
// then on; if the server closes it or sends anything, it is closed. A
// backend that is not open, or holds bytes not yet delivered or written,
// is closed instead.
func (b *Backend) Park(key any) {
	if b.state != bOpen || len(b.carry) > 0 || len(b.pend) > 0 {
		b.Close()
		return
	}
	l := b.l
	b.owner, b.h, b.await = nil, nil, 0
	b.SetDeadline(time.Time{})
	b.parkKey, b.parked = key, true
	l.parked[key] = append(l.parked[key], b)
	parkReg.add(key, l)
}

// Take returns a backend parked under key on this connection's loop, now
// owned by the connection (without a handler: set one), or nil. Call it on
// the loop.
func (k *Link) Take(key any) *Backend {
	l := k.l
	for {
		list := l.parked[key]
		if len(list) == 0 {
			return nil
		}
		b := list[len(list)-1]
		l.unpark(b)
		if b.state != bOpen || b.c.InboundBuffered() > 0 {
			b.Close() // the server spoke unasked: not reusable
			continue
		}
		b.owner = k.cs
		return b
	}
}

// Reclaim asks an event loop holding a backend parked under key to detach
// it and call give with its Value and the connection (on that loop: give
// must not block). It reports whether a loop was asked; the loop may find
// the backend gone by then (taken or closed) and give nothing.
func Reclaim(key any, give func(value any, nc net.Conn)) bool {
	for _, l := range parkReg.holders(key) {
		err := l.el.Execute(context.Background(), loopTask(func() {
			list := l.parked[key]
			if len(list) == 0 {
				return
			}
			b := list[0]
			nc, err := b.Detach()
			if err != nil {
				b.Close()
				return
			}
			give(b.value, nc)
		}))
		if err == nil {
			return true
		}
	}
	return false
}

// Parked returns how many backends are parked under key on every loop.
func Parked(key any) int {
	parkReg.mu.Lock()
	defer parkReg.mu.Unlock()
	n := 0
	for _, c := range parkReg.m[key] {
		n += c
	}
	return n
}

// parkReg records, process-wide, which loops hold parked backends of each
// key (for Reclaim).
var parkReg = parkRegistry{m: map[any]map[*loopState]int{}}

type parkRegistry struct {
	mu sync.Mutex
	m  map[any]map[*loopState]int
}

func (r *parkRegistry) add(key any, l *loopState) {
	r.mu.Lock()
	ls := r.m[key]
	if ls == nil {
		ls = map[*loopState]int{}
		r.m[key] = ls
	}
	ls[l]++
	r.mu.Unlock()
}

func (r *parkRegistry) remove(key any, l *loopState) {
	r.mu.Lock()
	if ls := r.m[key]; ls != nil {
		if ls[l]--; ls[l] <= 0 {
			delete(ls, l)
		}
		if len(ls) == 0 {
			delete(r.m, key)
		}
	}
	r.mu.Unlock()
}

// holders returns the loops holding backends parked under key, the one
// holding most first.
func (r *parkRegistry) holders(key any) []*loopState {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*loopState
	for l := range r.m[key] {
		out = append(out, l)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && r.m[key][out[j]] > r.m[key][out[j-1]]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// unpark drops b from its loop's parked backends.
func (l *loopState) unpark(b *Backend) {
	if !b.parked {
		return
	}
	b.parked = false
	list := removeBackend(l.parked[b.parkKey], b)
	if len(list) == 0 {
		delete(l.parked, b.parkKey)
	} else {
		l.parked[b.parkKey] = list
	}
	parkReg.remove(b.parkKey, l)
	b.parkKey = nil
}

// removeBackend removes b from list (order is not kept).
func removeBackend(list []*Backend, b *Backend) []*Backend {
	for i, x := range list {
		if x == b {
			last := len(list) - 1
			list[i] = list[last]
			list[last] = nil
			return list[:last]
		}
	}
	return list
}
