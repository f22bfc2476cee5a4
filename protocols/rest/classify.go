package rest

import (
	"strings"

	"github.com/heliosdb/auth/core"
)

// NoScope marks a route that needs a valid token but no particular scope
// (the issuer's /v1/auth routes, whose handlers check the token type).
const NoScope core.Scope = 0xff

// RouteScope returns the scope a protected route needs.
func RouteScope(method, path string) core.Scope {
	switch {
	case path == "/api/v1/sql":
		// The statement may need more (SQLScope); reading is the least.
		return core.ScopeDatabaseRead
	case strings.HasPrefix(path, "/v1/databases"):
		switch method {
		case "GET":
			return core.ScopeDatabaseRead
		case "DELETE":
			return core.ScopeDatabaseDelete
		}
		return core.ScopeDatabaseCreate
	}
	return NoScope
}

// SQLScope returns the scope a SQL statement needs, from its leading
// keywords: reads need database:read, writes database:write, DDL
// schema:write, CREATE/DROP DATABASE database:create/database:delete.
// Anything unrecognised needs database:write, so a classifier miss never
// lets a read-only token write.
func SQLScope(q string) core.Scope {
	w1, rest := firstWord(q)
	w2, _ := firstWord(rest)
	switch w1 {
	case "select", "show", "explain", "values", "table":
		return core.ScopeDatabaseRead
	case "with":
		// A data-modifying CTE (WITH … INSERT/UPDATE/DELETE) writes.
		l := strings.ToLower(rest)
		for _, kw := range []string{"insert", "update", "delete", "merge"} {
			if strings.Contains(l, kw) {
				return core.ScopeDatabaseWrite
			}
		}
		return core.ScopeDatabaseRead
	case "create":
		if w2 == "database" {
			return core.ScopeDatabaseCreate
		}
		return core.ScopeSchemaWrite
	case "drop":
		if w2 == "database" {
			return core.ScopeDatabaseDelete
		}
		return core.ScopeSchemaWrite
	case "alter", "comment":
		return core.ScopeSchemaWrite
	}
	return core.ScopeDatabaseWrite
}

// firstWord returns q's first word in lower case and what follows it.
func firstWord(q string) (string, string) {
	q = strings.TrimLeft(q, " \t\r\n(")
	i := strings.IndexFunc(q, func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == '(' || r == ';' })
	if i < 0 {
		i = len(q)
	}
	return strings.ToLower(q[:i]), q[i:]
}
