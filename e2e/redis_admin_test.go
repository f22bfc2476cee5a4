package e2e

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestRedisAdminCommands: with go-redis v9 against the real heliosd,
// administrative commands (ACL SETUSER/DELUSER/LIST, CONFIG SET/GET,
// SHUTDOWN, DEBUG, REPLICAOF, MODULE, SAVE, MONITOR, CLIENT KILL/PAUSE,
// SCRIPT FLUSH, FUNCTION FLUSH, CLUSTER RESET, …) are refused with -NOPERM
// for a full-access token and a read-only one alike, counted as forbidden;
// ACL WHOAMI, CLIENT SETNAME/GETNAME and PING still answer, and the
// connection stays usable. redis-cli sees the same refusal.
func TestRedisAdminCommands(t *testing.T) {
	d := startDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := scopedToken(t, d)
	ro := scopedToken(t, d, "database:read")
	const why = "' command (administrative commands, which change the server's users, configuration or replication, " +
		"stop or stall it, or show other clients' data, are not allowed through the HeliosDB gateway, whatever the token's scopes)"
	refused := []struct {
		args []any
		name string
	}{
		{[]any{"ACL", "SETUSER", "eve", "on", ">secret", "+@all", "~*"}, "acl|setuser"},
		{[]any{"ACL", "DELUSER", "default"}, "acl|deluser"},
		{[]any{"ACL", "LIST"}, "acl|list"},
		{[]any{"ACL", "GETUSER", "default"}, "acl|getuser"},
		{[]any{"CONFIG", "SET", "requirepass", ""}, "config|set"},
		{[]any{"CONFIG", "GET", "requirepass"}, "config|get"},
		{[]any{"CONFIG", "REWRITE"}, "config|rewrite"},
		{[]any{"SHUTDOWN", "NOSAVE"}, "shutdown"},
		{[]any{"DEBUG", "SLEEP", "0"}, "debug"},
		{[]any{"REPLICAOF", "127.0.0.1", "1"}, "replicaof"},
		{[]any{"SLAVEOF", "NO", "ONE"}, "slaveof"},
		{[]any{"FAILOVER"}, "failover"},
		{[]any{"MODULE", "LOAD", "/tmp/x.so"}, "module|load"},
		{[]any{"SAVE"}, "save"},
		{[]any{"BGSAVE"}, "bgsave"},
		{[]any{"BGREWRITEAOF"}, "bgrewriteaof"},
		{[]any{"MONITOR"}, "monitor"},
		{[]any{"CLIENT", "KILL", "ID", "1"}, "client|kill"},
		{[]any{"CLIENT", "PAUSE", "60000"}, "client|pause"},
		{[]any{"CLIENT", "NO-EVICT", "on"}, "client|no-evict"},
		{[]any{"SCRIPT", "FLUSH"}, "script|flush"},
		{[]any{"FUNCTION", "FLUSH"}, "function|flush"},
		{[]any{"LATENCY", "RESET"}, "latency|reset"},
		{[]any{"SLOWLOG", "RESET"}, "slowlog|reset"},
		{[]any{"MEMORY", "PURGE"}, "memory|purge"},
		{[]any{"CLUSTER", "RESET", "HARD"}, "cluster|reset"},
	}
	for name, tok := range map[string]string{"full-access": full, "read-only": ro} {
		rdb := redisClient(d, tok, false)
		for _, c := range refused {
			want := "NOPERM User default has no permissions to run the '" + c.name + why
			if err := rdb.Do(ctx, c.args...).Err(); err == nil || err.Error() != want {
				t.Errorf("%s token %v:\n got  %v\n want %s", name, c.args, err, want)
			}
		}
		// What stays answers, on the same pooled connection.
		if who, err := rdb.Do(ctx, "ACL", "WHOAMI").Text(); err != nil || who != "default" {
			t.Errorf("%s token ACL WHOAMI: %q %v", name, who, err)
		}
		if err := rdb.Do(ctx, "CLIENT", "SETNAME", "app").Err(); err != nil {
			t.Errorf("%s token CLIENT SETNAME: %v", name, err)
		}
		if got, err := rdb.Do(ctx, "CLIENT", "GETNAME").Text(); err != nil || got != "app" {
			t.Errorf("%s token CLIENT GETNAME: %q %v", name, got, err)
		}
		if err := rdb.Ping(ctx).Err(); err != nil {
			t.Errorf("%s token PING after the refusals: %v", name, err)
		}
		if err := rdb.Do(ctx, "CLUSTER", "INFO").Err(); err == nil || !strings.HasPrefix(err.Error(), "ERR no upstream database is configured") {
			t.Errorf("%s token CLUSTER INFO: %v", name, err)
		}
		rdb.Close()
	}
	out := redisCLI(t, d.Redis, "-a", full, "ACL", "SETUSER", "eve", "on", ">secret")
	if out != "NOPERM User default has no permissions to run the 'acl|setuser"+why {
		t.Errorf("redis-cli ACL SETUSER: %q", out)
	}
	if out := redisCLI(t, d.Redis, "-a", full, "CONFIG", "SET", "maxmemory", "1"); !strings.HasPrefix(out, "NOPERM User default has no permissions to run the 'config|set' command") {
		t.Errorf("redis-cli CONFIG SET: %q", out)
	}
	checkAuthMetrics(t, d, "redis", []string{full, ro}, "ok", "forbidden")
	if !strings.Contains(d.Logs(), "authorization failed") || !strings.Contains(d.Logs(), "administrative Redis command") {
		t.Error("the refusals were not logged as authorization failures")
	}
}
