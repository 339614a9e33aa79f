package rules

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
)

// TestShippedCases runs the repository's rules-cases.yaml against a copy of
// the shipped config.yaml's rules and fees (testdata/shipped.yaml) with
// testCaps.
func TestShippedCases(t *testing.T) {
	cases, err := ParseCases("../rules-cases.yaml", readFile(t, "../rules-cases.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 10 {
		t.Fatalf("got %d cases, want at least 10", len(cases))
	}
	for _, r := range RunCases(mustCompile(t, string(readFile(t, "testdata/shipped.yaml"))), cases) {
		if !r.Pass {
			t.Errorf("case %q (line %d): %s", r.Case.Name, r.Case.Pos.Line, strings.Join(r.Failures, "; "))
		}
	}
}

func TestRunCasesReportsFailures(t *testing.T) {
	text := `
- name: wrong rule
  payment: {amount: 1, currency: IDR, method: qris}
  expect: {rule: cards}
- name: wrong order
  payment: {amount: 1, currency: IDR, method: qris}
  expect: {providers: [xendit, midtrans]}
- name: right
  payment: {amount: 1, currency: IDR, method: qris}
  expect: {rule: default, providers: [midtrans, xendit], dropped: []}
`
	cases, err := ParseCases("c.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	res := RunCases(designSet(t), cases)
	wants := []struct {
		pass bool
		msg  string
	}{{false, "rule: want cards, got default"}, {false, "providers: want [xendit, midtrans], got [midtrans, xendit]"}, {true, ""}}
	for i, w := range wants {
		if res[i].Pass != w.pass || strings.Join(res[i].Failures, ";") != w.msg {
			t.Errorf("case %d: got pass=%v %q, want pass=%v %q", i, res[i].Pass, res[i].Failures, w.pass, w.msg)
		}
	}
}

func TestParseCasesErrors(t *testing.T) {
	tests := []struct {
		name, text string
		line       int
		msg        string
	}{
		{"unknown key", "- name: a\n  payment: {amount: 1, currency: IDR, method: qris, amout: 2}\n", 2, `unknown key "amout"`},
		{"missing method", "- name: a\n  payment: {amount: 1, currency: IDR}\n", 2, "payment needs method"},
		{"bad currency", "- name: a\n  payment: {amount: 1, currency: XYZ, method: qris}\n", 2, `unknown currency "XYZ"`},
		{"amount float", "- name: a\n  payment: {amount: 1.5, currency: IDR, method: qris}\n", 2, "must be an integer"},
		{"no payment", "- name: a\n  expect: {rule: x}\n", 1, "has no payment"},
		{"not a list", "name: a\n", 1, "must be a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCases("c.yaml", []byte(tt.text))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want *Error", err)
			}
			if f := e.Findings[0]; f.Line != tt.line || !strings.Contains(f.Message, tt.msg) {
				t.Errorf("got %s, want line %d %q", f, tt.line, tt.msg)
			}
		})
	}
}

func TestReplay(t *testing.T) {
	oldRS := designSet(t)
	newText := strings.Replace(string(readFile(t, "testdata/design.yaml")), "providers: [midtrans, xendit]}", "providers: [xendit, midtrans]}", 1)
	newRS := mustCompile(t, newText)
	r := NewReplay(oldRS, newRS)
	now := time.Now()
	for i := 0; i < 10; i++ {
		r.Add(&payrouter.Payment{ID: "p", Amount: 100000, Currency: "IDR", Method: payrouter.MethodQRIS, CreatedAt: now})
	}
	for i := 0; i < 5; i++ {
		r.Add(&payrouter.Payment{ID: "g", Amount: 150000, Currency: "IDR", Method: payrouter.MethodGoPay, CreatedAt: now})
	}
	rep := r.Report()
	if rep.Total != 15 || rep.Changed != 10 {
		t.Fatalf("total %d changed %d, want 15 and 10", rep.Total, rep.Changed)
	}
	rows := map[RouteKey]ReplayRow{}
	for _, row := range rep.Rows {
		rows[row.RouteKey] = row
	}
	mt := rows[RouteKey{"default", "midtrans"}]
	if mt.Old.Count != 10 || mt.New.Count != 0 || mt.Old.Fees["IDR"] != 7000 {
		t.Errorf("default/midtrans: got %+v, want old 10 (fees 7000), new 0", mt)
	}
	xe := rows[RouteKey{"default", "xendit"}]
	if xe.Old.Count != 0 || xe.New.Count != 10 || xe.New.UnknownFee != 10 {
		t.Errorf("default/xendit: got %+v, want new 10 with unknown fees", xe)
	}
	gp := rows[RouteKey{"idr-wallets", "midtrans"}]
	if gp.Old.Count != 5 || gp.New.Count != 5 || gp.Old.Fees["IDR"] != 15000 || gp.New.Fees["IDR"] != 15000 {
		t.Errorf("idr-wallets/midtrans: got %+v, want 5/5 and 15000 fees each", gp)
	}
	if len(rep.Moves) != 1 || rep.Moves[0].Count != 10 || rep.Moves[0].To != (RouteKey{"default", "xendit"}) {
		t.Errorf("moves: got %+v", rep.Moves)
	}
}

func TestDiff(t *testing.T) {
	old := mustParse(t, "old.yaml", `
fees: {stripe: {card: {percent: 2.9}}, midtrans: {qris: {percent: 0.7}}}
rules:
  - name: a
    match: {method: [card]}
    providers: [stripe]
  - name: b
    match: {method: [qris]}
    providers: [midtrans]
  - name: gone
    match: {method: [ovo]}
    providers: [ovo]
default: {providers: [midtrans]}
`)
	new := mustParse(t, "new.yaml", `
fees: {stripe: {card: {percent: 3.1, fixed: {USD: 30}}}, xendit: {qris: {percent: 0.7}}}
rules:
  - name: b
    match: {method: [qris]}
    providers: [midtrans]
  - name: a
    match: {method: [card], amount: {max: 1000}}
    strategy: cheapest
    providers: [stripe, xendit]
  - name: fresh
    match: {method: [dana]}
    providers: [dana]
default: {providers: [midtrans, xendit]}
`)
	var got []string
	for _, c := range Diff(old, new) {
		got = append(got, c.String())
	}
	want := []string{
		"↕ rule b (line 4): evaluation order 2 → 1 among unchanged names",
		"~ rule a (line 7): match method=card → method=card, amount≤1000; strategy priority → cheapest; providers [stripe] → [stripe, xendit]",
		"↕ rule a (line 7): evaluation order 1 → 2 among unchanged names",
		"+ rule fresh (line 11): method=dana; priority [dana]",
		"- rule gone (old line 10): method=ovo; priority [ovo]",
		"~ default (line 14): providers [midtrans] → [midtrans, xendit]",
		"~ fees stripe.card (line 2): 2.90% → 3.10% + USD 30",
		"+ fees xendit.qris (line 2): 0.70%",
		"- fees midtrans.qris (old line 2): 0.70%",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
