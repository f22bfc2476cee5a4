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
//	m/compacted                highest sequence number dropped from the log by compaction
//	m/dbinit                   the default database was created once (a deleted "main" stays deleted)
//	m/keyring                  a raft replica's keyring (keyfile form), written by replicated key changes
//	d/<name>                   database record (JSON): name, test flag, created
//	a/e/<lower-case email>     account id
//	a/i/<account id>           account record (JSON): email, argon2id hash, created, not-before
//	t/<account id><token id>   token record (JSON): name, type, scopes, created, expires,
//	                           last_used, allowed_ips, session, revoked/replaced state
//	p/<token id>               a refreshed token's pending revocation (when the grace period ends)
//	r/<seq>                    log entry (JSON) followed by gateway nodes: token revocation,
//	                           account epoch, retired key, IP allowlist, database change, keyring change
//
// The token string is never stored: it is self-verifying and is minted from
// the committed record's claims, returned once, and forgotten. Passwords are
// stored only as argon2id hashes (see PasswordParams).
//
// The store's directory is mode 0700 and its files 0600 (Pebble runs on a
// file system wrapper that sets the modes; wider modes left by older
// versions are tightened at open).
//
// # A full disk (storage.go)
//
// Verification never touches Pebble: every gateway reads the in-memory
// revocation view and policy set. So a full disk must only stop writes:
//
//   - Before each group commit the writer reads the free space (statfs).
//     Below StoreOptions.Reserve (heliosd: --storage-reserve, 64 MiB) it
//     refuses commands with a *StorageError: REST 507 STORAGE_FULL saying
//     how much is free and needed. Revocations (revoke, logout,
//     logout-all, key retirement) may go on until a quarter of the reserve
//     is left. Writes resume by themselves once space is freed. A login
//     writes its token record (it must be listable and revocable by id),
//     so a login is refused too; tokens already issued keep working on
//     every protocol.
//   - A store opened on a file system below the reserve (a restart while
//     the disk is full) opens read-only — Pebble replays its WAL in memory
//     and writes nothing — and is reopened for writing by the writer at the
//     first write after space returns.
//   - If Pebble still fails a write (no reserve, or the disk filled by
//     others faster), it calls Logger.Fatalf. Pebble expects Fatalf not to
//     return (after a failed commit it would report success), so
//     pebbleLogger.Fatalf fails the store closed (503 STORAGE_FAILED for
//     every later write, until a restart recovers from the WAL) and then
//     unwinds to the writer's group commit, which recovers, or parks
//     Pebble's own goroutine for good. The process never panics.
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
// a replicated log needs.
//
// # Replicas (replicated.go, snapshot.go; issuer/replica)
//
// A store opened with StoreOptions.Replicated is one replica of a raft
// cluster (hashicorp/raft, run by issuer/replica): Submit checks the
// free-space reserve on the replica that takes the command and proposes it
// through the Replicator (forwarded to the leader), and every replica
// applies the committed commands through ApplyReplicated — the same apply
// path, one batch per raft batch, sequence numbers assigned there so they
// are dense and identical everywhere. The raft index of the last command
// applied is written in the same batch (not synced: the raft log is), so a
// restarted replica skips what it applied. TakeState and RestoreState are
// raft's snapshots: every key of the store from a Pebble snapshot, and its
// replacement with the in-memory views rebuilt and swapped in. Upkeep that
// writes (refreshed tokens' revocations, compaction) runs on the leader;
// fresh reads (a login's account, the token list) wait for ReadFence.
//
// The log (r/…) holds the entries that gateway nodes follow: per-token
// revocations with the token's expiry, per-account "not before" epochs,
// retired key ids, IP allowlists of tokens created with allowed_ips (kept
// until the token expires), database registry changes, and keyring changes
// (a rotation: nodes fetch the keyring again). Store.LastSeq is the
// committed watermark and Store.ReadLog reads entries after a sequence
// number; sequence numbers of other commands leave gaps in the log.
//
// The in-memory views — Revocations (exact; Check allocation-free) and the
// policy set (Store.Policy, a core/policyset.Set: IP allowlists and the
// databases registry) — are fed from applied commands after their batch
// commits. The writer updates them and publishes the watermark under one
// lock, so a snapshot taken from them is consistent with a sequence number.
//
// # The cluster feed (feedsource.go, cluster.go, compact.go)
//
// Store.FeedSource adapts the store to issuer/feed's Source: Read converts
// log entries to feed events, Snapshot is built from the in-memory views,
// Compacted is the compaction watermark. Compact (every 10 minutes, through
// the writer as OpCompact commands) drops the log entries of tokens that
// have expired; a follower behind the watermark gets a snapshot.
//
// Cluster endpoints take the cluster key (data-dir/cluster.key, 32 random
// bytes, mode 0600; "Authorization: HeliosCluster <key>"), never a user
// token: the feed, the keyring (GET /v1/cluster/keys — MAC keys, so only
// over TLS or from the plaintext_allow networks, which the listener
// enforces), key rotation and retirement (POST /v1/cluster/keys/rotate,
// /v1/cluster/keys/retire {"id":N}: the keyring file is rewritten with mode
// 0600 and the change is logged so every node follows; on raft replicas
// the change is a replicated command applied to every replica's keyring,
// see keyring_replicated.go), and the usage
// ingest nodes flush last_used to (POST /v1/cluster/usage).
//
// # Databases (databases.go)
//
// GET /v1/databases (database:read; a test token sees test databases only),
// POST /v1/databases {"name","test"} (database:create; 201, 409
// DATABASE_EXISTS, 400 INVALID_DATABASE_NAME), DELETE /v1/databases/:name
// (database:delete; 404 DATABASE_NOT_FOUND). Test tokens may create and
// delete test databases only. Every data directory starts with "main"
// (test=false).
//
// # REST API (handlers.go)
//
// The seed's /v1/auth endpoints, with its JSON shapes and its error body
// {"error":{"code","message"}}. Which tokens may call what: "full" holds
// scope "*" (the guide's "Full access": what login returns, and what a token
// created from it without "scopes" gets), "scoped" holds fewer scopes; a test
// token answers the same whatever its scopes.
//
//	endpoint                     live  live    test  service  service
//	                             full  scoped        full     scoped
//	POST   /v1/auth/signup        (no token)
//	POST   /v1/auth/login         (no token)
//	POST   /v1/auth/logout        yes   yes     yes   yes      yes     a token may always revoke itself
//	POST   /v1/auth/refresh       yes   yes     yes   no       no      service tokens rotate: create, verify, revoke
//	POST   /v1/auth/logout-all    yes   no      no    no       no
//	GET    /v1/auth/tokens        yes   no      no    no       no
//	POST   /v1/auth/tokens        yes   no      no    no       no      scopes and allowed_ips ⊆ the caller's
//	DELETE /v1/auth/tokens/:id    yes   no      no    no       no      another account's id is 404, like an unknown one
//
// Every "no" is 403 FORBIDDEN, answered before the request body is read and
// changing nothing, with a message naming what the endpoint needs and what
// the token is or holds ("listing tokens needs a full-access token (scope
// *); this token has database:read: …") and WWW-Authenticate: Bearer
// realm="heliosdb", error="insufficient_scope", scope="*" (the REST API's
// spelling for every 403; see internal/httpapi). The four account endpoints need
// full access because each one acts on the account rather than on data: a
// token created with "scopes": ["database:read"] for an application must not
// mint itself a broader or year-long child that outlives its own
// revocation, revoke its owner's other tokens, read their names and last
// use, or log its owner out everywhere. A scoped token may still log itself
// out and refresh itself: both act on that token only, and a refresh
// cannot widen it (below).
//
// Login returns a live token with every scope ("*") named "login"; it is the
// root of a session, and tokens created or refreshed from it record it
// (TokenRecord.Session). A created token defaults to the creator's scopes —
// "*", since only a full-access token creates — and may list fewer; service
// tokens must list theirs. Its lifetime is its own type's (test tokens at
// most 24 hours and core.FlagTestOnly; any token at most
// Lifetimes.MaxDays), not bounded by the creator's: the guide's 90-day
// service tokens and 30-day tokens outlive the 7-day login that made them,
// and revoking a token (or logging it out) does not revoke the tokens it
// created — those are revoked by id or by logout-all. allowed_ips
// (addresses or CIDR networks) sets core.FlagIPPolicy, and the policy set
// holds the list for gateways; a creator that has an allowlist passes it
// on: the new token's allowed_ips default to it and must lie within it.
//
// Refresh mints a successor with the same name, type, scopes, flags,
// allowlist and lifetime (copied from the token's record, never from the
// request), and revokes the old token after Options.RefreshGrace (60 s by
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
// Signup is rate-limited the same way (Options.SignupPerEmail/SignupPerIP,
// 10 and 20 per minute): 409 EMAIL_TAKEN says an account exists, so each one
// costs an attempt and, once they run out, signups answer 429 RATE_LIMITED
// before the store is asked. A signup that creates its account, and input
// refused by validation, cost nothing.
//
// Request bodies must be UTF-8 whose strings hold characters only: invalid
// UTF-8 or an escaped lone surrogate (\udcff) is 400 INVALID_JSON before
// decoding, since encoding/json would fold either into U+FFFD and two
// different passwords would decode to the same one (httpapi.DecodeJSON,
// shared with the REST front end like the error body and the client
// address).
//
// # Rules
//
// issuer must never import netio or protocols: the REST handlers take claims
// already verified by the caller's authenticator (httpapi.Handler), and
// cmd/heliosd composes the router. It must never log or store a token string,
// a password or a key.
package issuer
