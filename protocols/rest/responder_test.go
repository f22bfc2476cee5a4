package rest

import (
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
)

// TestSQLStatementScopes: every statement of a query is checked, as
// PostgreSQL reads it: a database:read token gets 403 FORBIDDEN naming
// the first scope it lacks for each of these (the first-keyword
// classifier let them through), any token gets the gateway's refusal for
// a statement no token may run, and reads reach the responder (501
// NO_UPSTREAM, or rows for SELECT 1).
func TestSQLStatementScopes(t *testing.T) {
	f := newFixture(t)
	ro, _ := f.mint(t, core.ScopeSet(0).With(core.ScopeDatabaseRead), time.Hour)
	all, _ := f.mint(t, core.AllScopes, time.Hour)
	const write = "Token does not have required scope: database:write"
	const notAllowed = "Statement not allowed through the HeliosDB gateway: "
	for _, tc := range []struct {
		tok, query string
		status     int
		code, msg  string
	}{
		{ro, `SELECT 1; DELETE FROM t`, 403, "FORBIDDEN", write},
		{ro, `EXPLAIN ANALYZE DELETE FROM t`, 403, "FORBIDDEN", write},
		{ro, `SELECT * INTO newt FROM t`, 403, "FORBIDDEN", write},
		{ro, `WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x`, 403, "FORBIDDEN", write},
		{ro, `SELECT $$ ' $$; DELETE FROM t; --'`, 403, "FORBIDDEN", write},
		{ro, `SELECT E'\''; DELETE FROM t; --'`, 403, "FORBIDDEN", write},
		{ro, `CREATE DATABASE d`, 403, "FORBIDDEN", "Token does not have required scope: database:create"},
		{all, `SET ROLE postgres`, 403, "FORBIDDEN", notAllowed + "it changes the database role the session runs as"},
		{all, `SELECT 1; SELECT 'unterminated`, 403, "FORBIDDEN", notAllowed},
		{ro, "-- DELETE FROM t\nSELECT 1", 501, "NO_UPSTREAM", ""},
		{ro, `SELECT 'DELETE FROM t'`, 501, "NO_UPSTREAM", ""},
		{ro, `WITH x AS (SELECT 1) SELECT * FROM x`, 501, "NO_UPSTREAM", ""},
		{ro, `-- only a comment`, 400, "INVALID_REQUEST", ""},
	} {
		body := `{"query":` + jsonString(tc.query) + `}`
		ctx := f.do("POST", "/api/v1/sql", "Bearer "+tc.tok, body)
		if ctx.Response.StatusCode() != tc.status {
			t.Errorf("%q: %d %s", tc.query, ctx.Response.StatusCode(), ctx.Response.Body())
			continue
		}
		if e := decodeErr(t, ctx).Error; e.Code != tc.code || !strings.HasPrefix(e.Message, tc.msg) {
			t.Errorf("%q: %+v", tc.query, e)
		}
	}
	if ctx := f.do("POST", "/api/v1/sql", "Bearer "+ro, `{"query":"select 1 -- one"}`); ctx.Response.StatusCode() != 501 {
		t.Fatalf("a comment after SELECT 1: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
}

func jsonString(s string) string {
	var b []byte
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, c)
		}
	}
	return string(append(b, '"'))
}

// TestSQLBodyIsCheckedText: the SQL endpoint decodes its body as the
// issuer does — invalid UTF-8 and escaped lone surrogates are 400
// INVALID_JSON before anything reads the query (encoding/json would fold
// them to U+FFFD, and the statement checked would not be the one sent), as
// are unknown fields, trailing data and an empty body; an oversized body
// is 413.
func TestSQLBodyIsCheckedText(t *testing.T) {
	f := newFixture(t)
	all, _ := f.mint(t, core.AllScopes, time.Hour)
	for body, want := range map[string]int{
		"{\"query\":\"SELECT 1 \xff\"}": 400,
		`{"query":"SELECT 1 \udcff"}`:   400,
		`{"query":"SELECT 1","x":1}`:    400,
		`{"query":"SELECT 1"} {}`:       400,
		``:                              400,
		`{"query":"` + strings.Repeat("x", MaxSQLBody) + `"}`: 413,
		`{"query":"SELECT 1"}`:                                200,
	} {
		ctx := f.do("POST", "/api/v1/sql", "Bearer "+all, body)
		if ctx.Response.StatusCode() != want {
			t.Errorf("%.40q: %d %s, want %d", body, ctx.Response.StatusCode(), ctx.Response.Body(), want)
		}
	}
}
