package payrouter

import (
	"encoding/json"
	"fmt"
	"time"
)

// Status is a payment's state. Transitions are monotonic: see Advance.
type Status string

const (
	StatusRequiresAction    Status = "requires_action"
	StatusProcessing        Status = "processing"
	StatusAuthorized        Status = "authorized"
	StatusSucceeded         Status = "succeeded"
	StatusPartiallyRefunded Status = "partially_refunded"
	StatusRefunded          Status = "refunded"
	StatusFailed            Status = "failed"
	StatusCanceled          Status = "canceled"
	StatusExpired           Status = "expired"
)

// Statuses lists every status.
var Statuses = []Status{StatusRequiresAction, StatusProcessing, StatusAuthorized, StatusSucceeded,
	StatusPartiallyRefunded, StatusRefunded, StatusFailed, StatusCanceled, StatusExpired}

// Valid reports whether s is a known status.
func (s Status) Valid() bool { _, ok := rank[s]; return ok }

// Failed reports whether s is a terminal failure (failed, canceled, expired).
func (s Status) Failed() bool {
	return s == StatusFailed || s == StatusCanceled || s == StatusExpired
}

// Terminal reports whether the payment has had its one terminal event: the
// funds are captured (succeeded and later) or the payment failed for good.
func (s Status) Terminal() bool { return s.Failed() || rank[s] >= rank[StatusSucceeded] }

// rank orders the success path. A move to a lower rank is stale and ignored.
var rank = map[Status]int{
	StatusProcessing: 0, StatusRequiresAction: 0,
	StatusAuthorized: 1, StatusSucceeded: 2, StatusPartiallyRefunded: 3, StatusRefunded: 4,
	StatusFailed: 5, StatusCanceled: 5, StatusExpired: 5,
}

// AnomalyError is an impossible transition, such as a success reported for a
// payment that already expired. Nothing changes; ops must look at it (the
// customer may have paid for something we consider dead).
type AnomalyError struct {
	PaymentID string
	From, To  Status
}

func (e *AnomalyError) Error() string {
	return fmt.Sprintf("payment %s: impossible transition %s → %s", e.PaymentID, e.From, e.To)
}

// checkTransition classifies from → to: allowed (true, nil), stale or
// repeated (false, nil), or impossible (false, *AnomalyError).
func checkTransition(id string, from, to Status) (bool, error) {
	if from == to {
		return false, nil
	}
	switch {
	case from.Failed() && (to.Failed() || rank[to] == 0):
		// A second ending, or a late pending/processing, of a dead
		// payment: stale, nothing happened.
		return false, nil
	case from.Failed():
		return false, &AnomalyError{id, from, to} // money moved on a dead payment
	case to.Failed():
		if rank[from] >= rank[StatusSucceeded] {
			return false, &AnomalyError{id, from, to} // captured funds cannot fail
		}
		return true, nil
	case to == StatusPartiallyRefunded || to == StatusRefunded:
		// Only refunds move here, and only from a captured payment.
		if rank[from] < rank[StatusSucceeded] {
			return false, &AnomalyError{id, from, to}
		}
		return rank[to] > rank[from], nil
	case rank[to] < rank[from]:
		return false, nil // late webhook: never move backwards
	case rank[to] == rank[from]:
		return true, nil // processing ⇄ requires_action: the provider said so
	}
	return true, nil
}

// CanTransition reports whether from → to is a real forward move.
func CanTransition(from, to Status) bool {
	ok, _ := checkTransition("", from, to)
	return ok
}

// Advance moves the payment to `to` if that is a forward move, emitting the
// matching event. It returns false for a stale or repeated status and an
// *AnomalyError for an impossible one; in both cases nothing changes.
func (p *Payment) Advance(to Status, now time.Time) (bool, error) {
	ok, err := checkTransition(p.ID, p.Status, to)
	if !ok {
		return false, err
	}
	p.Status = to
	p.UpdatedAt = now
	switch {
	case to == StatusRequiresAction:
		p.emit(EventRequiresAction, now)
	case to == StatusAuthorized:
		p.emit(EventAuthorized, now)
	case to == StatusSucceeded:
		if p.AmountCaptured == 0 {
			p.AmountCaptured = p.Amount
		}
		p.NextAction = nil
		p.ResolveAt = nil
		p.emit(EventSuccess, now)
	case to.Failed():
		if p.Failure == nil {
			p.Failure = &Failure{Code: string(to)}
		}
		p.NextAction = nil
		p.ResolveAt = nil
		p.emit(EventFailed, now)
	}
	return true, nil
}

