package load

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heliosdb/auth/internal/testdaemon"
)

// helios runs the real `helios` binary with the daemon's API and a login
// token in its environment.
func helios(t *testing.T, d *testdaemon.Daemon, login string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(testdaemon.Build(t, "helios"), args...)
	cmd.Env = append(os.Environ(), "HELIOS_API_URL=http://"+d.HTTP, "HELIOS_TOKEN="+login, "XDG_CONFIG_HOME="+t.TempDir(), "HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

// TestCLIInterrupt: SIGINT (Ctrl-C) to a running `helios bench` ends the
// run at once and cleanly — exit status 130, the figures measured so far
// printed and written to the report, no request counted as failed for
// having been cut short, the run's tokens revoked.
func TestCLIInterrupt(t *testing.T) {
	d := gateway(t)
	login := d.NewUser(t)
	dir := filepath.Join(t.TempDir(), "report")
	cmd, stdout, stderr := helios(t, d, login, "bench", "--protocol", "redis,pg", "--workload", "point", "--clients", "2",
		"--duration", "60s", "--warmup", "0", "--target", targetSpec(d), "--report", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("helios bench still running 30s after SIGINT\nstderr: %s", stderr)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v, want status 130\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	if took := time.Since(sent); took > 10*time.Second {
		t.Errorf("took %s to stop", took)
	}
	if !strings.Contains(stdout.String(), "Interrupted") || !strings.Contains(stdout.String(), "redis point gateway:") {
		t.Errorf("stdout: %s", stdout)
	}
	if !strings.Contains(stderr.String(), "interrupted") || !strings.Contains(stderr.String(), "Report:") {
		t.Errorf("stderr: %s", stderr)
	}
	var res Result
	js, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil || json.Unmarshal(js, &res) != nil {
		t.Fatalf("result.json: %v", err)
	}
	if !res.Interrupted || len(res.Cells) != 1 || res.Cells[0].Protocol != Redis {
		t.Fatalf("result: interrupted %v, cells %+v", res.Interrupted, res.Cells)
	}
	e := res.Cells[0].Endpoints[0]
	if e.Requests < 100 || e.Failed != 0 || e.Latency.Count != e.Requests || e.Seconds < 2 || e.Seconds > 6 {
		t.Errorf("figures: %+v", e)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	if !bytes.Contains(md, []byte("**Interrupted**")) || !bytes.Contains(md, []byte("### redis point")) {
		t.Errorf("report.md:\n%s", md)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "redis-point-latency.png")); err != nil || len(b) < 1000 {
		t.Errorf("latency plot: %v", err)
	}
	checkNoBenchTokens(t, d, login)
}

// checkNoBenchTokens fails if a token the run created is still live.
func checkNoBenchTokens(t *testing.T, d *testdaemon.Daemon, login string) {
	t.Helper()
	var list struct {
		Tokens []struct {
			Name string `json:"name"`
		} `json:"tokens"`
	}
	d.MustJSON(t, http.StatusOK, "GET", "/v1/auth/tokens", login, nil, &list)
	for _, tk := range list.Tokens {
		if strings.HasPrefix(tk.Name, "helios-bench-") {
			t.Errorf("token %s still live after the run", tk.Name)
		}
	}
}

// TestCLIJSONRequests: --requests N sends exactly N requests per cell,
// several workloads make one run (each on every protocol), and --output
// json prints the result for machines (no progress on stdout).
func TestCLIJSONRequests(t *testing.T) {
	d := gateway(t)
	login := d.NewUser(t)
	cmd, stdout, stderr := helios(t, d, login, "bench", "--protocol", "redis,mysql", "--workload", "mixed,connect", "--ratio", "50:50",
		"--clients", "3", "--requests", "301", "--warmup", "0", "--target", targetSpec(d), "--output", "json")
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	var res Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("stdout is not the JSON result: %v\n%s", err, stdout)
	}
	if len(res.Cells) != 4 || res.Cells[0].Workload != Mixed || res.Cells[3].Workload != Connect || res.Setup.ReadPercent != 50 || res.Setup.Requests != 301 {
		t.Fatalf("result: %+v", res)
	}
	for _, c := range res.Cells {
		e := c.Endpoints[0]
		if e.Requests != 301 || e.Failed != 0 {
			t.Errorf("%s: %d requests, %d failed (want 301, 0): %+v", c.String(), e.Requests, e.Failed, e.Errors)
		}
	}
	if !strings.Contains(stderr.String(), "bench: redis mixed") {
		t.Errorf("no progress lines on stderr: %s", stderr)
	}
	checkNoBenchTokens(t, d, login)
}

// TestCLIRefused: a token the gateway refuses makes every request fail:
// the output says so first, names the server's reason, and the command
// exits with status 2.
func TestCLIRefused(t *testing.T) {
	d := gateway(t)
	bad := "hdb_live_" + strings.Repeat("B", 40)
	cmd, stdout, stderr := helios(t, d, d.NewUser(t), "bench", "--protocol", "pg,redis", "--workload", "connect",
		"--duration", "1s", "--warmup", "0", "--clients", "2", "--token", bad, "--target", targetSpec(d))
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v, want status 2\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	out := stdout.String()
	if !strings.HasPrefix(out, "WARNING: 100.00% of the requests failed") {
		t.Errorf("the failure is not said first:\n%s", out)
	}
	for _, want := range []string{"gateway errors: ", "× postgres 28P01: Invalid or missing authentication token", "× redis: WRONGPASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+stderr.String(), bad) {
		t.Error("the output shows the token")
	}
}
