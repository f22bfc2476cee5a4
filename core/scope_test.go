package core

import (
	"errors"
	"strings"
	"testing"
)

func crcOf(b []byte) uint32 { return checksum(b) }

func TestEveryScopeParses(t *testing.T) {
	guide := []string{
		"database:read", "database:write", "database:create", "database:delete",
		"branch:read", "branch:create", "branch:merge", "branch:delete",
		"schema:read", "schema:write", "vector:read", "vector:write",
		"metrics:read", "billing:read", "billing:write",
	}
	if len(guide) != NumScopes {
		t.Fatalf("%d scopes, guide has %d", NumScopes, len(guide))
	}
	var all ScopeSet
	for i, name := range guide {
		s, err := ParseScope(name)
		if err != nil || s != 1<<i {
			t.Fatalf("%s: %b %v", name, s, err)
		}
		if Scope(i).String() != name {
			t.Fatalf("%d: name %s", i, Scope(i).String())
		}
		if got := s.Strings(); len(got) != 1 || got[0] != name {
			t.Fatalf("%s strings %v", name, got)
		}
		all |= s
	}
	if all != AllScopes {
		t.Fatal("the guide's scopes are not AllScopes")
	}
	star, _ := ParseScope("*")
	if star != AllScopes || strings.Join(star.Strings(), ",") != "*" {
		t.Fatalf("* → %b %v", star, star.Strings())
	}
}

func TestWildcards(t *testing.T) {
	cases := map[string][]Scope{
		"database:*": {ScopeDatabaseRead, ScopeDatabaseWrite, ScopeDatabaseCreate, ScopeDatabaseDelete},
		"branch:*":   {ScopeBranchRead, ScopeBranchCreate, ScopeBranchMerge, ScopeBranchDelete},
		"schema:*":   {ScopeSchemaRead, ScopeSchemaWrite},
		"vector:*":   {ScopeVectorRead, ScopeVectorWrite},
		"metrics:*":  {ScopeMetricsRead},
		"billing:*":  {ScopeBillingRead, ScopeBillingWrite},
	}
	for w, members := range cases {
		set, err := ParseScope(w)
		if err != nil {
			t.Fatalf("%s: %v", w, err)
		}
		var want ScopeSet
		for _, m := range members {
			want = want.With(m)
		}
		if set != want {
			t.Fatalf("%s = %v, want %v", w, set.Strings(), want.Strings())
		}
	}
}

func TestUnknownScopeNamed(t *testing.T) {
	for _, bad := range []string{"database:drop", "", "db:*", "*:*", "Database:read", "database:read "} {
		_, err := ParseScopes([]string{"database:read", bad})
		var ue *UnknownScopeError
		if !errors.As(err, &ue) || ue.Name != bad || !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

func TestScopeSetOps(t *testing.T) {
	a, _ := ParseScopes([]string{"database:*", "metrics:read"})
	b, _ := ParseScopes([]string{"database:read", "metrics:read"})
	if !a.Contains(b) || b.Contains(a) {
		t.Fatal("Contains")
	}
	if s, ok := b.Missing(a); !ok || s != ScopeDatabaseWrite {
		t.Fatalf("Missing %v %v", s, ok)
	}
	if _, ok := a.Missing(b); ok {
		t.Fatal("Missing on a superset")
	}
	if got := strings.Join(b.Strings(), ","); got != "database:read,metrics:read" {
		t.Fatal(got)
	}
	for s := Scope(0); s < numScopes; s++ {
		if ForbiddenError(s).Message != "Token does not have required scope: "+s.String() {
			t.Fatal(ForbiddenError(s).Message)
		}
	}
}

func TestBase62(t *testing.T) {
	for n := 0; n <= 64; n++ {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(0xFF - i)
		}
		enc := appendBase62(nil, src)
		if len(enc) != base62EncodedLen(n) {
			t.Fatalf("n=%d len %d", n, len(enc))
		}
		dst := make([]byte, n)
		if !decodeBase62(dst, enc) || string(dst) != string(src) {
			t.Fatalf("n=%d round trip", n)
		}
	}
	// The largest 8-byte block and a value one past it.
	max8 := appendBase62(nil, []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	var d [8]byte
	if !decodeBase62(d[:], max8) {
		t.Fatal("max block")
	}
	if decodeBase62(d[:], []byte("zzzzzzzzzzz")) {
		t.Fatal("overflowing block decoded")
	}
	var one [1]byte
	if decodeBase62(one[:], []byte("zz")) { // 3843 > 255
		t.Fatal("non-canonical tail decoded")
	}
}
