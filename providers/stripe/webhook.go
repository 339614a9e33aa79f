package stripe

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	stripeapi "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// ParseWebhook verifies a Stripe webhook (header Stripe-Signature,
// HMAC-SHA256 over "<t>.<body>" with the endpoint secret) and normalizes it.
//
// The timestamp is checked against now (±WebhookTolerance, 300 s by
// default) by the adapter itself, because stripe-go's tolerance check reads
// the wall clock; the signature is then checked by stripe-go's
// webhook.ValidatePayloadIgnoringTolerance, and the event's object decoded
// into its stripe-go type whatever the API version (the account's webhook
// version may differ from stripe-go's).
//
// Forged, stale, unsigned or tampered webhooks return a signature error
// (providers.IsSignatureError). payment_intent.* events become KindPayment
// with the PaymentIntent's mapped status and amount (payrouter minor units);
// charge.refunded, refund.created, refund.updated and charge.refund.updated
// become KindRefund with RefundID from the refund's payrouter_refund_id
// metadata. Any other verified event returns a Notification with Status ""
// (recorded, never guessed).
func (p *Provider) ParseWebhook(h http.Header, body []byte, now time.Time) (*providers.Notification, error) {
	if p.whSecret == "" {
		return nil, providers.SignatureError("no webhook secret configured for %s", p.name)
	}
	sig := h.Get("Stripe-Signature")
	if sig == "" {
		return nil, providers.SignatureError("missing Stripe-Signature header")
	}
	ts, ok := signatureTime(sig)
	if !ok {
		return nil, providers.SignatureError("malformed Stripe-Signature header")
	}
	if d := now.Sub(ts); d > p.tolerance || d < -p.tolerance {
		return nil, providers.SignatureError("webhook timestamp outside the %s tolerance", p.tolerance)
	}
	if err := webhook.ValidatePayloadIgnoringTolerance(body, sig, p.whSecret); err != nil {
		return nil, providers.SignatureError("invalid Stripe signature")
	}
	// The event's envelope only: stripe.Event (webhook.ConstructEvent)
	// would check the signature again and decode data.object into a generic
	// map too (EventData.UnmarshalJSON), which nothing here reads; the
	// object is decoded once, into its stripe-go type, below.
	var ev struct {
		ID   string              `json:"id"`
		Type stripeapi.EventType `json:"type"`
		Data *struct {
			Raw json.RawMessage `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		// The signature was valid, so this is a body we cannot read.
		return nil, providers.Errorf(providers.Invalid, "invalid_payload", "signed Stripe event is not valid JSON")
	}
	if ev.ID == "" || ev.Data == nil || len(ev.Data.Raw) == 0 {
		return nil, providers.Errorf(providers.Invalid, "invalid_payload", "Stripe event without id or data")
	}
	n := &providers.Notification{Provider: p.name, EventID: ev.ID, ProviderStatus: string(ev.Type)}
	switch {
	case strings.HasPrefix(string(ev.Type), "payment_intent."):
		var pi stripeapi.PaymentIntent
		if err := json.Unmarshal(ev.Data.Raw, &pi); err != nil {
			return nil, providers.Errorf(providers.Invalid, "invalid_payload", "event data is not a PaymentIntent")
		}
		if err := fillPayment(n, &pi); err != nil {
			return nil, err
		}
	case ev.Type == "charge.refunded":
		var ch stripeapi.Charge
		if err := json.Unmarshal(ev.Data.Raw, &ch); err != nil {
			return nil, providers.Errorf(providers.Invalid, "invalid_payload", "event data is not a Charge")
		}
		n.Kind = providers.KindRefund
		if ch.PaymentIntent != nil {
			n.ProviderPaymentID = ch.PaymentIntent.ID
		}
		n.OrderID = ch.Metadata["order_id"]
		// Stripe lists refunds newest first; charge.refunded fires for the
		// refund just made. (refund.created names it exactly and is
		// preferred when both are subscribed.)
		if ch.Refunds != nil && len(ch.Refunds.Data) > 0 && ch.Refunds.Data[0] != nil {
			if err := fillRefund(n, ch.Refunds.Data[0]); err != nil {
				return nil, err
			}
		} else if cur, ok := fromStripeCurrency(ch.Currency); ok {
			n.Currency = cur
			n.RefundStatus = payrouter.RefundSucceeded
			if amt, err := fromStripe(ch.AmountRefunded, cur); err == nil {
				n.Amount = amt
			}
		}
	case ev.Type == "refund.created" || ev.Type == "refund.updated" || ev.Type == "charge.refund.updated":
		var r stripeapi.Refund
		if err := json.Unmarshal(ev.Data.Raw, &r); err != nil {
			return nil, providers.Errorf(providers.Invalid, "invalid_payload", "event data is not a Refund")
		}
		n.Kind = providers.KindRefund
		if r.PaymentIntent != nil {
			n.ProviderPaymentID = r.PaymentIntent.ID
		}
		if err := fillRefund(n, &r); err != nil {
			return nil, err
		}
	}
	return n, nil
}

func fillPayment(n *providers.Notification, pi *stripeapi.PaymentIntent) error {
	n.Kind = providers.KindPayment
	n.ProviderPaymentID = pi.ID
	n.OrderID = pi.Metadata["order_id"]
	n.Status, n.Failure = mapPIStatus(pi)
	n.ProviderStatus = string(pi.Status)
	if cur, ok := fromStripeCurrency(pi.Currency); ok {
		n.Currency = cur
		amt, err := fromStripe(pi.Amount, cur)
		if err != nil {
			return err
		}
		n.Amount = amt
	}
	return nil
}

func fillRefund(n *providers.Notification, r *stripeapi.Refund) error {
	n.ProviderRefundID = r.ID
	n.RefundID = r.Metadata["payrouter_refund_id"]
	n.RefundStatus = refundStatus(r.Status)
	n.ProviderStatus = string(r.Status)
	if r.PaymentIntent != nil && n.ProviderPaymentID == "" {
		n.ProviderPaymentID = r.PaymentIntent.ID
	}
	if n.RefundStatus == payrouter.RefundFailed && r.FailureReason != "" {
		n.Failure = &payrouter.Failure{Code: "refund_failed", ProviderCode: string(r.FailureReason)}
	}
	if cur, ok := fromStripeCurrency(r.Currency); ok {
		n.Currency = cur
		amt, err := fromStripe(r.Amount, cur)
		if err != nil {
			return err
		}
		n.Amount = amt
	}
	return nil
}

// signatureTime extracts t= from a Stripe-Signature header, parsed exactly
// as stripe-go parses it. A header with several t= is refused: stripe-go
// would sign-check the last one, and a first fresh one must not launder a
// replayed old signature past the tolerance check.
func signatureTime(h string) (time.Time, bool) {
	var ts time.Time
	found := 0
	for _, part := range strings.Split(h, ",") {
		k, v, ok := strings.Cut(part, "=")
		if !ok || k != "t" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		ts = time.Unix(n, 0)
		found++
	}
	return ts, found == 1
}
