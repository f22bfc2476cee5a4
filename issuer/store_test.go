package issuer

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
)

func openStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := OpenWith(dir, StoreOptions{Reserve: DefaultReserve})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func signup(t testing.TB, s *Store, email string) *Account {
	t.Helper()
	res, err := s.Submit(&Command{Op: OpSignup, At: time.Now().Unix(), Email: email, Hash: "$argon2id$x"})
	if err != nil {
		t.Fatal(err)
	}
	return res.Account
}

func newRecord(account uint64) *TokenRecord {
	now := time.Now().Unix()
	return &TokenRecord{ID: core.NewTokenID(), Account: account, Name: "t", Type: core.TypeLive,
		Scopes: core.AllScopes, Created: now, ExpiresAt: now + 3600}
}

func TestSignupUniqueCaseInsensitive(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	a := signup(t, s, "Ann@Example.com")
	if a.ID != 2 || s.LastSeq() != 2 { // seq 1 registered the default database
		t.Fatalf("account id %d, seq %d", a.ID, s.LastSeq())
	}
	_, err := s.Submit(&Command{Op: OpSignup, Email: "ann@example.COM", Hash: "h"})
	if !errors.Is(err, ErrEmailTaken) {
		t.Fatalf("duplicate signup: %v", err)
	}
	if s.LastSeq() != 2 {
		t.Fatalf("a refused command took a sequence number: %d", s.LastSeq())
	}
}

