package console_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/app/apptest"
	"github.com/payrouter/payrouter/internal/browsertest"
	"github.com/payrouter/payrouter/internal/config"
	"github.com/payrouter/payrouter/internal/console"
	"github.com/payrouter/payrouter/internal/ops"
)

func start(t *testing.T) *apptest.TestInstance {
	t.Helper()
	return apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), func(c *config.Config) {
		c.Ops.PollEvery = config.Duration(200 * time.Millisecond)
	})
}

func pay(t *testing.T, ti *apptest.TestInstance, ref string) payrouter.Payment {
	t.Helper()
	body := map[string]any{"amount": 150000, "currency": "IDR", "method": "card", "reference": ref,
		"payment_method_tokens": map[string]string{"stripe": "tok_sandbox_success", "xendit": "tok_sandbox_success", "midtrans": "tok_sandbox_success"}}
	st, b := ti.Do(t, "POST", "/v1/payments", body, "Idempotency-Key", ref)
	if st != 201 {
		t.Fatalf("pay %s: %d %s", ref, st, b)
	}
	var p payrouter.Payment
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMoney(t *testing.T) {
	for _, tc := range []struct {
		c    payrouter.Currency
		n    int64
		want string
	}{
		{"IDR", 150000, "Rp 150.000"}, {"IDR", 0, "Rp 0"}, {"IDR", 1234567, "Rp 1.234.567"},
		{"USD", 1999, "US$19.99"}, {"USD", 5, "US$0.05"}, {"USD", 123456789, "US$1,234,567.89"},
		{"USD", -30, "-US$0.30"}, {"THB", 100, "฿1.00"},
	} {
		if got := console.Money(tc.c, tc.n); got != tc.want {
			t.Errorf("Money(%s, %d) = %q, want %q", tc.c, tc.n, got, tc.want)
		}
	}
}

// Without a browser: headers, sign-in, CSRF and roles over plain HTTP.
func TestConsoleHTTP(t *testing.T) {
	ti := start(t)
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := cl.Get(ti.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	post := func(path string, form url.Values) (*http.Response, string) {
		t.Helper()
		resp, err := cl.PostForm(ti.URL+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	csrfOf := func(page string) string {
		t.Helper()
		i := strings.Index(page, `name="csrf" value="`)
		if i < 0 {
			t.Fatalf("no csrf field in %s", page)
		}
		rest := page[i+len(`name="csrf" value="`):]
		return rest[:strings.Index(rest, `"`)]
	}

	resp, _ := get("/console/providers")
	if resp.StatusCode != 303 || !strings.HasPrefix(resp.Header.Get("Location"), "/console/signin") {
		t.Fatalf("signed out: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page := get("/console/signin")
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe") {
		t.Fatalf("CSP %q", csp)
	}
	tok := csrfOf(page)
	if resp, _ := post("/console/signin", url.Values{"key": {"ok_sandbox_viewer"}, "csrf": {"forged"}}); resp.StatusCode != 403 {
		t.Fatalf("sign-in with a forged token: %d", resp.StatusCode)
	}
	if resp, _ := post("/console/signin", url.Values{"key": {"sk_sandbox_demo"}, "csrf": {tok}}); resp.StatusCode != 401 {
		t.Fatalf("sign-in with a merchant key: %d", resp.StatusCode)
	}
	_, page = get("/console/signin")
	resp, _ = post("/console/signin", url.Values{"key": {"ok_sandbox_viewer"}, "csrf": {csrfOf(page)}})
	if resp.StatusCode != 303 {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	var sess *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "payrouter_console" {
			sess = c
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie %+v", sess)
	}
	p := pay(t, ti, "h1")
	for path, want := range map[string]string{
		"/console":                        "Active rules",
		"/console/rules":                  "seeded from the config file",
		"/console/rules/v1":               "No difference.",
		"/console/payments":               p.ID,
		"/console/payments?q=" + p.ID:     "Rp 150.000",
		"/console/anomalies":              "No anomaly.",
		"/console/deliveries?status=dead": "No delivery.",
		"/console/audit":                  "No ops action yet.",
		"/console/adaptive":               "The live rules have no adaptive rule.",
		"/console/reconciliation":         "No run yet.",
	} {
		resp, page := get(path)
		if resp.StatusCode != 200 || !strings.Contains(page, want) {
			t.Errorf("GET %s: %d, want a page with %q", path, resp.StatusCode, want)
		}
	}
	if resp, _ := get("/console/rules/v99"); resp.StatusCode != 404 {
		t.Errorf("missing version: %d, want 404", resp.StatusCode)
	}
	resp, page = get("/console/providers")
	if resp.StatusCode != 200 || !strings.Contains(page, "<svg") || !strings.Contains(page, "stripe") {
		t.Fatalf("providers page: %d", resp.StatusCode)
	}
	tok = csrfOf(page)
	form := url.Values{"method": {"card"}, "state": {"forced_open"}, "reason": {"x"}}
	if resp, _ := post("/console/providers/stripe/breaker", form); resp.StatusCode != 403 {
		t.Fatalf("form without CSRF token: %d", resp.StatusCode)
	}
	form.Set("csrf", tok)
	if resp, body := post("/console/providers/stripe/breaker", form); resp.StatusCode != 403 || !strings.Contains(body, "needs operator") {
		t.Fatalf("viewer forcing a breaker: %d %s", resp.StatusCode, body)
	}
	// Sign out needs the token too; afterwards the session is gone.
	if resp, _ := post("/console/signout", url.Values{}); resp.StatusCode != 403 {
		t.Fatalf("sign out without token: %d", resp.StatusCode)
	}
	if resp, _ := post("/console/signout", url.Values{"csrf": {tok}}); resp.StatusCode != 303 {
		t.Fatalf("sign out: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", ti.URL+"/console/providers", nil)
	req.AddCookie(sess)
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 303 {
		t.Fatalf("old session after sign-out: %d, want a redirect to sign in", resp.StatusCode)
	}
}

// The console in a real Chromium: sign in, edit a rule with an error and
// see file:line:col, fix it, replay, activate, roll back, force a provider
// open and see payments avoid it.
func TestConsoleInChromium(t *testing.T) {
	b := browsertest.Start(t)
	ti := start(t)
	u := ti.URL
	p1 := pay(t, ti, "c1")
	if p1.Provider != "stripe" {
		t.Fatalf("before: %s", p1.Provider)
	}

	b.Do(chromedp.Navigate(u+"/console/rules"), chromedp.WaitVisible(chromedp.ID("key")))
	b.Screenshot("signin")
	b.Do(chromedp.SendKeys(chromedp.ID("key"), "ok_sandbox_admin"), chromedp.Click(chromedp.ID("signin")), chromedp.WaitVisible(chromedp.ID("yaml")))
	if got := b.Text("#active-version"); got != "v1" {
		t.Fatalf("active version %q", got)
	}
	yaml, err := chromedp.Run(b.Ctx, chromedp.Value(chromedp.ID("yaml")))
	if err != nil || !strings.Contains(yaml, "providers: [stripe, xendit, midtrans]") {
		t.Fatalf("editor holds %q (%v)", yaml, err)
	}
	// An error: an unknown provider; the check names its line and column.
	bad := strings.Replace(yaml, "providers: [stripe, xendit, midtrans]", "providers: [xendit, strype, midtrans]", 1)
	line := 1 + strings.Count(bad[:strings.Index(bad, "strype")], "\n")
	b.Do(chromedp.SetValue(chromedp.ID("yaml"), bad), chromedp.SendKeys(chromedp.ID("reason"), "xendit first for IDR cards"),
		chromedp.Click(chromedp.ID("save")), chromedp.WaitVisible(chromedp.ID("check-errors")))
	b.Screenshot("rule-error")
	if got := b.Text("#check-errors"); !strings.Contains(got, fmt.Sprintf("rules.yaml:%d:", line)) || !strings.Contains(got, "strype") {
		t.Fatalf("check errors %q, want rules.yaml:%d:…strype", got, line)
	}
	// Fix it and save: the draft's page shows the diff.
	good := strings.Replace(bad, "strype", "stripe", 1)
	b.Do(chromedp.SetValue(chromedp.ID("yaml"), good), chromedp.Click(chromedp.ID("save")), chromedp.WaitVisible(chromedp.ID("diff")))
	if got := b.Text("#state"); got != "draft" {
		t.Fatalf("state %q", got)
	}
	if got := b.Text("#diff"); !strings.Contains(got, "rule cards") {
		t.Fatalf("diff %q", got)
	}
	// Routing cases on the draft.
	b.Do(chromedp.SetValue(chromedp.ID("cases"), "- name: IDR card to xendit\n  payment: {amount: 150000, currency: IDR, method: card, tokens: {stripe: t, xendit: t}}\n  expect: {rule: cards, providers: [xendit, stripe]}\n"),
		chromedp.Click(chromedp.ID("test")), chromedp.WaitVisible(chromedp.ID("cases-result")))
	if got := b.Text("#cases-result h2"); !strings.Contains(got, "1 passed, 0 failed") {
		t.Fatalf("cases %q", got)
	}
	// Replay: the card payment would move to xendit.
	b.Do(chromedp.SetValue(chromedp.ID("since"), "1h"), chromedp.Click(chromedp.ID("replay")), chromedp.WaitVisible(chromedp.ID("replay-result")))
	b.Screenshot("replay")
	if got := b.Text("#replay-result h2"); !strings.Contains(got, "1 payments, 1 change route") {
		t.Fatalf("replay %q", got)
	}
	// Activate.
	b.Do(chromedp.SendKeys(chromedp.ID("activate-reason"), "replay looks right"), chromedp.Click(chromedp.ID("activate")),
		chromedp.WaitVisible(chromedp.CSS("p.flash")))
	if got := b.Text("p.flash"); !strings.Contains(got, "v2 is active") {
		t.Fatalf("flash %q", got)
	}
	b.Screenshot("activated")
	if p := pay(t, ti, "c2"); p.Provider != "xendit" || p.Route.RulesVersion != "v2" {
		t.Fatalf("after activation: %s %+v", p.Provider, p.Route)
	}
	// Roll back from the history.
	b.Do(chromedp.Navigate(u+"/console/rules"), chromedp.WaitVisible(chromedp.ID("history")),
		chromedp.SendKeys(chromedp.CSS(`tr[data-version="v1"] input[name="reason"]`), "roll back"),
		chromedp.Click(chromedp.CSS(`tr[data-version="v1"] button`)), chromedp.WaitVisible(chromedp.CSS("p.flash")))
	if got := b.Text("p.flash"); !strings.Contains(got, "v1 is active") {
		t.Fatalf("rollback flash %q", got)
	}
	if p := pay(t, ti, "c3"); p.Provider != "stripe" || p.Route.RulesVersion != "v1" {
		t.Fatalf("after rollback: %s %+v", p.Provider, p.Route)
	}
	// Force stripe open: payments avoid it and say why.
	b.Do(chromedp.Navigate(u+"/console/providers"), chromedp.WaitVisible(chromedp.ID("provider-stripe")),
		chromedp.SetValue(chromedp.CSS(`#provider-stripe select[name="method"]`), "card"),
		chromedp.SendKeys(chromedp.CSS(`#provider-stripe input[name="reason"]`), "stripe maintenance"),
		chromedp.Click(chromedp.CSS(`#provider-stripe button[value="forced_open"]`)), chromedp.WaitVisible(chromedp.CSS("p.flash")))
	b.Screenshot("forced-open")
	if got := b.Text(`#provider-stripe tr[data-method="card"] .breaker`); !strings.Contains(got, "forced_open") || !strings.Contains(got, "stripe maintenance") {
		t.Fatalf("stripe card breaker shows %q", got)
	}
	p4 := pay(t, ti, "c4")
	if p4.Provider != "xendit" || !strings.Contains(p4.Route.Reason, "stripe: forced open (stripe maintenance)") {
		t.Fatalf("forced open: %s %q", p4.Provider, p4.Route.Reason)
	}
	// The payment, its timeline and the audit, as ops see them.
	b.Do(chromedp.Navigate(u+"/console/payments?q="+p4.ID), chromedp.WaitVisible(chromedp.ID(p4.ID)))
	if got := b.Text("#" + p4.ID); !strings.Contains(got, "Rp 150.000") || !strings.Contains(got, "forced open") {
		t.Fatalf("payment page %q", got)
	}
	b.Screenshot("payment")
	// Reconciliation: run xendit's settlements over this hour from the
	// console and see every payment matched.
	from, to := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339), time.Now().UTC().Add(time.Hour).Format(time.RFC3339)
	b.Do(chromedp.Navigate(u+"/console/reconciliation"), chromedp.WaitVisible(chromedp.ID("start-run")),
		chromedp.SetValue(chromedp.CSS(`#start-run select[name="provider"]`), "xendit"),
		chromedp.SetValue(chromedp.CSS(`#start-run input[name="from"]`), from),
		chromedp.SetValue(chromedp.CSS(`#start-run input[name="to"]`), to),
		chromedp.SendKeys(chromedp.CSS(`#start-run input[name="reason"]`), "end of day"),
		chromedp.Click(chromedp.CSS(`#start-run button`)), chromedp.WaitVisible(chromedp.ID("run-status")))
	b.Do(chromedp.WaitVisible(chromedp.CSS("#settled-by-day rect.ok")))
	b.Screenshot("reconciliation")
	if st, n := b.Text("#run-status"), b.Text("#discrepancies"); st != "done" || n != "0" {
		t.Errorf("reconciliation run: status %q with %q discrepancies, want done with 0", st, n)
	}
	if got := b.Text("#lines"); !strings.Contains(got, p4.ID) || !strings.Contains(got, "matched") {
		t.Errorf("run lines lack the xendit payment %s matched: %q", p4.ID, got)
	}
	b.Do(chromedp.Navigate(u+"/console/audit"), chromedp.WaitVisible(chromedp.ID("audit")))
	got := b.Text("#audit")
	for _, want := range []string{"breaker.forced_open", "rules.activate", "roll back", "rules.create", "ops-admin", "reconciliation.run.start"} {
		if !strings.Contains(got, want) {
			t.Errorf("audit page lacks %q", want)
		}
	}
	b.Screenshot("audit")
	if os.Getenv("PAYROUTER_TEST_ARTEFACTS") == "" {
		t.Log("set PAYROUTER_TEST_ARTEFACTS to keep the screenshots")
	}
	_ = ops.VersionName
}
