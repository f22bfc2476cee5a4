// Package console holds the web console's end-to-end tests: the real
// heliosd (internal/testdaemon) driven by a real headless Chromium (Debian's
// chromium package, through chromedp), and the real clients — psql,
// redis-cli, the mariadb CLI, curl, pgx — using what the pages show.
//
// Each page is saved as a PNG screenshot in the test's artifact directory
// (go test -artifacts -outputdir DIR keeps them; the path is logged).
package console

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
