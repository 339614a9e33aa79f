package router

import (
	"context"
	"errors"
	"fmt"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/providers"
)

// Outcomes of applying a notification (kept on the inbox item).
const (
	OutcomeApplied  = "applied"
	OutcomeStale    = "stale" // duplicate or late: nothing to change
	OutcomeAnomaly  = "anomaly"
	OutcomeOrphan   = "orphan"
	OutcomeUnmapped = "unmapped"
)

// ApplyNotification moves a payment to what a verified provider webhook
// says. Duplicates and late webhooks are no-ops (transitions are
// monotonic); an impossible transition, an unknown payment, an amount that
// does not match or an unmapped status is recorded as an anomaly and changes
// nothing. Where the provider recommends it (n.ConfirmByStatus), a success
// is confirmed with a status query first. It is idempotent: applying the
// same notification twice changes nothing the second time.
func (r *Router) ApplyNotification(ctx context.Context, n *providers.Notification) (string, error) {
	p, err := r.findPayment(ctx, n)
	if errors.Is(err, payrouter.ErrNotExist) {
		return OutcomeOrphan, r.anomaly(ctx, store.AnomalyOrphan, "", n, "no payment for this webhook (a charge nobody asked for?)")
	}
	if err != nil {
		return "", err
	}
	if n.Kind == providers.KindRefund {
		return r.applyRefund(ctx, p, n)
	}
	if n.Status == "" {
		return OutcomeUnmapped, r.anomaly(ctx, store.AnomalyUnmapped, p.ID, n, "provider status "+n.ProviderStatus+" has no mapping")
	}
	if n.Amount != 0 && (n.Currency == "" || n.Currency == p.Currency) && n.Amount != p.Amount && n.Status == payrouter.StatusSucceeded {
		return OutcomeAnomaly, r.anomaly(ctx, store.AnomalyAmount, p.ID, n, fmt.Sprintf("webhook says %d, payment is %d", n.Amount, p.Amount))
	}
	res := &providers.Result{ProviderPaymentID: n.ProviderPaymentID, Status: n.Status, ProviderStatus: n.ProviderStatus, Failure: n.Failure}
	if n.ConfirmByStatus && !n.Status.Failed() {
		if g := r.providers[n.Provider]; g != nil {
			a := attemptFor(p, n)
			if a != nil {
				req := statusReq(p, a)
				if req.ProviderPaymentID == "" {
					req.ProviderPaymentID = n.ProviderPaymentID
				}
				confirmed, err := g.Status(ctx, req)
				if err != nil {
					// Cannot confirm now: keep the inbox item for a retry.
					return "", fmt.Errorf("confirm %s webhook by status: %w", n.Provider, err)
				}
				res = confirmed
			}
		}
	}
	var outcome string
	var anomaly error
	// p was read outside the write: the store saves from it when it is
	// still current and reloads otherwise (fn resets its outputs).
	_, err = r.updatePayment(ctx, p.ID, func(q *payrouter.Payment) error {
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
	}, store.UpdateOptions{Current: p})
	if err != nil {
		return "", err
	}
	if anomaly != nil {
		return OutcomeAnomaly, r.anomaly(ctx, store.AnomalyTransition, p.ID, n, anomaly.Error())
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
		err = r.anomaly(ctx, store.AnomalyOrphan, p.ID, n, "refund webhook for a refund payrouter did not make")
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
	return r.store.RecordAnomaly(ctx, &store.Anomaly{Kind: kind, PaymentID: paymentID, Provider: n.Provider,
		Detail: fmt.Sprintf("%s (provider id %s, order %s, status %s)", detail, n.ProviderPaymentID, n.OrderID, n.ProviderStatus), CreatedAt: r.now().UTC()})
}
