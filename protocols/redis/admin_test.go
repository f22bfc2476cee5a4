package redis

import (
	"strconv"
	"strings"
	"testing"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/policyset"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/netio/netiotest"
)

// adminRefusal is the whole reply to a refused administrative command
// named as Redis names it ("shutdown", "acl|setuser").
func adminRefusal(name string) string {
	return "-NOPERM User default has no permissions to run the '" + name + "' command (administrative commands, which change " +
		"the server's users, configuration or replication, stop or stall it, or show other clients' data, are not allowed " +
		"through the HeliosDB gateway, whatever the token's scopes)\r\n"
}

// TestAdminCommands: administrative commands are refused for every token,
// "*" included, with -NOPERM naming the command and counted as forbidden;
// the commands and subcommands kept (ACL WHOAMI, CLIENT SETNAME, SCRIPT
// LOAD, CLUSTER INFO, …) answer as before, after the usual scope check.
// Each command runs with a full-access live token, a read-only live token
// and a full-access test token on a test database.
func TestAdminCommands(t *testing.T) {
	const noUpstream = "-ERR no upstream database is configured"
	noScope := func(name, scope string) string {
		return "-NOPERM User default has no permissions to run the '" + name + "' command (Token does not have required scope: " + scope + ")\r\n"
	}
	refused := []struct {
		args []string
		name string // as the refusal names it
	}{
		{[]string{"ACL", "SETUSER", "eve", "on", ">secret", "+@all", "~*"}, "acl|setuser"},
		{[]string{"acl", "deluser", "default"}, "acl|deluser"},
		{[]string{"Acl", "List"}, "acl|list"},
		{[]string{"ACL", "USERS"}, "acl|users"},
		{[]string{"ACL", "GETUSER", "default"}, "acl|getuser"},
		{[]string{"ACL", "LOG"}, "acl|log"},
		{[]string{"ACL", "DRYRUN", "default", "GET", "k"}, "acl|dryrun"},
		{[]string{"ACL", "SAVE"}, "acl|save"},
		{[]string{"ACL", "LOAD"}, "acl|load"},
		{[]string{"ACL", "GENPASS"}, "acl|genpass"},
		{[]string{"ACL", "NOSUCH"}, "acl|nosuch"},
		{[]string{"ACL", "SET\r\nUSER"}, "acl|set  user"},
		{[]string{"CONFIG", "SET", "requirepass", ""}, "config|set"},
		{[]string{"config", "get", "requirepass"}, "config|get"},
		{[]string{"CONFIG", "REWRITE"}, "config|rewrite"},
		{[]string{"CONFIG", "RESETSTAT"}, "config|resetstat"},
		{[]string{"CONFIG"}, "config"},
		{[]string{"SHUTDOWN"}, "shutdown"},
		{[]string{"shutdown", "NOSAVE", "FORCE"}, "shutdown"},
		{[]string{"DEBUG", "SLEEP", "0"}, "debug"},
		{[]string{"DEBUG", "SEGFAULT"}, "debug"},
		{[]string{"REPLICAOF", "10.0.0.9", "6379"}, "replicaof"},
		{[]string{"REPLICAOF", "NO", "ONE"}, "replicaof"},
		{[]string{"SLAVEOF", "10.0.0.9", "6379"}, "slaveof"},
		{[]string{"SYNC"}, "sync"},
		{[]string{"PSYNC", "?", "-1"}, "psync"},
		{[]string{"REPLCONF", "listening-port", "6380"}, "replconf"},
		{[]string{"FAILOVER", "TO", "10.0.0.9", "6379"}, "failover"},
		{[]string{"MODULE", "LOAD", "/tmp/evil.so"}, "module|load"},
		{[]string{"SAVE"}, "save"},
		{[]string{"BGSAVE", "SCHEDULE"}, "bgsave"},
		{[]string{"BGREWRITEAOF"}, "bgrewriteaof"},
		{[]string{"MONITOR"}, "monitor"},
		{[]string{"SENTINEL", "RESET", "*"}, "sentinel|reset"},
		{[]string{"PFDEBUG", "TODENSE", "k"}, "pfdebug"},
		{[]string{"PFSELFTEST"}, "pfselftest"},
		{[]string{"CLIENT", "KILL", "ID", "1"}, "client|kill"},
		{[]string{"CLIENT", "PAUSE", "100000", "ALL"}, "client|pause"},
		{[]string{"CLIENT", "UNPAUSE"}, "client|unpause"},
		{[]string{"CLIENT", "UNBLOCK", "5", "ERROR"}, "client|unblock"},
		{[]string{"client", "no-evict", "on"}, "client|no-evict"},
		{[]string{"CLIENT", "LIST"}, "client|list"},
		{[]string{"SCRIPT", "FLUSH", "SYNC"}, "script|flush"},
		{[]string{"FUNCTION", "FLUSH"}, "function|flush"},
		{[]string{"FUNCTION", "RESTORE", "\x00payload", "REPLACE"}, "function|restore"},
		{[]string{"LATENCY", "RESET"}, "latency|reset"},
		{[]string{"SLOWLOG", "RESET"}, "slowlog|reset"},
		{[]string{"SLOWLOG", "GET", "10"}, "slowlog|get"},
		{[]string{"MEMORY", "PURGE"}, "memory|purge"},
		{[]string{"CLUSTER", "RESET", "HARD"}, "cluster|reset"},
		{[]string{"CLUSTER", "MEET", "10.0.0.9", "6379"}, "cluster|meet"},
		{[]string{"CLUSTER", "ADDSLOTS", "1"}, "cluster|addslots"},
		{[]string{"CLUSTER", "FAILOVER", "TAKEOVER"}, "cluster|failover"},
		{[]string{"CLUSTER", "SETSLOT", "1", "NODE", "x"}, "cluster|setslot"},
		{[]string{"CLUSTER", "FLUSHSLOTS"}, "cluster|flushslots"},
	}
	// kept: what each token gets (full, read-only, test).
	kept := []struct {
		args           []string
		full, ro, test string // the whole reply, or a prefix when it does not end in CRLF
	}{
		{[]string{"ACL", "WHOAMI"}, "$7\r\ndefault\r\n", "$7\r\ndefault\r\n", "$7\r\ndefault\r\n"},
		{[]string{"ACL", "CAT"}, noUpstream, noUpstream, noUpstream},
		{[]string{"ACL", "HELP"}, noUpstream, noUpstream, noUpstream},
		{[]string{"ACL"}, noUpstream, noUpstream, noUpstream},
		{[]string{"CLIENT", "SETNAME", "app"}, "+OK\r\n", "+OK\r\n", "+OK\r\n"},
		{[]string{"CLIENT", "GETNAME"}, "$3\r\napp\r\n", "$3\r\napp\r\n", "$3\r\napp\r\n"},
		{[]string{"CLIENT", "SETINFO", "LIB-NAME", "go-redis"}, "+OK\r\n", "+OK\r\n", "+OK\r\n"},
		{[]string{"CLIENT", "ID"}, ":1\r\n", ":1\r\n", ":1\r\n"},
		{[]string{"CLIENT", "INFO"}, "$", "$", "$"},
		{[]string{"CLIENT", "NO-TOUCH", "on"}, "+OK\r\n", "+OK\r\n", "+OK\r\n"},
		{[]string{"CLIENT", "TRACKING", "on"}, "-ERR unknown subcommand 'TRACKING'. Try CLIENT HELP.\r\n",
			"-ERR unknown subcommand 'TRACKING'. Try CLIENT HELP.\r\n", "-ERR unknown subcommand 'TRACKING'. Try CLIENT HELP.\r\n"},
		{[]string{"SCRIPT", "LOAD", "return 1"}, noUpstream, noScope("script", "schema:write"), noUpstream},
		{[]string{"SCRIPT", "KILL"}, noUpstream, noScope("script", "schema:write"), noUpstream},
		{[]string{"FUNCTION", "LOAD", "#!lua name=l\nredis.register_function('f', function() return 1 end)"}, noUpstream, noScope("function", "schema:write"), noUpstream},
		{[]string{"FUNCTION", "DELETE", "l"}, noUpstream, noScope("function", "schema:write"), noUpstream},
		{[]string{"LATENCY", "LATEST"}, noUpstream, noUpstream, noUpstream},
		{[]string{"SLOWLOG", "LEN"}, noUpstream, noUpstream, noUpstream},
		{[]string{"MEMORY", "USAGE", "k"}, noUpstream, noUpstream, noUpstream},
		{[]string{"CLUSTER", "INFO"}, noUpstream, noUpstream, noUpstream},
		{[]string{"cluster", "keyslot", "k"}, noUpstream, noUpstream, noUpstream},
		{[]string{"INFO", "server"}, infoServer, infoServer, infoServer}, // the gateway's own section, for every token
		{[]string{"FLUSHALL"}, noUpstream, noScope("flushall", "database:delete"), noUpstream},
	}
	pol := policyset.New()
	for db := range numDatabases {
		pol.SetDatabase(string(databaseName(db)), true) // the test token may reach every database
	}
	f := newFixture(t)
	tokens := []struct {
		name string
		tok  string
	}{
		{"full", f.live(t, core.AllScopes)},
		{"read-only", f.live(t, 1<<core.ScopeDatabaseRead)},
	}
	testTok, _ := f.mintClaims(t, core.Claims{Type: core.TypeTest, Scopes: core.AllScopes, Flags: core.FlagTestOnly})
	tokens = append(tokens, struct{ name, tok string }{"test", testTok})
	for ti, tk := range tokens {
		t.Run(tk.name, func(t *testing.T) {
			s := New(Options{Policy: pol}).NewSession(&netio.ConnInfo{ID: 1, PlaintextOK: true}).(*Session)
			// Before authentication: NOAUTH, as for any command, and not
			// counted.
			if out, _ := run(t, f, s, cmd("ACL", "SETUSER", "eve", "on")+cmd("SHUTDOWN")); out != "-"+msgNoAuth+"\r\n-"+msgNoAuth+"\r\n" {
				t.Fatalf("before AUTH: %q", out)
			}
			if out, _ := run(t, f, s, cmd("AUTH", tk.tok)); out != "+OK\r\n" {
				t.Fatalf("AUTH: %q", out)
			}
			for _, c := range refused {
				before := len(f.obs.outcomes)
				out, act := run(t, f, s, cmd(c.args...))
				if want := adminRefusal(c.name); out != want || act != netio.Continue {
					t.Errorf("%q: %v\n got  %q\n want %q", c.args, act, out, want)
				}
				if o := f.obs.outcomes; len(o) != before+1 || o[before] != netio.OutcomeForbidden {
					t.Errorf("%q: outcomes %v, want one more forbidden", c.args, o[before:])
				}
			}
			for _, c := range kept {
				want := [3]string{c.full, c.ro, c.test}[ti]
				before := len(f.obs.outcomes)
				out, _ := run(t, f, s, cmd(c.args...))
				if strings.HasSuffix(want, "\r\n") && out != want || !strings.HasPrefix(out, want) {
					t.Errorf("%q: got %q, want %q", c.args, out, want)
				}
				if o := f.obs.outcomes; strings.HasPrefix(want, "-NOPERM") != (len(o) == before+1) {
					t.Errorf("%q: outcomes %v", c.args, o[before:])
				}
			}
			// The refusals left the session authenticated, as it was.
			if out, _ := run(t, f, s, cmd("PING")+cmd("CLIENT", "GETNAME")); out != "+PONG\r\n$3\r\napp\r\n" || !s.Authenticated() {
				t.Fatalf("after: %q", out)
			}
		})
	}
}

