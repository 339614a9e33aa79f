package ovo

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

const merchantID = "G123456789"

func fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// fixtureWallet answers with recorded fixtures and checks OVO's
// asymmetric signatures.
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
		io.WriteString(w, `{"responseCode":"2007300","responseMessage":"Successful","accessToken":"tok","tokenType":"Bearer","expiresIn":"900"}`)
		return
	}
	sts, _ := snapbi.StringToSign(r.Method, r.URL.Path, body, ts)
	if err := snapbi.VerifyRSA(f.pub, sts, r.Header.Get("X-SIGNATURE")); err != nil {
		f.t.Errorf("%s: transaction signature: %v", r.URL.Path, err)
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
	p, err := New(Config{ClientID: "oamerchantg", PrivateKey: partner, ProviderPublicKey: &wallet.PublicKey, MerchantID: merchantID, BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return p, f, wallet
}

func TestPushToPhoneFixtures(t *testing.T) {
	w := Wallet()
	p, f, _ := newFixtureProvider(t, map[string][]byte{
		w.PaymentPath: fixture(t, "payment_processing_response.json"),
		w.StatusPath:  fixture(t, "status_pending_response.json"),
	})
	ctx := context.Background()
	req := &providers.AuthorizeRequest{PaymentID: "pay_fixture", Attempt: 1, IdempotencyKey: "pay_fixture_a1",
		Amount: 15000, Currency: "IDR", Method: payrouter.MethodOVO, Customer: payrouter.Customer{Phone: "+62 812-3456-7890"}}
	res, err := p.Authorize(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	// No redirect URL: the customer approves the push in the OVO app.
	if res.Status != payrouter.StatusProcessing || res.NextAction != nil || res.ProviderPaymentID != "OVO2024031900000001" {
		t.Errorf("Authorize = %+v", res)
	}
	var sent struct {
		PartnerReferenceNo string            `json:"partnerReferenceNo"`
		Amount             snapbi.Money      `json:"amount"`
		AdditionalInfo     map[string]string `json:"additionalInfo"`
	}
	if err := json.Unmarshal(f.requests[w.PaymentPath], &sent); err != nil {
		t.Fatal(err)
	}
	if sent.PartnerReferenceNo != "pay_fixture_a1" || sent.Amount.Value != "15000.00" || sent.AdditionalInfo["phoneNumber"] != "6281234567890" {
		t.Errorf("payment request = %+v", sent)
	}
	st, err := p.Status(ctx, &providers.StatusRequest{OrderID: "pay_fixture_a1"})
	if err != nil || st.Status != payrouter.StatusProcessing || st.ProviderStatus != "03" {
		t.Errorf("Status = %+v, %v; want processing (03)", st, err)
	}
}

func TestPhoneValidation(t *testing.T) {
	p, _, _ := newFixtureProvider(t, nil)
	for _, phone := range []string{"", "12345", "0812-abc-456", "081234567890123456"} {
		t.Run(phone, func(t *testing.T) {
			_, err := p.Authorize(context.Background(), &providers.AuthorizeRequest{IdempotencyKey: "k", Amount: 1000, Currency: "IDR",
				Method: payrouter.MethodOVO, Customer: payrouter.Customer{Phone: phone}})
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Class != providers.Invalid {
				t.Errorf("phone %q: %v, want invalid", phone, err)
			}
		})
	}
}

func TestNotifyFixtureAndCapabilities(t *testing.T) {
	p, _, wallet := newFixtureProvider(t, nil)
	body := fixture(t, "notify.json")
	now := time.Date(2024, 3, 19, 7, 31, 5, 0, time.UTC)
	h, err := snapbi.SignNotification(wallet, http.MethodPost, "/webhooks/ovo", body, now)
	if err != nil {
		t.Fatal(err)
	}
	n, err := p.ParseWebhook(h, body, now)
	if err != nil || n.Status != payrouter.StatusSucceeded || n.Amount != 15000 || n.ProviderPaymentID != "OVO2024031900000001" {
		t.Errorf("notification = %+v, %v", n, err)
	}
	c := p.Capabilities()
	if !c.Supports(payrouter.MethodOVO, "IDR", payrouter.CaptureAutomatic) || !c.Refund || c.PartialRefund {
		t.Errorf("capabilities = %+v; want ovo IDR, refunds, no partial refunds", c)
	}
	if _, err := p.Cancel(context.Background(), &providers.CancelRequest{OrderID: "x"}); err == nil {
		t.Error("Cancel succeeded, but OVO has no cancel API")
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
	f.Add(fixture(f, "notify.json"), true, "")
	f.Add([]byte(`{"amount":{"value":"99999999999999999999.00","currency":"IDR"},"originalReferenceNo":"x"}`), true, "")
	f.Add([]byte(`null`), false, "AAAA")
	now := time.Now()
	f.Fuzz(func(t *testing.T, body []byte, sign bool, sig string) {
		h := http.Header{}
		h.Set("X-TIMESTAMP", snapbi.Timestamp(now))
		h.Set("X-SIGNATURE", sig)
		if sign {
			if sh, err := snapbi.SignNotification(wallet, http.MethodPost, "/webhooks/ovo", body, now); err == nil {
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
