package router

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// Op is a merchant operation's identity, from its idempotency key (the
// zero Op: an operation without one).
type Op struct {
	// Key is stable across retries of one operation (the merchant's
	// idempotency key with its scope and request fingerprint); provider
	// keys that are not already fixed by the payment derive from it.
	Key string
	// Resumed: an earlier run of this operation died before it answered,
	// so part of it may be done. A resumed operation finishes what is left
	// and answers with the result instead of refusing a payment that is
	// already in the operation's target state.
	Resumed bool
}

// Capture captures an authorised payment; amount 0 captures everything.
// Capture is idempotent at the provider (key: payment id + "_capture"), so a
// merchant may retry after provider_unavailable. Errors: not_found,
// invalid_state, invalid_request (amount), provider_unavailable.
func (r *Router) Capture(ctx context.Context, merchantID, id string, amount int64) (*payrouter.Payment, error) {
	return r.CaptureOp(ctx, merchantID, id, amount, Op{})
}

// CaptureOp is Capture as operation op: resumed, a payment already
// captured is the answer.
func (r *Router) CaptureOp(ctx context.Context, merchantID, id string, amount int64, op Op) (*payrouter.Payment, error) {
	p, err := r.store.GetPayment(ctx, merchantID, id)
	if err != nil {
		return nil, err
	}
	if op.Resumed && p.AmountCaptured > 0 {
		return p, nil
	}
	if p.Status != payrouter.StatusAuthorized {
		return nil, invalidState("payment is %s; only an authorized payment can be captured", p.Status)
	}
	if amount == 0 {
		amount = p.Amount
	}
	if amount > p.Amount {
		return nil, payrouter.InvalidParam("amount", "must not exceed the authorized amount %d", p.Amount)
	}
	g, err := r.active(p)
	if err != nil {
		return nil, err
	}
	if amount < p.Amount && !g.Capabilities().PartialCapture {
		return nil, payrouter.InvalidParam("amount", "%s does not support partial capture", g.Name)
	}
	res, err := g.Capture(ctx, &providers.CaptureRequest{
		Method: p.Method, ProviderPaymentID: p.ProviderPaymentID, IdempotencyKey: p.ID + "_capture", Amount: amount, Currency: p.Currency,
	})
	if err != nil {
		return nil, providerError(err)
	}
	return r.store.UpdatePayment(context.WithoutCancel(ctx), p.ID, func(q *payrouter.Payment) error {
		now := r.now().UTC()
		if res.Status == payrouter.StatusSucceeded || res.Status == "" {
			q.AmountCaptured = amount
			_, err := q.Advance(payrouter.StatusSucceeded, now)
			return err
		}
		_, err := q.Advance(res.Status, now)
		return err
	})
}

// Cancel voids an authorisation or cancels a payment awaiting the customer.
// The payment ends canceled with its one payment_failed event.
func (r *Router) Cancel(ctx context.Context, merchantID, id string) (*payrouter.Payment, error) {
	return r.CancelOp(ctx, merchantID, id, Op{})
}

// CancelOp is Cancel as operation op: resumed, a payment already canceled
// is the answer.
func (r *Router) CancelOp(ctx context.Context, merchantID, id string, op Op) (*payrouter.Payment, error) {
	p, err := r.store.GetPayment(ctx, merchantID, id)
	if err != nil {
		return nil, err
	}
	if op.Resumed && p.Status == payrouter.StatusCanceled {
		return p, nil
	}
	switch p.Status {
	case payrouter.StatusAuthorized, payrouter.StatusRequiresAction:
	default:
		return nil, invalidState("payment is %s; only an authorized payment or one awaiting the customer can be canceled", p.Status)
	}
	if p.Checkout == payrouter.CheckoutHosted && len(p.Attempts) == 0 {
		// A hosted checkout nobody chose a method for: nothing at any provider.
		return r.store.UpdatePayment(context.WithoutCancel(ctx), p.ID, func(q *payrouter.Payment) error {
			if len(q.Attempts) > 0 {
				return errChosen(q)
			}
			_, err := q.Fail(payrouter.StatusCanceled, payrouter.Failure{Code: "canceled", Message: "canceled before a method was chosen"}, r.now().UTC())
			return err
		})
	}
	g, err := r.active(p)
	if err != nil {
		return nil, err
	}
	a := p.AttemptFor(p.Provider, p.ProviderPaymentID)
	req := &providers.CancelRequest{ProviderPaymentID: p.ProviderPaymentID, IdempotencyKey: p.ID + "_cancel", Method: p.Method}
	if a != nil {
		req.OrderID = a.IdempotencyKey
	}
	res, err := g.Cancel(ctx, req)
	if err != nil {
		return nil, providerError(err)
	}
	return r.store.UpdatePayment(context.WithoutCancel(ctx), p.ID, func(q *payrouter.Payment) error {
		now := r.now().UTC()
		if a := q.AttemptFor(q.Provider, q.ProviderPaymentID); a != nil {
			a.Status = payrouter.AttemptCanceled
		}
		if res.Status == payrouter.StatusSucceeded {
			// The customer paid before the cancel landed: the truth wins.
			_, err := q.Advance(payrouter.StatusSucceeded, now)
			return err
		}
		_, err := q.Fail(payrouter.StatusCanceled, payrouter.Failure{Code: "canceled", Message: "canceled by the merchant"}, now)
		return err
	})
}

