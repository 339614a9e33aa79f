// Package store is payrouter's durable state: payments (with attempts and
// refunds), idempotency records, the event outbox, the webhook inbox and
// anomalies. Every state change of a payment and the events it produced are
// written in one transaction. Two implementations share one SQL dialect
// subset: SQLite (embedded, the default) and PostgreSQL.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/payrouter/payrouter"
)

// ErrDuplicateReference: the merchant already has a payment with that reference.
var ErrDuplicateReference = errors.New("store: duplicate reference")

// Store is the durable state. Methods are safe for concurrent use. Errors
// are payrouter.ErrNotExist (errors.Is) for a missing row, the Err*
// sentinels above, or internal.
type Store interface {
	// ClaimIdempotencyKey claims (merchant, key) for a request whose body
	// hashes to requestHash. It returns nil when the caller now owns the key,
	// or the existing record (the caller decides: stored response,
	// 409 in progress, 422 different body). Concurrent claims of one key:
	// exactly one gets nil.
	ClaimIdempotencyKey(ctx context.Context, merchantID, key, requestHash string, now time.Time) (*IdempotencyRecord, error)
	// LinkIdempotencyKey records the payment a claimed key created, so a
	// retry after a crash can answer with that payment.
	LinkIdempotencyKey(ctx context.Context, merchantID, key, paymentID string) error
	// CompleteIdempotencyKey stores the response to replay.
	CompleteIdempotencyKey(ctx context.Context, merchantID, key string, status int, body []byte) error
	// ReleaseIdempotencyKey forgets a claimed key (the request failed with a
	// 5xx or before doing anything; the merchant may retry).
	ReleaseIdempotencyKey(ctx context.Context, merchantID, key string) error
	// TakeOverIdempotencyKey re-claims a running record older than
	// staleBefore (its owner crashed): it returns true when the caller now
	// owns it. The record keeps its payment link.
	TakeOverIdempotencyKey(ctx context.Context, merchantID, key string, staleBefore, now time.Time) (bool, error)
	// PurgeIdempotencyKeys deletes completed records created before t.
	PurgeIdempotencyKeys(ctx context.Context, before time.Time) (int64, error)

	// CreatePayment inserts a new payment with its attempts, refunds and
	// pending events (p.PendingEvents) in one transaction. It returns
	// ErrDuplicateReference when the merchant already used p.Reference.
	CreatePayment(ctx context.Context, p *payrouter.Payment) error
	// UpdatePayment loads the payment, calls fn and, when fn returns nil,
	// saves the payment, its attempts and refunds (inserting new ones) and
	// its pending events in one transaction, serialized with every other
	// update of that payment. fn must not do I/O. An error from fn is
	// returned as is and nothing is written.
	UpdatePayment(ctx context.Context, id string, fn func(p *payrouter.Payment) error) (*payrouter.Payment, error)
	// GetPayment reads one payment; merchantID "" skips the merchant check
	// (internal callers), otherwise another merchant's payment is ErrNotExist.
	GetPayment(ctx context.Context, merchantID, id string) (*payrouter.Payment, error)
	// FindPayment finds a payment by a provider's payment id (or order id)
	// on any of its attempts.
	FindPayment(ctx context.Context, provider, providerPaymentID string) (*payrouter.Payment, error)
	// ListPayments lists a merchant's payments, newest first.
	ListPayments(ctx context.Context, f ListFilter) ([]*payrouter.Payment, error)
	// DuePayments lists payments whose ResolveAt is at or before now, oldest
	// first: the resolver's work queue.
	DuePayments(ctx context.Context, now time.Time, limit int) ([]*payrouter.Payment, error)
	// ScanPayments calls fn for every payment created at or after since,
	// oldest first (replay, reconciliation).
	ScanPayments(ctx context.Context, since time.Time, fn func(*payrouter.Payment) error) error

	// ListEvents lists a merchant's events with Seq > after, oldest first
	// ("" merchant: all merchants).
	ListEvents(ctx context.Context, merchantID string, after int64, limit int) ([]payrouter.Event, error)
	// GetEvent reads one event.
	GetEvent(ctx context.Context, merchantID string, seq int64) (*payrouter.Event, error)

	// InsertWebhook stores a verified provider webhook in the inbox. It
	// returns false (and stores nothing) when (provider, event id) is
	// already there.
	InsertWebhook(ctx context.Context, w *InboxItem) (bool, error)
	// PendingWebhooks lists unprocessed inbox items, oldest first.
	PendingWebhooks(ctx context.Context, limit int) ([]InboxItem, error)
	// FinishWebhook marks an inbox item processed with its outcome.
	FinishWebhook(ctx context.Context, id int64, outcome, note string, now time.Time) error

	// RecordAnomaly keeps something ops must look at: an impossible
	// transition, an orphan webhook, an unmapped provider status.
	RecordAnomaly(ctx context.Context, a *Anomaly) error
	// ListAnomalies lists anomalies, newest first.
	ListAnomalies(ctx context.Context, limit int) ([]Anomaly, error)

	// Cursor returns the last event seq the named consumer (the webhook
	// dispatcher, a Redis stream publisher) has handled; 0 when it has none.
	Cursor(ctx context.Context, name string) (int64, error)
	// AdvanceCursor moves the named cursor forward to seq; a seq at or
	// below the stored one changes nothing (cursors never go back).
	AdvanceCursor(ctx context.Context, name string, seq int64) error
	// EnqueueDeliveries inserts the pending merchant webhook deliveries ds
	// (an event that already has one is left alone) and advances cursor to
	// upTo, in one transaction, so a crash can neither lose nor double them.
	EnqueueDeliveries(ctx context.Context, cursor string, upTo int64, ds []Delivery) error
	// ClaimDeliveries returns up to limit pending deliveries due at now,
	// oldest due first, and pushes their due time to now+lease so that no
	// other dispatcher claims them meanwhile; each claim bumps Version.
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Delivery, error)
	// FinishDelivery records the outcome of an attempt on a claimed
	// delivery: Status, Attempts, NextAt, LastStatus, LastError, UpdatedAt
	// (and DeliveredAt). It returns false, writing nothing, when d.Version is
	// no longer current (the delivery was claimed again or redelivered).
	FinishDelivery(ctx context.Context, d *Delivery) (bool, error)
	// Redeliver makes the delivery of event seq pending and due at now with
	// a fresh retry window, creating it if the event never had one.
	// merchantID "" skips the merchant check; a missing event (or another
	// merchant's) is payrouter.ErrNotExist. Idempotent.
	Redeliver(ctx context.Context, merchantID string, seq int64, now time.Time) (*Delivery, error)
	// GetDelivery reads the delivery of event seq (merchantID "" = any);
	// a missing one is payrouter.ErrNotExist.
	GetDelivery(ctx context.Context, merchantID string, seq int64) (*Delivery, error)
	// ListDeliveries lists deliveries by ascending event seq.
	ListDeliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error)

	// Ping checks the store is usable (readiness).
	Ping(ctx context.Context) error
	Close() error
}

