package app

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/router"
	"github.com/payrouter/payrouter/rules"
)

// Rules holds the live rule set, swapped atomically on reload, and the last
// reload error (kept for /readyz while the last good rules stay live).
type Rules struct {
	cur     atomic.Pointer[rules.RuleSet]
	shadow  atomic.Pointer[rules.RuleSet]
	lastErr atomic.Pointer[string]
	pool    sync.Pool
	// approvals feeds the adaptive strategy (nil: no samples).
	approvals rules.Approvals
	// OnShadow sees the live and the shadow decision of every payment
	// while a version is shadowed (set once, before serving).
	OnShadow func(paymentID string, live, shadow *rules.Decision)
}

// SetShadow evaluates s beside the live rules on every Plan (nil: stop).
func (rs *Rules) SetShadow(s *rules.RuleSet) { rs.shadow.Store(s) }

// Load returns the live rule set.
func (rs *Rules) Load() *rules.RuleSet { return rs.cur.Load() }

// Swap installs a new rule set and clears the reload error.
func (rs *Rules) Swap(s *rules.RuleSet) { rs.cur.Store(s); rs.lastErr.Store(nil) }

// Failed records a reload that was refused.
func (rs *Rules) Failed(err error) { s := err.Error(); rs.lastErr.Store(&s) }

// LastError is the last refused reload, or "".
func (rs *Rules) LastError() string {
	if p := rs.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

func (rs *Rules) input(p *payrouter.Payment, pinned string) rules.Input {
	return rules.Input{PaymentID: p.ID, MerchantID: p.MerchantID, Amount: p.Amount, Currency: p.Currency, Method: p.Method,
		Country: strings.ToUpper(p.Country), Metadata: p.Metadata, Capture: p.Capture, Tokens: p.Tokens, Pinned: pinned,
		Approvals: rs.approvals}
}

// Explain explains the live rules' decision for a payment.
func (rs *Rules) Explain(p *payrouter.Payment, pinned string) rules.Explanation {
	in := rs.input(p, pinned)
	return rs.cur.Load().Explain(&in)
}

// Plan implements router.Routing with the live rules.
func (rs *Rules) Plan(p *payrouter.Payment, pinned string) (router.Plan, error) {
	set := rs.cur.Load()
	in := rs.input(p, pinned)
	d, _ := rs.pool.Get().(*rules.Decision)
	if d == nil {
		d = &rules.Decision{}
	}
	defer rs.pool.Put(d)
	set.Decide(&in, d)
	if sh := rs.shadow.Load(); sh != nil && rs.OnShadow != nil {
		var sd rules.Decision
		sh.Decide(&in, &sd)
		rs.OnShadow(p.ID, d, &sd)
	}
	plan := router.Plan{Route: payrouter.Route{Rule: d.Rule, RulesVersion: d.Version, Strategy: d.Strategy, Reason: d.Reason}}
	plan.Candidates = make([]router.Candidate, len(d.Candidates))
	plan.Route.Candidates = make([]string, len(d.Candidates))
	for i, c := range d.Candidates {
		plan.Candidates[i] = router.Candidate{Provider: c.Provider, ExpectedFee: c.ExpectedFee} // 0 when unknown
		plan.Route.Candidates[i] = c.Provider
	}
	if ar := d.AdaptiveReason(); ar != "" {
		plan.Route.Reason += "; " + ar
	}
	if len(d.Dropped) > 0 {
		var b strings.Builder
		b.WriteString(plan.Route.Reason)
		b.WriteString("; dropped:")
		for _, x := range d.Dropped {
			b.WriteString(" " + x.Provider + " (" + x.Why + ")")
		}
		plan.Route.Reason = b.String()
	}
	return plan, nil
}
