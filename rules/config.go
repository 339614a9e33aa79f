// Package rules is payrouter's routing: ops write rules in YAML (the
// `rules`, `default` and `fees` sections of config.yaml); Parse reads them
// with positions, Check finds mistakes statically, Compile builds an
// immutable RuleSet, and RuleSet.Decide turns a payment into an ordered
// candidate list with a reason, without allocating.
//
// Evaluation: rules are tried top-down, the first whose every matcher holds
// wins, and `default` applies when none does. Each rule's strategy orders
// its providers: priority (as written), cheapest (expected fee ascending,
// ties in written order) or weighted (a deterministic split by payment id).
// Candidates the payment cannot go to (capability, card token, pin) are
// moved to Decision.Dropped with the reason.
package rules

import (
	"fmt"
	"strings"
	"time"

	"github.com/payrouter/payrouter"
)

// Pos is a 1-based position in the config file; Col 0 means unknown.
type Pos struct {
	Line int `json:"line"`
	Col  int `json:"col"`
}

// Strategy orders a rule's providers.
type Strategy string

const (
	// Priority keeps the order written.
	Priority Strategy = "priority"
	// Cheapest orders by expected fee ascending; ties (and unknown fees,
	// which rank after every known one) keep the written order.
	Cheapest Strategy = "cheapest"
	// Weighted picks the first provider by hashing the payment id in
	// proportion to the weights; the others follow by descending weight.
	Weighted Strategy = "weighted"
	// Adaptive ranks by the approval rate measured live per provider ×
	// method × currency (Thompson sampling while any candidate has fewer
	// than MinSamples, then the best measured with a bounded exploration
	// share); see Adaptive and docs in the README.
	Adaptive Strategy = "adaptive"
)

// Objective is what the adaptive strategy maximises.
type Objective string

const (
	// ObjectiveApproval ranks by approval rate.
	ObjectiveApproval Objective = "approval"
	// ObjectiveNetRevenue ranks by approval rate × (amount − expected fee).
	ObjectiveNetRevenue Objective = "net_revenue"
)

// AdaptiveParams tune the adaptive strategy. Explore is in basis points of
// payments (0.05 in YAML = 500): once every candidate has MinSamples, that
// share of payments goes first to a candidate other than the best.
type AdaptiveParams struct {
	Window     time.Duration
	MinSamples int64
	ExploreBP  int64
	Objective  Objective
	Pos        Pos
}

// DefaultAdaptive is what an adaptive rule without an adaptive section uses:
// window 15m, min_samples 50, explore 0.05, objective approval.
func DefaultAdaptive() AdaptiveParams {
	return AdaptiveParams{Window: 15 * time.Minute, MinSamples: 50, ExploreBP: 500, Objective: ObjectiveApproval}
}

// Limits of the adaptive window: the approval counters keep one hour.
const (
	MinAdaptiveWindow = time.Minute
	MaxAdaptiveWindow = time.Hour
)

// Config is the parsed rules, default and fees sections of one file. It is
// plain data with positions: Check inspects it, Compile turns it into a
// RuleSet.
type Config struct {
	File    string
	Rules   []Rule
	Default *Rule // nil when the file has no default section
	Fees    []FeeEntry
}

// Rule is one routing rule. The default section is a Rule named "default"
// with an empty Match.
type Rule struct {
	Name         string
	Description  string
	Pos          Pos // the rule's mapping
	Match        Match
	Strategy     Strategy
	StrategyPos  Pos
	Providers    []ProviderRef
	ProvidersPos Pos // the providers key; zero when absent
	// Adaptive holds the adaptive strategy's parameters (nil: defaults, or
	// not adaptive).
	Adaptive *AdaptiveParams
}

// Match holds a rule's matchers; a nil/empty field matches anything.
type Match struct {
	Pos        Pos
	Currencies []payrouter.Currency
	Methods    []payrouter.Method
	Amount     *AmountRange
	Countries  []string // ISO 3166-1 alpha-2, upper case
	Merchants  []string
	Metadata   []MetadataMatch // all must hold

	CurrencyPos, MethodPos, CountryPos, MerchantPos, MetadataPos Pos
}

// AmountRange is an inclusive range in minor units of the payment's
// currency. Min defaults to 0 and Max to payrouter.MaxAmount.
type AmountRange struct {
	Min, Max       int64
	HasMin, HasMax bool
	Pos            Pos
}

// MetadataMatch holds when the payment's metadata has Key with one of
// Values (one value: equals; several: in).
type MetadataMatch struct {
	Key    string
	Values []string
	Pos    Pos
}

// ProviderRef is one candidate of a rule. Weight is meaningful for the
// weighted strategy only.
type ProviderRef struct {
	Name      string
	Weight    int64
	HasWeight bool
	Pos       Pos
	WeightPos Pos
}

// FeeEntry is the fee model of one provider for one method: BP basis points
// of the amount plus Fixed minor units per currency (a currency without a
// fixed entry has no fixed part).
type FeeEntry struct {
	Provider string
	Method   payrouter.Method
	BP       int64
	Fixed    map[payrouter.Currency]int64
	Pos      Pos // the method key
	// ProviderPos is the provider key.
	ProviderPos Pos
}

// Finding is one problem in a rules file: a parse error, or a static check
// result. Severity is "error" (the file must not go live) or "warning".
type Finding struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Col      int    `json:"col"`
	Rule     string `json:"rule,omitempty"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

// Severities.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

func (f Finding) where() string {
	var b strings.Builder
	b.WriteString(f.File)
	if f.Line > 0 {
		fmt.Fprintf(&b, ":%d", f.Line)
		if f.Col > 0 {
			fmt.Fprintf(&b, ":%d", f.Col)
		}
	}
	return b.String()
}

// String renders `file:line:col: severity: rule "x": message`.
func (f Finding) String() string {
	s := f.where() + ": " + f.Severity + ": "
	if f.Rule != "" {
		s += fmt.Sprintf("rule %q: ", f.Rule)
	}
	return s + f.Message
}

// Error is what Parse and Compile return for an invalid file: every problem
// found, not only the first.
type Error struct {
	Findings []Finding
}

// Error renders one line per problem: `file:line:col: rule "x": message`.
func (e *Error) Error() string {
	lines := make([]string, len(e.Findings))
	for i, f := range e.Findings {
		s := f.where() + ": "
		if f.Rule != "" {
			s += fmt.Sprintf("rule %q: ", f.Rule)
		}
		lines[i] = s + f.Message
	}
	return strings.Join(lines, "\n")
}
