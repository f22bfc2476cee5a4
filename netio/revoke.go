package netio

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heliosdb/auth/core"
)

// RevocationKind says what a Revocation names.
type RevocationKind uint8

const (
	// RevokeToken: one token (revoke, logout, refresh's old token).
	RevokeToken RevocationKind = iota + 1
	// RevokeAccount: every token of an account issued before NotBefore
	// (logout-all).
	RevokeAccount
	// RevokeKey: every token signed by a retired key.
	RevokeKey
)

// Revocation is one applied revocation, handed to Gateway.Revoke once the
// revocation view already answers "revoked" for it, so that the open
// sessions it names are ended. The zero Revocation names every session
// (a re-check of all, see Gateway.RecheckAll).
type Revocation struct {
	Kind      RevocationKind
	Token     core.TokenID // RevokeToken
	Account   uint64       // RevokeAccount
	NotBefore int64        // RevokeAccount: tokens issued before it (Unix seconds)
	KeyID     uint16       // RevokeKey
}

// sessionIndex maps token ids, accounts and key ids to the authenticated
// sessions holding them. Sets are slices, and each session records its
// position in its three sets, so adding and removing cost O(1) however
// large a set is (a key id's set holds every session it signed); an empty
// set is deleted, so the maps hold only live sessions. It allocates only
// when a session is added; it is not safe for concurrent use.
type sessionIndex[T indexed] struct {
	byToken   map[core.TokenID][]T
	byAccount map[uint64][]T
	byKey     map[uint16][]T
}

// indexed is a session that records its positions in a sessionIndex.
type indexed interface {
	comparable
	slots() *indexSlots
}

// indexSlots are a session's positions in its token, account and key sets.
type indexSlots struct{ token, account, key int }

func slotToken(s *indexSlots) *int   { return &s.token }
func slotAccount(s *indexSlots) *int { return &s.account }
func slotKey(s *indexSlots) *int     { return &s.key }

func newSessionIndex[T indexed]() sessionIndex[T] {
	return sessionIndex[T]{byToken: map[core.TokenID][]T{}, byAccount: map[uint64][]T{}, byKey: map[uint16][]T{}}
}

// add indexes s under c's token id, account and key id.
func (x *sessionIndex[T]) add(c *core.Claims, s T) {
	addTo(x.byToken, c.ID, s, slotToken)
	addTo(x.byAccount, c.Account, s, slotAccount)
	addTo(x.byKey, c.KeyID, s, slotKey)
}

// remove drops s from the sets add put it in.
func (x *sessionIndex[T]) remove(c *core.Claims, s T) {
	removeFrom(x.byToken, c.ID, s, slotToken)
	removeFrom(x.byAccount, c.Account, s, slotAccount)
	removeFrom(x.byKey, c.KeyID, s, slotKey)
}

func addTo[K comparable, T indexed](m map[K][]T, k K, s T, slot func(*indexSlots) *int) {
	set := m[k]
	*slot(s.slots()) = len(set)
	m[k] = append(set, s)
}

func removeFrom[K comparable, T indexed](m map[K][]T, k K, s T, slot func(*indexSlots) *int) {
	set := m[k]
	i := *slot(s.slots())
	if i < 0 || i >= len(set) || set[i] != s {
		return
	}
	last := len(set) - 1
	set[i] = set[last]
	*slot(set[i].slots()) = i
	var zero T
	set[last] = zero
	*slot(s.slots()) = -1
	if last == 0 {
		delete(m, k)
	} else {
		m[k] = set[:last]
	}
}

// lookup returns the sessions r names. The slice is the index's own: the
// caller must not keep it across a change to the index.
func (x *sessionIndex[T]) lookup(r *Revocation) []T {
	switch r.Kind {
	case RevokeToken:
		return x.byToken[r.Token]
	case RevokeAccount:
		return x.byAccount[r.Account]
	case RevokeKey:
		return x.byKey[r.KeyID]
	}
	return nil
}

// Recheck checks an authenticated session's claims again (core.Verifier
// .Recheck: key, expiry, revocation view) as this transport is configured:
// with Config.SessionExpiry "keep" a token past its expiry is not refused
// for that alone (it is still refused when revoked). Sessions that re-check
// on every command should call this rather than Verifier.Recheck.
func (e *Env) Recheck(c *core.Claims) error { return e.recheck(c, e.Now) }

func (e *Env) recheck(c *core.Claims, now time.Time) error {
	if e.keepExpired && now.Unix() >= c.ExpiresAt {
		now = time.Unix(c.ExpiresAt-1, 0) // check everything but the expiry
	}
	return e.Verifier.Recheck(c, now)
}

// verdict decides whether a session that r names ends, and why: the
// revocation view is re-checked (so a logout-all spares tokens issued after
// its epoch), and the event itself stands when the view has since dropped
// the entry (a token revocation is kept only until the token's expiry).
func verdict(env *Env, c *core.Claims, r *Revocation, now time.Time) error {
	if err := env.recheck(c, now); err != nil {
		return err
	}
	switch {
	case r.Kind == RevokeToken && c.ID == r.Token:
		return core.ErrRevoked
	case r.Kind == RevokeAccount && c.Account == r.Account && c.IssuedAt < r.NotBefore:
		return core.ErrLoggedOut
	}
	return nil
}

