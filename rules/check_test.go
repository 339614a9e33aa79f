package rules

import (
	"fmt"
	"strings"
	"testing"
)

func TestCheckFixtures(t *testing.T) {
	type want struct {
		line, col int
		severity  string
		rule      string
		msg       string
	}
	tests := []struct {
		file string
		want []want
	}{
		{"clean.yaml", nil},
		{"unknown-provider.yaml", []want{{4, 25, "error", "cards", `unknown provider "strype"`}}},
		{"provider-lacking.yaml", []want{
			{4, 17, "error", "usd-wallets", `provider "gopay" cannot take any payment this rule matches (method gopay/ovo, currency USD)`},
			{4, 24, "error", "usd-wallets", `provider "ovo" cannot take any payment`},
			{7, 25, "error", "cards", `provider "gopay" cannot take any payment this rule matches (method card)`},
		}},
		{"shadowed.yaml", []want{
			{5, 5, "error", "idr-gopay-demo", `unreachable: every payment it matches is matched by the earlier rule "idr" (line 2)`},
			{11, 5, "error", "id-cards", `unreachable: every payment it matches is matched by the earlier rule "all-methods" (line 8)`},
		}},
		{"empty-providers.yaml", []want{
			{4, 5, "error", "nobody", "empty candidate list"},
			{5, 5, "error", "nothing-at-all", "empty candidate list"},
		}},
		{"weight-not-positive.yaml", []want{
			{7, 32, "error", "split", `weight of "xendit" must be positive, got 0`},
			{8, 34, "error", "split", `weight of "midtrans" must be positive, got -5`},
		}},
		{"weight-missing.yaml", []want{{5, 45, "error", "split", `provider "xendit" has no weight`}}},
		{"amount-dead.yaml", []want{{8, 5, "error", "mid", `unreachable: amount range [5000, 50000] is covered by the earlier rules "small" (line 2), "large" (line 5)`}}},
		{"amount-overlap.yaml", []want{{5, 5, "warning", "medium", `amount range overlaps the earlier rule "small" (line 2) on [5000, 10000]`}}},
		{"duplicate-provider.yaml", []want{{4, 33, "error", "cards", `provider "stripe" is listed twice`}}},
		{"weight-ignored.yaml", []want{{5, 40, "warning", "cards", `weight of "stripe" is ignored: strategy is priority`}}},
		{"cheapest-no-fee.yaml", []want{{7, 27, "warning", "qris", `no fee for "xendit"`}}},
		{"fees-unknown-provider.yaml", []want{{3, 3, "warning", "", `fees for unknown provider "paypal"`}}},
		{"default-unreachable.yaml", []want{{4, 10, "warning", "default", `the default is never used: rule "everything" (line 2) matches every payment`}}},
		{"no-default.yaml", []want{{1, 0, "warning", "", "no default section"}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := "testdata/check/" + tt.file
			cfg := mustParse(t, path, string(readFile(t, path)))
			got := Check(cfg, testCaps())
			if len(got) != len(tt.want) {
				t.Fatalf("got %d findings, want %d:\n%s", len(got), len(tt.want), findingsText(got))
			}
			for i, w := range tt.want {
				g := got[i]
				if g.File != path || g.Line != w.line || g.Col != w.col || g.Severity != w.severity || g.Rule != w.rule || !strings.Contains(g.Message, w.msg) {
					t.Errorf("finding %d:\n got  %s\n want %s:%d:%d: %s: rule %q: …%s…", i, g, path, w.line, w.col, w.severity, w.rule, w.msg)
				}
			}
			// Exactly the error findings (and only they) stop Compile when
			// they make the set impossible to run.
			_, err := Compile(cfg, testCaps())
			compileFails := false
			for _, g := range got {
				if g.Severity == SeverityError && (strings.Contains(g.Message, "unknown provider") || strings.Contains(g.Message, "empty candidate") ||
					strings.Contains(g.Message, "weight") || strings.Contains(g.Message, "listed twice")) {
					compileFails = true
				}
			}
			if (err != nil) != compileFails {
				t.Errorf("Compile error = %v, want failure %v", err, compileFails)
			}
		})
	}
}

func findingsText(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintln(&b, f)
	}
	return b.String()
}

func TestFindingString(t *testing.T) {
	f := Finding{File: "config.yaml", Line: 12, Col: 5, Rule: "cards", Severity: "error", Message: "boom"}
	if got, want := f.String(), `config.yaml:12:5: error: rule "cards": boom`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	f.Rule = ""
	if got, want := f.String(), `config.yaml:12:5: error: boom`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
