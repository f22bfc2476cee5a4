package revset

import (
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
)

var now = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC).Unix()

func ids(n int) []core.TokenID {
	out := make([]core.TokenID, n)
	for i := range out {
		out[i] = core.NewTokenID()
	}
	return out
}

func TestApplyCheckRebuild(t *testing.T) {
	s := New(8)
	revoked := ids(100)
	for i, id := range revoked {
		exp := now + 3600
		if i%2 == 1 {
			exp = now + 10 // expires soon
		}
		s.Apply(uint64(i+1), now, Entry{Kind: KindToken, ID: id, Expires: exp})
	}
	if s.Seq() != 100 {
		t.Fatalf("seq %d", s.Seq())
	}
	st := s.Stats()
	if st.Tokens != 100 || st.Overlay > 8 {
		t.Fatalf("stats %+v", st)
	}
	for _, id := range revoked {
		if s.Check(id, 1, now, 1) != core.RevokedToken {
			t.Fatal("revoked token not found")
		}
	}
	for _, id := range ids(10000) {
		if s.Check(id, 1, now, 1) != core.NotRevoked {
			t.Fatal("unrevoked token reported revoked (a Bloom false positive must be confirmed)")
		}
	}
	s.Rebuild(now + 11)
	st = s.Stats()
	if st.Tokens != 50 || st.Overlay != 0 {
		t.Fatalf("after rebuild %+v", st)
	}
	for i, id := range revoked {
		want := core.RevokedToken
		if i%2 == 1 {
			want = core.NotRevoked // dropped: the token has expired anyway
		}
		if got := s.Check(id, 1, now, 1); got != want {
			t.Fatalf("%d: %v want %v", i, got, want)
		}
	}
}

func TestAccountsAndKeys(t *testing.T) {
	s := New(0)
	s.Apply(1, now, Entry{Kind: KindAccount, Account: 7, NotBefore: now}, Entry{Kind: KindKey, KeyID: 3})
	id := core.NewTokenID()
	if s.Check(id, 7, now-1, 1) != core.RevokedAccount {
		t.Fatal("token issued before logout-all")
	}
	if s.Check(id, 7, now, 1) != core.NotRevoked || s.Check(id, 8, now-1, 1) != core.NotRevoked {
		t.Fatal("logout-all reached too far")
	}
	if s.Check(id, 8, now, 3) != core.RevokedKey {
		t.Fatal("retired key")
	}
	s.Apply(2, now, Entry{Kind: KindAccount, Account: 7, NotBefore: now - 100}) // epochs never go back
	if s.Check(id, 7, now-1, 1) != core.RevokedAccount {
		t.Fatal("epoch moved back")
	}
}

func TestLoadAndEntries(t *testing.T) {
	src := New(4)
	for i, id := range ids(20) {
		src.Apply(uint64(i+1), now, Entry{Kind: KindToken, ID: id, Expires: now + 60})
	}
	src.Apply(21, now, Entry{Kind: KindAccount, Account: 1, NotBefore: now}, Entry{Kind: KindKey, KeyID: 9})
	seq, entries := src.Entries()
	if seq != 21 || len(entries) != 22 {
		t.Fatalf("entries: seq %d, %d entries", seq, len(entries))
	}
	dst := New(0)
	dst.Load(seq, now, entries)
	_, back := dst.Entries()
	if len(back) != len(entries) || dst.Seq() != 21 {
		t.Fatalf("loaded %d of %d", len(back), len(entries))
	}
	for _, e := range entries {
		if e.Kind == KindToken && dst.Check(e.ID, 5, now, 1) != core.RevokedToken {
			t.Fatal("loaded token missing")
		}
	}
}

func TestCheckAllocatesNothing(t *testing.T) {
	s := New(16)
	rev := ids(1000)
	for i, id := range rev {
		s.Apply(uint64(i), now, Entry{Kind: KindToken, ID: id, Expires: now + 60})
	}
	s.Apply(1001, now, Entry{Kind: KindToken, ID: rev[0], Expires: now + 60}, Entry{Kind: KindAccount, Account: 3, NotBefore: now})
	other := core.NewTokenID()
	if a := testing.AllocsPerRun(1000, func() {
		s.Check(rev[500], 1, now, 1)
		s.Check(rev[0], 1, now, 1)
		s.Check(other, 3, now, 1)
	}); a != 0 {
		t.Fatalf("%.1f allocs per Check", a)
	}
}

func TestMillionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a million-entry set")
	}
	entries := make([]Entry, 1_000_000)
	for i := range entries {
		entries[i] = Entry{Kind: KindToken, ID: core.NewTokenID(), Expires: now + 3600}
	}
	s := New(0)
	start := time.Now()
	s.Load(1, now, entries)
	took := time.Since(start)
	st := s.Stats()
	t.Logf("1M revocations: load %v, filter %.2f MiB, exact %.2f MiB", took, float64(st.FilterBytes)/(1<<20), float64(st.ExactBytes)/(1<<20))
	if st.FilterBytes > 2.5*(1<<20) {
		t.Fatalf("filter %d bytes for 1M entries (bound 2.5 MiB)", st.FilterBytes)
	}
	if took > 10*time.Second { // generous under -race; the benchmark reports the real figure
		t.Fatalf("load took %v", took)
	}
}

func TestFalsePositiveRate(t *testing.T) {
	for _, n := range []int{10_000, 13_000} { // just above and below a power-of-two boundary
		f := newFilter(n)
		for _, id := range ids(n) {
			id := id
			f.add(&id)
		}
		fp := 0
		const probes = 200_000
		for _, id := range ids(probes) {
			id := id
			if f.test(&id) {
				fp++
			}
		}
		rate := float64(fp) / probes
		t.Logf("n=%d: %.2f bits/entry, false-positive rate %.3f%%", n, float64(len(f.words)*64)/float64(n), rate*100)
		if rate > 0.02 {
			t.Fatalf("false-positive rate %.3f", rate)
		}
	}
}
