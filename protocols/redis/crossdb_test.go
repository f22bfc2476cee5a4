package redis

import (
	"strconv"
	"strings"
	"testing"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/policyset"
	"github.com/heliosdb/auth/netio"
)

// TestCrossDatabaseCommands: commands that name or reach a logical database
// other than the selected one (MOVE, COPY … DB, SWAPDB, MIGRATE, FLUSHALL,
// scripts) are checked against the registry before anything else answers
// them. The test token works on test database 3; database 0 ("db0") is
// registered and not a test database, 4 is a test database, 5 is not
// registered. A live token is not limited by the registry, so its commands
// reach the "no upstream" reply.
func TestCrossDatabaseCommands(t *testing.T) {
	const (
		allow   = "-ERR no upstream database is configured"
		noPerm  = "-NOPERM User default has no permissions to run the '"
		argsErr = "-ERR wrong number of arguments for '"
	)
	testOnly := func(cmd string, db int) string {
		return noPerm + cmd + "' command on database " + strconv.Itoa(db) + " (" + core.ErrTestDatabaseOnly.Message +
			": Redis database " + strconv.Itoa(db) + " is the registered database \"db" + strconv.Itoa(db) + "\", which is not a test database)\r\n"
	}
	every := func(cmd string, db int) string {
		return noPerm + cmd + "' command, which reaches every logical database (0 to 15), including database " + strconv.Itoa(db) +
			" (" + core.ErrTestDatabaseOnly.Message + ": Redis database " + strconv.Itoa(db) + " is the registered database \"db" + strconv.Itoa(db) + "\", which is not a test database)\r\n"
	}
	for _, tc := range []struct {
		name    string
		test    bool // a test token on database 3; else a live token (all scopes)
		allTest bool // every logical database is registered as a test database
		args    []string
		want    string // the whole reply, or a prefix when it ends in allow / argsErr
		denied  bool   // counted as a forbidden authentication
	}{
		{name: "MOVE to a live database", test: true, args: []string{"MOVE", "k", "0"}, want: testOnly("move", 0), denied: true},
		{name: "MOVE to an unregistered database", test: true, args: []string{"move", "k", "5"}, want: testOnly("move", 5), denied: true},
		{name: "MOVE to a test database", test: true, args: []string{"MoVe", "k", "4"}, want: allow},
		{name: "MOVE, live token", args: []string{"MOVE", "k", "0"}, want: allow},
		{name: "MOVE, bad index", test: true, args: []string{"MOVE", "k", "zero"}, want: "-ERR value is not an integer or out of range\r\n"},
		{name: "MOVE, index 16", test: true, args: []string{"MOVE", "k", "16"}, want: "-ERR DB index is out of range\r\n"},
		{name: "MOVE, index -1", args: []string{"MOVE", "k", "-1"}, want: "-ERR DB index is out of range\r\n"},
		{name: "MOVE, no index", test: true, args: []string{"MOVE", "k"}, want: argsErr + "move' command\r\n"},

		{name: "COPY DB to a live database", test: true, args: []string{"COPY", "a", "b", "DB", "0"}, want: testOnly("copy", 0), denied: true},
		{name: "COPY REPLACE DB to a live database", test: true, args: []string{"COPY", "a", "b", "REPLACE", "db", "0"}, want: testOnly("copy", 0), denied: true},
		{name: "COPY DB twice, the second live", test: true, args: []string{"COPY", "a", "b", "DB", "4", "DB", "0"}, want: testOnly("copy", 0), denied: true},
		{name: "COPY DB to a test database", test: true, args: []string{"COPY", "a", "b", "DB", "4", "REPLACE"}, want: allow},
		{name: "COPY within the database", test: true, args: []string{"COPY", "a", "b"}, want: allow},
		{name: "COPY DB, live token", args: []string{"COPY", "a", "b", "DB", "0"}, want: allow},
		{name: "COPY DB without an index", test: true, args: []string{"COPY", "a", "b", "DB"}, want: "-ERR syntax error\r\n"},

		{name: "SWAPDB test with live", test: true, args: []string{"SWAPDB", "3", "0"}, want: testOnly("swapdb", 0), denied: true},
		{name: "SWAPDB live with test", test: true, args: []string{"SWAPDB", "0", "3"}, want: testOnly("swapdb", 0), denied: true},
		{name: "SWAPDB two test databases", test: true, args: []string{"swapdb", "3", "4"}, want: allow},
		{name: "SWAPDB, live token", args: []string{"SWAPDB", "3", "0"}, want: allow},
		{name: "SWAPDB, bad index", test: true, args: []string{"SWAPDB", "x", "0"}, want: "-ERR invalid first DB index\r\n"},

		{name: "MIGRATE to database 0", test: true, args: []string{"MIGRATE", "10.0.0.9", "6379", "k", "0", "5000"},
			want: noPerm + "migrate' command to database 0 on 10.0.0.9:6379 (" + core.ErrTestDatabaseOnly.Message +
				": MIGRATE writes to another server, whose databases are not in HeliosDB's registry of test databases)\r\n", denied: true},
		{name: "MIGRATE to a test database number", test: true, args: []string{"MIGRATE", "127.0.0.1", "6380", "", "4", "5000", "KEYS", "a", "b"},
			want: noPerm + "migrate' command to database 4 on 127.0.0.1:6380 (", denied: true},
		{name: "MIGRATE, live token", args: []string{"MIGRATE", "10.0.0.9", "6379", "k", "0", "5000"}, want: allow},
		{name: "MIGRATE, too few arguments", test: true, args: []string{"MIGRATE", "10.0.0.9", "6379"}, want: argsErr + "migrate' command\r\n"},

		{name: "FLUSHALL", test: true, args: []string{"FLUSHALL"}, want: every("flushall", 0), denied: true},
		{name: "FLUSHALL ASYNC", test: true, args: []string{"flushall", "ASYNC"}, want: every("flushall", 0), denied: true},
		{name: "FLUSHALL, every database a test one", test: true, allTest: true, args: []string{"FLUSHALL"}, want: allow},
		{name: "FLUSHALL, live token", args: []string{"FLUSHALL"}, want: allow},
		{name: "EVAL (a script may SELECT)", test: true, args: []string{"EVAL", "redis.call('SELECT', 0) return redis.call('GET', 'k')", "0"}, want: every("eval", 0), denied: true},
		{name: "FCALL_RO", test: true, args: []string{"FCALL_RO", "f", "0"}, want: every("fcall_ro", 0), denied: true},
		{name: "EVALSHA, every database a test one", test: true, allTest: true, args: []string{"EVALSHA", "abc", "0"}, want: allow},
		{name: "EVAL, live token", args: []string{"EVAL", "return 1", "0"}, want: allow},

		{name: "SELECT is unchanged", test: true, args: []string{"SELECT", "0"}, want: "-NOPERM User default has no permissions to select database 0 (", denied: true},
		{name: "GET is unchanged", test: true, args: []string{"GET", "k"}, want: allow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			pol := policyset.New()
			pol.SetDatabase("db0", false)
			pol.SetDatabase("db3", true)
			pol.SetDatabase("db4", true)
			if tc.allTest {
				for db := range numDatabases {
					pol.SetDatabase("db"+strconv.Itoa(db), true)
				}
			}
			s := New(Options{Policy: pol}).NewSession(&netio.ConnInfo{ID: 1, PlaintextOK: true}).(*Session)
			tok := f.live(t, core.AllScopes)
			if tc.test {
				tok, _ = f.mintClaims(t, core.Claims{Type: core.TypeTest, Scopes: core.AllScopes, Flags: core.FlagTestOnly})
			}
			if out, _ := run(t, f, s, cmd("AUTH", tok)+cmd("SELECT", "3")); out != "+OK\r\n+OK\r\n" {
				t.Fatalf("AUTH, SELECT 3: %q", out)
			}
			out, act := run(t, f, s, cmd(tc.args...))
			if act != netio.Continue {
				t.Fatalf("action %v", act)
			}
			if strings.HasSuffix(tc.want, "\r\n") {
				if out != tc.want {
					t.Fatalf("got  %q\nwant %q", out, tc.want)
				}
			} else if !strings.HasPrefix(out, tc.want) {
				t.Fatalf("got %q, want a reply starting %q", out, tc.want)
			}
			o := f.obs.outcomes
			if got := o[len(o)-1] == netio.OutcomeForbidden; got != tc.denied {
				t.Fatalf("outcomes %v: last forbidden %v, want %v", o, got, tc.denied)
			}
			// The refusal leaves the session as it was.
			if out, _ := run(t, f, s, cmd("CLIENT", "INFO")); !strings.Contains(out, " db=3 ") || !s.Authenticated() {
				t.Fatalf("after: %q", out)
			}
		})
	}
}

