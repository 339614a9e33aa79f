package sim

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSettlementBook(t *testing.T) {
	at := time.Date(2026, 11, 2, 3, 0, 0, 0, time.UTC) // 10:00 WIB
	lines := []SettlementLine{
		{ProviderPaymentID: "A", OrderID: "pay_a_a1", Type: "payment", Method: "dana", Currency: "IDR", Amount: 150000, At: at},
		{ProviderPaymentID: "B", OrderID: "pay_b_a1", Type: "payment", Method: "dana", Currency: "IDR", Amount: 20000, At: at},
		{ProviderPaymentID: "B", OrderID: "pay_b_a1", RefundID: "rf_b", Type: "refund", Method: "dana", Currency: "IDR", Amount: 5000, At: at},
	}
	b := &SettlementBook{Fees: SettleFeesFor("dana"), Delay: 48 * time.Hour, OrphanMethod: "dana", BatchPrefix: "DANA"}
	if err := b.AddFault(SettlementFault{Kind: "drop", ProviderPaymentID: "Z"}, lines, at); !errors.Is(err, ErrNotFound) {
		t.Errorf("fault on an unknown payment: %v", err)
	}
	if err := b.AddFault(SettlementFault{Kind: "explode", ProviderPaymentID: "A"}, lines, at); err == nil {
		t.Error("unknown kind accepted")
	}
	for _, f := range []SettlementFault{{Kind: "fee", ProviderPaymentID: "A", Delta: 100}, {Kind: "duplicate", ProviderPaymentID: "B"},
		{Kind: "orphan", Delta: 7000}} {
		if err := b.AddFault(f, lines, at); err != nil {
			t.Fatal(err)
		}
	}
	rep := b.Report(lines, at.Add(-time.Hour), at.Add(time.Hour))
	if len(rep) != 5 {
		t.Fatalf("%d lines, want A, B twice, the refund and the orphan: %+v", len(rep), rep)
	}
	if rep[0].Fee != 2100+100 || rep[0].Batch != "DANA-20261104" || rep[2].Type != "payment" || rep[2].ProviderPaymentID != "B" {
		t.Errorf("lines %+v", rep[:3])
	}
	var buf bytes.Buffer
	if err := WriteSettlementReport(&buf, "dana", rep); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"A;pay_a_a1;;PAYMENT;2026-11-02T10:00:00+07:00;2026-11-04;IDR;15000000;220000;14780000;DANA-20261104",
		"B;pay_b_a1;rf_b;REFUND;", ";IDR;500000;0;-500000;", ";700000;9800;690200;"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if err := b.AddFault(SettlementFault{Kind: "drop", ProviderPaymentID: "A"}, lines, at); err != nil {
		t.Fatal(err)
	}
	if rep := b.Report(lines, at.Add(-time.Hour), at.Add(time.Hour)); len(rep) != 4 {
		t.Errorf("after drop: %d lines, want 4", len(rep))
	}
	if rep := b.Report(lines, at.Add(time.Hour), at.Add(2*time.Hour)); len(rep) != 0 {
		t.Errorf("outside the window: %+v", rep)
	}
}
