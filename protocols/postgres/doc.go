// Package postgres is the gateway's PostgreSQL front end: the wire codec
// (codec.go), the connection state machine (session.go), the statement
// classifier that says which scope a statement needs (classify.go), token
// errors as SQLSTATEs (errors.go) and the built-in responder (responder.go).
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
package postgres
