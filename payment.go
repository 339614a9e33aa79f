// Package payrouter holds the domain types every other package shares:
// Payment, Attempt, Refund, Money, Status, Event and the typed Error. It
// imports nothing of ours, so anything may import it.
package payrouter

import (
	"fmt"
	"time"
)

// Method is how the customer pays.
type Method string

const (
	MethodCard         Method = "card"
	MethodGoPay        Method = "gopay"
	MethodOVO          Method = "ovo"
	MethodDANA         Method = "dana"
	MethodShopeePay    Method = "shopeepay"
	MethodQRIS         Method = "qris"
	MethodBankTransfer Method = "bank_transfer"
)

// Methods lists every method in a stable order.
var Methods = []Method{MethodCard, MethodGoPay, MethodOVO, MethodDANA, MethodShopeePay, MethodQRIS, MethodBankTransfer}

// Valid reports whether m is a known method.
func (m Method) Valid() bool {
	for _, k := range Methods {
		if k == m {
			return true
		}
	}
	return false
}

// CustomerAction reports whether the customer completes the payment
// elsewhere (QR, deeplink, VA). Such a payment may fail over after an
// ambiguous attempt, because nothing is charged until the customer acts;
// a card never may.
func (m Method) CustomerAction() bool { return m != MethodCard }

// CheckoutHosted is Payment.Checkout for payrouter's hosted checkout page.
const CheckoutHosted = "hosted"

// CaptureMode is automatic (capture on authorisation) or manual.
type CaptureMode string

const (
	CaptureAutomatic CaptureMode = "automatic"
	CaptureManual    CaptureMode = "manual"
)

// Customer is who pays. Phone is required by some e-wallets (OVO push).
type Customer struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// NextAction tells the merchant what the customer must do.
type NextAction struct {
	Type     string `json:"type"` // redirect | qr_code | deeplink | bank_transfer
	URL      string `json:"url,omitempty"`
	QRString string `json:"qr_string,omitempty"`
	VANumber string `json:"va_number,omitempty"`
	Bank     string `json:"bank,omitempty"`
	// BillerCode is entered before VANumber (the bill key) for bill
	// payments such as Mandiri's, which have no single VA number.
	BillerCode string     `json:"biller_code,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
}

// Route records why a payment went where it went.
type Route struct {
	Rule         string   `json:"rule"`
	RulesVersion string   `json:"rules_version"`
	Strategy     string   `json:"strategy"`
	Candidates   []string `json:"candidates"`
	Reason       string   `json:"reason"`
}

// Failure says why a payment failed. Code is payrouter's (card_declined,
// insufficient_funds, expired, canceled, provider_unavailable, …);
// ProviderCode is the provider's own.
type Failure struct {
	Code         string `json:"code"`
	Message      string `json:"message,omitempty"`
	ProviderCode string `json:"provider_code,omitempty"`
}

// Payment is the aggregate the store loads and saves as one: the payment,
// its attempts and refunds. Amounts are minor units of Currency.
type Payment struct {
	ID          string            `json:"id"`
	MerchantID  string            `json:"-"`
	Status      Status            `json:"status"`
	Amount      int64             `json:"amount"`
	Currency    Currency          `json:"currency"`
	Method      Method            `json:"method,omitempty"` // empty until the customer chooses (hosted checkout)
	Reference   string            `json:"reference"`
	Description string            `json:"description,omitempty"`
	Customer    *Customer         `json:"customer,omitempty"`
	Country     string            `json:"country,omitempty"`
	Capture     CaptureMode       `json:"capture"`
	ReturnURL   string            `json:"return_url,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Bank        string            `json:"bank,omitempty"`
	// Checkout is "hosted" when the customer completes the payment on
	// payrouter's checkout page (next_action.url) and chooses the method there.
	Checkout          string      `json:"checkout,omitempty"`
	Provider          string      `json:"provider,omitempty"`
	ProviderPaymentID string      `json:"provider_payment_id,omitempty"`
	AmountCaptured    int64       `json:"amount_captured"`
	AmountRefunded    int64       `json:"amount_refunded"`
	NextAction        *NextAction `json:"next_action,omitempty"`
	Route             Route       `json:"route"`
	Attempts          []Attempt   `json:"attempts"`
	Refunds           []Refund    `json:"refunds,omitempty"`
	Failure           *Failure    `json:"failure,omitempty"`
	CreatedAt         time.Time   `json:"created_at"`
	UpdatedAt         time.Time   `json:"updated_at"`

	// Tokens are the merchant's provider-specific card tokens. They are kept
	// so that the resolver can retry with the same parameters, and never
	// rendered: the merchant already has them.
	Tokens map[string]string `json:"-"`
	// ExpiresAt is when an unpaid customer-action payment lapses.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// ResolveAt is when the resolver should next ask a provider about this
	// payment; nil when nothing is unresolved.
	ResolveAt *time.Time `json:"-"`

	// pending are the events produced by state changes since load; the
	// store writes them in the same transaction as the payment.
	pending []Event
	// rev is the store's version of the payment when it was read or saved
	// (see Revision).
	rev int64
}

