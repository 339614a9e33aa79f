package rulescmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
	"github.com/payrouter/payrouter/rules"
)

func testCaps() map[string]providers.Capabilities {
	idr := []payrouter.Currency{"IDR"}
	return map[string]providers.Capabilities{
		"stripe": {Methods: map[payrouter.Method][]payrouter.Currency{payrouter.MethodCard: {"USD", "EUR", "SGD", "IDR"}},
			ManualCapture: []payrouter.Method{payrouter.MethodCard}},
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

type fakeStore struct {
	payments []*payrouter.Payment
	since    time.Time
}

func (f *fakeStore) ScanPayments(ctx context.Context, since time.Time, fn func(*payrouter.Payment) error) error {
	f.since = since
	for _, p := range f.payments {
		if !p.CreatedAt.Before(since) {
			if err := fn(p); err != nil {
				return err
			}
		}
	}
	return nil
}

var testNow = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func deps(st *fakeStore) Deps {
	return Deps{
		Caps: func(string) (map[string]providers.Capabilities, error) { return testCaps(), nil },
		OpenPayments: func(ctx context.Context, cfgPath string) (PaymentScanner, func(), error) {
			return st, func() {}, nil
		},
		Now: func() time.Time { return testNow },
	}
}

func run(t *testing.T, cmd func(context.Context, []string, io.Writer, io.Writer, Deps) int, d Deps, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cmd(context.Background(), args, &out, &errb, d)
	return out.String(), errb.String(), code
}

func wantLines(t *testing.T, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("output lacks %q; got:\n%s", w, got)
		}
	}
}

