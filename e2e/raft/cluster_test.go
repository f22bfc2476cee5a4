package raft

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/internal/testdaemon"
)

// TestWritesOnAnyReplica: three replicas and a gateway following all of
// them. An account made on one replica logs in on another at once (the
// login reads after a read index); a token created on a third is listed
// at once on the first; revoked on a follower, it is refused by that
// follower at once (read your writes), by every replica and by the gateway
// within moments; every replica reports its raft state on /healthz and
// they agree on one leader; the replicas' revocation logs are identical.
func TestWritesOnAnyReplica(t *testing.T) {
	c := newCluster(t, 3)
	g := c.gateway(t)
	leader := c.leader(t, 5*time.Second)
	followers := c.followers(leader)
	r1, r2, r3 := followers[0], leader, followers[1]
	u := newUser(t, r1, r3, "ann@example.com")

	var created struct {
		Token string `json:"token"`
		ID    string `json:"id"`
	}
	r2.d.MustJSON(t, http.StatusCreated, "POST", "/v1/auth/tokens", u.bearer, map[string]any{"name": "ci", "scopes": []string{"*"}}, &created)
	var list struct {
		Tokens []struct {
			ID string `json:"id"`
		} `json:"tokens"`
	}
	r1.d.MustJSON(t, http.StatusOK, "GET", "/v1/auth/tokens", u.bearer, nil, &list)
	found := false
	for _, tk := range list.Tokens {
		found = found || tk.ID == created.ID
	}
	if !found {
		t.Fatalf("a token created on %s is not listed on %s right after: %+v", r2.id, r1.id, list)
	}
	for _, d := range []*replica{r1, r2, r3} {
		if ok, body := accepts(d.d, created.Token); !ok {
			t.Fatalf("%s refuses a live token: %s", d.id, body)
		}
	}
	if ok, body := accepts(g, created.Token); !ok {
		t.Fatalf("the gateway refuses a live token: %s", body)
	}

	// Revoked through a follower: that follower refuses it at once.
	if status, body := do(r3, "DELETE", "/v1/auth/tokens/"+created.ID, u.bearer, nil); status != http.StatusOK {
		t.Fatalf("revoke on %s: %d %s", r3.id, status, body)
	}
	if ok, _ := accepts(r3.d, created.Token); ok {
		t.Fatalf("%s acknowledged the revocation and still accepts the token", r3.id)
	}
	deadline := time.Now().Add(3 * time.Second)
	for _, d := range []*replica{r1, r2} {
		for {
			ok, _ := accepts(d.d, created.Token)
			if !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still accepts a token revoked on %s", d.id, r3.id)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for {
		if ok, _ := accepts(g, created.Token); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the gateway still accepts the revoked token")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Revoking it again anywhere: already revoked.
	if status, body := do(r1, "DELETE", "/v1/auth/tokens/"+created.ID, u.bearer, nil); status != http.StatusNotFound || !strings.Contains(string(body), "already revoked") {
		t.Fatalf("revoking twice: %d %s", status, body)
	}

	// /healthz: one leader, everyone agrees, applied indexes move.
	leaders := 0
	for _, r := range c.reps {
		h, err := health(r)
		if err != nil {
			t.Fatal(err)
		}
		if h.State == "leader" {
			leaders++
		}
		if h.Leader != leader.id || h.Applied == 0 || h.ID != r.id || h.Voters != 3 {
			t.Fatalf("%s /healthz raft: %+v (leader %s)", r.id, h, leader.id)
		}
	}
	if leaders != 1 {
		t.Fatalf("%d replicas report themselves leader", leaders)
	}
	resp, err := client.Get(r1.d.URL("/healthz"))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	_ = json.NewDecoder(resp.Body).Decode(&raw)
	resp.Body.Close()
	if _, ok := raw["raft"]; !ok {
		t.Fatalf("/healthz has no raft object: %v", raw)
	}

	// The same log everywhere.
	c.sameLogs(t, 10*time.Second)
}

// TestGatewayFailsOver: a gateway following the three replicas (the
// first listed first) keeps learning revocations when that first replica
// is gone for good: it moves on to another, and its sequence number never
// goes backwards.
func TestGatewayFailsOver(t *testing.T) {
	c := newCluster(t, 3)
	g := c.gateway(t)
	watch := watchSeq(g)
	first := c.reps[0]
	first.d.Kill()
	first.up.Store(false)
	rest := c.live()
	c.leader(t, 20*time.Second)
	u := newUser(t, rest[0], rest[1], "gw@example.com")
	var created struct {
		Token string `json:"token"`
		ID    string `json:"id"`
	}
	rest[1].d.MustJSON(t, http.StatusCreated, "POST", "/v1/auth/tokens", u.bearer, map[string]any{"name": "gw"}, &created)
	if ok, body := accepts(g, created.Token); !ok {
		t.Fatalf("the gateway refuses a live token: %s", body)
	}
	if status, body := do(rest[0], "DELETE", "/v1/auth/tokens/"+created.ID, u.bearer, nil); status != http.StatusOK {
		t.Fatalf("revoke: %d %s", status, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, _ := accepts(g, created.Token)
		if h := gatewayHealth(g); !ok && h.Status == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not learn a revocation with the first replica down: %+v", gatewayHealth(g))
		}
		time.Sleep(20 * time.Millisecond)
	}
	watch.finish(t)
}

// TestKeyringMismatchRefused: a replica started with another keyring
// (it would mint tokens the others cannot verify) is refused by the
// others' mutual TLS; the two that agree form the cluster and serve.
func TestKeyringMismatchRefused(t *testing.T) {
	c := &cluster{seed: t.TempDir()}
	writeSeed(t, c)
	var peers []string
	for i := range 3 {
		r := &replica{id: fmt.Sprintf("r%d", i+1), raftAddr: testdaemon.FreeAddr(t, "127.0.0.1")}
		c.reps = append(c.reps, r)
		peers = append(peers, r.id+"="+r.raftAddr)
	}
	c.peers = strings.Join(peers, ",")
	c.start(t, c.reps[0], c.peers)
	c.start(t, c.reps[1], c.peers)
	// The third: same cluster key, its own keyring.
	odd := c.reps[2]
	dir := c.seedDir(t)
	if err := os.Remove(filepath.Join(dir, "keyring.json")); err != nil {
		t.Fatal(err)
	}
	odd.d = testdaemon.Start(t, testdaemon.WithDataDir(dir), testdaemon.WithArgs("--raft-id", odd.id, "--raft-listen", odd.raftAddr,
		"--raft-peers", c.peers, "--log-level", "warn"))
	odd.up.Store(true)
	lead := c.leader(t, 20*time.Second)
	if lead == odd {
		t.Fatal("the replica with another keyring leads")
	}
	u := newUser(t, c.reps[0], c.reps[1], "k@example.com")
	if u.bearer == "" {
		t.Fatal("no login token")
	}
	time.Sleep(time.Second)
	if h, err := health(odd); err != nil || h.Leader != "" || h.Applied > 1 {
		t.Fatalf("the replica with another keyring joined: %+v %v", h, err)
	}
	if !strings.Contains(odd.d.Logs()+c.reps[0].d.Logs(), "not a replica of this cluster") {
		t.Error("no log line says why the replica was refused")
	}
}
