package rest

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/httpapi"
	"github.com/heliosdb/auth/protocols/internal/sqlscope"
)

// WhoAmIQuery is the built-in identity query: it returns the calling token's
// id, type, scopes and expiry (columns token_id, type, scopes, expires_at).
const WhoAmIQuery = "SELECT * FROM helios_whoami()"

// MaxSQLBody bounds the body of POST /api/v1/sql.
const MaxSQLBody = 1 << 20

// DefaultDatabase is the database a SQL request runs against when it names
// none.
const DefaultDatabase = "main"

// sqlRequest is the body of POST /api/v1/sql. Database defaults to "main".
type sqlRequest struct {
	Query    string `json:"query"`
	Database string `json:"database"`
}

// sqlResult is the response: column names and rows of JSON values.
type sqlResult struct {
	Columns  []string `json:"columns"`
	Rows     [][]any  `json:"rows"`
	RowCount int      `json:"row_count"`
}

// SQLHandler returns the handler of POST /api/v1/sql with the built-in
// responder (no upstream database is configured): SELECT 1 and the identity
// query. A test token may run only against a test database of p's registry
// (the request's "database", default "main"); every statement of the query
// is checked next (package sqlscope, PostgreSQL's dialect), so a read-only
// token gets 403 FORBIDDEN "Token does not have required scope: <scope>"
// for a write whether or not an upstream would run it, and any token gets
// 403 FORBIDDEN "Statement not allowed through the HeliosDB gateway:
// <reason>" for a statement the gateway refuses (SET ROLE, ALTER SYSTEM,
// text it cannot read …).
func SQLHandler(p core.Policy) Handler {
	return func(ctx *fasthttp.RequestCtx, c *core.Claims) { handleSQL(ctx, c, p) }
}

func handleSQL(ctx *fasthttp.RequestCtx, c *core.Claims, p core.Policy) {
	// The issuer's decoder: one strict object within MaxSQLBody, and text
	// that is UTF-8 whose strings hold only characters.
	var req sqlRequest
	if !httpapi.DecodeJSON(ctx, &req, MaxSQLBody, true) {
		return
	}
	q := normalizeSQL(req.Query)
	if q == "" {
		WriteError(ctx, http.StatusBadRequest, "INVALID_REQUEST", `query is empty: send {"query": "SELECT 1"}`, "")
		return
	}
	if req.Database == "" {
		req.Database = DefaultDatabase
	}
	if err := core.AllowDatabase(p, c, []byte(req.Database)); err != nil {
		WriteTokenError(ctx, err)
		return
	}
	// Every statement of the query, as PostgreSQL reads it (the raw text:
	// the normalized one has lost its line ends, and with them where --
	// comments end).
	r := sqlscope.Classify(sqlscope.PostgreSQL, []byte(req.Query))
	if d, denied := r.Deny(c.Scopes); denied {
		WriteTokenError(ctx, d.Err)
		return
	}
	if r.Statements == 0 {
		WriteError(ctx, http.StatusBadRequest, "INVALID_REQUEST", `query has no statement, only comments: send {"query": "SELECT 1"}`, "")
		return
	}
	var res sqlResult
	switch q {
	case "select 1":
		res = sqlResult{Columns: []string{"?column?"}, Rows: [][]any{{1}}}
	case "select * from helios_whoami()", "select * from helios_whoami( )":
		res = sqlResult{Columns: []string{"token_id", "type", "scopes", "expires_at"},
			Rows: [][]any{{c.ID.String(), c.Type.String(), strings.Join(c.Scopes.Strings(), ","), c.Expires().Format(time.RFC3339)}}}
	default:
		WriteError(ctx, http.StatusNotImplemented, "NO_UPSTREAM",
			"no upstream database is configured: the built-in responder answers only SELECT 1 and "+WhoAmIQuery+
				"; configure an upstream database for this gateway to run other statements", "")
		return
	}
	res.RowCount = len(res.Rows)
	b, _ := json.Marshal(res)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}

// normalizeSQL lower-cases q, collapses whitespace and drops trailing
// semicolons, for matching the built-in statements.
func normalizeSQL(q string) string {
	q = strings.Join(strings.Fields(q), " ")
	q = strings.TrimRight(q, "; ")
	return strings.ToLower(q)
}
