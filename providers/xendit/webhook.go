package xendit

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// CallbackTokenHeader carries the dashboard's verification token on every
// Xendit webhook.
const CallbackTokenHeader = "X-Callback-Token"

// webhook is the Payments API callback envelope (PaymentCallback and
// RefundCallback in Xendit's API reference).
type webhook struct {
	Event      string `json:"event"`
	BusinessID string `json:"business_id"`
	Created    string `json:"created"`
	Data       *struct {
		ID               string          `json:"id"`
		PaymentID        string          `json:"payment_id"`
		PaymentRequestID string          `json:"payment_request_id"`
		ReferenceID      string          `json:"reference_id"`
		Status           string          `json:"status"`
		Amount           json.Number     `json:"amount"`
		RequestAmount    json.Number     `json:"request_amount"`
		Currency         string          `json:"currency"`
		FailureCode      *string         `json:"failure_code"`
		Metadata         json.RawMessage `json:"metadata"`
	} `json:"data"`
}

// ParseWebhook verifies a Xendit webhook and normalizes it.
//
// Verification: header x-callback-token must equal Config.CallbackToken
// (constant-time compare; Xendit signs nothing else, so a token is all
// there is). A missing or wrong token, or no configured token, is a
// providers.SignatureError.
//
// Payment events (payment.succeeded, payment.failed, payment.capture,
// payment.awaiting_capture, payment.expired, …) are KindPayment: the status
// comes from data.status (see MapStatus), ProviderPaymentID is
// data.payment_request_id (data.id when absent), OrderID is
// data.reference_id. refund.* events are KindRefund with RefundID =
// data.reference_id (payrouter's refund id). Amounts are parsed exactly from
// data.amount (or data.request_amount) into minor units.
//
// The token authenticates the sender and covers nothing of the body, so
// every payment event is a claim: ConfirmByStatus is set and the router
// acts on GET /payment_requests/{id} instead (refund events cannot be
// confirmed through the payment's status and are applied as claimed).
// EventID is a hash of the claim (event, data.id, payment request id,
// reference_id, status, amount, currency) — not of the unsigned webhook-id
// header — so retries share it and another amount never does.
func (p *Provider) ParseWebhook(h http.Header, body []byte, now time.Time) (*providers.Notification, error) {
	token := h.Get(CallbackTokenHeader)
	if p.cfg.CallbackToken == "" {
		return nil, providers.SignatureError("xendit callback token is not configured")
	}
	if token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(p.cfg.CallbackToken)) != 1 {
		return nil, providers.SignatureError("xendit x-callback-token missing or wrong")
	}
	var w webhook
	if err := json.Unmarshal(body, &w); err != nil || w.Data == nil || w.Event == "" {
		return nil, providers.Errorf(providers.Invalid, "invalid_notification", "xendit webhook is not a payments callback")
	}
	d := w.Data
	out := &providers.Notification{Provider: p.cfg.Name, ProviderStatus: d.Status}
	if d.Currency != "" {
		cur, err := payrouter.ParseCurrency(d.Currency)
		if err != nil {
			return nil, providers.Errorf(providers.Invalid, "invalid_notification", "xendit webhook currency %q is unknown", d.Currency)
		}
		out.Currency = cur
		amount := d.Amount
		if amount == "" {
			amount = d.RequestAmount
		}
		if amount != "" {
			n, err := parseAmount(amount, cur)
			if err != nil {
				return nil, providers.Errorf(providers.Invalid, "invalid_notification", "xendit webhook amount %q: %v", amount, err)
			}
			out.Amount = n
		}
	}
	if strings.HasPrefix(w.Event, "refund.") {
		out.Kind = providers.KindRefund
		out.ProviderRefundID = d.ID
		out.RefundID = d.ReferenceID
		out.RefundStatus = refundStatus(d.Status)
		out.ConfirmRefund = true // only the callback token authenticates it: ask GET /refunds/{id}
		out.ProviderPaymentID = d.PaymentRequestID
		if out.ProviderPaymentID == "" {
			out.ProviderPaymentID = d.PaymentID
		}
	} else {
		out.Kind = providers.KindPayment
		out.ProviderPaymentID = d.PaymentRequestID
		if out.ProviderPaymentID == "" {
			out.ProviderPaymentID = d.ID
		}
		out.OrderID = d.ReferenceID
		out.ConfirmByStatus = true
		out.Status = MapStatus(d.Status)
		if out.Status == payrouter.StatusFailed {
			out.Failure = failure(d.FailureCode, d.Status)
		}
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{w.Event, d.ID, d.PaymentRequestID, d.PaymentID, d.ReferenceID, d.Status,
		string(d.Amount), string(d.RequestAmount), d.Currency}, "\x00")))
	out.EventID = "xnd_" + hex.EncodeToString(sum[:16])
	return out, nil
}
