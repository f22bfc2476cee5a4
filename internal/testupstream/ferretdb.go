package testupstream

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// FerretDBVersion is the FerretDB release scripts/install-deps.sh builds
// into .tools/bin.
const FerretDBVersion = "v1.24.2"

// ferretdbPath is the FerretDB binary: the project's .tools/bin/ferretdb
// (this file is internal/testupstream/ferretdb.go).
func ferretdbPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(file))), ".tools", "bin", "ferretdb")
}

// FerretDB is a running FerretDB 1.24 server (the MongoDB-compatible
// server heliosd's MongoDB proxy mode is tested against) with its SQLite
// backend in a temporary directory, listening on 127.0.0.1, without
// authentication unless started with StartFerretDBWithAuth. Its methods
// are safe for concurrent use.
type FerretDB struct {
	Addr string // 127.0.0.1:PORT
	// URL is the connection string: mongodb://127.0.0.1:PORT/, with the
	// user and password when the server authenticates.
	URL string
	// User and Password are the SCRAM user FerretDB was set up with ("" :
	// no authentication).
	User, Password string
	Dir            string // the temporary directory: data/ (SQLite files), ferretdb.log

	server // its process
}

// StartFerretDB starts FerretDB without authentication on a free loopback
// port; it returns once the Go driver's ping is answered. It takes no
// testing.T because a TestMain calls it once per package; the caller must
// call Stop.
func StartFerretDB() (*FerretDB, error) { return startFerretDB(false) }

// StartFerretDBWithAuth starts FerretDB with its authentication enabled
// (--test-enable-new-auth) and one SCRAM user with a random password, set
// up in admin: clients must log in, as with a MongoDB server with
// authorization. FerretDB 1.x still enforces no roles.
func StartFerretDBWithAuth() (*FerretDB, error) { return startFerretDB(true) }

func startFerretDB(auth bool) (*FerretDB, error) {
	path := ferretdbPath()
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%s is missing: run scripts/install-deps.sh, which builds FerretDB %s from its Go module: %w", path, FerretDBVersion, err)
	}
	dir, err := makeDir("ferretdb", nil)
	if err != nil {
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	f := &FerretDB{Dir: dir, server: server{
		name: "ferretdb", dir: dir, shutdown: syscall.SIGTERM, stopGrace: defaultStopGrace,
	}}
	if auth {
		f.User, f.Password = "helios", randomPassword()
	}
	if err := f.startFree(f.start); err != nil {
		return nil, err
	}
	return f, nil
}

// start starts the server on port and waits until it answers a ping. The
// caller holds mu, or owns f alone.
func (f *FerretDB) start(port int) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{
		"--handler=sqlite",
		"--sqlite-url=file:" + filepath.Join(f.Dir, "data") + "/",
		"--listen-addr=" + addr,
		"--state-dir=" + f.Dir,
		"--debug-addr=-",      // no HTTP debug listener
		"--telemetry=disable", // no reports home
		"--log-level=warn",
		"--log-format=text",
	}
	u := &url.URL{Scheme: "mongodb", Host: addr, Path: "/"}
	if f.User != "" {
		args = append(args, "--test-enable-new-auth", "--setup-database=admin", "--setup-username="+f.User,
			"--setup-password="+f.Password)
		u.User = url.UserPassword(f.User, f.Password)
	}
	uri := u.String()
	err := f.spawn(port, "ferretdb", ferretdbPath(), args, "ferretdb.log", func(ctx context.Context) error {
		c, err := mongo.Connect(options.Client().ApplyURI(uri).SetDirect(true).SetServerSelectionTimeout(2 * time.Second))
		if err != nil {
			return err
		}
		defer c.Disconnect(context.Background())
		return c.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err()
	})
	if err != nil {
		if strings.Contains(err.Error(), "address already in use") {
			return fmt.Errorf("%w: %v", errAddrInUse, err)
		}
		return err
	}
	f.Addr, f.URL = addr, uri
	return nil
}

// Stop shuts the server down (SIGTERM), kills its process group if it has
// not exited within the grace period, and removes Dir. Calling it again
// does nothing.
func (f *FerretDB) Stop() { f.stop() }

// Restart stops the server and starts it again on the same port and data,
// for tests of an upstream that restarts mid-session: connections open to
// it break, written data stays.
func (f *FerretDB) Restart() error { return f.restart(f.start) }

// Connections counts the TCP connections established to the server's
// port, from /proc/net/tcp: the server's own ends, one per client
// connection (heliosd's pooled ones included).
func (f *FerretDB) Connections() (int, error) {
	peers, err := f.Peers()
	return len(peers), err
}

// Peers are the client ports of the TCP connections established to the
// server's port, from /proc/net/tcp: a test tells one connection (say,
// the one a session of the gateway holds) from the others by its port.
func (f *FerretDB) Peers() (map[int]bool, error) {
	f.mu.Lock()
	port := f.port
	f.mu.Unlock()
	return establishedTo(port)
}

// establishedTo returns the remote ports of the sockets in state
// ESTABLISHED whose local port is port in /proc/net/tcp (IPv4; the
// servers listen on 127.0.0.1).
func establishedTo(port int) (map[int]bool, error) {
	file, err := os.Open("/proc/net/tcp")
	if err != nil {
		return nil, err
	}
	defer file.Close()
	want := fmt.Sprintf(":%04X", port)
	peers := map[int]bool{}
	sc := bufio.NewScanner(file)
	sc.Scan() // the header line
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// sl local_address rem_address st …; st 01 is ESTABLISHED.
		if len(fields) > 3 && strings.HasSuffix(fields[1], want) && fields[3] == "01" {
			_, rem, _ := strings.Cut(fields[2], ":")
			p, err := strconv.ParseUint(rem, 16, 16)
			if err != nil {
				return nil, fmt.Errorf("/proc/net/tcp: remote address %q: %w", fields[2], err)
			}
			peers[int(p)] = true
		}
	}
	return peers, sc.Err()
}
