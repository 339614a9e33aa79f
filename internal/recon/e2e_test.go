package recon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/app"
	"github.com/payrouter/payrouter/internal/app/apptest"
	"github.com/payrouter/payrouter/internal/recon"
	"github.com/payrouter/payrouter/providers"
)

// A sandbox instance takes Stripe card payments and a refund; its
// simulator's balance transactions, listed through the Stripe adapter,
// must reconcile line for line. A hand-written CSV with an orphan line and
// a wrong amount must be flagged, with exit status 1.
func TestReconcileSandboxEndToEnd(t *testing.T) {
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), nil)
	var pays []payrouter.Payment
	for i, amount := range []int64{1999, 5000, 1000} {
		body := fmt.Sprintf(`{"amount":%d,"currency":"USD","method":"card","reference":"recon-%d","payment_method_tokens":{"stripe":"pm_card_visa"}}`, amount, i)
		st, b := ti.Do(t, "POST", "/v1/payments", body, "Idempotency-Key", fmt.Sprintf("recon-%d", i))
		var p payrouter.Payment
		if err := json.Unmarshal(b, &p); err != nil || st != 201 || p.Status != payrouter.StatusSucceeded || p.Provider != "stripe" {
			t.Fatalf("create %d: got %d %s", amount, st, b)
		}
		pays = append(pays, p)
	}
	if st, b := ti.Do(t, "POST", "/v1/payments/"+pays[1].ID+"/refunds", `{"amount":500}`, "Idempotency-Key", "recon-refund"); st/100 != 2 {
		t.Fatalf("refund: got %d %s", st, b)
	}

	now := time.Now().UTC()
	from, to := now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339)
	built, err := app.BuildProviders(ti.Config, ti.URL, ti.URL, http.NewServeMux())
	if err != nil {
		t.Fatal(err)
	}
	lister, ok := built.Providers["stripe"].(providers.SettlementLister)
	if !ok {
		t.Fatal("the stripe adapter is not a SettlementLister")
	}
	deps := recon.Deps{Open: func(context.Context, string, string) (*recon.Env, func(), error) {
		return &recon.Env{Ledger: ti.Store, Listers: map[string]providers.SettlementLister{"stripe": lister},
			Configured: ti.Config.ProviderNames()}, func() {}, nil
	}}
	run := func(t *testing.T, extra ...string) (int, string, *recon.Report) {
		t.Helper()
		out := t.TempDir()
		args := append([]string{"--from", from, "--to", to, "--settle-after", "1ns", "--out", out}, extra...)
		var stdout, stderr bytes.Buffer
		code := recon.Command(context.Background(), args, &stdout, &stderr, deps)
		b, err := os.ReadFile(filepath.Join(out, "report.json"))
		if err != nil {
			t.Fatalf("exit %d, no report.json: %v\nstderr: %s", code, err, stderr.String())
		}
		var rep recon.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		return code, stdout.String() + stderr.String(), &rep
	}

	t.Run("simulator balance transactions through the adapter", func(t *testing.T) {
		code, out, rep := run(t, "--provider", "stripe")
		if code != 0 || rep.Discrepancies != 0 {
			t.Errorf("exit %d, discrepancies %d, want 0 and 0\n%s", code, rep.Discrepancies, out)
		}
		var payments, refunds int
		for _, l := range rep.Lines {
			if l.Class != recon.Matched {
				t.Errorf("line %+v: class %s, want matched", l, l.Class)
			}
			switch l.Type {
			case "payment":
				payments++
				if l.FeeDelta != 0 || l.SettledFee == 0 {
					t.Errorf("payment %s: settled fee %d, fee delta %d, want the expected fee", l.PaymentID, l.SettledFee, l.FeeDelta)
				}
			case "refund":
				refunds++
				if l.SettledAmount != -500 || l.PaymentID != pays[1].ID {
					t.Errorf("refund line %+v, want -500 for %s", l, pays[1].ID)
				}
			}
		}
		if payments != 3 || refunds != 1 {
			t.Errorf("got %d payment and %d refund lines, want 3 and 1\n%s", payments, refunds, out)
		}
		if len(rep.Totals) != 1 || rep.Totals[0].Gross != 1999+5000+1000 || rep.Totals[0].Refunds != -500 {
			t.Errorf("totals = %+v, want gross 7999 refunds -500 in USD", rep.Totals)
		}
	})

	t.Run("hand-written CSV with an orphan and a wrong amount", func(t *testing.T) {
		at := now.Format(time.RFC3339)
		fee := func(p payrouter.Payment) string { return payrouter.FormatDecimal(p.Attempts[0].ExpectedFee, 2) }
		csvText := "provider_payment_id,order_id,type,gross,fee,net,currency,settled_at\n" +
			fmt.Sprintf("%s,,payment,19.99,%s,,USD,%s\n", pays[0].ProviderPaymentID, fee(pays[0]), at) +
			fmt.Sprintf("%s,,payment,50.00,%s,,USD,%s\n", pays[1].ProviderPaymentID, fee(pays[1]), at) +
			fmt.Sprintf("%s,,refund,-5.00,0,-5.00,USD,%s\n", pays[1].ProviderPaymentID, at) +
			fmt.Sprintf("%s,,payment,9.00,%s,,USD,%s\n", pays[2].ProviderPaymentID, fee(pays[2]), at) + // captured 10.00
			fmt.Sprintf("pi_ghost,,payment,42.00,1.52,,USD,%s\n", at)
		path := filepath.Join(t.TempDir(), "stripe.csv")
		if err := os.WriteFile(path, []byte(csvText), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, rep := run(t, "--settlements", "stripe="+path)
		if code != 1 {
			t.Errorf("exit %d, want 1\n%s", code, out)
		}
		got := map[string]recon.Class{}
		for _, l := range rep.Lines {
			got[l.ProviderPaymentID+"/"+l.Type] = l.Class
		}
		want := map[string]recon.Class{
			pays[0].ProviderPaymentID + "/payment": recon.Matched,
			pays[1].ProviderPaymentID + "/payment": recon.Matched,
			pays[1].ProviderPaymentID + "/refund":  recon.Matched,
			pays[2].ProviderPaymentID + "/payment": recon.AmountMismatch,
			"pi_ghost/payment":                     recon.MissingInLedger,
		}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s: class %q, want %q", k, got[k], w)
			}
		}
		if len(rep.Lines) != len(want) || rep.Discrepancies != 2 {
			t.Errorf("got %d lines, %d discrepancies, want %d and 2\n%s", len(rep.Lines), rep.Discrepancies, len(want), out)
		}
		if !strings.Contains(out, "amount_mismatch 1") || !strings.Contains(out, "missing_in_ledger 1") {
			t.Errorf("summary does not name the discrepancies:\n%s", out)
		}
	})

	t.Run("CSV without the second payment", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "stripe.csv")
		row := fmt.Sprintf("%s,,payment,19.99,%s,,USD,%s\n", pays[0].ProviderPaymentID,
			payrouter.FormatDecimal(pays[0].Attempts[0].ExpectedFee, 2), now.Format(time.RFC3339))
		if err := os.WriteFile(path, []byte("provider_payment_id,type,gross,fee,net,currency,settled_at\n"+strings.Replace(row, ",,", ",", 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, rep := run(t, "--settlements", "stripe="+path)
		missing := map[string]int{}
		for _, l := range rep.Lines {
			if l.Class == recon.MissingInSettlement {
				missing[l.PaymentID+"/"+l.Type]++
			}
		}
		if code != 1 || missing[pays[1].ID+"/payment"] != 1 || missing[pays[1].ID+"/refund"] != 1 || missing[pays[2].ID+"/payment"] != 1 || len(missing) != 3 {
			t.Errorf("exit %d, missing %v, want 1 and payments 2, 3 and the refund missing\n%s", code, missing, out)
		}
	})
}

