package checkout_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/app/apptest"
	"github.com/payrouter/payrouter/internal/browsertest"
	"github.com/payrouter/payrouter/internal/config"
)

// browser starts headless Chromium (internal/browsertest) sized like a
// phone — most Indonesian buyers pay on one — with JavaScript on or off.
func browser(t *testing.T, js bool) *browsertest.Browser {
	t.Helper()
	return browsertest.StartWith(t, browsertest.Options{Width: 412, Height: 915, NoJavaScript: !js})
}

// merchant is the merchant's site: it records where customers came back.
type merchant struct {
	*httptest.Server
	mu   sync.Mutex
	back []url.Values
}

func newMerchant(t *testing.T) *merchant {
	m := &merchant{}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/thanks" {
			http.NotFound(w, r) // the browser's favicon request
			return
		}
		m.mu.Lock()
		m.back = append(m.back, r.URL.Query())
		m.mu.Unlock()
		fmt.Fprint(w, "<!doctype html><title>shop</title><h1 id=shop>Thanks</h1>")
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *merchant) returned() []url.Values {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]url.Values(nil), m.back...)
}

func hostedPayment(t *testing.T, ti *apptest.TestInstance, ref, returnURL string, extra map[string]any) payrouter.Payment {
	t.Helper()
	body := map[string]any{"amount": 150000, "currency": "IDR", "reference": ref, "checkout": "hosted",
		"description": "Kopi susu ×2", "return_url": returnURL}
	for k, v := range extra {
		body[k] = v
	}
	st, b := ti.Do(t, "POST", "/v1/payments", body, "Idempotency-Key", ref)
	if st != 201 {
		t.Fatalf("create hosted %s: %d %s", ref, st, b)
	}
	var p payrouter.Payment
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	if p.Status != payrouter.StatusRequiresAction || p.NextAction == nil || p.NextAction.Type != "redirect" ||
		!strings.HasPrefix(p.NextAction.URL, ti.URL+"/checkout/") {
		t.Fatalf("hosted payment: %s", b)
	}
	return p
}

func getPayment(t *testing.T, ti *apptest.TestInstance, id string) payrouter.Payment {
	t.Helper()
	st, b := ti.Do(t, "GET", "/v1/payments/"+id, nil)
	if st != 200 {
		t.Fatalf("get %s: %d %s", id, st, b)
	}
	var p payrouter.Payment
	_ = json.Unmarshal(b, &p)
	return p
}

// simPay is the customer paying in their app (QR scan, VA transfer).
func simPay(t *testing.T, ti *apptest.TestInstance, p payrouter.Payment, outcome string) {
	t.Helper()
	resp, err := http.Post(ti.URL+"/sim/"+p.Provider+"/_pay/"+url.PathEscape(p.ProviderPaymentID), "application/json",
		strings.NewReader(`{"outcome":"`+outcome+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("sim pay %s at %s: %d", p.ProviderPaymentID, p.Provider, resp.StatusCode)
	}
}

func text(ctx context.Context, sel string) (string, error) {
	return chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
}

// waitResult waits for the result page (live status: polling with
// JavaScript, the meta refresh without) and checks it.
func waitResult(t *testing.T, ctx context.Context, status payrouter.Status, want string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS(`#state[data-payment-status="`+string(status)+`"] #result`))); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
		t.Fatalf("no %s result page: %v\n%s", status, err, html)
	}
	if got, _ := text(ctx, "#result"); !strings.Contains(got, want) {
		t.Errorf("result %q, want %q", got, want)
	}
}

func startCheckoutSandbox(t *testing.T, mutate func(*config.Config)) *apptest.TestInstance {
	return apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), func(c *config.Config) {
		for i := range c.Merchants {
			if c.Merchants[i].ID == "demo" {
				c.Merchants[i].DisplayName = "Warung Kopi Demo"
			}
		}
		c.Router.ResolveEvery = config.Duration(100 * time.Millisecond)
		if mutate != nil {
			mutate(c)
		}
	})
}

