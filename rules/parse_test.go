package rules

import (
	"errors"
	"strings"
	"testing"

	"github.com/payrouter/payrouter"
)

func TestParseDesignExample(t *testing.T) {
	cfg, err := Parse("testdata/design.yaml", readFile(t, "testdata/design.yaml"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := len(cfg.Rules); got != 2 {
		t.Fatalf("rules: got %d, want 2", got)
	}
	w := cfg.Rules[0]
	if w.Name != "idr-wallets" || w.Strategy != Cheapest || w.Pos.Line != 13 {
		t.Errorf("rule 0: got %q %s line %d, want idr-wallets cheapest line 13", w.Name, w.Strategy, w.Pos.Line)
	}
	if got, want := strs(w.Match.Methods), []string{"gopay", "ovo", "dana", "shopeepay"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("methods: got %v, want %v", got, want)
	}
	c := cfg.Rules[1]
	if c.Match.Amount == nil || c.Match.Amount.Max != 100000000 || c.Match.Amount.HasMin {
		t.Errorf("cards amount: got %+v, want max 100000000 only", c.Match.Amount)
	}
	if cfg.Default == nil || len(cfg.Default.Providers) != 2 || cfg.Default.Providers[0].Name != "midtrans" {
		t.Errorf("default: got %+v", cfg.Default)
	}
	fees := map[string]FeeEntry{}
	for _, f := range cfg.Fees {
		fees[f.Provider+"."+string(f.Method)] = f
	}
	for key, want := range map[string]struct {
		bp    int64
		fixed map[payrouter.Currency]int64
	}{
		"stripe.card":            {290, map[payrouter.Currency]int64{"USD": 30}},
		"midtrans.gopay":         {200, nil},
		"midtrans.qris":          {70, nil},
		"midtrans.bank_transfer": {0, map[payrouter.Currency]int64{"IDR": 4000}},
	} {
		f, ok := fees[key]
		if !ok {
			t.Errorf("fee %s missing", key)
			continue
		}
		if f.BP != want.bp || len(f.Fixed) != len(want.fixed) {
			t.Errorf("fee %s: got %d bp %v, want %d bp %v", key, f.BP, f.Fixed, want.bp, want.fixed)
		}
		for c, v := range want.fixed {
			if f.Fixed[c] != v {
				t.Errorf("fee %s fixed %s: got %d, want %d", key, c, f.Fixed[c], v)
			}
		}
	}
}

func TestParsePercent(t *testing.T) {
	tests := []struct {
		text   string
		wantBP int64
		bad    bool
	}{
		{"2.9", 290, false},
		{"2", 200, false},
		{"2.90", 290, false},
		{"0.75", 75, false},
		{"0.01", 1, false},
		{"0", 0, false},
		{"100", 10000, false},
		{"2.925", 0, true}, // below a basis point
		{"100.01", 0, true},
		{"-1", 0, true},
		{"1e2", 0, true},
		{".5", 0, true},
		{"'2.9'", 0, true}, // a string, not a number
		{"[2]", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			text := "fees:\n  stripe:\n    card: {percent: " + tt.text + "}\n"
			cfg, err := Parse("f.yaml", []byte(text))
			if tt.bad {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("Parse(%s): got err %v, want *Error", tt.text, err)
				}
				if f := e.Findings[0]; f.Line != 3 || f.Col == 0 || !strings.Contains(f.Message, "percent") {
					t.Errorf("finding: got %s, want line 3 about percent", f)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%s): %v", tt.text, err)
			}
			if got := cfg.Fees[0].BP; got != tt.wantBP {
				t.Errorf("bp: got %d, want %d", got, tt.wantBP)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name      string
		text      string
		line, col int
		rule      string
		msg       string
	}{
		{"unknown rule key", "rules:\n  - name: a\n    strategy: priority\n    provider: [stripe]\n", 4, 5, "a", `unknown key "provider"`},
		{"unknown match key", "rules:\n  - name: a\n    match: {currencies: [IDR]}\n    providers: [x]\n", 3, 13, "a", `unknown key "currencies"`},
		{"typo in method", "rules:\n  - name: a\n    match: {method: [gopay, ovoo]}\n    providers: [x]\n", 3, 29, "a", `unknown method "ovoo"`},
		{"unknown currency", "rules:\n  - name: a\n    match: {currency: [XXX]}\n    providers: [x]\n", 3, 24, "a", `unknown currency "XXX"`},
		{"lower-case currency", "rules:\n  - name: a\n    match: {currency: [idr]}\n    providers: [x]\n", 3, 24, "a", "upper case"},
		{"currency not a list", "rules:\n  - name: a\n    match: {currency: IDR}\n    providers: [x]\n", 3, 23, "a", "must be a list"},
		{"empty list", "rules:\n  - name: a\n    match: {method: []}\n    providers: [x]\n", 3, 21, "a", "empty list matches nothing"},
		{"amount as string", "rules:\n  - name: a\n    match: {amount: {max: \"100\"}}\n    providers: [x]\n", 3, 27, "a", "must be an integer"},
		{"amount fraction", "rules:\n  - name: a\n    match: {amount: {max: 10.5}}\n    providers: [x]\n", 3, 27, "a", "must be an integer"},
		{"amount negative", "rules:\n  - name: a\n    match: {amount: {min: -5}}\n    providers: [x]\n", 3, 27, "a", "non-negative"},
		{"amount min above max", "rules:\n  - name: a\n    match: {amount: {min: 10, max: 5}}\n    providers: [x]\n", 3, 21, "a", "above max"},
		{"amount unknown key", "rules:\n  - name: a\n    match: {amount: {maximum: 5}}\n    providers: [x]\n", 3, 22, "a", `unknown key "maximum"`},
		{"bad country", "rules:\n  - name: a\n    match: {country: [Indonesia]}\n    providers: [x]\n", 3, 23, "a", "ISO 3166-1"},
		{"metadata null", "rules:\n  - name: a\n    match: {metadata: {tier: }}\n    providers: [x]\n", 3, 0, "a", "null"},
		{"unknown strategy", "rules:\n  - name: a\n    strategy: fastest\n    providers: [x]\n", 3, 15, "a", `unknown strategy "fastest"`},
		{"no name", "rules:\n  - strategy: priority\n    providers: [x]\n", 2, 5, "#line 2", "has no name"},
		{"duplicate name", "rules:\n  - name: a\n    providers: [x]\n  - name: a\n    providers: [y]\n", 4, 5, "a", "duplicate rule name (first at line 2)"},
		{"reserved name", "rules:\n  - name: default\n    providers: [x]\n", 2, 5, "default", "reserved"},
		{"weight not int", "rules:\n  - name: a\n    strategy: weighted\n    providers: [{name: x, weight: 0.5}]\n", 4, 35, "a", "weight must be an integer"},
		{"provider entry unknown key", "rules:\n  - name: a\n    providers: [{name: x, wieght: 5}]\n", 3, 27, "a", `unknown key "wieght"`},
		{"rules not a list", "rules: {a: 1}\n", 1, 8, "", "must be a list"},
		{"default unknown key", "default: {strategy: priority, providers: [x], match: {}}\n", 1, 47, "default", `unknown key "match"`},
		{"fees unknown method", "fees:\n  stripe: {cards: {percent: 2.9}}\n", 2, 12, "", `unknown method "cards"`},
		{"fees unknown key", "fees:\n  stripe: {card: {pct: 2.9}}\n", 2, 19, "", `unknown key "pct"`},
		{"fees fixed currency", "fees:\n  stripe: {card: {fixed: {usd: 30}}}\n", 2, 27, "", `unknown currency "usd"`},
		{"fees fixed fraction", "fees:\n  stripe: {card: {fixed: {USD: 0.3}}}\n", 2, 32, "", "must be an integer"},
		{"broken yaml", "rules:\n  - name: a\n    providers: [x\n  - name: b\n", 2, 0, "", "invalid YAML"},
		{"tab indentation", "rules:\n\t- name: a\n", 2, 0, "", "invalid YAML"},
		{"duplicate section", "rules: []\nrules: []\n", 2, 1, "", "duplicate section"},
		{"top-level list", "- a\n", 1, 1, "", "must be a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("cfg.yaml", []byte(tt.text))
			var e *Error
			if !errors.As(err, &e) || len(e.Findings) == 0 {
				t.Fatalf("Parse: got %v, want *Error", err)
			}
			var match *Finding
			for i := range e.Findings {
				if strings.Contains(e.Findings[i].Message, tt.msg) {
					match = &e.Findings[i]
					break
				}
			}
			if match == nil {
				t.Fatalf("no finding mentions %q; got:\n%v", tt.msg, err)
			}
			if match.Line != tt.line || (tt.col != 0 && match.Col != tt.col) || match.Rule != tt.rule {
				t.Errorf("got %s (rule %q), want cfg.yaml:%d:%d rule %q", match, match.Rule, tt.line, tt.col, tt.rule)
			}
			prefix := "cfg.yaml:"
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("Error() = %q, want prefix %q", err.Error(), prefix)
			}
			if tt.rule != "" && !strings.Contains(err.Error(), `rule "`+tt.rule+`": `) {
				t.Errorf("Error() = %q, want it to name rule %q", err.Error(), tt.rule)
			}
		})
	}
}

func TestParseListsEveryProblem(t *testing.T) {
	text := "rules:\n  - name: a\n    match: {method: [nope]}\n    providers: [x]\n  - name: b\n    strategy: nope\n    providers: [x]\n"
	_, err := Parse("cfg.yaml", []byte(text))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want *Error", err)
	}
	if len(e.Findings) != 2 {
		t.Fatalf("got %d findings, want 2:\n%v", len(e.Findings), err)
	}
	want := "cfg.yaml:3:22: rule \"a\": unknown method \"nope\""
	if !strings.HasPrefix(strings.Split(err.Error(), "\n")[0], want) {
		t.Errorf("first line: got %q, want prefix %q", strings.Split(err.Error(), "\n")[0], want)
	}
}

