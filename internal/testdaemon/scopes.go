package testdaemon

import "github.com/heliosdb/auth/core"

// Scopes is the set of the scopes ss, for the claims of a token a test
// mints.
func Scopes(ss ...core.Scope) core.ScopeSet {
	var set core.ScopeSet
	for _, s := range ss {
		set = set.With(s)
	}
	return set
}
