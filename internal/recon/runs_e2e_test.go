package recon_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/app/apptest"
	"github.com/payrouter/payrouter/internal/config"
	"github.com/payrouter/payrouter/internal/recon"
)

// providerCase is how the test pays at one provider in sandbox and the
// fee its simulator settles (the shipped config.yaml's fee table, which
// the router's expected fee uses too).
type providerCase struct {
	name, method string
	currency     payrouter.Currency
	amount       int64 // of the first payment; the others add 1000·k
	bp, fixed    int64
	act          bool // the customer acts at the simulator (_pay)
	token        string
	orphanAmount int64
	orphanFee    int64 // what the simulator charges on the orphan
	fullRefund   bool  // the provider refunds only in full
}

func fee(amount, bp, fixed int64) int64 { return (amount*bp+5000)/10000 + fixed }

var cases = []providerCase{
	{name: "stripe", method: "card", currency: "USD", amount: 2000, bp: 290, fixed: 30, token: "pm_card_visa", orphanAmount: 4321, orphanFee: fee(4321, 290, 30)},
	{name: "midtrans", method: "qris", currency: "IDR", amount: 150000, bp: 70, act: true, orphanAmount: 12345, orphanFee: fee(12345, 70, 0)},
	{name: "xendit", method: "qris", currency: "IDR", amount: 150000, bp: 70, act: true, orphanAmount: 12345, orphanFee: fee(12345, 70, 0)},
	{name: "gopay", method: "gopay", currency: "IDR", amount: 150000, bp: 180, act: true, orphanAmount: 12345, orphanFee: fee(12345, 180, 0)},
	{name: "ovo", method: "ovo", currency: "IDR", amount: 150000, bp: 250, act: true, fullRefund: true, orphanAmount: 12345, orphanFee: fee(12345, 250, 0)},
	{name: "dana", method: "dana", currency: "IDR", amount: 150000, bp: 140, act: true, orphanAmount: 12345, orphanFee: fee(12345, 140, 0)},
}

func postJSON(t *testing.T, url string, body any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func waitPaid(t *testing.T, ti *apptest.TestInstance, id string) payrouter.Payment {
	t.Helper()
	var p payrouter.Payment
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		_, b := ti.Do(t, "GET", "/v1/payments/"+id, nil)
		p = payrouter.Payment{}
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		if p.Status == payrouter.StatusSucceeded || p.Status == payrouter.StatusPartiallyRefunded {
			return p
		}
	}
	t.Fatalf("payment %s: status %s, want succeeded", id, p.Status)
	return p
}

// pay makes one captured payment pinned to pc's provider.
func pay(t *testing.T, ti *apptest.TestInstance, pc providerCase, ref string, amount int64) payrouter.Payment {
	t.Helper()
	body := map[string]any{"amount": amount, "currency": pc.currency, "method": pc.method, "provider": pc.name, "reference": ref,
		"customer":   map[string]string{"name": "Budi", "phone": "+6281234567890", "email": "budi@example.com"},
		"return_url": "https://merchant.example/return"}
	if pc.token != "" {
		body["payment_method_tokens"] = map[string]string{pc.name: pc.token}
	}
	st, b := ti.Do(t, "POST", "/v1/payments", body, "Idempotency-Key", ref)
	var p payrouter.Payment
	if err := json.Unmarshal(b, &p); err != nil || st != 201 || p.Provider != pc.name {
		t.Fatalf("create at %s: %d %s", pc.name, st, b)
	}
	if pc.act {
		if st, b := postJSON(t, ti.URL+"/sim/"+pc.name+"/_pay/"+p.ProviderPaymentID, map[string]string{"outcome": "success"}); st != 200 {
			t.Fatalf("_pay: %d %s", st, b)
		}
	}
	return waitPaid(t, ti, p.ID)
}

// Every discrepancy class the simulators can inject, at every provider's
// simulator, through the real sandbox app: each is found exactly once, the
// clean payment and its refund match, and the run's totals are right to
// the unit. The same provider and period again is the same run; lines are
// acknowledged and resolved through the ops handler, audited.
func TestRunsFindEveryInjectedDiscrepancyAtEveryProvider(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testRuns(t, apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), nil))
	})
	t.Run("postgres", func(t *testing.T) {
		// A fresh schema, dropped after the instance stops.
		testRuns(t, apptest.StartSandbox(t, apptest.PostgresDSN(t), func(c *config.Config) { c.Store.Driver = "postgres" }))
	})
}

