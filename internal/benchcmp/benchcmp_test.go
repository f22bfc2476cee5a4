package benchcmp

import (
	"slices"
	"testing"
)

// TestMedian: the middle figure (the upper of two for an even count), and
// the caller's slice is left in its order.
func TestMedian(t *testing.T) {
	vs := []float64{5, 1, 4, 2, 3}
	if got := Median(vs); got != 3 {
		t.Errorf("Median(%v) = %v, want 3", vs, got)
	}
	if !slices.Equal(vs, []float64{5, 1, 4, 2, 3}) {
		t.Errorf("Median reordered its argument: %v", vs)
	}
	if got := Median([]float64{4, 1, 3, 2}); got != 3 {
		t.Errorf("Median of 1..4 = %v, want 3", got)
	}
}

// TestOrder: rounds alternate A B C and C B A, and the targets are never
// changed in place.
func TestOrder(t *testing.T) {
	ts := []string{"a", "b", "c"}
	for r, want := range [][]string{{"a", "b", "c"}, {"c", "b", "a"}, {"a", "b", "c"}, {"c", "b", "a"}} {
		if got := Order(ts, r); !slices.Equal(got, want) {
			t.Errorf("round %d: %v, want %v", r, got, want)
		}
	}
	if !slices.Equal(ts, []string{"a", "b", "c"}) {
		t.Errorf("Order changed the targets: %v", ts)
	}
}

// TestRounds: ratios round by round, and the listing by target name.
func TestRounds(t *testing.T) {
	r := Rounds{"gateway": {90, 100}, "direct": {100, 200}}
	if got := r.Ratios("gateway", "direct"); !slices.Equal(got, []float64{0.9, 0.5}) {
		t.Errorf("Ratios = %v", got)
	}
	if got, want := r.String(), "direct: 100 200; gateway: 90 100; "; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}
