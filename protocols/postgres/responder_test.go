package postgres

import (
	"strings"
	"testing"

	"github.com/heliosdb/auth/netio"
)

// summary renders server messages as types, with CommandComplete tags,
// ReadyForQuery statuses, error codes and ParameterStatus pairs, e.g.
// "C[BEGIN] Z[T]".
func summary(ms []msg) string {
	var b []string
	for _, m := range ms {
		switch m.typ {
		case 'C':
			tag, _, _ := cstring(m.body)
			b = append(b, "C["+string(tag)+"]")
		case 'Z':
			b = append(b, "Z["+string(m.body)+"]")
		case 'E':
			b = append(b, "E["+errField(m.body, 'C')+"]")
		case 'S':
			k, rest, _ := cstring(m.body)
			v, _, _ := cstring(rest)
			b = append(b, "S["+string(k)+"="+string(v)+"]")
		case 'T':
			name, _, _ := cstring(m.body[2:])
			b = append(b, "T["+string(name)+"]")
		default:
			b = append(b, string(m.typ))
		}
	}
	return strings.Join(b, " ")
}

// TestTransactionsAndSet: BEGIN / START TRANSACTION, COMMIT / END and
// ROLLBACK / ABORT get their tags and ReadyForQuery's status follows ('T'
// in a block, 'E' after an error in one, when every statement but COMMIT
// and ROLLBACK gets 25P02, and COMMIT of a failed block is ROLLBACK); SET
// and RESET are accepted, application_name with a ParameterStatus and
// SHOW; SELECT 1 AS one names its column. Simple and extended protocol.
func TestTransactionsAndSet(t *testing.T) {
	r := newRig(t, netio.ConnInfo{PlaintextOK: true})
	r.login()
	for _, c := range []struct{ q, want string }{
		{"BEGIN", "C[BEGIN] Z[T]"},
		{"SELECT 1 AS one", "T[one] D C[SELECT 1] Z[T]"},
		{"COMMIT", "C[COMMIT] Z[I]"},
		{"start transaction isolation level serializable; select 1; end", "C[BEGIN] T[?column?] D C[SELECT 1] C[COMMIT] Z[I]"},
		{"begin; DELETE FROM t", "C[BEGIN] E[0A000] Z[E]"},
		{"SELECT 1", "E[25P02] Z[E]"},
		{"COMMIT", "C[ROLLBACK] Z[I]"},
		{"BEGIN WORK; SELECT 2; ROLLBACK", "C[BEGIN] T[?column?] D C[SELECT 1] C[ROLLBACK] Z[I]"},
		{"SET application_name = 'it''s me'", "S[application_name=it's me] C[SET] Z[I]"},
		{"SHOW application_name", "T[application_name] D C[SHOW] Z[I]"},
		{"SET SESSION search_path TO public; SET LOCAL statement_timeout = 0", "C[SET] C[SET] Z[I]"},
		{"RESET application_name", "S[application_name=] C[RESET] Z[I]"},
		{"RESET ALL", "S[application_name=] C[RESET] Z[I]"},
		{"abort", "C[ROLLBACK] Z[I]"},
	} {
		out, _ := r.feed(frontend('Q', cstr(c.q)))
		if got := summary(parseBackend(t, out)); got != c.want {
			t.Errorf("%q:\n got  %s\n want %s", c.q, got, c.want)
		}
	}
	r.feed(frontend('Q', cstr("SET application_name = 'x'")))
	out, _ := r.feed(frontend('Q', cstr("SHOW application_name")))
	if !strings.Contains(string(out), "\x00\x00\x00\x01x") {
		t.Errorf("SHOW application_name after SET: %q", out)
	}

	// The extended protocol: pgx runs BEGIN through Exec; an error inside
	// the block fails it until Sync and beyond.
	ext := func(q string) string {
		in := append(frontend('P', cstr(""), cstr(q), []byte{0, 0}), frontend('B', cstr(""), cstr(""), []byte{0, 0, 0, 0, 0, 0})...)
		in = append(in, frontend('E', cstr(""), []byte{0, 0, 0, 0})...)
		out, _ := r.feed(append(in, frontend('S')...))
		return summary(parseBackend(t, out))
	}
	for _, c := range []struct{ q, want string }{
		{"BEGIN", "1 2 C[BEGIN] Z[T]"},
		{"SELECT 1 AS one", "1 2 D C[SELECT 1] Z[T]"},
		{"DROP TABLE t", "E[0A000] Z[E]"},
		{"SELECT 1", "E[25P02] Z[E]"},
		{"ROLLBACK", "1 2 C[ROLLBACK] Z[I]"},
	} {
		if got := ext(c.q); got != c.want {
			t.Errorf("extended %q:\n got  %s\n want %s", c.q, got, c.want)
		}
	}
}