// TestCrossDatabaseScopeFirst: a token without the scope a cross-database
// command needs gets the scope refusal, as for any command.
func TestCrossDatabaseScopeFirst(t *testing.T) {
	f := newFixture(t)
	s := New(Options{Policy: policyset.New()}).NewSession(&netio.ConnInfo{ID: 1, PlaintextOK: true}).(*Session)
	run(t, f, s, cmd("AUTH", f.live(t, 1<<core.ScopeDatabaseRead)))
	out, _ := run(t, f, s, cmd("MOVE", "k", "zero")+cmd("FLUSHALL"))
	want := "-NOPERM User default has no permissions to run the 'move' command (Token does not have required scope: database:write)\r\n" +
		"-NOPERM User default has no permissions to run the 'flushall' command (Token does not have required scope: database:delete)\r\n"
	if out != want {
		t.Fatalf("got %q", out)
	}
}

// TestCrossDatabaseAllocs: a checked cross-database command that is allowed
// allocates nothing either.
func TestCrossDatabaseAllocs(t *testing.T) {
	f := newFixture(t)
	pol := policyset.New()
	for db := range numDatabases {
		pol.SetDatabase("db"+strconv.Itoa(db), true)
	}
	s := New(Options{Policy: pol}).NewSession(&netio.ConnInfo{PlaintextOK: true}).(*Session)
	tok, _ := f.mintClaims(t, core.Claims{Type: core.TypeTest, Scopes: core.AllScopes, Flags: core.FlagTestOnly})
	if _, out, _ := s.Handle(f.env, []byte(cmd("AUTH", tok)), nil); string(out) != "+OK\r\n" {
		t.Fatalf("AUTH: %q", out)
	}
	in := []byte(cmd("MOVE", "k", "4") + cmd("COPY", "a", "b", "DB", "5", "REPLACE") + cmd("SWAPDB", "1", "2") + cmd("FLUSHALL"))
	out := make([]byte, 0, 4096)
	if a := testing.AllocsPerRun(200, func() { _, out, _ = s.Handle(f.env, in, out[:0]) }); a != 0 {
		t.Fatalf("%.1f allocs", a)
	}
	if strings.Count(string(out), "-ERR no upstream") != 4 {
		t.Fatalf("got %q", out)
	}
}
