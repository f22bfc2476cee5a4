// Package httpapi is the HTTP plumbing shared by heliosd's two HTTP APIs,
// the issuer's /v1/* (issuer) and the gateway's REST front end
// (protocols/rest), so that both answer the same situation with the same
// status, body and headers:
//
//   - Handler and Route, the handler of a request whose bearer token was
//     verified and an endpoint as the issuer declares it;
//   - Error and WriteError, the authentication guide's error body
//     {"error":{"code":…,"message":…}} ("detail" added when set) with
//     Cache-Control: no-store, WWW-Authenticate on 401/403 and Retry-After;
//     WriteJSON for success bodies; ErrorHandler for requests fasthttp
//     could not parse;
//   - DecodeJSON, the strict request-body decoder (one object, no unknown
//     fields, a size bound, UTF-8 text without lone surrogates: CheckText);
//   - RemoteAddr, the client's address;
//   - BearerToken and RequestToken, the token of an "Authorization: Bearer"
//     header, and TokenError/WriteTokenError, a core token error as an HTTP
//     answer with its RFC 6750 challenge.
//
// # Challenges
//
// Every WWW-Authenticate value names the realm first (RFC 6750 §3):
//
//	401, no token                     Bearer realm="heliosdb"
//	401, bad, expired, revoked token  Bearer realm="heliosdb", error="invalid_token"
//	403, scope the token lacks        Bearer realm="heliosdb", error="insufficient_scope", scope="<scope>"
//	403, no single scope helps        Bearer realm="heliosdb", error="insufficient_scope"
//	403, address not in allowed_ips   Bearer realm="heliosdb"
//
// A 401 that is not about a bearer token (a wrong password at login) and a
// 503 (a node that cannot tell whether a token was revoked: Retry-After: 1)
// carry no challenge.
//
// Writing an error allocates nothing but the body's copy into the response;
// the success path of RequestToken and RemoteAddr allocates nothing.
//
// httpapi must never import the issuer, netio or a protocol (the issuer
// may not import netio either), and never log or echo a token, a password
// or a request body's bytes.
package httpapi
