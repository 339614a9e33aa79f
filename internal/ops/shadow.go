package ops

import (
	"slices"
	"sync"

	"github.com/payrouter/payrouter/rules"
)

// ShadowLog records what a shadowed version would have decided beside the
// live one, on this instance's traffic: counts and the first divergences.
type ShadowLog struct {
	mu  sync.Mutex
	rep ShadowReport
}

// ShadowReport is GET …/shadow.
type ShadowReport struct {
	Version   string         `json:"version"`
	Decisions int            `json:"decisions"`
	Diverged  int            `json:"diverged"`
	Samples   []ShadowSample `json:"samples"`
}

// ShadowSample is one diverging decision.
type ShadowSample struct {
	PaymentID string       `json:"payment_id"`
	Live      ShadowChoice `json:"live"`
	Shadow    ShadowChoice `json:"shadow"`
}

// ShadowChoice is a decision's rule and candidates.
type ShadowChoice struct {
	Rule       string   `json:"rule"`
	Candidates []string `json:"candidates"`
}

const maxShadowSamples = 50

// NewShadowLog returns an empty log.
func NewShadowLog() *ShadowLog { return &ShadowLog{rep: ShadowReport{Samples: []ShadowSample{}}} }

// Reset starts recording for version.
func (l *ShadowLog) Reset(version string) {
	l.mu.Lock()
	l.rep = ShadowReport{Version: version, Samples: []ShadowSample{}}
	l.mu.Unlock()
}

// Observe records one payment's live and shadow decisions.
func (l *ShadowLog) Observe(paymentID string, live, shadow *rules.Decision) {
	lc, sc := rules.CandidateNames(live), rules.CandidateNames(shadow)
	diverged := live.Rule != shadow.Rule || !slices.Equal(lc, sc)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rep.Version != shadow.Version {
		return // a decision by a version no longer shadowed
	}
	l.rep.Decisions++
	if !diverged {
		return
	}
	l.rep.Diverged++
	if len(l.rep.Samples) < maxShadowSamples {
		l.rep.Samples = append(l.rep.Samples, ShadowSample{PaymentID: paymentID,
			Live: ShadowChoice{Rule: live.Rule, Candidates: lc}, Shadow: ShadowChoice{Rule: shadow.Rule, Candidates: sc}})
	}
}

// Report is a copy of what was recorded.
func (l *ShadowLog) Report() ShadowReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.rep
	r.Samples = slices.Clone(r.Samples)
	return r
}