// Revoke ends the open sessions r names, on every event loop and TLS
// goroutine, without waiting: r is queued on each loop, and a loop whose
// queue was empty gets one drain task through gnet's lock-free task queue
// (which wakes its poller), so a burst costs one wake per loop; each
// affected TLS goroutine is woken by a past read deadline. The sessions are
// found in per-loop indexes by token id, account and key id, never by a
// scan. Safe for concurrent use; a no-op once the gateway stops.
func (g *Gateway) Revoke(r Revocation) {
	if p := g.live.Load(); p != nil {
		for _, s := range *p {
			for _, l := range s.loops.all() {
				l.revq.push(l, &r)
			}
		}
	}
	g.goIdx.poke(&r)
}

// RecheckAll re-checks every authenticated session's token now, on every
// loop and TLS goroutine, as the periodic sweep does: for a change that
// arrives without a Revocation (a snapshot reload, the feed going stale).
func (g *Gateway) RecheckAll() { g.Revoke(Revocation{}) }

// revQueue holds the revocations waiting for a loop. The feed goroutine
// pushes; the loop drains. The two slices are swapped, so a steady state
// allocates nothing.
type revQueue struct {
	mu        sync.Mutex
	pending   []Revocation
	spare     []Revocation
	scheduled bool
}

// push queues r for l and schedules a drain if none is scheduled.
func (q *revQueue) push(l *loopState, r *Revocation) {
	q.mu.Lock()
	q.pending = append(q.pending, *r)
	wake := !q.scheduled
	q.scheduled = true
	q.mu.Unlock()
	if wake && l.el.Execute(context.Background(), (*revokeDrain)(l)) != nil {
		q.take() // the engine stopped: nothing will drain, keep nothing
	}
}

// take returns the queued revocations and clears the schedule; the slice
// is the queue's until the next take.
func (q *revQueue) take() []Revocation {
	q.mu.Lock()
	defer q.mu.Unlock()
	got := q.pending
	q.pending, q.spare = q.spare[:0], got
	q.scheduled = false
	return got
}

// revokeDrain is a loop's drain task (a gnet Runnable).
type revokeDrain loopState

// Run ends the loop's sessions the queued revocations name.
func (d *revokeDrain) Run(context.Context) error {
	l := (*loopState)(d)
	rs := l.revq.take()
	for i := range rs {
		if rs[i].Kind == 0 {
			now := time.Now()
			l.env.Now = now
			l.sweep(now)
			l.endRefused(now)
		} else {
			l.revoke(&rs[i])
		}
		rs[i] = Revocation{}
	}
	return nil
}

// revoke looks r up in the loop's index, confirms each hit and ends it.
func (l *loopState) revoke(r *Revocation) {
	hits := l.index.lookup(r)
	if len(hits) == 0 {
		return
	}
	now := time.Now()
	l.env.Now = now
	for _, cs := range hits {
		if err := verdict(&l.env, cs.claims, r, now); err != nil {
			l.refused = append(l.refused, refusal{cs, err})
		}
	}
	l.endRefused(now) // after the lookup: ending a session edits its set
}

// goSession is a TLS goroutine's authenticated session in the gateway's
// shared index. A revocation sets pending and moves the read deadline of
// raw (the socket under TLS) into the past, so the goroutine's Read returns
// and it re-checks the claims on its own goroutine with its own verifier.
type goSession struct {
	claims  *core.Claims
	raw     net.Conn
	pending atomic.Pointer[Revocation]
	pos     indexSlots
}

func (s *goSession) slots() *indexSlots { return &s.pos }

// goIndex indexes the authenticated sessions of every TLS goroutine of a
// gateway, behind a mutex (taken when a session authenticates or ends, and
// once per revocation).
type goIndex struct {
	mu  sync.Mutex
	idx sessionIndex[*goSession]
}

func newGoIndex() *goIndex { return &goIndex{idx: newSessionIndex[*goSession]()} }

func (x *goIndex) add(s *goSession) {
	x.mu.Lock()
	x.idx.add(s.claims, s)
	x.mu.Unlock()
}

func (x *goIndex) remove(s *goSession) {
	x.mu.Lock()
	x.idx.remove(s.claims, s)
	x.mu.Unlock()
}

// poke wakes the goroutines whose sessions r names (every one for a
// zero Revocation, RecheckAll). The deadline is set
// after pending: a goroutine that sets its own deadline later checks
// pending before it reads (see ServeConn).
func (x *goIndex) poke(r *Revocation) {
	x.mu.Lock()
	defer x.mu.Unlock()
	rc := *r
	wake := func(s *goSession) {
		s.pending.Store(&rc)
		_ = s.raw.SetReadDeadline(time.Unix(1, 0))
	}
	if r.Kind == 0 { // RecheckAll
		for _, set := range x.idx.byToken {
			for _, s := range set {
				wake(s)
			}
		}
		return
	}
	for _, s := range x.idx.lookup(r) {
		wake(s)
	}
}
