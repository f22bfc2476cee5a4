// Package postgres is the gateway's PostgreSQL front end (protocol 3.0):
// it takes a HeliosDB token as the password, checks each statement's scope,
// and answers the built-in statements itself.
//
// A client authenticates with its token as the password:
// SSLRequest → 'S' → TLS, StartupMessage → AuthenticationCleartextPassword →
// PasswordMessage → verify → AuthenticationOk, ParameterStatus…,
// BackendKeyData, ReadyForQuery. A plaintext StartupMessage from an address
// that may not send tokens without TLS is refused with FATAL 28000 before the
// password is asked for, so libpq's sslmode=prefer never retries in
// cleartext with the token.
//
// Names. The only user is default: a StartupMessage naming another gets
// FATAL 28P01 at once, before the password (the token) is asked for. The
// database must be registered (core.KnownDatabase): one that is not gets
// FATAL 3D000 "database \"x\" does not exist" after authentication, as
// PostgreSQL checks it, so the registry is not shown to whoever connects.
// No database named — libpq then sends the user name, "default" — means
// the default database and is not checked.
//
// Without an upstream database the responder answers SELECT 1 (int4),
// SELECT 1 AS name, SELECT current_user, SELECT version(), SHOW
// <parameter>, the empty query and the identity query SELECT * FROM
// helios_whoami() (token_id, type, scopes, expires_at, all text), in the
// simple and the extended protocol; each needs database:read. It also
// answers transaction control (BEGIN / START TRANSACTION, COMMIT / END,
// ROLLBACK / ABORT) with ReadyForQuery's status ('T' in a block, 'E' after
// an error in one, when everything but COMMIT and ROLLBACK gets 25P02),
// SET / RESET of session parameters (application_name with a
// ParameterStatus), and, in the extended protocol, SELECT $1 with the bound
// value. Every other statement gets an ERROR saying no upstream is
// configured.
//
// Before anything of a query runs, every statement in it is checked
// against the token — the whole simple-query string, or a Parse message's
// query — by package sqlscope, which the MySQL and REST front ends share: a
// missing scope is ERROR 42501 "Token does not have required scope:
// <scope>", a statement no token may run (SET ROLE, ALTER SYSTEM, COPY …
// PROGRAM, text it cannot read …) ERROR 42501 "Statement not allowed
// through the HeliosDB gateway: <reason>". Parse refuses more than one
// command with 42601, as PostgreSQL does.
//
// The package must never panic on input, block, keep a byte slice it was
// handed beyond the call, or log a token. It shares no state with another
// protocol.
//
// # Files
//
// Every protocol package has the same files in the same roles (see package
// protocols):
//
//   - protocol.go: Protocol, Options and New (the netio.Protocol: name, TLS
//     from the first byte, ALPN) and the ParameterStatus set.
//   - session.go: Session, the connection state machine (startup,
//     SSLRequest/GSSENCRequest/CancelRequest, password, ready), with Claims,
//     Terminate, LimitError, RefuseLate and Awaiting.
//   - codec.go: the wire format: startup codes, message decoders (Parse,
//     Bind, Describe/Close, Execute) and append-style encoders.
//   - classify.go: the scope check of a query (sqlscope's answer as an
//     ErrorResponse) and which built-in a statement is.
//   - errors.go: token, scope, limit and protocol errors as ErrorResponse
//     fields (SQLSTATEs).
//   - responder.go: the dispatch of an authenticated session's messages
//     (simple and extended protocol) and the built-in statements' rows.
//
// Proxy mode (an Upstream) adds upstream.go (the server, its roles and
// pool), proxy.go (the session's server side on a goroutine: TLS clients,
// upstreams reached over TLS or a Unix socket), loopproxy.go (the same on
// the client's event loop, for every other client: the server connection
// is registered on that loop and parked there between clients) and
// sqlapi.go (REST's POST /api/v1/sql).
package postgres
