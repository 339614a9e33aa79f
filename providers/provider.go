// Package providers defines what the router needs from a payment provider
// and the one typed error classification that decides failover.
//
// An adapter (providers/stripe, providers/midtrans, …) implements Provider
// and, where its provider can, the optional one-method interfaces below
// (StatusChecker, RefundStatusChecker, WebhookParser, SettlementLister),
// found by type assertion as database/sql finds Pinger. Cross-cutting behaviour — breakers, timeouts,
// metrics — wraps a Provider in the router; adapters never repeat it.
package providers

import (
	"context"
	"net/http"
	"time"

	"github.com/payrouter/payrouter"
)

// Provider is one configured payment provider. Every method is idempotent
// under req.IdempotencyKey: calling again with the same key never charges,
// captures or refunds twice. Amounts are payrouter minor units (IDR
// exponent 0); the adapter converts to its provider's convention and
// returns an *Error of class Invalid for what its provider cannot represent.
// Every error returned is an *Error (errors.As), so the router can classify.
type Provider interface {
	// Capabilities says what this provider can take; the router skips a
	// candidate that cannot take a payment without calling it.
	Capabilities() Capabilities
	// Authorize creates (and confirms) a payment. A card decline is an
	// *Error of class Declined; a customer-action method returns a Result
	// with StatusRequiresAction and a NextAction.
	Authorize(ctx context.Context, req *AuthorizeRequest) (*Result, error)
	// Capture captures an authorised payment (Amount ≤ authorised; 0 = all).
	Capture(ctx context.Context, req *CaptureRequest) (*Result, error)
	// Cancel voids an authorisation or cancels/expires a pending
	// customer-action payment.
	Cancel(ctx context.Context, req *CancelRequest) (*Result, error)
	// Refund refunds Amount of a captured payment.
	Refund(ctx context.Context, req *RefundRequest) (*RefundResult, error)
}

// StatusChecker asks the provider for the current state of a payment. The
// resolver uses it to settle ambiguous attempts; Reference finds a payment
// whose provider id was never learnt (the request timed out).
type StatusChecker interface {
	Status(ctx context.Context, req *StatusRequest) (*Result, error)
}

// RefundStatusChecker asks the provider for the current state of a refund.
// The resolver uses it to settle refunds whose answer was lost (timeout,
// dropped connection) or that were recorded but never sent (the router
// died before the call). A refund the provider does not know is an *Error
// of class Invalid with Code "not_found": it never arrived (or is still in
// flight, which the resolver rules out by waiting out the call's deadline).
type RefundStatusChecker interface {
	RefundStatus(ctx context.Context, req *RefundStatusRequest) (*RefundResult, error)
}

// WebhookParser verifies a provider's webhook (signature, token) and
// normalizes it. It returns an *Error with Code "signature_invalid" (class
// Invalid) for anything forged, replayed, stale or tampered; the HTTP layer
// answers 401 and stores nothing.
type WebhookParser interface {
	ParseWebhook(h http.Header, body []byte, now time.Time) (*Notification, error)
}

// SettlementLister lists settled transactions for reconciliation.
type SettlementLister interface {
	Settlements(ctx context.Context, from, to time.Time) ([]Settlement, error)
}

// Capabilities is what a provider can take.
type Capabilities struct {
	// Methods maps each supported method to the currencies it takes.
	Methods map[payrouter.Method][]payrouter.Currency
	// ManualCapture: methods that support capture=manual.
	ManualCapture []payrouter.Method
	Refund        bool
	PartialRefund bool
	// PartialCapture: Capture with an amount below the authorised one.
	PartialCapture bool
	// IdempotentRetry: the provider honours idempotency keys for create, so
	// an ambiguous create can be resolved by resending it with the same key.
	IdempotentRetry bool
	// NeedsToken: card payments need a provider-specific token.
	Banks []string // bank_transfer banks, if any
}

// Supports reports whether the provider takes method in currency, with the
// given capture mode.
func (c Capabilities) Supports(m payrouter.Method, cur payrouter.Currency, capture payrouter.CaptureMode) bool {
	found := false
	for _, x := range c.Methods[m] {
		if x == cur {
			found = true
			break
		}
	}
	if !found {
		return false
	}
	if capture == payrouter.CaptureManual {
		for _, x := range c.ManualCapture {
			if x == m {
				return true
			}
		}
		return false
	}
	return true
}

// AuthorizeRequest is one attempt at one provider.
type AuthorizeRequest struct {
	PaymentID      string // payrouter's id; adapters send it as the order id / reference
	Attempt        int
	IdempotencyKey string // payrouter.AttemptKey(PaymentID, Attempt)
	Amount         int64
	Currency       payrouter.Currency
	Method         payrouter.Method
	Capture        payrouter.CaptureMode
	Token          string // card token for this provider (never logged)
	Bank           string // bank_transfer: bca, bni, bri, permata, mandiri
	Customer       payrouter.Customer
	Description    string
	Reference      string // the merchant's reference
	ReturnURL      string
	Metadata       map[string]string
}

