package raft

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/heliosdb/auth/internal/testdaemon"
)

// The partition test runs in network namespaces it creates: a hub
// namespace where the test itself runs (the test binary re-executes
// itself there), and one namespace per replica, each joined to the hub
// by a veth pair on a private 10.99.N.0/24 link, the hub routing between
// them. Nothing touches the host's own network namespace. A partition is
// blackhole routes inside the replicas' namespaces.

const insideEnv = "HELIOS_RAFT_PARTITION_INSIDE"

// TestLeaderPartitionedAway re-executes the test binary inside a hub
// namespace (see testLeaderPartitionedAway).
func TestLeaderPartitionedAway(t *testing.T) {
	if os.Getenv(insideEnv) != "" {
		testLeaderPartitionedAway(t)
		return
	}
	if os.Geteuid() != 0 {
		t.Fatal("the partition test creates network namespaces: run it as root")
	}
	bin := testdaemon.Build(t, "heliosd")
	hub := fmt.Sprintf("hdb16-%d-hub", os.Getpid())
	run(t, "ip", "netns", "add", hub)
	defer exec.Command("ip", "netns", "del", hub).Run()
	cmd := exec.Command("ip", "netns", "exec", hub, os.Args[0], "-test.run", "^TestLeaderPartitionedAway$", "-test.v")
	cmd.Env = append(os.Environ(), insideEnv+"="+hub, "HELIOS_RAFT_HELIOSD="+bin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, "partition_test.go") || strings.HasPrefix(line, "---") || strings.HasPrefix(line, "panic") {
			t.Log(line)
		}
	}
	if err != nil {
		t.Fatalf("inside the namespaces: %v\n%s", err, tail(out.String(), 8000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// nsReplica is a replica in its own namespace.
type nsReplica struct {
	id, ns, ip string
	dir        string
	cmd        *exec.Cmd
}

func (r *nsReplica) url(path string) string { return "http://" + r.ip + ":8080" + path }

// testLeaderPartitionedAway (inside the hub namespace): three replicas;
// the leader is cut off from the other two. The majority elects a new
// leader and takes writes; the old leader acknowledges none (every write
// sent to it fails, and none of them survives the heal: its uncommitted
// tail is discarded); only one side accepts writes; after the heal all
// three have the same log with every acknowledged revocation.
func testLeaderPartitionedAway(t *testing.T) {
	hub := os.Getenv(insideEnv)
	bin := os.Getenv("HELIOS_RAFT_HELIOSD")
	run(t, "ip", "link", "set", "lo", "up")
	run(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	var reps []*nsReplica
	var peers []string
	for i := 1; i <= 3; i++ {
		r := &nsReplica{id: fmt.Sprintf("r%d", i), ns: fmt.Sprintf("%s-r%d", strings.TrimSuffix(hub, "-hub"), i), ip: fmt.Sprintf("10.99.%d.2", i)}
		run(t, "ip", "netns", "add", r.ns)
		ns := r.ns
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		hv, rv := fmt.Sprintf("vh%d", i), fmt.Sprintf("vr%d", i)
		run(t, "ip", "link", "add", hv, "type", "veth", "peer", "name", rv, "netns", r.ns)
		run(t, "ip", "addr", "add", fmt.Sprintf("10.99.%d.1/24", i), "dev", hv)
		run(t, "ip", "link", "set", hv, "up")
		in := func(args ...string) { run(t, append([]string{"ip", "netns", "exec", r.ns}, args...)...) }
		in("ip", "link", "set", "lo", "up")
		in("ip", "addr", "add", r.ip+"/24", "dev", rv)
		in("ip", "link", "set", rv, "up")
		in("ip", "route", "add", "default", "via", fmt.Sprintf("10.99.%d.1", i))
		reps = append(reps, r)
		peers = append(peers, r.id+"="+r.ip+":7000")
	}
	// One cluster key and keyring for all (made by a first replica start
	// would do too; here the harness's seed directory).
	cl := newSeed(t)
	for _, r := range reps {
		r.dir = cl.seedDir(t)
		r.start(t, bin, strings.Join(peers, ","))
	}
	t.Cleanup(func() {
		for _, r := range reps {
			r.kill()
		}
	})
	leader := nsLeader(t, reps, nil, 20*time.Second)
	u := nsUser(t, reps)
	// A gateway (in the hub) following the leader first.
	urls := []string{leader.url("")}
	for _, r := range reps {
		if r != leader {
			urls = append(urls, r.url(""))
		}
	}
	gw := startNSGateway(t, bin, cl, strings.Join(urls, ","))
	gwTokenID, gwToken := nsCreate(t, leader, u)
	if ok, body := accepts(gw, gwToken); !ok {
		t.Fatalf("the gateway refuses a live token: %s", body)
	}

	var others []*nsReplica
	for _, r := range reps {
		if r != leader {
			others = append(others, r)
		}
	}
	// Cut the leader off: blackhole routes both ways.
	for _, o := range others {
		run(t, "ip", "netns", "exec", leader.ns, "ip", "route", "add", "blackhole", strings.TrimSuffix(o.ip, ".2")+".0/24")
		run(t, "ip", "netns", "exec", o.ns, "ip", "route", "add", "blackhole", strings.TrimSuffix(leader.ip, ".2")+".0/24")
	}
	cut := time.Now()
	// Writes to the old leader: none may be acknowledged.
	var (
		minorityMu    sync.Mutex
		minorityTried []string
		acked         atomic.Int32
	)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3 {
				id, _ := nsCreate(t, others[0], u)
				status, body := nsDo(leader, "DELETE", "/v1/auth/tokens/"+id, u, nil)
				if status == http.StatusOK {
					acked.Add(1)
					t.Errorf("the partitioned old leader acknowledged a revocation (%d.%d, %v after the cut): %s", w, i, time.Since(cut), body)
				}
				minorityMu.Lock()
				minorityTried = append(minorityTried, id)
				minorityMu.Unlock()
			}
		}()
	}
	// The majority elects a leader and takes writes meanwhile.
	newLead := nsLeader(t, reps, leader, 10*time.Second)
	elected := time.Since(cut)
	// The gateway, which followed the old leader, learns a revocation
	// made on the majority: the cut-off replica stopped serving its feed.
	if status, body := nsDo(others[0], "DELETE", "/v1/auth/tokens/"+gwTokenID, u, nil); status != http.StatusOK {
		t.Fatalf("revoke on the majority: %d %s", status, body)
	}
	revokedAt := time.Now()
	for {
		if ok, _ := accepts(gw, gwToken); !ok {
			break
		}
		if time.Since(revokedAt) > 10*time.Second {
			t.Fatal("the gateway following the cut-off old leader did not learn a revocation made on the majority within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	gwLearned := time.Since(revokedAt)
	var majorityAcked []string
	for range 20 {
		id, _ := nsCreate(t, others[1], u)
		if status, body := nsDo(others[0], "DELETE", "/v1/auth/tokens/"+id, u, nil); status != http.StatusOK {
			t.Fatalf("the majority refused a revocation: %d %s", status, body)
		}
		majorityAcked = append(majorityAcked, id)
	}
	wg.Wait()
	// Two leaders never take writes: the old one knows it no longer leads.
	if h, err := nsHealth(leader); err == nil && h.State == "leader" {
		t.Errorf("the partitioned old leader still reports itself leader %v after the cut", time.Since(cut))
	}
	// Heal.
	for _, o := range others {
		run(t, "ip", "netns", "exec", leader.ns, "ip", "route", "del", "blackhole", strings.TrimSuffix(o.ip, ".2")+".0/24")
		run(t, "ip", "netns", "exec", o.ns, "ip", "route", "del", "blackhole", strings.TrimSuffix(leader.ip, ".2")+".0/24")
	}
	nsLeader(t, reps, nil, 20*time.Second)
	// Every replica converges on the same log: the majority's
	// revocations in, the minority's attempts out.
	deadline := time.Now().Add(20 * time.Second)
	var logs []map[uint64]logEntry
	for {
		logs = logs[:0]
		for _, r := range reps {
			logs = append(logs, nsFeedLog(t, r, cl.key))
		}
		if len(logs[0]) == len(logs[1]) && len(logs[1]) == len(logs[2]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs did not converge: %d %d %d entries", len(logs[0]), len(logs[1]), len(logs[2]))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := 1; i < 3; i++ {
		for s, e := range logs[0] {
			if logs[i][s] != e {
				t.Fatalf("%s entry %d = %+v, %s has %+v", reps[i].id, s, logs[i][s], reps[0].id, e)
			}
		}
	}
	revoked := map[string]bool{}
	for _, e := range logs[0] {
		revoked[e.Token.String()] = true
	}
	for _, id := range majorityAcked {
		if !revoked[id] {
			t.Errorf("revocation %s acknowledged by the majority is missing after the heal", id)
		}
	}
	for _, id := range minorityTried {
		if revoked[id] {
			t.Errorf("revocation %s sent only to the partitioned old leader is in the log after the heal", id)
		}
	}
	t.Logf("old leader %s cut off; %s elected after %v; gateway learned a majority revocation after %v; %d writes to the old leader, %d acknowledged; %d majority revocations kept",
		leader.id, newLead.id, elected.Round(time.Millisecond), gwLearned.Round(time.Millisecond), len(minorityTried), acked.Load(), len(majorityAcked))
}

// newSeed makes the cluster key and keyring the replicas share.
func newSeed(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{seed: t.TempDir()}
	writeSeed(t, c)
	return c
}

func (r *nsReplica) start(t *testing.T, bin, peers string) {
	t.Helper()
	args := []string{"netns", "exec", r.ns, bin, "--data-dir", r.dir, "--raft-id", r.id, "--raft-listen", r.ip + ":7000",
		"--raft-peers", peers, "--http-listen", r.ip + ":8080", "--pg-listen", "", "--mysql-listen", "", "--redis-listen", "",
		"--mongo-listen", "", "--plaintext-allow", "10.99.0.0/16", "--log-level", "warn"}
	logs := &testdaemon.SyncBuffer{} // shown when the test fails
	r.cmd = exec.Command("ip", args...)
	r.cmd.Stdout, r.cmd.Stderr = logs, logs
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log:\n%s", r.id, logs.String())
		}
	})
}

func (r *nsReplica) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(syscall.SIGKILL)
		_ = r.cmd.Wait()
	}
}

func nsHealth(r *nsReplica) (raftHealth, error) {
	return health(&replica{d: &testdaemon.Daemon{HTTP: r.ip + ":8080"}})
}

// nsLeader waits for a leader other than not that a majority agrees on.
func nsLeader(t *testing.T, reps []*nsReplica, not *nsReplica, within time.Duration) *nsReplica {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		votes := map[string]int{}
		for _, r := range reps {
			if h, err := nsHealth(r); err == nil && h.Leader != "" {
				votes[h.Leader]++
			}
		}
		for _, r := range reps {
			if r != not && votes[r.id] >= 2 {
				if h, err := nsHealth(r); err == nil && h.State == "leader" {
					return r
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader (other than %v) within %s: %v", not, within, votes)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func nsDo(r *nsReplica, method, path, bearer string, body any) (int, []byte) {
	return do(&replica{d: &testdaemon.Daemon{HTTP: r.ip + ":8080"}}, method, path, bearer, body)
}

// nsUser signs up and logs in (retrying while the cluster elects).
func nsUser(t *testing.T, reps []*nsReplica) string {
	t.Helper()
	body := map[string]string{"email": "part@example.com", "password": "correct horse battery staple"}
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, out := nsDo(reps[0], "POST", "/v1/auth/signup", "", body)
		if status == http.StatusCreated || status == http.StatusConflict {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("signup: %d %s", status, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	status, out := nsDo(reps[1], "POST", "/v1/auth/login", "", body)
	if status != http.StatusOK {
		t.Fatalf("login: %d %s", status, out)
	}
	var v struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	return v.Token
}

// nsCreate creates a token on r (retrying on a refusal).
func nsCreate(t *testing.T, r *nsReplica, bearer string) (id, token string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, out := nsDo(r, "POST", "/v1/auth/tokens", bearer, map[string]any{"name": "p"})
		if status == http.StatusCreated {
			var v struct {
				Token string `json:"token"`
				ID    string `json:"id"`
			}
			if err := json.Unmarshal(out, &v); err != nil {
				t.Error(err)
			}
			return v.ID, v.Token
		}
		if time.Now().After(deadline) {
			t.Errorf("create token on %s: %d %s", r.id, status, out)
			return "", ""
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func nsFeedLog(t *testing.T, r *nsReplica, key string) map[uint64]logEntry {
	t.Helper()
	c := &cluster{key: key}
	m, _ := c.feedLog(t, &replica{id: r.id, d: &testdaemon.Daemon{HTTP: r.ip + ":8080"}})
	return m
}

// startNSGateway starts a gateway node in the hub namespace following
// urls, and waits until it is healthy.
func startNSGateway(t *testing.T, bin string, cl *cluster, urls string) *testdaemon.Daemon {
	t.Helper()
	addr := testdaemon.FreeAddr(t, "127.0.0.1")
	dir := t.TempDir()
	cmd := exec.Command(bin, "--role", "gateway", "--data-dir", dir, "--issuer-url", urls, "--cluster-key-file", cl.keyFile,
		"--http-listen", addr, "--pg-listen", "", "--mysql-listen", "", "--redis-listen", "", "--mongo-listen", "", "--log-level", "warn")
	logs := &testdaemon.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	g := &testdaemon.Daemon{HTTP: addr}
	deadline := time.Now().Add(20 * time.Second)
	for gatewayHealth(g).Status != "ok" {
		if time.Now().After(deadline) {
			t.Fatalf("gateway not healthy:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return g
}