func testRuns(t *testing.T, ti *apptest.TestInstance) {
	from := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	to := from.Add(3 * time.Hour)

	type want struct {
		gross, fee int64
		ids        map[string]string // fault → provider payment id
		refundID   string
	}
	wants := map[string]*want{}
	for _, pc := range cases {
		w := &want{ids: map[string]string{}}
		wants[pc.name] = w
		var ps []payrouter.Payment
		for k := range 5 {
			ps = append(ps, pay(t, ti, pc, fmt.Sprintf("%s-%d", pc.name, k), pc.amount+int64(k)*1000))
		}
		refund := pc.amount / 10
		if pc.fullRefund {
			refund = pc.amount + 4000
		}
		st, b := ti.Do(t, "POST", "/v1/payments/"+ps[4].ID+"/refunds", map[string]any{"amount": refund}, "Idempotency-Key", pc.name+"-refund")
		if st/100 != 2 {
			t.Fatalf("%s refund: %d %s", pc.name, st, b)
		}
		var rp payrouter.Payment
		_ = json.Unmarshal(b, &rp)
		if len(rp.Refunds) == 1 {
			w.refundID = rp.Refunds[0].ID
		}
		for k, kind := range []string{"drop", "amount", "fee", "duplicate"} {
			w.ids[kind] = ps[k].ProviderPaymentID
			if st, b := postJSON(t, ti.URL+"/sim/"+pc.name+"/_settlement_faults",
				map[string]any{"kind": kind, "provider_payment_id": ps[k].ProviderPaymentID, "delta": 100}); st != 200 {
				t.Fatalf("%s fault %s: %d %s", pc.name, kind, st, b)
			}
		}
		if st, b := postJSON(t, ti.URL+"/sim/"+pc.name+"/_settlement_faults", map[string]any{"kind": "orphan", "delta": pc.orphanAmount}); st != 200 {
			t.Fatalf("%s orphan: %d %s", pc.name, st, b)
		}
		// What the settlement says: b +100, c fee +100, d twice, e, the
		// refund (negative, no fee) and the orphan; a is dropped.
		amt := func(k int) int64 { return pc.amount + int64(k)*1000 }
		f := func(k int) int64 { return fee(amt(k), pc.bp, pc.fixed) }
		w.gross = (amt(1) + 100) + amt(2) + 2*amt(3) + amt(4) - refund + pc.orphanAmount
		// The amount fault changes the settled amount only: the fee stays
		// what the capture paid.
		w.fee = f(1) + f(2) + 100 + 2*f(3) + f(4) + pc.orphanFee
	}

	call := func(t *testing.T, role, method, path string, body any) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		// Through the mounted ops API: the sandbox's ops keys and roles.
		req, _ := http.NewRequest(method, ti.URL+path, rd)
		if role != "" {
			req.Header.Set("Authorization", "Bearer ok_sandbox_"+role)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	for _, pc := range cases {
		t.Run(pc.name, func(t *testing.T) {
			w := wants[pc.name]
			start := map[string]any{"provider": pc.name, "from": from.Format(time.RFC3339), "to": to.Format(time.RFC3339), "reason": "month end"}
			if st, _ := call(t, "viewer", "POST", "/ops/v1/reconciliation/runs", start); st != 403 {
				t.Errorf("viewer starts a run: %d, want 403", st)
			}
			st, b := call(t, "operator", "POST", "/ops/v1/reconciliation/runs", start)
			var run recon.RunView
			if err := json.Unmarshal(b, &run); err != nil || st != 201 || run.Status != "done" {
				t.Fatalf("start: %d %s", st, b)
			}
			classes := map[recon.Class]int{}
			byClass := map[recon.Class][]recon.LineView{}
			for _, l := range run.Lines {
				classes[l.Class]++
				byClass[l.Class] = append(byClass[l.Class], l)
			}
			wantClasses := map[recon.Class]int{recon.MissingInSettlement: 1, recon.AmountMismatch: 1, recon.FeeMismatch: 1,
				recon.DuplicateSettlement: 1, recon.MissingInLedger: 1, recon.Matched: 3}
			for c, n := range wantClasses {
				if classes[c] != n {
					t.Errorf("class %s: %d lines, want %d (all: %v)", c, classes[c], n, classes)
				}
			}
			if len(run.Lines) != 8 || run.Discrepancies != 5 {
				t.Errorf("%d lines, %d discrepancies; want 8 and 5", len(run.Lines), run.Discrepancies)
			}
			check := func(c recon.Class, ppid string) {
				if ls := byClass[c]; len(ls) == 1 && ppid != "" && ls[0].ProviderPaymentID != ppid {
					t.Errorf("%s is about %s, want %s", c, ls[0].ProviderPaymentID, ppid)
				}
			}
			check(recon.MissingInSettlement, w.ids["drop"])
			check(recon.AmountMismatch, w.ids["amount"])
			check(recon.FeeMismatch, w.ids["fee"])
			check(recon.DuplicateSettlement, w.ids["duplicate"])
			if ls := byClass[recon.AmountMismatch]; len(ls) == 1 && ls[0].AmountDelta != 100 {
				t.Errorf("amount mismatch delta %d, want 100", ls[0].AmountDelta)
			}
			if ls := byClass[recon.FeeMismatch]; len(ls) == 1 && ls[0].FeeDelta != 100 {
				t.Errorf("fee mismatch delta %d, want 100", ls[0].FeeDelta)
			}
			if ls := byClass[recon.MissingInSettlement]; len(ls) == 1 && (ls[0].AgeDays == nil || ls[0].State != "open") {
				t.Errorf("missing_in_settlement without age or not open: %+v", ls[0])
			}
			var refunds int
			for _, l := range byClass[recon.Matched] {
				if l.Type == "refund" {
					refunds++
					if w.refundID != "" && l.RefundID != w.refundID {
						t.Errorf("refund line refund_id %q, want %q", l.RefundID, w.refundID)
					}
				}
			}
			wantBatch := map[string]string{"stripe": "po_usd_", "midtrans": "MIDTRANS-", "gopay": "GOPAY-", "ovo": "OVO-", "dana": "DANA-"}[pc.name]
			for _, l := range byClass[recon.Matched] {
				if wantBatch != "" && !strings.HasPrefix(l.PayoutBatch, wantBatch) {
					t.Errorf("matched line in payout %q, want %s…", l.PayoutBatch, wantBatch)
				}
			}
			if refunds != 1 {
				t.Errorf("%d matched refund lines, want 1", refunds)
			}
			if len(run.Totals) != 1 {
				t.Fatalf("totals %+v, want one currency", run.Totals)
			}
			tot := run.Totals[0]
			if tot.Currency != pc.currency || tot.Count != 8 || tot.Gross != w.gross || tot.Fee != w.fee || tot.Net != w.gross-w.fee {
				t.Errorf("totals %+v, want %s count 8 gross %d fee %d net %d", tot, pc.currency, w.gross, w.fee, w.gross-w.fee)
			}

			// The same provider and period is the same run.
			st, b = call(t, "operator", "POST", "/ops/v1/reconciliation/runs", start)
			var again recon.RunView
			if err := json.Unmarshal(b, &again); err != nil || st != 200 || again.ID != run.ID {
				t.Errorf("again: %d %s, want 200 with run %s", st, b, run.ID)
			}
			// Acknowledge then resolve the missing line, audited.
			n := byClass[recon.MissingInSettlement][0].N
			path := fmt.Sprintf("/ops/v1/reconciliation/runs/%s/lines/%d/", run.ID, n)
			if st, b := call(t, "operator", "POST", path+"acknowledge", map[string]string{}); st != 400 {
				t.Errorf("acknowledge without reason: %d %s, want 400", st, b)
			}
			if st, b := call(t, "operator", "POST", path+"acknowledge", map[string]string{"reason": "asked midtrans"}); st != 200 {
				t.Errorf("acknowledge: %d %s", st, b)
			}
			if st, b := call(t, "operator", "POST", path+"resolve", map[string]string{"reason": "paid in the next batch"}); st != 200 {
				t.Errorf("resolve: %d %s", st, b)
			}
			if st, _ := call(t, "operator", "POST", path+"resolve", map[string]string{"reason": "again"}); st != 409 {
				t.Errorf("resolve a resolved line: %d, want 409", st)
			}
			st, b = call(t, "viewer", "GET", "/ops/v1/reconciliation/runs/"+run.ID, nil)
			var got recon.RunView
			if err := json.Unmarshal(b, &got); err != nil || st != 200 {
				t.Fatalf("get: %d %s", st, b)
			}
			if l := got.Lines[n-1]; l.State != "resolved" || l.Note != "paid in the next batch" || l.ActedBy != "ops-operator" {
				t.Errorf("line after resolve: %+v", l)
			}

			// The exports carry the same totals: minor units as integers and
			// exact decimals, each column named for its unit.
			wantRow := []string{pc.name, string(pc.currency), "8", strconv.FormatInt(w.gross, 10), strconv.FormatInt(w.fee, 10),
				strconv.FormatInt(w.gross-w.fee, 10), payrouter.FormatDecimal(w.gross, pc.currency.Exponent()),
				payrouter.FormatDecimal(w.fee, pc.currency.Exponent()), payrouter.FormatDecimal(w.gross-w.fee, pc.currency.Exponent())}
			st, b = call(t, "viewer", "GET", "/ops/v1/reconciliation/runs/"+run.ID+"/totals.csv", nil)
			rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
			if err != nil || st != 200 || len(rows) != 2 || rows[0][3] != "gross_minor" || rows[0][6] != "gross_decimal" || !slices.Equal(rows[1], wantRow) {
				t.Errorf("totals.csv: %d %v, want row %v", st, rows, wantRow)
			}
			st, b = call(t, "viewer", "GET", "/ops/v1/reconciliation/runs/"+run.ID+"/report.xlsx", nil)
			x, err := excelize.OpenReader(bytes.NewReader(b))
			if err != nil || st != 200 {
				t.Fatalf("report.xlsx: %d %v", st, err)
			}
			xrows, err := x.GetRows("Totals")
			if err != nil || len(xrows) != 2 || !slices.Equal(xrows[1], wantRow) {
				t.Errorf("xlsx Totals: %v %v, want row %v", xrows, err, wantRow)
			}
			if lrows, _ := x.GetRows("Lines"); len(lrows) != 9 {
				t.Errorf("xlsx Lines: %d rows, want header + 8", len(lrows))
			}
		})
	}
	if st, b := call(t, "viewer", "GET", "/ops/v1/reconciliation/runs", nil); st != 200 || strings.Count(string(b), `"id":"rcn_`) != len(cases) {
		t.Errorf("list: %d %s", st, b)
	}
	// The CLI with --save finds the same runs (quiet when not a terminal),
	// and keeps a new one for another period.
	deps := recon.Deps{Open: func(context.Context, string, string) (*recon.Env, func(), error) {
		return &recon.Env{Ledger: ti.Store, Runs: ti.Store, Listers: ti.Recon.Sources, Configured: ti.Config.ProviderNames()}, func() {}, nil
	}}
	var stdout, stderr bytes.Buffer
	code := recon.Command(context.Background(), []string{"--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339),
		"--settle-after", "0s", "--save"}, &stdout, &stderr, deps)
	if code != 1 || strings.Count(stdout.String(), ": existing ") != len(cases) || stderr.Len() != 0 {
		t.Errorf("reconcile --save: exit %d (want 1: discrepancies), stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	code = recon.Command(context.Background(), []string{"--from", from.Add(-time.Hour).Format(time.RFC3339), "--to", to.Format(time.RFC3339),
		"--provider", "dana", "--save"}, &stdout, &stderr, deps)
	if code != 1 || !strings.Contains(stdout.String(), ": new dana") {
		t.Errorf("reconcile --save another period: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}

	// Leg 2: the payouts of the same period against a CAMT.053 the test
	// builds: Midtrans' payout named in the remittance text, DANA's found by
	// amount, GoPay's named with one rupiah short, OVO's (and Stripe's and
	// Xendit's) never arrived, and a credit nobody explains.
	batches := map[string]map[string]bool{}
	for _, pc := range cases {
		v, err := ti.Recon.List(context.Background(), pc.name, 1)
		if err != nil || len(v) != 1 {
			t.Fatal(err)
		}
		full, _ := ti.Recon.Get(context.Background(), v[0].ID)
		batches[pc.name] = map[string]bool{}
		for _, l := range full.Lines {
			if l.Source != "ledger" && l.PayoutBatch != "" {
				batches[pc.name][l.PayoutBatch] = true
			}
		}
	}
	one := func(p string) string {
		if len(batches[p]) != 1 {
			t.Skipf("%s settled in %d payout batches (the test ran across a payout day boundary)", p, len(batches[p]))
		}
		for b := range batches[p] {
			return b
		}
		return ""
	}
	// Book on DANA's payout date (its batch id's WIB day), as a bank would.
	d, err := time.Parse("20060102", strings.TrimPrefix(one("dana"), "DANA-"))
	if err != nil {
		t.Fatal(err)
	}
	day := d.Format(time.DateOnly)
	net := func(p string) int64 { return wants[p].gross - wants[p].fee }
	camt := buildCAMT053ForTest([][4]string{
		{strconv.FormatInt(net("midtrans"), 10) + ".00", "CRDT", day, "MIDTRANS SETTLEMENT " + one("midtrans")},
		{strconv.FormatInt(net("dana"), 10), "CRDT", day, "TRF DANA INDONESIA"},
		{strconv.FormatInt(net("gopay")-1, 10), "CRDT", day, "GOPAY " + one("gopay")},
		{"55555", "CRDT", day, "SOMEONE ELSE"},
	})
	bankFile := filepath.Join(t.TempDir(), "stmt.xml")
	if err := os.WriteFile(bankFile, []byte(camt), 0o600); err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	stdout.Reset()
	stderr.Reset()
	recon.Command(context.Background(), []string{"--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339), "--settle-after", "0s",
		"--bank", bankFile, "--out", outDir}, &stdout, &stderr, deps)
	pb, err := os.ReadFile(filepath.Join(outDir, "payouts.csv"))
	if err != nil {
		t.Fatalf("no payouts.csv: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	prows, _ := csv.NewReader(bytes.NewReader(pb)).ReadAll()
	gotPay := map[string]string{}
	for _, r := range prows[1:] {
		gotPay[r[1]] += r[0] + " "
	}
	wantPay := map[string]string{"midtrans": "in_bank ", "dana": "in_bank ", "gopay": "amount_mismatch ", "ovo": "not_in_bank ",
		"stripe": "not_in_bank ", "xendit": "not_in_bank ", "": "unknown_credit "}
	for p, w := range wantPay {
		if gotPay[p] != w {
			t.Errorf("payouts of %q: %q, want %q\n%s", p, gotPay[p], w, pb)
		}
	}

	st, ab := call(t, "viewer", "GET", "/ops/v1/audit?limit=1000", nil)
	var audit struct {
		Data []struct {
			Actor, Action, Reason string
		} `json:"data"`
	}
	if err := json.Unmarshal(ab, &audit); st != 200 || err != nil {
		t.Fatalf("GET /ops/v1/audit: %d %v %s", st, err, ab)
	}
	actions := map[string]int{}
	for _, e := range audit.Data {
		if !strings.HasPrefix(e.Action, "reconciliation.") {
			continue
		}
		actions[e.Action]++
		if e.Actor != "ops-operator" || e.Reason == "" {
			t.Errorf("audit entry %+v: want actor ops-operator and a reason", e)
		}
	}
	if actions["reconciliation.run.start"] != len(cases) || actions["reconciliation.line.acknowledge"] != len(cases) || actions["reconciliation.line.resolve"] != len(cases) {
		t.Errorf("audit actions %v, want %d of each", actions, len(cases))
	}
}

// buildCAMT053ForTest builds a camt.053.001.08 statement of booked
// entries {amount, CRDT|DBIT, booking date, remittance text}.
func buildCAMT053ForTest(entries [][4]string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>
<GrpHdr><MsgId>STMT-1</MsgId><CreDtTm>2026-12-01T01:00:00+07:00</CreDtTm></GrpHdr>
<Stmt><Id>ACC-1</Id><Acct><Id><Othr><Id>1234567890</Id></Othr></Id><Ccy>IDR</Ccy></Acct>
`)
	for i, e := range entries {
		fmt.Fprintf(&b, `<Ntry><NtryRef>%d</NtryRef><Amt Ccy="IDR">%s</Amt><CdtDbtInd>%s</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
<BookgDt><Dt>%s</Dt></BookgDt><BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>
<NtryDtls><TxDtls><Refs><EndToEndId>E2E-%d</EndToEndId></Refs><RmtInf><Ustrd>%s</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>
`, i+1, e[0], e[1], e[2], i+1, e[3])
	}
	b.WriteString("</Stmt></BkToCstmrStmt></Document>\n")
	return b.String()
}
