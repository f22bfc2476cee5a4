// Package console is HeliosDB's web console: the guide's "Option 3: Web
// Console". It is served by heliosd on its HTTP listener (the issuer role)
// at "/", next to the REST API, and does what the API does for a person in a
// browser: sign up, sign in and out, Settings → API Tokens (list, create,
// revoke, log out everywhere), Connect (ready-to-paste client lines) and
// Databases (list, create, delete).
//
// # Pages
//
// Every page is rendered on the server with html/template (templates/),
// so every user string — a token's name, an email, an error that quotes
// input — is escaped for its context. Assets (assets/: one stylesheet, one
// small script for the copy buttons and confirmations, the logo) are
// embedded with go:embed, served from /assets/ with a content hash in their
// URL and cached for a year; nothing is loaded from another origin, so the
// console works offline. Without JavaScript every page still works:
// a revocation, a deletion or "log out everywhere" posted without the
// script's confirmation gets a confirmation page instead.
//
//	GET  /                          → /settings/tokens, or /signin
//	GET  /signin, POST /signin      sign in (issuer.Service.LoginNamed)
//	GET  /signup, POST /signup      sign up, then signed in
//	POST /signout                   ends the session and revokes its token
//	GET  /settings/tokens           the account's tokens
//	GET  /settings/tokens/new, POST create a token
//	GET  /settings/tokens/created   the new token, shown once, and its connect lines
//	POST /settings/tokens/revoke    revoke a token (confirmed)
//	POST /settings/logout-all       revoke every token of the account (confirmed)
//	GET  /connect                   client lines for $HELIOS_TOKEN and a database
//	GET  /databases, POST           list and create databases
//	POST /databases/delete          delete a database (confirmed)
//	GET  /assets/…                  embedded assets
//
// # Sessions
//
// The browser never holds a token where JavaScript could read it. Signing
// in creates a live, full-access token named "Web console" (listed with the
// account's other tokens and revocable like them) and a server-side session
// that holds the token's claims — never the token string, which is dropped
// once verified. The browser gets only the session's random name in an
// HttpOnly, SameSite=Strict cookie, Secure (and __Host- prefixed) over
// HTTPS; the server keeps its SHA-256. Every request re-checks the
// session's token against the issuer's revocation view and its expiry, so
// revoking that token, logging out everywhere (from the console, the CLI or
// the API) or its expiry ends the session at once. Signing out revokes the
// token. Sessions live in memory: a restart signs everybody out, and their
// tokens stay listed until they expire or are revoked.
//
// A new token is kept in its session between the POST that created it and
// the page that shows it (Post/Redirect/Get), and forgotten as that page is
// rendered: a reload does not show it again.
//
// # Requests from other sites
//
// Every state-changing request (every POST) must come from the console's own
// origin: Sec-Fetch-Site, when the browser sends it, must be same-origin,
// and Origin must be the console's scheme and host (a request with neither
// is refused too). It must also carry the session's CSRF token (before
// sign-in: a random value from an HttpOnly cookie, double-submitted). A
// refused request gets 403 and changes nothing. Pages carry
// Content-Security-Policy without 'unsafe-inline' (scripts and styles from
// the console's own origin only, no framing), X-Frame-Options DENY,
// Referrer-Policy same-origin (so a same-origin form still sends its
// Origin), X-Content-Type-Options nosniff, and Cache-Control no-store.
//
// # Sign-in
//
// Sign-in and sign-up call the issuer's own Login and Signup: the same
// argon2id cost whether or not the email exists, the same message for an
// unknown email and a wrong password, and the same per-email and
// per-address rate limits (429 with Retry-After) as POST /v1/auth/login and
// /v1/auth/signup.
//
// # Rules
//
// Like the rest of issuer, console imports neither netio nor protocols:
// cmd/heliosd mounts Routes on its REST router and passes in what the
// console cannot know (listener addresses, the CA file, how to tell a TLS
// request). It never logs a token, a password or a session cookie.
package console
