// Package store is payrouter's durable state: payments (with attempts and
// refunds), idempotency records, the event outbox, the webhook inbox and
// anomalies. Every state change of a payment and the events it produced are
// written in one transaction. Two implementations share one SQL dialect
// subset: SQLite (embedded, the default) and PostgreSQL.
package store

import (
	"context"
	"time"

	"github.com/payrouter/payrouter"
)

// ErrDuplicateReference: the merchant already has a payment with that
// reference (the same value as payrouter.ErrDuplicateReference).
var ErrDuplicateReference = payrouter.ErrDuplicateReference

// Store is the durable state: every aggregate's interface in one, what the
// wiring opens and closes. Consumers take only the aggregates they use
// (router.Store, recon.Ledger, the events package's cursor and delivery
// stores, …). Methods are safe for concurrent use. Errors are
// payrouter.ErrNotExist (errors.Is) for a missing row, the Err* sentinels
// above, or internal.
type Store interface {
	Payments
	Idempotency
	Events
	Cursors
	Deliveries
	Inbox
	Anomalies
	Reconciliations

	// Ping checks the store is usable (readiness).
	Ping(ctx context.Context) error
	Close() error
}

// Payments are payments with their attempts and refunds; every write also
// stores the events the change produced (p.PendingEvents) in the same
// transaction.
type Payments interface {
	// CreatePayment inserts a new payment with its attempts, refunds and
	// pending events (p.PendingEvents) in one transaction. It returns
	// ErrDuplicateReference when the merchant already used p.Reference,
	// except that the references of payments for which
	// payrouter.Payment.ReferenceReusable holds are free again; of
	// concurrent creates with one reference at most one succeeds.
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
}

// Idempotency are the merchants' idempotency keys (the records of
// requests that are running or whose response is stored for replay).
type Idempotency interface {
	// ClaimIdempotencyKey claims (merchant, key) for a request whose body
	// hashes to requestHash. It returns nil when the caller now owns the key,
	// or the existing record (the caller decides: stored response,
	// 409 in progress, 422 different body). Concurrent claims of one key:
	// exactly one gets nil.
	ClaimIdempotencyKey(ctx context.Context, merchantID, key, requestHash string, now time.Time) (*IdempotencyRecord, error)
	// CompleteIdempotencyKey stores the response to replay.
	CompleteIdempotencyKey(ctx context.Context, merchantID, key string, status int, body []byte) error
	// ReleaseIdempotencyKey forgets a claimed key (the request failed with a
	// 5xx or before doing anything; the merchant may retry).
	ReleaseIdempotencyKey(ctx context.Context, merchantID, key string) error
	// TakeOverIdempotencyKey re-claims a running record older than
	// staleBefore (its owner crashed): it returns true when the caller now
	// owns it. The record keeps its payment link.
	TakeOverIdempotencyKey(ctx context.Context, merchantID, key string, staleBefore, now time.Time) (bool, error)
	// GetIdempotencyKey reads (merchant, key)'s record without claiming it;
	// a missing one is payrouter.ErrNotExist.
	GetIdempotencyKey(ctx context.Context, merchantID, key string) (*IdempotencyRecord, error)
	// PurgeIdempotencyKeys deletes the records created (or last taken
	// over) before t, completed or running — a record untouched for the
	// whole retention window has no live owner — and returns how many.
	PurgeIdempotencyKeys(ctx context.Context, before time.Time) (int64, error)
}

// Events is the event outbox, written with the payments (see Payments).
type Events interface {
	// ListEvents lists a merchant's events with Seq > after, oldest first
	// ("" merchant: all merchants).
	ListEvents(ctx context.Context, merchantID string, after int64, limit int) ([]payrouter.Event, error)
	// GetEvent reads one event.
	GetEvent(ctx context.Context, merchantID string, seq int64) (*payrouter.Event, error)
}

