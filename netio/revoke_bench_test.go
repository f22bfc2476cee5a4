package netio

import (
	"testing"

	"github.com/heliosdb/auth/core"
)

// benchIndex returns an index of n sessions over n/10 accounts and 2 keys.
func benchIndex(n int) (sessionIndex[*connState], []*core.Claims) {
	x := newSessionIndex[*connState]()
	cs := make([]*core.Claims, n)
	for i := range cs {
		cs[i] = &core.Claims{ID: core.NewTokenID(), Account: uint64(i / 10), KeyID: uint16(i % 2)}
		x.add(cs[i], &connState{})
	}
	return x, cs
}

// BenchmarkIndexLookupToken: finding a token's sessions among 100k open
// sessions (the revocation path's lookup; no scan).
func BenchmarkIndexLookupToken(b *testing.B) {
	x, cs := benchIndex(100_000)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := Revocation{Kind: RevokeToken, Token: cs[i%len(cs)].ID}
		if len(x.lookup(&r)) != 1 {
			b.Fatal("not found")
		}
	}
}

// BenchmarkIndexAddRemove: what a session costs the index when it
// authenticates and when it closes, with 100k others open.
func BenchmarkIndexAddRemove(b *testing.B) {
	x, _ := benchIndex(100_000)
	c := &core.Claims{ID: core.NewTokenID(), Account: 5, KeyID: 1}
	s := &connState{}
	b.ReportAllocs()
	for b.Loop() {
		x.add(c, s)
		x.remove(c, s)
	}
}

// TestSessionIndexPositions: after sessions are added and removed in a
// mixed order, every set holds exactly the live sessions, each at the
// position it records, and emptied sets are gone.
func TestSessionIndexPositions(t *testing.T) {
	x := newSessionIndex[*connState]()
	type entry struct {
		c  *core.Claims
		cs *connState
	}
	var live []entry
	for i := range 1000 {
		e := entry{&core.Claims{ID: core.NewTokenID(), Account: uint64(i % 7), KeyID: uint16(i % 3)}, &connState{}}
		x.add(e.c, e.cs)
		live = append(live, e)
		if i%3 == 2 { // remove one from the middle
			j := (i * 7919) % len(live)
			x.remove(live[j].c, live[j].cs)
			live = append(live[:j], live[j+1:]...)
		}
	}
	check := func() {
		t.Helper()
		n := 0
		for _, set := range x.byAccount {
			for i, cs := range set {
				if cs.pos.account != i {
					t.Fatalf("account position %d recorded as %d", i, cs.pos.account)
				}
			}
			n += len(set)
		}
		for _, set := range x.byKey {
			for i, cs := range set {
				if cs.pos.key != i {
					t.Fatalf("key position %d recorded as %d", i, cs.pos.key)
				}
			}
		}
		if n != len(live) || len(x.byToken) != len(live) {
			t.Fatalf("%d indexed by account, %d tokens, want %d", n, len(x.byToken), len(live))
		}
	}
	check()
	for _, e := range live {
		x.remove(e.c, e.cs)
	}
	live = nil
	check()
	if a, b, c := x.sizes(); a+b+c != 0 {
		t.Fatalf("sets left: %d %d %d", a, b, c)
	}
}
