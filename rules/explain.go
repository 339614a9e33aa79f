package rules

import (
	"fmt"
	"slices"
	"strings"

	"github.com/payrouter/payrouter"
)

// Explanation is Decide's outcome with its workings, for people: the rules
// tried before the match and why each did not match, the candidates with
// their expected fees, and the dropped ones with why. It is what
// `payrouter route explain` prints and POST /v1/routing/explain returns.
type Explanation struct {
	Rule         string `json:"rule"`
	RulesVersion string `json:"rules_version"`
	Strategy     string `json:"strategy,omitempty"`
	Reason       string `json:"reason"`
	// Considered lists the rules tried, in order, up to the match (at most
	// MaxConsidered non-matching ones; NotShown counts the rest).
	Considered []Considered          `json:"considered"`
	NotShown   int                   `json:"considered_not_shown,omitempty"`
	Candidates []ExplainedCandidate  `json:"candidates"`
	Dropped    []Dropped             `json:"dropped"`
	Currency   payrouter.Currency    `json:"currency"`
	Amount     int64                 `json:"amount"`
	Method     payrouter.Method      `json:"method"`
	Capture    payrouter.CaptureMode `json:"capture,omitempty"`
	Pinned     string                `json:"pinned,omitempty"`
	Metadata   map[string]string     `json:"metadata,omitempty"`
	// Scores: adaptive rules only, the live figures behind the order.
	Scores []Score `json:"scores,omitempty"`
}

// Considered is one rule tried.
type Considered struct {
	Rule    string `json:"rule"`
	Line    int    `json:"line"`
	Matched bool   `json:"matched"`
	Why     string `json:"why"`
}

// ExplainedCandidate is a candidate with its expected fee in minor units
// (null when the fee model has no entry) and, for weighted rules, its weight.
type ExplainedCandidate struct {
	Provider    string `json:"provider"`
	ExpectedFee *int64 `json:"expected_fee"`
	Weight      int64  `json:"weight,omitempty"`
}

// MaxConsidered bounds the non-matching rules an Explanation lists.
const MaxConsidered = 20

// Explain is Decide with reasons. It allocates; use Decide on the payment
// path. The outcome is Decide's own (it calls it), so explain and routing
// never disagree.
func (rs *RuleSet) Explain(in *Input) Explanation {
	var d Decision
	rs.Decide(in, &d)
	e := Explanation{
		Rule: d.Rule, RulesVersion: d.Version, Strategy: d.Strategy, Reason: d.Reason,
		Considered: []Considered{}, Candidates: []ExplainedCandidate{}, Dropped: append([]Dropped{}, d.Dropped...),
		Currency: in.Currency, Amount: in.Amount, Method: in.Method, Capture: in.Capture, Pinned: in.Pinned, Metadata: in.Metadata,
		Scores: d.Scores,
	}
	if ar := d.AdaptiveReason(); ar != "" {
		e.Reason += "; " + ar
	}
	shown := 0
	for i := range rs.rules {
		r := &rs.rules[i]
		why := whyNot(r.src, in)
		if why == "" {
			e.Considered = append(e.Considered, Considered{Rule: r.name, Line: r.src.Pos.Line, Matched: true, Why: r.desc})
			break
		}
		if shown < MaxConsidered {
			e.Considered = append(e.Considered, Considered{Rule: r.name, Line: r.src.Pos.Line, Why: why})
			shown++
		} else {
			e.NotShown++
		}
	}
	if rs.def != nil && d.Rule == "default" {
		e.Considered = append(e.Considered, Considered{Rule: "default", Line: rs.def.src.Pos.Line, Matched: true, Why: "no rule matched"})
	}
	var weights map[string]int64
	if d.Strategy == string(Weighted) {
		weights = map[string]int64{}
		for _, p := range rs.ruleByName(d.Rule).Providers {
			weights[p.Name] = p.Weight
		}
	}
	for _, c := range d.Candidates {
		ec := ExplainedCandidate{Provider: c.Provider, Weight: weights[c.Provider]}
		if c.FeeKnown {
			fee := c.ExpectedFee
			ec.ExpectedFee = &fee
		}
		e.Candidates = append(e.Candidates, ec)
	}
	return e
}

func (rs *RuleSet) ruleByName(name string) *Rule {
	if rs.def != nil && name == "default" {
		return rs.def.src
	}
	for i := range rs.rules {
		if rs.rules[i].name == name {
			return rs.rules[i].src
		}
	}
	return &Rule{}
}

// whyNot says why rule r does not match in ("" when it does). It is the
// slow, readable twin of RuleSet.match; the tests check they agree.
func whyNot(r *Rule, in *Input) string {
	m := &r.Match
	if len(m.Currencies) > 0 && !slices.Contains(m.Currencies, in.Currency) {
		return fmt.Sprintf("currency %s not in [%s]", in.Currency, strings.Join(strs(m.Currencies), ", "))
	}
	if len(m.Methods) > 0 && !slices.Contains(m.Methods, in.Method) {
		return fmt.Sprintf("method %s not in [%s]", in.Method, strings.Join(strs(m.Methods), ", "))
	}
	if a := m.Amount; a != nil {
		if in.Amount < a.Min {
			return fmt.Sprintf("amount %d below min %d", in.Amount, a.Min)
		}
		if in.Amount > a.Max {
			return fmt.Sprintf("amount %d above max %d", in.Amount, a.Max)
		}
	}
	if len(m.Countries) > 0 && !slices.Contains(m.Countries, in.Country) {
		return fmt.Sprintf("country %q not in [%s]", in.Country, strings.Join(m.Countries, ", "))
	}
	if len(m.Merchants) > 0 && !slices.Contains(m.Merchants, in.MerchantID) {
		return fmt.Sprintf("merchant %q not in [%s]", in.MerchantID, strings.Join(m.Merchants, ", "))
	}
	for _, mm := range m.Metadata {
		v, ok := in.Metadata[mm.Key]
		if !ok {
			return fmt.Sprintf("metadata %q missing", mm.Key)
		}
		if !slices.Contains(mm.Values, v) {
			return fmt.Sprintf("metadata %q=%q not in [%s]", mm.Key, v, strings.Join(mm.Values, ", "))
		}
	}
	return ""
}
