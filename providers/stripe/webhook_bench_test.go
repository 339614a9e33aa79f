package stripe_test

import (
	"testing"
	"time"

	"github.com/payrouter/payrouter/providers/stripe"
)

// BenchmarkParseWebhook measures verifying a Stripe webhook through the
// adapter (HMAC-SHA256 of "<t>.<body>" via stripe-go's
// ConstructEventWithOptions) and normalizing it to a Notification.
func BenchmarkParseWebhook(b *testing.B) {
	p, err := stripe.New(stripe.Config{Name: "stripe", SecretKey: testKey, WebhookSecret: testWHSec})
	if err != nil {
		b.Fatal(err)
	}
	body := eventBody("payment_intent.succeeded", piSucceeded)
	now := time.Now()
	h := signed(body, testWHSec, now)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := p.ParseWebhook(h, body, now); err != nil {
			b.Fatal(err)
		}
	}
}
