package load

import (
	"testing"
	"time"
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
