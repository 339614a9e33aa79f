package ops

import (
	"context"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/approval"
	"github.com/payrouter/payrouter/rules"
)

// Approvals is what the adaptive view reads: the live approval counters
// (approval.Tracker).
type Approvals interface {
	Snapshot(window time.Duration) []approval.Stat
}

// AdaptiveRule is one adaptive rule of the live rules with the measured
// figures of its providers over its window.
type AdaptiveRule struct {
	Rule       string          `json:"rule"`
	Window     string          `json:"window"`
	MinSamples int64           `json:"min_samples"`
	ExploreBP  int64           `json:"explore_bp"`
	Objective  string          `json:"objective"`
	Providers  []string        `json:"providers"` // priority order
	Scores     []AdaptiveScore `json:"scores"`
}

// AdaptiveScore is one provider × method × currency of a rule.
type AdaptiveScore struct {
	Provider string             `json:"provider"`
	Method   payrouter.Method   `json:"method"`
	Currency payrouter.Currency `json:"currency"`
	Approved int64              `json:"approved"`
	Attempts int64              `json:"attempts"`
	// RateBP is the approval rate in basis points (0 without attempts).
	RateBP int64 `json:"rate_bp"`
	// Learning: fewer than min_samples, so Thompson sampling still explores it.
	Learning bool `json:"learning"`
}

// Adaptive lists the live rules' adaptive rules with their providers'
// measured approval (viewer and up). Rules of other strategies are left out.
func (s *Service) Adaptive(ctx context.Context, a Actor) ([]AdaptiveRule, error) {
	if err := need(a, Viewer); err != nil {
		return nil, err
	}
	out := []AdaptiveRule{}
	set := s.c.Live.Load()
	if set == nil || set.Config() == nil {
		return out, nil
	}
	cfg := set.Config()
	all := append([]rules.Rule{}, cfg.Rules...)
	if cfg.Default != nil {
		all = append(all, *cfg.Default)
	}
	for _, r := range all {
		if r.Strategy != rules.Adaptive {
			continue
		}
		p := rules.DefaultAdaptive()
		if r.Adaptive != nil {
			p = *r.Adaptive
		}
		ar := AdaptiveRule{Rule: r.Name, Window: p.Window.String(), MinSamples: p.MinSamples, ExploreBP: p.ExploreBP,
			Objective: string(p.Objective), Providers: []string{}, Scores: []AdaptiveScore{}}
		in := map[string]bool{}
		for _, pr := range r.Providers {
			ar.Providers = append(ar.Providers, pr.Name)
			in[pr.Name] = true
		}
		if s.c.Approvals != nil {
			for _, st := range s.c.Approvals.Snapshot(p.Window) {
				if !in[st.Provider] || !matches(r.Match, st) {
					continue
				}
				sc := AdaptiveScore{Provider: st.Provider, Method: st.Method, Currency: st.Currency, Approved: st.Approved,
					Attempts: st.Attempts, Learning: st.Attempts < p.MinSamples}
				if st.Attempts > 0 {
					sc.RateBP = st.Approved * 10000 / st.Attempts
				}
				ar.Scores = append(ar.Scores, sc)
			}
		}
		out = append(out, ar)
	}
	return out, nil
}

// matches: the counters' method and currency are ones the rule can route.
func matches(m rules.Match, st approval.Stat) bool {
	okM := len(m.Methods) == 0
	for _, x := range m.Methods {
		okM = okM || x == st.Method
	}
	okC := len(m.Currencies) == 0
	for _, x := range m.Currencies {
		okC = okC || x == st.Currency
	}
	return okM && okC
}
