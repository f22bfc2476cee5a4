// Package testdaemon is the one harness that starts the real heliosd for
// tests and benchmarks (e2e/, bench/): it builds the binaries once per
// process, hands out free loopback ports, starts the daemon on them with a
// temporary data directory, stops it afterwards, and speaks its REST API
// (sign up, log in, create and revoke tokens) and its keyring (minting
// tokens the API would not issue). It is imported by tests only: the daemon
// never imports it, and it never listens or dials beyond 127.0.0.0/8 unless
// a test asks for another loopback host.
package testdaemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/keyfile"
	"github.com/heliosdb/auth/internal/listeners"
)

// RepoRoot is the module's root directory (this file is in
// internal/testdaemon).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// binDir holds the binaries built once for the whole process.
var (
	binDirOnce sync.Once
	binDir     string
	binDirErr  error
)

// RemoveBuilds deletes the binaries Build made; a TestMain calls it after
// m.Run.
func RemoveBuilds() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

var buildOnce sync.Map // binary name → *buildResult

type buildResult struct {
	once sync.Once
	path string
	err  error
}

// Build builds ./cmd/<name> once per process and returns its path.
func Build(t testing.TB, name string) string {
	t.Helper()
	return BuildWithTags(t, name, "")
}

// BuildWithTags builds ./cmd/<name> with the build tags (comma-separated)
// once per process and returns its path: test builds such as
// helios_bypass_classifier, which no release is built with.
func BuildWithTags(t testing.TB, name, tags string) string {
	t.Helper()
	v, _ := buildOnce.LoadOrStore(name+"|"+tags, &buildResult{})
	br := v.(*buildResult)
	br.once.Do(func() {
		binDirOnce.Do(func() { binDir, binDirErr = os.MkdirTemp("", "helios-test-bin-") })
		if binDirErr != nil {
			br.err = binDirErr
			return
		}
		br.path = filepath.Join(binDir, name)
		args := []string{"build", "-o", br.path}
		if tags != "" {
			br.path += "-" + strings.ReplaceAll(tags, ",", "-")
			args = []string{"build", "-tags", tags, "-o", br.path}
		}
		cmd := exec.Command("go", append(args, "./cmd/"+name)...)
		cmd.Dir = RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			br.err = fmt.Errorf("go build %s: %v\n%s", name, err, out)
		}
	})
	if br.err != nil {
		t.Fatal(br.err)
	}
	return br.path
}

// handedOut remembers the ports FreeAddr gave out, so parallel tests in this
// process never get the same one twice.
var handedOut sync.Map

// FreeAddr returns a loopback address with a port that was free a moment
// ago and that no other test of this run was given. Another process can
// still take it before the daemon binds it; start retries with new ports
// when that happens.
func FreeAddr(t testing.TB, host string) string {
	t.Helper()
	for {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if _, dup := handedOut.LoadOrStore(addr[strings.LastIndexByte(addr, ':'):], true); !dup {
			return addr
		}
	}
}

// Daemon is one running heliosd.
type Daemon struct {
	// Listeners holds the address of every listener (internal/listeners)
	// by its flag ("pg-listen"); Addr reads it.
	Listeners map[string]string
	// HTTP, PG, Redis, MySQL and Mongo are the addresses of http-listen,
	// pg-listen, redis-listen, mysql-listen and mongo-listen too (the
	// names the tests use; listenerFields).
	HTTP, PG, Redis, MySQL, Mongo string
	DataDir                       string
	CACert                        string

	args   []string
	cmd    *exec.Cmd
	logs   *SyncBuffer
	exited chan struct{}
	tags   string   // build tags of the heliosd binary
	env    []string // added to the daemon's environment
}

type Option func(*config)

type config struct {
	tags      string
	env       []string
	args      []string
	host      string
	dir       string
	noCleanup bool
}

