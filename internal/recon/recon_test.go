package recon

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/providers"
)

var (
	t0   = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	opts = Options{From: t0, To: t0.Add(10 * 24 * time.Hour), SettleAfter: 72 * time.Hour, Providers: []string{"stripe"}}
)

// paid is a captured stripe payment created at day d of the window.
func paid(id string, amount, fee int64, cur payrouter.Currency, d int) *payrouter.Payment {
	return &payrouter.Payment{ID: id, Status: payrouter.StatusSucceeded, Amount: amount, Currency: cur, AmountCaptured: amount,
		Provider: "stripe", ProviderPaymentID: "pi_" + id, CreatedAt: t0.Add(time.Duration(d) * 24 * time.Hour),
		Attempts: []payrouter.Attempt{{N: 1, Provider: "stripe", ProviderPaymentID: "pi_" + id, Status: payrouter.AttemptSucceeded,
			ExpectedFee: fee, IdempotencyKey: payrouter.AttemptKey(id, 1)}}}
}

func settle(ppid, typ string, amount, fee int64, cur payrouter.Currency, d int) Entry {
	return Entry{Settlement: providers.Settlement{Provider: "stripe", ProviderPaymentID: ppid, Type: typ, Amount: amount, Fee: fee,
		Net: amount - fee, Currency: cur, SettledAt: t0.Add(time.Duration(d) * 24 * time.Hour)}, Source: "test"}
}

func withRefund(p *payrouter.Payment, amount int64, st payrouter.RefundStatus) *payrouter.Payment {
	p.AmountRefunded += amount
	p.Status = payrouter.StatusPartiallyRefunded
	p.Refunds = append(p.Refunds, payrouter.Refund{ID: "re_" + p.ID, Amount: amount, Status: st, CreatedAt: p.CreatedAt.Add(time.Hour)})
	return p
}

