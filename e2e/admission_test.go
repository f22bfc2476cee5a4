package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
)

// TestMySQLFastAuthExpiredKeep: with session_expiry "keep" (open sessions
// outlive their token's expiry), a new connection is still never admitted
// on an expired token: go-sql-driver's second connection, whose scramble
// matches the token cached by its first, is refused with 1045 naming the
// expiry by the fast-authentication path (counted as rejected), as a fresh
// verification would refuse it. Before the one admission path, the cached
// claims were re-checked as an open session's are, ignoring the expiry.
func TestMySQLFastAuthExpiredKeep(t *testing.T) {
	d := startDaemon(t, withArgs("--session-expiry", "keep"))
	now := time.Now()
	expires := now.Unix() + 3
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes, IssuedAt: now.Unix() - 60, ExpiresAt: expires})
	first := mysqlVia(t, d, tok, "false", "main", nil)
	if err := first.Ping(); err != nil {
		t.Fatalf("full authentication: %v", err)
	}
	first.Close()
	hits, rejected := fastAuthCount(t, d, "hit"), fastAuthCount(t, d, "rejected")
	// The cache holds the token now: a connection before the expiry is
	// admitted by the fast path.
	if err := mysqlVia(t, d, tok, "false", "main", nil).Ping(); err != nil || fastAuthCount(t, d, "hit") != hits+1 {
		t.Fatalf("fast authentication before the expiry: %v (hits %d -> %d)", err, hits, fastAuthCount(t, d, "hit"))
	}
	time.Sleep(time.Until(time.Unix(expires, 0).Add(500 * time.Millisecond)))
	err := mysqlVia(t, d, tok, "false", "main", nil).Ping()
	if mysqlErrNumber(err) != 1045 || !strings.Contains(err.Error(), core.MsgExpired) {
		t.Fatalf("an expired token on a new connection: %v", err)
	}
	if got := fastAuthCount(t, d, "rejected"); got != rejected+1 {
		t.Fatalf("the refusal did not come from the fast path: rejected %d -> %d", rejected, got)
	}
	t.Logf("go-sql-driver: %v", err)
}