// OrderID is what an adapter sends as the provider-side unique order id:
// the payment id plus attempt, so a failover attempt at the same provider
// never collides with an earlier one, and the router can parse it back.
func (r *AuthorizeRequest) OrderID() string { return r.IdempotencyKey }

// CaptureRequest captures Amount (0 = everything authorised).
type CaptureRequest struct {
	ProviderPaymentID string
	IdempotencyKey    string
	Amount            int64
	Currency          payrouter.Currency
	Method            payrouter.Method // selects the breaker; adapters need not read it
}

// CancelRequest voids or cancels.
type CancelRequest struct {
	ProviderPaymentID string
	OrderID           string // the AuthorizeRequest.OrderID, for providers keyed by it
	IdempotencyKey    string
	Method            payrouter.Method
}

// RefundRequest refunds Amount.
type RefundRequest struct {
	ProviderPaymentID string
	OrderID           string
	RefundID          string // payrouter's refund id, sent as the provider's refund key
	IdempotencyKey    string
	Amount            int64
	Currency          payrouter.Currency
	Method            payrouter.Method
	Reason            string
}

// RefundStatusRequest asks about one refund: by the provider's refund id
// when it was learnt, else by payrouter's refund id (sent on Refund as the
// provider's refund key or reference) within the payment.
type RefundStatusRequest struct {
	ProviderPaymentID string
	OrderID           string // the AuthorizeRequest.OrderID of the payment
	RefundID          string // payrouter's refund id
	ProviderRefundID  string // "" when the Refund answer was lost
	Amount            int64  // minor units, as sent on Refund
	Currency          payrouter.Currency
	Method            payrouter.Method
}

// StatusRequest asks about a payment by provider id or, when that is
// unknown, by the order id sent on Authorize.
type StatusRequest struct {
	ProviderPaymentID string
	OrderID           string
	Method            payrouter.Method
	Currency          payrouter.Currency
}

// Result is the provider's answer, mapped to payrouter's vocabulary.
type Result struct {
	ProviderPaymentID string
	Status            payrouter.Status
	ProviderStatus    string // the provider's own status, verbatim
	NextAction        *payrouter.NextAction
	AmountCaptured    int64 // minor units, when the provider says
	Failure           *payrouter.Failure
	// Refunds the provider reports on the payment, when its status answer
	// lists them (Midtrans); nil when it does not say.
	Refunds []ReportedRefund
}

// ReportedRefund is one refund as a provider's status answer lists it.
type ReportedRefund struct {
	RefundID         string // payrouter's refund id, as sent (refund key)
	ProviderRefundID string
	Amount           int64 // minor units
}

// RefundResult is a refund's outcome.
type RefundResult struct {
	ProviderRefundID string
	Status           payrouter.RefundStatus
}

// NotificationKind says what a webhook is about.
type NotificationKind string

const (
	KindPayment NotificationKind = "payment"
	KindRefund  NotificationKind = "refund"
)

// Notification is a verified webhook, normalized. Status is "" when the
// provider's status has no mapping: the processor records it, never guesses.
type Notification struct {
	Provider          string
	EventID           string // the provider's id for dedup, or a content hash
	Kind              NotificationKind
	ProviderPaymentID string
	OrderID           string // AuthorizeRequest.OrderID echoed back, if the provider does
	Status            payrouter.Status
	ProviderStatus    string
	Amount            int64 // minor units; 0 when the webhook carries none
	Currency          payrouter.Currency
	Failure           *payrouter.Failure
	RefundID          string // KindRefund: payrouter's refund id, if echoed
	ProviderRefundID  string
	RefundStatus      payrouter.RefundStatus
	// ConfirmByStatus: the signature does not cover the status (Midtrans:
	// order_id, status_code and gross_amount only; Xendit: nothing), so the
	// notification is only a claim: the router acts on a status query
	// instead, successes and failures alike.
	ConfirmByStatus bool
	// ConfirmRefund: a refund claim to confirm with the provider's refund
	// status query (RefundStatusChecker) before it is applied — the
	// payment's status cannot show one refund (Xendit: nothing is signed).
	ConfirmRefund bool
}

// Settlement is one settled transaction as the provider reports it.
type Settlement struct {
	Provider          string
	ProviderPaymentID string
	OrderID           string
	RefundID          string // a refund line: the merchant's (payrouter's) refund id, when the provider reports it
	Type              string // payment | refund | chargeback | fee | adjustment
	Amount            int64  // gross, minor units
	Fee               int64
	Net               int64
	Currency          payrouter.Currency
	Status            string
	SettledAt         time.Time
	Batch             string // the payout this line was paid out in, when the provider says
}