func TestRevocationDurableAndLogged(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	acc := signup(t, s, "a@example.com")
	rec := newRecord(acc.ID)
	if _, err := s.Submit(&Command{Op: OpCreateToken, Token: rec}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Submit(&Command{Op: OpRevokeToken, At: time.Now().Unix(), Account: acc.ID, TokenID: rec.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Revocations().Check(rec.ID, acc.ID, rec.Created, 1); got != core.RevokedToken {
		t.Fatalf("view after revoke: %v", got)
	}
	if _, err := s.Submit(&Command{Op: OpRevokeToken, Account: acc.ID, TokenID: rec.ID}); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("second revoke: %v", err)
	}
	// Another account cannot revoke (or see) the token.
	if _, err := s.Submit(&Command{Op: OpRevokeToken, Account: acc.ID + 100, TokenID: rec.ID}); !errors.Is(err, ErrTokenNotFound) {
		t.Fatalf("other account's revoke: %v", err)
	}
	if _, err := s.Submit(&Command{Op: OpLogoutAll, Account: acc.ID, NotBefore: 2000}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Submit(&Command{Op: OpRetireKey, KeyID: 7}); err != nil {
		t.Fatal(err)
	}
	last := s.LastSeq()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, dir)
	defer s.Close()
	if s.LastSeq() != last {
		t.Fatalf("watermark %d after reopen, want %d", s.LastSeq(), last)
	}
	v := s.Revocations()
	if v.Check(rec.ID, acc.ID, 5000, 1) != core.RevokedToken || v.Check(core.TokenID{1}, acc.ID, 1999, 1) != core.RevokedAccount ||
		v.Check(core.TokenID{1}, acc.ID, 2000, 1) != core.NotRevoked || v.Check(core.TokenID{1}, 9, 0, 7) != core.RevokedKey {
		t.Fatal("revocation view not rebuilt from the log")
	}
	entries, wm, err := s.ReadLog(1, 100) // seq 1 registered the default database
	if err != nil {
		t.Fatal(err)
	}
	if wm != last || len(entries) != 3 || entries[0].Kind != LogToken || entries[0].Seq != res.Seq ||
		entries[1].Kind != LogAccount || entries[2].Kind != LogKey {
		t.Fatalf("log %+v at %d", entries, wm)
	}
	tail, _, _ := s.ReadLog(entries[1].Seq, 100)
	if len(tail) != 1 || tail[0].Kind != LogKey {
		t.Fatalf("log after %d: %+v", entries[1].Seq, tail)
	}
}

func TestLogoutAllMovesIssuedAt(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	acc := signup(t, s, "a@example.com")
	now := time.Now().Unix()
	if _, err := s.Submit(&Command{Op: OpLogoutAll, Account: acc.ID, NotBefore: now + 1}); err != nil {
		t.Fatal(err)
	}
	rec := newRecord(acc.ID)
	res, err := s.Submit(&Command{Op: OpCreateToken, Token: rec})
	if err != nil {
		t.Fatal(err)
	}
	if res.Token.Created < now+1 || res.Token.ExpiresAt-res.Token.Created != 3600 {
		t.Fatalf("token minted after logout-all issued at %d (epoch %d)", res.Token.Created, now+1)
	}
	if s.Revocations().Check(rec.ID, acc.ID, res.Token.Created, 1) != core.NotRevoked {
		t.Fatal("a token minted after logout-all is revoked")
	}
}

// TestGroupCommit submits from many goroutines and checks that every
// command got its own sequence number and that groups formed.
func TestGroupCommit(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	acc := signup(t, s, "a@example.com")
	const n = 400
	var wg sync.WaitGroup
	seqs := make([]uint64, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.Submit(&Command{Op: OpCreateToken, Token: newRecord(acc.ID)})
			if err != nil {
				t.Error(err)
			}
			seqs[i] = res.Seq
		}()
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for _, q := range seqs {
		if q == 0 || seen[q] {
			t.Fatalf("sequence number %d missing or repeated", q)
		}
		seen[q] = true
	}
	if s.LastSeq() != n+2 { // the default database, the signup, the tokens
		t.Fatalf("watermark %d, want %d", s.LastSeq(), n+2)
	}
}

func TestRevocationsCheckAllocs(t *testing.T) {
	r := NewRevocations()
	for i := range 1000 {
		r.apply(&LogEntry{Kind: LogToken, Token: core.TokenID{byte(i), byte(i >> 8)}, ExpiresAt: 1 << 40})
	}
	r.apply(&LogEntry{Kind: LogAccount, Account: 5, NotBefore: 100})
	id := core.NewTokenID()
	if a := testing.AllocsPerRun(1000, func() { r.Check(id, 5, 200, 1) }); a != 0 {
		t.Fatalf("Check allocates %v times", a)
	}
	if r.Check(core.TokenID{3}, 1, 0, 1) != core.RevokedToken || r.Check(id, 5, 99, 1) != core.RevokedAccount {
		t.Fatal("wrong answers")
	}
	if n := r.Prune(1 << 41); n != 0 {
		t.Fatalf("%d entries after prune", n)
	}
}

func TestPendingRevocationAfterGrace(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	acc := signup(t, s, "a@example.com")
	old := newRecord(acc.ID)
	if _, err := s.Submit(&Command{Op: OpCreateToken, Token: old}); err != nil {
		t.Fatal(err)
	}
	succ := newRecord(acc.ID)
	at := time.Now().Unix() + 1
	if _, err := s.Submit(&Command{Op: OpRefresh, Account: acc.ID, TokenID: old.ID, Token: succ, RevokeAt: at}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Submit(&Command{Op: OpRefresh, Account: acc.ID, TokenID: old.ID, Token: newRecord(acc.ID), RevokeAt: at}); !errors.Is(err, ErrAlreadyRefreshed) {
		t.Fatalf("second refresh: %v", err)
	}
	// The pending revocation survives a restart and fires after it.
	s.Close()
	s = openStore(t, dir)
	defer s.Close()
	if s.Revocations().Check(old.ID, acc.ID, old.Created, 1) != core.NotRevoked {
		t.Fatal("revoked before the grace period ended")
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Revocations().Check(old.ID, acc.ID, old.Created, 1) != core.RevokedToken {
		if time.Now().After(deadline) {
			t.Fatal("refreshed token not revoked after its grace period")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s.Revocations().Check(succ.ID, acc.ID, succ.Created, 1) != core.NotRevoked {
		t.Fatal("successor revoked")
	}
}
