package recon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/payrouter/payrouter"
)

// FeeDrift compares, for one provider × method × currency, the fees the
// provider actually took (settled payment lines joined to a ledger payment
// whose amount matched) with the fee model the router routes by (the
// rules' fee table), and fits the fee that would have matched.
type FeeDrift struct {
	Provider string             `json:"provider"`
	Method   payrouter.Method   `json:"method"`
	Currency payrouter.Currency `json:"currency"`
	Count    int                `json:"count"`
	Volume   int64              `json:"volume"`   // captured amounts, minor units
	Expected int64              `json:"expected"` // the rules' fees
	Actual   int64              `json:"actual"`   // settled fees
	Drift    int64              `json:"drift"`    // actual − expected
	// DriftBP is Drift in basis points of Volume (rounded toward zero).
	DriftBP int64 `json:"drift_bp"`
	// SuggestBP and SuggestFixed are the fitted fee (basis points + fixed
	// minor units, the rules' model); Exact: it reproduces every line.
	SuggestBP    int64 `json:"suggest_bp"`
	SuggestFixed int64 `json:"suggest_fixed"`
	Exact        bool  `json:"exact"`
}

type feePoint struct{ amount, fee int64 }

// FeeDrifts lists the drift of every provider × method × currency with
// usable lines, sorted.
func (rep *Report) FeeDrifts() []FeeDrift {
	type key struct {
		p string
		m payrouter.Method
		c payrouter.Currency
	}
	groups := map[key]*FeeDrift{}
	points := map[key][]feePoint{}
	for _, l := range rep.Lines {
		if l.Type != "payment" || l.PaymentID == "" || (l.Class != Matched && l.Class != FeeMismatch) || l.LedgerAmount <= 0 {
			continue
		}
		k := key{l.Provider, l.Method, l.Currency}
		d := groups[k]
		if d == nil {
			d = &FeeDrift{Provider: l.Provider, Method: l.Method, Currency: l.Currency}
			groups[k] = d
		}
		d.Count++
		d.Volume += l.LedgerAmount
		d.Expected += l.ExpectedFee
		d.Actual += l.SettledFee
		points[k] = append(points[k], feePoint{l.LedgerAmount, l.SettledFee})
	}
	out := make([]FeeDrift, 0, len(groups))
	for k, d := range groups {
		d.Drift = d.Actual - d.Expected
		if d.Volume > 0 {
			d.DriftBP = d.Drift * 10000 / d.Volume
		}
		d.SuggestBP, d.SuggestFixed, d.Exact = fitFee(points[k])
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		if a.Method != b.Method {
			return a.Method < b.Method
		}
		return a.Currency < b.Currency
	})
	return out
}

// feeOf is the rules' fee model (rules.ComputeFee): bp half up plus fixed.
func feeOf(amount, bp, fixed int64) int64 { return (amount*bp+5000)/10000 + fixed }

// fitFee fits bp + fixed to the points: least squares in exact rationals
// (math/big, no float), rounded, then the percent-only fit; the candidate
// with the smaller total error wins (exact when it is zero).
func fitFee(ps []feePoint) (bp, fixed int64, exact bool) {
	errOf := func(bp, fixed int64) int64 {
		var e int64
		for _, p := range ps {
			d := feeOf(p.amount, bp, fixed) - p.fee
			if d < 0 {
				d = -d
			}
			e += d
		}
		return e
	}
	var sa, sf big.Int
	for _, p := range ps {
		sa.Add(&sa, big.NewInt(p.amount))
		sf.Add(&sf, big.NewInt(p.fee))
	}
	round := func(r *big.Rat) int64 {
		n := new(big.Int).Mul(r.Num(), big.NewInt(2))
		n.Add(n, r.Denom())
		d := new(big.Int).Mul(r.Denom(), big.NewInt(2))
		return new(big.Int).Div(n, d).Int64() // floor(x + 1/2)
	}
	// percent only: bp = Σf·10000 / Σa
	bp = round(new(big.Rat).SetFrac(new(big.Int).Mul(&sf, big.NewInt(10000)), &sa))
	best := errOf(bp, 0)
	n := big.NewInt(int64(len(ps)))
	var saf, saa big.Int
	for _, p := range ps {
		a, f := big.NewInt(p.amount), big.NewInt(p.fee)
		saf.Add(&saf, new(big.Int).Mul(a, f))
		saa.Add(&saa, new(big.Int).Mul(a, a))
	}
	den := new(big.Int).Sub(new(big.Int).Mul(n, &saa), new(big.Int).Mul(&sa, &sa))
	if den.Sign() != 0 {
		num := new(big.Int).Sub(new(big.Int).Mul(n, &saf), new(big.Int).Mul(&sa, &sf))
		slope := new(big.Rat).SetFrac(num, den) // fee per minor unit
		b2 := round(new(big.Rat).Mul(slope, big.NewRat(10000, 1)))
		// fixed = (Σf − slope·Σa) / n
		fx := new(big.Rat).Sub(new(big.Rat).SetInt(&sf), new(big.Rat).Mul(slope, new(big.Rat).SetInt(&sa)))
		f2 := round(fx.Quo(fx, new(big.Rat).SetInt(n)))
		if b2 >= 0 && f2 >= 0 {
			if e := errOf(b2, f2); e < best {
				bp, fixed, best = b2, f2, e
			}
		}
	}
	return bp, fixed, best == 0
}

