package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/issuer"
)

// seedRevocations writes n revoked token records into a stopped issuer's
// store through the issuer's own command path (issuer.OpenWith + Submit: the
// test-only bulk path; HTTP would spend minutes on 2n requests) and returns
// the account and the revoked ids.
func seedRevocations(t *testing.T, dataDir string, n int) (uint64, []core.TokenID) {
	t.Helper()
	store, err := issuer.OpenWith(filepath.Join(dataDir, "issuer"), issuer.StoreOptions{Reserve: issuer.DefaultReserve})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	res, err := store.Submit(&issuer.Command{Op: issuer.OpSignup, Email: "bulk@example.com", Hash: "not-a-login", At: time.Now().Unix()})
	if err != nil {
		t.Fatal(err)
	}
	account := res.Account.ID
	ids := make([]core.TokenID, n)
	var wg sync.WaitGroup
	var failed atomic.Value
	const workers = 128
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			now := time.Now().Unix()
			for i := w; i < n; i += workers {
				id := core.NewTokenID()
				rec := &issuer.TokenRecord{ID: id, Account: account, Name: "bulk", Type: core.TypeLive, Scopes: core.AllScopes,
					Created: now, ExpiresAt: now + 86400}
				if _, err := store.Submit(&issuer.Command{Op: issuer.OpCreateToken, At: now, Token: rec}); err != nil {
					failed.Store(err)
					return
				}
				if _, err := store.Submit(&issuer.Command{Op: issuer.OpRevokeToken, At: now, Account: account, TokenID: id}); err != nil {
					failed.Store(err)
					return
				}
				ids[i] = id
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	return account, ids
}

// TestClusterSnapshot100k: a node started after 100k revocations loads them
// from the issuer's snapshot and refuses them.
func TestClusterSnapshot100k(t *testing.T) {
	iss := startDaemon(t)
	iss.Stop()
	start := time.Now()
	account, ids := seedRevocations(t, iss.DataDir, 100_000)
	t.Logf("seeded %d revocations in %s", len(ids), time.Since(start).Round(time.Millisecond))
	iss.StartAgain(t)
	joined := time.Now()
	node := startNode(t, iss)
	t.Logf("node ready %s after its start (process start and listeners included)", time.Since(joined).Round(time.Millisecond))
	if h := health(t, node); h.AppliedSeq != h.IssuerSeq || h.AppliedSeq < 200_000 {
		t.Fatalf("node after the snapshot: %+v", h)
	}
	for _, i := range []int{0, 1, 4242, 50_000, 99_999} {
		tok := iss.Mint(t, core.Claims{ID: ids[i], Account: account, Scopes: core.AllScopes})
		if ok, why := restAccepts(t, node, tok); ok || !strings.Contains(why, "revoked") {
			t.Fatalf("revocation %d not in the node's set: %v %s", i, ok, why)
		}
	}
	if ok, why := restAccepts(t, node, iss.NewUser(t)); !ok {
		t.Fatalf("fresh token refused: %s", why)
	}
}

// TestClusterIssuerKill9MidBurst: the issuer killed with SIGKILL during a
// burst of revocations loses none it acknowledged, and every node converges
// on them after it restarts.
func TestClusterIssuerKill9MidBurst(t *testing.T) {
	iss := startDaemon(t, withArgs("--login-per-ip", "0", "--login-per-email", "0"))
	nodes := []*daemon{startNode(t, iss), startNode(t, iss)}
	bearer := iss.NewUser(t)
	client := &http.Client{Timeout: 5 * time.Second}
	call := func(method, path string, body any) (int, []byte, error) {
		var b []byte
		if body != nil {
			b, _ = json.Marshal(body)
		}
		req, _ := http.NewRequest(method, iss.URL(path), bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		var out bytes.Buffer
		_, _ = out.ReadFrom(resp.Body)
		return resp.StatusCode, out.Bytes(), nil
	}
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
		stop  atomic.Bool
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				status, body, err := call("POST", "/v1/auth/tokens", map[string]any{"name": "burst", "scopes": []string{"database:read"}})
				if err != nil || status != http.StatusCreated {
					return
				}
				var r struct{ Token, ID string }
				_ = json.Unmarshal(body, &r)
				status, _, err = call("DELETE", "/v1/auth/tokens/"+r.ID, nil)
				if err != nil || status != http.StatusOK {
					return
				}
				mu.Lock()
				acked = append(acked, r.Token)
				mu.Unlock()
			}
		}()
	}
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	iss.Kill()
	stop.Store(true)
	wg.Wait()
	t.Logf("%d revocations acknowledged before kill -9", len(acked))
	iss.StartAgain(t)
	for _, n := range nodes {
		deadline := time.Now().Add(10 * time.Second)
		for {
			h := health(t, n)
			if h.Status == "ok" && h.AppliedSeq == h.IssuerSeq && h.IssuerSeq > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s did not converge: %+v", n.HTTP, h)
			}
			time.Sleep(20 * time.Millisecond)
		}
		for _, tok := range acked {
			if ok, why := restAccepts(t, n, tok); ok || !strings.Contains(why, "revoked") {
				t.Fatalf("node %s: acknowledged revocation lost: %v %s", n.HTTP, ok, why)
			}
		}
	}
}
