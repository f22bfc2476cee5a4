package proxy

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/heliosdb/auth/core"
)

// sqlResponse is POST /api/v1/sql's body, result or error.
type sqlResponse struct {
	Columns   []struct{ Name, Type string } `json:"columns"`
	Rows      [][]any                       `json:"rows"`
	RowCount  int                           `json:"row_count"`
	Command   string                        `json:"command"`
	Truncated bool                          `json:"truncated"`
	Error     struct {
		Code, Message, SQLState string
	} `json:"error"`
}

// TestRESTProxy: POST /api/v1/sql runs on the PostgreSQL upstream as the
// token's role: typed columns, JSON values, $n parameters, a row limit, a
// statement timeout, the server's errors with their SQLSTATE, and the
// classifier before all of it.
func TestRESTProxy(t *testing.T) {
	d := daemonWith(t, withSQLTimeout)
	owner := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
	reader := d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead)})
	sql := func(tok string, body map[string]any) (int, sqlResponse) {
		t.Helper()
		status, raw := d.Do(t, "POST", "/api/v1/sql", tok, body)
		var r sqlResponse
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("%d %s", status, raw)
		}
		return status, r
	}
	if st, r := sql(owner, map[string]any{"query": "DROP TABLE IF EXISTS rest_t; CREATE TABLE rest_t(a int, b text, c jsonb, d numeric, e bool)"}); st != 200 || r.Command != "CREATE TABLE" {
		t.Fatalf("DDL: %d %+v", st, r)
	}
	for i, b := range []string{"x", "y", "z"} {
		st, r := sql(owner, map[string]any{"query": "INSERT INTO rest_t VALUES ($1, $2, $3, $4, $5)",
			"params": []any{i + 1, b, map[string]any{"k": i}, "1.50", i == 0}})
		if st != 200 || r.Command != "INSERT 0 1" {
			t.Fatalf("insert with params: %d %+v", st, r)
		}
	}
	st, r := sql(reader, map[string]any{"query": "SELECT a, b, c, d, e FROM rest_t WHERE a >= $1 ORDER BY a", "params": []any{1}})
	types := []string{}
	for _, c := range r.Columns {
		types = append(types, c.Name+":"+c.Type)
	}
	if st != 200 || strings.Join(types, ",") != "a:int4,b:text,c:jsonb,d:numeric,e:bool" || r.RowCount != 3 {
		t.Fatalf("select: %d %+v", st, r)
	}
	if row, _ := json.Marshal(r.Rows[0]); string(row) != `[1,"x",{"k":0},"1.50",true]` {
		t.Fatalf("first row as JSON: %s", row)
	}
	if st, r := sql(reader, map[string]any{"query": "SELECT a FROM rest_t ORDER BY a", "max_rows": 2}); st != 200 || r.RowCount != 2 || !r.Truncated {
		t.Fatalf("max_rows 2 of 3: %d %+v", st, r)
	}
	if st, r := sql(reader, map[string]any{"query": "SELECT * FROM no_such_table"}); st != 400 || r.Error.Code != "SQL_ERROR" || r.Error.SQLState != "42P01" {
		t.Fatalf("server error: %d %+v", st, r)
	}
	if st, r := sql(reader, map[string]any{"query": "DELETE FROM rest_t"}); st != 403 || r.Error.Message != "Token does not have required scope: database:write" {
		t.Fatalf("classifier: %d %+v", st, r)
	}
	if st, r := sql(reader, map[string]any{"query": "SELECT pg_sleep(3)"}); st != 400 || r.Error.SQLState != "57014" {
		t.Fatalf("statement timeout: %d %+v", st, r)
	}
	// The role's wall: nextval passes the classifier, not the read role.
	sql(owner, map[string]any{"query": "CREATE SEQUENCE IF NOT EXISTS rest_seq"})
	if st, r := sql(reader, map[string]any{"query": "SELECT nextval('rest_seq')"}); st != 400 || r.Error.SQLState != "42501" ||
		!strings.Contains(r.Error.Message, "Token does not have required scope: database:write") {
		t.Fatalf("nextval with a read token: %d %+v", st, r)
	}
	// curl, as the guide shows it.
	out, err := exec.Command("curl", "-s", "--cacert", d.CACert, "-H", "Authorization: Bearer "+reader, "-d", `{"query": "SELECT count(*) AS n FROM rest_t"}`,
		"https://"+d.HTTP+"/api/v1/sql").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"columns":[{"name":"n","type":"int8"}],"rows":[[3]],"row_count":1`) {
		t.Fatalf("curl: %v %s", err, out)
	}
}
