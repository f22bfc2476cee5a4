package feed

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/revset"
)

// memLog is an in-memory revocation log standing in for the issuer's Pebble
// store (which has its own tests); the feed's server and follower are real.
type memLog struct {
	mu        sync.Mutex
	events    []Event
	seq       uint64
	compacted uint64
	changed   chan struct{}
	snapshots int
}

func newMemLog() *memLog { return &memLog{changed: make(chan struct{})} }

func (l *memLog) add(e Event) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	e.Seq = l.seq
	l.events = append(l.events, e)
	close(l.changed)
	l.changed = make(chan struct{})
	return e.Seq
}

func (l *memLog) LastSeq() uint64 { l.mu.Lock(); defer l.mu.Unlock(); return l.seq }
func (l *memLog) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}
func (l *memLog) Compacted() uint64 { l.mu.Lock(); defer l.mu.Unlock(); return l.compacted }
func (l *memLog) Read(after uint64, limit int) ([]Event, uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	for _, e := range l.events {
		if e.Seq > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, l.seq, nil
}
func (l *memLog) Snapshot() (uint64, []Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.snapshots++
	return l.seq, append([]Event(nil), l.events...), nil
}

type testIssuer struct {
	log  *memLog
	ring *core.Keyring
	url  string
	ln   net.Listener
	stop chan struct{}
	srv  *fasthttp.Server
}

const testKey = "0123456789abcdef0123456789abcdef-cluster"

func startIssuer(t *testing.T, log *memLog, ring *core.Keyring, addr string) *testIssuer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ti := &testIssuer{log: log, ring: ring, ln: ln, stop: make(chan struct{}), url: "http://" + ln.Addr().String()}
	s := &Server{Source: log, Keyring: ring, ClusterKey: testKey, Stop: ti.stop}
	ti.srv = &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/v1/cluster/feed":
			s.ServeFeed(ctx)
		case "/v1/cluster/keys":
			s.ServeKeys(ctx)
		default:
			ctx.NotFound()
		}
	}}
	go ti.srv.Serve(ln)
	return ti
}

func (ti *testIssuer) close() {
	close(ti.stop)
	ti.ln.Close()
	_ = ti.srv.Shutdown()
}

func follower(t *testing.T, url, state string, stale time.Duration) (*Follower, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f, err := NewFollower(ctx, FollowerConfig{IssuerURL: url, ClusterKey: testKey, StatePath: state, StaleAfter: stale})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return f, func() { cancel(); <-done }
}

func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

func TestFollowSnapshotThenDeltas(t *testing.T) {
	log := newMemLog()
	exp := time.Now().Add(time.Hour).Unix()
	early := core.NewTokenID()
	log.add(Event{Kind: KindToken, Token: early, Expires: exp})
	iss := startIssuer(t, log, core.GenerateKeyring(time.Now()), "127.0.0.1:0")
	defer iss.close()
	f, _ := follower(t, iss.url, "", 0)
	if f.Keyring().Signing().Secret != iss.ring.Signing().Secret {
		t.Fatal("node keyring differs from the issuer's")
	}
	waitFor(t, "snapshot", f.Ready)
	if f.Check(early, 1, 0, 1) != core.RevokedToken {
		t.Fatal("snapshot entry missing")
	}
	var worst time.Duration
	for i := 0; i < 50; i++ {
		id := core.NewTokenID()
		log.add(Event{Kind: KindToken, Token: id, Expires: exp})
		worst = max(worst, waitFor(t, "delta", func() bool { return f.Check(id, 1, 0, 1) == core.RevokedToken }))
	}
	t.Logf("worst propagation of 50 deltas in process: %v", worst)
	log.add(Event{Kind: KindAccount, Account: 9, NotBefore: 100})
	log.add(Event{Kind: KindKey, KeyID: 4})
	waitFor(t, "account epoch", func() bool { return f.Check(core.NewTokenID(), 9, 99, 1) == core.RevokedAccount })
	waitFor(t, "retired key", func() bool { return f.Check(core.NewTokenID(), 1, 0, 4) == core.RevokedKey })
	if applied, _ := f.Seq(); applied != log.LastSeq() {
		waitFor(t, "seq", func() bool { a, _ := f.Seq(); return a == log.LastSeq() })
	}
}

func TestRestartCatchesUpWithoutSnapshot(t *testing.T) {
	log := newMemLog()
	exp := time.Now().Add(time.Hour).Unix()
	iss := startIssuer(t, log, core.GenerateKeyring(time.Now()), "127.0.0.1:0")
	defer iss.close()
	state := filepath.Join(t.TempDir(), "feed-state")
	a := core.NewTokenID()
	log.add(Event{Kind: KindToken, Token: a, Expires: exp})
	f, stop := follower(t, iss.url, state, 0)
	waitFor(t, "first", func() bool { return f.Check(a, 1, 0, 1) == core.RevokedToken })
	stop() // persists on the way out
	b := core.NewTokenID()
	log.add(Event{Kind: KindToken, Token: b, Expires: exp}) // while the node is down
	snaps := log.snapshots
	g, _ := follower(t, iss.url, state, 0)
	if g.Check(a, 1, 0, 1) != core.RevokedToken {
		t.Fatal("persisted state not loaded before following")
	}
	waitFor(t, "catch-up", func() bool { return g.Check(b, 1, 0, 1) == core.RevokedToken })
	if log.snapshots != snaps {
		t.Fatal("a restarted node within the log's reach asked for a snapshot")
	}
}