// Cursors are the outbox consumers' positions.
type Cursors interface {
	// Cursor returns the last event seq the named consumer (the webhook
	// dispatcher, a Redis stream publisher) has handled; 0 when it has none.
	Cursor(ctx context.Context, name string) (int64, error)
	// AdvanceCursor moves the named cursor forward to seq; a seq at or
	// below the stored one changes nothing (cursors never go back).
	AdvanceCursor(ctx context.Context, name string, seq int64) error
}

// Deliveries are the merchant webhook deliveries of events.
type Deliveries interface {
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
}

// Inbox is the webhook inbox: verified provider notifications, stored
// before they are processed.
type Inbox interface {
	// InsertWebhook stores a verified provider webhook in the inbox. It
	// returns false (and stores nothing) when (provider, event id) is
	// already there.
	InsertWebhook(ctx context.Context, w *InboxItem) (bool, error)
	// PendingWebhooks lists unprocessed inbox items, oldest first.
	PendingWebhooks(ctx context.Context, limit int) ([]InboxItem, error)
	// DueWebhooks lists unprocessed inbox items due for a check at now
	// (NextAt zero or not after now), oldest first.
	DueWebhooks(ctx context.Context, now time.Time, limit int) ([]InboxItem, error)
	// GetWebhook reads the item of (provider, event id); payrouter.ErrNotExist
	// when there is none.
	GetWebhook(ctx context.Context, provider, eventID string) (*InboxItem, error)
	// RetryWebhook keeps an unprocessed item pending with one more attempt
	// counted, due again at next (a notification not confirmed yet, or not
	// applicable now). A missing or finished item is payrouter.ErrNotExist.
	RetryWebhook(ctx context.Context, id int64, note string, next time.Time) error
	// FinishWebhook marks an inbox item processed with its outcome.
	FinishWebhook(ctx context.Context, id int64, outcome, note string, now time.Time) error
}

// Anomalies are what ops must look at.
type Anomalies interface {
	// RecordAnomaly keeps something ops must look at: an impossible
	// transition, an orphan webhook, an unmapped provider status.
	RecordAnomaly(ctx context.Context, a *Anomaly) error
	// ListAnomalies lists anomalies, newest first.
	ListAnomalies(ctx context.Context, limit int) ([]Anomaly, error)
}

// PaymentWriter is implemented by stores that can fold the idempotency
// record of a create request into the payment's own write transactions
// (the SQL stores do): the claim into the transaction that creates the
// payment, the stored response into the one that saves its outcome. That
// halves the write transactions of an idempotent create without changing
// what is durable when: the attempt is stored before the provider call, the
// response before it is sent. Callers find it by type assertion. The
// router declares the same interface (router.PaymentWriter).
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

// The records the router exchanges with its store are domain types (the
// router is public and may not name this package's); these aliases keep
// their store names.
type (
	IdempotencyClaim      = payrouter.IdempotencyClaim
	IdempotencyCompletion = payrouter.IdempotencyCompletion
	UpdateOptions         = payrouter.UpdateOptions
	IdempotencyRecord     = payrouter.IdempotencyRecord
	Anomaly               = payrouter.Anomaly
)

// Anomaly kinds (see payrouter.Anomaly).
const (
	AnomalyTransition = payrouter.AnomalyTransition
	AnomalyOrphan     = payrouter.AnomalyOrphan
	AnomalyUnmapped   = payrouter.AnomalyUnmapped
	AnomalyAmount     = payrouter.AnomalyAmount
)

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
	Headers    map[string]string // signature headers only, for audit; never a secret (no token, no Authorization)
	Body       []byte            // the raw body, byte for byte
	Parsed     []byte            // the verified, normalized notification (JSON)
	ReceivedAt time.Time
	Outcome    string // "" until processed: applied | stale | anomaly | orphan | unmapped | unconfirmed | refuted
	Note       string
	Attempts   int       // checks that left it pending (not confirmed yet, or not applicable then)
	NextAt     time.Time // when it is due again; zero: now
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
