package core

import (
	"fmt"
	"strings"
)

// Scope is one permission a token can hold. Its value is the bit it occupies
// in a ScopeSet, so the numbering is part of the token format: never reorder.
type Scope uint8

// The sixteen scopes of the authentication guide, in its order.
const (
	ScopeDatabaseRead Scope = iota
	ScopeDatabaseWrite
	ScopeDatabaseCreate
	ScopeDatabaseDelete
	ScopeBranchRead
	ScopeBranchCreate
	ScopeBranchMerge
	ScopeBranchDelete
	ScopeSchemaRead
	ScopeSchemaWrite
	ScopeVectorRead
	ScopeVectorWrite
	ScopeMetricsRead
	ScopeBillingRead
	ScopeBillingWrite
	numScopes
)

// NumScopes is the number of distinct scopes.
const NumScopes = int(numScopes)

var scopeNames = [numScopes]string{
	"database:read", "database:write", "database:create", "database:delete",
	"branch:read", "branch:create", "branch:merge", "branch:delete",
	"schema:read", "schema:write",
	"vector:read", "vector:write",
	"metrics:read",
	"billing:read", "billing:write",
}

// String returns the scope's name as the guide writes it, e.g. "database:write".
func (s Scope) String() string {
	if s < numScopes {
		return scopeNames[s]
	}
	return fmt.Sprintf("scope(%d)", uint8(s))
}

// ScopeSet is a set of scopes as bits (bit i is Scope i). It is what a token
// carries in its payload.
type ScopeSet uint32

// AllScopes is the set "*": every scope.
const AllScopes ScopeSet = 1<<numScopes - 1

// Has reports whether the set holds s.
func (ss ScopeSet) Has(s Scope) bool { return ss&(1<<s) != 0 }

// With returns the set plus s.
func (ss ScopeSet) With(s Scope) ScopeSet { return ss | 1<<s }

// Contains reports whether every scope in o is also in ss.
func (ss ScopeSet) Contains(o ScopeSet) bool { return o&^ss == 0 }

// Missing returns the first scope of want that ss lacks, and false when ss
// holds all of want.
func (ss ScopeSet) Missing(want ScopeSet) (Scope, bool) {
	for s := Scope(0); s < numScopes; s++ {
		if want.Has(s) && !ss.Has(s) {
			return s, true
		}
	}
	return 0, false
}

// Strings returns the set in canonical form: ["*"] for every scope, otherwise
// each scope's name in the guide's order.
func (ss ScopeSet) Strings() []string {
	if ss&AllScopes == AllScopes {
		return []string{"*"}
	}
	out := make([]string, 0, 4)
	for s := Scope(0); s < numScopes; s++ {
		if ss.Has(s) {
			out = append(out, scopeNames[s])
		}
	}
	return out
}

// scopeFamilies maps a family name to its members, for wildcards such as
// "branch:*".
var scopeFamilies = func() map[string]ScopeSet {
	m := make(map[string]ScopeSet)
	for s := Scope(0); s < numScopes; s++ {
		fam, _, _ := strings.Cut(scopeNames[s], ":")
		m[fam] = m[fam].With(s)
	}
	return m
}()

// ParseScope parses one scope name: a scope of the guide, "*", or a family
// wildcard such as "database:*". It returns the set the name stands for.
func ParseScope(name string) (ScopeSet, error) {
	if name == "*" {
		return AllScopes, nil
	}
	for s := Scope(0); s < numScopes; s++ {
		if scopeNames[s] == name {
			return 1 << s, nil
		}
	}
	if fam, ok := strings.CutSuffix(name, ":*"); ok {
		if set, ok := scopeFamilies[fam]; ok {
			return set, nil
		}
	}
	return 0, &UnknownScopeError{Name: name}
}

// ParseScopes parses a list of scope names into a set. An empty list is an
// empty set; an unknown name is an *UnknownScopeError that names it.
func ParseScopes(names []string) (ScopeSet, error) {
	var set ScopeSet
	for _, n := range names {
		s, err := ParseScope(n)
		if err != nil {
			return 0, err
		}
		set |= s
	}
	return set, nil
}

// UnknownScopeError reports a scope name that is not one of the guide's.
type UnknownScopeError struct {
	Name string
}

func (e *UnknownScopeError) Error() string {
	return fmt.Sprintf("unknown scope %q: valid scopes are *, %s, or a family wildcard such as database:*",
		e.Name, strings.Join(scopeNames[:], ", "))
}
