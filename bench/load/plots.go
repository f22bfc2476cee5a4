package load

import (
	"fmt"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// plotSize is every plot's size.
const plotW, plotH = 7 * vg.Inch, 3.5 * vg.Inch

// percentileNames label the latency plots' x axis.
var percentileNames = []string{"p50", "p90", "p99", "p99.9", "max"}

func percentileValues(p Percentiles) []float64 {
	return []float64{p.P50, p.P90, p.P99, p.P999, p.Max}
}

// save writes p as base.png and base.svg in dir and returns their names.
func save(p *plot.Plot, dir, base string) ([]string, error) {
	var out []string
	for _, ext := range []string{".png", ".svg"} {
		if err := p.Save(plotW, plotH, filepath.Join(dir, base+ext)); err != nil {
			return out, fmt.Errorf("plot %s%s: %w", base, ext, err)
		}
		out = append(out, base+ext)
	}
	return out, nil
}

// cellPlots draws a cell's plots in dir: throughput over time and latency
// percentiles per endpoint (revoke-storm: the latencies per node). It
// returns the files' base names (without extension).
func cellPlots(c *Cell, dir string) ([]string, error) {
	stem := fmt.Sprintf("%s-%s", c.Protocol, c.Workload)
	var bases []string
	if c.Storm != nil {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s revoke-storm: latency from revocation, per node", c.Protocol)
		p.Y.Label.Text = "ms (log scale)"
		logY(p)
		i := 0
		for _, n := range c.Storm.Nodes {
			for _, s := range []struct {
				what string
				p    Percentiles
			}{{"refusal", n.Refusal}, {"session end", n.SessionEnd}} {
				if s.p.Count == 0 {
					continue
				}
				if err := addPercentiles(p, i, n.Node+" "+s.what, s.p); err != nil {
					return nil, err
				}
				i++
			}
		}
		if i == 0 {
			return nil, nil // nothing was refused or ended: no latency to draw
		}
		p.NominalX(percentileNames...)
		if _, err := save(p, dir, stem+"-latency"); err != nil {
			return nil, err
		}
		return []string{stem + "-latency"}, nil
	}
	tp := plot.New()
	tp.Title.Text = fmt.Sprintf("%s %s: throughput over time", c.Protocol, c.Workload)
	tp.X.Label.Text = "seconds since the run started"
	tp.Y.Label.Text = "successful requests/s"
	for i, e := range c.Endpoints {
		var seg plotter.XYs
		flush := func(legend bool) error {
			if len(seg) == 0 {
				return nil
			}
			l, s, err := plotter.NewLinePoints(seg)
			if err != nil {
				return err
			}
			l.Color, s.Color = plotutil.Color(i), plotutil.Color(i)
			s.Shape = plotutil.Shape(i)
			tp.Add(l, s)
			if legend {
				tp.Legend.Add(e.Name, l, s)
			}
			seg = nil
			return nil
		}
		// Each sample is a step over its time; a gap between samples is
		// another endpoint's turn.
		first := true
		for j, pt := range e.Timeline {
			if j > 0 && pt.From-e.Timeline[j-1].T > 0.05 {
				if err := flush(first); err != nil {
					return nil, err
				}
				first = false
			}
			seg = append(seg, plotter.XY{X: pt.From, Y: pt.Rate}, plotter.XY{X: pt.T, Y: pt.Rate})
		}
		if err := flush(first); err != nil {
			return nil, err
		}
	}
	tp.Y.Min = 0
	tp.Y.Tick.Marker = plainTicks{}
	tp.Legend.Top = true
	if _, err := save(tp, dir, stem+"-throughput"); err != nil {
		return nil, err
	}
	bases = append(bases, stem+"-throughput")

	lp := plot.New()
	lp.Title.Text = fmt.Sprintf("%s %s: latency percentiles per endpoint", c.Protocol, c.Workload)
	lp.Y.Label.Text = "ms (log scale)"
	logY(lp)
	lines := 0
	for i, e := range c.Endpoints {
		if e.Latency.Count == 0 {
			continue
		}
		if err := addPercentiles(lp, i, e.Name, e.Latency); err != nil {
			return nil, err
		}
		lines++
	}
	if lines == 0 {
		return bases, nil // no request succeeded: no latency to draw
	}
	lp.NominalX(percentileNames...)
	if _, err := save(lp, dir, stem+"-latency"); err != nil {
		return nil, err
	}
	return append(bases, stem+"-latency"), nil
}

// logY puts p's y axis on a log scale.
func logY(p *plot.Plot) {
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Legend.Left = true
}

// addPercentiles adds one line of percentiles (x = 0 … 4) to p.
func addPercentiles(p *plot.Plot, i int, name string, pc Percentiles) error {
	var xys plotter.XYs
	for j, v := range percentileValues(pc) {
		xys = append(xys, plotter.XY{X: float64(j), Y: max(v, 0.001)})
	}
	l, s, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	l.Color, s.Color, s.Shape = plotutil.Color(i), plotutil.Color(i), plotutil.Shape(i)
	p.Add(l, s)
	p.Legend.Add(name, l, s)
	return nil
}

// plainTicks are gonum's default ticks labelled without decimals that say
// nothing ("75000", not "75000.00").
type plainTicks struct{}

// Ticks returns the default ticks with plain labels.
func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'f', -1, 64)
		}
	}
	return ts
}
