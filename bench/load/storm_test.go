package load

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/internal/testdaemon"
)

// TestRevokeStorm revokes every session's token while the sessions run, on
// each protocol: every node refuses each revoked token and ends each of
// its sessions, well within the 10 s the run waits.
func TestRevokeStorm(t *testing.T) {
	d := gateway(t)
	cfg := config(t, d, RevokeStorm, AllProtocols...)
	cfg.Clients, cfg.Rate = 4, 20
	res := run(t, cfg)
	if len(res.Cells) != len(AllProtocols) {
		t.Fatalf("%d cells", len(res.Cells))
	}
	for _, c := range res.Cells {
		s := c.Storm
		if c.Error != "" || s == nil || len(s.Nodes) != 1 {
			t.Fatalf("%s: %+v", c.String(), c)
		}
		if s.Failed != 0 || len(s.Errors) != 0 || s.Checks != 8 {
			t.Errorf("%s: %d of %d checks failed: %+v", c.String(), s.Failed, s.Checks, s.Errors)
		}
		n := s.Nodes[0]
		for what, p := range map[string]Percentiles{"refusal": n.Refusal, "session end": n.SessionEnd} {
			if p.Count != 4 || p.Max <= 0 || p.Max > float64(stormTimeout/time.Millisecond) || p.P50 > p.Max {
				t.Errorf("%s %s: %+v", c.String(), what, p)
			}
		}
		if len(n.RefusedBy) == 0 || len(n.EndedBy) == 0 {
			t.Errorf("%s: no reasons: %+v", c.String(), n)
		}
		t.Logf("%s: refused by %v; ended by %v", c.String(), n.RefusedBy, n.EndedBy)
	}
	checkStormReport(t, res)
}

func checkStormReport(t *testing.T, res *Result) {
	t.Helper()
	dir := t.TempDir()
	if _, err := WriteReport(dir, res); err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Cells {
		for _, ext := range []string{".png", ".svg"} {
			if b, err := readFile(dir, string(c.Protocol)+"-revoke-storm-latency"+ext); err != nil || len(b) < 1000 {
				t.Errorf("%s plot %s: %d bytes %v", c.String(), ext, len(b), err)
			}
		}
	}
}

// TestRevokeStormEveryNode: with a gateway node following the issuer, the
// storm watches both: every revoked token is refused, and every session of
// it ended, on each node, and each node has its own figures.
func TestRevokeStormEveryNode(t *testing.T) {
	iss := gateway(t)
	node := gateway(t, "--role", "gateway", "--issuer-url", "http://"+iss.HTTP, "--cluster-key-file", filepath.Join(iss.DataDir, "cluster.key"))
	waitReady(t, node)
	cfg := config(t, iss, RevokeStorm, PG, Redis)
	cfg.Clients, cfg.Rate = 3, 20
	cfg.Nodes = []Target{targetOf(iss), targetOf(node)}
	res := run(t, cfg)
	for _, c := range res.Cells {
		s := c.Storm
		if c.Error != "" || s == nil || len(s.Nodes) != 2 || s.Nodes[1].Node != targetOf(node)[c.Protocol] {
			t.Fatalf("%s: %+v", c.String(), c)
		}
		if s.Failed != 0 || s.Checks != 12 {
			t.Errorf("%s: %d of %d checks failed: %+v", c.String(), s.Failed, s.Checks, s.Errors)
		}
		for _, n := range s.Nodes {
			if n.Refusal.Count != 3 || n.SessionEnd.Count != 3 || n.NotRefused != 0 || n.NotEnded != 0 {
				t.Errorf("%s on %s: %+v", c.String(), n.Node, n)
			}
		}
	}
	checkStormReport(t, res)
}

// waitReady waits until a gateway node's /healthz says ok (it has the
// issuer's keyring and revocations).
func waitReady(t *testing.T, d *testdaemon.Daemon) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, body := d.Do(t, "GET", "/healthz", "", nil)
		if status == http.StatusOK && strings.Contains(string(body), `"status":"ok"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node not ready: %d %s", status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
