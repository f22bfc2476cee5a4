// Package mongodb is the gateway's MongoDB front end: the wire protocol
// codec (OP_MSG with kind-0 bodies, kind-1 document sequences and CRC-32C
// checksums; legacy OP_QUERY on <db>.$cmd answered with OP_REPLY), the
// connection state machine that authenticates a HeliosDB token sent as the
// password of SASL PLAIN, the command classifier that maps each command to
// the scope it needs, the proxy to an upstream MongoDB-wire server (proxy
// mode), and the built-in responder used when no upstream is configured.
//
// Why PLAIN: the gateway never holds a password verifier, so SCRAM cannot
// work; a client that tries it (the drivers' default) gets error 18 with a
// message that tells the user to add ?authMechanism=PLAIN&tls=true to the
// URI. Before authentication only hello, isMaster, ping and buildInfo are
// answered (monitoring connections never authenticate); the hello reply
// carries no topologyVersion, so drivers keep polling rather than waiting
// on an awaitable hello.
//
// Policy: after a token verifies, a token with an IP allowlist
// (allowed_ips) is checked against the client's address (after a PROXY
// protocol header, when the listener accepts one), and a refusal is error 18
// with the reason; each accepted authentication is recorded for last_used.
// A test token (hdb_test_) may reach only databases registered with
// "test": true: the database is each command's $db, checked on every data
// command (the ClassScoped ones), so admin and $external, where drivers
// authenticate and run their handshake and session commands, do not count.
// A refusal is code 13 (Unauthorized) worded as mongod words a missing
// privilege, naming the database and "Test tokens can only access test
// databases".
//
// Names: the SASL PLAIN user must be default (another gets 18 naming the
// fix before the token is looked at), and a data command's $db must be a
// registered database (core.KnownDatabase) or admin, local or config, which
// every MongoDB server has. One that is not gets 13 (Unauthorized) saying
// the database does not exist: MongoDB creates databases on first use, so
// it has no "unknown database" error, and 26 (NamespaceNotFound) is what
// drivers treat as success in places (Collection.Drop), where a refusal
// must stay one. Commands that need no database (ping, hello, …) are not
// checked. Databases named inside a command ($out, $lookup …) are checked
// by the test-token rule only.
//
// A command can name databases besides its $db, and each one is checked the
// same way, after the scope check and before anything answers the command:
// the stages of an aggregation pipeline that read or write another database
// ($out: {db, coll}, $merge: {into: {db, coll}}, $lookup and $graphLookup
// from: {db, coll}, $unionWith), at any depth (inside $facet, a $lookup's
// or $unionWith's pipeline), also in a view's pipeline (create, collMod),
// under explain, in mapReduce's out.db, and both namespaces of
// renameCollection. A value that cannot be checked — a db that is not a
// string, or arrays sent as an OP_MSG document sequence on one of these
// commands — counts as a database the token may not reach. The refusal is
// code 13 naming the stage or field and the database. Commands that copy
// between databases or servers (copydb, clone, cloneCollection, applyOps)
// are not MongoDB 7 commands or are refused by name (applyOps), so they are
// never run or forwarded.
//
// Classifier: every command of MongoDB 7's command list is in the table
// (classify.go): handshake, authentication, session (answered by the
// gateway), scoped (the scope it needs; forwarded in proxy mode), or
// refused — the commands that administer the server (users and roles,
// replication, sharding, server parameters, shutdown, killOp, fsync,
// compact, bulkWrite, profile with a level), refused with code 13 for
// every token. A name the table lacks gets 59 (no such command) and is
// never forwarded. aggregate with $out or $merge at any depth of its
// pipeline needs database:write; explain needs what it explains.
//
// Proxy mode (Options.Upstream): any server that speaks the MongoDB wire
// protocol — MongoDB, FerretDB, … — is the upstream. The gateway logs in
// to it with the credentials of its URL (SCRAM-SHA-256, SCRAM-SHA-1 or
// PLAIN; none when the URL has none) and provisions nothing: FerretDB 1.x
// enforces no roles, so the classifier is the only wall. saslStart moves
// the session off its event loop (netio.Offload) and, once the token is
// admitted, takes a pooled server connection (upstream.Pool, keyed by the
// token's role) for the session's life: a cursor's getMore and
// killCursors reach the connection that opened it, because every command
// of the session does. Each command is checked as above and then written
// to the server as the client sent it (exhaustAllowed cleared, so each
// request gets one reply); a pump goroutine writes the server's replies to
// the client whole (netio.ConnInfo.Client), so they never interleave with
// the gateway's own replies to refused commands, whose responseTo is the
// request's id. In proxy mode, moreover: data commands on admin, local
// and config are refused (only server-wide ones run there: listDatabases,
// serverStatus, currentOp, top, commitTransaction, abortTransaction,
// renameCollection), every database a command names must be registered,
// document sequences are accepted only for insert, update and delete,
// OP_QUERY carries only hello and isMaster (as mongod 5.1+), and
// listDatabases is rewritten to list only the registered databases the
// token may reach. hello and isMaster are answered by the gateway with the
// server's wire versions and size limits; buildInfo after authentication
// is the server's. A session that ends with a request in flight, a cursor
// open, part of a message read, or by a revocation closes its server
// connection; otherwise it returns to the pool. When the server connection
// fails, a request in flight is answered with HostUnreachable (6, which
// drivers retry) and the session's next command takes a new one.
//
// Open sessions: every command of an authenticated connection first
// re-checks the token's claims (core.Verifier.Recheck: expiry, revocation,
// logout of every session, retired key, a node that lost its revocation
// feed), without allocating; a failure is answered with code 18 naming the
// reason, and the connection is closed. When the gateway ends an idle
// session from outside, Terminate writes nothing: MongoDB has no
// unsolicited server message, so the close itself is the signal. A
// connection stays bound to the first token it authenticated with (Claims
// never changes); a saslStart with another token, even after logout, is
// refused.
//
// Bytes: BSON comes and goes through go.mongodb.org/mongo-driver/v2's
// bsoncore. Every document a client sends is validated in full
// (ValidateDocument) before any field is read: bad lengths are errors, never
// panics. Replies are appended to the transport's buffer.
//
// This package must never log or echo a token, share state with another
// protocol, or do I/O: it implements netio.Session, bytes in and bytes out.
//
// # Files
//
// Every protocol package has the same files in the same roles (see package
// protocols):
//
//   - protocol.go: Protocol, Options and New (the netio.Protocol: name, TLS
//     from the first byte, no ALPN).
//   - session.go: Session, the connection state machine (framing, SASL
//     PLAIN), with Claims, Terminate, LimitError and Awaiting.
//   - codec.go: the wire format: MsgHeader, opcodes, OP_MSG and OP_QUERY
//     decoding, OP_MSG and OP_REPLY reply framing.
//   - classify.go: each command's class and the scope it needs.
//   - errors.go: MongoDB error codes and token, scope and database errors in
//     mongod's words.
//   - responder.go: the dispatch of each request (plaintext rule, re-check,
//     class, database and scope checks) and the built-in commands.
//
// and, each with one job of its own:
//
//   - bson.go: full validation of every BSON document a client sends.
//   - crossdb.go: the other databases a command names (pipelines,
//     renameCollection, mapReduce).
//   - refuse.go: answering a connection the transport refuses (RefuseLate).
//   - upstream.go: the upstream server (URL, pool, dial with hello and
//     SCRAM or PLAIN, health, DropDatabase).
//   - proxy.go: proxy mode (the session's server connection, forwarding,
//     the pump, the return to the pool).
package mongodb
