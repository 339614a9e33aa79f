package router

import (
	"context"
	"errors"
	"fmt"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// Outcomes of applying a notification (kept on the inbox item).
const (
	OutcomeApplied  = "applied"
	OutcomeStale    = "stale" // duplicate or late: nothing to change
	OutcomeAnomaly  = "anomaly"
	OutcomeOrphan   = "orphan"
	OutcomeUnmapped = "unmapped"
	// OutcomeUnconfirmed: the provider's status API does not (yet) say what
	// the notification claims. Only what the status API says was applied;
	// the inbox keeps the notification and checks it again later.
	OutcomeUnconfirmed = "unconfirmed"
	// OutcomeRefuted: the status API contradicts the notification for
	// good (it claims an ending the payment did not have). Only what the
	// status API says was applied.
	OutcomeRefuted = "refuted"
)

// ApplyNotification moves a payment to what a verified provider webhook
// says. Duplicates and late webhooks are no-ops (transitions are
// monotonic); an impossible transition, an unknown payment, an amount that
// does not match or an unmapped status is recorded as an anomaly and changes
// nothing. It is idempotent: applying the same notification twice changes
// nothing the second time.
//
// A notification with ConfirmByStatus (its signature does not cover its
// status: Midtrans, Xendit) is only a reason to ask: the provider's status
// API is queried by payrouter's own ids for the attempt (never by an id the
// notification carries), and what it answers is applied, whether the
// notification claims a success or a failure. The outcome is then
// OutcomeUnconfirmed when the answer does not (yet) bear the claim out, and
// OutcomeRefuted when it never will; a status query that fails is an error
// (the inbox retries).
func (r *Router) ApplyNotification(ctx context.Context, n *providers.Notification) (string, error) {
	p, err := r.findPayment(ctx, n)
	if errors.Is(err, payrouter.ErrNotExist) {
		return OutcomeOrphan, r.anomaly(ctx, payrouter.AnomalyOrphan, "", n, "no payment for this webhook (a charge nobody asked for?)")
	}
	if err != nil {
		return "", err
	}
	if n.Kind == providers.KindRefund && n.ConfirmRefund {
		return r.applyRefundConfirmed(ctx, p, n)
	}
	if n.ConfirmByStatus {
		return r.applyConfirmed(ctx, p, n)
	}
	if n.Kind == providers.KindRefund {
		return r.applyRefund(ctx, p, n)
	}
	if n.Status == "" {
		return OutcomeUnmapped, r.anomaly(ctx, payrouter.AnomalyUnmapped, p.ID, n, "provider status "+n.ProviderStatus+" has no mapping")
	}
	if mismatch(p, n) {
		return OutcomeAnomaly, r.anomaly(ctx, payrouter.AnomalyAmount, p.ID, n, fmt.Sprintf("webhook says %d, payment is %d", n.Amount, p.Amount))
	}
	res := &providers.Result{ProviderPaymentID: n.ProviderPaymentID, Status: n.Status, ProviderStatus: n.ProviderStatus, Failure: n.Failure}
	return r.applyNotified(ctx, p, n, res)
}

// applyRefundConfirmed asks the provider's refund status query about the
// refund a notification names (payrouter's own refund, found by its ids)
// and applies what the query answers: OutcomeUnconfirmed while the query
// does not bear the claim out, OutcomeRefuted when it contradicts it.
func (r *Router) applyRefundConfirmed(ctx context.Context, p *payrouter.Payment, n *providers.Notification) (string, error) {
	var rf *payrouter.Refund
	for i := range p.Refunds {
		x := &p.Refunds[i]
		if (n.RefundID != "" && x.ID == n.RefundID) || (n.ProviderRefundID != "" && x.ProviderRefundID == n.ProviderRefundID) {
			rf = x
		}
	}
	if rf == nil {
		return r.applyRefund(ctx, p, n) // records the orphan
	}
	g := r.providers[n.Provider]
	if g == nil || !g.CanQueryRefunds() {
		return "", fmt.Errorf("confirm %s refund webhook: no refund status query", n.Provider)
	}
	actual, err := g.RefundStatus(ctx, refundStatusRequest(p, rf))
	if err != nil {
		return "", fmt.Errorf("confirm %s refund webhook by refund status query: %w", n.Provider, err)
	}
	confirmed := *n
	confirmed.RefundID, confirmed.RefundStatus = rf.ID, actual.Status
	if actual.ProviderRefundID != "" {
		confirmed.ProviderRefundID = actual.ProviderRefundID
	}
	outcome, err := r.applyRefund(ctx, p, &confirmed)
	switch {
	case err != nil || actual.Status == n.RefundStatus:
		return outcome, err
	case actual.Status == payrouter.RefundPending:
		return OutcomeUnconfirmed, nil
	default:
		r.log.Warn("refund webhook contradicted by refund status query", "provider", n.Provider, "payment", p.ID,
			"refund", rf.ID, "claimed", n.RefundStatus, "status_api", actual.Status)
		return OutcomeRefuted, nil
	}
}

// mismatch: a success for another amount than the payment's.
func mismatch(p *payrouter.Payment, n *providers.Notification) bool {
	return n.Amount != 0 && (n.Currency == "" || n.Currency == p.Currency) && n.Amount != p.Amount && n.Status == payrouter.StatusSucceeded
}

// applyConfirmed asks the provider what the notification claims and acts on
// the answer (see ApplyNotification).
func (r *Router) applyConfirmed(ctx context.Context, p *payrouter.Payment, n *providers.Notification) (string, error) {
	a := attemptFor(p, n)
	if a == nil {
		return OutcomeOrphan, nil
	}
	g := r.providers[n.Provider]
	if g == nil {
		return "", fmt.Errorf("confirm %s webhook: provider not configured", n.Provider)
	}
	// Our own ids for the attempt: a notification's unsigned transaction id
	// could point the query at another, settled, transaction.
	actual, err := g.Status(ctx, statusReq(p, a))
	if err != nil {
		return "", fmt.Errorf("confirm %s webhook by status query: %w", n.Provider, err)
	}
	verdict := judge(n, actual)
	if verdict != "" {
		r.log.Warn("webhook not confirmed by status query", "provider", n.Provider, "payment", p.ID,
			"claimed", n.ProviderStatus, "status_api", actual.ProviderStatus, "outcome", verdict)
	}
	if n.Kind == providers.KindRefund {
		if verdict != "" {
			return verdict, nil
		}
		return r.applyRefund(ctx, p, n)
	}
	if actual.Status == "" {
		return OutcomeUnmapped, r.anomaly(ctx, payrouter.AnomalyUnmapped, p.ID, n, "status query answered "+actual.ProviderStatus+", which has no mapping")
	}
	if verdict == "" && mismatch(p, n) {
		return OutcomeAnomaly, r.anomaly(ctx, payrouter.AnomalyAmount, p.ID, n, fmt.Sprintf("webhook says %d, payment is %d", n.Amount, p.Amount))
	}
	outcome, err := r.applyNotified(ctx, p, n, actual)
	if err != nil || verdict == "" || outcome == OutcomeAnomaly {
		return outcome, err
	}
	return verdict, nil
}

// judge compares a notification's claim with what the status API says: ""
// when the answer bears the claim out (the same status, or one the claimed
// status moves on to — a pending claim answered by a settlement),
// OutcomeRefuted when it never can (the payment ended otherwise), else
// OutcomeUnconfirmed (not yet: the status API may lag, or the claim was
// relabelled).
//
// A refund claim needs the payment refunded (partially or fully) and, when
// the status answer lists refunds, that very refund (by payrouter's refund
// id or the provider's) for that amount: the refund key of a notification
// is not signed, and must not settle another refund still pending.
func judge(n *providers.Notification, res *providers.Result) string {
	actual := res.Status
	if n.Kind == providers.KindRefund {
		switch {
		case actual.Failed():
			return OutcomeRefuted
		case actual != payrouter.StatusPartiallyRefunded && actual != payrouter.StatusRefunded:
			return OutcomeUnconfirmed
		case res.Refunds == nil:
			return ""
		}
		for _, r := range res.Refunds {
			if ((n.RefundID != "" && r.RefundID == n.RefundID) || (n.ProviderRefundID != "" && r.ProviderRefundID == n.ProviderRefundID)) &&
				(n.Amount == 0 || r.Amount == n.Amount) {
				return ""
			}
		}
		return OutcomeUnconfirmed
	}
	claim := n.Status
	switch {
	case claim == actual:
		return ""
	case claim == "":
		return OutcomeUnconfirmed // an unmapped claim is only confirmed by an unmapped answer
	case payrouter.CanTransition(claim, actual):
		return ""
	case actual.Failed() || (claim.Failed() && actual.Terminal()):
		return OutcomeRefuted
	}
	return OutcomeUnconfirmed
}

// applyNotified applies the provider's (confirmed or signed) result to the
// notification's attempt.
func (r *Router) applyNotified(ctx context.Context, p *payrouter.Payment, n *providers.Notification, res *providers.Result) (string, error) {
	var outcome string
	var anomaly error
	// p was read outside the write: the store saves from it when it is
	// still current and reloads otherwise (fn resets its outputs).
	_, err := r.updatePayment(ctx, p.ID, func(q *payrouter.Payment) error {
		outcome, anomaly = OutcomeStale, nil
		now := r.now().UTC()
		a := attemptFor(q, n)
		if a == nil {
			outcome = OutcomeOrphan
			return nil
		}
		if res.ProviderPaymentID != "" {
			a.ProviderPaymentID = res.ProviderPaymentID
		}
		if !a.Status.Final() || res.Status == payrouter.StatusSucceeded {
			a.Status = attemptStatus(res.Status)
		}
		active := r.isActive(q, a) || q.Provider == ""
		if !active && !(res.Status == payrouter.StatusSucceeded && !q.Status.Terminal()) {
			if res.Status == payrouter.StatusSucceeded {
				anomaly = fmt.Errorf("attempt %d at %s succeeded while the payment is %s via %s: refund one", a.N, a.Provider, q.Status, q.Provider)
			}
			q.ResolveAt = r.nextResolve(q, now)
			return nil
		}
		before := q.Status
		if res.NextAction != nil {
			q.NextAction = res.NextAction
		}
		if res.Status.Failed() && res.Failure != nil {
			q.Failure = res.Failure
		}
		q.Provider, q.ProviderPaymentID = a.Provider, a.ProviderPaymentID
		if res.Status == payrouter.StatusSucceeded && before.Failed() {
			q.Failure = nil
		}
		changed, err := q.Advance(res.Status, now)
		var ae *payrouter.AnomalyError
		if errors.As(err, &ae) {
			anomaly = err
			return nil
		}
		if err != nil {
			return err
		}
		if changed {
			outcome = OutcomeApplied
		}
		q.ResolveAt = r.nextResolve(q, now)
		return nil
	}, payrouter.UpdateOptions{Current: p})
	if err != nil {
		return "", err
	}
	if anomaly != nil {
		return OutcomeAnomaly, r.anomaly(ctx, payrouter.AnomalyTransition, p.ID, n, anomaly.Error())
	}
	return outcome, nil
}

func (r *Router) applyRefund(ctx context.Context, p *payrouter.Payment, n *providers.Notification) (string, error) {
	outcome := OutcomeStale
	_, err := r.store.UpdatePayment(ctx, p.ID, func(q *payrouter.Payment) error {
		outcome = OutcomeStale
		for i := range q.Refunds {
			rf := &q.Refunds[i]
			if (n.RefundID != "" && rf.ID == n.RefundID) || (n.ProviderRefundID != "" && rf.ProviderRefundID == n.ProviderRefundID) {
				if rf.Status != payrouter.RefundPending || n.RefundStatus == payrouter.RefundPending || n.RefundStatus == "" {
					return nil
				}
				outcome = OutcomeApplied
				return q.SettleRefund(rf.ID, n.RefundStatus == payrouter.RefundSucceeded, "provider_refund_failed", r.now().UTC())
			}
		}
		outcome = OutcomeOrphan
		return nil
	})
	if err == nil && outcome == OutcomeOrphan {
		err = r.anomaly(ctx, payrouter.AnomalyOrphan, p.ID, n, "refund webhook for a refund payrouter did not make")
	}
	return outcome, err
}

func (r *Router) findPayment(ctx context.Context, n *providers.Notification) (*payrouter.Payment, error) {
	if n.ProviderPaymentID != "" {
		p, err := r.store.FindPayment(ctx, n.Provider, n.ProviderPaymentID)
		if !errors.Is(err, payrouter.ErrNotExist) {
			return p, err
		}
	}
	if n.OrderID != "" {
		return r.store.FindPayment(ctx, n.Provider, n.OrderID)
	}
	return nil, payrouter.ErrNotExist
}

func attemptFor(p *payrouter.Payment, n *providers.Notification) *payrouter.Attempt {
	for i := len(p.Attempts) - 1; i >= 0; i-- {
		a := &p.Attempts[i]
		if a.Provider != n.Provider {
			continue
		}
		if (n.ProviderPaymentID != "" && a.ProviderPaymentID == n.ProviderPaymentID) || (n.OrderID != "" && a.IdempotencyKey == n.OrderID) {
			return a
		}
	}
	return nil
}

func (r *Router) anomaly(ctx context.Context, kind, paymentID string, n *providers.Notification, detail string) error {
	r.log.Warn("webhook anomaly", "kind", kind, "provider", n.Provider, "payment", paymentID, "provider_payment_id", n.ProviderPaymentID, "detail", detail)
	return r.store.RecordAnomaly(ctx, &payrouter.Anomaly{Kind: kind, PaymentID: paymentID, Provider: n.Provider,
		Detail: fmt.Sprintf("%s (provider id %s, order %s, status %s)", detail, n.ProviderPaymentID, n.OrderID, n.ProviderStatus), CreatedAt: r.now().UTC()})
}
