package checkout_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/checkout"
)

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

type customer struct {
	c *http.Client
}

func newCustomer(t *testing.T) *customer {
	jar, _ := cookiejar.New(nil)
	return &customer{c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (cu *customer) get(t *testing.T, u string) (int, http.Header, string) {
	t.Helper()
	resp, err := cu.c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func (cu *customer) post(t *testing.T, u string, form url.Values) (int, http.Header) {
	t.Helper()
	resp, err := cu.c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

func TestCheckoutTokensRevealNothing(t *testing.T) {
	ti := startCheckoutSandbox(t, nil)
	a := hostedPayment(t, ti, "tok-a", "", nil)
	b := hostedPayment(t, ti, "tok-b", "", nil)
	cu := newCustomer(t)
	st, hdr, page := cu.get(t, a.NextAction.URL)
	if st != 200 || !strings.Contains(page, "Rp 150.000") {
		t.Fatalf("page: %d %s", st, page)
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	tokA := strings.TrimPrefix(a.NextAction.URL, ti.URL+"/checkout/")
	tokB := strings.TrimPrefix(b.NextAction.URL, ti.URL+"/checkout/")
	_, tagA, _ := strings.Cut(tokA, ".")
	_, _, notFound := cu.get(t, ti.URL+"/checkout/pay_nosuchpayment."+tagA)
	bad := []string{
		b.ID + "." + tagA,                // another payment's tag
		a.ID + ".AAAAAAAAAAAAAAAAAAAAAA", // a guessed tag
		a.ID,                             // no tag
		"pay_nosuchpayment." + tagA,
		checkout.Token([]byte("another secret"), a.ID),
	}
	for _, tok := range bad {
		st, _, body := cu.get(t, ti.URL+"/checkout/"+tok)
		if st != 404 || body != notFound {
			t.Errorf("token %q: %d, want the one 404 page for every bad token", tok, st)
		}
	}
	if st, _, _ := cu.get(t, ti.URL+"/checkout/"+tokB); st != 200 {
		t.Errorf("b's own token: %d", st)
	}
	// A payment made without hosted checkout has no page, even with a valid tag.
	card := map[string]any{"amount": 1999, "currency": "USD", "method": "card", "reference": "plain",
		"payment_method_tokens": map[string]string{"stripe": "pm_card_visa"}}
	_, body := ti.Do(t, "POST", "/v1/payments", card)
	id := regexp.MustCompile(`"id":"(pay_[a-z0-9]+)"`).FindSubmatch(body)
	if id == nil {
		t.Fatalf("create: %s", body)
	}
	secretless := strings.TrimPrefix(a.NextAction.URL, ti.URL+"/checkout/"+a.ID)
	if st, _, _ := cu.get(t, ti.URL+"/checkout/"+string(id[1])+secretless); st != 404 {
		t.Errorf("a non-checkout payment with a's tag: %d", st)
	}
}

func TestCheckoutFormsNeedCSRFAndAreRateLimited(t *testing.T) {
	ti := startCheckoutSandbox(t, nil)
	p := hostedPayment(t, ti, "csrf", "", nil)
	cu := newCustomer(t)
	_, _, page := cu.get(t, p.NextAction.URL)
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field: %s", page)
	}
	// Without the token (a cross-site form), and with a wrong one: refused, nothing changes.
	for _, form := range []url.Values{{"method": {"qris"}}, {"method": {"qris"}, "csrf": {"x" + m[1]}}} {
		if st, _ := cu.post(t, p.NextAction.URL, form); st != http.StatusForbidden {
			t.Errorf("post %v: %d, want 403", form, st)
		}
	}
	other := newCustomer(t) // another browser: the cookie is not there
	if st, _ := other.post(t, p.NextAction.URL, url.Values{"method": {"qris"}, "csrf": {m[1]}}); st != http.StatusForbidden {
		t.Errorf("post without the cookie: %d, want 403", st)
	}
	if q := getPayment(t, ti, p.ID); len(q.Attempts) != 0 || q.Status != payrouter.StatusRequiresAction {
		t.Fatalf("refused forms changed the payment: %+v", q)
	}

	// Two choices at once: one wins, the other is told the payment moved on.
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); cu.post(t, p.NextAction.URL, url.Values{"method": {"qris"}, "csrf": {m[1]}}) }()
	}
	wg.Wait()
	if q := getPayment(t, ti, p.ID); len(q.Attempts) != 1 || q.Method != payrouter.MethodQRIS {
		t.Errorf("after two concurrent choices: method %q with %d attempts, want qris with 1", q.Method, len(q.Attempts))
	}
	// The page's POSTs are limited per token (20 a minute).
	limited := 0
	for range 25 {
		if st, _ := cu.post(t, p.NextAction.URL, url.Values{"method": {"qris"}, "csrf": {m[1]}}); st == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited < 5 {
		t.Errorf("%d of 25 posts limited, want at least 5", limited)
	}
}

func TestCreateHostedCheckoutValidation(t *testing.T) {
	ti := startCheckoutSandbox(t, nil)
	for _, tt := range []struct {
		body  string
		param string
	}{
		{`{"amount":1000,"currency":"IDR","reference":"v1","checkout":"embedded"}`, "checkout"},
		{`{"amount":1000,"currency":"IDR","reference":"v2"}`, "method"}, // method is optional only with hosted checkout
		{`{"amount":1000,"currency":"IDR","reference":"v3","checkout":"hosted","payment_method_tokens":{"stripe":"pm_card_visa"}}`, "checkout"},
		{`{"amount":1000,"currency":"IDR","reference":"v4","checkout":"hosted","provider":"stripe"}`, "checkout"},
	} {
		st, b := ti.Do(t, "POST", "/v1/payments", tt.body)
		if st != 400 || !strings.Contains(string(b), `"param":"`+tt.param+`"`) {
			t.Errorf("%s: %d %s, want 400 on %s", tt.body, st, b, tt.param)
		}
	}
	// A method fixed by the merchant: the page offers only that one.
	p := hostedPayment(t, ti, "fixed", "", map[string]any{"method": "qris"})
	_, _, page := newCustomer(t).get(t, p.NextAction.URL)
	if n := strings.Count(page, `name="method" value=`); n != 1 || !strings.Contains(page, `value="qris"`) {
		t.Errorf("page offers %d methods, want qris alone", n)
	}
	// Replays: the same key and body give the same bytes.
	body := `{"amount":5000,"currency":"IDR","reference":"replay","checkout":"hosted"}`
	st1, b1 := ti.Do(t, "POST", "/v1/payments", body, "Idempotency-Key", "hosted-replay")
	st2, b2 := ti.Do(t, "POST", "/v1/payments", body, "Idempotency-Key", "hosted-replay")
	if st1 != 201 || st2 != 201 || string(b1) != string(b2) {
		t.Errorf("replay: %d %s / %d %s", st1, b1, st2, b2)
	}
}