// Refund refunds amount (0 = all that is refundable) of a captured payment.
// The refund is recorded as pending before the provider is called, so the
// refundable amount can never be exceeded by concurrent refunds; the
// provider's key is the refund id. The returned payment carries the refund
// (last in Refunds): succeeded, failed, or pending until the provider's
// webhook or the resolver settles it (router/refunds.go).
func (r *Router) Refund(ctx context.Context, merchantID, id string, amount int64, reason string) (*payrouter.Payment, *payrouter.Refund, error) {
	return r.RefundOp(ctx, merchantID, id, amount, reason, Op{})
}

// RefundOp is Refund as operation op. With op.Key the refund id — which is
// the provider's idempotency key — derives from it (OpRefundID), so a
// refund already on the payment is recognised as this operation's and not
// created again: still pending (its run died), it is sent again with the
// same key (the provider answers with the refund it already has);
// succeeded, it is the answer; failed, the operation refunds anew under
// the next id.
func (r *Router) RefundOp(ctx context.Context, merchantID, id string, amount int64, reason string, op Op) (*payrouter.Payment, *payrouter.Refund, error) {
	p, err := r.store.GetPayment(ctx, merchantID, id)
	if err != nil {
		return nil, nil, err
	}
	g, err := r.active(p)
	if err != nil {
		return nil, nil, err
	}
	caps := g.Capabilities()
	if !caps.Refund {
		return nil, nil, invalidState("%s cannot refund", g.Name)
	}
	refundID := NewID("re_")
	if op.Key != "" {
		// The operation's refunds are OpRefundID(key, 1), (key, 2), …; its
		// latest decides: pending (a run died mid-call) is sent again,
		// succeeded is the answer, failed (refused, or unavailable and the
		// merchant retries) makes way for the next.
		var last *payrouter.Refund
		n := 1
		for ; ; n++ {
			rf := refundByID(p, OpRefundID(op.Key, n))
			if rf == nil {
				break
			}
			last = rf
		}
		switch {
		case last != nil && last.Status == payrouter.RefundPending:
			return r.sendRefund(ctx, g, p, *last)
		case last != nil && last.Status == payrouter.RefundSucceeded:
			return p, last, nil
		}
		refundID = OpRefundID(op.Key, n)
	}
	p, err = r.store.UpdatePayment(ctx, p.ID, func(q *payrouter.Payment) error {
		for _, rf := range q.Refunds {
			if rf.ID == refundID {
				// Recorded meanwhile by a concurrent run of this operation.
				return nil
			}
		}
		if q.Status != payrouter.StatusSucceeded && q.Status != payrouter.StatusPartiallyRefunded {
			return invalidState("payment is %s; only a captured payment can be refunded", q.Status)
		}
		left := q.Refundable()
		amt := amount
		if amt == 0 {
			amt = left
		}
		if amt <= 0 || amt > left {
			return payrouter.InvalidParam("amount", "must be between 1 and the refundable amount %d", left)
		}
		if amt < q.AmountCaptured && !caps.PartialRefund {
			return payrouter.InvalidParam("amount", "%s does not support partial refunds", g.Name)
		}
		now := r.now().UTC()
		q.Refunds = append(q.Refunds, payrouter.Refund{ID: refundID, Amount: amt, Reason: reason, Status: payrouter.RefundPending, CreatedAt: now})
		// Queued before the call: if this router dies before it learns the
		// outcome, the resolver settles the refund (router/refunds.go).
		q.ResolveAt = r.nextResolve(q, now)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	var ref payrouter.Refund
	for _, rf := range p.Refunds {
		if rf.ID == refundID {
			ref = rf
		}
	}
	return r.sendRefund(ctx, g, p, ref)
}

// OpRefundID is the id of the n-th refund (from 1) of the refund operation
// with key opKey: the same operation always gets the same ids, so a resend
// after a crash uses the same provider key and the refund is recorded once.
func OpRefundID(opKey string, n int) string {
	sum := sha256.Sum256([]byte("refund\x00" + opKey + "\x00" + strconv.Itoa(n)))
	return "re_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:15]))
}

// sendRefund asks the provider for the recorded pending refund ref (its id
// is the provider's idempotency key) and settles it with the answer.
// The request is refundRequest's, the one the resolver resends too.
func (r *Router) sendRefund(ctx context.Context, g *Guarded, p *payrouter.Payment, ref payrouter.Refund) (*payrouter.Payment, *payrouter.Refund, error) {
	res, callErr := g.Refund(ctx, refundRequest(p, &ref))
	p, err := r.store.UpdatePayment(context.WithoutCancel(ctx), p.ID, func(q *payrouter.Payment) error {
		now := r.now().UTC()
		for i := range q.Refunds {
			if q.Refunds[i].ID == ref.ID && res != nil {
				q.Refunds[i].ProviderRefundID = res.ProviderRefundID
			}
		}
		switch {
		case callErr == nil && res.Status == payrouter.RefundSucceeded:
			return q.SettleRefund(ref.ID, true, "", now)
		case callErr == nil && res.Status == payrouter.RefundFailed:
			return q.SettleRefund(ref.ID, false, "refund_failed", now)
		case callErr == nil, providers.ClassOf(callErr) == providers.Ambiguous:
			// Pending: the provider's webhook (or the resolver) settles it.
			q.ResolveAt = r.nextResolve(q, now)
			return nil
		default:
			return q.SettleRefund(ref.ID, false, codeOf(callErr), now)
		}
	})
	if err != nil {
		return nil, nil, err
	}
	for _, rf := range p.Refunds {
		if rf.ID == ref.ID {
			ref = rf
		}
	}
	if callErr != nil && ref.Status == payrouter.RefundFailed {
		return p, &ref, providerError(callErr)
	}
	return p, &ref, nil
}

func refundByID(p *payrouter.Payment, id string) *payrouter.Refund {
	for i := range p.Refunds {
		if p.Refunds[i].ID == id {
			return &p.Refunds[i]
		}
	}
	return nil
}

func (r *Router) active(p *payrouter.Payment) (*Guarded, error) {
	g := r.providers[p.Provider]
	if g == nil {
		return nil, invalidState("payment has no provider to act on")
	}
	return g, nil
}

// providerError turns a provider failure on capture/cancel/refund into the
// merchant's error.
func providerError(err error) error {
	var pe *providers.Error
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Class {
	case providers.Unavailable, providers.Ambiguous:
		return &payrouter.Error{Type: payrouter.ErrProviderUnavailable, Code: pe.Code, Message: "the provider did not answer; retrying is safe: " + pe.Message}
	case providers.Declined:
		return &payrouter.Error{Type: payrouter.ErrInvalidState, Code: pe.Code, Message: "the provider refused: " + pe.Message}
	}
	return &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: pe.Code, Message: "the provider refused the request: " + pe.Message}
}

// nextResolve says when the resolver should next look at q: soon while an
// attempt is unresolved, at expiry while the customer has to act, never
// once everything is final.
func (r *Router) nextResolve(q *payrouter.Payment, now time.Time) *time.Time {
	backoff := r.opts.ResolveBackoff
	if age := now.Sub(q.CreatedAt) / 4; age > backoff {
		backoff = min(age, 10*time.Minute)
	}
	soon := now.Add(backoff)
	for _, a := range q.Attempts {
		if a.Status == payrouter.AttemptPending {
			// In flight, or its router died: look once the request's
			// deadline has surely passed.
			t := a.StartedAt.Add(r.opts.Deadline + inFlightGrace)
			if t.Before(soon) {
				t = soon
			}
			return &t
		}
		if a.Status == payrouter.AttemptAmbiguous {
			return &soon
		}
		// A failed-over attempt still open at its provider must be closed.
		if (a.Status == payrouter.AttemptRequiresAction || a.Status == payrouter.AttemptProcessing) && !r.isActive(q, &a) {
			return &soon
		}
	}
	if t := r.refundResolveAt(q, now); t != nil {
		return t
	}
	switch q.Status {
	case payrouter.StatusProcessing:
		return &soon
	case payrouter.StatusRequiresAction, payrouter.StatusAuthorized:
		if q.ExpiresAt != nil {
			t := *q.ExpiresAt
			return &t
		}
	}
	return nil
}

// isActive reports whether the payment's outcome is a's: a is at the
// payment's provider, or, before any provider answered (a crash between
// recording an attempt and its call), a is the newest attempt.
func (r *Router) isActive(q *payrouter.Payment, a *payrouter.Attempt) bool {
	if q.Provider == "" {
		last := q.LastAttempt()
		return last != nil && last.N == a.N
	}
	return a.Provider == q.Provider && (q.ProviderPaymentID == "" || a.ProviderPaymentID == q.ProviderPaymentID)
}
