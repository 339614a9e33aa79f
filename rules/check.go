package rules

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// Check finds mistakes in a parsed rules file without running it, sorted by
// position:
//
//   - error: a provider not in caps (unknown provider); a rule with no
//     providers; a weighted rule whose weight is missing or not positive;
//     a provider listed twice in one rule; a provider that can take none of
//     the payments the rule matches (it restricts method and/or currency
//     and the provider supports no such combination); a rule shadowed by
//     earlier ones (every payment it matches is matched earlier, so it is
//     unreachable), including a later rule made dead by the amount ranges
//     of earlier rules that together cover its range.
//   - warning: an amount range partly taken by an earlier rule with the
//     same other matchers; a weight on a non-weighted rule; a cheapest rule
//     with providers that have no fee for any of its methods (ranked last);
//     fees for a provider not in caps; a default that no payment reaches;
//     no default section (unmatched payments get no_route).
//
// caps nil skips the provider checks. Parse errors are Parse's; Check
// expects a parsed Config.
func Check(cfg *Config, caps map[string]providers.Capabilities) []Finding {
	c := checker{cfg: cfg, caps: caps}
	c.out = append(c.out, compileFindings(cfg, caps)...)
	all := c.allRules()
	for _, r := range all {
		c.capabilities(r)
		c.weights(r)
		c.fees(r)
	}
	c.shadowing()
	c.feeProviders()
	if cfg.Default == nil {
		c.add(Pos{Line: 1}, "", SeverityWarning, "no default section: a payment no rule matches fails with no_route")
	}
	sort.SliceStable(c.out, func(i, j int) bool {
		if c.out[i].Line != c.out[j].Line {
			return c.out[i].Line < c.out[j].Line
		}
		return c.out[i].Col < c.out[j].Col
	})
	return c.out
}

type checker struct {
	cfg  *Config
	caps map[string]providers.Capabilities
	out  []Finding
}

