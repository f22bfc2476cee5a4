package netio

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/heliosdb/auth/core"
)

func TestMetricsCountWithoutAllocating(t *testing.T) {
	m := NewMetrics("alloctest", slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)))
	info := &ConnInfo{Remote: netip.MustParseAddrPort("10.0.0.1:5000"), Accepted: time.Now()}
	c := &core.Claims{}
	if n := testing.AllocsPerRun(1000, func() {
		m.Opened()
		m.Authenticated(info, c, nil, time.Now())
		m.Limit(LimitIdleTimeout)
		m.Closed()
	}); n != 0 {
		t.Fatalf("%v allocations per counted connection", n)
	}
	var buf bytes.Buffer
	metrics.WritePrometheus(&buf, false)
	for _, want := range []string{
		`helios_gateway_auth_total{protocol="alloctest",outcome="ok"} 1001`,
		`helios_gateway_limit_hits_total{protocol="alloctest",limit="idle_timeout"} 1001`,
		`helios_gateway_connections_open{protocol="alloctest"} 0`,
		`helios_gateway_handshake_seconds_bucket{protocol="alloctest",le="+Inf"} 1001`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Fatalf("missing %s", want)
		}
	}
}

func TestMetricsLogFailuresWithoutTheToken(t *testing.T) {
	var logs bytes.Buffer
	m := NewMetrics("logtest", slog.New(slog.NewTextHandler(&logs, nil)))
	info := &ConnInfo{Remote: netip.MustParseAddrPort("10.0.0.1:5000")}
	var id core.TokenID
	copy(id[:], "0123456789ab")
	m.Authenticated(info, &core.Claims{ID: id}, core.ErrExpired, time.Now())
	m.Authenticated(info, nil, core.ErrBadMAC, time.Now())
	m.Authenticated(info, nil, errors.New("other"), time.Now())
	m.Refused(info, OutcomeTLSRequired)
	out := logs.String()
	for _, want := range []string{
		"protocol=logtest remote=10.0.0.1:5000 token_id=" + id.String() + " outcome=expired",
		"outcome=invalid reason=\"the token's signature is not valid\"",
		"outcome=tls_required",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "token_id=") != 1 {
		t.Fatalf("a token id was logged without a verified MAC:\n%s", out)
	}
}

func TestPlaintextAllow(t *testing.T) {
	p, err := ParsePrefixes([]string{"127.0.0.1/32", "10.0.0.0/8", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{"127.0.0.1": true, "127.0.0.2": false, "10.9.8.7": true, "::1": true, "::ffff:10.1.1.1": true, "192.0.2.1": false} {
		if got := inNets(p, netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s: %v", addr, got)
		}
	}
	if _, err := ParsePrefixes([]string{"nonsense"}); err == nil {
		t.Fatal("nonsense parsed")
	}
	if d := (&Config{}).EnsureDefaults(); !inNets(d.PlaintextAllow, netip.MustParseAddr("127.0.0.1")) || inNets(d.PlaintextAllow, netip.MustParseAddr("10.0.0.1")) {
		t.Fatal("default must be loopback only")
	}
}