// TestAdminCommandAllocs: refusing an administrative command allocates
// nothing, and neither does checking a kept subcommand.
func TestAdminCommandAllocs(t *testing.T) {
	f := newFixture(t)
	env := *f.env
	env.Observer = netiotest.NopObserver{}
	s := New(Options{Policy: policyset.New()}).NewSession(&netio.ConnInfo{PlaintextOK: true}).(*Session)
	if _, out, _ := s.Handle(&env, []byte(cmd("AUTH", f.live(t, core.AllScopes))), nil); string(out) != "+OK\r\n" {
		t.Fatalf("AUTH: %q", out)
	}
	in := []byte(cmd("ACL", "SETUSER", "eve", "on") + cmd("CONFIG", "SET", "k", "v") + cmd("SHUTDOWN") +
		cmd("CLIENT", "KILL", "ID", "1") + cmd("ACL", "WHOAMI") + cmd("CLUSTER", "INFO"))
	out := make([]byte, 0, 4096)
	if a := testing.AllocsPerRun(200, func() { _, out, _ = s.Handle(&env, in, out[:0]) }); a != 0 {
		t.Fatalf("%.1f allocs", a)
	}
	if strings.Count(string(out), "-NOPERM") != 4 || !strings.Contains(string(out), "default") {
		t.Fatalf("got %q", out)
	}
}

