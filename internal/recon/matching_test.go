package recon

import (
	"strings"
	"testing"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/rules"
)

func classes(rep *Report) []Class {
	var out []Class
	for _, l := range rep.Lines {
		out = append(out, l.Class)
	}
	return out
}

// A partial capture pays the fee on the captured amount: with the routing
// fee model it matches; without it (the attempt's fee on the authorised
// amount) it would be a fee mismatch.
func TestPartialCaptureFeeOnCapturedAmount(t *testing.T) {
	feeOf := func(provider string, m payrouter.Method, cur payrouter.Currency, amount int64) (int64, bool) {
		f, ok := rules.ComputeFee(amount, 290, 30)
		return f, ok && provider == "stripe"
	}
	mk := func() *payrouter.Payment {
		p := paid("pc", 10000, 320, "USD", 1) // 2.9% + 30 of 100.00
		p.AmountCaptured = 6000
		return p
	}
	capFee, _ := feeOf("stripe", "card", "USD", 6000) // 204
	e := settle("pi_pc", "payment", 6000, capFee, "USD", 1)
	o := opts
	o.Fee = feeOf
	rep, err := Reconcile([]*payrouter.Payment{mk()}, nil, []Entry{e}, o, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got := classes(rep); len(got) != 1 || got[0] != Matched || rep.Lines[0].ExpectedFee != capFee {
		t.Errorf("with the fee model: %v expected fee %d, want [matched] and %d", got, rep.Lines[0].ExpectedFee, capFee)
	}
	rep, _ = Reconcile([]*payrouter.Payment{mk()}, nil, []Entry{e}, opts, t0)
	if got := classes(rep); len(got) != 1 || got[0] != FeeMismatch {
		t.Errorf("without the fee model: %v, want [fee_mismatch] (the authorised amount's fee)", got)
	}
}

// Several refunds of one payment, of equal amounts, match by refund id,
// each to its own; a refund line naming an unknown refund id of a known
// payment is a refund mismatch.
func TestMultiRefundsByRefundID(t *testing.T) {
	p := paid("mr", 10000, 320, "USD", 1)
	for _, id := range []string{"re_1", "re_2"} {
		p.Refunds = append(p.Refunds, payrouter.Refund{ID: id, Amount: 1000, Status: payrouter.RefundSucceeded, CreatedAt: p.CreatedAt})
	}
	p.AmountRefunded, p.Status = 2000, payrouter.StatusPartiallyRefunded
	r2 := settle("pi_mr", "refund", -1000, 0, "USD", 2)
	r2.RefundID = "re_2"
	r1 := settle("pi_mr", "refund", -1000, 0, "USD", 2)
	r1.RefundID = "re_1"
	r3 := settle("pi_mr", "refund", -1000, 0, "USD", 2)
	r3.RefundID = "re_9"
	rep, err := Reconcile([]*payrouter.Payment{p}, nil, []Entry{settle("pi_mr", "payment", 10000, 320, "USD", 1), r2, r1, r3}, opts, t0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Class{}
	for _, l := range rep.Lines {
		if l.Type == "refund" {
			got[l.RefundID] = l.Class
		}
	}
	if got["re_1"] != Matched || got["re_2"] != Matched || got["re_9"] != RefundMismatch || len(got) != 3 {
		t.Errorf("refund lines by id: %v", got)
	}
}

// A chargeback is its own class (never matched, always a discrepancy) and
// is money out in the totals; one for an unknown payment is missing in
// the ledger.
func TestChargeback(t *testing.T) {
	p := paid("cb", 5000, 175, "USD", 1)
	rep, err := Reconcile([]*payrouter.Payment{p}, nil, []Entry{settle("pi_cb", "payment", 5000, 175, "USD", 1),
		settle("pi_cb", "chargeback", -5000, 1500, "USD", 3), settle("pi_zz", "chargeback", -700, 0, "USD", 3)}, opts, t0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Class{Matched, Chargeback, MissingInLedger}
	if got := classes(rep); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("classes %v, want %v", got, want)
	}
	if !Chargeback.Discrepancy() || rep.Lines[1].PaymentID != "cb" {
		t.Errorf("chargeback line %+v", rep.Lines[1])
	}
	s := rep.Sums()
	// gross: the payment 5000, the chargeback −5000, the unknown chargeback −700
	if len(s) != 1 || s[0].Gross != -700 || s[0].Fee != 175+1500 || s[0].Net != -700-1675 {
		t.Errorf("sums %+v", s)
	}
}

func TestDashboardFormats(t *testing.T) {
	f := Formats()
	dana := "acquirementId;merchantTransId;refundId;transactionType;createdTime;settlementDate;currency;grossAmountCents;feeAmountCents;netAmountCents;settlementBatchId\n"
	tests := []struct {
		name, format, body, err string
		want                    []Entry
	}{
		{name: "dana cents", format: "dana", body: dana +
			"2026A1;pay_1_a1;;PAYMENT;2026-11-02T10:00:00+07:00;2026-11-02;IDR;15000000;210000;14790000;PO-20261102\n" +
			"2026A1;pay_1_a1;rf_1;REFUND;2026-11-02T11:00:00+07:00;2026-11-02;IDR;500000;0;-500000;PO-20261102\n"},
		{name: "dana half a rupiah", format: "dana", body: dana + "A;o;;PAYMENT;2026-11-02T10:00:00+07:00;2026-11-02;IDR;15000050;0;15000050;B\n",
			err: "grossAmountCents: \"15000050\" cents is not a whole number of IDR minor units"},
		{name: "dana net wrong", format: "dana", body: dana + "A;o;;PAYMENT;2026-11-02T10:00:00+07:00;2026-11-02;IDR;15000000;100;15000000;B\n",
			err: "netAmountCents"},
		{name: "dana comma file", format: "dana", body: strings.ReplaceAll(dana, ";", ","), err: "missing column"},
		{name: "midtrans decimals", format: "midtrans", body: "Transaction ID,Order ID,Refund Key,Transaction Type,Payment Type,Transaction Time,Settlement Date,Currency,Gross Amount,MDR Fee,Net Amount,Payout ID\n" +
			"tx1,pay_2_a1,,settlement,qris,2026-11-02 10:00:00,2026-11-04,IDR,150000.00,1050.00,148950.00,PO-20261104\n"},
		{name: "midtrans unknown type", format: "midtrans", body: "Transaction ID,Order ID,Refund Key,Transaction Type,Payment Type,Transaction Time,Settlement Date,Currency,Gross Amount,MDR Fee,Net Amount,Payout ID\n" +
			"tx1,pay_2_a1,,deny,qris,2026-11-02 10:00:00,2026-11-04,IDR,150000.00,1050.00,148950.00,PO-20261104\n", err: "Transaction Type: \"deny\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, err := f[tt.format].Parse(strings.NewReader(tt.body), "x.csv", tt.format)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), "x.csv:") {
					t.Fatalf("error %v, want it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch tt.format {
			case "dana":
				if len(es) != 2 || es[0].Amount != 150000 || es[0].Fee != 2100 || es[0].Net != 147900 || es[1].Amount != -5000 ||
					es[1].RefundID != "rf_1" || es[1].Type != "refund" || es[0].Batch != "PO-20261102" || es[0].SettledAt.Hour() != 3 {
					t.Errorf("dana entries %+v", es)
				}
			case "midtrans":
				if len(es) != 1 || es[0].Amount != 150000 || es[0].Fee != 1050 || es[0].ProviderPaymentID != "tx1" || es[0].PayoutOn != "2026-11-04" {
					t.Errorf("midtrans entries %+v", es)
				}
			}
		})
	}
}

// One-to-many: a capture settled in two parts that add up to it is
// matched (not a duplicate), with the fee checked on the parts' sum; two
// whole-amount lines stay a duplicate.
func TestSplitSettlement(t *testing.T) {
	p := paid("sp", 10000, 320, "USD", 1)
	rep, err := Reconcile([]*payrouter.Payment{p}, nil, []Entry{settle("pi_sp", "payment", 6000, 200, "USD", 1),
		settle("pi_sp", "payment", 4000, 120, "USD", 2)}, opts, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got := classes(rep); len(got) != 2 || got[0] != Matched || got[1] != Matched || rep.Discrepancies != 0 {
		t.Errorf("split in two: %v", got)
	}
	if l := rep.Lines[0]; l.LedgerAmount != 10000 || l.AmountDelta != 0 || l.FeeDelta != 0 {
		t.Errorf("first part %+v", l)
	}
	rep, _ = Reconcile([]*payrouter.Payment{paid("sp", 10000, 320, "USD", 1)}, nil, []Entry{settle("pi_sp", "payment", 6000, 250, "USD", 1),
		settle("pi_sp", "payment", 4000, 120, "USD", 2)}, opts, t0)
	if got := classes(rep); got[0] != FeeMismatch || rep.Lines[0].FeeDelta != 50 {
		t.Errorf("split with a wrong fee: %v %+v", got, rep.Lines[0])
	}
	rep, _ = Reconcile([]*payrouter.Payment{paid("sp", 10000, 320, "USD", 1)}, nil, []Entry{settle("pi_sp", "payment", 10000, 320, "USD", 1),
		settle("pi_sp", "payment", 10000, 320, "USD", 2)}, opts, t0)
	if got := classes(rep); got[0] != Matched || got[1] != DuplicateSettlement {
		t.Errorf("whole twice: %v", got)
	}
	rep, _ = Reconcile([]*payrouter.Payment{paid("sp", 10000, 320, "USD", 1)}, nil, []Entry{settle("pi_sp", "payment", 6000, 200, "USD", 1),
		settle("pi_sp", "payment", 6000, 200, "USD", 2)}, opts, t0)
	if got := classes(rep); got[0] != AmountMismatch {
		t.Errorf("parts that do not add up: %v", got)
	}
}

// Per line 5 minor units pass; per run at most 8 may be absorbed: three
// lines 3 off each (9) exceed it and count one discrepancy more.
func TestRunTolerance(t *testing.T) {
	var ps []*payrouter.Payment
	var es []Entry
	for _, id := range []string{"t1", "t2", "t3"} {
		ps = append(ps, paid(id, 1000, 59, "USD", 1))
		es = append(es, settle("pi_"+id, "payment", 1000, 62, "USD", 1))
	}
	o := opts
	o.Tolerance = 5
	rep, _ := Reconcile(ps, nil, es, o, t0)
	if rep.Discrepancies != 0 || rep.MatchedDeltas != 9 || rep.ToleranceExceeded {
		t.Errorf("no run bound: %d discrepancies, deltas %d", rep.Discrepancies, rep.MatchedDeltas)
	}
	o.RunTolerance = 8
	rep, _ = Reconcile(ps, nil, es, o, t0)
	if rep.Discrepancies != 1 || !rep.ToleranceExceeded {
		t.Errorf("run bound 8: %d discrepancies, exceeded %v", rep.Discrepancies, rep.ToleranceExceeded)
	}
	o.RunTolerance = 9
	if rep, _ = Reconcile(ps, nil, es, o, t0); rep.Discrepancies != 0 {
		t.Errorf("run bound 9: %d discrepancies", rep.Discrepancies)
	}
}

// Many-to-one: two refunds of one payment settled in one line of their
// sum match; a line of less than all of them does not.
func TestRefundsBatchedInOneLine(t *testing.T) {
	mk := func() *payrouter.Payment {
		p := paid("bt", 10000, 320, "USD", 1)
		for _, id := range []string{"re_a", "re_b"} {
			p.Refunds = append(p.Refunds, payrouter.Refund{ID: id, Amount: 1500, Status: payrouter.RefundSucceeded, CreatedAt: p.CreatedAt})
		}
		return p
	}
	pay := settle("pi_bt", "payment", 10000, 320, "USD", 1)
	rep, _ := Reconcile([]*payrouter.Payment{mk()}, nil, []Entry{pay, settle("pi_bt", "refund", -3000, 0, "USD", 2)}, opts, t0)
	if got := classes(rep); len(got) != 2 || got[1] != Matched || rep.Lines[1].LedgerAmount != 3000 || !strings.Contains(rep.Lines[1].Detail, "re_a, re_b") {
		t.Errorf("batched refunds: %v %+v", got, rep.Lines[1])
	}
	rep, _ = Reconcile([]*payrouter.Payment{mk()}, nil, []Entry{pay, settle("pi_bt", "refund", -2000, 0, "USD", 2)}, opts, t0)
	if got := classes(rep); got[1] != RefundMismatch {
		t.Errorf("a line of neither one refund nor all: %v", got)
	}
}
