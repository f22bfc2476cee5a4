package redis

import (
	"strings"
	"testing"

	"github.com/heliosdb/auth/core"
)

// scanAll feeds stream to a scanner in pieces of size step and returns the
// top-level values it found (their bytes) and, for each, whether it is a
// push when the connection is a subscribed RESP2 one.
func scanAll(t *testing.T, stream string, step int, resp2PubSub bool) (values []string, pushed []bool) {
	t.Helper()
	var s replyScanner
	start := 0
	for off := 0; off < len(stream); off += step {
		p := []byte(stream[off:min(off+step, len(stream))])
		for i := 0; i < len(p); {
			k, done, err := s.feed(p[i:])
			if err != nil {
				t.Fatalf("step %d at %d: %v", step, off+i, err)
			}
			i += k
			if done {
				end := off + i
				values = append(values, stream[start:end])
				pushed = append(pushed, s.pushed(resp2PubSub))
				start = end
				s.next()
			}
		}
	}
	if !s.between() || start != len(stream) {
		t.Fatalf("step %d: the stream ended inside a value (at %d of %d)", step, start, len(stream))
	}
	return values, pushed
}

// TestReplyScanner: every RESP2 and RESP3 reply type is framed whole,
// whatever the reads cut it into (down to a byte at a time), nested
// aggregates, attributes, nulls and empty values included.
func TestReplyScanner(t *testing.T) {
	replies := []string{
		"+OK\r\n", "-ERR bad\r\n", ":42\r\n", "$5\r\nhello\r\n", "$0\r\n\r\n", "$-1\r\n", "*-1\r\n", "*0\r\n",
		"*3\r\n$3\r\nfoo\r\n:1\r\n*2\r\n+a\r\n$-1\r\n",
		"_\r\n", "#t\r\n", ",3.14\r\n", "(123456789012345678901234567890\r\n", "!5\r\nerr x\r\n", "=8\r\ntxt:abcd\r\n",
		"%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n%1\r\n+x\r\n~2\r\n:1\r\n:2\r\n",
		"|1\r\n+ttl\r\n:3600\r\n$3\r\nval\r\n",
		">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$4\r\nbody\r\n",
		"$12\r\nline\r\nbreaks\r\n",
	}
	stream := strings.Join(replies, "")
	for _, step := range []int{1, 2, 3, 7, 64, len(stream)} {
		got, pushed := scanAll(t, stream, step, false)
		if len(got) != len(replies) {
			t.Fatalf("step %d: %d values, want %d: %q", step, len(got), len(replies), got)
		}
		for i := range replies {
			if got[i] != replies[i] {
				t.Fatalf("step %d: value %d = %q, want %q", step, i, got[i], replies[i])
			}
			if want := strings.HasPrefix(replies[i], ">"); pushed[i] != want {
				t.Fatalf("step %d: value %d pushed = %v", step, i, pushed[i])
			}
		}
	}
	for _, bad := range []string{"?1\r\n", "$x\r\n", "*?\r\n", "+OK\n"} {
		var s replyScanner
		_, _, err := s.feed([]byte(bad))
		if err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestReplyScannerRESP2PubSub: on a RESP2 connection that subscribed,
// arrays shaped as Pub/Sub messages and confirmations answer no command;
// PING's array and other replies do; on a connection that did not
// subscribe nothing is a push.
func TestReplyScannerRESP2PubSub(t *testing.T) {
	stream := "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n" +
		"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n" +
		"*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$2\r\nhi\r\n" +
		"*2\r\n$4\r\npong\r\n$0\r\n\r\n" +
		"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n" +
		"+OK\r\n"
	for _, step := range []int{1, 5, len(stream)} {
		_, pushed := scanAll(t, stream, step, true)
		want := []bool{true, true, true, false, true, false}
		for i := range want {
			if pushed[i] != want[i] {
				t.Fatalf("step %d: value %d pushed %v, want %v", step, i, pushed[i], want[i])
			}
		}
		_, pushed = scanAll(t, stream, step, false)
		for i := range pushed {
			if pushed[i] {
				t.Fatalf("step %d: value %d is a push on a connection that did not subscribe", step, i)
			}
		}
	}
}

// TestMergeCommands: a command the gateway does not know is classified by
// the server's categories; a read of the gateway's that the server calls
// a write needs database:write; administrative ones are refused.
func TestMergeCommands(t *testing.T) {
	set := func(xs ...string) map[string]bool {
		m := map[string]bool{}
		for _, x := range xs {
			m[x] = true
		}
		return m
	}
	m := mergeCommands(map[string]serverCommand{
		"newread":  {name: "newread", flags: set("readonly"), categories: set("@read", "@fast")},
		"newwrite": {name: "newwrite", flags: set("write"), categories: set("@write")},
		"role":     {name: "role", categories: set("@admin", "@dangerous")},
		"script2":  {name: "script2", categories: set("@scripting")},
		"odd":      {name: "odd", categories: set("@fast")},
		"get":      {name: "get", flags: set("write"), categories: set("@write")},
		"box": {name: "box", subs: []serverCommand{
			{name: "box|peek", categories: set("@read")},
			{name: "box|burn", categories: set("@admin")},
		}},
	})
	check := func(name string, scope core.Scope, admin bool) {
		t.Helper()
		c := lookupIn(m, []byte(name))
		if c.scope != scope || (c.admin != nil) != admin {
			t.Errorf("%s: scope %v admin %v, want %v %v", name, c.scope, c.admin != nil, scope, admin)
		}
	}
	check("newread", core.ScopeDatabaseRead, false)
	check("newwrite", core.ScopeDatabaseWrite, false)
	check("role", core.ScopeDatabaseWrite, true)
	check("script2", core.ScopeDatabaseWrite, false)
	check("odd", core.ScopeDatabaseWrite, false)
	check("get", core.ScopeDatabaseWrite, false)
	check("set", core.ScopeDatabaseWrite, false)
	check("nosuch", core.ScopeDatabaseWrite, false)
	if c := lookupIn(m, []byte("script2")); c.cross != crossAll || !c.state {
		t.Errorf("script2: %+v", c)
	}
	box := lookupIn(m, []byte("box"))
	if box.scope != core.ScopeDatabaseRead || box.admin == nil || !box.admin.refuses([][]byte{[]byte("box"), []byte("BURN")}) ||
		box.admin.refuses([][]byte{[]byte("box"), []byte("peek")}) {
		t.Errorf("box: %+v", box)
	}
	if lookup([]byte("get")).scope != core.ScopeDatabaseRead {
		t.Error("the merge changed the gateway's own table")
	}
}