func TestReconcileClasses(t *testing.T) {
	failed := paid("f", 1000, 59, "USD", 1)
	failed.Status, failed.AmountCaptured, failed.Attempts[0].Status = payrouter.StatusFailed, 0, payrouter.AttemptFailed
	byOrder := settle("", "payment", 1999, 88, "USD", 2)
	byOrder.OrderID = payrouter.AttemptKey("a", 1)
	byPayID := settle("", "payment", 1999, 88, "USD", 2)
	byPayID.OrderID = "a"

	tests := []struct {
		name      string
		payments  []*payrouter.Payment
		anomalies []store.Anomaly
		entries   []Entry
		tol       int64
		want      []Class
		wantDelta [][2]int64 // amount, fee delta per line (nil = don't check)
	}{
		{name: "matched", payments: []*payrouter.Payment{paid("a", 1999, 88, "USD", 1)},
			entries: []Entry{settle("pi_a", "payment", 1999, 88, "USD", 2)}, want: []Class{Matched}, wantDelta: [][2]int64{{0, 0}}},
		{name: "matched by order id", payments: []*payrouter.Payment{paid("a", 1999, 88, "USD", 1)},
			entries: []Entry{byOrder}, want: []Class{Matched}},
		{name: "matched by payment id", payments: []*payrouter.Payment{paid("a", 1999, 88, "USD", 1)},
			entries: []Entry{byPayID}, want: []Class{Matched}},
		{name: "fee delta within tolerance", payments: []*payrouter.Payment{paid("a", 1999, 88, "USD", 1)},
			entries: []Entry{settle("pi_a", "payment", 1999, 89, "USD", 2)}, tol: 1, want: []Class{Matched}, wantDelta: [][2]int64{{0, 1}}},
		{name: "fee mismatch", payments: []*payrouter.Payment{paid("a", 1999, 88, "USD", 1)},
			entries: []Entry{settle("pi_a", "payment", 1999, 95, "USD", 2)}, want: []Class{FeeMismatch}, wantDelta: [][2]int64{{0, 7}}},
		{name: "amount mismatch", payments: []*payrouter.Payment{paid("a", 1999, 88, "USD", 1)},
			entries: []Entry{settle("pi_a", "payment", 1899, 88, "USD", 2)}, want: []Class{AmountMismatch}, wantDelta: [][2]int64{{-100, 0}}},
		{name: "amount within tolerance", payments: []*payrouter.Payment{paid("a", 150000, 6350, "IDR", 1)},
			entries: []Entry{settle("pi_a", "payment", 150001, 6350, "IDR", 2)}, tol: 1, want: []Class{Matched}, wantDelta: [][2]int64{{1, 0}}},
		{name: "currency mismatch", payments: []*payrouter.Payment{paid("a", 1999, 88, "USD", 1)},
			entries: []Entry{settle("pi_a", "payment", 1999, 88, "EUR", 2)}, want: []Class{AmountMismatch}},
		{name: "settled but failed in payrouter", payments: []*payrouter.Payment{failed},
			entries: []Entry{settle("pi_f", "payment", 1000, 59, "USD", 2)}, want: []Class{AmountMismatch}, wantDelta: [][2]int64{{1000, 0}}},
		{name: "orphan settlement", payments: []*payrouter.Payment{paid("a", 1999, 88, "USD", 1)},
			entries: []Entry{settle("pi_a", "payment", 1999, 88, "USD", 2), settle("pi_nobody", "payment", 500, 45, "USD", 3)},
			want:    []Class{Matched, MissingInLedger}},
		{name: "duplicate settlement", payments: []*payrouter.Payment{paid("a", 1999, 88, "USD", 1)},
			entries: []Entry{settle("pi_a", "payment", 1999, 88, "USD", 2), settle("pi_a", "payment", 1999, 88, "USD", 3)},
			want:    []Class{Matched, DuplicateSettlement}, wantDelta: [][2]int64{{0, 0}, {1999, 88}}},
		{name: "missing in settlement", payments: []*payrouter.Payment{paid("a", 1999, 88, "USD", 1), paid("late", 700, 50, "USD", 9)},
			want: []Class{MissingInSettlement}}, // "late" is within settle-after of To: not yet due
		{name: "created before the window: not missing", payments: []*payrouter.Payment{paid("old", 1999, 88, "USD", -3)}},
		{name: "settled in window for a payment before it", payments: []*payrouter.Payment{paid("old", 1999, 88, "USD", -3)},
			entries: []Entry{settle("pi_old", "payment", 1999, 88, "USD", 0)}, want: []Class{Matched}},
		{name: "refund matched", payments: []*payrouter.Payment{withRefund(paid("a", 1999, 88, "USD", 1), 500, payrouter.RefundSucceeded)},
			entries: []Entry{settle("pi_a", "payment", 1999, 88, "USD", 2), settle("pi_a", "refund", -500, 0, "USD", 3)},
			want:    []Class{Matched, Matched}},
		{name: "refund wrong amount", payments: []*payrouter.Payment{withRefund(paid("a", 1999, 88, "USD", 1), 500, payrouter.RefundSucceeded)},
			entries: []Entry{settle("pi_a", "payment", 1999, 88, "USD", 2), settle("pi_a", "refund", -600, 0, "USD", 3)},
			want:    []Class{Matched, RefundMismatch, MissingInSettlement}},
		{name: "refund pending in payrouter", payments: []*payrouter.Payment{withRefund(paid("a", 1999, 88, "USD", 1), 500, payrouter.RefundPending)},
			entries: []Entry{settle("pi_a", "payment", 1999, 88, "USD", 2), settle("pi_a", "refund", -500, 0, "USD", 3)},
			want:    []Class{Matched, RefundMismatch}},
		{name: "refund twice", payments: []*payrouter.Payment{withRefund(paid("a", 1999, 88, "USD", 1), 500, payrouter.RefundSucceeded)},
			entries: []Entry{settle("pi_a", "payment", 1999, 88, "USD", 2), settle("pi_a", "refund", -500, 0, "USD", 3), settle("pi_a", "refund", -500, 0, "USD", 4)},
			want:    []Class{Matched, Matched, RefundMismatch}},
		{name: "fee and adjustment lines", entries: []Entry{settle("", "fee", -150, 0, "USD", 2), settle("", "adjustment", -2000, 0, "USD", 2)},
			want: []Class{Other, Other}},
		{name: "orphan webhook anomaly", anomalies: []store.Anomaly{
			{ID: 7, Kind: store.AnomalyOrphan, Provider: "stripe", Detail: "no payment for pi_zz", CreatedAt: t0.Add(time.Hour)},
			{ID: 8, Kind: store.AnomalyOrphan, Provider: "stripe", CreatedAt: t0.Add(-time.Hour)},    // before the window
			{ID: 9, Kind: store.AnomalyTransition, Provider: "stripe", CreatedAt: t0.Add(time.Hour)}, // another kind
			{ID: 10, Kind: store.AnomalyOrphan, Provider: "midtrans", CreatedAt: t0.Add(time.Hour)}}, // not reconciled
			want: []Class{MissingInLedger}},
		{name: "other provider's attempts are not expected here", payments: func() []*payrouter.Payment {
			p := paid("m", 1999, 88, "USD", 1)
			p.Provider, p.Attempts[0].Provider = "midtrans", "midtrans"
			return []*payrouter.Payment{p}
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := opts
			o.Tolerance = tt.tol
			rep, err := Reconcile(tt.payments, tt.anomalies, tt.entries, o, t0)
			if err != nil {
				t.Fatal(err)
			}
			var got []Class
			for _, l := range rep.Lines {
				got = append(got, l.Class)
			}
			if strings.Join(classStrings(got), ",") != strings.Join(classStrings(tt.want), ",") {
				t.Fatalf("classes = %v, want %v\nlines: %+v", got, tt.want, rep.Lines)
			}
			wantDisc := 0
			for _, c := range tt.want {
				if c.Discrepancy() {
					wantDisc++
				}
			}
			if rep.Discrepancies != wantDisc {
				t.Errorf("discrepancies = %d, want %d", rep.Discrepancies, wantDisc)
			}
			for i, d := range tt.wantDelta {
				if l := rep.Lines[i]; l.AmountDelta != d[0] || l.FeeDelta != d[1] {
					t.Errorf("line %d: amount delta %d fee delta %d, want %d %d", i, l.AmountDelta, l.FeeDelta, d[0], d[1])
				}
			}
		})
	}
}

