// Package rest is the gateway's HTTP front end: Bearer token authentication
// as a fasthttp middleware for every protected route (the issuer's /v1/*
// routes included: Router.Mount takes httpapi.Routes), the SQL endpoint
// POST /api/v1/sql with its built-in responder, /healthz, /metrics (free
// to the Router.SetMetricsAllow networks, loopback by default; a
// metrics:read token from anywhere else), and the listener that takes TLS or, from allowed networks only, plaintext on
// one port.
//
// The HTTP plumbing it shares with the issuer — the handler and route types,
// the seed's JSON error body, the RFC 6750 WWW-Authenticate challenges, the
// Authorization header, the client address and the strict body decoder — is
// internal/httpapi, so that both APIs answer the same situation with the
// same headers; errors.go keeps the short forms its handlers call.
//
// Beyond the token itself the authenticator checks core.Policy: a token
// with an IP allowlist only from a listed address (403), and on
// /api/v1/sql a test token only against a test database — the request's
// "database" field, "main" when absent (403 FORBIDDEN otherwise). A node
// whose revocation feed is stale answers 503 with Retry-After.
//
// The SQL endpoint's statements' scopes are decided by package sqlscope, as
// for the PostgreSQL and MySQL front ends (the endpoint speaks PostgreSQL's
// dialect).
//
// Metrics are the wire protocols' (netio.Metrics) with protocol="rest":
// helios_gateway_auth_total{protocol="rest",outcome=…} counts every
// authenticated request (ok) and every refusal — invalid, expired, revoked,
// forbidden (by the route's scope or by a handler's 403), unavailable, and
// tls_required for plaintext from a network not allowed;
// helios_gateway_handshake_seconds times a request's arrival to its token's
// acceptance; helios_gateway_connections_open and _total count HTTP
// connections; limit_hits_total{limit="message_size"} counts bodies over
// the server's bound.
//
// The success path of authentication allocates nothing: verifiers come from
// a sync.Pool (fasthttp runs handlers on many goroutines, and a
// core.Verifier is single-goroutine), header bytes are read in place, and
// the claims handed to a handler live in the pooled state.
//
// rest must never import the issuer or another protocol, and never log a
// token (only its id, once its MAC has verified).
//
// # Files
//
// The same roles as every protocol package (see package protocols), for
// HTTP: its wire format is internal/httpapi's, and it is not a
// netio.Session, so there is no protocol.go or codec.go:
//
//   - session.go: Authenticator (AuthOptions, NewAuthenticator): the Bearer
//     token's verification, policy and metrics for each request.
//   - classify.go: the scope a route needs (RouteScope).
//   - errors.go: token and request errors as HTTP responses (httpapi's
//     short forms).
//   - responder.go: POST /api/v1/sql: the statements' scope check and the
//     built-in answers (SELECT 1, helios_whoami()).
//
// and, each with one job of its own:
//
//   - router.go: the routes, public and protected.
//   - listen.go: the listener that takes TLS, or plaintext from allowed
//     networks, on one port.
package rest
