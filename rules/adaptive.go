package rules

import (
	"math"
	"strconv"
	"time"

	"github.com/payrouter/payrouter"
)

// Approvals reports measured outcomes of attempts that reached a provider:
// approved of attempts within the last window, per provider × method ×
// currency. The router records them (internal/approval keeps the counters,
// shared through Redis when configured); Decide only reads. Implementations
// must not block and must not allocate.
type Approvals interface {
	Approval(provider string, method payrouter.Method, currency payrouter.Currency, window time.Duration) (approved, attempts int64)
}

// Score is what the adaptive strategy saw of one candidate: the measured
// counts and the value it ranked by (a Thompson sample of the approval rate
// while any candidate has fewer than min_samples, else the measured rate;
// times the net amount under the net_revenue objective). Value is a ranking
// key only, never money.
type Score struct {
	Provider string  `json:"provider"`
	Approved int64   `json:"approved"`
	Attempts int64   `json:"attempts"`
	Value    float64 `json:"value"`
}

// AdaptiveMode says how an adaptive decision ranked its candidates.
type AdaptiveMode string

const (
	// ModeLearning: some candidate has fewer than min_samples; candidates
	// are ranked by a Thompson sample of their Beta(1+approved,
	// 1+declined) posterior (with at most min_samples of evidence each), so
	// unknown ones are explored.
	ModeLearning AdaptiveMode = "learning"
	// ModeExploit: every candidate has min_samples; ranked by measured
	// rate (ties in priority order).
	ModeExploit AdaptiveMode = "exploit"
	// ModeExplore: this payment fell in the explore share and goes first
	// to a candidate other than the best ranked (learning or not).
	ModeExplore AdaptiveMode = "explore"
)

// orderAdaptive ranks c by the rule's objective over the measured
// approvals and records the figures in out. The random draws come from the
// payment id (like weighted), so one payment always gets the same order;
// across payments they are uniform. No allocation beyond out's slices.
func (r *crule) orderAdaptive(in *Input, c []Candidate, out *Decision) {
	a := &r.adaptive
	out.Scores = out.Scores[:0]
	if len(c) == 0 {
		return
	}
	rng := splitmix{s: hashID(in.PaymentID) ^ r.salt}
	learning := false
	for i := range c {
		var ok, n int64
		if in.Approvals != nil {
			ok, n = in.Approvals.Approval(c[i].Provider, in.Method, in.Currency, a.Window)
		}
		if ok > n {
			ok = n
		}
		if n < a.MinSamples {
			learning = true
		}
		out.Scores = append(out.Scores, Score{Provider: c[i].Provider, Approved: ok, Attempts: n})
	}
	for i := range out.Scores {
		s := &out.Scores[i]
		var p float64
		if learning {
			// Evidence beyond min_samples is scaled down to min_samples, so a
			// candidate with many samples does not drown one still learning
			// (a plain posterior makes the split a Pólya urn: whoever leads
			// early keeps most of the traffic, whatever the priority).
			ok, n := s.Approved, s.Attempts
			if n > a.MinSamples {
				ok, n = ok*a.MinSamples/n, a.MinSamples
			}
			p = rng.beta(float64(1+ok), float64(1+n-ok))
		} else {
			p = float64(s.Approved) / float64(s.Attempts)
		}
		if a.Objective == ObjectiveNetRevenue {
			p *= float64(max(in.Amount-c[i].ExpectedFee, 0))
		}
		s.Value = p
	}
	// Rank candidates and their scores together, by value, then priority.
	for i := 1; i < len(c); i++ {
		for j := i; j > 0 && better(&out.Scores[j], &out.Scores[j-1], c[j].pos, c[j-1].pos); j-- {
			c[j], c[j-1] = c[j-1], c[j]
			out.Scores[j], out.Scores[j-1] = out.Scores[j-1], out.Scores[j]
		}
	}
	out.Mode = ModeExploit
	if learning {
		out.Mode = ModeLearning
	}
	// The explore share applies while learning too: Thompson sampling alone
	// would starve a candidate whose few samples look bad, and it could
	// never show that it recovered.
	if len(c) > 1 && rng.next()%10000 < uint64(a.ExploreBP) {
		// One of the others, uniformly, goes first; the rest keep their rank.
		k := 1 + int(rng.next()%uint64(len(c)-1))
		for j := k; j > 0; j-- {
			c[j], c[j-1] = c[j-1], c[j]
			out.Scores[j], out.Scores[j-1] = out.Scores[j-1], out.Scores[j]
		}
		out.Mode = ModeExplore
	}
}

func better(a, b *Score, apos, bpos int) bool {
	if a.Value != b.Value {
		return a.Value > b.Value
	}
	return apos < bpos
}

// splitmix is SplitMix64: a tiny, allocation-free generator seeded per
// payment.
type splitmix struct{ s uint64 }

func (g *splitmix) next() uint64 {
	g.s += 0x9e3779b97f4a7c15
	z := g.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// float is uniform in (0, 1).
func (g *splitmix) float() float64 {
	return (float64(g.next()>>11) + 0.5) / (1 << 53)
}

func (g *splitmix) normal() float64 {
	// Box–Muller; one of the pair is enough here.
	return math.Sqrt(-2*math.Log(g.float())) * math.Cos(2*math.Pi*g.float())
}

// gamma draws Gamma(shape, 1) for shape ≥ 1 (Marsaglia and Tsang, 2000).
func (g *splitmix) gamma(shape float64) float64 {
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := g.normal()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := g.float()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}

// beta draws Beta(a, b) for a, b ≥ 1.
func (g *splitmix) beta(a, b float64) float64 {
	x := g.gamma(a)
	return x / (x + g.gamma(b))
}

// AdaptiveReason renders the figures of an adaptive decision for
// route.reason, e.g. "adaptive by approval (15m): xendit 93% of 380,
// stripe 71% of 412 → xendit; explore 5%". Empty for other strategies. It
// allocates, so the caller formats it once per payment, outside Decide.
func (d *Decision) AdaptiveReason() string {
	if d.Mode == "" || len(d.Scores) == 0 {
		return ""
	}
	a := d.Adaptive
	b := make([]byte, 0, 128)
	b = append(b, "adaptive by "...)
	b = append(b, a.Objective...)
	b = append(b, " ("...)
	b = append(b, a.Window.String()...)
	b = append(b, "): "...)
	for i, s := range d.Scores {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, s.Provider...)
		b = append(b, ' ')
		if s.Attempts == 0 {
			b = append(b, "no samples"...)
			continue
		}
		b = strconv.AppendInt(b, s.Approved*100/s.Attempts, 10)
		b = append(b, "% of "...)
		b = strconv.AppendInt(b, s.Attempts, 10)
	}
	b = append(b, " → "...)
	b = append(b, d.Scores[0].Provider...)
	switch d.Mode {
	case ModeLearning:
		b = append(b, "; learning: a candidate has fewer than "...)
		b = strconv.AppendInt(b, a.MinSamples, 10)
		b = append(b, " samples, ranked by Thompson sampling"...)
	case ModeExplore:
		b = append(b, "; explore "...)
		b = append(b, payrouter.FormatDecimal(a.ExploreBP, 2)...)
		b = append(b, "%: this payment explores "...)
		b = append(b, d.Scores[0].Provider...)
	case ModeExploit:
		b = append(b, "; explore "...)
		b = append(b, payrouter.FormatDecimal(a.ExploreBP, 2)...)
		b = append(b, '%')
	}
	return string(b)
}