// percent renders basis points as the YAML percent the rules parse
// exactly (290 → "2.9").
func percent(bp int64) string {
	s := payrouter.FormatDecimal(bp, 2)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// WriteFeeDrift writes the drift table.
func WriteFeeDrift(w io.Writer, ds []FeeDrift) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "PROVIDER\tMETHOD\tCUR\tLINES\tVOLUME\tFEE EXPECTED\tFEE ACTUAL\tDRIFT\tDRIFT BP\tFITS\t\n")
	for _, d := range ds {
		fits := fmt.Sprintf("%s%% + %s", percent(d.SuggestBP), dec(d.SuggestFixed, d.Currency))
		if !d.Exact {
			fits += " (approx.)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t\n", d.Provider, d.Method, d.Currency, d.Count, dec(d.Volume, d.Currency),
			dec(d.Expected, d.Currency), dec(d.Actual, d.Currency), dec(d.Drift, d.Currency), d.DriftBP, fits)
	}
	return tw.Flush()
}

// WriteFeeSuggestion writes the `fees:` table (config.yaml's, which the
// rules parse) that would have matched the settlements: one percent per
// provider × method (of the largest volume when currencies disagree, said
// in a comment) and the fixed amounts per currency.
func WriteFeeSuggestion(w io.Writer, ds []FeeDrift) error {
	type pm struct {
		p string
		m payrouter.Method
	}
	byPM := map[pm][]FeeDrift{}
	var keys []pm
	for _, d := range ds {
		k := pm{d.Provider, d.Method}
		if byPM[k] == nil {
			keys = append(keys, k)
		}
		byPM[k] = append(byPM[k], d)
	}
	fmt.Fprintln(w, "fees:")
	last := ""
	for _, k := range keys {
		g := byPM[k]
		if k.p != last {
			fmt.Fprintf(w, "  %s:\n", k.p)
			last = k.p
		}
		main := g[0]
		for _, d := range g {
			if d.Volume > main.Volume {
				main = d
			}
		}
		var fixed []string
		var notes []string
		for _, d := range g {
			if d.SuggestFixed > 0 {
				fixed = append(fixed, fmt.Sprintf("%s: %d", d.Currency, d.SuggestFixed))
			}
			if d.SuggestBP != main.SuggestBP {
				notes = append(notes, fmt.Sprintf("%s fits %s%%", d.Currency, percent(d.SuggestBP)))
			}
			if !d.Exact {
				notes = append(notes, fmt.Sprintf("%s approximate", d.Currency))
			}
		}
		line := fmt.Sprintf("    %s: {percent: %s", k.m, percent(main.SuggestBP))
		if len(fixed) > 0 {
			line += ", fixed: {" + strings.Join(fixed, ", ") + "}"
		}
		line += "}"
		if len(notes) > 0 {
			line += "  # " + strings.Join(notes, "; ")
		}
		fmt.Fprintln(w, line)
	}
	return nil
}

const feesUsage = `usage: payrouter rules fees [flags]

Compares the fees providers actually took (their settlements, joined to the
ledger) with the rules' fee table, per provider × method × currency.
--suggest prints the fees: table that would have matched.

`

// FeesCommand runs `payrouter rules fees`: exit 0, or 2 for bad flags and
// unreadable sources.
func FeesCommand(ctx context.Context, args []string, stdout, stderr io.Writer, deps Deps) int {
	now := time.Now
	if deps.Now != nil {
		now = deps.Now
	}
	fs := flag.NewFlagSet("rules fees", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, feesUsage); fs.PrintDefaults() }
	configPath := fs.String("config", "config.yaml", "config file")
	fromS := fs.String("from", "720h", "window start: RFC 3339 time, or a duration before now")
	toS := fs.String("to", "0s", "window end (exclusive): RFC 3339 time, or a duration before now")
	server := fs.String("server", "", "sandbox: base URL of the running payrouter whose simulators to ask")
	suggest := fs.Bool("suggest", false, "print the fees: table that would have matched")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(err error) int { fmt.Fprintf(stderr, "rules fees: %v\n", err); return 2 }
	t0 := now()
	from, err := parseWhen(*fromS, t0)
	if err != nil {
		return fail(fmt.Errorf("--from: %v", err))
	}
	to, err := parseWhen(*toS, t0)
	if err != nil {
		return fail(fmt.Errorf("--to: %v", err))
	}
	env, closeEnv, err := deps.Open(ctx, *configPath, *server)
	if err != nil {
		return fail(err)
	}
	defer closeEnv()
	entries, err := Fetch(ctx, env.Listers, from, to)
	if err != nil {
		return fail(err)
	}
	var names []string
	for n := range env.Listers {
		names = append(names, n)
	}
	rep, err := Run(ctx, env.Ledger, entries, Options{From: from, To: to, SettleAfter: time.Nanosecond, Providers: names, Fee: env.Fee}, t0)
	if err != nil {
		return fail(err)
	}
	ds := rep.FeeDrifts()
	if *suggest {
		err = WriteFeeSuggestion(stdout, ds)
	} else {
		err = WriteFeeDrift(stdout, ds)
	}
	if err != nil {
		return fail(err)
	}
	return 0
}
