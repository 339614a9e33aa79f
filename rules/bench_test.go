package rules

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/payrouter/payrouter"
)

var benchProviders = []string{"stripe", "midtrans", "xendit", "gopay", "ovo", "dana"}
var benchCurrencies = []payrouter.Currency{"IDR", "IDR", "IDR", "USD", "SGD"}

// genRules writes n rules mixing every matcher and strategy, like a large
// multi-merchant setup: per-merchant overrides, country and metadata
// rules, amount bands per method and currency.
func genRules(n int) string {
	var b strings.Builder
	b.WriteString("fees:\n")
	for _, p := range benchProviders {
		fmt.Fprintf(&b, "  %s:\n", p)
		for _, m := range payrouter.Methods {
			fmt.Fprintf(&b, "    %s: {percent: %d.%02d, fixed: {IDR: %d, USD: 30}}\n", m, 1+len(p)%3, len(m)*7%100, 100*len(p))
		}
	}
	b.WriteString("rules:\n")
	for i := 0; i < n; i++ {
		m := payrouter.Methods[i%len(payrouter.Methods)]
		m2 := payrouter.Methods[(i/7+3)%len(payrouter.Methods)]
		if m2 == m {
			m2 = payrouter.Methods[(i+1)%len(payrouter.Methods)]
		}
		fmt.Fprintf(&b, "  - name: r%d\n    match:\n", i)
		fmt.Fprintf(&b, "      method: [%s, %s]\n", m, m2)
		fmt.Fprintf(&b, "      currency: [%s]\n", benchCurrencies[i%len(benchCurrencies)])
		if i%3 == 0 {
			fmt.Fprintf(&b, "      merchant: [m%d, m%d]\n", i, i+1)
		}
		if i%5 == 1 {
			b.WriteString("      country: [ID, SG]\n")
		}
		if i%7 == 2 {
			b.WriteString("      metadata: {tier: [gold, platinum]}\n")
		}
		if i%4 != 3 {
			lo := int64(i%10) * 100000
			fmt.Fprintf(&b, "      amount: {min: %d, max: %d}\n", lo, lo+50000+int64(i))
		}
		p := func(k int) string { return benchProviders[(i+k)%len(benchProviders)] }
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, "    strategy: priority\n    providers: [%s, %s, %s]\n", p(0), p(1), p(2))
		case 1:
			fmt.Fprintf(&b, "    strategy: cheapest\n    providers: [%s, %s, %s, %s]\n", p(0), p(1), p(2), p(3))
		case 2:
			fmt.Fprintf(&b, "    strategy: weighted\n    providers: [{name: %s, weight: 60}, {name: %s, weight: 30}, {name: %s, weight: 10}]\n", p(0), p(1), p(2))
		}
	}
	b.WriteString("default: {providers: [midtrans, xendit]}\n")
	return b.String()
}

func benchSet(tb testing.TB, n int) *RuleSet {
	tb.Helper()
	return mustCompile(tb, genRules(n))
}

func randomInput(r *rand.Rand, i int) Input {
	md := map[string]string{}
	switch r.IntN(3) {
	case 0:
		md["tier"] = "gold"
	case 1:
		md["tier"] = "silver"
	}
	return Input{
		PaymentID:  fmt.Sprintf("pay_%d", i),
		MerchantID: fmt.Sprintf("m%d", r.IntN(300)),
		Amount:     r.Int64N(1_200_000) + 1,
		Currency:   benchCurrencies[r.IntN(len(benchCurrencies))],
		Method:     payrouter.Methods[r.IntN(len(payrouter.Methods))],
		Country:    []string{"ID", "SG", "US"}[r.IntN(3)],
		Metadata:   md,
		Tokens:     map[string]string{"stripe": "t", "xendit": "t", "midtrans": "t"},
	}
}

func benchInputs(rs *RuleSet, n int) []Input {
	r := rand.New(rand.NewPCG(7, 7))
	ins := make([]Input, n)
	for i := range ins {
		ins[i] = randomInput(r, i)
	}
	return ins
}

// BenchmarkDecide: go test ./rules -run '^$' -bench Decide -benchmem
func BenchmarkDecide(b *testing.B) {
	for _, n := range []int{10, 200, 2000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			rs := benchSet(b, n)
			ins := benchInputs(rs, 1024)
			var d Decision
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rs.Decide(&ins[i&1023], &d)
			}
		})
	}
}

// BenchmarkDecideNoMatch is the worst case: every rule is a candidate by
// method and currency, none matches by amount, the default applies.
func BenchmarkDecideNoMatch(b *testing.B) {
	for _, n := range []int{10, 200, 2000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			var s strings.Builder
			s.WriteString("rules:\n")
			for i := 0; i < n; i++ {
				fmt.Fprintf(&s, "  - name: r%d\n    match: {currency: [IDR], method: [gopay], amount: {min: %d, max: %d}}\n    providers: [gopay, midtrans]\n", i, 1000+i*10, 1005+i*10)
			}
			s.WriteString("default: {providers: [midtrans]}\n")
			rs := mustCompile(b, s.String())
			in := Input{PaymentID: "pay_1", Amount: 999, Currency: "IDR", Method: "gopay"}
			var d Decision
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rs.Decide(&in, &d)
			}
		})
	}
}