// TestSelectParam: SELECT $1 in the extended protocol returns the bound
// value with the parameter's type (Parse's, text when unnamed), converted
// between text and binary for integers; NULL stays NULL; Bind with another
// number of parameters is 08P01; in the simple protocol it is 42P02.
func TestSelectParam(t *testing.T) {
	r := newRig(t, netio.ConnInfo{PlaintextOK: true})
	r.login()
	out, _ := r.feed(frontend('Q', cstr("SELECT $1")))
	if got := summary(parseBackend(t, out)); got != "E[42P02] Z[I]" {
		t.Fatalf("simple SELECT $1: %s", got)
	}
	run := func(oid []byte, param []byte, paramFormat, resultFormat byte) []msg {
		parse := frontend('P', cstr("s"), cstr("SELECT $1"), append([]byte{0, byte(len(oid) / 4)}, oid...))
		bind := []byte{0, 1, 0, paramFormat, 0, 1}
		if param == nil {
			bind = append(bind, 0xff, 0xff, 0xff, 0xff)
		} else {
			bind = append(append(bind, 0, 0, 0, byte(len(param))), param...)
		}
		bind = append(bind, 0, 1, 0, resultFormat)
		in := append(parse, frontend('D', []byte{'S'}, cstr("s"))...)
		in = append(in, frontend('B', cstr(""), cstr("s"), bind)...)
		in = append(in, frontend('E', cstr(""), []byte{0, 0, 0, 0})...)
		out, _ := r.feed(append(in, frontend('S')...))
		return parseBackend(t, out)
	}
	int4 := []byte{0, 0, 0, 23}
	for _, c := range []struct {
		oid, param    []byte
		pf, rf        byte
		wantOID, want string
	}{
		{nil, []byte("héllo"), 0, 0, "\x00\x00\x00\x19", "héllo"},
		{int4, []byte{0, 0, 0, 7}, 1, 1, "\x00\x00\x00\x17", "\x00\x00\x00\x07"},
		{int4, []byte("7"), 0, 1, "\x00\x00\x00\x17", "\x00\x00\x00\x07"},
		{int4, []byte{0xff, 0xff, 0xff, 0xf9}, 1, 0, "\x00\x00\x00\x17", "-7"},
	} {
		ms := run(c.oid, c.param, c.pf, c.rf)
		if got := types(ms); got != "1tT2DCZ" || string(ms[1].body[2:]) != c.wantOID {
			t.Fatalf("%q: %s %q", c.param, got, ms)
		}
		if row := ms[4].body; string(row[6:]) != c.want {
			t.Fatalf("%q: row %q, want %q", c.param, row, c.want)
		}
	}
	if ms := run(nil, nil, 0, 0); types(ms) != "1tT2DCZ" || string(ms[4].body) != "\x00\x01\xff\xff\xff\xff" {
		t.Fatalf("NULL: %q", ms)
	}
	in := append(frontend('P', cstr("s"), cstr("SELECT $1"), []byte{0, 0}), frontend('B', cstr(""), cstr("s"), []byte{0, 0, 0, 0, 0, 0})...)
	out, _ = r.feed(append(in, frontend('S')...))
	if ms := parseBackend(t, out); types(ms) != "1EZ" || errField(ms[1].body, 'C') != "08P01" {
		t.Fatalf("Bind without the parameter: %q", ms)
	}
}