// infoServer is the INFO server reply.
const infoServer = "$68\r\n# Server\r\nredis_version:" + serverVersion + "\r\nredis_mode:standalone\r\narch_bits:64\r\n\r\n"

// TestInfo: INFO answers the gateway's sections — all of them for none,
// default, all or everything, the named ones otherwise (several, any case;
// an unknown one adds nothing) — with redis_version and loading:0, which
// ioredis's ready check reads; before AUTH it is NOAUTH.
func TestInfo(t *testing.T) {
	f := newFixture(t)
	s := newSession(true)
	if out, _ := run(t, f, s, cmd("INFO")); !strings.HasPrefix(out, "-NOAUTH") {
		t.Fatalf("INFO before AUTH: %q", out)
	}
	run(t, f, s, cmd("AUTH", f.live(t, core.ScopeSet(0).With(core.ScopeSchemaWrite))))
	all := "# Server\r\nredis_version:" + serverVersion + "\r\nredis_mode:standalone\r\narch_bits:64\r\n\r\n" +
		"# Persistence\r\nloading:0\r\nasync_loading:0\r\n\r\n# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n# Keyspace\r\n"
	bulk := func(s string) string { return "$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n" }
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"INFO"}, bulk(all)},
		{[]string{"INFO", "default"}, bulk(all)},
		{[]string{"info", "EVERYTHING"}, bulk(all)},
		{[]string{"INFO", "server"}, infoServer},
		{[]string{"INFO", "Persistence", "server"}, bulk("# Server\r\nredis_version:" + serverVersion +
			"\r\nredis_mode:standalone\r\narch_bits:64\r\n\r\n# Persistence\r\nloading:0\r\nasync_loading:0\r\n")},
		{[]string{"INFO", "nosuch"}, "$0\r\n\r\n"},
	} {
		if out, _ := run(t, f, s, cmd(c.args...)); out != c.want {
			t.Errorf("%q:\n got  %q\n want %q", c.args, out, c.want)
		}
	}
}
