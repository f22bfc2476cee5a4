package load

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// WriteReport writes res into dir (made if missing): report.md (setup,
// machine, every figure, ratios against each compared endpoint, errors by
// kind), result.json (the same figures for machines) and a PNG and an SVG
// of each plot. It returns the report's path.
func WriteReport(dir string, res *Result) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "result.json"), append(js, '\n'), 0o644); err != nil {
		return "", err
	}
	var b bytes.Buffer
	writeMarkdown(&b, res, func(c *Cell) []string {
		bases, perr := cellPlots(c, dir)
		if perr != nil && err == nil {
			err = perr
		}
		return bases
	})
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "report.md")
	return path, os.WriteFile(path, b.Bytes(), 0o644)
}

// writeMarkdown writes the report; plots draws a cell's plots and returns
// their base names.
func writeMarkdown(b *bytes.Buffer, res *Result, plots func(*Cell) []string) {
	s := res.Setup
	fmt.Fprintf(b, "# helios bench: %s\n\n", joinWorkloads(s.Workloads))
	fmt.Fprintf(b, "%s · %d CPUs (%s) · %.1f GiB · %s %s · helios %s, %s\n\n", res.Started.UTC().Format("2006-01-02 15:04 UTC"),
		s.CPUs, orNone(s.CPUModel), s.MemoryGiB, s.OS, s.Kernel, s.Tool, s.Go)
	if f := res.FailedPercent(); f > 1 {
		fmt.Fprintf(b, "> **%.2f%% of the requests failed** — the figures below describe a run that did not work; see the errors of each cell.\n\n", f)
	}
	if res.Interrupted {
		fmt.Fprintf(b, "> **Interrupted** after %s: the figures are what was measured until then.\n\n", res.Finished.Sub(res.Started).Round(time.Second))
	}
	if s.LoadStart != "" {
		fmt.Fprintf(b, "Load average (1, 5, 15 min) at the start %s, at the end %s, on %d CPUs: what else the machine was doing.\n\n",
			s.LoadStart, orNone(s.LoadEnd), s.CPUs)
	}
	b.WriteString("## Setup\n\n")
	mode := "closed loop (each client sends its next request when the last one answered)"
	if s.Rate > 0 {
		mode = fmt.Sprintf("open loop at %.0f requests/s per endpoint (latency measured from each request's intended start)", s.Rate)
	}
	if slices.Contains(s.Workloads, RevokeStorm) {
		rate := s.Rate
		if rate <= 0 {
			rate = stormRate
		}
		mode += fmt.Sprintf("; revoke-storm: %.0f revocations/s", rate)
	}
	length := s.Duration + " per endpoint and cell"
	if s.Requests > 0 {
		length = fmt.Sprintf("%d requests per endpoint and cell", s.Requests)
	}
	fmt.Fprintf(b, "| setting | value |\n|---|---|\n")
	fmt.Fprintf(b, "| workloads | %s |\n| protocols | %s |\n| clients | %d per endpoint (revoke-storm: sessions per node) |\n",
		joinWorkloads(s.Workloads), joinProtocols(s.Protocols), s.Clients)
	fmt.Fprintf(b, "| length | %s |\n", length)
	fmt.Fprintf(b, "| load | %s |\n", mode)
	if s.Warmup != "" {
		fmt.Fprintf(b, "| warmup | %s per endpoint, not measured |\n", s.Warmup)
	}
	if slices.Contains(s.Workloads, Mixed) {
		fmt.Fprintf(b, "| mix | %d%% reads, %d%% writes |\n", s.ReadPercent, 100-s.ReadPercent)
	}
	if slices.Contains(s.Workloads, Point) || slices.Contains(s.Workloads, Mixed) {
		fmt.Fprintf(b, "| data set | %d rows in `%s` (table, collection, keys `%s:N`) of database `%s` |\n", s.Keys, table, table, s.Database)
	}
	transport := "plaintext (loopback)"
	if s.GatewayTLS {
		transport = "TLS"
	}
	fmt.Fprintf(b, "| tokens | %s |\n| API | %s |\n| to the gateway | %s |\n\n", s.TokenSource, s.API, transport)
	b.WriteString("| protocol | gateway | compared with |\n|---|---|---|\n")
	for _, p := range s.Protocols {
		var cmp []string
		for _, e := range s.Compare {
			if e.Protocol == p {
				cmp = append(cmp, e.Name+" ("+e.Addr+")")
			}
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", p, s.Target[p], orNone(strings.Join(cmp, ", ")))
	}
	if len(s.Compare) > 0 {
		b.WriteString("\nEndpoints of a cell run in turns (gateway, then each compared endpoint, again and again), " +
			"so that the machine's noise falls on each of them alike; ratios are the gateway's figure over the other's.\n")
	}
	b.WriteString("\n## Results\n\n")
	for i := range res.Cells {
		writeCell(b, &res.Cells[i], plots)
	}
	b.WriteString("## Reading it\n\n" +
		"- *req/s* counts successful requests per second of the endpoint's own measured time; a request of the connect " +
		"workload is a whole connection: connect, authenticate, one command, close.\n" +
		"- Latency percentiles come from an HDR histogram (1 µs to 5 min, 3 significant digits). p99.9 and max rest on " +
		"few samples in a short run: read them as an order of magnitude.\n" +
		"- A ratio above 1 means the gateway's figure is the larger one: more throughput, or more latency.\n" +
		"- Errors are counted by kind and never dropped from the request count.\n")
}

func writeCell(b *bytes.Buffer, c *Cell, plots func(*Cell) []string) {
	fmt.Fprintf(b, "### %s %s\n\n", c.Protocol, c.Workload)
	if c.Error != "" {
		fmt.Fprintf(b, "Could not run: %s\n\n", c.Error)
		return
	}
	if f, n := c.Failed(); n > 0 && 100*float64(f)/float64(n) > 1 {
		fmt.Fprintf(b, "> **%d of %d (%.2f%%) failed.**\n\n", f, n, 100*float64(f)/float64(n))
	}
	if c.Storm != nil {
		writeStorm(b, c.Storm)
	} else {
		b.WriteString("| endpoint | server | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | requests | failed |\n")
		b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, e := range c.Endpoints {
			l := e.Latency
			fmt.Fprintf(b, "| %s | %s | %.0f | %.3f | %.3f | %.3f | %.3f | %.3f | %d | %d (%.2f%%) |\n", e.Name, orNone(e.Version),
				e.Throughput, l.P50, l.P90, l.P99, l.P999, l.Max, e.Requests, e.Failed, e.FailedPercent)
		}
		for _, e := range c.Endpoints {
			if e.Missed > 0 {
				fmt.Fprintf(b, "\n%s fell behind the rate: %d requests were due but never sent.\n", e.Name, e.Missed)
			}
		}
		if rs := c.Ratios(); len(rs) > 0 {
			b.WriteString("\n| gateway / | throughput | p50 | p99 |\n|---|--:|--:|--:|\n")
			for _, r := range rs {
				fmt.Fprintf(b, "| %s | ×%.2f | ×%.2f | ×%.2f |\n", r.Endpoint, r.Throughput, r.P50, r.P99)
			}
		}
		for _, e := range c.Endpoints {
			writeErrors(b, e.Name+" errors", e.Errors)
		}
	}
	b.WriteString("\n")
	for _, base := range plots(c) {
		fmt.Fprintf(b, "![%s](%s.png) ([SVG](%s.svg))\n\n", base, base, base)
	}
}

func writeStorm(b *bytes.Buffer, s *StormResult) {
	fmt.Fprintf(b, "%d tokens revoked at %.0f/s while a session of each ran on every node; sessions send a command and "+
		"probers try to connect every %.0f ms, so latencies are precise to that. Times run from the moment the revocation "+
		"request was sent.\n\n", s.Tokens, s.Rate, s.PollMS)
	b.WriteString("| node | measure | p50 ms | p90 ms | p99 ms | max ms | seen | not seen in 10 s |\n|---|---|--:|--:|--:|--:|--:|--:|\n")
	for _, n := range s.Nodes {
		fmt.Fprintf(b, "| %s | revocation → refusal | %.1f | %.1f | %.1f | %.1f | %d | %d |\n", n.Node,
			n.Refusal.P50, n.Refusal.P90, n.Refusal.P99, n.Refusal.Max, n.Refusal.Count, n.NotRefused)
		fmt.Fprintf(b, "| %s | revocation → session end | %.1f | %.1f | %.1f | %.1f | %d | %d |\n", n.Node,
			n.SessionEnd.P50, n.SessionEnd.P90, n.SessionEnd.P99, n.SessionEnd.Max, n.SessionEnd.Count, n.NotEnded)
	}
	for _, n := range s.Nodes {
		writeErrors(b, n.Node+": how connections were refused", n.RefusedBy)
		writeErrors(b, n.Node+": how sessions ended", n.EndedBy)
	}
	writeErrors(b, "errors", s.Errors)
}

func writeErrors(b *bytes.Buffer, title string, es []ErrorCount) {
	if len(es) == 0 {
		return
	}
	fmt.Fprintf(b, "\n%s:\n\n| count | kind |\n|--:|---|\n", title)
	for _, e := range es {
		fmt.Fprintf(b, "| %d | %s |\n", e.Count, strings.ReplaceAll(e.Kind, "|", "\\|"))
	}
}

func joinProtocols(ps []Protocol) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}

func joinWorkloads(ws []Workload) string {
	s := make([]string, len(ws))
	for i, w := range ws {
		s[i] = string(w)
	}
	return strings.Join(s, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
