// Package benchcmp is what the benchmarks that compare heliosd's proxy
// mode with the server behind it share (bench/mongoproxy,
// bench/redisproxy): servers started once, by the first benchmark that
// needs them, and stopped after the run; and the figures of rounds run
// interleaved (gateway, direct, gateway, …), so that ratios hold on a
// shared machine. It is imported by benchmarks only.
package benchcmp

import (
	"fmt"
	"os"
	"sort"
	"testing"

	"github.com/heliosdb/auth/internal/testdaemon"
)

// Servers starts a benchmark package's servers once and stops them after
// the run. The zero value is ready; a package has one, and its TestMain
// is Main.
type Servers struct {
	started bool
	err     error
	stops   []func()
}

// Start calls start the first time a benchmark needs the servers; start
// registers what stops each server with AtExit. Once start has returned
// nil, Start returns at once; once it has returned an error, this and
// every later Start fail the benchmark with it. (A start that fails the
// benchmark itself is tried again by the next one.)
func (s *Servers) Start(b *testing.B, start func() error) {
	b.Helper()
	if s.err != nil {
		b.Fatal(s.err)
	}
	if s.started {
		return
	}
	if err := start(); err != nil {
		s.err = err
		b.Fatal(err)
	}
	s.started = true
}

// AtExit registers stop to run after the benchmarks, last first.
func (s *Servers) AtExit(stop func()) { s.stops = append(s.stops, stop) }

// Daemon starts a heliosd that lasts the whole run (testdaemon.Shared)
// with opts; it is stopped and its data directory removed after the
// benchmarks.
func (s *Servers) Daemon(b *testing.B, opts ...testdaemon.Option) *testdaemon.Daemon {
	b.Helper()
	d := testdaemon.Start(b, append([]testdaemon.Option{testdaemon.Shared()}, opts...)...)
	s.AtExit(func() { d.Stop(); os.RemoveAll(d.DataDir) })
	return d
}

// Main is the package's TestMain: it runs the benchmarks, then what
// AtExit registered, removes the binaries testdaemon built, and exits with
// the run's status.
func (s *Servers) Main(m *testing.M) {
	code := m.Run()
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
	testdaemon.RemoveBuilds()
	os.Exit(code)
}

// Median is the median of vs (the upper one of an even count); vs is
// left as it is.
func Median(vs []float64) float64 {
	vs = append([]float64(nil), vs...)
	sort.Float64s(vs)
	return vs[len(vs)/2]
}

// Order is the targets' order in round r: reversed every other round
// (ABBA), so that a drift of the machine's speed during the run favours
// no target.
func Order[T any](ts []T, r int) []T {
	if r%2 == 0 {
		return ts
	}
	rev := make([]T, len(ts))
	for i, t := range ts {
		rev[len(ts)-1-i] = t
	}
	return rev
}

// Rounds holds each target's figures by its name, one a round.
type Rounds map[string][]float64

// Ratios is target's figure over other's, round by round.
func (r Rounds) Ratios(target, other string) []float64 {
	var rs []float64
	for i := range r[target] {
		rs = append(rs, r[target][i]/r[other][i])
	}
	return rs
}

// String lists each target's figures, round by round, targets by name.
func (r Rounds) String() string {
	names := make([]string, 0, len(r))
	for n := range r {
		names = append(names, n)
	}
	sort.Strings(names)
	out := ""
	for _, n := range names {
		out += n + ":"
		for _, v := range r[n] {
			out += fmt.Sprintf(" %.0f", v)
		}
		out += "; "
	}
	return out
}
