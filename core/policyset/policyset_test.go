package policyset

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/heliosdb/auth/core"
)

func TestAllowlistsAndDatabases(t *testing.T) {
	s := New()
	id := core.NewTokenID()
	c := core.Claims{ID: id, Flags: core.FlagIPPolicy | core.FlagTestOnly}
	if err := core.AllowAddr(s, &c, netip.MustParseAddr("203.0.113.50")); !errors.Is(err, core.ErrAddrNotAllowed) {
		t.Fatalf("unknown allowlist: %v", err)
	}
	s.SetIPs(id, []netip.Prefix{netip.MustParsePrefix("203.0.113.50/32"), netip.MustParsePrefix("10.1.0.0/16")}, 100)
	for addr, ok := range map[string]bool{"203.0.113.50": true, "::ffff:203.0.113.50": true, "10.1.200.3": true, "203.0.113.51": false, "127.0.0.1": false} {
		if err := core.AllowAddr(s, &c, netip.MustParseAddr(addr)); (err == nil) != ok {
			t.Fatalf("%s: %v", addr, err)
		}
	}
	if err := core.AllowDatabase(s, &c, []byte("main")); !errors.Is(err, core.ErrTestDatabaseOnly) {
		t.Fatalf("unregistered database: %v", err)
	}
	s.SetDatabase("main", false)
	s.SetDatabase("scratch", true)
	if core.AllowDatabase(s, &c, []byte("main")) == nil || core.AllowDatabase(s, &c, []byte("scratch")) != nil {
		t.Fatal("test flag not honoured")
	}
	live := core.Claims{ID: core.NewTokenID()}
	if core.AllowDatabase(s, &live, []byte("main")) != nil || core.AllowAddr(s, &live, netip.MustParseAddr("1.2.3.4")) != nil {
		t.Fatal("unflagged token refused")
	}
	s.Prune(101)
	if err := core.AllowAddr(s, &c, netip.MustParseAddr("203.0.113.50")); err == nil {
		t.Fatal("expired allowlist kept")
	}
	addr, db := netip.MustParseAddr("10.1.2.3"), []byte("scratch")
	s.SetIPs(id, []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, 1000)
	if a := testing.AllocsPerRun(100, func() {
		_ = core.AllowAddr(s, &c, addr)
		_ = core.AllowDatabase(s, &c, db)
	}); a != 0 {
		t.Fatalf("%.1f allocs", a)
	}
}
