// Package upstream holds what every protocol's proxy mode shares: the
// least-privilege roles a token's scopes map to (the second wall behind the
// gateway's classifier), the passwords heliosd keeps for those roles in its
// data directory, and the pool of authenticated server connections keyed by
// role and database. It knows no protocol's bytes and dials nothing itself
// (each protocol gives the pool its dialer), and it must never log a
// password or hand one to a client.
package upstream

import "github.com/heliosdb/auth/core"

// Role is the upstream role a session logs in as. The zero Role is Read.
type Role uint8

// The three levels, each also in a test-only variant (Test).
const (
	// Read may read every table and change nothing (PostgreSQL:
	// pg_read_all_data and default_transaction_read_only; MariaDB: SELECT,
	// SHOW VIEW).
	Read Role = iota
	// Write adds data changes (pg_write_all_data; INSERT, UPDATE, DELETE…).
	Write
	// Owner adds DDL on the HeliosDB databases; never superuser, FILE,
	// SUPER or GRANT OPTION.
	Owner
	numLevels
	// Test marks the variant that reaches test databases only.
	Test Role = 4
)

// Level is the role without its Test flag.
func (r Role) Level() Role { return r &^ Test }

// IsTest reports whether the role reaches test databases only.
func (r Role) IsTest() bool { return r&Test != 0 }

// Name is the role's login name on every upstream: helios_read,
// helios_write, helios_owner, helios_test_read, helios_test_write,
// helios_test_owner.
func (r Role) Name() string {
	names := [...]string{"helios_read", "helios_write", "helios_owner", "", "helios_test_read", "helios_test_write", "helios_test_owner"}
	if int(r) < len(names) {
		return names[r]
	}
	return ""
}

// Roles lists the six roles, production ones first.
var Roles = [...]Role{Read, Write, Owner, Test | Read, Test | Write, Test | Owner}

// RoleFor maps a token to the role its session logs in as: a token with
// schema:write (or "*") → Owner, database:write → Write, database:read →
// Read; a test token gets the Test variant. A token with none of them gets
// the guide's scope error naming database:read, which the session must send
// before it takes a server connection.
func RoleFor(c *core.Claims) (Role, error) {
	var r Role
	switch {
	case c.Scopes.Has(core.ScopeSchemaWrite):
		r = Owner
	case c.Scopes.Has(core.ScopeDatabaseWrite):
		r = Write
	case c.Scopes.Has(core.ScopeDatabaseRead):
		r = Read
	default:
		return 0, core.ForbiddenError(core.ScopeDatabaseRead)
	}
	if c.Type == core.TypeTest {
		r |= Test
	}
	return r, nil
}
