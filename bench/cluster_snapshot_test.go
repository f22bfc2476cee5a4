package bench

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testdaemon"
	"github.com/heliosdb/auth/issuer/feed"
)

// staticSource is a feed.Source holding a fixed snapshot (an issuer with n
// live revocations and nothing new).
type staticSource struct {
	seq     uint64
	events  []feed.Event
	changed chan struct{}
}

func (s *staticSource) LastSeq() uint64          { return s.seq }
func (s *staticSource) Changed() <-chan struct{} { return s.changed }
func (s *staticSource) Compacted() uint64        { return s.seq }
func (s *staticSource) Read(after uint64, limit int) ([]feed.Event, uint64, error) {
	return nil, s.seq, nil
}
func (s *staticSource) Snapshot() (uint64, []feed.Event, error) { return s.seq, s.events, nil }

// BenchmarkClusterSnapshotJoin: a gateway node process (heliosd --role
// gateway) joins an issuer holding 1M live token revocations; the time is
// from the process's start to its /healthz answering 200 (keyring fetched,
// snapshot streamed over loopback HTTP, Bloom filter and exact set built,
// listeners up). The issuer side is the real feed.Server in this process
// over a prepared snapshot (seeding a real issuer with 1M revocations takes
// minutes of synced commands).
func BenchmarkClusterSnapshotJoin(b *testing.B) {
	const n = 1_000_000
	exp := time.Now().Unix() + 86400
	src := &staticSource{seq: 2 * n, events: make([]feed.Event, n), changed: make(chan struct{})}
	for i := range src.events {
		src.events[i] = feed.Event{Kind: feed.KindToken, Seq: src.seq, Token: core.NewTokenID(), Expires: exp}
	}
	dir := b.TempDir()
	keyPath := filepath.Join(dir, "cluster.key")
	key, err := feed.LoadOrCreateClusterKey(keyPath)
	if err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	fs := &feed.Server{Source: src, Keyring: core.GenerateKeyring(time.Now()), ClusterKey: key, Stop: stop}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/v1/cluster/feed":
			fs.ServeFeed(ctx)
		case "/v1/cluster/keys":
			fs.ServeKeys(ctx)
		default:
			ctx.SetStatusCode(http.StatusNotFound)
		}
	}}
	go srv.Serve(ln)
	defer func() { close(stop); ln.Close(); _ = srv.Shutdown() }()
	testdaemon.Build(b, "heliosd") // built before the clock starts
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		node := "http://" + startNode(b, "http://"+ln.Addr().String(), keyPath)
		for {
			resp, err := http.Get(node + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Since(start) > 30*time.Second {
				b.Fatal("node not ready")
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "ready-ms")
		resp, err := http.Get(node + "/metrics")
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "helios_node_revoked_tokens 1000000\n") {
			b.Fatal("the node does not hold the 1M revocations")
		}
	}
	b.StopTimer()
	_ = os.RemoveAll(dir)
}