// TestHostedCheckoutInBrowser walks every method family through the one
// page, with JavaScript and without.
func TestHostedCheckoutInBrowser(t *testing.T) {
	if os.Getenv("PAYROUTER_TEST_CHROMIUM") == "" {
		t.Skip("PAYROUTER_TEST_CHROMIUM is not set (e.g. /usr/bin/chromium): skipping the hosted checkout browser tests")
	}
	ti := startCheckoutSandbox(t, nil)
	shop := newMerchant(t)
	flows := []struct {
		name   string
		status payrouter.Status
		result string
		// run acts as the customer from the method list on.
		run func(t *testing.T, b *browsertest.Browser, p payrouter.Payment)
	}{
		{"ewallet", payrouter.StatusSucceeded, "Payment successful", func(t *testing.T, b *browsertest.Browser, p payrouter.Payment) {
			ctx := b.Ctx
			// GoPay: a link to the wallet (and, on a desktop, its QR), paid on the wallet's page.
			run(t, ctx, chromedp.Click(chromedp.CSS(`button[name=method][value=gopay]`)),
				chromedp.WaitVisible(chromedp.CSS(`#continue`)))
			b.Screenshot("action")
			run(t, ctx, chromedp.Click(chromedp.CSS(`#continue`)), chromedp.WaitVisible(chromedp.CSS(`#pay`)))
			if amt, _ := text(ctx, "#amount"); amt != "Rp 150.000" {
				t.Errorf("wallet page amount %q, want Rp 150.000", amt)
			}
			b.Screenshot("wallet")
			run(t, ctx, chromedp.Click(chromedp.CSS(`#pay`))) // the wallet sends the customer back
		}},
		{"qris", payrouter.StatusSucceeded, "Payment successful", func(t *testing.T, b *browsertest.Browser, p payrouter.Payment) {
			ctx := b.Ctx
			run(t, ctx, chromedp.Click(chromedp.CSS(`button[name=method][value=qris]`)),
				chromedp.WaitVisible(chromedp.CSS(`#qr svg`)))
			b.Screenshot("qr")
			simPay(t, ti, getPayment(t, ti, p.ID), "success") // scanned and paid in a bank app
		}},
		{"va", payrouter.StatusSucceeded, "Payment successful", func(t *testing.T, b *browsertest.Browser, p payrouter.Payment) {
			ctx := b.Ctx
			run(t, ctx, chromedp.Click(chromedp.CSS(`button[name=method][value=bank_transfer]`)),
				chromedp.WaitVisible(chromedp.CSS(`button[name=bank][value=bca]`)),
				chromedp.Click(chromedp.CSS(`button[name=bank][value=bca]`)),
				chromedp.WaitVisible(chromedp.CSS(`#va-number`)))
			q := getPayment(t, ti, p.ID)
			if va, _ := text(ctx, "#va-number"); q.NextAction == nil || va != q.NextAction.VANumber || va == "" {
				t.Errorf("page shows VA %q, payment says %+v", va, q.NextAction)
			}
			b.Screenshot("va")
			simPay(t, ti, q, "success")
		}},
		{"card", payrouter.StatusSucceeded, "Payment successful", func(t *testing.T, b *browsertest.Browser, p payrouter.Payment) {
			ctx := b.Ctx
			run(t, ctx, chromedp.Click(chromedp.CSS(`button[name=method][value=card]`)),
				chromedp.WaitVisible(chromedp.CSS(`button[name=card_token][value=tok_sandbox_success]`)))
			b.Screenshot("cards")
			run(t, ctx, chromedp.Click(chromedp.CSS(`button[name=card_token][value=tok_sandbox_success]`)))
		}},
		{"card-3ds", payrouter.StatusSucceeded, "Payment successful", func(t *testing.T, b *browsertest.Browser, p payrouter.Payment) {
			ctx := b.Ctx
			run(t, ctx, chromedp.Click(chromedp.CSS(`button[name=method][value=card]`)),
				chromedp.WaitVisible(chromedp.CSS(`button[name=card_token][value=tok_sandbox_3ds]`)),
				chromedp.Click(chromedp.CSS(`button[name=card_token][value=tok_sandbox_3ds]`)),
				chromedp.WaitVisible(chromedp.CSS(`#continue`)),
				chromedp.Click(chromedp.CSS(`#continue`)), // to the bank's 3-D Secure page
				chromedp.WaitVisible(chromedp.CSS(`#pay`)))
			b.Screenshot("3ds")
			run(t, ctx, chromedp.Click(chromedp.CSS(`#pay`)))
		}},
		{"declined", payrouter.StatusFailed, "Payment failed", func(t *testing.T, b *browsertest.Browser, p payrouter.Payment) {
			ctx := b.Ctx
			run(t, ctx, chromedp.Click(chromedp.CSS(`button[name=method][value=card]`)),
				chromedp.WaitVisible(chromedp.CSS(`button[name=card_token][value=tok_sandbox_decline]`)),
				chromedp.Click(chromedp.CSS(`button[name=card_token][value=tok_sandbox_decline]`)))
		}},
		{"cancel", payrouter.StatusCanceled, "Payment canceled", func(t *testing.T, b *browsertest.Browser, p payrouter.Payment) {
			ctx := b.Ctx
			run(t, ctx, chromedp.Click(chromedp.CSS(`#cancel`)))
		}},
	}
	for _, js := range []bool{true, false} {
		for _, f := range flows {
			t.Run(fmt.Sprintf("%s/js=%v", f.name, js), func(t *testing.T) {
				b := browser(t, js)
				ctx := b.Ctx
				ref := fmt.Sprintf("co-%s-%v", f.name, js)
				p := hostedPayment(t, ti, ref, shop.URL+"/thanks?order="+ref, nil)
				run(t, ctx, chromedp.Navigate(p.NextAction.URL), chromedp.WaitVisible(chromedp.CSS(`#methods`)))
				if got, _ := text(ctx, "#merchant"); got != "Warung Kopi Demo" {
					t.Errorf("merchant %q", got)
				}
				if got, _ := text(ctx, "#amount"); got != "Rp 150.000" {
					t.Errorf("amount %q, want Rp 150.000", got)
				}
				b.Screenshot("methods")
				f.run(t, b, p)
				waitResult(t, ctx, f.status, f.result)
				b.Screenshot("result")
				if got := getPayment(t, ti, p.ID).Status; got != f.status {
					t.Errorf("payment is %s, want %s", got, f.status)
				}
				run(t, ctx, chromedp.Click(chromedp.CSS(`#return`)), chromedp.WaitVisible(chromedp.CSS(`#shop`)))
				back := shop.returned()
				last := back[len(back)-1]
				if last.Get("payment_id") != p.ID || last.Get("status") != string(f.status) || last.Get("order") != ref {
					t.Errorf("returned to the merchant with %v, want payment_id=%s status=%s order=%s", last, p.ID, f.status, ref)
				}
				checkOneTerminalEvent(t, ti, p.ID)
			})
		}
	}
}

