package upstream

import (
	"sync/atomic"
	"time"
)

// Health is what /healthz says about an upstream: whether the last attempt
// to reach it (a login, a provisioning) did, the error it met, and the
// server connections of its pools. A protocol's own Health embeds it.
type Health struct {
	Address   string    `json:"address"`
	Reachable bool      `json:"reachable"`
	Error     string    `json:"error,omitempty"`
	Checked   time.Time `json:"checked"`
	// Open and Idle count the server connections of every pool.
	Open int `json:"open"`
	Idle int `json:"idle"`
}

// Status keeps what the last attempt to reach an upstream found. It is safe
// for concurrent use; the zero Status has seen no attempt.
type Status struct {
	last atomic.Pointer[Health]
}

// Record keeps an attempt's outcome: reached tells whether the server
// answered (a refused login is an answer), errText the error ("" for
// none). The text must never hold a password.
func (s *Status) Record(addr string, reached bool, errText string) {
	s.last.Store(&Health{Address: addr, Reachable: reached, Error: errText, Checked: time.Now().UTC()})
}

// Health returns the last outcome, for addr before any, with the open and
// idle server connections counted from stats (Pool.Stats).
func (s *Status) Health(addr string, stats map[Key][2]int) Health {
	h := Health{Address: addr}
	if l := s.last.Load(); l != nil {
		h = *l
	}
	for _, st := range stats {
		h.Open += st[0]
		h.Idle += st[1]
	}
	return h
}
