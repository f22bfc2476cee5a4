// Package corefuzz fuzzes the token verifier and the scope parser.
package corefuzz

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
)

var now = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// fixedRing returns a keyring with fixed keys, so that seeds minted with it
// stay valid in the committed corpus: key 1 retired, key 2 signing.
func fixedRing() *core.Keyring {
	k1 := core.Key{ID: 1, Retired: true}
	k2 := core.Key{ID: 2}
	for i := range k2.Secret {
		k1.Secret[i] = byte(i)
		k2.Secret[i] = byte(255 - i)
	}
	ring, err := core.NewKeyring(2, k1, k2)
	if err != nil {
		panic(err)
	}
	return ring
}

func seedToken(typ core.TokenType, scopes core.ScopeSet, exp time.Duration) string {
	var id core.TokenID
	copy(id[:], "fuzz-seed-id")
	tok, _, err := core.NewMinter(fixedRing()).Mint(nil, core.Claims{
		Type: typ, ID: id, Account: 7, IssuedAt: now.Add(-time.Hour).Unix(), ExpiresAt: now.Add(exp).Unix(), Scopes: scopes,
	})
	if err != nil {
		panic(err)
	}
	return string(tok)
}

// FuzzVerify: arbitrary input never panics, and nothing verifies unless it is
// exactly the token the minter makes for the claims it carries.
func FuzzVerify(f *testing.F) {
	live := seedToken(core.TypeLive, core.AllScopes, time.Hour)
	f.Add(live)
	f.Add(seedToken(core.TypeService, 1<<core.ScopeDatabaseRead, 24*time.Hour))
	f.Add(seedToken(core.TypeTest, core.AllScopes, -time.Minute)) // expired
	f.Add(" " + live)
	f.Add(live[:40])
	f.Add("hdb_svc_" + live[9:])
	f.Add("")
	f.Add("hdb_live_")
	ring := fixedRing()
	v := core.NewVerifier(ring, nil)
	m := core.NewMinter(ring)
	f.Fuzz(func(t *testing.T, s string) {
		c, err := v.Verify([]byte(s), now)
		if err != nil {
			var te *core.Error
			if !errors.As(err, &te) || te.Code() == "" || te.Message == "" {
				t.Fatalf("error %v is not a typed token error", err)
			}
			return
		}
		again, _, err := m.Mint(nil, c)
		if err != nil {
			t.Fatalf("verified claims do not mint: %v", err)
		}
		if !bytes.Equal(again, []byte(s)) {
			t.Fatalf("verified a token the minter did not make:\n in  %q\n out %q", s, again)
		}
	})
}

// FuzzScopes: any comma-separated list parses or names its unknown scope,
// and a parsed set survives its canonical string form.
func FuzzScopes(f *testing.F) {
	for _, s := range []string{"*", "database:read,database:write", "branch:*", "database:drop", "", ",", "metrics:*,billing:read", "x:*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		names := strings.Split(list, ",")
		set, err := core.ParseScopes(names)
		if err != nil {
			var ue *core.UnknownScopeError
			if !errors.As(err, &ue) || !strings.Contains(list, ue.Name) {
				t.Fatalf("error %v does not name a scope from %q", err, list)
			}
			return
		}
		back, err := core.ParseScopes(set.Strings())
		if err != nil || back != set {
			t.Fatalf("%q → %v → %v (%v)", list, set.Strings(), back.Strings(), err)
		}
		if set&^core.AllScopes != 0 {
			t.Fatalf("%q set unknown bits %b", list, set)
		}
	})
}