func (c *checker) add(p Pos, rule, sev, format string, args ...any) {
	c.out = append(c.out, Finding{File: c.cfg.File, Line: p.Line, Col: p.Col, Rule: rule, Severity: sev, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) allRules() []*Rule {
	var all []*Rule
	for i := range c.cfg.Rules {
		all = append(all, &c.cfg.Rules[i])
	}
	if c.cfg.Default != nil {
		all = append(all, c.cfg.Default)
	}
	return all
}

// compileFindings are the problems that make a rule set impossible to run;
// Compile refuses them and Check reports them.
func compileFindings(cfg *Config, caps map[string]providers.Capabilities) []Finding {
	c := checker{cfg: cfg, caps: caps}
	for _, r := range c.allRules() {
		if len(r.Providers) == 0 {
			c.add(r.ProvidersPos, r.Name, SeverityError, "empty candidate list: the rule has no providers")
		}
		seen := map[string]bool{}
		for _, p := range r.Providers {
			if seen[p.Name] {
				c.add(p.Pos, r.Name, SeverityError, "provider %q is listed twice", p.Name)
			}
			seen[p.Name] = true
			if caps != nil {
				if _, ok := caps[p.Name]; !ok {
					c.add(p.Pos, r.Name, SeverityError, "unknown provider %q (configured: %s)", p.Name, strings.Join(sortedKeys(caps), ", "))
				}
			}
			if r.Strategy == Weighted {
				switch {
				case !p.HasWeight:
					c.add(p.Pos, r.Name, SeverityError, "weighted strategy: provider %q has no weight (write {name: %s, weight: N})", p.Name, p.Name)
				case p.Weight <= 0:
					c.add(p.WeightPos, r.Name, SeverityError, "weight of %q must be positive, got %d", p.Name, p.Weight)
				}
			}
		}
	}
	return c.out
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}

func (c *checker) weights(r *Rule) {
	if r.Adaptive != nil && r.Strategy != Adaptive {
		c.add(r.Adaptive.Pos, r.Name, SeverityWarning, "adaptive section is ignored: strategy is %s, not adaptive", r.Strategy)
	}
	if r.Strategy == Adaptive && len(r.Providers) == 1 {
		c.add(r.StrategyPos, r.Name, SeverityWarning, "adaptive strategy with one provider has nothing to choose between")
	}
	if r.Strategy == Weighted {
		return
	}
	for _, p := range r.Providers {
		if p.HasWeight {
			c.add(p.WeightPos, r.Name, SeverityWarning, "weight of %q is ignored: strategy is %s, not weighted", p.Name, r.Strategy)
		}
	}
}

// capabilities: a provider that can take none of the (method, currency)
// combinations the rule restricts to is a dead candidate.
func (c *checker) capabilities(r *Rule) {
	if c.caps == nil || (len(r.Match.Methods) == 0 && len(r.Match.Currencies) == 0) {
		return
	}
	for _, p := range r.Providers {
		pc, ok := c.caps[p.Name]
		if !ok {
			continue // unknown provider, reported already
		}
		any := false
		for m, curs := range pc.Methods {
			if len(r.Match.Methods) > 0 && !slices.Contains(r.Match.Methods, m) {
				continue
			}
			for _, cur := range curs {
				if len(r.Match.Currencies) == 0 || slices.Contains(r.Match.Currencies, cur) {
					any = true
				}
			}
		}
		if !any {
			c.add(p.Pos, r.Name, SeverityError, "provider %q cannot take any payment this rule matches (%s): it supports %s",
				p.Name, describeMethodCurrency(&r.Match), describeCaps(pc))
		}
	}
}

func describeMethodCurrency(m *Match) string {
	var parts []string
	if len(m.Methods) > 0 {
		parts = append(parts, "method "+strings.Join(strs(m.Methods), "/"))
	}
	if len(m.Currencies) > 0 {
		parts = append(parts, "currency "+strings.Join(strs(m.Currencies), "/"))
	}
	return strings.Join(parts, ", ")
}

func describeCaps(pc providers.Capabilities) string {
	var parts []string
	for _, m := range payrouter.Methods {
		if curs, ok := pc.Methods[m]; ok && len(curs) > 0 {
			parts = append(parts, string(m)+" in "+strings.Join(strs(curs), "/"))
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, "; ")
}

func (c *checker) fees(r *Rule) {
	if r.Strategy != Cheapest {
		return
	}
	for _, p := range r.Providers {
		has := false
		for _, f := range c.cfg.Fees {
			if f.Provider == p.Name && (len(r.Match.Methods) == 0 || slices.Contains(r.Match.Methods, f.Method)) {
				has = true
			}
		}
		if !has {
			c.add(p.Pos, r.Name, SeverityWarning, "cheapest: no fee for %q for this rule's methods; it ranks after every provider with a known fee", p.Name)
		}
	}
}

func (c *checker) feeProviders() {
	if c.caps == nil {
		return
	}
	warned := map[string]bool{}
	for _, f := range c.cfg.Fees {
		if _, ok := c.caps[f.Provider]; !ok && !warned[f.Provider] {
			warned[f.Provider] = true
			c.add(f.ProviderPos, "", SeverityWarning, "fees for unknown provider %q are never used", f.Provider)
		}
	}
}

// shadowing finds rules no payment can reach. Rule j is dead when the
// earlier rules that contain it on every matcher but amount together cover
// its amount range (one earlier rule containing it outright is the simple
// case). A partial cover by such rules is a warning: part of j's range
// never reaches it.
func (c *checker) shadowing() {
	rules := c.cfg.Rules
	for j := range rules {
		rj := &rules[j]
		lo, hi := amountRange(&rj.Match)
		type cover struct {
			name     string
			line     int
			min, max int64
		}
		var covers []cover
		for i := 0; i < j; i++ {
			ri := &rules[i]
			if !containsExceptAmount(&ri.Match, &rj.Match) {
				continue
			}
			a, b := amountRange(&ri.Match)
			if b < lo || a > hi {
				continue // disjoint ranges
			}
			covers = append(covers, cover{ri.Name, ri.Pos.Line, a, b})
		}
		if len(covers) == 0 {
			continue
		}
		// Walk j's range left to right over the sorted covers.
		sorted := slices.Clone(covers)
		sort.Slice(sorted, func(a, b int) bool { return sorted[a].min < sorted[b].min })
		next, full := lo, false
		for _, cv := range sorted {
			if cv.min > next {
				break
			}
			if cv.max >= hi {
				full = true
				break
			}
			if cv.max+1 > next {
				next = cv.max + 1
			}
		}
		names := make([]string, len(covers))
		for k, cv := range covers {
			names[k] = fmt.Sprintf("%q (line %d)", cv.name, cv.line)
		}
		switch {
		case full && len(covers) == 1:
			c.add(rj.Pos, rj.Name, SeverityError, "unreachable: every payment it matches is matched by the earlier rule %s", names[0])
		case full:
			c.add(rj.Pos, rj.Name, SeverityError, "unreachable: amount range %s is covered by the earlier rules %s", fmtRange(lo, hi), strings.Join(names, ", "))
		default:
			for _, cv := range covers {
				a, b := max(cv.min, lo), min(cv.max, hi)
				c.add(rj.Pos, rj.Name, SeverityWarning, "amount range overlaps the earlier rule %q (line %d) on %s: those payments go to %q", cv.name, cv.line, fmtRange(a, b), cv.name)
			}
		}
	}
	if d := c.cfg.Default; d != nil {
		for i := range rules {
			if matchesEverything(&rules[i].Match) {
				c.add(d.Pos, "default", SeverityWarning, "the default is never used: rule %q (line %d) matches every payment", rules[i].Name, rules[i].Pos.Line)
				break
			}
		}
	}
}

func fmtRange(lo, hi int64) string {
	if hi >= payrouter.MaxAmount {
		return fmt.Sprintf("[%d, max]", lo)
	}
	return fmt.Sprintf("[%d, %d]", lo, hi)
}

func amountRange(m *Match) (int64, int64) {
	if m.Amount == nil {
		return 0, payrouter.MaxAmount
	}
	return m.Amount.Min, m.Amount.Max
}

func matchesEverything(m *Match) bool {
	return len(m.Currencies) == 0 && len(m.Methods) == 0 && m.Amount == nil && len(m.Countries) == 0 && len(m.Merchants) == 0 && len(m.Metadata) == 0
}

// containsExceptAmount reports whether every payment b matches is matched
// by a, ignoring the amount matchers. An absent matcher is the whole
// universe; methods are a closed set, so listing all of them equals none.
func containsExceptAmount(a, b *Match) bool {
	if !subset(strs(b.Methods), strs(a.Methods), len(payrouter.Methods)) {
		return false
	}
	if !subset(strs(b.Currencies), strs(a.Currencies), -1) ||
		!subset(b.Countries, a.Countries, -1) || !subset(b.Merchants, a.Merchants, -1) {
		return false
	}
	// Each of a's metadata conditions must be implied by one of b's.
	for _, am := range a.Metadata {
		implied := false
		for _, bm := range b.Metadata {
			if bm.Key == am.Key && subset(bm.Values, am.Values, -1) {
				implied = true
				break
			}
		}
		if !implied {
			return false
		}
	}
	return true
}

// subset reports whether set b ⊆ set a, where an empty list is the whole
// universe (of size universe when it is finite, else -1).
func subset(b, a []string, universe int) bool {
	if len(a) == 0 || (universe > 0 && len(a) >= universe) {
		return true
	}
	if len(b) == 0 {
		return false
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			return false
		}
	}
	return true
}
