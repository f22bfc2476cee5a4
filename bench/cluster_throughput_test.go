package bench

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkClusterRevokeHTTP: revocations per second through the issuer's
// REST API (DELETE /v1/auth/tokens/:id, 32 concurrent clients, each answer
// after its synced group commit) while two gateway node processes follow
// the feed, and how long after the last answer the nodes had applied
// everything (their /healthz applied_seq reaching the issuer's watermark).
func BenchmarkClusterRevokeHTTP(b *testing.B) {
	const n, workers = 5000, 32
	iss := startDaemon(b, "--login-per-ip", "0", "--login-per-email", "0")
	issURL := "http://" + iss.HTTP
	nodes := []string{
		"http://" + startNode(b, issURL, filepath.Join(iss.DataDir, "cluster.key")),
		"http://" + startNode(b, issURL, filepath.Join(iss.DataDir, "cluster.key")),
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 30 * time.Second}
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
			b.Error(err)
			return 0, nil
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}
	creds := map[string]string{"email": "bench@example.com", "password": "correct-horse-battery"}
	do("POST", issURL+"/v1/auth/signup", "", creds)
	var login struct{ Token string }
	_, body := do("POST", issURL+"/v1/auth/login", "", creds)
	_ = json.Unmarshal(body, &login)
	ids := make([]string, n)
	parallel := func(op func(i int)) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
					op(i)
				}
			}()
		}
		wg.Wait()
	}
	parallel(func(i int) {
		status, body := do("POST", issURL+"/v1/auth/tokens", login.Token, map[string]any{"name": "t", "scopes": []string{"database:read"}})
		if status != http.StatusCreated {
			b.Errorf("create: %d %s", status, body)
			return
		}
		var r struct{ ID string }
		_ = json.Unmarshal(body, &r)
		ids[i] = r.ID
	})
	b.ResetTimer()
	start := time.Now()
	parallel(func(i int) {
		if status, body := do("DELETE", issURL+"/v1/auth/tokens/"+ids[i], login.Token, nil); status != http.StatusOK {
			b.Errorf("revoke: %d %s", status, body)
		}
	})
	elapsed := time.Since(start)
	// The issuer's committed watermark, from its metrics.
	_, metrics := do("GET", issURL+"/metrics", "", nil)
	var watermark uint64
	for _, line := range strings.Split(string(metrics), "\n") {
		if v, ok := strings.CutPrefix(line, "helios_issuer_last_seq "); ok {
			watermark, _ = strconv.ParseUint(v, 10, 64)
		}
	}
	if watermark == 0 {
		b.Fatal("no helios_issuer_last_seq in the issuer's metrics")
	}
	for _, node := range nodes {
		for {
			var h struct {
				Applied uint64 `json:"applied_seq"`
			}
			_, body := do("GET", node+"/healthz", "", nil)
			_ = json.Unmarshal(body, &h)
			if h.Applied >= watermark {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "revocations/s")
	b.ReportMetric(float64(time.Since(start)-elapsed)/1e6, "nodes-caught-up-ms")
}
