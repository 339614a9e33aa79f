package rules

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/payrouter/payrouter"
)

// NoProvider is the provider a replayed payment is counted under when its
// decision has no candidate (no_route).
const NoProvider = "(none)"

// PaymentInput is the routing input of a stored payment: the attributes it
// was created with. The pin is not stored, so replays ignore it.
func PaymentInput(p *payrouter.Payment) Input {
	return Input{
		PaymentID: p.ID, MerchantID: p.MerchantID, Amount: p.Amount, Currency: p.Currency, Method: p.Method,
		Country: p.Country, Metadata: p.Metadata, Capture: p.Capture, Tokens: p.Tokens,
	}
}

// Replay routes stored payments through an old and a new rule set and
// tallies where each would go first (rule and first candidate) and the
// expected fee of that candidate. Not safe for concurrent use.
type Replay struct {
	old, new *RuleSet
	total    int
	changed  int
	rows     map[RouteKey]*ReplayRow
	moves    map[[2]RouteKey]int
	od, nd   Decision
}

// RouteKey is where a payment goes: the rule and the first candidate.
type RouteKey struct {
	Rule     string `json:"rule"`
	Provider string `json:"provider"`
}

// ReplayRow is the traffic of one (rule, provider) under both sets.
type ReplayRow struct {
	RouteKey
	Old ReplaySide `json:"old"`
	New ReplaySide `json:"new"`
}

// ReplaySide counts payments and sums expected fees (minor units, per
// currency); UnknownFee counts payments whose fee the model does not know.
type ReplaySide struct {
	Count      int                          `json:"count"`
	Fees       map[payrouter.Currency]int64 `json:"fees"`
	UnknownFee int                          `json:"unknown_fee"`
}

// Move is a number of payments that change route.
type Move struct {
	From  RouteKey `json:"from"`
	To    RouteKey `json:"to"`
	Count int      `json:"count"`
}

// ReplayReport is the outcome of a replay.
type ReplayReport struct {
	OldVersion string      `json:"old_version"`
	NewVersion string      `json:"new_version"`
	Total      int         `json:"total"`
	Changed    int         `json:"changed"`
	Rows       []ReplayRow `json:"rows"`
	Moves      []Move      `json:"moves"` // largest first
}

// NewReplay starts a replay of old against new.
func NewReplay(old, new *RuleSet) *Replay {
	return &Replay{old: old, new: new, rows: map[RouteKey]*ReplayRow{}, moves: map[[2]RouteKey]int{}}
}

// Add routes one stored payment through both sets.
func (r *Replay) Add(p *payrouter.Payment) {
	in := PaymentInput(p)
	r.old.Decide(&in, &r.od)
	r.new.Decide(&in, &r.nd)
	ok := r.tally(&r.od, p.Currency, func(row *ReplayRow) *ReplaySide { return &row.Old })
	nk := r.tally(&r.nd, p.Currency, func(row *ReplayRow) *ReplaySide { return &row.New })
	r.total++
	if ok != nk {
		r.changed++
		r.moves[[2]RouteKey{ok, nk}]++
	}
}

func (r *Replay) tally(d *Decision, cur payrouter.Currency, side func(*ReplayRow) *ReplaySide) RouteKey {
	k := RouteKey{Rule: orNone(d.Rule), Provider: NoProvider}
	var fee int64
	known := false
	if len(d.Candidates) > 0 {
		k.Provider = d.Candidates[0].Provider
		fee, known = d.Candidates[0].ExpectedFee, d.Candidates[0].FeeKnown
	}
	row := r.rows[k]
	if row == nil {
		row = &ReplayRow{RouteKey: k, Old: ReplaySide{Fees: map[payrouter.Currency]int64{}}, New: ReplaySide{Fees: map[payrouter.Currency]int64{}}}
		r.rows[k] = row
	}
	s := side(row)
	s.Count++
	switch {
	case known:
		// Each fee is at most about MaxAmount (10^15): a sum overflows only
		// after ~9000 maximal payments, so saturate rather than wrap.
		if s.Fees[cur] > math.MaxInt64-fee {
			s.Fees[cur] = math.MaxInt64
		} else {
			s.Fees[cur] += fee
		}
	case len(d.Candidates) > 0:
		s.UnknownFee++
	}
	return k
}

// Total is the number of payments replayed so far.
func (r *Replay) Total() int { return r.total }