// `payrouter reconcile --provider xendit` reads Xendit from its API: a
// sandbox instance takes QRIS, DANA and VA payments through Xendit (one
// paid by test mode's simulate endpoint) and a partial refund; the Xendit
// adapter lists the simulator's GET /transactions (paged by after_id) and
// every line must reconcile, fees included.
func TestReconcileXenditFromAPI(t *testing.T) {
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), nil)
	type order struct {
		body string
		pay  func(ppid string)
	}
	simPay := func(ppid string) {
		t.Helper()
		if st, b := ti.Do(t, "POST", "/sim/xendit/_pay/"+ppid, `{"outcome":"success"}`); st != 200 {
			t.Fatalf("_pay: %d %s", st, b)
		}
	}
	simulate := func(ppid string) {
		t.Helper()
		req, _ := http.NewRequest("POST", ti.URL+"/sim/xendit/payment_requests/"+ppid+"/payments/simulate", nil)
		req.SetBasicAuth("xnd_development_payrouter_sandbox", "")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("simulate answered %d", resp.StatusCode)
		}
	}
	orders := []order{
		{`{"amount":150000,"currency":"IDR","method":"qris","reference":"xr-0","provider":"xendit"}`, simPay},
		{`{"amount":75000,"currency":"IDR","method":"dana","reference":"xr-1","provider":"xendit","return_url":"https://shop.example/r"}`, simPay},
		{`{"amount":200000,"currency":"IDR","method":"bank_transfer","bank":"bca","reference":"xr-2","provider":"xendit","customer":{"name":"Budi"}}`, simulate},
	}
	var pays []payrouter.Payment
	for i, o := range orders {
		st, b := ti.Do(t, "POST", "/v1/payments", o.body, "Idempotency-Key", fmt.Sprintf("xr-%d", i))
		var p payrouter.Payment
		if err := json.Unmarshal(b, &p); err != nil || st != 201 || p.Provider != "xendit" || p.Status != payrouter.StatusRequiresAction {
			t.Fatalf("create %d: got %d %s", i, st, b)
		}
		o.pay(p.ProviderPaymentID)
		deadline := time.Now().Add(10 * time.Second)
		for p.Status != payrouter.StatusSucceeded {
			if time.Now().After(deadline) {
				t.Fatalf("payment %s is %s, want succeeded", p.ID, p.Status)
			}
			time.Sleep(20 * time.Millisecond) // polling the API for the webhook's effect
			_, b = ti.Do(t, "GET", "/v1/payments/"+p.ID, nil)
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatal(err)
			}
		}
		pays = append(pays, p)
	}
	if st, b := ti.Do(t, "POST", "/v1/payments/"+pays[0].ID+"/refunds", `{"amount":50000}`, "Idempotency-Key", "xr-refund"); st/100 != 2 {
		t.Fatalf("refund: got %d %s", st, b)
	}

	built, err := app.BuildProviders(ti.Config, ti.URL, ti.URL, http.NewServeMux())
	if err != nil {
		t.Fatal(err)
	}
	lister, ok := built.Providers["xendit"].(providers.SettlementLister)
	if !ok {
		t.Fatal("the xendit adapter is not a SettlementLister")
	}
	now := time.Now().UTC()
	deps := recon.Deps{Open: func(context.Context, string, string) (*recon.Env, func(), error) {
		return &recon.Env{Ledger: ti.Store, Listers: map[string]providers.SettlementLister{"xendit": lister},
			Configured: ti.Config.ProviderNames()}, func() {}, nil
	}}
	run := func() (int, *recon.Report, string) {
		t.Helper()
		out := t.TempDir()
		var stdout, stderr bytes.Buffer
		code := recon.Command(context.Background(), []string{"--provider", "xendit", "--from", now.Add(-time.Hour).Format(time.RFC3339),
			"--to", now.Add(time.Hour).Format(time.RFC3339), "--settle-after", "1ns", "--out", out}, &stdout, &stderr, deps)
		b, err := os.ReadFile(filepath.Join(out, "report.json"))
		if err != nil {
			t.Fatalf("exit %d, no report.json: %v\n%s", code, err, stderr.String())
		}
		var rep recon.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		return code, &rep, stdout.String() + stderr.String()
	}
	code, rep, output := run()
	if code != 0 || rep.Discrepancies != 0 {
		t.Errorf("exit %d, %d discrepancies, want 0 and 0\n%s", code, rep.Discrepancies, output)
	}
	var payments, refunds int
	for _, l := range rep.Lines {
		if l.Class != recon.Matched || l.Source != "api" {
			t.Errorf("line %+v: class %s from %s, want matched from the api", l, l.Class, l.Source)
		}
		switch l.Type {
		case "payment":
			payments++
			if l.SettledFee == 0 || l.FeeDelta != 0 || l.SettledNet != l.SettledAmount-l.SettledFee {
				t.Errorf("payment %s: fee %d (delta %d), net %d, want the expected fee and net = gross − fee", l.PaymentID, l.SettledFee, l.FeeDelta, l.SettledNet)
			}
		case "refund":
			refunds++
			if l.SettledAmount != -50000 || l.PaymentID != pays[0].ID {
				t.Errorf("refund line %+v, want -50000 for %s", l, pays[0].ID)
			}
		}
	}
	if payments != 3 || refunds != 1 {
		t.Errorf("got %d payment and %d refund lines, want 3 and 1\n%s", payments, refunds, output)
	}
	if len(rep.Totals) != 1 || rep.Totals[0].Gross != 150000+75000+200000 || rep.Totals[0].Refunds != -50000 {
		t.Errorf("totals = %+v, want gross 425000 and refunds -50000 in IDR", rep.Totals)
	}

	// The simulator's settlement faults change what /transactions says;
	// reconciliation must name each discrepancy.
	for _, f := range []string{
		fmt.Sprintf(`{"kind":"amount","provider_payment_id":%q,"delta":-1000}`, pays[1].ProviderPaymentID),
		fmt.Sprintf(`{"kind":"drop","provider_payment_id":%q}`, pays[2].ProviderPaymentID),
		`{"kind":"orphan","provider_payment_id":"pr-ghost","delta":42000}`,
	} {
		if st, b := ti.Do(t, "POST", "/sim/xendit/_settlement_faults", f); st != 200 {
			t.Fatalf("settlement fault %s: %d %s", f, st, b)
		}
	}
	code, rep, output = run()
	classes := map[string]recon.Class{}
	for _, l := range rep.Lines {
		if l.Type == "payment" {
			classes[l.ProviderPaymentID] = l.Class
		}
	}
	want := map[string]recon.Class{pays[0].ProviderPaymentID: recon.Matched, pays[1].ProviderPaymentID: recon.AmountMismatch,
		pays[2].ProviderPaymentID: recon.MissingInSettlement, "pr-ghost": recon.MissingInLedger}
	for id, w := range want {
		if classes[id] != w {
			t.Errorf("%s: class %q, want %q\n%s", id, classes[id], w, output)
		}
	}
	if code != 1 || rep.Discrepancies != 3 {
		t.Errorf("exit %d, %d discrepancies, want 1 and 3\n%s", code, rep.Discrepancies, output)
	}
}
