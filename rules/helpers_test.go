package rules

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// testCaps is a plausible capability table of the six sandbox providers.
func testCaps() map[string]providers.Capabilities {
	idr := []payrouter.Currency{"IDR"}
	return map[string]providers.Capabilities{
		"stripe": {Methods: map[payrouter.Method][]payrouter.Currency{
			payrouter.MethodCard: {"USD", "EUR", "SGD", "IDR"},
		}, ManualCapture: []payrouter.Method{payrouter.MethodCard}},
		"midtrans": {Methods: map[payrouter.Method][]payrouter.Currency{
			payrouter.MethodCard: idr, payrouter.MethodGoPay: idr, payrouter.MethodQRIS: idr, payrouter.MethodBankTransfer: idr, payrouter.MethodShopeePay: idr,
		}, ManualCapture: []payrouter.Method{payrouter.MethodCard}},
		"xendit": {Methods: map[payrouter.Method][]payrouter.Currency{
			payrouter.MethodCard: idr, payrouter.MethodOVO: idr, payrouter.MethodDANA: idr, payrouter.MethodShopeePay: idr,
			payrouter.MethodQRIS: idr, payrouter.MethodBankTransfer: idr,
		}},
		"gopay": {Methods: map[payrouter.Method][]payrouter.Currency{payrouter.MethodGoPay: idr}},
		"ovo":   {Methods: map[payrouter.Method][]payrouter.Currency{payrouter.MethodOVO: idr}},
		"dana":  {Methods: map[payrouter.Method][]payrouter.Currency{payrouter.MethodDANA: idr}},
	}
}

func mustParse(tb testing.TB, name, text string) *Config {
	tb.Helper()
	cfg, err := Parse(name, []byte(text))
	if err != nil {
		tb.Fatalf("Parse(%s): %v", name, err)
	}
	return cfg
}

func mustCompile(tb testing.TB, text string) *RuleSet {
	tb.Helper()
	rs, err := Compile(mustParse(tb, "test.yaml", text), testCaps())
	if err != nil {
		tb.Fatalf("Compile: %v", err)
	}
	return rs
}

func readFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.FromSlash(path))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func designSet(tb testing.TB) *RuleSet {
	tb.Helper()
	return mustCompile(tb, string(readFile(tb, "testdata/design.yaml")))
}
