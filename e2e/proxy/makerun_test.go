package proxy

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testdaemon"
)

// TestMakeRunStartsRealDatabases runs scripts/run.sh (make run's recipe)
// as a newcomer would: it initialises PostgreSQL under data/upstreams/,
// starts it on a private port, points heliosd at it, and a token reaches a
// real table through the gateway; Ctrl-C stops everything it started.
func TestMakeRunStartsRealDatabases(t *testing.T) {
	bin := filepath.Dir(testdaemon.Build(t, "heliosd"))
	testdaemon.Build(t, "helios")
	// A folder the postgres user can reach, as a checkout is.
	top := t.TempDir()
	for _, d := range []string{filepath.Dir(top), top} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(top, "data")
	pgPort := port(testdaemon.FreeAddr(t, "127.0.0.1"))
	myPort := port(testdaemon.FreeAddr(t, "127.0.0.1"))
	listen := map[string]string{}
	var flags []string
	for _, f := range []string{"http-listen", "pg-listen", "mysql-listen", "mongo-listen", "redis-listen"} {
		listen[f] = testdaemon.FreeAddr(t, "127.0.0.1")
		flags = append(flags, "--"+f, listen[f])
	}
	cmd := exec.Command(filepath.Join(testdaemon.RepoRoot(), "scripts", "run.sh"))
	cmd.Env = append(os.Environ(), "BIN="+bin, "DATA_DIR="+data, "PG_UPSTREAM_PORT="+pgPort, "MYSQL_UPSTREAM_PORT="+myPort,
		"HELIOSD_ARGS="+strings.Join(flags, " "))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // whatever is left after a failure
	}()
	deadline := time.Now().Add(90 * time.Second)
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
	if !strings.Contains(logs.String(), "PostgreSQL 15") || !strings.Contains(logs.String(), "127.0.0.1:"+pgPort) {
		t.Fatalf("make run did not start PostgreSQL:\n%s", logs.String())
	}
	if st, err := os.Stat(filepath.Join(data, "upstreams", "postgres", "data", "PG_VERSION")); err != nil || st.Size() == 0 {
		t.Fatalf("no PostgreSQL cluster under data/upstreams: %v", err)
	}
	// A token minted with the daemon's own key, as the API would issue it.
	tok := (&testdaemon.Daemon{DataDir: data}).Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
	ctx := context.Background()
	c, err := pgx.Connect(ctx, "postgres://default:"+tok+"@"+listen["pg-listen"]+"/main?sslmode=disable")
	if err != nil {
		t.Fatalf("psql through make run's gateway: %v\n%s", err, logs.String())
	}
	if _, err := c.Exec(ctx, "CREATE TABLE newcomer(a int); INSERT INTO newcomer VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	var user string
	if err := c.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	if user != "helios_owner" {
		t.Fatalf("make run's gateway logged in as %q", user)
	}
	// Ctrl-C: the terminal signals the whole foreground group.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("make run did not stop on Ctrl-C:\n%s", logs.String())
	}
	for _, p := range []string{pgPort, listen["pg-listen"][strings.LastIndexByte(listen["pg-listen"], ':')+1:]} {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+p, time.Second); err == nil {
			c.Close()
			t.Fatalf("port %s still accepts after make run stopped", p)
		}
	}
}

// port is the port of a host:port.
func port(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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
