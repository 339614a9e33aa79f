package rules

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
)

// fixedApprovals is a table of measured outcomes by provider.
type fixedApprovals map[string][2]int64

func (f fixedApprovals) Approval(p string, _ payrouter.Method, _ payrouter.Currency, _ time.Duration) (int64, int64) {
	v := f[p]
	return v[0], v[1]
}

const adaptiveRules = `
fees:
  stripe: {card: {percent: 2.9, fixed: {IDR: 2000}}}
  xendit: {card: {percent: 1.0}}
rules:
  - name: cards
    match: {method: [card]}
    strategy: adaptive
    adaptive: {window: 15m, min_samples: 50, explore: 0.05, objective: %s}
    providers: [stripe, xendit]
`

func firstShares(rs *RuleSet, ap Approvals, n int) (map[string]int, map[AdaptiveMode]int) {
	first := map[string]int{}
	modes := map[AdaptiveMode]int{}
	var d Decision
	for i := 0; i < n; i++ {
		in := Input{PaymentID: fmt.Sprintf("pay_%d", i), Amount: 100000, Currency: "IDR", Method: payrouter.MethodCard,
			Tokens: map[string]string{"stripe": "t", "xendit": "t"}, Approvals: ap}
		rs.Decide(&in, &d)
		first[d.Candidates[0].Provider]++
		modes[d.Mode]++
		if len(d.Scores) != len(d.Candidates) || d.Scores[0].Provider != d.Candidates[0].Provider {
			panic("scores not in candidate order")
		}
	}
	return first, modes
}

func TestAdaptiveRanking(t *testing.T) {
	rs := mustCompile(t, fmt.Sprintf(adaptiveRules, "approval"))
	const n = 10000
	tests := []struct {
		name       string
		ap         Approvals
		mode       AdaptiveMode
		minXendit  int // share of first attempts, out of n
		maxXendit  int
		wantReason string
	}{
		// No data: Beta(1,1) for both, so each goes first about half the time.
		{"no samples explores both", nil, ModeLearning, 4500, 5500, "stripe no samples"},
		// stripe measured bad (17% of 60), xendit unknown: xendit is explored
		// most of the time, not starved.
		{"unknown candidate is explored", fixedApprovals{"stripe": {10, 60}}, ModeLearning, 7800, 8800, "stripe 16% of 60"},
		// A candidate whose few samples look bad still gets the explore
		// share, so it can show it recovered.
		{"a bad-looking candidate is not starved", fixedApprovals{"stripe": {2, 5}, "xendit": {300, 300}}, ModeLearning, 9400, 9600, "stripe 40% of 5"},
		// Both measured: the best goes first except for the explore share.
		{"exploit the best", fixedApprovals{"stripe": {40, 80}, "xendit": {95, 100}}, ModeExploit, 9300, 9700, "→ xendit; explore 5.00%"},
		{"exploit the other way", fixedApprovals{"stripe": {99, 100}, "xendit": {50, 100}}, ModeExploit, 300, 700, "stripe 99% of 100"},
		// Equal rates: priority order decides, explore share still applies.
		{"ties keep priority", fixedApprovals{"stripe": {90, 100}, "xendit": {90, 100}}, ModeExploit, 300, 700, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, modes := firstShares(rs, tt.ap, n)
			if got := first["xendit"]; got < tt.minXendit || got > tt.maxXendit {
				t.Errorf("xendit first in %d of %d, want %d..%d", got, n, tt.minXendit, tt.maxXendit)
			}
			if modes[tt.mode]+modes[ModeExplore] != n {
				t.Errorf("modes %v, want %s and explore only", modes, tt.mode)
			}
			// The explore share is bounded by explore (5%), learning or not.
			if e := modes[ModeExplore]; e < 400 || e > 600 {
				t.Errorf("explored %d of %d, want about 500", e, n)
			}
			in := Input{PaymentID: "pay_reason", Amount: 100000, Currency: "IDR", Method: payrouter.MethodCard,
				Tokens: map[string]string{"stripe": "t", "xendit": "t"}, Approvals: tt.ap}
			var d Decision
			rs.Decide(&in, &d)
			if r := d.AdaptiveReason(); !strings.Contains(r, tt.wantReason) || !strings.HasPrefix(r, "adaptive by approval (15m0s): ") {
				t.Errorf("reason %q, want it to contain %q", r, tt.wantReason)
			}
		})
	}
}

