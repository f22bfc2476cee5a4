package issuer

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/keyfile"
	"github.com/heliosdb/auth/issuer/feed"
)

// kinds returns the kinds of events, in order.
func kinds(events []feed.Event) []feed.Kind {
	out := make([]feed.Kind, len(events))
	for i := range events {
		out[i] = events[i].Kind
	}
	return out
}

func TestFeedSourceReadAndSnapshot(t *testing.T) {
	f := newFixture(t, nil)
	src := f.store.FeedSource()
	acc := signup(t, f.store, "a@example.com")
	now := time.Now().Unix()
	withIPs := newRecord(acc.ID)
	withIPs.AllowedIPs = []string{"10.0.0.0/8", "203.0.113.5"}
	withIPs.Flags = core.FlagIPPolicy
	plain := newRecord(acc.ID)
	for _, c := range []*Command{
		{Op: OpCreateToken, Token: withIPs},
		{Op: OpCreateToken, Token: plain},
		{Op: OpRevokeToken, At: now, Account: acc.ID, TokenID: plain.ID},
		{Op: OpLogoutAll, Account: acc.ID, NotBefore: now - 10},
		{Op: OpCreateDatabase, Database: "scratch", Test: true},
		{Op: OpKeyring, KeyID: 2},
		{Op: OpRetireKey, KeyID: 1},
	} {
		if _, err := f.store.Submit(c); err != nil {
			t.Fatal(err)
		}
	}
	events, wm, err := src.Read(0, 100)
	if err != nil || wm != src.LastSeq() {
		t.Fatal(err, wm)
	}
	want := []feed.Kind{feed.KindDatabase, feed.KindIPPolicy, feed.KindToken, feed.KindAccount, feed.KindDatabase, feed.KindKeyring, feed.KindKey}
	if got := kinds(events); len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i, k := range want {
		if events[i].Kind != k {
			t.Fatalf("event %d: %v, want %v (%v)", i, events[i].Kind, k, kinds(events))
		}
	}
	if ip := events[1]; ip.Token != withIPs.ID || len(ip.IPs) != 2 || !ip.IPs[1].Contains(netip.MustParseAddr("203.0.113.5")) || ip.Expires != withIPs.ExpiresAt {
		t.Fatalf("ip event %+v", ip)
	}
	if db := events[4]; db.Database != "scratch" || !db.Test {
		t.Fatalf("database event %+v", db)
	}
	// A batch cut by limit resumes where it stopped.
	first, _, _ := src.Read(0, 2)
	rest, _, _ := src.Read(first[1].Seq, 100)
	if len(first)+len(rest) != len(events) {
		t.Fatalf("paged read: %d + %d events", len(first), len(rest))
	}

	seq, snap, err := src.Snapshot()
	if err != nil || seq != src.LastSeq() {
		t.Fatal(err, seq)
	}
	count := map[feed.Kind]int{}
	for _, e := range snap {
		count[e.Kind]++
	}
	if count[feed.KindToken] != 1 || count[feed.KindAccount] != 1 || count[feed.KindKey] != 1 ||
		count[feed.KindIPPolicy] != 1 || count[feed.KindDatabase] != 2 {
		t.Fatalf("snapshot %v", count)
	}
	// The policy set serves the process's own gateway.
	if !f.store.Policy().AllowedFrom(withIPs.ID, netip.MustParseAddr("10.9.9.9")) || !f.store.Policy().IsTestDatabase([]byte("scratch")) ||
		f.store.Policy().IsTestDatabase([]byte("main")) {
		t.Fatal("policy set not fed by the apply path")
	}
}

func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	acc := signup(t, s, "a@example.com")
	for _, r := range []*TokenRecord{newRecord(acc.ID), newRecord(acc.ID)} {
		if _, err := s.Submit(&Command{Op: OpCreateToken, Token: r}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Submit(&Command{Op: OpRevokeToken, Account: acc.ID, TokenID: r.ID}); err != nil {
			t.Fatal(err)
		}
	}
	before, _, _ := s.ReadLog(0, 100)
	if n, err := s.Compact(time.Now()); err != nil || n != 0 {
		t.Fatalf("nothing expired yet, compacted %d, %v", n, err)
	}
	n, err := s.Compact(time.Now().Add(2 * time.Hour)) // both tokens have expired by then
	if err != nil || n != 2 {
		t.Fatalf("compacted %d, %v", n, err)
	}
	after, _, _ := s.ReadLog(0, 100)
	if len(after) != len(before)-2 || s.Compacted() == 0 {
		t.Fatalf("log %d → %d entries, compacted %d", len(before), len(after), s.Compacted())
	}
	if n, _ := s.Compact(time.Now().Add(2 * time.Hour)); n != 0 {
		t.Fatalf("second compaction dropped %d", n)
	}
	compacted := s.Compacted()
	s.Close()
	s = openStore(t, dir)
	defer s.Close()
	if s.Compacted() != compacted {
		t.Fatalf("compacted watermark %d after reopen, want %d", s.Compacted(), compacted)
	}
	// A follower behind the watermark gets a snapshot from the server.
	if s.FeedSource().Compacted() < 1 {
		t.Fatal("feed source does not report compaction")
	}
}

