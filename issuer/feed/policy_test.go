package feed

import (
	"bufio"
	"bytes"
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
)

func TestDatabaseFrameRoundTrip(t *testing.T) {
	for _, e := range []Event{
		{Kind: KindDatabase, Seq: 7, Database: "analytics_test", Test: true},
		{Kind: KindDatabase, Seq: 8, Database: "main", Deleted: true},
	} {
		frame := AppendFrame(nil, &e)
		var got Event
		if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(frame)), nil, &got); err != nil {
			t.Fatal(err)
		}
		if got.Kind != e.Kind || got.Seq != e.Seq || got.Database != e.Database || got.Test != e.Test || got.Deleted != e.Deleted {
			t.Fatalf("round trip %+v → %+v", e, got)
		}
	}
	// A name longer than its length byte says is malformed.
	bad := AppendFrame(nil, &Event{Kind: KindDatabase, Seq: 1, Database: "abc"})
	bad[len(bad)-4] = 200
	var e Event
	if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(bad)), nil, &e); err == nil {
		t.Fatal("truncated database frame accepted")
	}
}

// TestSnapshotPolicyReachesOnEvent: a follower that starts from a snapshot
// passes its policy events to OnEvent between KindSnapshotBegin and
// KindSnapshotEnd, and later ones as they come; with SnapshotOnStart a
// restarted follower asks for a snapshot despite its persisted state.
func TestSnapshotPolicyReachesOnEvent(t *testing.T) {
	log := newMemLog()
	ring := core.GenerateKeyring(time.Now())
	tok := core.NewTokenID()
	log.add(Event{Kind: KindIPPolicy, Token: tok, Expires: time.Now().Unix() + 60, IPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	log.add(Event{Kind: KindDatabase, Database: "scratch", Test: true})
	ti := startIssuer(t, log, ring, "127.0.0.1:0")
	defer ti.close()
	state := t.TempDir() + "/state"

	run := func() ([]Kind, func()) {
		var mu sync.Mutex
		var seen []Kind
		ctx, cancel := context.WithCancel(context.Background())
		f, err := NewFollower(ctx, FollowerConfig{IssuerURL: ti.url, ClusterKey: testKey, StatePath: state, SnapshotOnStart: true,
			OnEvent: func(e *Event) { mu.Lock(); seen = append(seen, e.Kind); mu.Unlock() }})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { f.Run(ctx); close(done) }()
		var n int
		waitFor(t, "snapshot", func() bool {
			mu.Lock()
			defer mu.Unlock()
			n = len(seen)
			return n > 0 && seen[n-1] == KindSnapshotEnd
		})
		log.add(Event{Kind: KindDatabase, Database: "other"})
		waitFor(t, "delta", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) > n })
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return append([]Kind(nil), seen...), cancel
	}
	for round := range 2 {
		seen, _ := run()
		want := []Kind{KindSnapshotBegin, KindIPPolicy, KindDatabase, KindSnapshotEnd, KindDatabase}
		if round == 1 {
			// The persisted state was loaded, and the snapshot came anyway.
			want = []Kind{KindSnapshotBegin, KindIPPolicy, KindDatabase, KindDatabase, KindSnapshotEnd, KindDatabase}
		}
		if len(seen) < len(want) {
			t.Fatalf("round %d: OnEvent saw %v, want %v", round, seen, want)
		}
		for i := range want {
			if seen[i] != want[i] {
				t.Fatalf("round %d: OnEvent saw %v, want %v", round, seen, want)
			}
		}
	}
}
