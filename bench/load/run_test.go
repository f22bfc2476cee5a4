package load

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestEveryProtocol runs the point and connect workloads for a second per
// protocol against the real daemon with real upstreams: every figure is
// there, no request fails, the histograms are sane, the clients' tokens
// were created through the API and revoked at the end, and the report and
// its plots are written.
func TestEveryProtocol(t *testing.T) {
	d := gateway(t)
	for _, w := range []Workload{Point, Connect, Mixed} {
		cfg := config(t, d, w, AllProtocols...)
		if w == Mixed {
			cfg.Protocols = []Protocol{PG, Redis}
		}
		res := run(t, cfg)
		if len(res.Cells) != len(cfg.Protocols) {
			t.Fatalf("%s: %d cells for %d protocols", w, len(res.Cells), len(cfg.Protocols))
		}
		for _, c := range res.Cells {
			if c.Error != "" || len(c.Endpoints) != 1 {
				t.Fatalf("%s: %+v", c.String(), c)
			}
			checkSane(t, c.String(), c.Endpoints[0])
			if v := c.Endpoints[0].Version; !strings.Contains(v, " ") || strings.Contains(v, "failed") {
				t.Errorf("%s: server version %q", c.String(), c.Endpoints[0].Version)
			}
		}
		if f := res.FailedPercent(); f != 0 {
			t.Errorf("%s: %.2f%% failed", w, f)
		}
		// The clients' tokens came from the API, and are revoked now.
		var list struct {
			Tokens []struct {
				Name string `json:"name"`
			} `json:"tokens"`
		}
		d.MustJSON(t, http.StatusOK, "GET", "/v1/auth/tokens", cfg.Creator, nil, &list)
		for _, tk := range list.Tokens {
			if strings.HasPrefix(tk.Name, "helios-bench-") {
				t.Errorf("%s: token %s still live after the run", w, tk.Name)
			}
		}
		if w == Point {
			checkReport(t, res)
		}
	}
}

// checkReport writes res's report and checks every file.
func checkReport(t *testing.T, res *Result) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "report")
	path, err := WriteReport(dir, res)
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Cells {
		if !bytes.Contains(md, []byte("### "+c.String())) {
			t.Errorf("report has no section %q", c.String())
		}
		for _, plot := range []string{"-throughput", "-latency"} {
			for _, ext := range []string{".png", ".svg"} {
				name := string(c.Protocol) + "-" + string(c.Workload) + plot + ext
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil || len(b) < 1000 {
					t.Errorf("plot %s: %d bytes, %v", name, len(b), err)
				}
				if ext == ".png" && !bytes.HasPrefix(b, []byte("\x89PNG")) {
					t.Errorf("%s is not a PNG", name)
				}
				if !bytes.Contains(md, []byte("("+name+")")) {
					t.Errorf("report does not show %s", name)
				}
			}
		}
	}
	var back Result
	js, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil || json.Unmarshal(js, &back) != nil || len(back.Cells) != len(res.Cells) {
		t.Errorf("result.json: %v", err)
	}
	for _, want := range []string{"| p99 ms", "CPUs", "GiB", "Load average", "## Setup", "## Reading it"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("report lacks %q", want)
		}
	}
	if bytes.Contains(md, []byte("hdb_")) || bytes.Contains(js, []byte("hdb_")) {
		t.Error("the report shows a token")
	}
}

// TestRefusingTarget: with a token the gateway refuses, every request
// fails, the run says so first and names the reason.
func TestRefusingTarget(t *testing.T) {
	d := gateway(t)
	for _, w := range []Workload{Point, Connect} {
		cfg := config(t, d, w, AllProtocols...)
		cfg.Creator = ""
		cfg.Token = "hdb_live_" + strings.Repeat("A", 40) // not a token the daemon minted
		res := run(t, cfg)
		for _, c := range res.Cells {
			e := c.Endpoints[0]
			if e.Requests == 0 || e.Failed != e.Requests || e.FailedPercent != 100 || len(e.Errors) == 0 {
				t.Errorf("%s: %d of %d failed: %+v", c.String(), e.Failed, e.Requests, e.Errors)
				continue
			}
			kind := strings.ToLower(e.Errors[0].Kind)
			if !strings.Contains(kind, "token") && !strings.Contains(kind, "auth") {
				t.Errorf("%s: the reason does not say the token was refused: %q", c.String(), e.Errors[0].Kind)
			}
			if strings.Contains(e.Errors[0].Kind, cfg.Token) {
				t.Errorf("%s: the reason shows the token", c.String())
			}
		}
		if res.FailedPercent() != 100 {
			t.Errorf("%s: %.2f%% failed", w, res.FailedPercent())
		}
		dir := t.TempDir()
		path, err := WriteReport(dir, res)
		if err != nil {
			t.Fatal(err)
		}
		md, _ := os.ReadFile(path)
		lines := strings.SplitN(string(md), "\n", 6)
		if len(lines) < 5 || !strings.Contains(lines[4], "100.00% of the requests failed") {
			t.Errorf("the report does not say first that the run failed:\n%s", strings.Join(lines, "\n"))
		}
	}
}

// TestCompareInterleaved runs the gateway and PostgreSQL itself in turns:
// both measured, their turns alternate in time, ratios computed.
func TestCompareInterleaved(t *testing.T) {
	d := gateway(t)
	cfg := config(t, d, Point, PG)
	cmp, err := ParseCompare("direct=" + strings.Replace(pg.AdminURL, "/postgres?", "/main?", 1))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Compare, cfg.Duration, cfg.Rounds = cmp, 4*time.Second, 4
	res := run(t, cfg)
	c := res.Cells[0]
	if len(c.Endpoints) != 2 || c.Endpoints[1].Name != "direct" {
		t.Fatalf("endpoints: %+v", c.Endpoints)
	}
	for _, e := range c.Endpoints {
		checkSane(t, c.String(), e)
		if e.Seconds < 3.5 || e.Seconds > 6 {
			t.Errorf("%s measured %.1fs of 4s", e.Name, e.Seconds)
		}
	}
	// Turns alternate: the samples in time order, runs of one endpoint's
	// taken as one turn, go gateway, direct, gateway, direct … four times,
	// and no two samples overlap.
	type owned struct {
		Sample
		who int
	}
	var all []owned
	for who, e := range c.Endpoints {
		for _, s := range e.Timeline {
			all = append(all, owned{s, who})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].From < all[j].From })
	var turns []int
	for i, s := range all {
		if i > 0 && s.From < all[i-1].T-0.001 {
			t.Fatalf("samples overlap: %+v", all)
		}
		if len(turns) == 0 || turns[len(turns)-1] != s.who {
			turns = append(turns, s.who)
		}
	}
	if fmt.Sprint(turns) != "[0 1 0 1 0 1 0 1]" {
		t.Fatalf("turns %v, want gateway and direct in turn four times: %+v", turns, all)
	}
	rs := c.Ratios()
	if len(rs) != 1 || rs[0].Endpoint != "direct" || rs[0].Throughput <= 0 || rs[0].P99 <= 0 {
		t.Errorf("ratios %+v", rs)
	}
	if strings.Contains(mustJSON(t, res), pg.Password) {
		t.Error("the result shows the compared server's password")
	}
}

func mustJSON(t *testing.T, v any) string {
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(js)
}

func readFile(dir, name string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, name)) }
