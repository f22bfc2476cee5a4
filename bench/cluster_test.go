package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/heliosdb/auth/internal/testdaemon"
)

// startNode starts a gateway node process (--role gateway) following the
// issuer at issURL and returns its HTTP address; it is stopped at the end
// of the run.
func startNode(tb testing.TB, issURL, clusterKey string) string {
	tb.Helper()
	n := testdaemon.Start(tb, testdaemon.Shared(), testdaemon.WithArgs(append([]string{"--role", "gateway",
		"--issuer-url", issURL, "--cluster-key-file", clusterKey}, benchFlags...)...))
	atStop(func() { n.Stop(); os.RemoveAll(n.DataDir) })
	return n.HTTP
}

// propagationRevocations is how many revocations BenchmarkClusterPropagation
// times (at least 1000 for the report).
const propagationRevocations = 1000

// BenchmarkClusterPropagation: one issuer and five gateway node processes on
// loopback. For each of 1000 revocations it takes the time from the DELETE
// /v1/auth/tokens/:id response (200) to the first refusal of that token by
// each node's REST API (POST /api/v1/sql polled in a tight loop by one
// goroutine per node, over kept-alive connections), and reports p50, p99
// and max over the 5000 samples. Everything shares the machine's cores, so
// the figures include the pollers' own scheduling delay.
func BenchmarkClusterPropagation(b *testing.B) {
	iss := startDaemon(b, "--login-per-ip", "0", "--login-per-email", "0")
	issURL := "http://" + iss.HTTP
	var nodes []string
	for range 5 {
		nodes = append(nodes, "http://"+startNode(b, issURL, filepath.Join(iss.DataDir, "cluster.key")))
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 10 * time.Second}
	do := func(method, url, bearer string, body any) (int, []byte) {
		var rd io.Reader
		if body != nil {
			js, _ := json.Marshal(body)
			rd = bytes.NewReader(js)
		}
		req, _ := http.NewRequest(method, url, rd)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}
	for _, n := range nodes {
		deadline := time.Now().Add(20 * time.Second)
		for {
			if status, _ := do("GET", n+"/healthz", "", nil); status == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("node %s not ready", n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	creds := map[string]string{"email": "bench@example.com", "password": "correct-horse-battery"}
	do("POST", issURL+"/v1/auth/signup", "", creds)
	var login struct{ Token string }
	_, body := do("POST", issURL+"/v1/auth/login", "", creds)
	_ = json.Unmarshal(body, &login)
	type tok struct{ token, id string }
	toks := make([]tok, propagationRevocations)
	for i := range toks {
		status, body := do("POST", issURL+"/v1/auth/tokens", login.Token, map[string]any{"name": "p", "scopes": []string{"database:read"}})
		if status != http.StatusCreated {
			b.Fatalf("create token: %d %s", status, body)
		}
		var r struct{ Token, ID string }
		_ = json.Unmarshal(body, &r)
		toks[i] = tok{r.Token, r.ID}
	}
	sql := []byte(`{"query":"SELECT 1"}`)
	refused := func(node, token string) bool {
		req, _ := http.NewRequest("POST", node+"/api/v1/sql", bytes.NewReader(sql))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			b.Error(err)
			return true
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusUnauthorized
	}
	// Every node must accept the tokens first.
	for _, n := range nodes {
		if refused(n, toks[len(toks)-1].token) {
			b.Fatalf("node %s refuses a live token", n)
		}
	}
	b.ResetTimer()
	samples := make([]time.Duration, 0, len(toks)*len(nodes))
	var mu sync.Mutex
	for _, tk := range toks {
		if status, body := do("DELETE", issURL+"/v1/auth/tokens/"+tk.id, login.Token, nil); status != http.StatusOK {
			b.Fatalf("revoke: %d %s", status, body)
		}
		acked := time.Now()
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !refused(n, tk.token) {
					if time.Since(acked) > 5*time.Second {
						b.Errorf("node %s never refused %s", n, tk.id)
						return
					}
				}
				d := time.Since(acked)
				mu.Lock()
				samples = append(samples, d)
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	b.StopTimer()
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	pct := func(p float64) time.Duration { return samples[min(len(samples)-1, int(p*float64(len(samples))))] }
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(pct(0.50)), "p50-ms")
	b.ReportMetric(ms(pct(0.99)), "p99-ms")
	b.ReportMetric(ms(samples[len(samples)-1]), "max-ms")
	b.Logf("%s", fmt.Sprintf("propagation over %d revocations × %d nodes: p50 %s p99 %s max %s",
		len(toks), len(nodes), pct(0.5), pct(0.99), samples[len(samples)-1]))
}
