package postgres

import (
	"strings"
	"testing"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/internal/sqlscope"
)

// readOnly logs a session in with a database:read token.
func readOnly(t *testing.T) *rig {
	r := newRig(t, netio.ConnInfo{PlaintextOK: true})
	r.token = r.mint(core.ScopeSet(0).With(core.ScopeDatabaseRead), 3600)
	r.login()
	return r
}

// TestScopeOfEveryStatement: a database:read token gets ERROR 42501 for
// each of these — every one got past the first-keyword classifier — in
// the simple protocol and in Parse, and nothing of the query runs (no
// RowDescription for its SELECT 1).
func TestScopeOfEveryStatement(t *testing.T) {
	const write = "Token does not have required scope: database:write"
	const role = sqlscope.MsgNotAllowed + "it changes the database role the session runs as"
	for q, msg := range map[string]string{
		"WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x": write,
		"EXPLAIN ANALYZE DELETE FROM t":                         write,
		"SELECT * INTO newt FROM t":                             write,
		"PREPARE p AS DELETE FROM t":                            write,
		"SELECT 1; DELETE FROM t":                               write,
		"SELECT $$ ' $$; DELETE FROM t; --'":                    write,
		"SELECT E'\\''; DELETE FROM t; --'":                     write,
		"SET ROLE postgres":                                     role,
		"SET SESSION AUTHORIZATION postgres":                    role,
		"SELECT set_config('role', 'postgres', false)":          role,
		"RESET ROLE": role,
	} {
		r := readOnly(t)
		out, _ := r.feed(frontend('Q', cstr(q)))
		ms := parseBackend(t, out)
		if types(ms) != "EZ" || errField(ms[0].body, 'S') != "ERROR" || errField(ms[0].body, 'C') != "42501" || errField(ms[0].body, 'M') != msg {
			t.Errorf("simple %q: %q", q, out)
		}
		out, _ = r.feed(append(frontend('P', cstr("s"), cstr(q), []byte{0, 0}), frontend('S')...))
		ms = parseBackend(t, out)
		if types(ms) != "EZ" || errField(ms[0].body, 'C') != "42501" || errField(ms[0].body, 'M') != msg {
			t.Errorf("Parse %q: %q", q, out)
		}
		if n := len(r.obs.outcomes); n != 3 || r.obs.outcomes[1] != netio.OutcomeForbidden || r.obs.outcomes[2] != netio.OutcomeForbidden {
			t.Errorf("%q: outcomes %v", q, r.obs.outcomes)
		}
	}
}

// TestReadsPassTheScopeCheck: what only reads reaches the responder, which
// answers its built-ins and says "no upstream" to the rest.
func TestReadsPassTheScopeCheck(t *testing.T) {
	r := readOnly(t)
	for q, want := range map[string]string{
		"-- DELETE FROM t\nSELECT 1":             "TDCZ",
		"SELECT 1; /* ; DELETE FROM t */":        "TDCZ",
		"  ;; SELECT 1; SELECT version()":        "TDCTDCZ",
		"WITH x AS (SELECT 1) SELECT * FROM x":   "EZ",
		"EXPLAIN SELECT * FROM t":                "EZ",
		"SELECT 'DELETE FROM t'":                 "EZ",
		"SET search_path = public":               "CZ", // accepted: a session setting
		"SELECT $$;$$":                           "EZ",
		"/* only */ -- comments":                 "IZ",
		"SELECT 1; WITH x AS (SELECT 2) TABLE x": "TDCEZ",
	} {
		out, _ := r.feed(frontend('Q', cstr(q)))
		ms := parseBackend(t, out)
		if got := types(ms); got != want {
			t.Errorf("%q: %s, want %s", q, got, want)
			continue
		}
		if last := ms[len(ms)-2]; last.typ == 'E' && errField(last.body, 'C') != codeFeatureNotSupported {
			t.Errorf("%q: %q", q, out)
		}
	}
}

// TestParseMultipleCommands: PostgreSQL refuses more than one command in a
// prepared statement (42601), after the scope check.
func TestParseMultipleCommands(t *testing.T) {
	r := newRig(t, netio.ConnInfo{PlaintextOK: true})
	r.login()
	out, _ := r.feed(append(frontend('P', cstr(""), cstr("SELECT 1; SELECT 2"), []byte{0, 0}), frontend('S')...))
	ms := parseBackend(t, out)
	if types(ms) != "EZ" || errField(ms[0].body, 'C') != "42601" || !strings.Contains(errField(ms[0].body, 'M'), "multiple commands") {
		t.Fatalf("%q", out)
	}
	out, _ = r.feed(append(frontend('P', cstr(""), cstr("SELECT 1;"), []byte{0, 0}), frontend('S')...))
	if got := types(parseBackend(t, out)); got != "1Z" {
		t.Fatalf("a trailing semicolon: %s", got)
	}
}

// TestRefusedForEveryToken: a full-access token is refused too.
func TestRefusedForEveryToken(t *testing.T) {
	r := newRig(t, netio.ConnInfo{PlaintextOK: true})
	r.login()
	for _, q := range []string{"SET ROLE postgres", "ALTER SYSTEM SET work_mem = '1GB'", "COPY t FROM PROGRAM 'id'", "SELECT 'unterminated"} {
		out, _ := r.feed(frontend('Q', cstr(q)))
		ms := parseBackend(t, out)
		if types(ms) != "EZ" || errField(ms[0].body, 'C') != "42501" || !strings.HasPrefix(errField(ms[0].body, 'M'), sqlscope.MsgNotAllowed) {
			t.Errorf("%q: %q", q, out)
		}
	}
}
