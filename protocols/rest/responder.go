package rest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
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

// sqlRequest is the body of POST /api/v1/sql. Database defaults to "main";
// Params are bound to $1, $2, … (proxy mode); MaxRows bounds the rows
// returned (default 1000, at most MaxSQLRows).
type sqlRequest struct {
	Query    string `json:"query"`
	Database string `json:"database"`
	Params   []any  `json:"params"`
	MaxRows  int    `json:"max_rows"`
}

// MaxSQLRows is the most rows one request may ask for.
const MaxSQLRows = 10000

// sqlColumn is a result column: its name and its type's name.
type sqlColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// sqlResult is the built-in responder's response: columns and rows of
// JSON values, in the shape proxy mode answers with.
type sqlResult struct {
	Columns  []sqlColumn `json:"columns"`
	Rows     [][]any     `json:"rows"`
	RowCount int         `json:"row_count"`
	Command  string      `json:"command"`
}

// SQLError is a database server's error for a request: answered 400
// SQL_ERROR with its SQLSTATE.
type SQLError struct {
	SQLState, Message, Detail string
}

// Error returns the server's message and SQLSTATE.
func (e *SQLError) Error() string { return e.Message + " (SQLSTATE " + e.SQLState + ")" }

// SQLRunner runs SQL on the upstream database in proxy mode (heliosd gives
// the PostgreSQL upstream's). The result is written as JSON as it is; a
// *SQLError is the server's, answered 400 SQL_ERROR with its SQLSTATE; a
// *core.Error is a token error; any other means the upstream could not be
// reached (502).
type SQLRunner interface {
	RunSQL(ctx context.Context, c *core.Claims, database, query string, params []any, maxRows int) (any, error)
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
//
// With a runner (proxy mode) the statements, once checked, run on the
// upstream as the role the token's scopes allow.
func SQLHandler(p core.Policy, runner SQLRunner) Handler {
	return func(ctx *fasthttp.RequestCtx, c *core.Claims) { handleSQL(ctx, c, p, runner) }
}

func handleSQL(ctx *fasthttp.RequestCtx, c *core.Claims, p core.Policy, runner SQLRunner) {
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
	if req.MaxRows < 0 || req.MaxRows > MaxSQLRows {
		WriteError(ctx, http.StatusBadRequest, "INVALID_REQUEST", "max_rows must be between 1 and "+strconv.Itoa(MaxSQLRows), "")
		return
	}
	if runner != nil && q != "select * from helios_whoami()" && q != "select * from helios_whoami( )" {
		runSQL(ctx, c, runner, &req)
		return
	}
	if len(req.Params) > 0 {
		WriteError(ctx, http.StatusNotImplemented, "NO_UPSTREAM", "params need an upstream database: the built-in responder runs no statements with parameters", "")
		return
	}
	var res sqlResult
	switch q {
	case "select 1":
		res = sqlResult{Columns: []sqlColumn{{"?column?", "int4"}}, Rows: [][]any{{1}}, Command: "SELECT 1"}
	case "select * from helios_whoami()", "select * from helios_whoami( )":
		res = sqlResult{Columns: []sqlColumn{{"token_id", "text"}, {"type", "text"}, {"scopes", "text"}, {"expires_at", "timestamptz"}},
			Rows:    [][]any{{c.ID.String(), c.Type.String(), strings.Join(c.Scopes.Strings(), ","), c.Expires().Format(time.RFC3339)}},
			Command: "SELECT 1"}
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

// runSQL runs a checked request on the upstream and writes its result or
// the server's error (400 SQL_ERROR with the SQLSTATE).
func runSQL(ctx *fasthttp.RequestCtx, c *core.Claims, runner SQLRunner, req *sqlRequest) {
	rctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	res, err := runner.RunSQL(rctx, c, req.Database, req.Query, req.Params, req.MaxRows)
	if err != nil {
		var te *core.Error
		var se *SQLError
		switch {
		case errors.As(err, &te):
			WriteTokenError(ctx, te)
		case errors.As(err, &se):
			httpapi.WriteError(ctx, &httpapi.Error{Status: http.StatusBadRequest, Code: "SQL_ERROR", Message: se.Message, Detail: se.Detail, SQLState: se.SQLState})
		default:
			WriteError(ctx, http.StatusBadGateway, "UPSTREAM_UNAVAILABLE", "the upstream database could not run the request: "+err.Error(), "")
		}
		return
	}
	b, err := json.Marshal(res)
	if err != nil {
		WriteError(ctx, http.StatusInternalServerError, "INTERNAL", "the result could not be encoded as JSON", "")
		return
	}
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
