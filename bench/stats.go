package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Stat summarises a series of measurements: how many, the median, the smallest and the largest.
type Stat struct {
	N                int
	Median, Min, Max float64
}

// Summarize returns the Stat of vals (the zero Stat for none). An even count's median is the
// mean of the two middle values.
func Summarize(vals []float64) Stat {
	if len(vals) == 0 {
		return Stat{}
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stat{N: len(s), Median: m, Min: s[0], Max: s[len(s)-1]}
}

// Ratio is a's median over b's, or NaN when b has none.
func Ratio(a, b Stat) float64 {
	if b.N == 0 || b.Median == 0 || a.N == 0 {
		return math.NaN()
	}
	return a.Median / b.Median
}

// ms converts a duration to milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fmtNum prints v with a precision that suits its size (3 significant digits, at least one
// decimal below 100), or "-" for NaN.
func fmtNum(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// fmtRatio prints a ratio with two decimals, or "-" for NaN.
func fmtRatio(r float64) string {
	if math.IsNaN(r) {
		return "-"
	}
	return fmt.Sprintf("%.2f", r)
}

// Goal is a ratio the issue sets, and whether the run met it.
type Goal struct {
	What   string  // e.g. "wgns exec / ip netns exec"
	Ratio  float64 // measured
	Limit  float64
	AtMost bool // the ratio must be <= Limit (else >= Limit)
}

// Met reports whether the measured ratio satisfies the goal.
func (g Goal) Met() bool {
	if math.IsNaN(g.Ratio) {
		return false
	}
	if g.AtMost {
		return g.Ratio <= g.Limit
	}
	return g.Ratio >= g.Limit
}

// String is the goal as one line: "wgns exec / ip netns exec = 1.32 (goal <= 1.10): NOT MET".
func (g Goal) String() string {
	verdict := "met"
	if !g.Met() {
		verdict = "NOT MET"
	}
	return fmt.Sprintf("%s = %s (goal %s): %s", g.What, fmtRatio(g.Ratio), g.limitText(), verdict)
}

// limitText is the goal's bound with its comparison: ">= 0.95", "<= 1.10".
func (g Goal) limitText() string {
	op := ">="
	if g.AtMost {
		op = "<="
	}
	return fmt.Sprintf("%s %.2f", op, g.Limit)
}

// interleave runs each of fns once per round for rounds rounds, alternating the order every
// round (A B, B A, A B, ...) so that neither always follows the other. progress, if not nil,
// is called after each round.
func interleave(rounds int, fns []func(), progress func(round int)) {
	for r := 0; r < rounds; r++ {
		if r%2 == 0 {
			for _, f := range fns {
				f()
			}
		} else {
			for i := len(fns) - 1; i >= 0; i-- {
				fns[i]()
			}
		}
		if progress != nil {
			progress(r + 1)
		}
	}
}
