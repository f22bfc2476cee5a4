// Package e2e holds the end-to-end tests: each starts the real heliosd
// binary on free loopback ports with a temporary data directory and drives it
// with real clients. The harness is internal/testdaemon (shared with bench/);
// this file gives it the short names the tests use.
package e2e

import (
	"os"
	"testing"

	"github.com/heliosdb/auth/internal/testdaemon"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testdaemon.RemoveBuilds()
	os.Exit(code)
}

// daemon is one running heliosd (testdaemon.Daemon).
type daemon = testdaemon.Daemon

// daemonOpt configures startDaemon.
type daemonOpt = testdaemon.Option

// startDaemon builds and starts heliosd on free loopback ports with a
// temporary data directory, stopped when the test ends.
func startDaemon(t testing.TB, opts ...daemonOpt) *daemon { return testdaemon.Start(t, opts...) }

var (
	withArgs    = testdaemon.WithArgs
	withHost    = testdaemon.WithHost
	withDataDir = testdaemon.WithDataDir
	freeAddr    = testdaemon.FreeAddr
	buildBinary = testdaemon.Build
	tamper      = testdaemon.Tamper
	httpClient  = testdaemon.HTTPClient
	repoRoot    = testdaemon.RepoRoot
)
