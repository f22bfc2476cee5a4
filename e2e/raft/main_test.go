// Package raft tests the issuer on three raft replicas with real heliosd
// processes on loopback (issuer/replica): writes on any replica, SIGKILL of
// the leader under a burst of concurrent revokers (every acknowledged
// revocation on every replica and gateway, no sequence gap or regression,
// the write outage measured), all replicas killed at once, a rolling
// restart with leadership transfer, and a wiped replica replaced. Gateway
// nodes follow the replicas' feed with --issuer-url URL1,URL2,URL3.
package raft

import (
	"testing"

	"github.com/heliosdb/auth/internal/testdaemon"
)

// TestMain runs the tests and removes the heliosd build they share
// (testdaemon builds it on first use). The package needs no other server.
func TestMain(m *testing.M) {
	testdaemon.Main(m, func(func(func())) error { return nil })
}