// PaymentWriter is implemented by stores that can fold the idempotency
// record of a create request into the payment's own write transactions
// (the SQL stores do): the claim into the transaction that creates the
// payment, the stored response into the one that saves its outcome. That
// halves the write transactions of an idempotent create without changing
// what is durable when: the attempt is stored before the provider call, the
// response before it is sent. Callers find it by type assertion.
type PaymentWriter interface {
	// CreatePaymentClaiming claims c's key and creates p in one
	// transaction. It returns (nil, nil) when both are stored; the existing
	// record, having written nothing, when the key is already claimed or
	// completed (the caller decides: stored response, 409 in progress, 422
	// different body); store.ErrDuplicateReference, having written nothing
	// (the key is not claimed), when the merchant already used p.Reference.
	// The claimed record is linked to p.ID. Concurrent calls with one key:
	// at most one gets (nil, nil).
	CreatePaymentClaiming(ctx context.Context, p *payrouter.Payment, c IdempotencyClaim) (*IdempotencyRecord, error)
	// UpdatePaymentWith is UpdatePayment with options (see UpdateOptions).
	// Without options it behaves exactly as UpdatePayment. With
	// opts.Current, fn may be called twice (on a copy of Current, then on a
	// reloaded payment if Current was stale), so fn must set its outputs
	// afresh on each call.
	UpdatePaymentWith(ctx context.Context, id string, fn func(p *payrouter.Payment) error, opts UpdateOptions) (*payrouter.Payment, error)
}

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
	Render func(p *payrouter.Payment) ([]byte, error)
}

