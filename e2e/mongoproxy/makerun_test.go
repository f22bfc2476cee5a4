package mongoproxy

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testdaemon"
)

// TestMakeRunStartsFerretDB runs scripts/run.sh (make run's recipe) twice
// on the same data directory, as a newcomer would: it starts FerretDB
// under data/upstreams/ferretdb on a private port, with a login only
// heliosd is given, points heliosd at it, and mongosh with a token writes
// a document through the gateway that is still there the second time;
// Ctrl-C stops everything it started.
func TestMakeRunStartsFerretDB(t *testing.T) {
	bin := filepath.Dir(testdaemon.Build(t, "heliosd"))
	testdaemon.Build(t, "helios")
	top := t.TempDir()
	for _, d := range []string{filepath.Dir(top), top} { // a folder the postgres user can reach, as a checkout is
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(top, "data")
	mongoPort := portOf(testdaemon.FreeAddr(t, "127.0.0.1"))
	env := []string{"BIN=" + bin, "DATA_DIR=" + data, "MONGO_UPSTREAM_PORT=" + mongoPort,
		"PG_UPSTREAM_PORT=" + portOf(testdaemon.FreeAddr(t, "127.0.0.1")), "MYSQL_UPSTREAM_PORT=" + portOf(testdaemon.FreeAddr(t, "127.0.0.1"))}
	listen := map[string]string{}
	var flags []string
	for _, f := range []string{"http-listen", "pg-listen", "mysql-listen", "mongo-listen", "redis-listen"} {
		listen[f] = testdaemon.FreeAddr(t, "127.0.0.1")
		flags = append(flags, "--"+f, listen[f])
	}
	env = append(env, "HELIOSD_ARGS="+strings.Join(flags, " "))
	for run := 1; run <= 2; run++ {
		logs := makeRun(t, env, func(logs string) {
			if !strings.Contains(logs, "FerretDB v1.24.2 on 127.0.0.1:"+mongoPort) {
				t.Fatalf("make run did not start FerretDB:\n%s", logs)
			}
			tok := (&testdaemon.Daemon{DataDir: data}).Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
			out, err := runMongosh(t, "", "mongodb://default:"+url.QueryEscape(tok)+"@"+listen["mongo-listen"]+"/main?authMechanism=PLAIN",
				"--quiet", "--eval", "db.newcomer.insertOne({run: "+string(rune('0'+run))+"}); db.newcomer.countDocuments()")
			if err != nil || !strings.HasSuffix(strings.TrimSpace(out), string(rune('0'+run))) {
				t.Fatalf("mongosh through make run's gateway (run %d): %v\n%s\n%s", run, err, out, logs)
			}
			// The server itself wants a login: no going around the gateway.
			c, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:" + mongoPort + "/").SetDirect(true))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Disconnect(context.Background())
			if err := c.Database("main").Collection("newcomer").FindOne(context.Background(), bson.D{}).Err(); err == nil {
				t.Fatal("make run's FerretDB answers without a login")
			}
		})
		if strings.Contains(logs, "setup-password") {
			t.Fatal("the FerretDB password was on a command line shown in the logs")
		}
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+mongoPort, time.Second); err == nil {
		c.Close()
		t.Fatal("FerretDB still accepts after make run stopped")
	}
}

// makeRun runs scripts/run.sh with env until heliosd is up, calls check
// with its output, then stops it as Ctrl-C does and returns its output.
func makeRun(t *testing.T, env []string, check func(logs string)) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(testdaemon.RepoRoot(), "scripts", "run.sh"))
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }() // whatever is left after a failure
	deadline := time.Now().Add(5 * time.Minute)                            // the first run may build FerretDB
	for !strings.Contains(logs.String(), "Connect (") {
		if time.Now().After(deadline) {
			t.Fatalf("make run did not come up:\n%s", logs.String())
		}
		select {
		case err := <-done:
			t.Fatalf("make run exited: %v\n%s", err, logs.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	check(logs.String())
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("make run did not stop on Ctrl-C:\n%s", logs.String())
	}
	return logs.String()
}

// portOf is the port of a host:port.
func portOf(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

// lockedBuffer collects a process's output from its two pipes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
