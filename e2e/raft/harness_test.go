package raft

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/keyfile"
	"github.com/heliosdb/auth/internal/testdaemon"
	"github.com/heliosdb/auth/issuer/feed"
)

// replica is one heliosd issuer replica.
type replica struct {
	id, raftAddr string
	d            *testdaemon.Daemon
	up           atomic.Bool
}

// cluster is three (or more) replicas sharing a cluster key and keyring.
type cluster struct {
	reps []*replica
	key  string
	// keyFile is a copy of the cluster key outside the data directories
	// (for gateways and the raft CLI).
	keyFile string
	peers   string
	seed    string // a data directory with keyring.json and cluster.key to copy
}

// newCluster starts n replicas on loopback and waits for a leader.
func newCluster(t *testing.T, n int, extra ...string) *cluster {
	t.Helper()
	c := &cluster{seed: t.TempDir()}
	writeSeed(t, c)
	var peers []string
	for i := range n {
		r := &replica{id: fmt.Sprintf("r%d", i+1), raftAddr: testdaemon.FreeAddr(t, "127.0.0.1")}
		c.reps = append(c.reps, r)
		peers = append(peers, r.id+"="+r.raftAddr)
	}
	c.peers = strings.Join(peers, ",")
	for _, r := range c.reps {
		c.start(t, r, c.peers, extra...)
	}
	c.leader(t, 20*time.Second)
	return c
}

