package stripe_test

import (
	"os"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
	"github.com/payrouter/payrouter/providers/stripe"
)

// TestStripeMockContract checks the adapter's requests against stripe-mock,
// which validates every parameter against Stripe's OpenAPI spec and answers
// with fixtures. It is stateless: the statuses are the fixtures', so only
// "accepted and mapped without error" is asserted.
func TestStripeMockContract(t *testing.T) {
	url := os.Getenv("PAYROUTER_TEST_STRIPE_MOCK")
	if url == "" {
		t.Skip("PAYROUTER_TEST_STRIPE_MOCK is unset (e.g. http://127.0.0.1:12111 with stripe-mock v0.203.0 running); skipping the stripe-mock contract test")
	}
	p, err := stripe.New(stripe.Config{Name: "stripe", SecretKey: "sk_test_x", BaseURL: url})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	key := newKey()
	for _, tc := range []struct {
		name    string
		token   string
		capture payrouter.CaptureMode
		cur     payrouter.Currency
	}{
		{"payment method automatic", "pm_card_visa", payrouter.CaptureAutomatic, "USD"},
		{"payment method manual IDR", "pm_card_visa", payrouter.CaptureManual, "IDR"},
		// tok_… goes as payment_method_data[card][token] (Stripe's
		// Charges→PaymentIntents migration guide); stripe-mock's OpenAPI
		// spec omits "card" from payment_method_data[type], so that path is
		// exercised against the simulator only.
	} {
		t.Run("authorize "+tc.name, func(t *testing.T) {
			res, err := p.Authorize(ctx, authReq(newKey(), 50000, tc.cur, tc.token, tc.capture))
			if err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			if res.ProviderPaymentID == "" || res.ProviderStatus == "" {
				t.Errorf("Authorize result = %+v, want an id and a status", res)
			}
		})
	}
	t.Run("capture", func(t *testing.T) {
		if _, err := p.Capture(ctx, &providers.CaptureRequest{ProviderPaymentID: "pi_123", IdempotencyKey: key + "_cap", Amount: 500, Currency: "USD"}); err != nil {
			t.Errorf("Capture: %v", err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		if _, err := p.Cancel(ctx, &providers.CancelRequest{ProviderPaymentID: "pi_123", IdempotencyKey: key + "_cancel"}); err != nil {
			t.Errorf("Cancel: %v", err)
		}
	})
	t.Run("refund", func(t *testing.T) {
		r, err := p.Refund(ctx, &providers.RefundRequest{ProviderPaymentID: "pi_123", RefundID: "rf_1", IdempotencyKey: key + "_rf", Amount: 100, Currency: "USD", Reason: "requested_by_customer"})
		if err != nil || r.ProviderRefundID == "" {
			t.Errorf("Refund = %+v, %v", r, err)
		}
	})
	t.Run("retrieve", func(t *testing.T) {
		if _, err := p.Status(ctx, &providers.StatusRequest{ProviderPaymentID: "pi_123"}); err != nil {
			t.Errorf("Status: %v", err)
		}
	})
	t.Run("search", func(t *testing.T) {
		// stripe-mock's search fixture does not echo our metadata, so the
		// adapter must say not_found rather than take a stranger's intent.
		_, err := p.Status(ctx, &providers.StatusRequest{OrderID: key})
		if err != nil {
			wantErr(t, err, providers.Invalid, "not_found")
		}
	})
	t.Run("settlements", func(t *testing.T) {
		if _, err := p.Settlements(ctx, timeAgo(), timeNow()); err != nil {
			t.Errorf("Settlements: %v", err)
		}
	})
}

func timeNow() time.Time { return time.Now() }
func timeAgo() time.Time { return time.Now().Add(-24 * time.Hour) }
