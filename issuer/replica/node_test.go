package replica

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/issuer"
)

const testKey = "test-cluster-key-0123456789abcdef"

type replicaT struct {
	id, addr, dir string
	store         *issuer.Store
	node          *Node
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (r *replicaT) start(t testing.TB, peers []Peer, key string, tweak func(*Config)) {
	t.Helper()
	st, err := issuer.OpenWith(filepath.Join(r.dir, "issuer"), issuer.StoreOptions{Replicated: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{ID: r.id, Listen: r.addr, Peers: peers, Dir: filepath.Join(r.dir, "raft"), ClusterKey: key, Store: st,
		// 1s, not heliosd's 300ms: three replicas in one process under
		// the race detector on a loaded machine miss heartbeats.
		ElectionTimeout: time.Second, ApplyTimeout: 5 * time.Second, Logger: testLogger()}
	if tweak != nil {
		tweak(&cfg)
	}
	n, err := Start(cfg)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	r.store, r.node = st, n
}

func (r *replicaT) stop(t testing.TB) {
	t.Helper()
	if r.node == nil {
		return
	}
	if err := r.node.Shutdown(); err != nil {
		t.Errorf("%s: shutdown: %v", r.id, err)
	}
	if err := r.store.Close(); err != nil {
		t.Errorf("%s: close: %v", r.id, err)
	}
	r.node, r.store = nil, nil
}

func cluster(t testing.TB, n int, tweak func(*Config)) []*replicaT {
	t.Helper()
	var rs []*replicaT
	var peers []Peer
	for i := range n {
		r := &replicaT{id: fmt.Sprintf("r%d", i+1), addr: freeAddr(t), dir: t.TempDir()}
		rs = append(rs, r)
		peers = append(peers, Peer{r.id, r.addr})
	}
	for _, r := range rs {
		r.start(t, peers, testKey, tweak)
	}
	t.Cleanup(func() {
		for _, r := range rs {
			r.stop(t)
		}
	})
	leaderOf(t, rs)
	return rs
}

func leaderOf(t testing.TB, rs []*replicaT) *replicaT {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range rs {
			if r.node != nil && r.node.IsLeader() && r.node.ready.Load() {
				return r
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no leader within 10s")
	return nil
}

// logOf reads a replica's whole revocation log.
func logOf(t *testing.T, s *issuer.Store) []issuer.LogEntry {
	t.Helper()
	entries, _, err := s.ReadLog(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// converge waits until every replica's store has seq want.
func converge(t *testing.T, rs []*replicaT, want uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, r := range rs {
		for r.store.LastSeq() < want {
			if time.Now().After(deadline) {
				t.Fatalf("%s at seq %d, want %d", r.id, r.store.LastSeq(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func signupAndToken(t *testing.T, s *issuer.Store, email string) (uint64, core.TokenID) {
	t.Helper()
	var res issuer.Result
	var err error
	for attempt := 0; ; attempt++ {
		// An election meanwhile leaves the outcome unknown: sign up
		// again under another address rather than find this one taken.
		res, err = s.Submit(&issuer.Command{Op: issuer.OpSignup, At: time.Now().Unix(), Email: fmt.Sprintf("%d.%s", attempt, email), Hash: "x"})
		if !errors.Is(err, issuer.ErrNoQuorum) {
			break
		}
	}
	if err != nil {
		t.Fatalf("signup %s: %v", email, err)
	}
	acc := res.Account.ID
	id := core.NewTokenID()
	now := time.Now().Unix()
	if _, err := submit(s, &issuer.Command{Op: issuer.OpCreateToken, At: now, Token: &issuer.TokenRecord{ID: id, Account: acc,
		Type: core.TypeLive, Created: now, ExpiresAt: now + 3600}}); err != nil {
		t.Fatalf("create token: %v", err)
	}
	return acc, id
}

// TestReplicasApplyTheSameLog: commands submitted on every replica (the
// followers forward them) are applied by all three with the same dense
// sequence numbers; a command's own error (a taken email, a token
// already revoked) crosses the forward as the same error; reads after the
// read fence on a follower see a write made a moment before on another.
func TestReplicasApplyTheSameLog(t *testing.T) {
	rs := cluster(t, 3, nil)
	var toks []core.TokenID
	var accs []uint64
	for i, r := range rs {
		acc, id := signupAndToken(t, r.store, fmt.Sprintf("u%d@example.com", i))
		accs, toks = append(accs, acc), append(toks, id)
	}
	for i, r := range rs {
		j := (i + 1) % len(rs)
		if _, err := submit(r.store, &issuer.Command{Op: issuer.OpRevokeToken, At: time.Now().Unix(), Account: accs[j], TokenID: toks[j]}); err != nil && !errors.Is(err, issuer.ErrTokenRevoked) {
			t.Fatalf("revoke on %s: %v", r.id, err)
		}
	}
	_, err := submit(rs[1].store, &issuer.Command{Op: issuer.OpRevokeToken, At: time.Now().Unix(), Account: accs[0], TokenID: toks[0]})
	if !errors.Is(err, issuer.ErrTokenRevoked) {
		t.Fatalf("revoking twice through a follower: %v, want ErrTokenRevoked", err)
	}
	_, err = submit(rs[2].store, &issuer.Command{Op: issuer.OpSignup, At: time.Now().Unix(), Email: "0.u0@example.com", Hash: "x"})
	if !errors.Is(err, issuer.ErrEmailTaken) {
		t.Fatalf("a taken email through a follower: %v, want ErrEmailTaken", err)
	}
	want := rs[0].store.LastSeq()
	converge(t, rs, want)
	ref := logOf(t, rs[0].store)
	for _, r := range rs {
		if r.store.LastSeq() != want {
			t.Fatalf("%s at seq %d, %s at %d", r.id, r.store.LastSeq(), rs[0].id, want)
		}
		got := logOf(t, r.store)
		if !slices.EqualFunc(got, ref, func(a, b issuer.LogEntry) bool { return a.Seq == b.Seq && a.Kind == b.Kind && a.Token == b.Token }) {
			t.Fatalf("%s log %+v differs from %+v", r.id, got, ref)
		}
		for i := range toks {
			if st := r.store.Revocations().Check(toks[i], accs[i], 0, 0); st != core.RevokedToken {
				t.Fatalf("%s: token %d not revoked", r.id, i)
			}
		}
	}
	// The default database was created once, by the leader.
	dbs := 0
	for _, e := range ref {
		if e.Kind == issuer.LogDatabase {
			dbs++
		}
	}
	if dbs != 1 {
		t.Fatalf("%d database entries in the log, want 1 (the default database, once)", dbs)
	}
	// Sequence numbers are dense among the log's entries' commands.
	for i := 1; i < len(ref); i++ {
		if ref[i].Seq <= ref[i-1].Seq {
			t.Fatalf("log not increasing at %d: %d after %d", i, ref[i].Seq, ref[i-1].Seq)
		}
	}
	for _, r := range rs {
		if err := r.store.ReadFence(); err != nil {
			t.Fatalf("read fence on %s: %v", r.id, err)
		}
	}
}

// TestLeaderLossAndSnapshotCatchUp: the leader stops, the two others
// elect and keep taking writes; the stopped replica, started again after
// the log was compacted into a snapshot, catches up from it and has the
// same revocations.
func TestLeaderLossAndSnapshotCatchUp(t *testing.T) {
	rs := cluster(t, 3, snapEarly)
	acc, _ := signupAndToken(t, rs[0].store, "a@example.com")
	old := leaderOf(t, rs)
	var peers []Peer
	for _, r := range rs {
		peers = append(peers, Peer{r.id, r.addr})
	}
	old.stop(t)
	var live []*replicaT
	for _, r := range rs {
		if r != old {
			live = append(live, r)
		}
	}
	leaderOf(t, live)
	var toks []core.TokenID
	var wg sync.WaitGroup
	var mu sync.Mutex
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 40 {
				id := core.NewTokenID()
				now := time.Now().Unix()
				s := live[w%2].store
				if _, err := submit(s, &issuer.Command{Op: issuer.OpCreateToken, At: now, Token: &issuer.TokenRecord{ID: id, Account: acc,
					Type: core.TypeLive, Created: now, ExpiresAt: now + 3600}}); err != nil {
					t.Error(err)
					return
				}
				if _, err := submit(s, &issuer.Command{Op: issuer.OpRevokeToken, At: now, Account: acc, TokenID: id}); err != nil && !errors.Is(err, issuer.ErrTokenRevoked) {
					t.Error(err)
					return
				}
				mu.Lock()
				toks = append(toks, id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Wait for a snapshot on the live replicas, so the returning one
	// cannot be served from the log alone.
	time.Sleep(500 * time.Millisecond)
	old.start(t, peers, testKey, snapEarly)
	want := live[0].store.LastSeq()
	converge(t, rs, want)
	for _, id := range toks {
		if st := old.store.Revocations().Check(id, acc, 0, 0); st != core.RevokedToken {
			t.Fatalf("the returning replica misses revocation %s", id)
		}
	}
	if old.node.fsm.restores.Load() == 0 {
		t.Fatal("the returning replica caught up without installing a snapshot: the test did not test that")
	}
	if got, ref := len(logOf(t, old.store)), len(logOf(t, live[0].store)); got != ref {
		t.Fatalf("returning replica has %d log entries, the others %d", got, ref)
	}
}

// snapEarly makes replicas snapshot after 32 entries, checked every 100ms.
func snapEarly(c *Config) {
	c.SnapshotThreshold, c.TrailingLogs, c.SnapshotInterval = 32, 8, 100*time.Millisecond
}

// TestWrongClusterKeyRefused: a replica with another cluster key cannot
// take part (mutual TLS fails) and the cluster goes on without it.
func TestWrongClusterKeyRefused(t *testing.T) {
	a := &replicaT{id: "a", addr: freeAddr(t), dir: t.TempDir()}
	b := &replicaT{id: "b", addr: freeAddr(t), dir: t.TempDir()}
	peers := []Peer{{"a", a.addr}, {"b", b.addr}}
	a.start(t, peers, testKey, nil)
	defer a.stop(t)
	b.start(t, peers, "another-key-entirely-0123456789", nil)
	defer b.stop(t)
	time.Sleep(2 * time.Second)
	for _, r := range []*replicaT{a, b} {
		if r.node.IsLeader() {
			t.Fatalf("%s became leader of a two-voter cluster whose other voter has another key", r.id)
		}
	}
	_, err := a.store.Submit(&issuer.Command{Op: issuer.OpSignup, At: 1, Email: "x@example.com", Hash: "x"})
	if !errors.Is(err, issuer.ErrNoQuorum) {
		t.Fatalf("a write without a quorum: %v, want ErrNoQuorum", err)
	}
}

// testLogger writes the replicas' warnings to stderr when
// HELIOS_TEST_LOG is set (debugging), else nowhere.
func testLogger() *slog.Logger {
	if os.Getenv("HELIOS_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// TestSingleIssuerStoreRefused: a data directory that holds a single
// issuer's store cannot become a replica (the others would not have its
// accounts).
func TestSingleIssuerStoreRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "issuer")
	st, err := issuer.OpenWith(dir, issuer.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Submit(&issuer.Command{Op: issuer.OpSignup, At: 1, Email: "a@example.com", Hash: "x"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = issuer.OpenWith(dir, issuer.StoreOptions{Replicated: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	addr := freeAddr(t)
	_, err = Start(Config{ID: "a", Listen: addr, Peers: []Peer{{"a", addr}}, Dir: t.TempDir(), ClusterKey: testKey, Store: st})
	if err == nil || !strings.Contains(err.Error(), "single issuer's store") {
		t.Fatalf("Start on a single issuer's store: %v", err)
	}
}
