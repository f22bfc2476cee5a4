// Package mysql is HeliosDB's MySQL front end: the packet codec, the
// connection state machine that takes a HeliosDB token through
// caching_sha2_password (full authentication in cleartext inside TLS or
// RSA-OAEP encrypted without TLS, and fast authentication against a cache
// of recently verified tokens), the scope check of every statement,
// MySQL-native errors, the built-in responder used when no upstream
// database is configured, and proxy mode, which puts a real MySQL or
// MariaDB server behind the token (see Proxy mode below).
//
// # Statements
//
// Every statement of a COM_QUERY or COM_STMT_PREPARE text (all of a
// multi-statement string, /*! … */ bodies included) is checked against the
// token before anything of it runs, by package sqlscope, which the
// PostgreSQL and REST front ends share. A missing scope is
//
//	ERROR 1142 (42000): DELETE command denied to user 'default'@'127.0.0.1': Token does not have required scope: database:write
//
// naming the statement that needs it (1044 "Access denied for user … to
// database 'db'" for CREATE/DROP DATABASE and USE); a statement no token
// may run (SET GLOBAL, SET ROLE, SET PASSWORD, PREPARE … FROM @variable,
// SHUTDOWN, text the gateway cannot read …) is 1142 with "Statement not
// allowed through the HeliosDB gateway: <reason>". An empty query is 1065.
//
// # Names
//
// The only user is default: another gets 1045 before the token is looked
// at. A schema must be registered (core.KnownDatabase): one named at the
// handshake that is not gets 1049 "Unknown database 'x'" after
// authentication (full or fast), and so does USE or COM_INIT_DB of one,
// which keeps the selection as it was. No schema selects none, as MySQL
// does.
//
// # Authentication
//
// The greeting offers caching_sha2_password with a 20-byte nonce. The
// client answers with its fast-auth scramble,
//
//	scramble = SHA256(token) XOR SHA256(SHA256(SHA256(token)) ‖ nonce)
//
// and the session either recognizes it (fast authentication: AuthMoreData
// 01 03, then OK) or asks for full authentication (01 04). Inside TLS the
// client then sends token NUL; without TLS it asks for the server's RSA
// public key (02) and sends the token encrypted to it. Either way the token
// goes through netio.Env.Admit. mysql_clear_password is never offered.
//
// The RSA decryption costs about 1 ms of CPU. On an event loop that would
// stall every other connection of the loop during an RSA flood (SELECT 1
// p99 went from 0.44 ms to 14 ms), so the session answers the public-key
// request with netio.Offload: the connection moves to a goroutine of its
// own before the encrypted token arrives, and is decrypted there
// (ConnInfo.Offloaded; a connection already on a goroutine just continues).
// Fast authentication and TLS never need it. On those goroutines at most
// half the cores (at least one) decrypt at once; the other connections
// wait their turn: otherwise a flood's decryptions would occupy every core
// and the event loops would wait for one. That caps RSA logins at about
// 1,000 a second per two cores (bench: BenchmarkMySQLRSAFlood, 2 cores, 8
// flooding clients: SELECT 1 p99 of a persistent connection 3 ms before
// Offload, 0.45 ms after, while RSA logins went from 1,300/s to 650/s).
//
// # Fast authentication and its cache
//
// After a successful full authentication the session stores, for the
// client's source address, stage2 = SHA256(SHA256(token)) together with the
// claims Verify returned. When a later connection from that address sends a
// scramble, each of the address's entries (at most CacheConfig.PerAddress,
// 8 by default, most recently used first) is tried:
//
//	stage1 = scramble XOR SHA256(stage2 ‖ nonce)
//	accept iff SHA256(stage1) == stage2   (constant-time compare)
//
// A match proves the client knows SHA256(token) for a token that verified
// before. Its cached claims are then re-checked exactly as a fresh Verify
// would (netio.Env.AdmitClaims, through core.Verifier.Recheck: the key
// still in the keyring and not retired, expiry at env.Now even where open
// sessions outlive their tokens, the revocation view — revoked token,
// account logged out, retired key, revocation data unavailable); the plaintext and
// TLS rules ran before the scramble was read, and scopes are checked per
// statement from the claims as after a full authentication. A token that
// fails the re-check gets 1045 with its reason and is evicted. No match
// means full authentication, as before. The cache is one per listener,
// shared by every event loop and TLS goroutine (64 shards, each behind a
// mutex, the SHA-256 work outside the locks), so a client's next connection
// hits wherever it lands. It is bounded: PerAddress entries per address,
// MaxEntries (100 000) in all with the least recently used addresses
// evicted first, and a TTL (15 minutes from the full authentication; hits
// do not extend it). A lookup never scans beyond the one address's entries.
// The counter helios_gateway_mysql_fast_auth_total{result="hit|miss|rejected"}
// at /metrics says how often each path ran.
//
// Security argument. This is MySQL 8's own caching_sha2_password design,
// with the token as the password:
//   - The cache never holds the token. stage2 is a double SHA-256 of it; a
//     stolen entry (a memory dump) reveals neither the token nor SHA256(token),
//     and passing fast auth needs SHA256(token) (stage1), which is a
//     preimage of stage2. The token itself (needed for every other
//     protocol, the REST API and full authentication elsewhere) carries a 96-bit random
//     id and a 128-bit keyed MAC, so stage2 cannot be brute-forced either.
//   - The scramble is bound to this connection's random nonce, so a
//     captured scramble cannot be replayed on another connection. As in
//     MySQL, someone who holds both a stolen stage2 and a captured
//     plaintext scramble could recover stage1 and pass fast auth (not
//     full authentication, not other protocols) until the entry expires or
//     the token is revoked; TLS, or plaintext only on loopback (the
//     default policy), keeps scrambles off networks.
//   - Revocation and expiry are re-checked on every hit against the same
//     revocation view Verify uses, so the cache never lets through a token
//     that a full authentication would refuse at that moment.
//   - Only tokens that passed full authentication enter the cache, and
//     each address holds at most PerAddress entries, so unauthenticated
//     clients can neither grow the cache nor make lookups expensive.
//
// Why the cache rather than "always answer the fast-auth scramble with
// 01 04" (the original design). A stateless server cannot check the
// scramble, so every connection paid for full authentication: an RSA-2048
// decryption (about 1 ms of CPU) without TLS, or a TLS handshake. That held
// the handshake rate to 5–7 % of the raw-TCP ceiling, far from the 60 %
// target, and no tuning of the stateless path closes that gap: the cost is
// the public-key operation itself. Fast authentication costs two to three
// SHA-256 computations per candidate and no extra round trip, which is how
// real MySQL servers serve reconnecting clients. Clients need nothing new:
// go-sql-driver, mysql2, PyMySQL and the MariaDB CLI all send the scramble
// and accept 01 03.
//
// # Policy: IP allowlists and test databases
//
// Full and fast authentication both go through the gateway's one admission
// path (netio.Env.Admit and AdmitClaims, with the same Admission), which checks
// what the gateway knows beyond the token (Options.Policy): the token's IP
// allowlist against the client's address (1045, 28000, with the reason),
// then, for a test token (hdb_test_), the database of the handshake
// (CONNECT_WITH_DB): anything but a registered test database gets 1044
// (42000) "Access denied for user … to database 'x': Test tokens can only
// access test databases". Only then is the session admitted, its use
// recorded for last_used (Options.Usage), and the token cached for fast
// authentication: a refused token is never cached. A test token may
// connect without a database; it can then run what needs none (the
// built-in queries, SET, transactions, COM_PING) and gets 1046 (3D000,
// "No database selected") for any statement that needs one until USE or
// COM_INIT_DB selects a test database; USE of another database gets 1044
// and changes nothing. The rule is re-checked against the registry on every
// statement (policy.go says exactly which).
//
// # Open sessions
//
// Every command re-checks the session's token as a fresh authentication
// would (netio.Env.Recheck, allocation-free): a token revoked, whose
// account logged out everywhere, whose key was retired, that expired, or
// whose revocation status this node can no longer tell (a stale feed) gets
//
//	ERROR 1045 (28000): Access denied for user 'default'@'127.0.0.1' (session ended): Authentication token has been revoked (the token was revoked)
//
// and the connection is closed. 1045 is the code the same token gets on
// reconnecting, so a client and its user see one error for one cause.
// Expiry ends the session too by default (MySQL has no re-authentication
// short of COM_CHANGE_USER, which is not served); with the gateway's
// session_expiry "keep" a session outlives its token's expiry and is still
// ended by revocation. The transport indexes the session by its claims
// (netio.Session.Claims), so it also ends idle sessions within its
// re-check interval: Terminate writes the same ERR packet unsolicited,
// with sequence id 1 — the id of the reply to the client's next command —
// so clients read it as that reply and print the reason (verified with
// go-sql-driver 1.10, which also accepts ERR packets out of sequence, and
// the mariadb 10.11 CLI: "ERROR 1045 (28000) at line 2: … (session ended):
// …"). A database/sql pool finds the closed connection before reusing it
// and reconnects, and the new connection gets 1045 with the reason. In both
// cases the token's fast-authentication entry for the address is evicted.
//
// # Plaintext policy
//
// A client on an address that may not send tokens without TLS
// (ConnInfo.PlaintextOK false) gets error 3159 right after its handshake
// response, before it sends the token and before its scramble is looked
// up. The RSA exchange does not count as protection for such clients: the
// public key travels unauthenticated, and clients fetch it without pinning
// it, so an active attacker can substitute their own key and read the
// token. RSA is used only where plaintext is allowed (loopback by default),
// where it still keeps the token off the wire.
//
// # Proxy mode
//
// With Options.Upstream (heliosd --mysql-upstream mysql://root:pw@host:3306/)
// the gateway is a session-pooling proxy in front of a real MySQL or
// MariaDB server. heliosd provisions, idempotently, with the administrator
// connection (go-sql-driver), six users, each @'%' (and @ the host of any
// anonymous user, which would otherwise match first), with random
// passwords kept in data-dir/upstream-mysql.json (0600):
// mysql_native_password on MariaDB, caching_sha2_password on MySQL 8. A
// token's scopes choose the user (upstream.RoleFor): "*" or schema:write
// helios_owner, database:write helios_write, database:read helios_read,
// none of them 1044 at connect naming database:read; test tokens the
// helios_test_ variants. Each registered database is created (CREATE
// DATABASE IF NOT EXISTS) and granted, at database level only, to the
// production users and, for a test database, to the test users (a
// production database's grants to the test users are revoked):
//
//	helios_read,  helios_test_read:  SELECT, SHOW VIEW
//	helios_write, helios_test_write: SELECT, SHOW VIEW, INSERT, UPDATE, DELETE,
//	                                 CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE
//	helios_owner, helios_test_owner: the above and CREATE, ALTER, DROP, INDEX,
//	                                 CREATE VIEW, REFERENCES, TRIGGER, EVENT,
//	                                 CREATE ROUTINE, ALTER ROUTINE
//
// Never a global privilege (FILE, SUPER, PROCESS …) or GRANT OPTION. The
// database name in GRANT has _ and % escaped (they are wildcards there).
// POST /v1/databases creates and grants; DELETE drops the database and
// revokes its grants (MySQL keeps them otherwise, for a database of the
// same name created later).
//
// The gateway logs in itself (dial.go: HandshakeV10, HandshakeResponse41,
// mysql_native_password, caching_sha2_password with its fast path and the
// RSA exchange, AuthSwitchRequest) with the format flags the client
// negotiated (CLIENT_DEPRECATE_EOF, MULTI_STATEMENTS, MULTI_RESULTS,
// PS_MULTI_RESULTS, SESSION_TRACK, LOCAL_FILES, FOUND_ROWS; the greeting
// offers the first five beyond the responder's set) and its collation
// (255 becomes 45 on MariaDB 10, which lacks it): they are the pool key's
// Variant, so a server connection is only handed to a client that reads
// the same bytes. Pools are per user, database and variant
// (--mysql-pool-size 20; --mysql-pool-wait 5s, then 1040 "Too many
// connections"); an unreachable server is 2003 "Can't connect to MySQL
// server" with the reason, and heliosd starts anyway. The greeting
// announces the server's version once heliosd has logged in to it.
//
// Where it runs: a plaintext client whose token authenticated fast (from
// the cache) stays on its event loop, and so does its server connection
// (loopproxy.go: netio backends; no goroutine, no lock, one write per
// client read and per server read); a server connection its client left
// cleanly is reset there and parked on that loop for the loop's next
// client of the same pool, or handed to the pool when a client elsewhere
// waits (the pool reclaims parked ones when it is exhausted). A session
// that moved to a goroutine (TLS, the RSA exchange of a token's first
// login) runs the goroutine proxy (proxy.go): the session's goroutine
// forwards client packets, a pump goroutine the server's. Both check and
// follow the protocol the same way (Session.dispatch, response.next);
// /metrics counts them (helios_gateway_mysql_proxy_sessions_total by
// path).
//
// Client to server: COM_QUERY and COM_STMT_PREPARE are classified first, every
// statement of them (1142/1044 with the guide's message, nothing leaves);
// USE names a registered database (1049) and, for a test token, a test
// database (1044); COM_INIT_DB likewise; COM_STMT_EXECUTE, FETCH, CLOSE,
// RESET, SEND_LONG_DATA, COM_PING, COM_RESET_CONNECTION, COM_SET_OPTION,
// COM_FIELD_LIST and COM_STATISTICS are forwarded; COM_CHANGE_USER and
// the replication and administration commands are refused. Server to
// client: whole packets as they arrive, written to the client while it
// reads (a slow client stops the pump, or the loop, reading its server:
// bounded memory). The proxy follows each response's structure — OK, ERR, result
// sets and their terminators, SERVER_MORE_RESULTS_EXISTS, cursors, the
// prepared statement's metadata, the LOCAL INFILE request, after which
// the client's packets are the file — to know when a command has been
// answered and the transaction state (SERVER_STATUS_IN_TRANS). A LOCAL
// INFILE request reaches the client only for a token with database:write.
// An upstream permission error (1044, 1142, 1143, 1227, 1370) gets the
// reason added: the scope the token lacks, or, when it holds it, that
// HeliosDB's users reach only its (test) databases.
//
// A COM_QUIT with nothing outstanding, outside a transaction, returns the
// server connection to the pool after COM_RESET_CONNECTION (rollback,
// temporary tables, prepared statements, user and session variables; the
// handshake's collation back) and COM_INIT_DB of the pool's database when
// the client selected another (the reset keeps the current database).
// Anything else — a client gone mid-command or mid-transaction, a revoked
// token (Terminate), COM_SET_OPTION — closes it, and a statement still
// running on it is ended with KILL CONNECTION on the administrator
// connection. A server that goes away is reported to the client as 2013
// ("Lost connection …: the upstream server behind the HeliosDB gateway
// closed the connection"), unsolicited when the client is idle, so that a
// driver's pool drops the connection.
//
// The package owns MySQL bytes only. Outside proxy mode it does no I/O
// (netio moves the bytes); in proxy mode it does only the upstream's
// (upstream.go, dial.go, proxy*.go, loopproxy*.go). It must never share state with
// another protocol, keep a token after verifying it (only its stage2
// hash), put a token into a reply or a log, or log the upstream's
// passwords.
//
// # Files
//
// Every protocol package has the same files in the same roles (see package
// protocols):
//
//   - protocol.go: Protocol, Options and New (the netio.Protocol: name, TLS
//     by SSLRequest after the greeting, no ALPN).
//   - session.go: Session, the connection state machine (greeting,
//     SSLRequest, HandshakeResponse41, fast and full authentication, RSA),
//     with Claims, Terminate, LimitError and Awaiting.
//   - codec.go: the wire format: packets, capability flags, the greeting,
//     HandshakeResponse41, OK/ERR/EOF, AuthMoreData and result sets.
//   - classify.go: the scope check of a query (sqlscope's answer as 1142
//     or 1044).
//   - errors.go: MySQL error numbers and SQLSTATEs, token and scope errors
//     in MySQL's words.
//   - responder.go: the dispatch of the command phase (COM_*) and the
//     built-in queries.
//
// and, each with one job of its own:
//
//   - policy.go: the rules beyond the token (IP allowlist, test
//     databases) at admission and per statement.
//   - cache.go: the fast-authentication cache.
//   - rsakey.go: the RSA key pair for full authentication without TLS.
//   - prepared.go: the built-in queries, and SELECT ?, as prepared
//     statements (COM_STMT_PREPARE, EXECUTE, RESET, CLOSE; binary result
//     sets).
//   - upstream.go: proxy mode's upstream: the administrator connection,
//     provisioning, the pool and its dialer.
//   - dial.go: the client side of the handshake, with which the gateway
//     logs in to the upstream.
//   - proxy.go, proxy_pump.go, proxy_end.go: a proxied session on a
//     goroutine: forwarding and the checks both proxies share (dispatch),
//     the pump and the response parser, the end of a session.
//   - loopproxy.go, loopproxy_relay.go: a proxied session on its event
//     loop: start, client commands, reset and parking; the server's
//     packets to the client.
//   - bypass_on.go, bypass_off.go: the test build without the classifier
//     (helios_bypass_classifier).
package mysql
