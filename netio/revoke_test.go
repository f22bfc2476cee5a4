package netio

import (
	"bufio"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
)

// revokeCfg has a slow tick and sweep, so that only the revocation path can
// end a session within the tests' bounds.
// revokeBound is how soon a revocation must end the sessions it names: far
// below the configured Sweep (a minute), so a pass proves the push, with
// room for a machine loaded by the rest of the suite (50 ms failed there).
const revokeBound = 500 * time.Millisecond

func revokeCfg() Config {
	return Config{HandshakeTimeout: 5 * time.Second, IdleTimeout: time.Minute, Tick: time.Second, Sweep: time.Minute,
		Logger: slog.New(slog.DiscardHandler)}
}

// mint returns a token for claims based on the fixture's (fresh id).
func (f *fixture) mint(t *testing.T, edit func(c *core.Claims)) (string, core.Claims) {
	t.Helper()
	now := time.Now().Unix()
	c := core.Claims{Type: core.TypeLive, ID: core.NewTokenID(), Account: 1, IssuedAt: now, ExpiresAt: now + 3600, Scopes: core.AllScopes}
	if edit != nil {
		edit(&c)
	}
	tok, c, err := core.NewMinter(f.ring).Mint(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	return string(tok), c
}

// lineClient is one authenticated client of the line protocol.
type lineClient struct {
	c net.Conn
	r *bufio.Reader
}

// authPlain opens a plaintext session with tok.
func authPlain(t *testing.T, addr, tok string) *lineClient {
	t.Helper()
	c, r := dialLine(t, addr)
	c.Write([]byte("AUTH " + tok + "\n"))
	expect(t, r, "OK")
	return &lineClient{c, r}
}

// authTLS opens a session with tok after STARTTLS (a TLS goroutine's).
func authTLS(t *testing.T, addr, tok string) *lineClient {
	t.Helper()
	c, r := dialLine(t, addr)
	c.Write([]byte("STARTTLS\n"))
	expect(t, r, "OK tls")
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	tc.Write([]byte("AUTH " + tok + "\n"))
	tr := bufio.NewReader(tc)
	expect(t, tr, "OK")
	return &lineClient{tc, tr}
}

// alive checks that the session still echoes.
func (lc *lineClient) alive(t *testing.T) {
	t.Helper()
	lc.c.Write([]byte("PING\n"))
	expect(t, lc.r, "PING")
}

// ended checks that the session gets Terminate's words for err within d.
func (lc *lineClient) ended(t *testing.T, err error, d time.Duration) {
	t.Helper()
	_ = lc.c.SetReadDeadline(time.Now().Add(d))
	expect(t, lc.r, "ERR ended "+err.Error())
	_ = lc.c.SetReadDeadline(time.Now().Add(time.Second))
	if _, e := lc.r.ReadByte(); e == nil {
		t.Fatal("connection not closed after Terminate")
	}
}

// TestRevokeTokenEndsThatSessionOnly: revoking one token ends its sessions,
// plaintext and TLS, within revokeBound, and no other session.
func TestRevokeTokenEndsThatSessionOnly(t *testing.T) {
	f := startLine(t, revokeCfg(), lineProto{})
	other, _ := f.mint(t, nil)
	a, atls := authPlain(t, f.addr, f.token), authTLS(t, f.addr, f.token)
	b, btls := authPlain(t, f.addr, other), authTLS(t, f.addr, other)
	f.revs.RevokeToken(f.id, f.exp)
	f.gw.Revoke(Revocation{Kind: RevokeToken, Token: f.id})
	a.ended(t, core.ErrRevoked, revokeBound)
	atls.ended(t, core.ErrRevoked, revokeBound)
	b.alive(t)
	btls.alive(t)
	waitOpen(t, f.gw, 2)
}

// TestRevokeAccountEndsOlderSessionsOnly: logout-all ends the account's
// sessions whose tokens were issued before the epoch, on both paths, and
// spares a newer token and another account.
func TestRevokeAccountEndsOlderSessionsOnly(t *testing.T) {
	f := startLine(t, revokeCfg(), lineProto{})
	now := time.Now().Unix()
	oldTok, _ := f.mint(t, func(c *core.Claims) { c.Account, c.IssuedAt = 7, now-100 })
	newTok, _ := f.mint(t, func(c *core.Claims) { c.Account = 7 })
	otherTok, _ := f.mint(t, func(c *core.Claims) { c.Account, c.IssuedAt = 8, now-100 })
	old, oldTLS := authPlain(t, f.addr, oldTok), authTLS(t, f.addr, oldTok)
	young, youngTLS := authPlain(t, f.addr, newTok), authTLS(t, f.addr, newTok)
	other := authPlain(t, f.addr, otherTok)
	f.revs.RevokeAccountBefore(7, now-10)
	f.gw.Revoke(Revocation{Kind: RevokeAccount, Account: 7, NotBefore: now - 10})
	old.ended(t, core.ErrLoggedOut, revokeBound)
	oldTLS.ended(t, core.ErrLoggedOut, revokeBound)
	young.alive(t)
	youngTLS.alive(t)
	other.alive(t)
}

// TestRevokeKeyEndsItsSessions: retiring a key ends the sessions of tokens
// it signed, not those of the next key.
func TestRevokeKeyEndsItsSessions(t *testing.T) {
	f := startLine(t, revokeCfg(), lineProto{})
	oldKey := f.ring.Signing().ID
	if _, err := f.ring.Rotate(time.Now()); err != nil {
		t.Fatal(err)
	}
	newTok, nc := f.mint(t, nil)
	if nc.KeyID == oldKey {
		t.Fatal("rotation kept the signing key")
	}
	old, oldTLS := authPlain(t, f.addr, f.token), authTLS(t, f.addr, f.token)
	young := authPlain(t, f.addr, newTok)
	f.revs.RetireKey(oldKey)
	f.gw.Revoke(Revocation{Kind: RevokeKey, KeyID: oldKey})
	old.ended(t, core.ErrKeyRetired, revokeBound)
	oldTLS.ended(t, core.ErrKeyRetired, revokeBound)
	young.alive(t)
}

// indexSizes returns the number of entries in every loop's index and the
// TLS index, read on each loop.
func indexSizes(t *testing.T, gw *Gateway) int {
	t.Helper()
	n := 0
	for _, s := range gw.servers {
		for _, l := range s.loops.all() {
			ch := make(chan int, 1)
			if err := l.el.Execute(context.Background(), runFunc(func() {
				a, b, c := l.index.sizes()
				ch <- a + b + c + len(l.conns)
			})); err != nil {
				t.Fatal(err)
			}
			n += <-ch
		}
	}
	gw.goIdx.mu.Lock()
	a, b, c := gw.goIdx.idx.sizes()
	gw.goIdx.mu.Unlock()
	return n + a + b + c
}

// runFunc is a gnet Runnable.
type runFunc func()

func (f runFunc) Run(context.Context) error { f(); return nil }

// TestRevokeIndexCleanup: after many authenticated sessions come and go
// (closed by the client, ended by revocation, plaintext and TLS), the
// indexes are empty.
func TestRevokeIndexCleanup(t *testing.T) {
	f := startLine(t, revokeCfg(), lineProto{})
	for i := range 200 {
		tok, c := f.mint(t, func(c *core.Claims) { c.Account = uint64(i % 5) })
		var lc *lineClient
		if i%4 == 3 {
			lc = authTLS(t, f.addr, tok)
		} else {
			lc = authPlain(t, f.addr, tok)
		}
		if i%2 == 0 {
			f.revs.RevokeToken(c.ID, c.ExpiresAt)
			f.gw.Revoke(Revocation{Kind: RevokeToken, Token: c.ID})
			lc.ended(t, core.ErrRevoked, time.Second)
		}
		lc.c.Close()
	}
	waitOpen(t, f.gw, 0)
	if n := indexSizes(t, f.gw); n != 0 {
		t.Fatalf("%d index entries left after every session closed", n)
	}
}

// TestSessionExpiryEnd: by default a session ends when its token expires,
// on both paths, with the expired termination.
func TestSessionExpiryEnd(t *testing.T) {
	cfg := revokeCfg()
	cfg.Tick = 50 * time.Millisecond
	f := startLine(t, cfg, lineProto{})
	tok, _ := f.mint(t, func(c *core.Claims) { c.ExpiresAt = time.Now().Unix() + 2 })
	p, s := authPlain(t, f.addr, tok), authTLS(t, f.addr, tok)
	p.ended(t, core.ErrExpired, 4*time.Second)
	s.ended(t, core.ErrExpired, 4*time.Second)
}

// TestSessionExpiryKeep: with "keep" an expired token's session stays open
// and can still be revoked.
func TestSessionExpiryKeep(t *testing.T) {
	cfg := revokeCfg()
	cfg.Tick, cfg.Sweep, cfg.SessionExpiry = 50*time.Millisecond, 100*time.Millisecond, ExpiryKeep
	f := startLine(t, cfg, lineProto{})
	// Three seconds (whole seconds: two to three) for both to log in before
	// the token expires, also on a loaded machine.
	tok, c := f.mint(t, func(c *core.Claims) { c.ExpiresAt = time.Now().Unix() + 3 })
	p, s := authPlain(t, f.addr, tok), authTLS(t, f.addr, tok)
	time.Sleep(time.Until(time.Unix(c.ExpiresAt, 0)) + 500*time.Millisecond)
	p.alive(t)
	s.alive(t)
	f.gw.Revoke(Revocation{Kind: RevokeToken, Token: c.ID})
	p.ended(t, core.ErrRevoked, revokeBound)
	s.ended(t, core.ErrRevoked, revokeBound)
}

// TestSweepCatchesUndeliveredRevocation: a revocation that reaches the view
// without a Revocation (a snapshot reload) is caught by the sweep.
func TestSweepCatchesUndeliveredRevocation(t *testing.T) {
	cfg := revokeCfg()
	cfg.Tick, cfg.Sweep = 50*time.Millisecond, 200*time.Millisecond
	f := startLine(t, cfg, lineProto{})
	p, s := authPlain(t, f.addr, f.token), authTLS(t, f.addr, f.token)
	f.revs.RevokeToken(f.id, f.exp)
	p.ended(t, core.ErrRevoked, 2*time.Second)
	s.ended(t, core.ErrRevoked, 2*time.Second)
}

// TestRevokeLatency measures the time from Revoke to the client reading the
// termination, with 500 other authenticated sessions open (plaintext and
// TLS), over 200 revocations on each path, and logs p50/p99/max.
func TestRevokeLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("latency measurement")
	}
	f := startLine(t, revokeCfg(), lineProto{})
	for i := range 500 {
		tok, _ := f.mint(t, func(c *core.Claims) { c.Account = uint64(100 + i) })
		if i%10 == 0 {
			authTLS(t, f.addr, tok)
		} else {
			authPlain(t, f.addr, tok)
		}
	}
	for _, path := range []string{"loop", "tls"} {
		lat := make([]time.Duration, 0, 200)
		for range 200 {
			tok, c := f.mint(t, nil)
			var lc *lineClient
			if path == "tls" {
				lc = authTLS(t, f.addr, tok)
			} else {
				lc = authPlain(t, f.addr, tok)
			}
			f.revs.RevokeToken(c.ID, c.ExpiresAt)
			start := time.Now()
			f.gw.Revoke(Revocation{Kind: RevokeToken, Token: c.ID})
			_ = lc.c.SetReadDeadline(time.Now().Add(time.Second))
			expect(t, lc.r, "ERR ended "+core.ErrRevoked.Error())
			lat = append(lat, time.Since(start))
			lc.c.Close()
		}
		slices.Sort(lat)
		t.Logf("%s path, 200 revocations, 500 other sessions: p50 %v p99 %v max %v",
			path, lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
	}
}

