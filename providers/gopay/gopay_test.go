package gopay

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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/snapbi"
	"github.com/payrouter/payrouter/providers"
)

const (
	merchantID = "G123456789"
	secret     = "TEST-ONLY-client-secret"
)

func fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// fixtureWallet answers with recorded fixtures and checks GoPay's
// signatures: RSA for the token, HMAC-SHA512 over the access token for
// transactions.
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
	if r.URL.Path == Wallet().AccessTokenPath {
		if err := snapbi.VerifyRSA(f.pub, snapbi.AccessTokenStringToSign(r.Header.Get("X-CLIENT-KEY"), ts), r.Header.Get("X-SIGNATURE")); err != nil {
			f.t.Errorf("token signature: %v", err)
		}
		io.WriteString(w, `{"responseCode":"2007300","responseMessage":"Successful","accessToken":"tok-gopay","tokenType":"Bearer","expiresIn":"900"}`)
		return
	}
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	sts, _ := snapbi.SymmetricStringToSign(r.Method, r.URL.Path, tok, body, ts)
	if err := snapbi.VerifyHMAC(secret, sts, r.Header.Get("X-SIGNATURE")); err != nil || tok != "tok-gopay" {
		f.t.Errorf("%s: symmetric signature: %v (token %q)", r.URL.Path, err, tok)
	}
	f.mu.Lock()
	f.requests[r.URL.Path] = body
	f.mu.Unlock()
	ans := f.answers[r.URL.Path]
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
	p, err := New(Config{ClientID: "962489e9-de5d-4eb7-92a4-b07d44d64bf4", ClientSecret: secret, PrivateKey: partner,
		ProviderPublicKey: &wallet.PublicKey, MerchantID: merchantID, BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return p, f, wallet
}

func TestPaymentAndStatusFixtures(t *testing.T) {
	w := Wallet()
	p, f, _ := newFixtureProvider(t, map[string][]byte{
		w.PaymentPath: fixture(t, "payment_response.json"),
		w.StatusPath:  fixture(t, "status_success_response.json"),
	})
	ctx := context.Background()
	res, err := p.Authorize(ctx, &providers.AuthorizeRequest{PaymentID: "pay_fixture", Attempt: 1, IdempotencyKey: "pay_fixture_a1",
		Amount: 15000, Currency: "IDR", Method: payrouter.MethodGoPay, ReturnURL: "https://merchant.example/return"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != payrouter.StatusRequiresAction || res.ProviderPaymentID != "A120240319073000abcdEFGH12ID" ||
		res.NextAction == nil || res.NextAction.Type != "redirect" || !strings.HasPrefix(res.NextAction.URL, "https://gopay.co.id/") {
		t.Errorf("Authorize = %+v %+v", res, res.NextAction)
	}
	var sent struct {
		PartnerReferenceNo string              `json:"partnerReferenceNo"`
		MerchantID         string              `json:"merchantId"`
		Amount             snapbi.Money        `json:"amount"`
		URLParam           []map[string]string `json:"urlParam"`
	}
	if err := json.Unmarshal(f.requests[w.PaymentPath], &sent); err != nil {
		t.Fatal(err)
	}
	if sent.PartnerReferenceNo != "pay_fixture_a1" || sent.MerchantID != merchantID || sent.Amount != (snapbi.Money{Value: "15000.00", Currency: "IDR"}) ||
		len(sent.URLParam) != 1 || sent.URLParam[0]["type"] != "PAY_RETURN" {
		t.Errorf("payment request = %+v", sent)
	}
	st, err := p.Status(ctx, &providers.StatusRequest{ProviderPaymentID: res.ProviderPaymentID})
	if err != nil || st.Status != payrouter.StatusSucceeded || st.AmountCaptured != 15000 {
		t.Errorf("Status = %+v, %v; want succeeded with 15000 captured", st, err)
	}
}

func TestNotifyFixture(t *testing.T) {
	p, _, wallet := newFixtureProvider(t, nil)
	body := fixture(t, "notify.json")
	now := time.Date(2024, 3, 19, 7, 31, 5, 0, time.UTC)
	h, err := snapbi.SignNotification(wallet, http.MethodPost, "/webhooks/gopay", body, now)
	if err != nil {
		t.Fatal(err)
	}
	n, err := p.ParseWebhook(h, body, now)
	if err != nil {
		t.Fatal(err)
	}
	if n.Status != payrouter.StatusFailed || n.Amount != 15000 || n.OrderID != "pay_fixture_a1" || n.Failure == nil || n.Failure.ProviderCode != "06" {
		t.Errorf("notification = %+v", n)
	}
	if _, err := p.ParseWebhook(h, body, now.Add(10*time.Minute)); !providers.IsSignatureError(err) {
		t.Errorf("replayed 10 minutes later: %v, want a signature error", err)
	}
}

func TestConfig(t *testing.T) {
	partner, wallet, err := snapbi.GenerateSandboxKeys()
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(Config{ClientID: "c", PrivateKey: partner, ProviderPublicKey: &wallet.PublicKey, MerchantID: "m"})
	if err == nil || !strings.Contains(err.Error(), "ClientSecret") {
		t.Errorf("New without ClientSecret = %v, want an error naming ClientSecret", err)
	}
	p, err := New(Config{ClientID: "c", ClientSecret: "s", PrivateKey: partner, ProviderPublicKey: &wallet.PublicKey, MerchantID: "m"})
	if err != nil {
		t.Fatal(err)
	}
	c := p.Capabilities()
	if !c.Supports(payrouter.MethodGoPay, "IDR", payrouter.CaptureAutomatic) || c.Supports(payrouter.MethodGoPay, "SGD", payrouter.CaptureAutomatic) || !c.Refund || !c.PartialRefund {
		t.Errorf("capabilities = %+v", c)
	}
}

func FuzzParseWebhook(f *testing.F) {
	partner, wallet, err := snapbi.GenerateSandboxKeys()
	if err != nil {
		f.Fatal(err)
	}
	p, err := New(Config{ClientID: "c", ClientSecret: "s", PrivateKey: partner, ProviderPublicKey: &wallet.PublicKey, MerchantID: merchantID, BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fixture(f, "notify.json"), true, "")
	f.Add([]byte(`{"amount":{"value":"-1.00","currency":"IDR"},"originalReferenceNo":"x"}`), true, "")
	f.Add([]byte(`[]`), false, "AAAA")
	now := time.Now()
	f.Fuzz(func(t *testing.T, body []byte, sign bool, sig string) {
		h := http.Header{}
		h.Set("X-TIMESTAMP", snapbi.Timestamp(now))
		h.Set("X-SIGNATURE", sig)
		if sign {
			if sh, err := snapbi.SignNotification(wallet, http.MethodPost, "/webhooks/gopay", body, now); err == nil {
				h = sh
			}
		}
		n, err := p.ParseWebhook(h, body, now)
		if err == nil && (n == nil || n.Amount < 0) {
			t.Fatalf("ParseWebhook = %+v with no error", n)
		}
		var pe *providers.Error
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("error %v is not a *providers.Error", err)
		}
	})
}
