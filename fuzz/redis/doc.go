// Package redis holds the fuzz targets for the Redis front end: the RESP
// command parser (multibulk and inline) and the session state machine behind
// it. The seed corpora in testdata/fuzz are real client captures (redis-cli
// 7.0 with -a, --user/--pass and -3; go-redis v9 with RESP3 and RESP2) whose
// tokens are redacted to hdb_live_REDACTED000…; the session target swaps that
// placeholder for a token it mints itself, so seeds reach the authenticated
// commands.
//
// This package is for tests only: nothing may import it, and it must never
// hold a real token in its corpus.
package redis