func TestCheckCommand(t *testing.T) {
	t.Run("clean config", func(t *testing.T) {
		out, errOut, code := run(t, Check, deps(nil), "testdata/config.yaml")
		if code != 0 {
			t.Fatalf("exit %d, want 0; stdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		// The design example's fees know only midtrans' gopay fee: the cheapest rule
		// warns about the rest.
		wantLines(t, out, `testdata/config.yaml:16:17: warning: rule "idr-wallets": cheapest: no fee for "gopay"`)
		wantLines(t, errOut, "testdata/config.yaml: 2 rules and a default, version ", "0 errors, 4 warnings")
	})
	t.Run("errors", func(t *testing.T) {
		out, errOut, code := run(t, Check, deps(nil), "testdata/bad.yaml")
		if code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		want := []string{
			`testdata/bad.yaml:4:25: error: rule "cards": unknown provider "strype" (configured: dana, gopay, midtrans, ovo, stripe, xendit)`,
			`testdata/bad.yaml:5:5: error: rule "cards-small": unreachable: every payment it matches is matched by the earlier rule "cards" (line 2)`,
		}
		if strings.Join(lines, "\n") != strings.Join(want, "\n") {
			t.Errorf("got:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
		}
		wantLines(t, errOut, "2 errors, 0 warnings")
	})
	t.Run("parse error", func(t *testing.T) {
		out, _, code := run(t, Check, deps(nil), "testdata/failing-cases.yaml")
		if code != 1 || !strings.Contains(out, "testdata/failing-cases.yaml:1:1: error: config must be a mapping") {
			t.Errorf("exit %d, out %q; want 1 and a positioned parse error", code, out)
		}
	})
	t.Run("json", func(t *testing.T) {
		out, _, code := run(t, Check, deps(nil), "--json", "testdata/bad.yaml")
		var fs []rules.Finding
		if err := json.Unmarshal([]byte(out), &fs); err != nil || code != 1 || len(fs) != 2 || fs[0].Line != 4 {
			t.Errorf("exit %d, %d findings, err %v; want 1 and 2 findings from line 4", code, len(fs), err)
		}
	})
	t.Run("usage", func(t *testing.T) {
		if _, _, code := run(t, Check, deps(nil)); code != 2 {
			t.Errorf("no args: exit %d, want 2", code)
		}
		if _, _, code := run(t, Check, deps(nil), "testdata/missing.yaml"); code != 2 {
			t.Errorf("missing file: exit %d, want 2", code)
		}
	})
}

func TestTestCommand(t *testing.T) {
	t.Run("shipped cases pass", func(t *testing.T) {
		out, errOut, code := run(t, Test, deps(nil), "testdata/shipped.yaml", "../../rules-cases.yaml")
		if code != 0 {
			t.Fatalf("exit %d, want 0:\n%s%s", code, out, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if !strings.HasPrefix(lines[0], "RESULT  CASE") {
			t.Errorf("header: got %q", lines[0])
		}
		wantLines(t, out, "12 passed, 0 failed")
		// Columns are aligned: every row's RULE column starts where the header's does.
		col := strings.Index(lines[0], "RULE")
		for _, l := range lines[1 : len(lines)-1] {
			if len(l) < col || l[col-2:col] != "  " {
				t.Errorf("row not aligned with header at col %d: %q", col, l)
			}
		}
	})
	t.Run("failure", func(t *testing.T) {
		out, _, code := run(t, Test, deps(nil), "testdata/config.yaml", "testdata/failing-cases.yaml")
		if code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		wantLines(t, out, "PASS    qris to default", "FAIL    expects the wrong rule", "rule: want cards, got default", "1 passed, 1 failed")
	})
	t.Run("invalid config", func(t *testing.T) {
		_, errOut, code := run(t, Test, deps(nil), "testdata/bad.yaml", "../../rules-cases.yaml")
		if code != 1 || !strings.Contains(errOut, `testdata/bad.yaml:4:25: error: rule "cards": unknown provider "strype"`) {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
}

func TestExplainCommand(t *testing.T) {
	out, errOut, code := run(t, Explain, deps(nil), "--config", "testdata/config.yaml", "--currency", "IDR", "--method", "gopay", "--amount", "150000")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	wantLines(t, out,
		"payment:    IDR 150000 by gopay",
		"rule:       idr-wallets (cheapest, rules version ",
		"YES  idr-wallets  line 13  currency=IDR, method∈{gopay,ovo,dana,shopeepay}",
		"1.  midtrans  expected fee IDR 3000",
		"2.  gopay     expected fee unknown (no fee entry)",
		"ovo     ovo does not take gopay in IDR",
	)

	out, _, code = run(t, Explain, deps(nil), "--config", "testdata/config.yaml", "--currency", "usd", "--method", "card", "--amount", "10000",
		"--token", "stripe=tok_sandbox_success", "--metadata", "tier=gold", "--country", "us")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	wantLines(t, out, "payment:    USD 100.00 by card", "no   idr-wallets  line 13  currency USD not in [IDR]",
		"YES  cards        line 17", "1.  stripe  expected fee USD 3.20", "xendit    xendit does not take card in USD")
	if strings.Contains(out, "tok_sandbox_success") {
		t.Errorf("explain printed a card token:\n%s", out)
	}

	out, _, code = run(t, Explain, deps(nil), "--json", "--config", "testdata/config.yaml", "--currency", "IDR", "--method", "qris", "--amount", "100000")
	var e rules.Explanation
	if err := json.Unmarshal([]byte(out), &e); err != nil || code != 0 {
		t.Fatalf("json: exit %d, err %v:\n%s", code, err, out)
	}
	if e.Rule != "default" || len(e.Candidates) != 2 || e.Candidates[0].ExpectedFee == nil || *e.Candidates[0].ExpectedFee != 700 {
		t.Errorf("json explanation: got %+v", e)
	}

	for name, args := range map[string][]string{
		"bad amount":   {"--config", "testdata/config.yaml", "--currency", "IDR", "--method", "qris", "--amount", "10.5"},
		"bad method":   {"--config", "testdata/config.yaml", "--currency", "IDR", "--method", "cash", "--amount", "10"},
		"bad metadata": {"--config", "testdata/config.yaml", "--currency", "IDR", "--method", "qris", "--amount", "10", "--metadata", "novalue"},
	} {
		if _, _, code := run(t, Explain, deps(nil), args...); code != 2 {
			t.Errorf("%s: exit %d, want 2", name, code)
		}
	}
}

func TestDiffCommand(t *testing.T) {
	t.Run("structural", func(t *testing.T) {
		out, _, code := run(t, Diff, deps(nil), "testdata/config.yaml", "testdata/new.yaml")
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		wantLines(t, out, "rules version ", "~ default (line 21): providers [midtrans, xendit] → [xendit, midtrans]")
		out, _, _ = run(t, Diff, deps(nil), "testdata/config.yaml", "testdata/config.yaml")
		wantLines(t, out, "no routing changes")
	})
	t.Run("replay", func(t *testing.T) {
		st := &fakeStore{}
		add := func(n int, m payrouter.Method, amount int64, age time.Duration) {
			for i := 0; i < n; i++ {
				st.payments = append(st.payments, &payrouter.Payment{ID: fmt.Sprintf("pay_%s_%d", m, i), Amount: amount, Currency: "IDR", Method: m, CreatedAt: testNow.Add(-age)})
			}
		}
		add(3, payrouter.MethodQRIS, 100000, 200*time.Hour) // outside --since 168h
		add(6, payrouter.MethodQRIS, 100000, time.Hour)
		add(4, payrouter.MethodGoPay, 150000, 2*time.Hour)
		out, errOut, code := run(t, Diff, deps(st), "testdata/config.yaml", "testdata/new.yaml", "--replay", "--config", "testdata/config.yaml")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if want := testNow.Add(-168 * time.Hour); !st.since.Equal(want) {
			t.Errorf("scanned since %v, want %v", st.since, want)
		}
		wantLines(t, out,
			"replayed 10 payments created since 2026-11-13T12:00:00Z",
			"6 payments (60.0%) would change rule or first provider",
			"  RULE         PROVIDER  OLD  SHARE  NEW  SHARE   Δ\n",
			"  default      midtrans    6  60.0%    0   0.0%  -6\n",
			"  default      xendit      0   0.0%    6  60.0%  +6\n",
			"  idr-wallets  midtrans    4  40.0%    4  40.0%   0\n",
			"  default      midtrans       IDR   IDR 4200      IDR 0  IDR -4200              0/0\n",
			"  default      xendit           -          -          -          -              0/6\n",
			"  TOTAL                       IDR  IDR 16200  IDR 12000  IDR -4200",
			"default/midtrans  → default/xendit  6",
		)
		if errOut != "" {
			t.Errorf("no progress expected for 10 payments, got %q", errOut)
		}
	})
	t.Run("replay without store", func(t *testing.T) {
		d := deps(nil)
		d.OpenPayments = func(context.Context, string) (PaymentScanner, func(), error) { return nil, nil, errors.New("no store") }
		if _, errOut, code := run(t, Diff, d, "testdata/config.yaml", "testdata/new.yaml", "--replay"); code != 2 || !strings.Contains(errOut, "no store") {
			t.Errorf("exit %d, stderr %q; want 2", code, errOut)
		}
	})
}

func TestProgress(t *testing.T) {
	var b bytes.Buffer
	from := testNow.Add(-100 * time.Hour)
	p := newProgress(&b, from, testNow)
	p.minCount, p.every = 2048, 0
	p.update(1024, from.Add(10*time.Hour))
	if b.Len() != 0 {
		t.Fatalf("progress below the threshold: %q", b.String())
	}
	p.update(2048, from.Add(50*time.Hour))
	p.finish(2100)
	want := "replay: [###############...............]  50% 2048 payments\nreplay: [##############################] 100% 2100 payments\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

type fakeApprovals map[string][2]int64

func (f fakeApprovals) Approval(p string, _ payrouter.Method, _ payrouter.Currency, _ time.Duration) (int64, int64) {
	return f[p][0], f[p][1]
}

func TestExplainShowsLiveAdaptiveScores(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	text := "rules:\n  - name: cards\n    match: {method: [card]}\n    strategy: adaptive\n    adaptive: {min_samples: 10}\n    providers: [stripe, xendit]\n"
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	d := deps(nil)
	d.Approvals = func(context.Context, string) (rules.Approvals, error) {
		return fakeApprovals{"stripe": {7, 20}, "xendit": {19, 20}}, nil
	}
	out, errOut, code := run(t, Explain, d, "--config", cfg, "--currency", "IDR", "--method", "card", "--amount", "150000",
		"--token", "stripe=t", "--token", "xendit=t", "--id", "pay_1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	wantLines(t, out, "scores (adaptive, live):", "xendit  95% approved of 20", "stripe  35% approved of 20",
		"adaptive by approval (15m0s): xendit 95% of 20, stripe 35% of 20 → xendit")

	// Counters that cannot be read: the order is still explained, and stderr says why.
	d.Approvals = func(context.Context, string) (rules.Approvals, error) { return nil, errors.New("redis down") }
	out, errOut, code = run(t, Explain, d, "--config", cfg, "--currency", "IDR", "--method", "card", "--amount", "150000",
		"--token", "stripe=t", "--token", "xendit=t")
	if code != 0 || !strings.Contains(errOut, "no live adaptive scores: redis down") || !strings.Contains(out, "no samples") {
		t.Errorf("without counters: exit %d, stderr %q, out:\n%s", code, errOut, out)
	}
}
