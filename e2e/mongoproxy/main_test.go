// Package mongoproxy tests heliosd's MongoDB proxy mode with a real
// MongoDB-wire server behind it — FerretDB 1.24 with its SQLite backend,
// started once for the package in TestMain (internal/testupstream) — and
// real clients in front: mongosh and mongo-driver v2. FerretDB 1.x
// enforces no roles, so every refusal these tests see is the gateway's
// classifier; the tests check on the server itself (a direct connection)
// that nothing refused reached it.
package mongoproxy

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testdaemon"
	"github.com/heliosdb/auth/internal/testupstream"
)

// ferret is the package's upstream server (no authentication).
var ferret *testupstream.FerretDB

func TestMain(m *testing.M) {
	testdaemon.Main(m, func(atExit func(func())) (err error) {
		if ferret, err = testupstream.StartFerretDB(); err != nil {
			return fmt.Errorf("start FerretDB: %w", err)
		}
		atExit(ferret.Stop)
		return nil
	})
}

// daemonWith starts heliosd in proxy mode in front of the package's
// FerretDB (unless args name another upstream), with more options.
func daemonWith(t *testing.T, opts ...testdaemon.Option) *testdaemon.Daemon {
	t.Helper()
	all := []testdaemon.Option{testdaemon.WithArgs("--mongo-upstream", ferret.URL)}
	return testdaemon.Start(t, append(all, opts...)...)
}

// uri is a client's connection string for d with token tok on database db
// (PLAIN, plaintext: the tests run on loopback, where heliosd allows it).
func uri(d *testdaemon.Daemon, tok, db string) string {
	return "mongodb://default:" + url.QueryEscape(tok) + "@" + d.Mongo + "/" + db + "?authMechanism=PLAIN&directConnection=true"
}

// connect is a mongo-driver v2 client of d with tok, closed at the end of
// the test; more options are applied after the URI's.
func connect(t *testing.T, d *testdaemon.Daemon, tok, db string, more ...func(*options.ClientOptions)) *mongo.Client {
	t.Helper()
	o := options.Client().ApplyURI(uri(d, tok, db)).SetServerSelectionTimeout(10 * time.Second).SetConnectTimeout(10 * time.Second)
	for _, f := range more {
		f(o)
	}
	c, err := mongo.Connect(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

// direct is a client of the FerretDB server itself, bypassing heliosd: what
// the tests check the server's data with.
func direct(t *testing.T) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(ferret.URL).SetDirect(true).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// scopes is the set of the scopes ss.
var scopes = testdaemon.Scopes

// readWrite is what an application's token usually holds.
var readWrite = scopes(core.ScopeDatabaseRead, core.ScopeDatabaseWrite)

// mongosh returns the project-local mongosh (scripts/install-deps.sh).
func mongosh(t *testing.T) string {
	t.Helper()
	p := filepath.Join(testdaemon.RepoRoot(), ".tools", "node_modules", ".bin", "mongosh")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("mongosh is not installed: run scripts/install-deps.sh (make test does): %v", err)
	}
	return p
}

// runMongosh runs mongosh with a script on stdin (an interactive shell, as
// a person types) or args, and returns its output.
func runMongosh(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mongosh(t), append(args, "--norc")...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "MONGOSH_NO_TELEMETRY=1")
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// waitFor polls cond every 50ms for up to d, failing with what.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// serverConns is how many connections FerretDB has open now.
func serverConns(t *testing.T, f *testupstream.FerretDB) int {
	t.Helper()
	n, err := f.Connections()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// startAuthFerret starts a FerretDB of the test's own that requires a
// SCRAM login, stopped at the end of the test.
func startAuthFerret(t *testing.T) (*testupstream.FerretDB, error) {
	t.Helper()
	f, err := testupstream.StartFerretDBWithAuth()
	if err != nil {
		return nil, err
	}
	t.Cleanup(f.Stop)
	return f, nil
}

// testdaemonArgs is flags as a daemon option list (later flags win).
func testdaemonArgs(args ...string) []testdaemon.Option {
	return []testdaemon.Option{testdaemon.WithArgs(args...)}
}