func TestCompactedLogSendsSnapshot(t *testing.T) {
	log := newMemLog()
	exp := time.Now().Add(time.Hour).Unix()
	iss := startIssuer(t, log, core.GenerateKeyring(time.Now()), "127.0.0.1:0")
	defer iss.close()
	state := filepath.Join(t.TempDir(), "feed-state")
	if err := saveState(state, 1, []revset.Entry{{Kind: revset.KindToken, ID: core.NewTokenID(), Expires: exp}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		log.add(Event{Kind: KindToken, Token: core.NewTokenID(), Expires: exp})
	}
	log.mu.Lock()
	log.compacted = 5 // entries up to 5 are gone; the node is at 1
	log.mu.Unlock()
	f, _ := follower(t, iss.url, state, 0)
	waitFor(t, "snapshot after gap", func() bool { a, _ := f.Seq(); return a == 10 })
	if log.snapshots != 1 {
		t.Fatalf("%d snapshots served", log.snapshots)
	}
	if st := f.Set().Stats(); st.Tokens != 10 {
		t.Fatalf("set after snapshot: %+v", st)
	}
}

func TestFailsClosedWhenIssuerUnreachable(t *testing.T) {
	log := newMemLog()
	iss := startIssuer(t, log, core.GenerateKeyring(time.Now()), "127.0.0.1:0")
	addr := iss.ln.Addr().String()
	f, _ := follower(t, iss.url, "", 400*time.Millisecond)
	waitFor(t, "ready", f.Ready)
	id := core.NewTokenID()
	iss.close()
	if f.Check(id, 1, 0, 1) != core.NotRevoked {
		t.Fatal("node stopped answering at once")
	}
	waitFor(t, "fail closed", f.Stale)
	if f.Check(id, 1, 0, 1) != core.RevocationUnavailable {
		t.Fatal("stale node still answers")
	}
	iss2 := startIssuer(t, log, iss.ring, addr)
	defer iss2.close()
	waitFor(t, "recovery", func() bool { return !f.Stale() })
	if f.Check(id, 1, 0, 1) != core.NotRevoked {
		t.Fatal("node did not recover")
	}
}

func TestClusterKeyRequired(t *testing.T) {
	iss := startIssuer(t, newMemLog(), core.GenerateKeyring(time.Now()), "127.0.0.1:0")
	defer iss.close()
	for _, key := range []string{"", "wrong-key-wrong-key-wrong-key-wrong", testKey + "x"} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := NewFollower(ctx, FollowerConfig{IssuerURL: iss.url, ClusterKey: key})
		cancel()
		if err == nil {
			t.Fatalf("key %q accepted", key)
		}
	}
}

func TestFrameRoundTrip(t *testing.T) {
	events := []Event{
		{Kind: KindToken, Seq: 1, Token: core.NewTokenID(), Expires: 1 << 40},
		{Kind: KindAccount, Seq: 2, Account: 77, NotBefore: 123},
		{Kind: KindKey, Seq: 3, KeyID: 9},
		{Kind: KindHeartbeat, Seq: 4, Time: 5},
		{Kind: KindSnapshotBegin, Seq: 5, Count: 6},
		{Kind: KindSnapshotEnd, Seq: 6},
		{Kind: KindKeyring, Seq: 7},
		{Kind: KindIPPolicy, Seq: 8, Token: core.NewTokenID(), Expires: 9, IPs: []netip.Prefix{netip.MustParsePrefix("203.0.113.50/32"), netip.MustParsePrefix("2001:db8::/32")}},
	}
	var b []byte
	for i := range events {
		b = AppendFrame(b, &events[i])
	}
	r := bufio.NewReader(bytes.NewReader(b))
	var buf []byte
	for _, want := range events {
		var got Event
		var err error
		buf, err = ReadFrame(r, buf, &got)
		if err != nil {
			t.Fatal(err)
		}
		if got.Kind != want.Kind || got.Seq != want.Seq || got.Token != want.Token || got.Expires != want.Expires ||
			got.Account != want.Account || got.NotBefore != want.NotBefore || got.KeyID != want.KeyID ||
			got.Time != want.Time || got.Count != want.Count || len(got.IPs) != len(want.IPs) {
			t.Fatalf("got %+v want %+v", got, want)
		}
		for i := range want.IPs {
			if got.IPs[i] != want.IPs[i] {
				t.Fatalf("ip %v want %v", got.IPs[i], want.IPs[i])
			}
		}
	}
	for _, bad := range [][]byte{{0, 0, 0, 1, 1}, {0xff, 0xff, 0xff, 0xff}, {0, 0, 0, 9, 1, 0, 0, 0, 0, 0, 0, 0, 1}} {
		var e Event
		if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(bad)), nil, &e); err == nil {
			t.Fatalf("%x decoded", bad)
		}
	}
}

// FuzzReadFrame: any byte stream decodes to frames or an error, never a
// panic, and a decoded frame re-encodes to a frame that decodes the same.
func FuzzReadFrame(f *testing.F) {
	for _, e := range []Event{
		{Kind: KindToken, Seq: 1, Expires: 5},
		{Kind: KindIPPolicy, Seq: 2, IPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		{Kind: KindHeartbeat, Seq: 3, Time: 4},
	} {
		f.Add(AppendFrame(nil, &e))
	}
	f.Add([]byte{0, 0, 0, 9, 8, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		var buf []byte
		for {
			var e Event
			var err error
			if buf, err = ReadFrame(r, buf, &e); err != nil {
				return
			}
			again := AppendFrame(nil, &e)
			var back Event
			if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(again)), nil, &back); err != nil {
				t.Fatalf("re-encoded frame %x does not decode: %v", again, err)
			}
			if back.Kind != e.Kind || back.Seq != e.Seq || len(back.IPs) != len(e.IPs) {
				t.Fatalf("round trip %+v → %+v", e, back)
			}
		}
	})
}
