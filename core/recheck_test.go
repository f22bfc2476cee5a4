package core

import (
	"testing"
	"time"
)

// unavailable is a revocation view that cannot answer.
type unavailable struct{}

func (unavailable) Check(TokenID, uint64, int64, uint16) RevocationStatus {
	return RevocationUnavailable
}

// TestRecheckMatchesVerify: for every later change to the world, Recheck of
// the claims Verify once accepted returns what a fresh Verify of the token
// returns.
func TestRecheckMatchesVerify(t *testing.T) {
	now := t0.Add(time.Minute)
	for _, tc := range []struct {
		name   string
		change func(ring *Keyring, revs *MemoryRevocations, c Claims)
		at     time.Time
		want   error
	}{
		{"unchanged", func(*Keyring, *MemoryRevocations, Claims) {}, now, nil},
		{"expired", func(*Keyring, *MemoryRevocations, Claims) {}, t0.Add(8 * 24 * time.Hour), ErrExpired},
		{"revoked", func(_ *Keyring, r *MemoryRevocations, c Claims) { r.RevokeToken(c.ID, c.ExpiresAt) }, now, ErrRevoked},
		{"logged out", func(_ *Keyring, r *MemoryRevocations, c Claims) { r.RevokeAccountBefore(c.Account, c.IssuedAt+1) }, now, ErrLoggedOut},
		{"key retired in the view", func(_ *Keyring, r *MemoryRevocations, c Claims) { r.RetireKey(c.KeyID) }, now, ErrKeyRetired},
		{"key retired in the keyring", func(ring *Keyring, _ *MemoryRevocations, c Claims) {
			if _, err := ring.Rotate(t0); err != nil {
				t.Fatal(err)
			}
			if err := ring.Retire(c.KeyID); err != nil {
				t.Fatal(err)
			}
		}, now, ErrKeyRetired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ring := testRing(t)
			revs := NewMemoryRevocations()
			v := NewVerifier(ring, revs)
			tok := mint(t, ring, claimsFor(TypeLive))
			c, err := v.Verify([]byte(tok), now)
			if err != nil {
				t.Fatal(err)
			}
			tc.change(ring, revs, c)
			_, fresh := v.Verify([]byte(tok), tc.at)
			if got := v.Recheck(&c, tc.at); got != tc.want || got != fresh {
				t.Fatalf("Recheck = %v, Verify = %v, want %v", got, fresh, tc.want)
			}
		})
	}
}

func TestRecheckUnknownKeyAndUnavailable(t *testing.T) {
	ring := testRing(t)
	c := claimsFor(TypeLive)
	tok := mint(t, ring, c)
	c, err := NewVerifier(ring, nil).Verify([]byte(tok), t0)
	if err != nil {
		t.Fatal(err)
	}
	// A keyring without the token's key (another node's, or the key removed).
	other, err := NewKeyring(9, GenerateKey(9, t0))
	if err != nil {
		t.Fatal(err)
	}
	if err := NewVerifier(other, nil).Recheck(&c, t0); err != ErrUnknownKey {
		t.Fatalf("unknown key: %v", err)
	}
	if err := NewVerifier(ring, unavailable{}).Recheck(&c, t0); err != ErrUnavailable {
		t.Fatalf("revocation unavailable: %v", err)
	}
	future := c
	future.IssuedAt = t0.Add(time.Hour).Unix()
	if err := NewVerifier(ring, nil).Recheck(&future, t0); err != ErrNotYetValid {
		t.Fatalf("issued in the future: %v", err)
	}
}

func TestRecheckAllocatesNothing(t *testing.T) {
	ring := testRing(t)
	revs := NewMemoryRevocations()
	revs.RevokeToken(NewTokenID(), t0.Add(time.Hour).Unix())
	revs.RevokeAccountBefore(7, t0.Unix())
	v := NewVerifier(ring, revs)
	c, err := v.Verify([]byte(mint(t, ring, claimsFor(TypeLive))), t0)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if v.Recheck(&c, t0) != nil {
			t.Fatal("refused")
		}
	}); n != 0 {
		t.Fatalf("Recheck allocates %v times", n)
	}
}

func BenchmarkRecheck(b *testing.B) {
	ring := testRing(b)
	v := NewVerifier(ring, NewMemoryRevocations())
	c, err := v.Verify([]byte(mint(b, ring, claimsFor(TypeLive))), t0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if v.Recheck(&c, t0) != nil {
			b.Fatal("refused")
		}
	}
}
