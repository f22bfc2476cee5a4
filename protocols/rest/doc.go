// Package rest is the gateway's HTTP front end: Bearer token authentication
// as a fasthttp middleware for every protected route (the issuer's /v1/auth
// routes included), the seed's JSON error bodies with RFC 6750 headers, the
// SQL endpoint POST /api/v1/sql with its built-in responder, /healthz and
// /metrics, and the listener that takes TLS or, from allowed networks only,
// plaintext on one port.
//
// Beyond the token itself the authenticator checks core.Policy: a token
// with an IP allowlist only from a listed address (403), and on
// /api/v1/sql a test token only against a test database — the request's
// "database" field, "main" when absent (403 FORBIDDEN otherwise). A node
// whose revocation feed is stale answers 503 with Retry-After.
//
// Like every protocol folder it reads as codec.go (the Authorization
// header), session.go (the authenticator), classify.go (which scope a route
// or SQL statement needs) and errors.go (token errors as HTTP responses).
//
// The success path of authentication allocates nothing: verifiers come from
// a sync.Pool (fasthttp runs handlers on many goroutines, and a
// core.Verifier is single-goroutine), header bytes are read in place, and
// the claims handed to a handler live in the pooled state.
//
// rest must never import the issuer or another protocol, and never log a
// token (only its id, once its MAC has verified).
package rest
