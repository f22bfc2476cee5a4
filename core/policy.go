package core

import "net/netip"

// Policy is what a gateway checks about a verified token beyond the token
// itself: per-token IP allowlists and the database registry's test flags.
// Implementations must be safe for concurrent use and allocation-free.
type Policy interface {
	// AllowedFrom reports whether the token id (whose claims carry
	// FlagIPPolicy) may be used from addr. A token with the flag and no known
	// allowlist must be refused (fail closed).
	AllowedFrom(id TokenID, addr netip.Addr) bool
	// IsTestDatabase reports whether name is registered as a test database.
	IsTestDatabase(name []byte) bool
}

// UsageRecorder aggregates last-used times for the token list's last_used:
// a store into memory, flushed to the issuer in batches, so authentication
// never costs a write. Implementations are safe for concurrent use and
// allocation-free for a token already recorded.
type UsageRecorder interface {
	Record(id TokenID, account uint64, at int64)
}

// Policy errors (KindForbidden: the token is genuine but not allowed here).
var (
	ErrAddrNotAllowed = &Error{Kind: KindForbidden, Message: "Token is not allowed from this IP address",
		Detail: "the token has an IP allowlist (allowed_ips) that does not include the client's address"}
	ErrTestDatabaseOnly = &Error{Kind: KindForbidden, Message: "Test tokens can only access test databases",
		Detail: "hdb_test_ tokens may connect only to databases created with \"test\": true"}
)

// AllowAddr checks c's IP allowlist against the client's address (nil p
// refuses every token that has one).
func AllowAddr(p Policy, c *Claims, addr netip.Addr) error {
	if c.Flags&FlagIPPolicy == 0 {
		return nil
	}
	if p == nil || !p.AllowedFrom(c.ID, addr.Unmap()) {
		return ErrAddrNotAllowed
	}
	return nil
}

// AllowDatabase checks that a test-only token reaches only a test database
// (nil p refuses test-only tokens everywhere).
func AllowDatabase(p Policy, c *Claims, database []byte) error {
	if c.Flags&FlagTestOnly == 0 {
		return nil
	}
	if p == nil || !p.IsTestDatabase(database) {
		return ErrTestDatabaseOnly
	}
	return nil
}

// Registry is implemented by a Policy that knows the registered databases
// (policyset.Set), so that front ends can answer a name that is not one with
// their protocol's "does not exist" error.
type Registry interface {
	// IsDatabase reports whether name is a registered database.
	IsDatabase(name []byte) bool
}

// KnownDatabase reports whether name is a registered database of p. A nil
// p, or one that does not implement Registry, knows no registry: every
// name is taken as known (only the test-database rule applies then).
func KnownDatabase(p Policy, name []byte) bool {
	r, ok := p.(Registry)
	return !ok || r.IsDatabase(name)
}
