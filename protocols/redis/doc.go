// Package redis is HeliosDB's Redis front end: the RESP2/RESP3 codec, the
// per-connection state machine that takes a HeliosDB token through AUTH or
// HELLO … AUTH, the command → scope classifier, Redis-native errors, and
// the proxy to a real Redis server (see Proxy mode below). With no
// upstream configured it answers the connection and identity
// commands itself (see Session), and INFO [section …] with the gateway's
// Server, Persistence, Replication and Keyspace sections (redis_version,
// loading:0, which ioredis's ready check reads on connect) for any
// authenticated token, and refuses the rest with a clear error.
//
// # Policy after a token verifies
//
// A token with an IP allowlist (allowed_ips) is checked against the client's
// address (after a PROXY protocol header, when the listener accepts one); a
// refusal is an authentication failure, so it is answered like any other:
// -WRONGPASS followed by the reason. Each accepted authentication is
// recorded for last_used (Options.Usage).
//
// # Databases and test tokens
//
// Redis has no database names, only the logical database numbers a client
// picks with SELECT n or the path of its URL (redis://host:6379/3). The
// registry of HeliosDB databases is by name, shared by every protocol, and
// a name must start with a letter. So logical database n is the registered
// database "db<n>" ("db0" by default) — the name Redis itself gives it in
// INFO keyspace. A test token (hdb_test_) may therefore use a Redis
// connection only where "db<n>" is registered with "test": true. SELECT n
// (and MOVE, COPY … DB, SWAPDB naming n) of a database n ≥ 1 whose "db<n>"
// is not registered gets -ERR DB index is out of range, Redis's answer for
// a database it does not have; database 0 is where every connection starts
// and always exists (the registry's default database is "main", which no
// index names), so SELECT 0 and clients that never SELECT work as before.
//
// The check is made where the database is used, not at AUTH: clients
// authenticate first and SELECT afterwards (go-redis sends HELLO … AUTH,
// then SELECT n), so refusing AUTH on database 0 would lock a test token out
// of a test database 3. SELECT n re-checks (a refusal leaves the current
// database unchanged) and so does every data command, so a database whose
// test flag is removed stops serving test tokens at the next command.
// Connection commands (PING, HELLO, CLIENT, ECHO, …) touch no database and
// are not checked. Refusals are -NOPERM with the reason, which redis-py
// raises as NoPermissionError.
//
// Commands that name or reach another logical database are checked for it
// too, after the scope check and before anything answers them: MOVE key n,
// COPY … DB n and both databases of SWAPDB a b get the rule SELECT applies
// (a malformed index gets Redis's own error); FLUSHALL and scripts (EVAL,
// EVALSHA, FCALL and their _RO forms, since a script may call SELECT) reach
// every logical database, so a test token may run them only where db0 to
// db15 are all test databases; MIGRATE writes to a database on another
// server, which is in no registry, so a test token may not run it at all.
// Live tokens go through the same registry check (core.AllowDatabase),
// which today limits only test tokens.
//
// # Administrative commands
//
// The upstream Redis server is the operator's, shared by every account, and
// HeliosDB authenticates with tokens, not with its users. So commands that
// change the server's users, configuration, persistence, modules,
// replication or cluster topology, stop or stall the server or other
// clients, or show other clients' commands and connections are refused for
// every token, "*" included: ACL (but WHOAMI, CAT and HELP), CONFIG (GET
// too: it would show requirepass and masterauth), SHUTDOWN, DEBUG,
// REPLICAOF/SLAVEOF, SYNC/PSYNC/REPLCONF, FAILOVER, MODULE, SAVE, BGSAVE,
// BGREWRITEAOF, MONITOR, SENTINEL, PFDEBUG, PFSELFTEST, CLIENT KILL, PAUSE,
// UNPAUSE, UNBLOCK, NO-EVICT and LIST, SCRIPT FLUSH, FUNCTION FLUSH and
// RESTORE, LATENCY RESET, SLOWLOG RESET and GET, MEMORY PURGE, and every
// CLUSTER form but the read ones (see adminCommands for each choice). The
// refusal comes after authentication and before the scope check, as
// "-NOPERM User default has no permissions to run the 'acl|setuser' command
// (administrative commands … are not allowed through the HeliosDB gateway,
// whatever the token's scopes)", and is counted as a forbidden outcome.
//
// # Sessions stay honest
//
// Before each command of an authenticated connection the session re-checks
// the token's claims (core.Verifier.Recheck: expiry, revocation, logout of
// every session, retired key, a node that lost its revocation feed), without
// allocating. When the check fails the command gets "-NOAUTH <reason>" and
// the connection is closed; Terminate writes the same line when the gateway
// ends an idle session from outside, so the client reads it as the reply to
// its next command before it sees the close (RESP3 clients too: an error
// reply is the same in both versions). A connection is bound to the first
// token it authenticates with (Claims never changes): AUTH with another
// token, even after RESET, is refused; open a new connection instead.
//
// The package owns Redis bytes only. It must never do I/O (netio moves the
// bytes), share state with another protocol, keep a token after verifying it,
// or put a token into a reply or a log.
//
// # Files
//
// Every protocol package has the same files in the same roles (see package
// protocols):
//
//   - protocol.go: Protocol, Options and New (the netio.Protocol: name, TLS
//     from the first byte, no ALPN).
//   - session.go: Session, the connection state machine (framing, AUTH,
//     HELLO), with Claims, Terminate, LimitError and Awaiting.
//   - codec.go: RESP2/RESP3: the command reader and the reply encoders.
//   - classify.go: which scope a command needs, and the administrative
//     commands refused for every token.
//   - errors.go: token, scope, database and protocol errors in Redis's words.
//   - responder.go: the dispatch of each command (plaintext rule, re-check,
//     administrative, database and scope checks) and the built-in commands.
//
// and, each with one job of its own:
//
//   - crossdb.go: the other logical databases a command names or reaches.
//   - refuse.go: answering a connection the transport refuses (RefuseLate).
//   - upstream.go: proxy mode's server: Upstream (the ACL users it
//     provisions, the pool of server connections, /healthz state).
//   - proxy.go: proxy mode's session side (forwarding, the pump, the
//     gateway's own replies in their place, MULTI, RESET on return), with
//     proxy_pump.go and proxy_conn.go: on a goroutine (TLS clients).
//   - loopproxy.go, loopproxy_relay.go, loopproxy_cmds.go: the same on the
//     client's event loop, with its server connection (plaintext clients).
//   - scanner.go: where each reply of the server ends, read by read.
//   - learn.go: the server's command table merged with the classifier's.
//   - conn.go: the commands the gateway sends the server for itself.
//   - bypass_on.go, bypass_off.go: the test build without the classifier.
//
// # Proxy mode
//
// With Options.Upstream, a real Redis server stands behind the gateway.
// heliosd provisions six ACL users on it (helios_read, helios_write,
// helios_owner and their helios_test_ variants; aclRules) with random
// passwords kept in its data directory; a session logs in as the one its
// token's scopes allow (upstream.RoleFor), so that the server's own ACL is
// a second wall behind the classifier. After AUTH or HELLO … AUTH the
// session takes a server connection — a plaintext client's on its own
// event loop, parked there by an earlier client or attached from the pool
// (loopproxy.go); a TLS client's from the pool, on a goroutine — and
// forwards every command that passes the checks above; see proxy.go for
// pipelining, Pub/Sub, MULTI, blocking commands, SELECT and the pooling
// rules. Redis ACLs cannot confine a user to logical databases, so for
// test tokens the gateway's database check is the only wall.
package redis