// Report summarizes the replay: rows sorted by rule then provider, moves
// largest first.
func (r *Replay) Report() ReplayReport {
	rep := ReplayReport{OldVersion: r.old.Version(), NewVersion: r.new.Version(), Total: r.total, Changed: r.changed, Rows: []ReplayRow{}, Moves: []Move{}}
	for _, row := range r.rows {
		rep.Rows = append(rep.Rows, *row)
	}
	sort.Slice(rep.Rows, func(i, j int) bool {
		a, b := rep.Rows[i], rep.Rows[j]
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		return a.Provider < b.Provider
	})
	for k, n := range r.moves {
		rep.Moves = append(rep.Moves, Move{From: k[0], To: k[1], Count: n})
	}
	sort.Slice(rep.Moves, func(i, j int) bool {
		a, b := rep.Moves[i], rep.Moves[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.From != b.From {
			return a.From.Rule+"\x00"+a.From.Provider < b.From.Rule+"\x00"+b.From.Provider
		}
		return a.To.Rule+"\x00"+a.To.Provider < b.To.Rule+"\x00"+b.To.Provider
	})
	return rep
}

// Change is one structural difference between two rule files.
type Change struct {
	Kind   string `json:"kind"` // added | removed | changed | moved
	Rule   string `json:"rule"` // "default", or "fees provider.method" for fees
	Line   int    `json:"line"` // in the new file (old for removed)
	Detail string `json:"detail,omitempty"`
}

// String renders "+ rule x (line 3): …", "- rule y (old line 9): …", "~ rule z (line 5): …".
func (c Change) String() string {
	sign := map[string]string{"added": "+", "removed": "-", "changed": "~", "moved": "↕"}[c.Kind]
	where := "line"
	if c.Kind == "removed" {
		where = "old line"
	}
	s := fmt.Sprintf("%s %s (%s %d)", sign, c.Rule, where, c.Line)
	if c.Detail != "" {
		s += ": " + c.Detail
	}
	return s
}

// Diff lists the structural differences from old to new: rules added,
// removed, changed (matchers, strategy, providers) or moved (evaluation
// order), the default, and fee entries. Rules are paired by name.
func Diff(old, new *Config) []Change {
	var out []Change
	oldIdx := map[string]int{}
	for i, r := range old.Rules {
		oldIdx[r.Name] = i
	}
	newIdx := map[string]int{}
	for i, r := range new.Rules {
		newIdx[r.Name] = i
	}
	// Relative order of rules present in both.
	var oldCommon, newCommon []string
	for _, r := range old.Rules {
		if _, ok := newIdx[r.Name]; ok {
			oldCommon = append(oldCommon, r.Name)
		}
	}
	for _, r := range new.Rules {
		if _, ok := oldIdx[r.Name]; ok {
			newCommon = append(newCommon, r.Name)
		}
	}
	for i := range new.Rules {
		nr := &new.Rules[i]
		oi, ok := oldIdx[nr.Name]
		if !ok {
			out = append(out, Change{Kind: "added", Rule: "rule " + nr.Name, Line: nr.Pos.Line, Detail: describeRule(nr)})
			continue
		}
		if d := ruleDelta(&old.Rules[oi], nr); d != "" {
			out = append(out, Change{Kind: "changed", Rule: "rule " + nr.Name, Line: nr.Pos.Line, Detail: d})
		}
		if slices.Index(oldCommon, nr.Name) != slices.Index(newCommon, nr.Name) {
			out = append(out, Change{Kind: "moved", Rule: "rule " + nr.Name, Line: nr.Pos.Line,
				Detail: fmt.Sprintf("evaluation order %d → %d among unchanged names", slices.Index(oldCommon, nr.Name)+1, slices.Index(newCommon, nr.Name)+1)})
		}
	}
	for i := range old.Rules {
		or := &old.Rules[i]
		if _, ok := newIdx[or.Name]; !ok {
			out = append(out, Change{Kind: "removed", Rule: "rule " + or.Name, Line: or.Pos.Line, Detail: describeRule(or)})
		}
	}
	switch {
	case old.Default == nil && new.Default != nil:
		out = append(out, Change{Kind: "added", Rule: "default", Line: new.Default.Pos.Line, Detail: describeRule(new.Default)})
	case old.Default != nil && new.Default == nil:
		out = append(out, Change{Kind: "removed", Rule: "default", Line: old.Default.Pos.Line})
	case old.Default != nil:
		if d := ruleDelta(old.Default, new.Default); d != "" {
			out = append(out, Change{Kind: "changed", Rule: "default", Line: new.Default.Pos.Line, Detail: d})
		}
	}
	feeKey := func(f FeeEntry) string { return f.Provider + "." + string(f.Method) }
	oldFees := map[string]FeeEntry{}
	for _, f := range old.Fees {
		oldFees[feeKey(f)] = f
	}
	newFees := map[string]bool{}
	for _, f := range new.Fees {
		newFees[feeKey(f)] = true
		of, ok := oldFees[feeKey(f)]
		switch {
		case !ok:
			out = append(out, Change{Kind: "added", Rule: "fees " + feeKey(f), Line: f.Pos.Line, Detail: describeFee(f)})
		case describeFee(of) != describeFee(f):
			out = append(out, Change{Kind: "changed", Rule: "fees " + feeKey(f), Line: f.Pos.Line, Detail: describeFee(of) + " → " + describeFee(f)})
		}
	}
	for _, f := range old.Fees {
		if !newFees[feeKey(f)] {
			out = append(out, Change{Kind: "removed", Rule: "fees " + feeKey(f), Line: f.Pos.Line, Detail: describeFee(f)})
		}
	}
	return out
}

func describeProviders(r *Rule) string {
	names := make([]string, len(r.Providers))
	for i, p := range r.Providers {
		names[i] = p.Name
		if p.HasWeight {
			names[i] += fmt.Sprintf(":%d", p.Weight)
		}
	}
	return "[" + strings.Join(names, ", ") + "]"
}

func describeRule(r *Rule) string {
	return fmt.Sprintf("%s; %s %s", describeMatch(&r.Match), r.Strategy, describeProviders(r))
}

func ruleDelta(a, b *Rule) string {
	var d []string
	if x, y := describeMatch(&a.Match), describeMatch(&b.Match); x != y {
		d = append(d, "match "+x+" → "+y)
	}
	if a.Strategy != b.Strategy {
		d = append(d, fmt.Sprintf("strategy %s → %s", a.Strategy, b.Strategy))
	}
	if x, y := describeProviders(a), describeProviders(b); x != y {
		d = append(d, "providers "+x+" → "+y)
	}
	return strings.Join(d, "; ")
}

func describeFee(f FeeEntry) string {
	s := fmt.Sprintf("%s%%", payrouter.FormatDecimal(f.BP, 2))
	curs := make([]string, 0, len(f.Fixed))
	for c := range f.Fixed {
		curs = append(curs, string(c))
	}
	sort.Strings(curs)
	for _, c := range curs {
		s += fmt.Sprintf(" + %s %d", c, f.Fixed[payrouter.Currency(c)])
	}
	return s
}