func TestAdaptiveSamePaymentSameOrder(t *testing.T) {
	rs := mustCompile(t, fmt.Sprintf(adaptiveRules, "approval"))
	in := Input{PaymentID: "pay_x", Amount: 100000, Currency: "IDR", Method: payrouter.MethodCard,
		Tokens: map[string]string{"stripe": "t", "xendit": "t"}, Approvals: fixedApprovals{"stripe": {10, 20}}}
	var a, b Decision
	for i := 0; i < 20; i++ {
		rs.Decide(&in, &a)
		first := a.Candidates[0].Provider
		rs.Decide(&in, &b)
		if b.Candidates[0].Provider != first {
			t.Fatalf("the same payment got %s then %s", first, b.Candidates[0].Provider)
		}
	}
}

func TestAdaptiveNetRevenue(t *testing.T) {
	// stripe approves 95% but costs 2.9% + 2000; xendit approves 94% at 1%.
	// On 100000 IDR: stripe 0.95 × 95100 = 90345, xendit 0.94 × 99000 = 93060.
	ap := fixedApprovals{"stripe": {95, 100}, "xendit": {94, 100}}
	for _, tt := range []struct{ objective, want string }{{"approval", "stripe"}, {"net_revenue", "xendit"}} {
		rs := mustCompile(t, fmt.Sprintf(adaptiveRules, tt.objective))
		first, _ := firstShares(rs, ap, 2000)
		if first[tt.want] < 1800 {
			t.Errorf("objective %s: first attempts %v, want mostly %s", tt.objective, first, tt.want)
		}
	}
}

func TestAdaptiveParse(t *testing.T) {
	rs := mustCompile(t, "rules:\n  - name: a\n    match: {method: [card]}\n    strategy: adaptive\n    providers: [stripe, xendit]\n")
	if got := rs.rules[0].adaptive; got != DefaultAdaptive() {
		t.Errorf("defaults %+v, want %+v", got, DefaultAdaptive())
	}
	bad := []struct{ yaml, want string }{
		{"adaptive: {window: 10s}", "test.yaml:5:24: rule \"a\": window 10s is outside 1m0s..1h0m0s"},
		{"adaptive: {explore: 0.6}", "explore must be a plain decimal within 0..0.5"},
		{"adaptive: {explore: '0.1'}", "explore must be a share like 0.05"},
		{"adaptive: {min_samples: 0}", "min_samples must be a decimal integer within 1..1000000"},
		{"adaptive: {objective: profit}", `unknown objective "profit"`},
		{"adaptive: {windw: 5m}", "windw"},
	}
	for _, b := range bad {
		text := "rules:\n  - name: a\n    match: {method: [card]}\n    strategy: adaptive\n    " + b.yaml + "\n    providers: [stripe, xendit]\n"
		_, err := Parse("test.yaml", []byte(text))
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: err %v, want %q", b.yaml, err, b.want)
		}
	}
	// The parameters are part of the version; the defaults written out are not a change.
	v := func(text string) string { return mustCompile(t, text).Version() }
	base := "rules:\n  - name: a\n    match: {method: [card]}\n    strategy: adaptive\n    %s\n    providers: [stripe, xendit]\n"
	if v(fmt.Sprintf(base, "adaptive: {explore: 0.1}")) == v(fmt.Sprintf(base, "adaptive: {explore: 0.05}")) {
		t.Error("explore change kept the version")
	}
	if v(fmt.Sprintf(base, "description: x")) != v(fmt.Sprintf(base, "adaptive: {window: 15m, min_samples: 50, explore: 0.05, objective: approval}")) {
		t.Error("the defaults written out changed the version")
	}
}

// BenchmarkDecideAdaptive: go test ./rules -run '^$' -bench DecideAdaptive -benchmem
// Every rule adaptive, three candidates, with live counts.
func BenchmarkDecideAdaptive(b *testing.B) {
	for _, n := range []int{10, 200} {
		for _, phase := range []string{"learning", "exploit"} {
			b.Run(fmt.Sprintf("rules=%d/%s", n, phase), func(b *testing.B) {
				text := strings.ReplaceAll(genRules(n), "strategy: priority", "strategy: adaptive")
				text = strings.ReplaceAll(text, "strategy: cheapest", "strategy: adaptive")
				rs := mustCompile(b, text)
				ap := fixedApprovals{}
				for i, p := range benchProviders {
					if phase == "exploit" {
						ap[p] = [2]int64{int64(900 + i*10), 1000}
					} else {
						ap[p] = [2]int64{int64(10 + i), 20}
					}
				}
				ins := benchInputs(rs, 1024)
				for i := range ins {
					ins[i].Approvals = ap
				}
				var d Decision
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					rs.Decide(&ins[i&1023], &d)
				}
			})
		}
	}
}
