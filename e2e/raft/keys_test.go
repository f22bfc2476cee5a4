package raft

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/keyfile"
)

// cluster posts to a replica's cluster endpoint path with the cluster key.
func (c *cluster) cluster(t *testing.T, r *replica, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", r.d.URL(path), strings.NewReader(body))
	req.Header.Set("Authorization", "HeliosCluster "+c.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s on %s: %v", path, r.id, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b)
}

// waitSnapshots waits (up to 60s) until every replica has taken a raft
// snapshot, so its log is compacted (raft checks every 10–20s, at random).
func (c *cluster) waitSnapshots(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, r := range c.reps {
		for {
			done := false
			es, _ := os.ReadDir(filepath.Join(r.d.DataDir, "raft", "snapshots"))
			for _, e := range es {
				done = done || !strings.HasSuffix(e.Name(), ".tmp")
			}
			if done {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s took no raft snapshot", r.id)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// ringFile checks r's keyring file: mode 0600, signing key signing, and
// each key in retired marked retired.
func ringFile(t *testing.T, r *replica, signing uint16, retired ...uint16) {
	t.Helper()
	path := filepath.Join(r.d.DataDir, "keyring.json")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: keyring file mode %v, want 0600", r.id, fi.Mode().Perm())
	}
	ring, err := keyfile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if ring.Signing().ID != signing {
		t.Fatalf("%s: keyring file signs with key %d, want %d", r.id, ring.Signing().ID, signing)
	}
	for _, id := range retired {
		if k := ring.Lookup(id); k == nil || !k.Retired {
			t.Fatalf("%s: keyring file does not hold key %d retired: %+v", r.id, id, k)
		}
	}
}

// tokenOn creates a token on r for u and checks the key that signed it.
func tokenOn(t *testing.T, r *replica, u user, key uint16) string {
	t.Helper()
	var created struct {
		Token string `json:"token"`
	}
	r.d.MustJSON(t, http.StatusCreated, "POST", "/v1/auth/tokens", u.bearer, map[string]any{"name": "k", "scopes": []string{"*"}}, &created)
	dec, err := core.DecodeUnverified(created.Token)
	if err != nil {
		t.Fatal(err)
	}
	if dec.Claims.KeyID != key {
		t.Fatalf("a token created on %s is signed by key %d, want %d", r.id, dec.Claims.KeyID, key)
	}
	return created.Token
}

// eventually waits (up to 10s) until check reports want.
func eventually(t *testing.T, name string, check func() (bool, string), want bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, body := check()
		if ok == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: accepts=%v, want %v: %s", name, ok, want, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKeyRotationReplicated: a signing key rotated on a follower is the
// signing key of every replica (their keyring files, 0600, and the tokens
// each creates); those tokens verify on every replica and on a gateway.
// The old key retired on another replica: its tokens are refused
// everywhere. A replica SIGKILLed and restarted keeps the new keyring;
// a replica wiped and replaced (started from the cluster's original
// keyring file) gets it from the leader's snapshot, joins although its
// file was older, and mints with the new key.
func TestKeyRotationReplicated(t *testing.T) {
	snap := []string{"--raft-snapshot-threshold", "64", "--raft-trailing-logs", "16"}
	c := newCluster(t, 3, snap...)
	g := c.gateway(t)
	lead := c.leader(t, 10*time.Second)
	fol := c.followers(lead)
	u := newUser(t, fol[0], fol[1], "keys@example.com")
	old := tokenOn(t, lead, u, 1)

	status, body := c.cluster(t, fol[0], "/v1/cluster/keys/rotate", "")
	if status != http.StatusOK || !strings.Contains(body, `"signing_key":2`) {
		t.Fatalf("rotate on follower %s: %d %s", fol[0].id, status, body)
	}
	fresh := map[string]string{}
	for _, r := range c.reps {
		// The rotating follower answers once it has applied the rotation;
		// the others within moments.
		deadline := time.Now().Add(10 * time.Second)
		for {
			ring, err := keyfile.Load(filepath.Join(r.d.DataDir, "keyring.json"))
			if err == nil && ring.Signing().ID == 2 {
				break
			}
			if r == fol[0] || time.Now().After(deadline) {
				t.Fatalf("%s: keyring file not rotated (%v)", r.id, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		ringFile(t, r, 2)
		fresh[r.id] = tokenOn(t, r, u, 2)
	}
	for id, tok := range fresh {
		for _, r := range c.reps {
			eventually(t, r.id+" verifies a key-2 token made on "+id, func() (bool, string) { return accepts(r.d, tok) }, true)
		}
		eventually(t, "the gateway verifies a key-2 token made on "+id, func() (bool, string) { return accepts(g, tok) }, true)
	}
	for _, r := range c.reps {
		if ok, body := accepts(r.d, old); !ok {
			t.Fatalf("%s refuses a key-1 token before key 1 is retired: %s", r.id, body)
		}
	}

	// Retire key 1 on the other follower.
	status, body = c.cluster(t, fol[1], "/v1/cluster/keys/retire", `{"id":1}`)
	if status != http.StatusOK {
		t.Fatalf("retire on %s: %d %s", fol[1].id, status, body)
	}
	if status, body := c.cluster(t, fol[0], "/v1/cluster/keys/retire", `{"id":2}`); status != http.StatusConflict {
		t.Fatalf("retiring the signing key: %d %s, want 409", status, body)
	}
	for _, r := range c.reps {
		eventually(t, r.id+" refuses a key-1 token", func() (bool, string) { return accepts(r.d, old) }, false)
		ringFile(t, r, 2, 1)
	}
	eventually(t, "the gateway refuses a key-1 token", func() (bool, string) { return accepts(g, old) }, false)
	if ok, _ := accepts(g, u.bearer); ok {
		t.Fatal("the gateway accepts a login token of the retired key")
	}
	u = newUser(t, fol[0], fol[1], u.email) // its login token was signed by key 1: log in again
	if dec, _ := core.DecodeUnverified(u.bearer); dec.Claims.KeyID != 2 {
		t.Fatalf("a login after the rotation is signed by key %d", dec.Claims.KeyID)
	}

	// SIGKILL a replica and restart it: the new keyring is its own.
	victim := fol[1]
	victim.d.Kill()
	victim.up.Store(false)
	victim.d.StartAgain(t)
	victim.up.Store(true)
	c.leader(t, 20*time.Second)
	ringFile(t, victim, 2, 1)
	tok := tokenOn(t, victim, u, 2)
	for _, r := range c.reps {
		eventually(t, r.id+" verifies a token made on the restarted replica", func() (bool, string) { return accepts(r.d, tok) }, true)
	}
	if ok, _ := accepts(victim.d, old); ok {
		t.Fatalf("the restarted %s accepts a token of the retired key", victim.id)
	}

	// Replace a replica from a snapshot: more commands than the snapshot
	// threshold, then wipe it; it starts from the original keyring file.
	for i := range 150 {
		if status, body := do(lead, "POST", "/v1/auth/tokens", u.bearer, map[string]any{"name": fmt.Sprint("s", i), "scopes": []string{"*"}}); status != http.StatusCreated {
			t.Fatalf("create token %d: %d %s", i, status, body)
		}
	}
	c.waitSnapshots(t) // a replica added now must install a snapshot
	lead = c.leader(t, 20*time.Second)
	victim = c.followers(lead)[0]
	victim.d.Kill()
	victim.up.Store(false)
	url := "http://" + lead.d.HTTP
	c.raft(t, url, "remove", victim.id)
	c.start(t, victim, "", append(snap, "--log-level", "info")...)
	ringFile(t, victim, 1) // the seed keyring: key 1 only
	c.raft(t, url, "add", victim.id, victim.raftAddr)
	if !strings.Contains(victim.d.Logs(), "issuer state restored from a raft snapshot") {
		t.Fatalf("the replaced replica caught up without a snapshot:\n%s", victim.d.Logs())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ring, err := keyfile.Load(filepath.Join(victim.d.DataDir, "keyring.json"))
		if err == nil && ring.Signing().ID == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replaced %s did not get the keyring from the snapshot (%v)", victim.id, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ringFile(t, victim, 2, 1)
	tok = tokenOn(t, victim, u, 2)
	for _, r := range c.reps {
		eventually(t, r.id+" verifies a token made on the replaced replica", func() (bool, string) { return accepts(r.d, tok) }, true)
	}
	eventually(t, "the gateway verifies a token made on the replaced replica", func() (bool, string) { return accepts(g, tok) }, true)
	if ok, _ := accepts(victim.d, old); ok {
		t.Fatalf("the replaced %s accepts a token of the retired key", victim.id)
	}
	var list struct {
		Tokens []json.RawMessage `json:"tokens"`
	}
	victim.d.MustJSON(t, http.StatusOK, "GET", "/v1/auth/tokens", u.bearer, nil, &list)
	if len(list.Tokens) < 150 {
		t.Fatalf("the replaced replica lists %d tokens, want ≥ 150", len(list.Tokens))
	}
}