func TestDatabases(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	o := DefaultOptions()
	o.Password = fastPasswords
	svc := NewService(s, core.GenerateKeyring(time.Now()), o)
	live := &core.Claims{Type: core.TypeLive, Account: 1}
	test := &core.Claims{Type: core.TypeTest, Account: 1, Flags: core.FlagTestOnly}
	if got := svc.ListDatabases(live); len(got) != 1 || got[0].Name != DefaultDatabase || got[0].Test {
		t.Fatalf("default registry %+v", got)
	}
	for _, c := range []struct {
		claims *core.Claims
		req    CreateDatabaseRequest
		code   string
	}{
		{live, CreateDatabaseRequest{Name: ""}, CodeInvalidDatabase},
		{live, CreateDatabaseRequest{Name: "1abc"}, CodeInvalidDatabase},
		{live, CreateDatabaseRequest{Name: "a b"}, CodeInvalidDatabase},
		{live, CreateDatabaseRequest{Name: "main"}, CodeDatabaseExists},
		{test, CreateDatabaseRequest{Name: "prod"}, core.CodeForbidden},
	} {
		if _, err := svc.CreateDatabase(c.claims, &c.req); apiCode(err) != c.code {
			t.Errorf("create %+v: %v, want %s", c.req, err, c.code)
		}
	}
	if _, err := svc.CreateDatabase(test, &CreateDatabaseRequest{Name: "scratch", Test: true}); err != nil {
		t.Fatal(err)
	}
	if got := svc.ListDatabases(test); len(got) != 1 || got[0].Name != "scratch" {
		t.Fatalf("a test token lists %+v", got)
	}
	if _, err := svc.DeleteDatabase(test, "main"); apiCode(err) != core.CodeForbidden {
		t.Fatalf("test token deleting main: %v", err)
	}
	if _, err := svc.DeleteDatabase(live, "absent"); apiCode(err) != CodeDatabaseNotFound {
		t.Fatalf("delete unknown: %v", err)
	}
	if _, err := svc.DeleteDatabase(live, "main"); err != nil {
		t.Fatal(err)
	}
	svc.Close()
	s.Close()
	// A deleted default database stays deleted; the rest survives a restart.
	s = openStore(t, dir)
	defer s.Close()
	if _, ok := s.pol.db("main"); ok {
		t.Fatal("the default database came back after a restart")
	}
	if d, ok := s.pol.db("scratch"); !ok || !d.Test || !s.Policy().IsTestDatabase([]byte("scratch")) {
		t.Fatal("test database lost across a restart")
	}
}

func TestKeyRotationAndRetirement(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyring.json")
	f := newFixture(t, func(o *Options) { o.KeyringPath = path })
	if err := keyfile.Save(path, f.ring); err != nil {
		t.Fatal(err)
	}
	old := f.ring.Signing().ID
	if _, err := f.svc.RetireKeyID(old); apiCode(err) != CodeSigningKey {
		t.Fatalf("retiring the signing key: %v", err)
	}
	if _, err := f.svc.RetireKeyID(99); apiCode(err) != CodeKeyNotFound {
		t.Fatalf("retiring an unknown key: %v", err)
	}
	id, seq, err := f.svc.RotateKey()
	if err != nil || id == old || f.ring.Signing().ID != id {
		t.Fatalf("rotate: %d %d %v", id, seq, err)
	}
	saved, err := keyfile.Load(path)
	if err != nil || saved.Signing().ID != id || saved.Lookup(old) == nil {
		t.Fatalf("keyring file after rotation: %v", err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("keyring file mode %v", st.Mode().Perm())
	}
	if _, err := f.svc.RetireKeyID(old); err != nil {
		t.Fatal(err)
	}
	saved, _ = keyfile.Load(path)
	if !saved.Lookup(old).Retired || f.store.Revocations().Check(core.TokenID{}, 0, 0, old) != core.RevokedKey {
		t.Fatal("retired key not in the file or the revocation view")
	}
	events, _, _ := f.store.FeedSource().Read(seq-1, 10)
	if len(events) != 3 || events[0].Kind != feed.KindKeyring || events[0].KeyID != id || events[1].Kind != feed.KindKey ||
		events[1].KeyID != old || events[2].Kind != feed.KindKeyring {
		t.Fatalf("feed after rotation and retirement: %+v", events)
	}
}
