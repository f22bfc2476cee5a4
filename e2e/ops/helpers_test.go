package ops

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heliosdb/auth/internal/listeners"
	"github.com/heliosdb/auth/internal/testdaemon"
)

// proc is a heliosd started by the test itself (to control its
// environment), with every listener on a free loopback port.
type proc struct {
	cmd    *exec.Cmd
	addrs  map[string]string // by flag
	dir    string
	logs   *testdaemon.SyncBuffer
	exited chan struct{}
}

// startProc starts heliosd with env added to the test's environment and
// args after the listener and data-dir flags; it does not wait for it.
func startProc(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{addrs: map[string]string{}, dir: dir, logs: &testdaemon.SyncBuffer{}, exited: make(chan struct{})}
	all := []string{"--data-dir", dir}
	for _, l := range listeners.All {
		a := testdaemon.FreeAddr(t, "127.0.0.1")
		p.addrs[l.Flag] = a
		all = append(all, "--"+l.Flag, a)
	}
	p.cmd = exec.Command(testdaemon.Build(t, "heliosd"), append(all, args...)...)
	p.cmd.Env = append(append(os.Environ(), "HELIOS_CONFIG="), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("heliosd log:\n%s", p.logs.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits for the exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("heliosd did not exit within 20s of SIGINT")
	}
}

// allAccept reports which listeners do not accept a connection now.
func (p *proc) notAccepting() []string {
	var down []string
	for flag, a := range p.addrs {
		c, err := net.DialTimeout("tcp", a, time.Second)
		if err != nil {
			down = append(down, flag)
			continue
		}
		c.Close()
	}
	return down
}

// waitLog waits until the log contains s.
func (p *proc) waitLog(t *testing.T, s string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(p.logs.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("heliosd did not log %q within %s", s, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syscallTERM is SIGTERM, what systemd sends to stop a service.
var syscallTERM = syscall.SIGTERM

// signup creates an account through the REST API on addr.
func signup(t *testing.T, addr, email string) {
	t.Helper()
	body := `{"email":"` + email + `","password":"correct horse battery staple"}`
	resp, err := http.Post("http://"+addr+"/v1/auth/signup", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("signup: %s %s", resp.Status, b)
	}
}