// Fail ends the payment with a failure and its one payment_failed event.
func (p *Payment) Fail(to Status, f Failure, now time.Time) (bool, error) {
	if ok, err := checkTransition(p.ID, p.Status, to); !ok {
		return false, err
	}
	p.Failure = &f
	return p.Advance(to, now)
}

// Refundable is what may still be refunded: captured minus refunded minus
// refunds in flight.
func (p *Payment) Refundable() int64 {
	n := p.AmountCaptured - p.AmountRefunded
	for _, r := range p.Refunds {
		if r.Status == RefundPending {
			n -= r.Amount
		}
	}
	return n
}

// SettleRefund records a refund's outcome, moving the payment to
// partially_refunded or refunded and emitting refund_success or
// refund_failed. Settling an already settled refund is a no-op.
func (p *Payment) SettleRefund(id string, ok bool, failureCode string, now time.Time) error {
	for i := range p.Refunds {
		r := &p.Refunds[i]
		if r.ID != id {
			continue
		}
		if r.Status != RefundPending {
			return nil
		}
		p.UpdatedAt = now
		if !ok {
			r.Status, r.FailureCode = RefundFailed, failureCode
			p.emitRefund(EventRefundFailed, *r, now)
			return nil
		}
		r.Status = RefundSucceeded
		p.AmountRefunded += r.Amount
		to := StatusPartiallyRefunded
		if p.AmountRefunded >= p.AmountCaptured {
			to = StatusRefunded
		}
		if _, err := checkTransition(p.ID, p.Status, to); err != nil {
			return err
		}
		if p.Status != to {
			p.Status = to
		}
		p.emitRefund(EventRefundSuccess, *r, now)
		return nil
	}
	return fmt.Errorf("payment %s has no refund %s", p.ID, id)
}

// EventType names a normalized event.
type EventType string

const (
	EventRequiresAction EventType = "payment_requires_action"
	EventAuthorized     EventType = "payment_authorized"
	EventSuccess        EventType = "payment_success"
	EventFailed         EventType = "payment_failed"
	EventRefundSuccess  EventType = "refund_success"
	EventRefundFailed   EventType = "refund_failed"
)

// Event is one entry of the merchant's event stream. Seq is assigned by the
// store in commit order; ID is derived from it so ids sort like the stream.
type Event struct {
	Seq        int64           `json:"-"`
	ID         string          `json:"id"`
	Type       EventType       `json:"type"`
	CreatedAt  time.Time       `json:"created_at"`
	PaymentID  string          `json:"payment_id"`
	MerchantID string          `json:"-"`
	Data       json.RawMessage `json:"data"`
}

// EventID formats a store sequence number as an event id.
func EventID(seq int64) string { return fmt.Sprintf("evt_%016d", seq) }

// ParseEventID is the inverse of EventID.
func ParseEventID(id string) (int64, error) {
	var n int64
	if _, err := fmt.Sscanf(id, "evt_%d", &n); err != nil || n < 0 {
		return 0, fmt.Errorf("invalid event id %q", id)
	}
	return n, nil
}

func (p *Payment) emit(t EventType, now time.Time) {
	data, _ := json.Marshal(p) // a Payment always marshals
	p.pending = append(p.pending, Event{Type: t, CreatedAt: now, PaymentID: p.ID, MerchantID: p.MerchantID, Data: data})
}

func (p *Payment) emitRefund(t EventType, r Refund, now time.Time) {
	data, _ := json.Marshal(struct {
		*Payment
		Refund Refund `json:"refund"`
	}{p, r})
	p.pending = append(p.pending, Event{Type: t, CreatedAt: now, PaymentID: p.ID, MerchantID: p.MerchantID, Data: data})
}