// TestRecheckAll: a change that reaches the view without a Revocation is
// applied to every open session at once by RecheckAll.
func TestRecheckAll(t *testing.T) {
	f := startLine(t, revokeCfg(), lineProto{})
	other, _ := f.mint(t, nil)
	p, s := authPlain(t, f.addr, f.token), authTLS(t, f.addr, f.token)
	b := authPlain(t, f.addr, other)
	f.revs.RevokeToken(f.id, f.exp)
	f.gw.RecheckAll()
	p.ended(t, core.ErrRevoked, revokeBound)
	s.ended(t, core.ErrRevoked, revokeBound)
	b.alive(t)
}

// TestRevokeBurst: a burst of revocations, each naming one of many open
// sessions spread over the loops, ends every one of them.
func TestRevokeBurst(t *testing.T) {
	f := startLine(t, revokeCfg(), lineProto{})
	var ids []core.TokenID
	var cls []*lineClient
	for i := range 100 {
		tok, c := f.mint(t, nil)
		ids = append(ids, c.ID)
		if i%5 == 0 {
			cls = append(cls, authTLS(t, f.addr, tok))
		} else {
			cls = append(cls, authPlain(t, f.addr, tok))
		}
		f.revs.RevokeToken(c.ID, c.ExpiresAt)
	}
	for _, id := range ids {
		f.gw.Revoke(Revocation{Kind: RevokeToken, Token: id})
	}
	for _, lc := range cls {
		lc.ended(t, core.ErrRevoked, time.Second)
	}
	waitOpen(t, f.gw, 0)
}

// TestRevokeAfterStop: revocations delivered to a stopped gateway (the feed
// outlives it) do nothing and are not kept.
func TestRevokeAfterStop(t *testing.T) {
	f := startLine(t, revokeCfg(), lineProto{})
	authPlain(t, f.addr, f.token)
	f.gw.Stop(context.Background())
	for range 100 {
		f.gw.Revoke(Revocation{Kind: RevokeToken, Token: f.id})
	}
	for _, s := range f.gw.servers {
		for _, l := range s.loops.all() {
			l.revq.mu.Lock()
			n := len(l.revq.pending)
			l.revq.mu.Unlock()
			if n != 0 {
				t.Fatalf("%d revocations queued on a stopped loop", n)
			}
		}
	}
}

// sizes returns how many token ids, accounts and key ids are indexed.
func (x *sessionIndex[T]) sizes() (tokens, accounts, keys int) {
	return len(x.byToken), len(x.byAccount), len(x.byKey)
}