// UpdateOptions tune UpdatePaymentWith.
type UpdateOptions struct {
	// Current is the caller's copy of the payment as it was read or saved
	// (its Revision not 0). When the stored payment is still at that
	// revision, fn runs on a copy of Current before the write and the store
	// saves it without reloading the payment, its attempts and refunds;
	// otherwise it reloads and calls fn again, as UpdatePayment does.
	// Current itself is not modified, apart from what fn does through
	// pointers it shares with the copy.
	Current *payrouter.Payment
	// Complete, when set, stores the idempotent response rendered from the
	// saved payment in the same transaction (a missing record is left
	// missing: the payment update still commits).
	Complete *IdempotencyCompletion
}

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

// ListFilter selects a merchant's payments.
type ListFilter struct {
	MerchantID string
	Reference  string
	Status     payrouter.Status
	Limit      int
	// Before lists payments created before this payment id (pagination).
	Before string
	// After lists the payments created after this payment id (the page
	// before a cursor), the Limit nearest to it; still newest first.
	After string
}

// InboxItem is one received provider webhook.
type InboxItem struct {
	ID         int64
	Provider   string
	EventID    string
	Headers    map[string]string // signature headers only, for audit
	Body       []byte            // the raw body, byte for byte
	Parsed     []byte            // the verified, normalized notification (JSON)
	ReceivedAt time.Time
	Outcome    string // "" until processed: applied | duplicate | stale | anomaly | orphan | unmapped
	Note       string
}

// Anomaly kinds.
const (
	AnomalyTransition = "impossible_transition"
	AnomalyOrphan     = "orphan_webhook"
	AnomalyUnmapped   = "unmapped_status"
	AnomalyAmount     = "amount_mismatch"
)

// Anomaly is something ops must look at.
type Anomaly struct {
	ID        int64
	Kind      string
	PaymentID string
	Provider  string
	Detail    string
	CreatedAt time.Time
}

// Delivery states of a merchant webhook.
const (
	DeliveryPending   = "pending"   // to be (re)tried at NextAt
	DeliveryDelivered = "delivered" // the merchant answered 2xx
	DeliveryDead      = "dead"      // retried for the whole window: dead letter, redeliverable
)

// Delivery is the state of one event's merchant webhook.
type Delivery struct {
	Seq        int64 // the event's
	MerchantID string
	Status     string
	Attempts   int
	NextAt     time.Time // when pending: when the next attempt is due
	LastStatus int       // HTTP status of the last attempt; 0 = no response
	LastError  string    // why the last attempt failed (never a secret)
	// CreatedAt starts the retry window (first enqueue, or the last
	// redeliver).
	CreatedAt   time.Time
	UpdatedAt   time.Time
	DeliveredAt *time.Time
	// Version changes on every claim and redeliver; FinishDelivery writes
	// only over the version it claimed.
	Version int64
}

// DeliveryFilter selects deliveries.
type DeliveryFilter struct {
	MerchantID string // "" = every merchant
	Status     string // "" = any
	After      int64  // event seq
	Limit      int    // default 100, at most 1000
}
