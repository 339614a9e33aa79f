package router

import (
	"context"
	"errors"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// Refund resolution. A refund is written pending (holding its amount)
// before the provider is called, so two things can leave it pending with
// nobody waiting for an answer: the call's answer was lost (timeout, reset,
// 5xx after processing), or the router died between the write and the
// call. The resolver settles both the same way, once the call's deadline
// has surely passed: ask the provider about the refund (RefundStatus, by
// the refund id sent as the provider's refund key); a refund the provider
// never received is resent with the same request and key, which providers
// deduplicate. Without a status query the resend itself is the question
// (its answer is the first outcome); past the key's window the refund
// waits for the provider's webhook.

// refundRequest is the provider call for refund rf of p: the first call and
// every resend are built here, so a resend is the same request under the
// same keys (the provider's refund key and idempotency key are the refund
// id, fixed when the refund was written).
func refundRequest(p *payrouter.Payment, rf *payrouter.Refund) *providers.RefundRequest {
	req := &providers.RefundRequest{ProviderPaymentID: p.ProviderPaymentID, RefundID: rf.ID, IdempotencyKey: rf.ID,
		Amount: rf.Amount, Currency: p.Currency, Method: p.Method, Reason: rf.Reason}
	if a := p.AttemptFor(p.Provider, p.ProviderPaymentID); a != nil {
		req.OrderID = a.IdempotencyKey
	}
	return req
}

func refundStatusRequest(p *payrouter.Payment, rf *payrouter.Refund) *providers.RefundStatusRequest {
	req := refundRequest(p, rf)
	return &providers.RefundStatusRequest{ProviderPaymentID: req.ProviderPaymentID, OrderID: req.OrderID, RefundID: rf.ID,
		ProviderRefundID: rf.ProviderRefundID, Amount: rf.Amount, Currency: p.Currency, Method: p.Method}
}

// refundInFlight reports whether rf's first call may still be running: its
// request's deadline has not surely passed.
func (r *Router) refundInFlight(q *payrouter.Payment, rf *payrouter.Refund, now time.Time) bool {
	return now.Before(r.refundCallOver(q, rf))
}

// refundCallOver is when rf's first call is surely over: the merchant
// request's deadline or the provider's own call timeout, whichever is
// longer, plus a grace for clocks and scheduling.
func (r *Router) refundCallOver(q *payrouter.Payment, rf *payrouter.Refund) time.Time {
	d := r.opts.Deadline
	if g := r.providers[q.Provider]; g != nil && g.Timeout > d {
		d = g.Timeout
	}
	return rf.CreatedAt.Add(d + inFlightGrace)
}

// refundOutcome is what the resolver learnt about a refund: a final
// status, or nothing (status "") and it asks again later.
type refundOutcome struct {
	status           payrouter.RefundStatus
	providerRefundID string
	failureCode      string
}

// errRefundUnknown: the refund's outcome is not known yet.
var errRefundUnknown = errors.New("refund outcome unknown")

// resolveRefunds settles p's pending refunds whose first call is over.
func (r *Router) resolveRefunds(ctx context.Context, p *payrouter.Payment) error {
	g := r.providers[p.Provider]
	if g == nil {
		return nil
	}
	for i := range p.Refunds {
		rf := &p.Refunds[i]
		if rf.Status != payrouter.RefundPending || r.refundInFlight(p, rf, r.now().UTC()) {
			continue
		}
		out, err := r.askRefund(ctx, p, rf, g)
		if errors.Is(err, errRefundUnknown) || ctx.Err() != nil {
			continue
		}
		if err != nil {
			return err
		}
		if err := r.settleRefund(ctx, p.ID, rf.ID, out); err != nil {
			return err
		}
	}
	return nil
}

// askRefund learns rf's outcome at the payment's provider. It returns
// errRefundUnknown while the outcome cannot be known yet.
func (r *Router) askRefund(ctx context.Context, p *payrouter.Payment, rf *payrouter.Refund, g *Guarded) (refundOutcome, error) {
	resendable := r.now().Sub(rf.CreatedAt) < idempotentRetryWindow
	if g.CanQueryRefunds() {
		res, err := g.RefundStatus(ctx, refundStatusRequest(p, rf))
		switch {
		case err == nil:
			return outcomeOf(res), nil
		case !isNotFound(err), rf.ProviderRefundID != "":
			// Unknown yet; or the provider acknowledged the refund (it gave
			// its id) and does not list it yet: it was received, so neither
			// resend nor give up.
			return refundOutcome{}, errRefundUnknown
		case !resendable:
			// The provider has never seen it, and every resend over the
			// key's window failed to reach it: nothing was refunded.
			return refundOutcome{status: payrouter.RefundFailed, failureCode: "not_received"}, nil
		}
		// Never received (written, then the router died; or the request
		// was lost before the provider): send it now, under its own keys.
	} else if !resendable {
		// No way to ask, and a resend could outlive the provider's memory
		// of the key: wait for the provider's refund webhook.
		return refundOutcome{}, errRefundUnknown
	}
	res, err := g.RefundUnguarded(ctx, refundRequest(p, rf))
	if err == nil {
		return outcomeOf(res), nil
	}
	var pe *providers.Error
	if errors.As(err, &pe) && (pe.Class == providers.Declined || (pe.Class == providers.Invalid && pe.Code != "duplicate")) {
		// The provider refused the refund: nothing moved.
		return refundOutcome{status: payrouter.RefundFailed, failureCode: codeOf(err)}, nil
	}
	return refundOutcome{}, errRefundUnknown
}

func outcomeOf(res *providers.RefundResult) refundOutcome {
	o := refundOutcome{providerRefundID: res.ProviderRefundID}
	switch res.Status {
	case payrouter.RefundSucceeded:
		o.status = payrouter.RefundSucceeded
	case payrouter.RefundFailed:
		o.status, o.failureCode = payrouter.RefundFailed, "provider_refund_failed"
	}
	return o
}

func isNotFound(err error) bool {
	var pe *providers.Error
	return errors.As(err, &pe) && pe.Class == providers.Invalid && pe.Code == "not_found"
}

// settleRefund records what was learnt about refund id in one write: the
// state change and its one refund_success / refund_failed event commit
// together, and a refund already settled (by a webhook, another resolver)
// is left alone, so the event is emitted once. A failed refund no longer
// holds its amount (Payment.Refundable).
func (r *Router) settleRefund(ctx context.Context, paymentID, id string, out refundOutcome) error {
	_, err := r.store.UpdatePayment(ctx, paymentID, func(q *payrouter.Payment) error {
		now := r.now().UTC()
		for i := range q.Refunds {
			rf := &q.Refunds[i]
			if rf.ID != id || rf.Status != payrouter.RefundPending {
				continue
			}
			if out.providerRefundID != "" && rf.ProviderRefundID == "" {
				rf.ProviderRefundID = out.providerRefundID
			}
			switch out.status {
			case payrouter.RefundSucceeded:
				if err := q.SettleRefund(id, true, "", now); err != nil {
					return err
				}
			case payrouter.RefundFailed:
				if err := q.SettleRefund(id, false, out.failureCode, now); err != nil {
					return err
				}
			}
		}
		q.ResolveAt = r.nextResolve(q, now)
		return nil
	})
	return err
}

// refundResolveAt is when the resolver should next look at q's pending
// refunds (nil: none pending): once a refund's first call is surely over,
// then backing off with the refund's age up to 10 minutes.
func (r *Router) refundResolveAt(q *payrouter.Payment, now time.Time) *time.Time {
	var at *time.Time
	for _, rf := range q.Refunds {
		if rf.Status != payrouter.RefundPending {
			continue
		}
		t := r.refundCallOver(q, &rf)
		if !t.After(now) {
			backoff := max(r.opts.ResolveBackoff, min(now.Sub(rf.CreatedAt)/4, 10*time.Minute))
			t = now.Add(backoff)
		}
		if at == nil || t.Before(*at) {
			at = &t
		}
	}
	return at
}
