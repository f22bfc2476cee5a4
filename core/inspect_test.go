package core

import (
	"testing"
	"time"
)

// TestDecodeUnverified decodes a minted token's fields with no key, and
// tells a changed character or a malformed string from a real token.
func TestDecodeUnverified(t *testing.T) {
	ring := GenerateKeyring(time.Now())
	now := time.Now().Unix()
	tok, want, err := NewMinter(ring).Mint(nil, Claims{Type: TypeService, ID: NewTokenID(), Account: 42,
		IssuedAt: now, ExpiresAt: now + 3600, Scopes: ScopeSet(0).With(ScopeDatabaseRead), Flags: FlagIPPolicy})
	if err != nil || want.Version != FormatVersion || want.KeyID != 1 {
		t.Fatal(want, err)
	}
	u, err := DecodeUnverified(string(tok))
	if err != nil || !u.ChecksumOK || u.PrefixType != TypeService || u.Claims != want {
		t.Fatalf("decode: %+v %v, want %+v", u, err, want)
	}
	b := []byte(tok)
	if b[20] == 'A' {
		b[20] = 'B'
	} else {
		b[20] = 'A'
	}
	if u, err := DecodeUnverified(string(b)); err != nil || u.ChecksumOK {
		t.Fatalf("changed character: %+v %v", u, err)
	}
	for _, bad := range []string{"", "hdb_live_short", string(tok[:len(tok)-1]) + "!", "ghp_" + string(tok[4:])} {
		if _, err := DecodeUnverified(bad); err != ErrNotAToken {
			t.Errorf("DecodeUnverified(%q) = %v", bad, err)
		}
	}
}
