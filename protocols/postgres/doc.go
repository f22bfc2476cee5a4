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
// Without an upstream database the responder answers SELECT 1 (int4),
// SELECT current_user, SELECT version(), SHOW <parameter>, the empty query
// and the identity query SELECT * FROM helios_whoami() (token_id, type,
// scopes, expires_at, all text), in the simple and the extended protocol;
// each needs database:read. Every other statement gets an ERROR saying no
// upstream is configured.
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
//   - classify.go: which scope a statement needs, and which built-in it is.
//   - errors.go: token, scope, limit and protocol errors as ErrorResponse
//     fields (SQLSTATEs).
//   - responder.go: the dispatch of an authenticated session's messages
//     (simple and extended protocol) and the built-in statements' rows.
package postgres