// WithArgs adds command-line flags (they override the harness's defaults).
func WithArgs(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// WithBuildTags runs a heliosd built with these build tags (BuildWithTags).
func WithBuildTags(tags string) Option { return func(c *config) { c.tags = tags } }

// WithEnv adds KEY=value entries to the daemon's environment (GOMAXPROCS=1,
// say, for a benchmark that compares settings of the runtime).
func WithEnv(kv ...string) Option { return func(c *config) { c.env = append(c.env, kv...) } }

// WithHost makes every listener bind to host instead of 127.0.0.1.
func WithHost(host string) Option { return func(c *config) { c.host = host } }

// WithDataDir reuses an existing data directory.
func WithDataDir(dir string) Option { return func(c *config) { c.dir = dir } }

// Shared makes a daemon that outlives the test or benchmark that started
// it (one daemon for a whole run): its data directory is a fresh temporary
// one that Stop does not remove, and the caller stops it (RemoveAll of
// DataDir after Stop).
func Shared() Option { return func(c *config) { c.noCleanup = true } }

// Start builds and starts heliosd on free ports with a temporary data
// directory and stops it when the test ends (unless Shared).
func Start(t testing.TB, opts ...Option) *Daemon {
	t.Helper()
	cfg := config{host: "127.0.0.1"}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.dir == "" && cfg.noCleanup {
		dir, err := os.MkdirTemp("", "helios-daemon-")
		if err != nil {
			t.Fatal(err)
		}
		cfg.dir = dir
	}
	if cfg.dir == "" {
		cfg.dir = t.TempDir()
	}
	d := &Daemon{DataDir: cfg.dir, tags: cfg.tags, env: cfg.env}
	if !cfg.noCleanup {
		t.Cleanup(d.Stop)
	}
	for attempt := 1; ; attempt++ {
		d.args = append(append([]string{"--data-dir", d.DataDir}, d.listen(t, cfg.host)...), cfg.args...)
		// A port taken by another process between FreeAddr and the bind
		// makes the daemon exit with "address already in use": try again
		// with fresh ports.
		if d.tryStart(t) || attempt == 3 {
			return d
		}
	}
}

// listenerFields maps a listener's flag to the Daemon field that holds its
// address besides Listeners.
var listenerFields = map[string]func(d *Daemon) *string{
	"http-listen":  func(d *Daemon) *string { return &d.HTTP },
	"pg-listen":    func(d *Daemon) *string { return &d.PG },
	"redis-listen": func(d *Daemon) *string { return &d.Redis },
	"mysql-listen": func(d *Daemon) *string { return &d.MySQL },
	"mongo-listen": func(d *Daemon) *string { return &d.Mongo },
}

// listen gives every listener of internal/listeners a free address on host
// and returns the flags that set them.
func (d *Daemon) listen(t testing.TB, host string) []string {
	t.Helper()
	d.Listeners = make(map[string]string, len(listeners.All))
	args := make([]string, 0, 2*len(listeners.All))
	for _, l := range listeners.All {
		addr := FreeAddr(t, host)
		d.Listeners[l.Flag] = addr
		if field := listenerFields[l.Flag]; field != nil {
			*field(d) = addr
		}
		args = append(args, "--"+l.Flag, addr)
	}
	return args
}

// tryStart starts the daemon and reports false (after cleaning up) when it
// exited at once because a port was taken; any other failure is fatal.
func (d *Daemon) tryStart(t testing.TB) bool {
	t.Helper()
	var lost bool
	d.startWith(t, func(logs string) bool {
		if strings.Contains(logs, "address already in use") {
			lost = true
			return true
		}
		return false
	})
	return !lost
}

func (d *Daemon) StartAgain(t testing.TB) {
	t.Helper()
	d.startWith(t, nil)
}

// startWith starts the daemon; when it exits at start and retry(logs) is
// true, startWith returns quietly so the caller can try other ports.
func (d *Daemon) startWith(t testing.TB, retry func(logs string) bool) {
	t.Helper()
	bin := BuildWithTags(t, "heliosd", d.tags)
	d.logs = &SyncBuffer{}
	d.cmd = exec.Command(bin, d.args...)
	d.cmd.Stdout = d.logs
	d.cmd.Stderr = d.logs
	d.cmd.Env = append(append(os.Environ(), "HELIOS_CONFIG="), d.env...)
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(d.cmd, d.exited)
	// Wait until the first listener accepts, then give the rest a moment:
	// a protocol that is disabled (or not built yet) simply never accepts,
	// and a test that needs it fails on its own dial.
	addrs := make([]string, 0, len(listeners.All))
	for _, l := range listeners.All {
		addrs = append(addrs, d.Listeners[l.Flag])
	}
	deadline := time.Now().Add(20 * time.Second)
	var firstUp time.Time
	for len(addrs) > 0 {
		rest := addrs[:0]
		for _, addr := range addrs {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
				if firstUp.IsZero() {
					firstUp = time.Now()
				}
				continue
			}
			rest = append(rest, addr)
		}
		addrs = rest
		select {
		case <-d.exited:
			if retry != nil && retry(d.logs.String()) {
				return
			}
			t.Fatalf("heliosd exited at start:\n%s", d.logs.String())
		default:
		}
		if !firstUp.IsZero() && time.Since(firstUp) > 2*time.Second {
			break
		}
		if time.Now().After(deadline) {
			d.Kill()
			t.Fatalf("heliosd did not listen on %v:\n%s", addrs, d.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.CACert = filepath.Join(d.DataDir, "tls-cert.pem")
	if tt, ok := t.(*testing.T); ok {
		tt.Cleanup(func() {
			if tt.Failed() {
				tt.Logf("heliosd log:\n%s", d.Logs())
			}
		})
	}
}

// PID is the daemon process's id (it changes with StartAgain and Restart).
func (d *Daemon) PID() int { return d.cmd.Process.Pid }

// Exited is closed once the daemon process has exited.
func (d *Daemon) Exited() <-chan struct{} { return d.exited }

// Addr returns the address of the listener named by its flag ("pg-listen";
// every flag of internal/listeners), or "" for another name.
func (d *Daemon) Addr(flag string) string { return d.Listeners[flag] }

// Logs returns what the daemon printed so far.
func (d *Daemon) Logs() string { return d.logs.String() }

// Stop ends the daemon with SIGTERM (graceful) and waits for it.
func (d *Daemon) Stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	select {
	case <-d.exited:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(15 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

// Kill ends the daemon with SIGKILL, as a crash would.
func (d *Daemon) Kill() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Kill()
	<-d.exited
}

// Restart stops the daemon (if running) and starts it again on the same
// ports and data directory.
func (d *Daemon) Restart(t testing.TB) {
	t.Helper()
	d.Stop()
	d.StartAgain(t)
}

// URL returns the plain-HTTP URL of path on the daemon.
func (d *Daemon) URL(path string) string { return "http://" + d.HTTP + path }

var HTTPClient = &http.Client{Timeout: 20 * time.Second}

// Do sends a request with an optional bearer token and JSON body (a string
// or []byte is sent as is) and returns the status and body.
func (d *Daemon) Do(t testing.TB, method, path, bearer string, body any) (int, []byte) {
	t.Helper()
	status, out, err := Call(method, d.URL(path), bearer, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return status, out
}

// Call is Do for any URL, returning an error instead of failing a test, so
// that any goroutine may call it.
func Call(method, url, bearer string, body any) (int, []byte, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := HTTPClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// MustJSON calls Do, requires the wanted status, and decodes the body into v
// (when v is not nil).
func (d *Daemon) MustJSON(t testing.TB, want int, method, path, bearer string, body, v any) {
	t.Helper()
	status, out := d.Do(t, method, path, bearer, body)
	if status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, out)
	}
	if v != nil {
		if err := json.Unmarshal(out, v); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, out, err)
		}
	}
}

// Signup creates an account.
func (d *Daemon) Signup(t testing.TB, email, password string) {
	t.Helper()
	status, out := d.Do(t, "POST", "/v1/auth/signup", "", map[string]string{"email": email, "password": password})
	if status != http.StatusOK && status != http.StatusCreated {
		t.Fatalf("signup %s: %d %s", email, status, out)
	}
}

// Login returns a live session token.
func (d *Daemon) Login(t testing.TB, email, password string) string {
	t.Helper()
	var r struct {
		Token     string `json:"token"`
		TokenType string `json:"token_type"`
		ExpiresAt string `json:"expires_at"`
	}
	d.MustJSON(t, http.StatusOK, "POST", "/v1/auth/login", "", map[string]string{"email": email, "password": password}, &r)
	if !strings.HasPrefix(r.Token, "hdb_live_") || r.TokenType != "bearer" {
		t.Fatalf("login response %+v", r)
	}
	return r.Token
}

var userSeq atomic.Int64

// NewUser signs up a fresh account and returns its live session token.
func (d *Daemon) NewUser(t testing.TB) string {
	t.Helper()
	email := fmt.Sprintf("user%d-%d@example.com", time.Now().UnixNano(), userSeq.Add(1))
	const pw = "correct-horse-battery-staple"
	d.Signup(t, email, pw)
	return d.Login(t, email, pw)
}

// CreateToken creates a token with the given request body and returns the
// token and its id.
func (d *Daemon) CreateToken(t testing.TB, bearer string, body map[string]any) (token, id string) {
	t.Helper()
	var r map[string]any
	status, out := d.Do(t, "POST", "/v1/auth/tokens", bearer, body)
	if status != http.StatusOK && status != http.StatusCreated {
		t.Fatalf("create token %v: %d %s", body, status, out)
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	token, _ = r["token"].(string)
	id, _ = r["id"].(string)
	if token == "" || !strings.HasPrefix(id, "tok_") {
		t.Fatalf("create token response %s", out)
	}
	return token, id
}

// Revoke revokes token id.
func (d *Daemon) Revoke(t testing.TB, bearer, id string) {
	t.Helper()
	status, out := d.Do(t, "DELETE", "/v1/auth/tokens/"+id, bearer, nil)
	if status != http.StatusOK && status != http.StatusNoContent {
		t.Fatalf("revoke %s: %d %s", id, status, out)
	}
}

// Mint makes a token directly with the daemon's keyring (for tokens the API
// would not issue, such as already-expired ones). The zero ID is replaced by
// a fresh one; zero times mean "issued now, expires in an hour".
func (d *Daemon) Mint(t testing.TB, c core.Claims) string {
	t.Helper()
	ring, err := keyfile.Load(filepath.Join(d.DataDir, "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	if c.ID == (core.TokenID{}) {
		c.ID = core.NewTokenID()
	}
	if c.IssuedAt == 0 {
		c.IssuedAt = time.Now().Unix()
	}
	if c.ExpiresAt == 0 {
		c.ExpiresAt = c.IssuedAt + 3600
	}
	if c.Type == 0 {
		c.Type = core.TypeLive
	}
	tok, _, err := core.NewMinter(ring).Mint(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

// ExpiredToken returns a genuine token that expired a minute ago.
func (d *Daemon) ExpiredToken(t testing.TB) string {
	now := time.Now().Unix()
	return d.Mint(t, core.Claims{Account: 1, IssuedAt: now - 7200, ExpiresAt: now - 60, Scopes: core.AllScopes})
}

// Tamper flips one character in the middle of a token's body.
func Tamper(tok string) string {
	b := []byte(tok)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// SyncBuffer is a bytes.Buffer safe for concurrent writes and reads: a
// process's output read while it runs.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// CheckUpstreamDown asserts what GET /healthz says of an upstream that
// cannot be reached (protocol "postgres", "mysql", …, at addr): the
// status is "degraded", the upstream unreachable at its address with an
// error, and the body never shows secret (the upstream URL's password).
func (d *Daemon) CheckUpstreamDown(t testing.TB, protocol, addr, secret string) {
	t.Helper()
	status, body := d.Do(t, "GET", "/healthz", "", nil)
	var h struct {
		Status    string
		Upstreams map[string]struct {
			Address   string
			Reachable bool
			Error     string
		}
	}
	up := func() (string, bool, string) {
		u := h.Upstreams[protocol]
		return u.Address, u.Reachable, u.Error
	}
	err := json.Unmarshal(body, &h)
	if a, reachable, e := up(); err != nil || status != 200 || h.Status != "degraded" || reachable || a != addr || e == "" {
		t.Fatalf("/healthz with the %s upstream down: %d %s", protocol, status, body)
	}
	if strings.Contains(string(body), secret) {
		t.Fatalf("/healthz shows the upstream's password: %s", body)
	}
}
