package load

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/heliosdb/auth/internal/listeners"
)

// Protocol is a front end the run drives.
type Protocol string

// The protocols, by the names the command line uses.
const (
	PG    Protocol = "pg"
	MySQL Protocol = "mysql"
	Mongo Protocol = "mongo"
	Redis Protocol = "redis"
	REST  Protocol = "rest"
)

// AllProtocols is every protocol, in the order a run takes them.
var AllProtocols = []Protocol{PG, MySQL, Mongo, Redis, REST}

// listenFlag is heliosd's listener flag for each protocol (the default
// ports come from internal/listeners).
var listenFlag = map[Protocol]string{PG: "pg-listen", MySQL: "mysql-listen", Mongo: "mongo-listen", Redis: "redis-listen", REST: "http-listen"}

// Workload is what each client does.
type Workload string

// The workloads.
const (
	Connect     Workload = "connect"
	Point       Workload = "point"
	Mixed       Workload = "mixed"
	RevokeStorm Workload = "revoke-storm"
)

// AllWorkloads is every workload.
var AllWorkloads = []Workload{Connect, Point, Mixed, RevokeStorm}

// ParseProtocols reads "pg,mysql" or "all".
func ParseProtocols(s string) ([]Protocol, error) {
	if strings.TrimSpace(s) == "all" {
		return append([]Protocol(nil), AllProtocols...), nil
	}
	var out []Protocol
	seen := map[Protocol]bool{}
	for _, f := range strings.Split(s, ",") {
		p := Protocol(strings.TrimSpace(f))
		if _, ok := listenFlag[p]; !ok {
			return nil, fmt.Errorf("unknown protocol %q: use pg, mysql, mongo, redis, rest or all", p)
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// ParseWorkloads reads "point" or "connect,point,revoke-storm".
func ParseWorkloads(s string) ([]Workload, error) {
	var out []Workload
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		found := false
		for _, w := range AllWorkloads {
			if string(w) == f {
				found = true
				if !slices.Contains(out, w) {
					out = append(out, w)
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown workload %q: use connect, point, mixed or revoke-storm", f)
		}
	}
	return out, nil
}

// Target is one gateway node: the address of each of its front ends
// (host:port; for REST a base URL, http://host:port).
type Target map[Protocol]string

// ParseTarget reads a gateway: a bare host ("127.0.0.1", every front end
// on heliosd's default port), or "pg=HOST:PORT,mysql=…,rest=http://…",
// where the protocols not named are on the first host's default ports.
func ParseTarget(spec string) (Target, error) {
	t := Target{}
	host := ""
	for _, f := range strings.Split(spec, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			if host != "" {
				return nil, fmt.Errorf("target %q: name a protocol for each address (pg=HOST:PORT,…)", spec)
			}
			host = f
			continue
		}
		p := Protocol(k)
		if _, known := listenFlag[p]; !known {
			return nil, fmt.Errorf("target %q: unknown protocol %q", spec, k)
		}
		if p == REST {
			if !strings.Contains(v, "://") {
				v = "http://" + v
			}
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("target %q: rest= needs http://HOST:PORT", spec)
			}
			v = strings.TrimRight(v, "/")
		} else if _, _, err := net.SplitHostPort(v); err != nil {
			return nil, fmt.Errorf("target %q: %s= needs HOST:PORT", spec, k)
		}
		if host == "" {
			h := v
			if p == REST {
				u, _ := url.Parse(v)
				h = u.Host
			}
			host, _, _ = net.SplitHostPort(h)
		}
		t[p] = v
	}
	if host == "" {
		host = "127.0.0.1"
	}
	for _, l := range listeners.All {
		for p, flag := range listenFlag {
			if flag != l.Flag || t[p] != "" {
				continue
			}
			_, port, _ := net.SplitHostPort(l.Default)
			t[p] = net.JoinHostPort(host, port)
			if p == REST {
				t[p] = "http://" + t[p]
			}
		}
	}
	return t, nil
}

// Endpoint is one server a cell drives: the gateway (Gateway, the client's
// token authenticates) or a compared server (URL carries its own
// credentials).
type Endpoint struct {
	// Name labels the endpoint in figures: "gateway", "direct", "pgbouncer".
	Name string `json:"name"`
	// Protocol is what it speaks.
	Protocol Protocol `json:"protocol"`
	// Addr is host:port (REST: the base URL), for people; no credentials.
	Addr string `json:"address"`
	// Gateway is true for the gateway.
	Gateway bool `json:"gateway"`
	// URL is a compared server's connection URL with its credentials.
	URL string `json:"-"`
}

// schemes maps a compared endpoint's URL scheme to its protocol.
var schemes = map[string]Protocol{"postgres": PG, "postgresql": PG, "mysql": MySQL, "mongodb": Mongo,
	"redis": Redis, "rediss": Redis, "http": REST, "https": REST}

// ParseCompare reads --compare: "direct=postgres://…,pgbouncer=postgres://…".
// Each URL's scheme says its protocol; an http(s) URL is another gateway's
// REST API, driven with the same tokens.
func ParseCompare(spec string) ([]Endpoint, error) {
	var out []Endpoint
	for _, f := range splitCompare(spec) {
		name, raw, ok := strings.Cut(f, "=")
		if !ok || name == "" || raw == "" {
			return nil, fmt.Errorf("compare %q: use NAME=URL", f)
		}
		if name == "gateway" {
			return nil, fmt.Errorf("compare: the name gateway is the target's")
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("compare %s: %q is not a URL", name, redactURL(raw))
		}
		p, ok := schemes[u.Scheme]
		if !ok {
			return nil, fmt.Errorf("compare %s: unknown scheme %q (postgres, mysql, mongodb, redis, http)", name, u.Scheme)
		}
		out = append(out, Endpoint{Name: name, Protocol: p, Addr: u.Host, URL: raw})
		if p == REST {
			out[len(out)-1].Addr = strings.TrimRight(raw, "/")
			out[len(out)-1].Gateway = true
		}
	}
	return out, nil
}

// splitCompare splits on the commas that start a new NAME=, so a URL's
// query may hold commas too.
func splitCompare(spec string) []string {
	var out []string
	for _, f := range strings.Split(spec, ",") {
		k, _, ok := strings.Cut(f, "=")
		if len(out) > 0 && (!ok || strings.ContainsAny(k, ":/?&@")) {
			out[len(out)-1] += "," + f
			continue
		}
		if strings.TrimSpace(f) != "" {
			out = append(out, strings.TrimSpace(f))
		}
	}
	return out
}

// redactURL hides a URL's password.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Config is one run.
type Config struct {
	// APIURL is the issuer's REST API (tokens are created and revoked
	// there); HTTP is the client for it (trusting the CA the CLI was given).
	APIURL string
	HTTP   *http.Client
	// TLS is the client configuration for https REST targets and, with
	// GatewayTLS, for every front end of the gateway.
	TLS *tls.Config
	// GatewayTLS makes the clients speak TLS to the gateway's PostgreSQL,
	// MySQL, MongoDB and Redis front ends (heliosd allows plaintext on
	// loopback only).
	GatewayTLS bool
	// Creator is the bearer that creates the clients' tokens (and, in a
	// revoke-storm, revokes them): a full-access session token.
	Creator string
	// Token, when set, is every client's token and no token is created
	// (except a revoke-storm's, which needs tokens to revoke).
	Token string

	// Protocols and Workloads are the cells: every workload on every
	// protocol, one workload after another.
	Protocols []Protocol
	Workloads []Workload
	// Clients is the number of concurrent clients per endpoint.
	Clients int
	// Duration is each endpoint's measured time per cell; Requests, when
	// set instead, its number of requests per cell.
	Duration time.Duration
	Requests int64
	// Rate, when set, is each endpoint's open-loop request rate (per
	// second, over all clients); in a revoke-storm, revocations per second.
	Rate float64
	// Warmup runs each endpoint unmeasured before its cell.
	Warmup time.Duration
	// Rounds is how many slices each endpoint's time is cut into when
	// endpoints are compared (0: one per 2 s of Duration, at least 2).
	Rounds int
	// Target is the gateway; Compare the endpoints run beside it; Nodes
	// every gateway node a revoke-storm watches (default: Target).
	Target  Target
	Compare []Endpoint
	Nodes   []Target
	// ReadPercent is the share of reads in the mixed workload (0–100).
	ReadPercent int
	// Keys is the number of rows/documents/keys the point and mixed
	// workloads read.
	Keys int
	// Database is the database the workloads use ("main").
	Database string
	// Progress shows the run as it goes (nil: nothing).
	Progress Progress
	// Version is the tool's version, for the report.
	Version string
}

// tlsFor is the TLS configuration for a gateway front end at addr
// (host:port): nil without GatewayTLS.
func (c *Config) tlsFor(addr string) *tls.Config {
	if !c.GatewayTLS {
		return nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLS != nil {
		t = c.TLS.Clone()
	}
	if host, _, err := net.SplitHostPort(addr); err == nil && t.ServerName == "" {
		t.ServerName = host
	}
	return t
}

// has reports whether the run includes workload w.
func (c *Config) has(w Workload) bool { return slices.Contains(c.Workloads, w) }

// endpoints lists the endpoints of protocol p: the gateway first.
func (c *Config) endpoints(p Protocol) []Endpoint {
	addr := c.Target[p]
	eps := []Endpoint{{Name: "gateway", Protocol: p, Addr: addr, Gateway: true}}
	for _, e := range c.Compare {
		if e.Protocol == p {
			eps = append(eps, e)
		}
	}
	return eps
}

// check fills defaults and refuses a configuration that cannot run.
func (c *Config) check() error {
	if c.Clients <= 0 {
		c.Clients = 1
	}
	if c.Duration <= 0 && c.Requests <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Database == "" {
		c.Database = "main"
	}
	if c.Keys <= 0 {
		c.Keys = 1000
	}
	if c.ReadPercent < 0 || c.ReadPercent > 100 {
		return fmt.Errorf("read share %d%% is not between 0 and 100", c.ReadPercent)
	}
	if len(c.Protocols) == 0 {
		return fmt.Errorf("no protocol to run")
	}
	if c.Target == nil {
		t, _ := ParseTarget("127.0.0.1")
		c.Target = t
	}
	if len(c.Nodes) == 0 {
		c.Nodes = []Target{c.Target}
	}
	if c.HTTP == nil {
		c.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	if c.Token == "" && c.Creator == "" {
		return fmt.Errorf("no token: log in (helios auth login), set HELIOS_TOKEN, or pass --token")
	}
	if len(c.Workloads) == 0 {
		return fmt.Errorf("no workload to run")
	}
	if c.has(RevokeStorm) && c.Creator == "" {
		c.Creator = c.Token
	}
	for _, e := range c.Compare {
		found := false
		for _, p := range c.Protocols {
			found = found || p == e.Protocol
		}
		if !found {
			return fmt.Errorf("compare %s is %s, which this run does not drive (--protocol)", e.Name, e.Protocol)
		}
	}
	return nil
}
