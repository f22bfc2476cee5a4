package netio

import (
	"errors"
	"log/slog"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/heliosdb/auth/core"
)

// Metrics is the Observer the transport gives every protocol: counters in
// VictoriaMetrics' default set (served at GET /metrics by the HTTP front
// end), created once per protocol so that counting allocates nothing, and one
// slog line per failed authentication.
//
// Series, each labelled protocol="<name>":
//
//	helios_gateway_connections_open                  gauge
//	helios_gateway_connections_total                 counter
//	helios_gateway_auth_total{outcome="ok|invalid|expired|revoked|forbidden|tls_required|unavailable"}
//	helios_gateway_handshake_seconds                 histogram, accept to authenticated
//	helios_gateway_limit_hits_total{limit="connections|handshake_timeout|idle_timeout|message_size"}
//
// A failure is logged with the protocol, the source address, the token id
// when the token's MAC verified (never the token itself) and the reason.
type Metrics struct {
	protocol  string
	log       *slog.Logger
	open      *metrics.Gauge
	accepted  *metrics.Counter
	outcomes  [numOutcomes]*metrics.Counter
	limits    [LimitMessageSize + 1]*metrics.Counter // indexed by Limit
	handshake *metrics.PrometheusHistogram
}

// NewMetrics returns the observer for protocol, registering its series in
// the default VictoriaMetrics set (or reusing them when they exist, so a
// test may start several gateways in one process). log may be nil.
func NewMetrics(protocol string, log *slog.Logger) *Metrics {
	if log == nil {
		log = slog.Default()
	}
	l := `{protocol="` + protocol + `"`
	m := &Metrics{
		protocol:  protocol,
		log:       log,
		open:      metrics.GetOrCreateGauge("helios_gateway_connections_open"+l+"}", nil),
		accepted:  metrics.GetOrCreateCounter("helios_gateway_connections_total" + l + "}"),
		handshake: metrics.GetOrCreatePrometheusHistogramExt("helios_gateway_handshake_seconds"+l+"}", handshakeBuckets),
	}
	for o := range numOutcomes {
		m.outcomes[o] = metrics.GetOrCreateCounter("helios_gateway_auth_total" + l + `,outcome="` + o.String() + `"}`)
	}
	for lim := LimitConnections; lim <= LimitMessageSize; lim++ {
		m.limits[lim] = metrics.GetOrCreateCounter("helios_gateway_limit_hits_total" + l + `,limit="` + lim.String() + `"}`)
	}
	return m
}

var handshakeBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Authenticated counts an attempt, records the handshake latency (from
// accept) of a success, and logs a failure.
func (m *Metrics) Authenticated(info *ConnInfo, claims *core.Claims, err error, started time.Time) {
	o := OutcomeOf(err)
	m.outcomes[o].Inc()
	if err == nil {
		from := info.Accepted
		if from.IsZero() {
			from = started
		}
		m.handshake.UpdateDuration(from)
		return
	}
	reason := err.Error()
	var te *core.Error
	if errors.As(err, &te) && te.Detail != "" {
		reason = te.Detail
	}
	msg := "authentication failed"
	if o == OutcomeForbidden {
		msg = "authorization failed" // a valid token without the scope a command needs
	}
	if claims != nil {
		m.log.Warn(msg, "protocol", m.protocol, "remote", info.Remote.String(),
			"token_id", claims.ID.String(), "outcome", o.String(), "reason", reason)
		return
	}
	m.log.Warn(msg, "protocol", m.protocol, "remote", info.Remote.String(),
		"outcome", o.String(), "reason", reason)
}

// Refused counts a connection refused before a token was sent, and logs it.
func (m *Metrics) Refused(info *ConnInfo, o Outcome) {
	m.outcomes[o].Inc()
	m.log.Warn("authentication refused", "protocol", m.protocol, "remote", info.Remote.String(),
		"outcome", o.String(), "reason", "a token may not be sent without TLS from this address")
}

// Limit counts a limit hit.
func (m *Metrics) Limit(l Limit) {
	if l >= LimitConnections && l <= LimitMessageSize {
		m.limits[l].Inc()
	}
}

// Opened counts a new connection.
func (m *Metrics) Opened() { m.accepted.Inc(); m.open.Inc() }

// Closed counts a connection's end.
func (m *Metrics) Closed() { m.open.Dec() }
