package payrouter

import (
	"errors"
	"time"
)

// The records below are what the router exchanges with its store beyond
// the Payment itself. They live here, not in internal/store, so that the
// router's store contract (router.Store) names only public types.

// ErrDuplicateReference: the merchant already has a payment with that
// reference. Stores return it from a create; the HTTP layer maps it.
var ErrDuplicateReference = errors.New("store: duplicate reference")

// IdempotencyRecord is a claimed or completed idempotency key.
type IdempotencyRecord struct {
	MerchantID  string
	Key         string
	RequestHash string
	PaymentID   string // "" until linked
	Status      int    // 0 while running
	Body        []byte // the stored response, once completed
	CreatedAt   time.Time
}

// Running reports whether the first request is still in progress.
func (r *IdempotencyRecord) Running() bool { return r.Status == 0 }

// IdempotencyClaim is an idempotency key to claim with a payment's creation.
type IdempotencyClaim struct {
	MerchantID, Key, RequestHash string
	Now                          time.Time
}

// IdempotencyCompletion is the response to store for an idempotency key in
// the transaction that saves a payment.
type IdempotencyCompletion struct {
	MerchantID, Key string
	Status          int // the HTTP status to replay; not 0
	// Render returns the body to replay for the payment as it is saved. It
	// runs inside the write (or just before it, on a copy) and must not do
	// I/O; its error fails the update and nothing is written.
	Render func(p *Payment) ([]byte, error)
}

// UpdateOptions tune a store's UpdatePaymentWith.
type UpdateOptions struct {
	// Current is the caller's copy of the payment as it was read or saved
	// (its Revision not 0). When the stored payment is still at that
	// revision, fn runs on a copy of Current before the write and the store
	// saves it without reloading the payment, its attempts and refunds;
	// otherwise it reloads and calls fn again, as UpdatePayment does.
	// Current itself is not modified, apart from what fn does through
	// pointers it shares with the copy.
	Current *Payment
	// Complete, when set, stores the idempotent response rendered from the
	// saved payment in the same transaction (a missing record is left
	// missing: the payment update still commits).
	Complete *IdempotencyCompletion
}

// Anomaly kinds.
const (
	AnomalyTransition   = "impossible_transition"
	AnomalyOrphan       = "orphan_webhook"
	AnomalyUnmapped     = "unmapped_status"
	AnomalyAmount       = "amount_mismatch"
	AnomalyDoubleCharge = "double_charge"
)

// Anomaly is something ops must look at: an impossible transition, an
// orphan webhook, an unmapped provider status, an amount mismatch, a
// double charge.
type Anomaly struct {
	ID        int64
	Kind      string
	PaymentID string
	Provider  string
	Detail    string
	CreatedAt time.Time
}