func classStrings(cs []Class) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}

func TestReconcileOptions(t *testing.T) {
	for _, o := range []Options{{}, {From: t0, To: t0}, {From: t0, To: t0.Add(time.Hour), Tolerance: -1}} {
		if _, err := Reconcile(nil, nil, nil, o, t0); err == nil {
			t.Errorf("Reconcile with %+v: want an error", o)
		}
	}
}

// totalsFixture has two currencies, a refund, a fee line and a missing
// payment.
func totalsFixture(t *testing.T) *Report {
	t.Helper()
	payments := []*payrouter.Payment{
		withRefund(paid("a", 1999, 88, "USD", 1), 500, payrouter.RefundSucceeded),
		paid("b", 1000, 59, "USD", 2),
		paid("c", 150000, 6350, "IDR", 1),
		paid("d", 200000, 7800, "IDR", 1), // never settles
	}
	entries := []Entry{
		settle("pi_a", "payment", 1999, 88, "USD", 2),
		settle("pi_a", "refund", -500, 0, "USD", 3),
		settle("pi_b", "payment", 1000, 60, "USD", 3), // fee +1
		settle("", "fee", -150, 0, "USD", 4),
		settle("pi_c", "payment", 150000, 6350, "IDR", 2),
	}
	rep, err := Reconcile(payments, nil, entries, opts, t0)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestTotalsPerCurrency(t *testing.T) {
	rep := totalsFixture(t)
	want := []Total{
		{Provider: "stripe", Currency: "IDR", Lines: 2, Classes: map[Class]int{Matched: 1, MissingInSettlement: 1}, Discrepancies: 1,
			Gross: 150000, FeesExpected: 6350, FeesSettled: 6350, Net: 143650, Missing: 200000},
		{Provider: "stripe", Currency: "USD", Lines: 4, Classes: map[Class]int{Matched: 2, FeeMismatch: 1, Other: 1}, Discrepancies: 1,
			Gross: 2999, Refunds: -500, FeesExpected: 147, FeesSettled: 148, Net: 1999 - 88 - 500 + 1000 - 60 - 150, FeeDelta: 1},
	}
	if len(rep.Totals) != len(want) {
		t.Fatalf("got %d totals, want %d: %+v", len(rep.Totals), len(want), rep.Totals)
	}
	for i, w := range want {
		g := rep.Totals[i]
		gj, _ := json.Marshal(g)
		wj, _ := json.Marshal(w)
		if string(gj) != string(wj) {
			t.Errorf("total %d:\n got %s\nwant %s", i, gj, wj)
		}
	}
	if rep.Discrepancies != 2 {
		t.Errorf("discrepancies = %d, want 2", rep.Discrepancies)
	}
}

func TestReportFiles(t *testing.T) {
	rep := totalsFixture(t)
	rep.Lines[0].Detail = "=HYPERLINK(\"x\")" // provider text must not run as a formula
	dir := filepath.Join(t.TempDir(), "out")
	if err := rep.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "report.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+len(rep.Lines) {
		t.Fatalf("report.csv has %d rows, want header + %d", len(rows), len(rep.Lines))
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	byPPID := map[string][]string{}
	for _, r := range rows[1:] {
		byPPID[r[col["provider_payment_id"]]+"/"+r[col["type"]]] = r
	}
	checks := []struct{ key, column, want string }{
		{"pi_a/payment", "class", "matched"},
		{"pi_a/payment", "settled_gross", "19.99"},
		{"pi_a/payment", "detail", "'=HYPERLINK(\"x\")"},
		{"pi_a/refund", "settled_gross", "-5.00"},
		{"pi_b/payment", "class", "fee_mismatch"},
		{"pi_b/payment", "fee_delta", "0.01"},
		{"pi_b/payment", "discrepancy", "true"},
		{"pi_c/payment", "settled_net", "143650"},
		{"pi_d/payment", "class", "missing_in_settlement"},
		{"pi_d/payment", "ledger_amount", "200000"},
		{"pi_d/payment", "settled_at", ""},
		{"/fee", "class", "other"},
		{"/fee", "discrepancy", "false"},
	}
	for _, c := range checks {
		r, ok := byPPID[c.key]
		if !ok {
			t.Errorf("report.csv: no row %s", c.key)
			continue
		}
		if got := r[col[c.column]]; got != c.want {
			t.Errorf("report.csv %s %s = %q, want %q", c.key, c.column, got, c.want)
		}
	}

	jb, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	dec := json.NewDecoder(bytes.NewReader(jb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&back); err != nil {
		t.Fatalf("report.json: %v", err)
	}
	if back.Discrepancies != 2 || len(back.Lines) != len(rep.Lines) || len(back.Totals) != 2 || back.Totals[1].Gross != 2999 {
		t.Errorf("report.json round trip: discrepancies %d lines %d totals %+v", back.Discrepancies, len(back.Lines), back.Totals)
	}
	if strings.Contains(string(jb), ".") && strings.Contains(string(jb), "\"settled_amount\": 19.99") {
		t.Errorf("report.json must carry integer minor units")
	}

	var sum bytes.Buffer
	if err := rep.WriteSummary(&sum); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PROVIDER", "29.99", "-5.00", "1.47", "1.48", "0.01", "200000", "2 discrepancies", "fee_mismatch 1", "missing_in_settlement 1"} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum.String())
		}
	}
}
