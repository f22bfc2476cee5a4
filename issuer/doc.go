// Package issuer owns HeliosDB's only state: accounts, token records, the
// revocation log, and the /v1/auth REST handlers that change them.
//
// # Storage
//
// State lives in one Pebble database (github.com/cockroachdb/pebble/v2, format
// major version pinned to FormatWALSyncChunks so a torn WAL tail after a crash
// is told apart from corruption). Keys:
//
//	m/seq                      last applied sequence number (8 bytes, big-endian)
//	a/e/<lower-case email>     account id
//	a/i/<account id>           account record (JSON): email, argon2id hash, created, not-before
//	t/<account id><token id>   token record (JSON): name, type, scopes, created, expires,
//	                           last_used, allowed_ips, session, revoked/replaced state
//	p/<token id>               a refreshed token's pending revocation (when the grace period ends)
//	r/<seq>                    revocation log entry (JSON): token, account epoch or key
//
// The token string is never stored: it is self-verifying and is minted from
// the committed record's claims, returned once, and forgotten. Passwords are
// stored only as argon2id hashes (see PasswordParams).
//
// # One apply path
//
// Every mutation (signup, token creation, refresh, revocation, logout-all,
// key retirement, last-used flushes) is a Command: a small JSON-encoded value.
// Commands are applied by a single writer goroutine, which drains whatever
// is queued, applies each command to one indexed Pebble batch, and commits the
// group with one synced write (group commit). Sequence numbers are assigned at
// apply, one per command that changed state; a command that fails validation
// writes nothing and takes no number. A caller's Submit returns only after its
// command's batch is synced, so an acknowledged revocation survives kill -9.
// Applying is deterministic given the command and the database, which is what
// a replicated log (hashicorp/raft) will need later.
//
// The revocation log (r/…) holds the entries that gateway nodes follow:
// per-token revocations with the token's expiry, per-account "not before"
// epochs, and retired key ids. Store.LastSeq is the committed watermark and
// Store.ReadLog reads entries after a sequence number; sequence numbers of
// other commands leave gaps in the log.
//
// The in-memory Revocations view is fed from applied commands after their
// batch commits; it is exact and its Check is allocation-free.
//
// # REST API (handlers.go)
//
// The seed's /v1/auth endpoints, with its JSON shapes and its error body
// {"error":{"code","message"}}. Which token types may call what:
//
//	endpoint                     live  test  service
//	POST   /v1/auth/signup        (no token)
//	POST   /v1/auth/login         (no token)
//	POST   /v1/auth/logout        yes   yes   yes    a token may always revoke itself
//	POST   /v1/auth/refresh       yes   yes   no     service tokens rotate: create, verify, revoke
//	POST   /v1/auth/logout-all    yes   no    no
//	GET    /v1/auth/tokens        yes   no    no
//	POST   /v1/auth/tokens        yes   no    no     scopes ⊆ the caller's scopes
//	DELETE /v1/auth/tokens/:id    yes   no    no     another account's id is 404, like an unknown one
//
// Login returns a live token with every scope ("*") named "login"; it is the
// root of a session, and tokens created or refreshed from it record it. A
// created token defaults to the creator's scopes (live and test) and must
// list them for service tokens; test tokens carry core.FlagTestOnly and live
// at most 24 hours; allowed_ips (addresses or CIDR networks) sets
// core.FlagIPPolicy, and IPPolicies holds the list for gateways.
//
// Refresh mints a successor with the same name, type, scopes, allowlist and
// lifetime, and revokes the old token after Options.RefreshGrace (60 s by
// default) so requests already in flight with it still succeed; the pending
// revocation is durable (p/ keys) and fires after a restart too. A token is
// refreshed once; a second refresh is 409 ALREADY_REFRESHED.
//
// Logout-all moves the account's not-before epoch to now+1s: every token
// issued before it (service tokens included) is revoked, and tokens minted
// afterwards are issued at or after the epoch, so a login right after
// logout-all works.
//
// Login is rate-limited per email and per source address (token buckets,
// Options.LoginPerEmail/LoginPerIP per minute; a success refunds its
// attempt), answering 429 RATE_LIMITED with Retry-After. A login for an
// unknown email hashes against a dummy argon2id hash, so failures cost the
// same either way.
//
// # Rules
//
// issuer must never import netio or protocols: the REST handlers take claims
// already verified by the caller's authenticator (see Handler), and
// cmd/heliosd composes the router. It must never log or store a token string,
// a password or a key.
package issuer