func TestParseEmptyAndOtherSections(t *testing.T) {
	for _, text := range []string{"", "# nothing\n", "server: {listen: ':8080'}\n", "rules:\n"} {
		cfg, err := Parse("x.yaml", []byte(text))
		if err != nil {
			t.Errorf("Parse(%q): %v", text, err)
			continue
		}
		if len(cfg.Rules) != 0 || cfg.Default != nil {
			t.Errorf("Parse(%q): got %d rules, default %v; want none", text, len(cfg.Rules), cfg.Default)
		}
	}
}

func TestParseAnchors(t *testing.T) {
	text := "x-wallets: &w [gopay, ovo]\nrules:\n  - name: a\n    match: {method: *w}\n    providers: [gopay, ovo]\n"
	cfg := mustParse(t, "a.yaml", text)
	if got := strs(cfg.Rules[0].Match.Methods); strings.Join(got, ",") != "gopay,ovo" {
		t.Errorf("methods via alias: got %v, want [gopay ovo]", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(readFile(f, "testdata/design.yaml"))
	f.Add([]byte("rules:\n  - name: a\n    match: {amount: {min: 1, max: 2}, metadata: {k: [a, b]}}\n    strategy: weighted\n    providers: [{name: x, weight: 1}]\n"))
	f.Add([]byte("a: &a [*a]\nrules: *a\n"))
	f.Add([]byte("fees: {x: {card: {percent: 99.99, fixed: {IDR: 1}}}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || len(e.Findings) == 0 {
				t.Fatalf("error is not a non-empty *Error: %v", err)
			}
			return
		}
		// Whatever parses must check and (when valid) compile and decide.
		_ = Check(cfg, testCaps())
		if rs, err := Compile(cfg, nil); err == nil {
			var d Decision
			rs.Decide(&Input{PaymentID: "p", Amount: 100, Currency: "IDR", Method: "gopay"}, &d)
			_ = rs.Explain(&Input{PaymentID: "p", Amount: 100, Currency: "USD", Method: "card"})
		}
	})
}
