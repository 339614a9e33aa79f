package rules

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/payrouter/payrouter"
)

func TestComputeFee(t *testing.T) {
	tests := []struct {
		name              string
		amount, bp, fixed int64
		want              int64
		ok                bool
	}{
		{"2.9% + 30 of 10000", 10000, 290, 30, 320, true},
		{"exact .5 rounds up", 50, 100, 0, 1, true},         // 0.50
		{"just below .5 rounds down", 149, 100, 0, 1, true}, // 1.49
		{"1.5 rounds up", 150, 100, 0, 2, true},             // 1.50
		{"2.5 rounds up (not to even)", 250, 100, 0, 3, true},
		{"0.4999 rounds down", 4999, 1, 0, 0, true}, // 0.4999
		{"0.5 at 1bp", 5000, 1, 0, 1, true},
		{"2% of IDR 150000", 150000, 200, 0, 3000, true},
		{"fixed only", 123456, 0, 4000, 4000, true},
		{"zero amount", 0, 290, 30, 30, true},
		{"max amount 100%", payrouter.MaxAmount, 10000, 0, payrouter.MaxAmount, true},
		{"max amount 2.9% + fixed", payrouter.MaxAmount, 290, 30, 29_000_000_000_030, true},
		{"int64 max amount at 100% fits", math.MaxInt64, 10000, 0, math.MaxInt64, true},
		{"int64 max amount + fixed overflows", math.MaxInt64, 10000, 1, 0, false},
		{"huge bp overflows", math.MaxInt64, 20000, 0, 0, false},
		{"negative amount", -1, 100, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ComputeFee(tt.amount, tt.bp, tt.fixed)
			if got != tt.want || ok != tt.ok {
				t.Errorf("ComputeFee(%d, %d, %d) = %d, %v; want %d, %v", tt.amount, tt.bp, tt.fixed, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestExpectedFee(t *testing.T) {
	rs := designSet(t)
	tests := []struct {
		provider string
		method   payrouter.Method
		currency payrouter.Currency
		amount   int64
		want     int64
		ok       bool
	}{
		{"stripe", "card", "USD", 10000, 320, true},
		{"stripe", "card", "IDR", 100000, 2900, true}, // no IDR fixed part
		{"midtrans", "gopay", "IDR", 150000, 3000, true},
		{"midtrans", "qris", "IDR", 99999, 700, true}, // 699.993 → 700
		{"midtrans", "bank_transfer", "IDR", 1, 4000, true},
		{"midtrans", "card", "IDR", 100, 0, false}, // no entry: unknown
		{"gopay", "gopay", "IDR", 100, 0, false},
		{"nobody", "card", "USD", 100, 0, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/%s/%d", tt.provider, tt.method, tt.currency, tt.amount), func(t *testing.T) {
			got, ok := rs.ExpectedFee(tt.provider, tt.method, tt.currency, tt.amount)
			if got != tt.want || ok != tt.ok {
				t.Errorf("got %d, %v; want %d, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// matcherRules has one rule per matcher kind, each sending to a distinct
// provider, with a default.
const matcherRules = `
rules:
  - name: by-merchant
    match: {merchant: [vip, vip2]}
    providers: [xendit]
  - name: by-metadata-in
    match: {metadata: {tier: [gold, platinum]}}
    providers: [xendit]
  - name: by-metadata-eq
    match: {metadata: {channel: pos, store: "42"}}
    providers: [xendit]
  - name: by-country
    match: {country: [SG, MY]}
    providers: [stripe]
  - name: by-amount
    match: {currency: [IDR], amount: {min: 1000, max: 5000}}
    providers: [midtrans]
  - name: by-amount-min
    match: {currency: [IDR], amount: {min: 9000000}}
    providers: [midtrans]
  - name: by-currency
    match: {currency: [USD, EUR]}
    providers: [stripe]
  - name: by-method
    match: {method: [qris, bank_transfer]}
    providers: [midtrans, xendit]
default: {providers: [midtrans]}
`

func TestMatchers(t *testing.T) {
	rs := mustCompile(t, matcherRules)
	base := Input{PaymentID: "p1", MerchantID: "demo", Amount: 6000, Currency: "IDR", Method: "gopay", Country: "ID"}
	tests := []struct {
		name string
		mod  func(*Input)
		want string
	}{
		{"nothing matches: default", func(*Input) {}, "default"},
		{"merchant listed", func(in *Input) { in.MerchantID = "vip2" }, "by-merchant"},
		{"merchant not listed", func(in *Input) { in.MerchantID = "vip3" }, "default"},
		{"metadata in: first value", func(in *Input) { in.Metadata = map[string]string{"tier": "gold"} }, "by-metadata-in"},
		{"metadata in: second value", func(in *Input) { in.Metadata = map[string]string{"tier": "platinum"} }, "by-metadata-in"},
		{"metadata in: other value", func(in *Input) { in.Metadata = map[string]string{"tier": "silver"} }, "default"},
		{"metadata equals: all keys", func(in *Input) { in.Metadata = map[string]string{"channel": "pos", "store": "42"} }, "by-metadata-eq"},
		{"metadata equals: one key missing", func(in *Input) { in.Metadata = map[string]string{"channel": "pos"} }, "default"},
		{"metadata equals: wrong value", func(in *Input) { in.Metadata = map[string]string{"channel": "pos", "store": "43"} }, "default"},
		{"country listed", func(in *Input) { in.Country = "MY" }, "by-country"},
		{"country empty", func(in *Input) { in.Country = "" }, "default"},
		{"amount at min (inclusive)", func(in *Input) { in.Amount = 1000 }, "by-amount"},
		{"amount at max (inclusive)", func(in *Input) { in.Amount = 5000 }, "by-amount"},
		{"amount below min", func(in *Input) { in.Amount = 999 }, "default"},
		{"amount above max", func(in *Input) { in.Amount = 5001 }, "default"},
		{"amount min only, at min", func(in *Input) { in.Amount = 9000000 }, "by-amount-min"},
		{"amount min only, max amount", func(in *Input) { in.Amount = payrouter.MaxAmount }, "by-amount-min"},
		{"amount range needs its currency", func(in *Input) { in.Amount = 1000; in.Currency = "SGD" }, "default"},
		{"currency listed", func(in *Input) { in.Currency = "EUR" }, "by-currency"},
		{"currency unknown to rules", func(in *Input) { in.Currency = "JPY" }, "default"},
		{"method listed", func(in *Input) { in.Method = "bank_transfer" }, "by-method"},
		{"unknown method", func(in *Input) { in.Method = "cash" }, "default"},
		{"first match wins", func(in *Input) { in.MerchantID = "vip"; in.Country = "SG" }, "by-merchant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base
			tt.mod(&in)
			var d Decision
			rs.Decide(&in, &d)
			if d.Rule != tt.want {
				t.Errorf("rule: got %q, want %q (reason %q)", d.Rule, tt.want, d.Reason)
			}
			if e := rs.Explain(&in); e.Rule != d.Rule {
				t.Errorf("Explain rule %q disagrees with Decide %q", e.Rule, d.Rule)
			}
		})
	}
}

func TestNoDefault(t *testing.T) {
	rs := mustCompile(t, "rules:\n  - name: usd\n    match: {currency: [USD]}\n    providers: [stripe]\n")
	var d Decision
	rs.Decide(&Input{PaymentID: "p", Amount: 1, Currency: "IDR", Method: "card"}, &d)
	if d.Rule != "" || len(d.Candidates) != 0 || d.Reason != noRoute {
		t.Errorf("got rule %q, %d candidates, reason %q; want no route", d.Rule, len(d.Candidates), d.Reason)
	}
}

func TestStrategiesAndDrops(t *testing.T) {
	rs := designSet(t)
	tokens := map[string]string{"stripe": "tok_sandbox_success", "midtrans": "tok_sandbox_success", "xendit": "tok_sandbox_success"}
	tests := []struct {
		name     string
		in       Input
		rule     string
		want     []string
		fees     []int64 // -1 = unknown
		dropped  []string
		whyMatch string
	}{
		{
			name: "gopay cheapest: known fee first, then unknown in written order",
			in:   Input{PaymentID: "p", Amount: 150000, Currency: "IDR", Method: "gopay"},
			rule: "idr-wallets", want: []string{"midtrans", "gopay"}, fees: []int64{3000, -1},
			dropped: []string{"ovo", "dana", "xendit"}, whyMatch: "does not take gopay in IDR",
		},
		{
			name: "ovo: all fees unknown keep written order",
			in:   Input{PaymentID: "p", Amount: 150000, Currency: "IDR", Method: "ovo"},
			rule: "idr-wallets", want: []string{"ovo", "xendit"}, fees: []int64{-1, -1},
			dropped: []string{"gopay", "dana", "midtrans"},
		},
		{
			name: "card priority with every token",
			in:   Input{PaymentID: "p", Amount: 50000, Currency: "IDR", Method: "card", Tokens: tokens},
			rule: "cards", want: []string{"stripe", "xendit", "midtrans"}, fees: []int64{1450, -1, -1},
		},
		{
			name: "card without tokens is dropped everywhere",
			in:   Input{PaymentID: "p", Amount: 50000, Currency: "IDR", Method: "card", Tokens: map[string]string{"xendit": "t"}},
			rule: "cards", want: []string{"xendit"}, fees: []int64{-1},
			dropped: []string{"stripe", "midtrans"}, whyMatch: "no card token given for stripe",
		},
		{
			name: "USD card: only stripe takes USD",
			in:   Input{PaymentID: "p", Amount: 10000, Currency: "USD", Method: "card", Tokens: tokens},
			rule: "cards", want: []string{"stripe"}, fees: []int64{320},
			dropped: []string{"xendit", "midtrans"}, whyMatch: "xendit does not take card in USD",
		},
		{
			name: "manual capture drops providers without it",
			in:   Input{PaymentID: "p", Amount: 10000, Currency: "IDR", Method: "card", Tokens: tokens, Capture: payrouter.CaptureManual},
			rule: "cards", want: []string{"stripe", "midtrans"}, fees: []int64{290, -1},
			dropped: []string{"xendit"}, whyMatch: "xendit has no manual capture for card",
		},
		{
			name: "pinned provider",
			in:   Input{PaymentID: "p", Amount: 10000, Currency: "IDR", Method: "card", Tokens: tokens, Pinned: "midtrans"},
			rule: "cards", want: []string{"midtrans"}, fees: []int64{-1},
			dropped: []string{"stripe", "xendit"}, whyMatch: whyPinned,
		},
		{
			name: "pinned provider not in the rule: nothing left",
			in:   Input{PaymentID: "p", Amount: 10000, Currency: "IDR", Method: "card", Tokens: tokens, Pinned: "gopay"},
			rule: "cards", want: []string{}, fees: []int64{},
			dropped: []string{"stripe", "xendit", "midtrans"},
		},
		{
			name: "big card falls to default",
			in:   Input{PaymentID: "p", Amount: 100000001, Currency: "IDR", Method: "card", Tokens: tokens},
			rule: "default", want: []string{"midtrans", "xendit"}, fees: []int64{-1, -1},
		},
		{
			name: "qris falls to default, midtrans fee known",
			in:   Input{PaymentID: "p", Amount: 100000, Currency: "IDR", Method: "qris"},
			rule: "default", want: []string{"midtrans", "xendit"}, fees: []int64{700, -1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Decision
			rs.Decide(&tt.in, &d)
			if d.Rule != tt.rule {
				t.Fatalf("rule: got %q, want %q", d.Rule, tt.rule)
			}
			if got := CandidateNames(&d); !slices.Equal(got, tt.want) {
				t.Errorf("candidates: got %v, want %v", got, tt.want)
			}
			for i, c := range d.Candidates {
				want := tt.fees[i]
				if (want < 0) == c.FeeKnown || (c.FeeKnown && c.ExpectedFee != want) {
					t.Errorf("fee of %s: got %d (known %v), want %d", c.Provider, c.ExpectedFee, c.FeeKnown, want)
				}
			}
			var dropped []string
			whys := ""
			for _, x := range d.Dropped {
				dropped = append(dropped, x.Provider)
				whys += x.Why + "; "
			}
			if !slices.Equal(dropped, tt.dropped) {
				t.Errorf("dropped: got %v, want %v", dropped, tt.dropped)
			}
			if !strings.Contains(whys, tt.whyMatch) {
				t.Errorf("dropped reasons %q do not mention %q", whys, tt.whyMatch)
			}
			if d.Version != rs.Version() || d.Strategy == "" || d.Reason == "" {
				t.Errorf("decision misses version/strategy/reason: %+v", d)
			}
		})
	}
}

func TestCheapestOrdering(t *testing.T) {
	rs := mustCompile(t, `
fees:
  gopay: {gopay: {percent: 1.5}}
  midtrans: {gopay: {percent: 1.0, fixed: {IDR: 500}}}
  xendit: {gopay: {percent: 1.5}}
rules:
  - name: w
    strategy: cheapest
    providers: [gopay, ovo, xendit, midtrans]
`)
	caps := testCaps()
	_ = caps
	tests := []struct {
		amount int64
		want   []string
	}{
		// 1.0%+500 vs 1.5%: equal at 100000 (1500 each); ties keep written order.
		{100000, []string{"gopay", "midtrans"}},
		{10000, []string{"gopay", "midtrans"}},  // 150 vs 600
		{200000, []string{"midtrans", "gopay"}}, // 2500 vs 3000
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.amount), func(t *testing.T) {
			var d Decision
			rs.Decide(&Input{PaymentID: "p", Amount: tt.amount, Currency: "IDR", Method: "gopay"}, &d)
			if got := CandidateNames(&d); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	// With every provider capable (caps nil) the unknown-fee ovo ranks last
	// and the 1.5% tie between gopay and xendit keeps the written order.
	rs2, err := Compile(rs.Config(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var d Decision
	rs2.Decide(&Input{PaymentID: "p", Amount: 10000, Currency: "IDR", Method: "gopay"}, &d)
	if got, want := CandidateNames(&d), []string{"gopay", "xendit", "midtrans", "ovo"}; !slices.Equal(got, want) {
		t.Errorf("caps nil: got %v, want %v", got, want)
	}
}

const weighted7030 = `
rules:
  - name: split
    match: {method: [card]}
    strategy: weighted
    providers: [{name: stripe, weight: 70}, {name: xendit, weight: 30}]
  - name: split3
    match: {method: [ovo]}
    strategy: weighted
    providers: [{name: dana, weight: 20}, {name: ovo, weight: 50}, {name: xendit, weight: 30}]
`

func TestWeightedDeterministic(t *testing.T) {
	rs, err := Compile(mustParse(t, "w.yaml", weighted7030), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		in := Input{PaymentID: fmt.Sprintf("pay_%d", i), Amount: 100, Currency: "IDR", Method: "ovo"}
		var a, b Decision
		rs.Decide(&in, &a)
		rs.Decide(&in, &b) // a retry of the same payment
		if !slices.Equal(CandidateNames(&a), CandidateNames(&b)) {
			t.Fatalf("%s: got %v then %v", in.PaymentID, CandidateNames(&a), CandidateNames(&b))
		}
		// The fallbacks follow by descending weight.
		names := CandidateNames(&a)
		order := map[string]int{"ovo": 0, "xendit": 1, "dana": 2}
		if len(names) != 3 || order[names[1]] > order[names[2]] {
			t.Fatalf("%s: fallbacks not by descending weight: %v", in.PaymentID, names)
		}
	}
}

func TestWeightedProportions(t *testing.T) {
	rs, err := Compile(mustParse(t, "w.yaml", weighted7030), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		method payrouter.Method
		want   map[string]float64
	}{
		{"70/30", "card", map[string]float64{"stripe": 0.70, "xendit": 0.30}},
		{"50/30/20", "ovo", map[string]float64{"ovo": 0.50, "xendit": 0.30, "dana": 0.20}},
	}
	const n = 100_000
	for _, tt := range tests {
		for _, idFormat := range []string{"pay_%d", "pay_%08x", "pay_01J%019d"} {
			t.Run(tt.name+"/"+idFormat, func(t *testing.T) {
				counts := map[string]int{}
				var d Decision
				for i := 0; i < n; i++ {
					in := Input{PaymentID: fmt.Sprintf(idFormat, i), Amount: 100, Currency: "IDR", Method: tt.method, Tokens: map[string]string{"stripe": "t", "xendit": "t"}}
					rs.Decide(&in, &d)
					counts[d.Candidates[0].Provider]++
				}
				for p, want := range tt.want {
					got := float64(counts[p]) / n
					if math.Abs(got-want) > 0.01 {
						t.Errorf("%s: share %.4f, want %.2f ± 0.01", p, got, want)
					}
				}
			})
		}
	}
}

func TestWeightedAmongCapable(t *testing.T) {
	// stripe cannot take IDR gopay: the split goes wholly to the capable one.
	rs := mustCompile(t, "rules:\n  - name: s\n    strategy: weighted\n    providers: [{name: gopay, weight: 10}, {name: stripe, weight: 90}]\n")
	for i := 0; i < 100; i++ {
		var d Decision
		rs.Decide(&Input{PaymentID: fmt.Sprint(i), Amount: 1, Currency: "IDR", Method: "gopay"}, &d)
		if got := CandidateNames(&d); !slices.Equal(got, []string{"gopay"}) {
			t.Fatalf("got %v, want [gopay]", got)
		}
	}
}

func TestVersion(t *testing.T) {
	a := mustCompile(t, matcherRules)
	b := mustCompile(t, "# a comment changes nothing\n"+strings.ReplaceAll(matcherRules, "[SG, MY]", "[MY,   SG]"))
	if a.Version() != b.Version() {
		t.Errorf("equal content: versions %s and %s differ", a.Version(), b.Version())
	}
	if len(a.Version()) != 12 {
		t.Errorf("version %q: want 12 hex digits", a.Version())
	}
	for name, text := range map[string]string{
		"provider order": strings.Replace(matcherRules, "[midtrans, xendit]", "[xendit, midtrans]", 1),
		"amount":         strings.Replace(matcherRules, "max: 5000", "max: 5001", 1),
		"rule order":     strings.Replace(matcherRules, "by-merchant", "by-merchant-renamed", 1),
		"fee":            matcherRules + "fees: {stripe: {card: {percent: 2.9}}}\n",
	} {
		if v := mustCompile(t, text).Version(); v == a.Version() {
			t.Errorf("%s changed: version %s unchanged", name, v)
		}
	}
}

func TestDecideZeroAllocs(t *testing.T) {
	for _, n := range []int{10, 200} {
		rs := benchSet(t, n)
		ins := benchInputs(rs, 64)
		var d Decision
		d.Candidates = make([]Candidate, 0, 16)
		d.Dropped = make([]Dropped, 0, 16)
		i := 0
		allocs := testing.AllocsPerRun(1000, func() {
			rs.Decide(&ins[i%len(ins)], &d)
			i++
		})
		if allocs != 0 {
			t.Errorf("%d rules: %.1f allocs per Decide, want 0", n, allocs)
		}
	}
}

// TestExplainAgreesWithDecide feeds random inputs to both the fast matcher
// and Explain's readable one.
func TestExplainAgreesWithDecide(t *testing.T) {
	rs := benchSet(t, 200)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 5000; i++ {
		in := randomInput(r, i)
		var d Decision
		rs.Decide(&in, &d)
		e := rs.Explain(&in)
		matched := ""
		for _, c := range e.Considered {
			if c.Matched {
				matched = c.Rule
			}
		}
		if matched != d.Rule && !(matched == "" && d.Rule == "default") {
			t.Fatalf("input %+v: Explain's matcher says %q, Decide %q", in, matched, d.Rule)
		}
	}
}

func TestDecideConcurrent(t *testing.T) {
	rs := benchSet(t, 200)
	ins := benchInputs(rs, 256)
	want := make([]string, len(ins))
	for i := range ins {
		var d Decision
		rs.Decide(&ins[i], &d)
		want[i] = d.Rule + ":" + strings.Join(CandidateNames(&d), ",")
	}
	done := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			var d Decision
			for i := range ins {
				rs.Decide(&ins[i], &d)
				if got := d.Rule + ":" + strings.Join(CandidateNames(&d), ","); got != want[i] {
					done <- fmt.Errorf("input %d: got %s, want %s", i, got, want[i])
					return
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func TestMethodIndexMatchesTable(t *testing.T) {
	for i, m := range payrouter.Methods {
		if got := methodIndex(m); got != i+1 {
			t.Errorf("methodIndex(%s) = %d, want %d", m, got, i+1)
		}
	}
	if got := methodIndex("cash"); got != 0 {
		t.Errorf("methodIndex(cash) = %d, want 0", got)
	}
}
