package recon

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/providers"
)

type fakeLedger []*payrouter.Payment

func (l fakeLedger) ScanPayments(_ context.Context, _ time.Time, fn func(*payrouter.Payment) error) error {
	for _, p := range l {
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

func (fakeLedger) ListAnomalies(context.Context, int) ([]store.Anomaly, error) { return nil, nil }

type fakeLister []providers.Settlement

func (f fakeLister) Settlements(context.Context, time.Time, time.Time) ([]providers.Settlement, error) {
	return f, nil
}

// The rules expect 2.0 % at ovo, the settlements say 2.5 % + Rp 100: the
// drift is reported per provider × method × currency and --suggest prints
// the fee table that reproduces every settled fee.
func TestFeeDriftAndSuggestion(t *testing.T) {
	var ledger fakeLedger
	var sett fakeLister
	now := time.Now().UTC()
	for i, amount := range []int64{100000, 150000, 333333, 99999} {
		id := fmt.Sprintf("p%d", i)
		p := paid(id, amount, feeOf(amount, 200, 0), "IDR", 0)
		p.CreatedAt, p.Method, p.Provider, p.Attempts[0].Provider = now.Add(-time.Hour), "ovo", "ovo", "ovo"
		ledger = append(ledger, p)
		sett = append(sett, providers.Settlement{Provider: "ovo", ProviderPaymentID: "pi_" + id, Type: "payment", Amount: amount,
			Fee: feeOf(amount, 250, 100), Net: amount - feeOf(amount, 250, 100), Currency: "IDR", SettledAt: now.Add(-time.Hour)})
	}
	deps := Deps{Open: func(context.Context, string, string) (*Env, func(), error) {
		return &Env{Ledger: ledger, Listers: map[string]providers.SettlementLister{"ovo": sett}, Configured: []string{"ovo"}}, func() {}, nil
	}}
	var out, errb bytes.Buffer
	if code := FeesCommand(context.Background(), []string{"--from", "2h"}, &out, &errb, deps); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var vol, exp, act int64
	for _, p := range ledger {
		vol += p.Amount
		exp += feeOf(p.Amount, 200, 0)
		act += feeOf(p.Amount, 250, 100)
	}
	row := fmt.Sprintf("ovo  ovo  IDR  4  %d  %d  %d  %d  %d  2.5%% + 100", vol, exp, act, act-exp, (act-exp)*10000/vol)
	if got := strings.Join(strings.Fields(out.String()), "  "); !strings.Contains(got, strings.Join(strings.Fields(row), "  ")) {
		t.Errorf("drift table:\n%s\nwant a row like %q", out.String(), row)
	}
	out.Reset()
	if code := FeesCommand(context.Background(), []string{"--from", "2h", "--suggest"}, &out, &errb, deps); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if want := "fees:\n  ovo:\n    ovo: {percent: 2.5, fixed: {IDR: 100}}\n"; out.String() != want {
		t.Errorf("suggestion:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestFitFee(t *testing.T) {
	tests := []struct {
		bp, fixed int64
		amounts   []int64
	}{
		{290, 30, []int64{1999, 5000, 1000, 12345}},
		{140, 0, []int64{150000, 20000, 777}},
		{0, 4000, []int64{10000, 250000}},
		{70, 0, []int64{150000}},
	}
	for _, tt := range tests {
		var ps []feePoint
		for _, a := range tt.amounts {
			ps = append(ps, feePoint{a, feeOf(a, tt.bp, tt.fixed)})
		}
		bp, fixed, exact := fitFee(ps)
		if !exact || feeOf(tt.amounts[0], bp, fixed) != ps[0].fee {
			t.Errorf("fit of %d bp + %d: got %d bp + %d exact=%v", tt.bp, tt.fixed, bp, fixed, exact)
		}
	}
	if percent(290) != "2.9" || percent(250) != "2.5" || percent(273) != "2.73" || percent(100) != "1" {
		t.Errorf("percent: %s %s %s %s", percent(290), percent(250), percent(273), percent(100))
	}
}
