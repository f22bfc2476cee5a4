// Package core owns the HeliosDB token: its format, the keyring that signs and
// verifies it, the scope model, the verifier and the revocation view it
// consults. Everything else in the project stands on this package.
//
// core does no I/O (file handling for keyrings lives in core/keyfile), logs
// nothing, and must never import issuer, netio or protocols. Verify is on
// every connection's and every request's path: it must stay allocation-free
// on success and on failure alike.
//
// # Token format (version 1)
//
// String form:
//
//	hdb_<type>_<body>
//
// where <type> is "live", "test" or "svc" and <body> is exactly 79 base62
// characters ([0-9A-Za-z], so a double-click selects the whole token). A live
// or test token is 88 characters in all, a service token 87.
//
// The body encodes 57 bytes. Multi-byte integers are big-endian:
//
//	offset size field
//	     0    1 format version (1)
//	     1    2 key id: which keyring key made the tag
//	     3    1 token type: 1 live, 2 test, 3 svc
//	     4   12 token id: 96 random bits; also the revocation key and,
//	            as "tok_" + base62(id), the public id of the token's record
//	    16    8 account id
//	    24    4 issued-at, Unix seconds
//	    28    4 expires-at, Unix seconds
//	    32    4 scope bits (see Scope)
//	    36    1 flags: bit 0 has IP policy, bit 1 test databases only
//	    37   16 tag: keyed BLAKE3 over bytes 0..36, truncated to 128 bits
//	    53    4 checksum: CRC-32C (Castagnoli) over bytes 0..52
//
// Base62 is applied block-wise: every 8-byte block becomes 11 characters
// (62^11 > 2^64), and the final 1-byte block becomes 2 characters. Each block
// is the big-endian number written in base 62 with leading zero digits, so the
// encoding is fixed-length and canonical: a block whose value overflows its
// width is malformed.
//
// The checksum is public. A secret scanner can decode the body and check
// the CRC with no key, telling a real token from a typo or a look-alike
// (the idea of GitHub's token format). The tag is secret: only a holder of the
// key can make or check it. The tag is compared in constant time.
//
// # Verification order
//
// Verify checks, cheapest first: presence, surrounding whitespace, prefix,
// length, alphabet, checksum, version, type-versus-prefix, key (unknown or
// retired), tag, not-before skew, expiry, revocation. Every failure maps to one
// of the seed's codes: AUTH_REQUIRED (invalid, revoked) or AUTH_EXPIRED.
//
// # Security
//
// The MAC key is a minting key: whoever holds it can make tokens, so every
// gateway node that verifies is trusted. Keys carry an id, rotate without
// downtime (a new signing key; older keys keep verifying) and can be retired
// (every token under a retired key fails). Key files are 0600.
package core