// Revision is the store's version of the payment when it was read or last
// saved; every save bumps it. 0 means the payment did not come from a
// store. Stores use it to save a caller's fresh copy without reloading it.
func (p *Payment) Revision() int64 { return p.rev }

// SetRevision records the store's version of the payment (stores only).
func (p *Payment) SetRevision(v int64) { p.rev = v }

// AttemptStatus is the state of one call to one provider.
type AttemptStatus string

const (
	AttemptPending        AttemptStatus = "pending" // recorded before the call
	AttemptRequiresAction AttemptStatus = "requires_action"
	AttemptProcessing     AttemptStatus = "processing"
	AttemptAuthorized     AttemptStatus = "authorized"
	AttemptSucceeded      AttemptStatus = "succeeded"
	AttemptFailed         AttemptStatus = "failed"
	AttemptAmbiguous      AttemptStatus = "ambiguous" // sent, outcome unknown
	AttemptCanceled       AttemptStatus = "canceled"
	AttemptExpired        AttemptStatus = "expired"
	AttemptSkipped        AttemptStatus = "skipped" // never sent (breaker open)
)

// Final reports whether the attempt's outcome is known for good.
func (s AttemptStatus) Final() bool {
	switch s {
	case AttemptSucceeded, AttemptFailed, AttemptCanceled, AttemptExpired, AttemptSkipped:
		return true
	}
	return false
}

// Attempt is one call to one provider. Its idempotency key is the payment id
// and the attempt number, so a retry of the same attempt can never charge
// twice at that provider.
type Attempt struct {
	N                 int           `json:"-"`
	Provider          string        `json:"provider"`
	ProviderPaymentID string        `json:"provider_payment_id,omitempty"`
	Status            AttemptStatus `json:"status"`
	ErrorClass        string        `json:"error_class,omitempty"`
	ErrorCode         string        `json:"error_code,omitempty"`
	ErrorMessage      string        `json:"-"`
	ExpectedFee       int64         `json:"expected_fee"`
	LatencyMS         int64         `json:"latency_ms"`
	StartedAt         time.Time     `json:"started_at"`
	IdempotencyKey    string        `json:"-"`
}

// AttemptKey is the idempotency key of attempt n of a payment: stable
// across restarts.
func AttemptKey(paymentID string, n int) string { return fmt.Sprintf("%s_a%d", paymentID, n) }

// RefundStatus is the state of a refund.
type RefundStatus string

const (
	RefundPending   RefundStatus = "pending"
	RefundSucceeded RefundStatus = "succeeded"
	RefundFailed    RefundStatus = "failed"
)

// Refund is a (partial) refund of a captured payment.
type Refund struct {
	ID               string       `json:"id"`
	Amount           int64        `json:"amount"`
	Reason           string       `json:"reason,omitempty"`
	Status           RefundStatus `json:"status"`
	ProviderRefundID string       `json:"provider_refund_id,omitempty"`
	FailureCode      string       `json:"failure_code,omitempty"`
	CreatedAt        time.Time    `json:"created_at"`
}

// ReferenceReusable reports whether the merchant may use p's reference
// again for a new payment: p failed (provider_unavailable or no_route)
// without any provider having accepted an attempt — every attempt was
// skipped by a breaker or refused as unavailable or invalid, so nothing can
// exist at a provider. An ambiguous attempt, a decline or a provider
// payment id means a provider took the request: the reference stays taken.
// Stores keep the reference unique among the payments for which this is
// false.
func (p *Payment) ReferenceReusable() bool {
	if p.Status != StatusFailed || p.Failure == nil || (p.Failure.Code != "provider_unavailable" && p.Failure.Code != "no_route") {
		return false
	}
	for _, a := range p.Attempts {
		switch {
		case a.ProviderPaymentID != "":
			return false
		case a.Status == AttemptSkipped:
		case a.Status == AttemptFailed && (a.ErrorClass == "unavailable" || a.ErrorClass == "invalid"):
		default:
			return false
		}
	}
	return true
}

// LastAttempt returns the newest attempt, or nil.
func (p *Payment) LastAttempt() *Attempt {
	if len(p.Attempts) == 0 {
		return nil
	}
	return &p.Attempts[len(p.Attempts)-1]
}

// AttemptFor returns the attempt at provider with that provider payment id,
// or nil.
func (p *Payment) AttemptFor(provider, providerPaymentID string) *Attempt {
	for i := len(p.Attempts) - 1; i >= 0; i-- {
		a := &p.Attempts[i]
		if a.Provider == provider && (providerPaymentID == "" || a.ProviderPaymentID == providerPaymentID) {
			return a
		}
	}
	return nil
}

// PendingEvents returns the events produced since the payment was loaded and
// forgets them; the store calls it inside the transaction that saves p.
func (p *Payment) PendingEvents() []Event {
	ev := p.pending
	p.pending = nil
	return ev
}
