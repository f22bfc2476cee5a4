package load

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Setup is how a run was made: the tool, the machine and the settings.
type Setup struct {
	Tool      string  `json:"tool_version"`
	Go        string  `json:"go_version"`
	OS        string  `json:"os"`
	Kernel    string  `json:"kernel,omitempty"`
	CPUs      int     `json:"cpus"`
	CPUModel  string  `json:"cpu_model,omitempty"`
	MemoryGiB float64 `json:"memory_gib,omitempty"`
	// LoadStart and LoadEnd are the machine's load averages (1, 5 and 15
	// minutes) when the run started and ended: how busy it was besides.
	LoadStart string `json:"load_average_start,omitempty"`
	LoadEnd   string `json:"load_average_end,omitempty"`

	Protocols   []Protocol `json:"protocols"`
	Workloads   []Workload `json:"workloads"`
	Clients     int        `json:"clients"`
	Duration    string     `json:"duration,omitempty"`
	Requests    int64      `json:"requests,omitempty"`
	Rate        float64    `json:"rate,omitempty"`
	Warmup      string     `json:"warmup,omitempty"`
	ReadPercent int        `json:"read_percent,omitempty"`
	Keys        int        `json:"keys"`
	Database    string     `json:"database"`
	API         string     `json:"api_url"`
	Target      Target     `json:"target"`
	GatewayTLS  bool       `json:"gateway_tls"`
	Compare     []Endpoint `json:"compare,omitempty"`
	Nodes       []Target   `json:"nodes,omitempty"`
	// TokenSource says where the clients' tokens came from.
	TokenSource string `json:"token_source"`
}

// loadAverage is the machine's 1, 5 and 15 minute load averages ("" when
// unknown).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// describe reads the machine and the run's settings.
func describe(c *Config) Setup {
	s := Setup{Tool: c.Version, Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, CPUs: runtime.NumCPU(),
		Protocols: c.Protocols, Workloads: c.Workloads, Clients: c.Clients, Requests: c.Requests, Rate: c.Rate,
		Keys: c.Keys, Database: c.Database, API: c.APIURL, Target: c.Target, GatewayTLS: c.GatewayTLS, Compare: c.Compare}
	if c.Duration > 0 && c.Requests == 0 {
		s.Duration = c.Duration.String()
	}
	if c.Warmup > 0 {
		s.Warmup = c.Warmup.String()
	}
	if c.has(Mixed) {
		s.ReadPercent = c.ReadPercent
	}
	if c.has(RevokeStorm) {
		s.Nodes = c.Nodes
	}
	s.TokenSource = "one token per client, created through the API (scopes database:read, database:write)"
	if c.Token != "" {
		s.TokenSource = "--token, shared by every client"
	}
	if c.has(RevokeStorm) {
		s.TokenSource += "; revoke-storm: one token per session, created through the API and revoked by the run"
	}
	s.LoadStart = loadAverage()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		s.Kernel = strings.TrimSpace(string(b))
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				s.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				s.MemoryGiB = float64(int(kb/1024/1024*10+0.5)) / 10
				break
			}
		}
		f.Close()
	}
	return s
}
