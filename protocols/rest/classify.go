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
		// The statements may need more (SQLHandler checks them with
		// sqlscope); reading is the least.
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
