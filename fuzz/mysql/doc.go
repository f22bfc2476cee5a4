// Package mysql holds the fuzz targets for the MySQL front end: the packet
// reader, the HandshakeResponse41 parser, the session state machine behind
// them, and fast authentication (only the exact scramble of a cached token
// authenticates). The seed corpora in testdata/fuzz are real client captures
// (go-sql-driver 1.10 and the mariadb 10.11 CLI, with and without TLS); in
// the "-spliced" seeds the RSA exchange of a capture is replaced by the token
// packet a client sends inside TLS, so that a session fuzzed as a TLS
// connection reaches the command phase. Tokens are redacted to
// hdb_live_REDACTED000…; the session target swaps that placeholder for a
// token it mints itself.
//
// This package is for tests only: nothing may import it, and it must never
// hold a real token in its corpus.
package mysql
