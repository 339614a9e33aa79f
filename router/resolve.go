package router

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// idempotentRetryWindow bounds when an ambiguous create may be resent with
// its key: providers forget keys (Stripe after 24 h), and a resend after
// that could create a second charge.
const idempotentRetryWindow = 12 * time.Hour

// inFlightGrace is added to the overall deadline to tell an attempt still
// in flight from one its router abandoned (crash).
const inFlightGrace = 5 * time.Second

// RunResolver resolves due payments every interval until ctx is done. Its
// work queue is the store (ResolveAt), so it survives restarts.
func (r *Router) RunResolver(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := r.ResolveDue(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("resolver pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ResolveDue runs one resolver pass over every due payment and returns how
// many it looked at.
func (r *Router) ResolveDue(ctx context.Context) (int, error) {
	n := 0
	for {
		due, err := r.store.DuePayments(ctx, r.now().UTC(), 100)
		if err != nil {
			return n, err
		}
		for _, p := range due {
			if err := r.Resolve(ctx, p); err != nil {
				r.log.Warn("resolve failed", "payment", p.ID, "err", err)
				// Push it back so one bad payment cannot stall the queue.
				_, _ = r.store.UpdatePayment(ctx, p.ID, func(q *payrouter.Payment) error {
					at := r.now().UTC().Add(time.Minute)
					q.ResolveAt = &at
					return nil
				})
			}
			n++
		}
		if len(due) < 100 || ctx.Err() != nil {
			return n, ctx.Err()
		}
	}
}

// resolveNow is the inline first try for a held card: ask once before
// answering the merchant.
func (r *Router) resolveNow(ctx context.Context, p *payrouter.Payment) {
	if ctx.Err() != nil {
		return
	}
	if err := r.resolveAttempts(ctx, p, true); err != nil {
		r.log.Warn("inline resolve failed", "payment", p.ID, "err", err)
	}
}

// Resolve brings one payment closer to its true state: it settles ambiguous
// and orphaned attempts, closes failed-over attempts still open at their
// provider, settles pending refunds (router/refunds.go), and expires
// payments the customer never completed.
func (r *Router) Resolve(ctx context.Context, p *payrouter.Payment) error {
	if err := r.resolveAttempts(ctx, p, false); err != nil {
		return err
	}
	p, err := r.store.GetPayment(ctx, "", p.ID)
	if err != nil {
		return err
	}
	if err := r.resolveRefunds(ctx, p); err != nil {
		return err
	}
	now := r.now().UTC()
	if p.ExpiresAt != nil && now.After(*p.ExpiresAt) && (p.Status == payrouter.StatusRequiresAction || p.Status == payrouter.StatusProcessing) {
		if err := r.expire(ctx, p); err != nil {
			return err
		}
	}
	_, err = r.store.UpdatePayment(ctx, p.ID, func(q *payrouter.Payment) error {
		q.ResolveAt = r.nextResolve(q, r.now().UTC())
		return nil
	})
	return err
}

func (r *Router) resolveAttempts(ctx context.Context, p *payrouter.Payment, inline bool) error {
	now := r.now().UTC()
	for _, a := range p.Attempts {
		g := r.providers[a.Provider]
		if g == nil {
			continue
		}
		active := r.isActive(p, &a)
		switch {
		case a.Status == payrouter.AttemptPending && !inline && now.Before(a.StartedAt.Add(r.opts.Deadline+inFlightGrace)):
			continue // still in flight
		case a.Status == payrouter.AttemptPending, a.Status == payrouter.AttemptAmbiguous:
			res, err := r.ask(ctx, p, &a, g, active)
			if err := r.settleAttempt(ctx, p.ID, a.N, res, err); err != nil {
				return err
			}
		case (a.Status == payrouter.AttemptRequiresAction || a.Status == payrouter.AttemptProcessing) && !active:
			if err := r.closeStray(ctx, p, &a, g); err != nil {
				return err
			}
		case a.Status == payrouter.AttemptProcessing && active && !inline:
			res, err := g.Status(ctx, statusReq(p, &a))
			if err := r.settleAttempt(ctx, p.ID, a.N, res, err); err != nil {
				return err
			}
		}
	}
	return nil
}

func statusReq(p *payrouter.Payment, a *payrouter.Attempt) *providers.StatusRequest {
	return &providers.StatusRequest{ProviderPaymentID: a.ProviderPaymentID, OrderID: a.IdempotencyKey, Method: p.Method, Currency: p.Currency}
}

// ask learns an ambiguous attempt's outcome at its own provider: resend
// with the same key where the provider honours keys (the provider answers
// with the first outcome, or performs it exactly once), else a status query
// by provider id or order id. An attempt the payment no longer depends on
// (failed over) is only ever asked about: resending it could create a
// payment nobody wants.
func (r *Router) ask(ctx context.Context, p *payrouter.Payment, a *payrouter.Attempt, g *Guarded, active bool) (*providers.Result, error) {
	if active && g.Capabilities().IdempotentRetry && r.now().Sub(a.StartedAt) < idempotentRetryWindow && a.ProviderPaymentID == "" {
		req := r.authorizeRequest(p, a)
		cctx, cancel := context.WithTimeout(ctx, timeoutOr(g.Timeout, 10*time.Second))
		defer cancel()
		// Not through the breaker: resolving must go on while it is open.
		res, err := g.Provider.Authorize(cctx, req)
		if err == nil || !inconclusive(err) {
			return res, err
		}
		// The resend's answer was lost too (a provider processing and
		// dropping answers): a status query may still see the outcome. Only
		// a found payment is trusted here: a lookup by order id can lag.
		if sres, serr := g.Status(ctx, statusReq(p, a)); serr == nil && sres.Status != "" {
			return sres, nil
		}
		return res, err
	}
	return g.Status(ctx, statusReq(p, a))
}

// inconclusive reports whether err leaves an outcome unknown.
func inconclusive(err error) bool {
	c := providers.ClassOf(err)
	return c == providers.Ambiguous || c == providers.Unavailable
}

func timeoutOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// settleAttempt records what was learnt about attempt n.
func (r *Router) settleAttempt(ctx context.Context, id string, n int, res *providers.Result, callErr error) error {
	var anomaly *payrouter.Anomaly
	_, err := r.store.UpdatePayment(ctx, id, func(q *payrouter.Payment) error {
		anomaly = nil
		now := r.now().UTC()
		a := attemptN(q, n)
		if a == nil || a.Status.Final() {
			return nil
		}
		active := r.isActive(q, a)
		if callErr != nil {
			var pe *providers.Error
			errors.As(callErr, &pe)
			switch {
			case pe != nil && pe.Class == providers.Invalid && pe.Code == "not_found" && !now.Before(a.StartedAt.Add(r.opts.Deadline+inFlightGrace)):
				// Never reached the provider: nothing was charged. Trusted
				// only once the original request is surely over: a provider
				// still working on it would not know it yet.
				a.Status, a.ErrorClass, a.ErrorCode = payrouter.AttemptFailed, string(providers.Invalid), "not_found"
				if active && !q.Status.Terminal() && q.Status != payrouter.StatusRequiresAction {
					_, err := q.Fail(payrouter.StatusFailed, payrouter.Failure{Code: "provider_unavailable", Message: "the provider never received the payment; it is safe to retry with a new reference"}, now)
					return err
				}
			case pe != nil && pe.Class == providers.Declined:
				a.Status, a.ErrorClass, a.ErrorCode = payrouter.AttemptFailed, string(pe.Class), pe.Code
				if active && !q.Status.Terminal() {
					_, err := q.Fail(payrouter.StatusFailed, failureOf(callErr), now)
					return err
				}
			}
			// Unavailable or still ambiguous: ask again later.
			q.ResolveAt = r.nextResolve(q, now)
			return nil
		}
		a.ProviderPaymentID = res.ProviderPaymentID
		if res.Status != "" {
			a.Status = attemptStatus(res.Status)
		} else if a.Status == payrouter.AttemptPending {
			a.Status = payrouter.AttemptAmbiguous
		}
		a.ErrorClass, a.ErrorCode = "", ""
		switch {
		case active:
			r.applyResult(q, a.Provider, res, now)
		case res.Status == payrouter.StatusSucceeded && !q.Status.Terminal():
			// The customer paid at a failed-over attempt: that is the truth.
			// The other open attempt is closed on the next pass.
			q.Failure = nil
			r.applyResult(q, a.Provider, res, now)
		case res.Status == payrouter.StatusSucceeded || res.Status == payrouter.StatusAuthorized:
			anomaly = &payrouter.Anomaly{Kind: "double_charge", PaymentID: q.ID, Provider: a.Provider,
				Detail: fmt.Sprintf("attempt %d (%s) is %s while the payment is %s via %s: refund one", a.N, a.ProviderPaymentID, res.Status, q.Status, q.Provider)}
		}
		q.ResolveAt = r.nextResolve(q, now)
		return nil
	})
	if err == nil && anomaly != nil {
		anomaly.CreatedAt = r.now().UTC()
		err = r.store.RecordAnomaly(ctx, anomaly)
	}
	return err
}

// closeStray cancels an attempt left open at a provider after failover.
func (r *Router) closeStray(ctx context.Context, p *payrouter.Payment, a *payrouter.Attempt, g *Guarded) error {
	res, err := g.CancelUnguarded(ctx, &providers.CancelRequest{ProviderPaymentID: a.ProviderPaymentID, OrderID: a.IdempotencyKey,
		IdempotencyKey: a.IdempotencyKey + "_cancel", Method: p.Method})
	if err != nil {
		// Maybe it was paid meanwhile: learn the truth instead.
		res, err = g.Status(ctx, statusReq(p, a))
		return r.settleAttempt(ctx, p.ID, a.N, res, err)
	}
	if res.Status == "" {
		res.Status = payrouter.StatusCanceled
	}
	return r.settleAttempt(ctx, p.ID, a.N, res, nil)
}

// expire closes a customer-action payment past its expiry: first ask (the
// customer may have paid at the last second), then cancel at the provider.
func (r *Router) expire(ctx context.Context, p *payrouter.Payment) error {
	g := r.providers[p.Provider]
	if g != nil {
		a := p.AttemptFor(p.Provider, p.ProviderPaymentID)
		if a != nil {
			if res, err := g.Status(ctx, statusReq(p, a)); err == nil && res.Status != payrouter.StatusRequiresAction && res.Status != payrouter.StatusProcessing {
				return r.settleAttempt(ctx, p.ID, a.N, res, nil)
			}
			if _, err := g.CancelUnguarded(ctx, &providers.CancelRequest{ProviderPaymentID: a.ProviderPaymentID, OrderID: a.IdempotencyKey,
				IdempotencyKey: a.IdempotencyKey + "_expire", Method: p.Method}); err != nil && providers.ClassOf(err) != providers.Invalid {
				return fmt.Errorf("expire %s at %s: %w", p.ID, p.Provider, err)
			}
		}
	}
	_, err := r.store.UpdatePayment(ctx, p.ID, func(q *payrouter.Payment) error {
		if q.Status != payrouter.StatusRequiresAction && q.Status != payrouter.StatusProcessing {
			return nil
		}
		if a := q.AttemptFor(q.Provider, q.ProviderPaymentID); a != nil && !a.Status.Final() {
			a.Status = payrouter.AttemptExpired
		}
		_, err := q.Fail(payrouter.StatusExpired, payrouter.Failure{Code: "expired", Message: "the customer did not complete the payment in time"}, r.now().UTC())
		return err
	})
	return err
}
