package issuer

import (
	"math"
	"sync"
	"time"
)

// limiter is a set of token buckets by key (an email or a source address):
// each holds up to burst attempts and refills at burst per minute. Idle
// buckets that have refilled are dropped.
type limiter struct {
	mu      sync.Mutex
	burst   float64
	perSec  float64
	buckets map[string]*bucket
	sweep   time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter(perMinute int) *limiter {
	return &limiter{burst: float64(perMinute), perSec: float64(perMinute) / 60, buckets: map[string]*bucket{}}
}

// take spends one attempt for key. When none is left it returns false and
// how long until one is.
func (l *limiter) take(key string, now time.Time) (bool, time.Duration) {
	if l == nil || l.burst <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.sweep) > time.Minute {
		for k, b := range l.buckets {
			if b.level(l, now) >= l.burst {
				delete(l.buckets, k)
			}
		}
		l.sweep = now
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	b.tokens, b.at = b.level(l, now), now
	if b.tokens < 1 {
		wait := time.Duration(math.Ceil((1-b.tokens)/l.perSec*1e3)) * time.Millisecond
		return false, wait
	}
	b.tokens--
	return true, 0
}

// refund gives back an attempt (a successful login costs nothing).
func (l *limiter) refund(key string) {
	if l == nil || l.burst <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.buckets[key]; b != nil {
		b.tokens = min(b.tokens+1, l.burst)
	}
}

func (b *bucket) level(l *limiter, now time.Time) float64 {
	return min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.perSec)
}
