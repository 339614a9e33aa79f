package dana

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/snapbi"
	"github.com/payrouter/payrouter/providers"
)

const merchantID = "216620000000000000000"

func fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// fixtureWallet answers the token request and, for each path, a recorded
// fixture; it verifies our signatures with the partner key and keeps the
// bodies we sent.
type fixtureWallet struct {
	t        *testing.T
	pub      *rsa.PublicKey
	answers  map[string][]byte
	mu       sync.Mutex
	requests map[string][]byte
}

func (f *fixtureWallet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ts := r.Header.Get("X-TIMESTAMP")
	// DANA's SDK sends no Authorization on Payment Gateway calls and never
	// asks for a B2B token (utils/snap_header.go, payment_gateway/v1).
	if a := r.Header.Get("Authorization"); a != "" {
		f.t.Errorf("%s: Authorization %q sent; DANA's Payment Gateway takes none", r.URL.Path, a)
	}
	for _, h := range []string{"X-PARTNER-ID", "X-EXTERNAL-ID", "CHANNEL-ID", "X-SIGNATURE", "X-TIMESTAMP"} {
		if r.Header.Get(h) == "" {
			f.t.Errorf("%s: header %s missing", r.URL.Path, h)
		}
	}
	sts, _ := snapbi.StringToSign(r.Method, r.URL.Path, body, ts)
	if err := snapbi.VerifyRSA(f.pub, sts, r.Header.Get("X-SIGNATURE")); err != nil {
		f.t.Errorf("%s: transaction signature: %v", r.URL.Path, err)
	}
	f.mu.Lock()
	f.requests[r.URL.Path] = body
	f.mu.Unlock()
	ans, ok := f.answers[r.URL.Path]
	if !ok {
		w.WriteHeader(404)
		return
	}
	var env snapbi.Envelope
	_ = json.Unmarshal(ans, &env)
	w.WriteHeader(env.ResponseCode.HTTPStatus())
	w.Write(ans)
}