// writeSeed makes the cluster's keyring and cluster key in c.seed.
func writeSeed(t *testing.T, c *cluster) {
	t.Helper()
	if _, _, err := keyfile.LoadOrGenerate(filepath.Join(c.seed, "keyring.json"), time.Now()); err != nil {
		t.Fatal(err)
	}
	key, err := feed.LoadOrCreateClusterKey(filepath.Join(c.seed, feed.ClusterKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	c.key, c.keyFile = key, filepath.Join(c.seed, feed.ClusterKeyFile)
}

// seedDir makes a data directory holding the cluster's keyring and key.
func (c *cluster) seedDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"keyring.json", feed.ClusterKeyFile} {
		b, err := os.ReadFile(filepath.Join(c.seed, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// start starts replica r with peers (empty: it waits to be added).
func (c *cluster) start(t *testing.T, r *replica, peers string, extra ...string) {
	t.Helper()
	args := []string{"--raft-id", r.id, "--raft-listen", r.raftAddr, "--log-level", "warn"}
	if peers != "" {
		args = append(args, "--raft-peers", peers)
	}
	r.d = testdaemon.Start(t, testdaemon.WithDataDir(c.seedDir(t)), testdaemon.WithArgs(append(args, extra...)...))
	r.up.Store(true)
}

// raftHealth is the "raft" object of a replica's /healthz.
type raftHealth struct {
	State   string `json:"state"`
	Leader  string `json:"leader"`
	Applied uint64 `json:"applied"`
	Commit  uint64 `json:"commit"`
	ID      string `json:"id"`
	Voters  int    `json:"voters"`
	Members []struct {
		ID    string `json:"id"`
		Voter bool   `json:"voter"`
	} `json:"members"`
}

var client = &http.Client{Timeout: 10 * time.Second}

func health(r *replica) (raftHealth, error) {
	resp, err := client.Get(r.d.URL("/healthz"))
	if err != nil {
		return raftHealth{}, err
	}
	defer resp.Body.Close()
	var h struct {
		Status string     `json:"status"`
		Raft   raftHealth `json:"raft"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return raftHealth{}, err
	}
	return h.Raft, nil
}

// leader waits for a replica that reports itself leader and that the
// others running agree on.
func (c *cluster) leader(t testing.TB, within time.Duration) *replica {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var lead *replica
		agree := 0
		for _, r := range c.reps {
			if !r.up.Load() {
				continue
			}
			h, err := health(r)
			if err != nil {
				continue
			}
			if h.State == "leader" {
				lead = r
			}
			if lead != nil && h.Leader == lead.id {
				agree++
			}
		}
		if lead != nil {
			// Re-count against the leader found.
			agree = 0
			for _, r := range c.reps {
				if h, err := health(r); r.up.Load() && err == nil && h.Leader == lead.id {
					agree++
				}
			}
			if agree >= len(c.reps)/2+1 {
				return lead
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader within %s", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// live returns the replicas running.
func (c *cluster) live() []*replica {
	var out []*replica
	for _, r := range c.reps {
		if r.up.Load() {
			out = append(out, r)
		}
	}
	return out
}

// followers are the replicas other than lead.
func (c *cluster) followers(lead *replica) []*replica {
	var out []*replica
	for _, r := range c.reps {
		if r != lead {
			out = append(out, r)
		}
	}
	return out
}

// raft runs `heliosd raft ARGS…` against the issuer at url with the
// cluster key, and returns its output (a failure fails t).
func (c *cluster) raft(t *testing.T, url string, args ...string) string {
	t.Helper()
	return heliosd(t, append(append([]string{"raft"}, args...), "--issuer-url", url, "--cluster-key-file", c.keyFile)...)
}

// urls is the --issuer-url list of every replica.
func (c *cluster) urls() string {
	var u []string
	for _, r := range c.reps {
		u = append(u, "http://"+r.d.HTTP)
	}
	return strings.Join(u, ",")
}

// gateway starts a gateway node following every replica.
func (c *cluster) gateway(t *testing.T) *testdaemon.Daemon {
	t.Helper()
	g := testdaemon.Start(t, testdaemon.WithArgs("--role", "gateway", "--issuer-url", c.urls(), "--cluster-key-file", c.keyFile,
		"--log-level", "warn"))
	deadline := time.Now().Add(20 * time.Second)
	for {
		if h := gatewayHealth(g); h.Status == "ok" {
			return g
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not healthy:\n%s", g.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type gwHealth struct {
	Status     string `json:"status"`
	AppliedSeq uint64 `json:"applied_seq"`
}

func gatewayHealth(g *testdaemon.Daemon) gwHealth {
	var h gwHealth
	resp, err := client.Get(g.URL("/healthz"))
	if err != nil {
		return gwHealth{Status: "down"}
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&h)
	return h
}

// logEntry is one revocation log entry as a replica's feed streams it.
type logEntry struct {
	Kind  feed.Kind
	Token core.TokenID
}

// feedLog reads a replica's revocation log from the start (its feed after
// sequence 1) up to its watermark: sequence number → entry.
func (c *cluster) feedLog(t testing.TB, r *replica) (map[uint64]logEntry, uint64) {
	t.Helper()
	// A replica out of contact with a leader (just restarted, or healed
	// from a partition) refuses the feed for a moment: retry.
	var resp *http.Response
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequest("GET", r.d.URL("/v1/cluster/feed?after=1"), nil)
		req.Header.Set("Authorization", "HeliosCluster "+c.key)
		var err error
		resp, err = client.Do(req)
		if err == nil && resp.StatusCode == http.StatusOK {
			break
		}
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s feed: %v", r.id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	out := map[uint64]logEntry{}
	var e feed.Event
	var buf []byte
	var err error
	for {
		if buf, err = feed.ReadFrame(br, buf, &e); err != nil {
			t.Fatalf("%s feed: %v", r.id, err)
		}
		switch e.Kind {
		case feed.KindSnapshotBegin:
			t.Fatalf("%s answered the log from 1 with a snapshot (compacted?)", r.id)
		case feed.KindHeartbeat:
			return out, e.Seq
		default:
			out[e.Seq] = logEntry{e.Kind, e.Token}
		}
	}
}

// user is an account and its login token on the cluster.
type user struct {
	email, bearer string
}

// newUser signs up on one replica and logs in on another (a fresh read),
// retrying while the cluster elects (503): a signup retried after its
// first attempt was applied answers 409, which is fine here.
func newUser(t testing.TB, on, login *replica, email string) user {
	t.Helper()
	body := map[string]string{"email": email, "password": "correct horse battery staple"}
	deadline := time.Now().Add(30 * time.Second)
	retry := func(r *replica, path string, ok ...int) []byte {
		for {
			status, out := do(r, "POST", path, "", body)
			for _, s := range ok {
				if status == s {
					return out
				}
			}
			if (status != http.StatusServiceUnavailable && status != 0) || time.Now().After(deadline) {
				t.Fatalf("POST %s on %s: %d %s", path, r.id, status, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	retry(on, "/v1/auth/signup", http.StatusCreated, http.StatusConflict)
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(retry(login, "/v1/auth/login", http.StatusOK), &out); err != nil {
		t.Fatal(err)
	}
	return user{email, out.Token}
}

// do sends a JSON request to r with bearer and returns status and body;
// a transport error is status 0.
func do(r *replica, method, path, bearer string, body any) (int, []byte) {
	var rd *strings.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	} else {
		rd = strings.NewReader("")
	}
	req, err := http.NewRequest(method, r.d.URL(path), rd)
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	var sb strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&sb)
	return resp.StatusCode, []byte(sb.String())
}

// accepts reports whether the daemon's REST gateway takes tok (SELECT 1).
func accepts(d *testdaemon.Daemon, tok string) (bool, string) {
	req, _ := http.NewRequest("POST", d.URL("/api/v1/sql"), strings.NewReader(`{"query":"SELECT 1"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	var sb strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&sb)
	return resp.StatusCode == http.StatusOK, sb.String()
}

// seqWatch polls a gateway's applied sequence number and records any
// step backwards.
type seqWatch struct {
	mu        sync.Mutex
	last      uint64
	regressed []string
	stop      chan struct{}
	done      chan struct{}
}

func watchSeq(g *testdaemon.Daemon) *seqWatch {
	w := &seqWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(25 * time.Millisecond):
			}
			h := gatewayHealth(g)
			if h.AppliedSeq == 0 {
				continue
			}
			w.mu.Lock()
			if h.AppliedSeq < w.last {
				w.regressed = append(w.regressed, fmt.Sprintf("%d after %d", h.AppliedSeq, w.last))
			}
			w.last = max(w.last, h.AppliedSeq)
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *seqWatch) finish(t testing.TB) {
	t.Helper()
	close(w.stop)
	<-w.done
	if len(w.regressed) > 0 {
		t.Errorf("gateway sequence went backwards: %v", w.regressed)
	}
}