func run(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
		t.Fatalf("browser: %v at %s\n%s", err, loc, html)
	}
}

// checkOneTerminalEvent: the payment has exactly one payment_success or
// payment_failed in the event stream.
func checkOneTerminalEvent(t *testing.T, ti *apptest.TestInstance, id string) {
	t.Helper()
	n := 0
	after := ""
	for {
		st, b := ti.Do(t, "GET", "/v1/events?limit=100"+after, nil)
		if st != 200 {
			t.Fatalf("events: %d %s", st, b)
		}
		var page struct {
			Data []struct {
				ID, Type  string
				PaymentID string `json:"payment_id"`
			} `json:"data"`
			HasMore bool `json:"has_more"`
		}
		_ = json.Unmarshal(b, &page)
		for _, e := range page.Data {
			if e.PaymentID == id && (e.Type == "payment_success" || e.Type == "payment_failed") {
				n++
			}
		}
		if !page.HasMore || len(page.Data) == 0 {
			break
		}
		after = "&after=" + page.Data[len(page.Data)-1].ID
	}
	if n != 1 {
		t.Errorf("payment %s has %d terminal events, want 1", id, n)
	}
}

// TestHostedCheckoutExpires: the page shows the expiry when the customer
// never pays.
func TestHostedCheckoutExpires(t *testing.T) {
	b := browser(t, false)
	ctx := b.Ctx
	ti := startCheckoutSandbox(t, func(c *config.Config) { c.Router.PaymentTTL = config.Duration(2 * time.Second) })
	p := hostedPayment(t, ti, "co-expire", "https://shop.example/back", nil)
	run(t, ctx, chromedp.Navigate(p.NextAction.URL), chromedp.WaitVisible(chromedp.CSS(`#methods`)),
		chromedp.Click(chromedp.CSS(`button[name=method][value=qris]`)), chromedp.WaitVisible(chromedp.CSS(`#qr svg`)))
	waitResult(t, ctx, payrouter.StatusExpired, "Payment expired")
	b.Screenshot("expired")
	attr, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`#return`), "href"))
	href := attr.Value
	if err != nil || !strings.HasPrefix(href, "https://shop.example/back?") || !strings.Contains(href, "status=expired") {
		t.Errorf("return link %q", href)
	}
	checkOneTerminalEvent(t, ti, p.ID)
}

// TestHostedCheckoutIndonesian: Accept-Language id gives Bahasa Indonesia.
func TestHostedCheckoutIndonesian(t *testing.T) {
	b := browser(t, true)
	ctx := b.Ctx
	ti := startCheckoutSandbox(t, nil)
	p := hostedPayment(t, ti, "co-id", "", nil)
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": "id-ID,id;q=0.9"}}); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, chromedp.Navigate(p.NextAction.URL))
	h2, _ := text(ctx, "#state h2")
	if h2 != "Pilih cara bayar" {
		t.Errorf("heading %q, want Pilih cara bayar", h2)
	}
	b.Screenshot("id")
}