func newFixtureProvider(t *testing.T, answers map[string][]byte) (*Provider, *fixtureWallet, *rsa.PrivateKey) {
	t.Helper()
	partner, wallet, err := snapbi.GenerateSandboxKeys()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixtureWallet{t: t, pub: &partner.PublicKey, answers: answers, requests: map[string][]byte{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	p, err := New(Config{ClientID: "2020102900000000000001", PrivateKey: partner, ProviderPublicKey: &wallet.PublicKey,
		MerchantID: merchantID, BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return p, f, wallet
}

// keysOf returns the key paths of a JSON value ("a.b", arrays as "a[]").
func keysOf(prefix string, v any, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			out[prefix+k] = true
			keysOf(prefix+k+".", c, out)
		}
	case []any:
		for _, c := range x {
			keysOf(prefix[:len(prefix)-1]+"[].", c, out)
		}
	}
}

func TestCreateOrderAgainstDocFixtures(t *testing.T) {
	w := Wallet()
	p, f, _ := newFixtureProvider(t, map[string][]byte{w.PaymentPath: fixture(t, "create_order_response.json")})
	req := &providers.AuthorizeRequest{PaymentID: "pay_fixture", Attempt: 1, IdempotencyKey: "pay_fixture_a1", Amount: 22200,
		Currency: "IDR", Method: payrouter.MethodDANA, ReturnURL: "https://merchant.example/return", Description: "Payment Gateway Order"}
	res, err := p.Authorize(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != payrouter.StatusRequiresAction || res.ProviderPaymentID != "2020102977770000000009" ||
		res.NextAction == nil || res.NextAction.Type != "redirect" || res.NextAction.URL == "" {
		t.Errorf("Authorize = %+v %+v", res, res.NextAction)
	}

	// What we sent must use only the documented request's fields, with the
	// documented formats.
	var sent, doc map[string]any
	if err := json.Unmarshal(f.requests[w.PaymentPath], &sent); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(fixture(t, "create_order_request.json"), &doc); err != nil {
		t.Fatal(err)
	}
	sentKeys, docKeys := map[string]bool{}, map[string]bool{}
	keysOf("", sent, sentKeys)
	keysOf("", doc, docKeys)
	for k := range sentKeys {
		if !docKeys[k] {
			t.Errorf("we send %q, which DANA's documented request does not have", k)
		}
	}
	// Required by dana-go's CreateOrderByRedirectRequest,
	// CreateOrderByRedirectAdditionalInfo, EnvInfo, UrlParam and
	// OrderRedirectObject models.
	for _, k := range []string{"partnerReferenceNo", "merchantId", "amount.value", "amount.currency", "validUpTo",
		"urlParams[].url", "urlParams[].type", "urlParams[].isDeeplink", "additionalInfo.mcc",
		"additionalInfo.order.orderTitle", "additionalInfo.envInfo.sourcePlatform", "additionalInfo.envInfo.terminalType"} {
		if !sentKeys[k] {
			t.Errorf("we do not send %q", k)
		}
	}
	checks := []struct{ got, want any }{
		{sent["partnerReferenceNo"], "pay_fixture_a1"},
		{sent["merchantId"], merchantID},
		{sent["amount"].(map[string]any)["value"], "22200.00"},
		{sent["amount"].(map[string]any)["currency"], "IDR"},
		{sent["urlParams"].([]any)[0].(map[string]any)["type"], "PAY_RETURN"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("sent %v, want %v", c.got, c.want)
		}
	}
}

func TestStatusAndCancelFixtures(t *testing.T) {
	w := Wallet()
	tests := []struct {
		name      string
		path      string
		fixture   string
		call      func(*Provider) (*providers.Result, error)
		want      payrouter.Status
		wantClass providers.Class
		wantCode  string
	}{
		{"query cancelled", w.StatusPath, "query_payment_cancelled_response.json", func(p *Provider) (*providers.Result, error) {
			return p.Status(context.Background(), &providers.StatusRequest{OrderID: "pay_fixture_a1"})
		}, payrouter.StatusCanceled, "", ""},
		{"query not found", w.StatusPath, "query_payment_not_found_response.json", func(p *Provider) (*providers.Result, error) {
			return p.Status(context.Background(), &providers.StatusRequest{OrderID: "nope"})
		}, "", providers.Invalid, "not_found"},
		{"cancel in progress", w.CancelPath, "cancel_in_progress_response.json", func(p *Provider) (*providers.Result, error) {
			return p.Cancel(context.Background(), &providers.CancelRequest{OrderID: "pay_fixture_a1", IdempotencyKey: "c1"})
		}, "", providers.Ambiguous, "in_progress"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, f, _ := newFixtureProvider(t, map[string][]byte{tt.path: fixture(t, tt.fixture)})
			res, err := tt.call(p)
			if tt.wantClass != "" {
				var pe *providers.Error
				if !errors.As(err, &pe) || pe.Class != tt.wantClass || pe.Code != tt.wantCode {
					t.Fatalf("err = %v, want %s/%s", err, tt.wantClass, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tt.want || res.ProviderStatus != "05" || res.ProviderPaymentID != "2020102977770000000009" {
				t.Errorf("result = %+v, want %s", res, tt.want)
			}
			var sent map[string]any
			_ = json.Unmarshal(f.requests[tt.path], &sent)
			if sent["serviceCode"] != "54" || sent["originalPartnerReferenceNo"] != "pay_fixture_a1" {
				t.Errorf("status request = %v", sent)
			}
		})
	}
}

func TestFinishNotifyFixture(t *testing.T) {
	p, _, wallet := newFixtureProvider(t, nil)
	body := fixture(t, "finish_notify.json")
	now := time.Date(2020, 12, 21, 10, 7, 21, 0, time.UTC)
	h, err := snapbi.SignNotification(wallet, http.MethodPost, "/webhooks/dana", body, now)
	if err != nil {
		t.Fatal(err)
	}
	n, err := p.ParseWebhook(h, body, now)
	if err != nil {
		t.Fatal(err)
	}
	want := providers.Notification{Provider: "dana", Kind: providers.KindPayment, ProviderPaymentID: "2020102977770000000009",
		OrderID: "pay_fixture_a1", Status: payrouter.StatusSucceeded, ProviderStatus: "00", Amount: 22200, Currency: "IDR"}
	got := *n
	got.EventID = ""
	if got != want {
		t.Errorf("notification = %+v\nwant %+v", got, want)
	}
	// DANA: "05" in a finish notify means closed because expired.
	closed := []byte(`{"originalPartnerReferenceNo":"pay_fixture_a1","originalReferenceNo":"2020102977770000000009","merchantId":"` + merchantID +
		`","amount":{"value":"22200.00","currency":"IDR"},"latestTransactionStatus":"05","createdTime":"2020-12-21T17:07:18+07:00","finishedTime":"2020-12-21T17:37:18+07:00"}`)
	h, _ = snapbi.SignNotification(wallet, http.MethodPost, "/webhooks/dana", closed, now)
	if n, err := p.ParseWebhook(h, closed, now); err != nil || n.Status != payrouter.StatusExpired {
		t.Errorf("05 notify = %+v, %v; want expired", n, err)
	}
	// A fractional rupiah is refused even when correctly signed.
	frac := []byte(`{"originalReferenceNo":"R","merchantId":"` + merchantID + `","amount":{"value":"22200.50","currency":"IDR"},"latestTransactionStatus":"00"}`)
	h, _ = snapbi.SignNotification(wallet, http.MethodPost, "/webhooks/dana", frac, now)
	var pe *providers.Error
	if _, err := p.ParseWebhook(h, frac, now); !errors.As(err, &pe) || pe.Code != "invalid_payload" {
		t.Errorf("fractional amount: %v, want invalid_payload", err)
	}
}

func TestCapabilitiesAndConfig(t *testing.T) {
	p, _, _ := newFixtureProvider(t, nil)
	c := p.Capabilities()
	if !c.Supports(payrouter.MethodDANA, "IDR", payrouter.CaptureAutomatic) || c.Supports(payrouter.MethodDANA, "USD", payrouter.CaptureAutomatic) ||
		c.Supports(payrouter.MethodOVO, "IDR", payrouter.CaptureAutomatic) || c.Supports(payrouter.MethodDANA, "IDR", payrouter.CaptureManual) ||
		!c.Refund || !c.PartialRefund {
		t.Errorf("capabilities = %+v", c)
	}
	if _, err := New(Config{ClientID: "x"}); err == nil {
		t.Error("New accepted a config without keys or merchant")
	}
}

func FuzzParseWebhook(f *testing.F) {
	partner, wallet, err := snapbi.GenerateSandboxKeys()
	if err != nil {
		f.Fatal(err)
	}
	p, err := New(Config{ClientID: "c", PrivateKey: partner, ProviderPublicKey: &wallet.PublicKey, MerchantID: merchantID, BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fixture(f, "finish_notify.json"), true, "")
	f.Add([]byte(`{"amount":{"value":"1e3","currency":"IDR"}}`), true, "")
	f.Add([]byte(`{}`), false, "AAAA")
	now := time.Now()
	f.Fuzz(func(t *testing.T, body []byte, sign bool, sig string) {
		h := http.Header{}
		h.Set("X-TIMESTAMP", snapbi.Timestamp(now))
		h.Set("X-SIGNATURE", sig)
		if sign {
			if sh, err := snapbi.SignNotification(wallet, http.MethodPost, "/webhooks/dana", body, now); err == nil {
				h = sh
			}
		}
		n, err := p.ParseWebhook(h, body, now)
		if err == nil && (n == nil || n.Amount < 0) {
			t.Fatalf("ParseWebhook = %+v with no error", n)
		}
		if err != nil {
			var pe *providers.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *providers.Error", err)
			}
		}
	})
}

// validUpTo is required by DANA and at most 30 minutes ahead; it is fixed
// per attempt so a resend with the same key is the same request, body for
// body. Without a return URL (urlParams is required) nothing is sent.
func TestValidUpToStableAndReturnURLRequired(t *testing.T) {
	w := Wallet()
	_, f, _ := newFixtureProvider(t, map[string][]byte{w.PaymentPath: fixture(t, "create_order_response.json")})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	partner, wallet, err := snapbi.GenerateSandboxKeys()
	if err != nil {
		t.Fatal(err)
	}
	f.pub = &partner.PublicKey
	before := time.Now()
	var mu sync.Mutex
	now := before
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	p, err := New(Config{ClientID: "2020102900000000000001", PrivateKey: partner, ProviderPublicKey: &wallet.PublicKey,
		MerchantID: merchantID, BaseURL: srv.URL, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	req := &providers.AuthorizeRequest{PaymentID: "pay_v", Attempt: 1, IdempotencyKey: "pay_v_a1", Amount: 22200,
		Currency: "IDR", Method: payrouter.MethodDANA, ReturnURL: "https://merchant.example/return"}
	if _, err := p.Authorize(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	first := string(f.requests[w.PaymentPath])
	var sent struct {
		ValidUpTo string `json:"validUpTo"`
	}
	if err := json.Unmarshal([]byte(first), &sent); err != nil {
		t.Fatal(err)
	}
	vt, err := snapbi.ParseTimestamp(sent.ValidUpTo)
	if err != nil || !vt.After(before) || vt.After(before.Add(30*time.Minute)) {
		t.Errorf("validUpTo %q (%v), want within 30 minutes from now", sent.ValidUpTo, err)
	}
	mu.Lock()
	now = now.Add(90 * time.Second) // a resend later: the clock has moved, the body must not
	mu.Unlock()
	if _, err := p.Authorize(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if again := string(f.requests[w.PaymentPath]); again != first {
		t.Errorf("resend with the same key sent another body:\n%s\n%s", first, again)
	}
	noURL := *req
	noURL.IdempotencyKey, noURL.ReturnURL = "pay_v_a2", ""
	delete(f.requests, w.PaymentPath)
	_, err = p.Authorize(context.Background(), &noURL)
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Class != providers.Invalid || pe.Code != "return_url_required" {
		t.Errorf("without return_url: %v, want invalid return_url_required", err)
	}
	if _, sentAny := f.requests[w.PaymentPath]; sentAny {
		t.Error("a payment without return_url was sent to DANA")
	}
}
