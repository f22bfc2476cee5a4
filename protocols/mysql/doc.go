// Package mysql is HeliosDB's MySQL front end: the packet codec, the
// connection state machine that takes a HeliosDB token through
// caching_sha2_password (full authentication in cleartext inside TLS or
// RSA-OAEP encrypted without TLS, and fast authentication against a cache
// of recently verified tokens), the statement → scope classifier,
// MySQL-native errors, and the built-in responder used when no upstream
// database is configured.
//
// # Authentication
//
// The greeting offers caching_sha2_password with a 20-byte nonce. The
// client answers with its fast-auth scramble,
//
//	scramble = SHA256(token) XOR SHA256(SHA256(SHA256(token)) ‖ nonce)
//
// and the session either recognizes it (fast authentication: AuthMoreData
// 01 03, then OK) or asks for full authentication (01 04). Inside TLS the
// client then sends token NUL; without TLS it asks for the server's RSA
// public key (02) and sends the token encrypted to it. Either way the token
// goes through core.Verifier.Verify. mysql_clear_password is never offered.
//
// # Fast authentication and its cache
//
// After a successful full authentication the session stores, for the
// client's source address, stage2 = SHA256(SHA256(token)) together with the
// claims Verify returned. When a later connection from that address sends a
// scramble, each of the address's entries (at most CacheConfig.PerAddress,
// 8 by default, most recently used first) is tried:
//
//	stage1 = scramble XOR SHA256(stage2 ‖ nonce)
//	accept iff SHA256(stage1) == stage2   (constant-time compare)
//
// A match proves the client knows SHA256(token) for a token that verified
// before. Its cached claims are then re-checked exactly as a fresh Verify
// would (core.Verifier.Recheck: the key still in the keyring and not
// retired, expiry at env.Now, the revocation view — revoked token, account
// logged out, retired key, revocation data unavailable); the plaintext and
// TLS rules ran before the scramble was read, and scopes are checked per
// statement from the claims as after a full authentication. A token that
// fails the re-check gets 1045 with its reason and is evicted. No match
// means full authentication, as before. The cache is one per listener,
// shared by every event loop and TLS goroutine (64 shards, each behind a
// mutex, the SHA-256 work outside the locks), so a client's next connection
// hits wherever it lands. It is bounded: PerAddress entries per address,
// MaxEntries (100 000) in all with the least recently used addresses
// evicted first, and a TTL (15 minutes from the full authentication; hits
// do not extend it). A lookup never scans beyond the one address's entries.
// The counter helios_gateway_mysql_fast_auth_total{result="hit|miss|rejected"}
// at /metrics says how often each path ran.
//
// Security argument. This is MySQL 8's own caching_sha2_password design,
// with the token as the password:
//   - The cache never holds the token. stage2 is a double SHA-256 of it; a
//     stolen entry (a memory dump) reveals neither the token nor SHA256(token),
//     and passing fast auth needs SHA256(token) (stage1), which is a
//     preimage of stage2. The token itself (needed for every other
//     protocol, the REST API and full authentication elsewhere) carries a 96-bit random
//     id and a 128-bit keyed MAC, so stage2 cannot be brute-forced either.
//   - The scramble is bound to this connection's random nonce, so a
//     captured scramble cannot be replayed on another connection. As in
//     MySQL, someone who holds both a stolen stage2 and a captured
//     plaintext scramble could recover stage1 and pass fast auth (not
//     full authentication, not other protocols) until the entry expires or
//     the token is revoked; TLS, or plaintext only on loopback (the
//     default policy), keeps scrambles off networks.
//   - Revocation and expiry are re-checked on every hit against the same
//     revocation view Verify uses, so the cache never lets through a token
//     that a full authentication would refuse at that moment.
//   - Only tokens that passed full authentication enter the cache, and
//     each address holds at most PerAddress entries, so unauthenticated
//     clients can neither grow the cache nor make lookups expensive.
//
// Why the cache rather than "always answer the fast-auth scramble with
// 01 04" (the original design). A stateless server cannot check the
// scramble, so every connection paid for full authentication: an RSA-2048
// decryption (about 1 ms of CPU) without TLS, or a TLS handshake. That held
// the handshake rate to 5–7 % of the raw-TCP ceiling, far from the 60 %
// target, and no tuning of the stateless path closes that gap: the cost is
// the public-key operation itself. Fast authentication costs two to three
// SHA-256 computations per candidate and no extra round trip, which is how
// real MySQL servers serve reconnecting clients. Clients need nothing new:
// go-sql-driver, mysql2, PyMySQL and the MariaDB CLI all send the scramble
// and accept 01 03.
//
// # Plaintext policy
//
// A client on an address that may not send tokens without TLS
// (ConnInfo.PlaintextOK false) gets error 3159 right after its handshake
// response, before it sends the token and before its scramble is looked
// up. The RSA exchange does not count as protection for such clients: the
// public key travels unauthenticated, and clients fetch it without pinning
// it, so an active attacker can substitute their own key and read the
// token. RSA is used only where plaintext is allowed (loopback by default),
// where it still keeps the token off the wire.
//
// The package owns MySQL bytes only. It must never do I/O (netio moves the
// bytes), share state with another protocol, keep a token after verifying
// it (only its stage2 hash), or put a token into a reply or a log.
package mysql
