package router

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// attempts is one create's walk through its candidates (Router.run): the
// payment as last saved, which candidate comes next, how many calls were
// made, and the reasons route.reason collects on the way.
type attempts struct {
	r       *Router
	p       *payrouter.Payment
	cands   []Candidate
	i       int // next candidate to consider
	tried   int // calls made (a breaker's refusal sends nothing: not counted)
	base    string
	reasons []string
	idem    *Idempotency
	out     *PayResult
}

// reason is route.reason: the rules' reason and what happened since.
func (w *attempts) reason() string {
	if len(w.reasons) == 0 {
		return w.base
	}
	return w.base + "; " + strings.Join(w.reasons, "; ")
}

// next is the next candidate that may be called now (configured, breaker
// not open, not forced open), noting why the others were skipped; nil when
// none is left.
func (w *attempts) next() *Candidate {
	for ; w.i < len(w.cands); w.i++ {
		c := &w.cands[w.i]
		g := w.r.providers[c.Provider]
		if g == nil {
			w.reasons = append(w.reasons, c.Provider+": not configured")
			continue
		}
		if ok, why := g.Allow(w.p.Method); !ok {
			w.reasons = append(w.reasons, c.Provider+": "+why)
			continue
		}
		w.i++
		return c
	}
	return nil
}

// begin records the first attempt at c with the payment, before any call:
// created (claiming the idempotency key with it), or written by first for
// an existing payment. stored is false when the key was already claimed
// (out.Existing) and nothing was written.
func (w *attempts) begin(ctx context.Context, c *Candidate, first func(context.Context, *payrouter.Payment) (*payrouter.Payment, error)) (stored bool, err error) {
	r, p := w.r, w.p
	r.startAttempt(p, c)
	p.Route.Reason = w.reason() // candidates skipped before the first call
	p.ResolveAt = r.nextResolve(p, p.CreatedAt)
	switch {
	case first != nil:
		saved, err := first(ctx, p)
		if err != nil {
			return false, err
		}
		w.p = saved
	case w.idem != nil:
		idem := w.idem
		rec, err := r.store.(PaymentWriter).CreatePaymentClaiming(ctx, p, payrouter.IdempotencyClaim{
			MerchantID: idem.MerchantID, Key: idem.Key, RequestHash: idem.RequestHash, Now: idem.Now})
		if err != nil {
			return false, err
		}
		if rec != nil {
			w.out.Existing = rec
			return false, nil
		}
		w.out.Claimed = true
	default:
		if err := r.store.CreatePayment(ctx, p); err != nil {
			return false, err
		}
	}
	return true, nil
}

// outcome is one call and what it decides: stop, fail over to next, or
// hold an ambiguous card for the resolver.
type outcome struct {
	att      payrouter.Attempt // as sent
	res      *providers.Result
	err      error
	decision decision
	next     *Candidate // the candidate to fail over to; nil: this is the last call
}

// held: an ambiguous card, resolved at its provider before anything else.
func (o *outcome) held() bool { return o.err != nil && o.decision == hold }

// final: nothing more is tried after this call.
func (o *outcome) final() bool { return o.err == nil || o.next == nil || o.decision != failover }

// call makes the latest attempt's provider call and decides what follows
// (failover table: Router.decide), adding the reasons it gives.
func (w *attempts) call(ctx context.Context, c *Candidate) outcome {
	r := w.r
	o := outcome{att: *w.p.LastAttempt()}
	o.res, o.err = r.authorize(ctx, w.p, c, &o.att)
	if !isSkip(o.err) {
		w.tried++
	}
	o.decision = r.decide(o.att.Provider, w.p.Method, o.err)
	r.recordOutcome(w.p, o.att.Provider, o.res, o.err)
	stopWhy := ""
	switch {
	case o.decision != failover:
	case w.tried >= r.opts.MaxAttempts:
		stopWhy = fmt.Sprintf("max attempts (%d) reached", r.opts.MaxAttempts)
	case !r.timeLeft(ctx):
		stopWhy = "deadline reached"
	default:
		o.next = w.next()
	}
	// The reasons are decided here, once, so that save's update can run
	// twice (the store may call it again on a reloaded payment).
	switch {
	case o.err == nil, o.decision == stop:
	case o.decision == hold:
		w.reasons = append(w.reasons, o.att.Provider+": ambiguous ("+codeOf(o.err)+"), resolving before any other provider")
	case o.next != nil:
		w.reasons = append(w.reasons, o.att.Provider+": "+string(providers.ClassOf(o.err))+" ("+codeOf(o.err)+"), next")
	default:
		w.reasons = append(w.reasons, o.att.Provider+": "+string(providers.ClassOf(o.err))+" ("+codeOf(o.err)+")")
		if stopWhy != "" {
			w.reasons = append(w.reasons, stopWhy)
		}
	}
	return o
}

// save writes the call's outcome (and, failing over, the next attempt) in
// one transaction; on the final outcome of an idempotent create the stored
// response goes with it, and body is that response.
func (w *attempts) save(ctx context.Context, o *outcome) (body []byte, err error) {
	r, idem := w.r, w.idem
	opts := payrouter.UpdateOptions{Current: w.p}
	if idem != nil && o.final() && !o.held() {
		// The response is stored with the outcome it shows.
		opts.Complete = &payrouter.IdempotencyCompletion{MerchantID: idem.MerchantID, Key: idem.Key, Status: idem.Status,
			Render: func(q *payrouter.Payment) ([]byte, error) {
				b, err := idem.Render(q)
				body = b
				return b, err
			}}
	}
	now := r.now().UTC()
	saved, err := r.updatePayment(context.WithoutCancel(ctx), w.p.ID, func(q *payrouter.Payment) error {
		return w.apply(q, o, now)
	}, opts)
	if err != nil {
		return nil, err
	}
	w.p = saved
	return body, nil
}

// apply moves the payment q by the outcome; it may run more than once.
func (w *attempts) apply(q *payrouter.Payment, o *outcome, now time.Time) error {
	r := w.r
	a := attemptN(q, o.att.N)
	r.finishAttempt(q, a, &o.att, o.res, o.err, now)
	switch {
	case o.err == nil:
		r.applyResult(q, o.att.Provider, o.res, now)
	case o.decision == stop:
		if _, err := q.Fail(payrouter.StatusFailed, failureOf(o.err), now); err != nil {
			return err
		}
	case o.decision == hold:
		// Ambiguous card: never elsewhere. The resolver keeps asking.
		q.Status = payrouter.StatusProcessing
		q.Provider = o.att.Provider
	case o.next != nil:
		// An ambiguous customer-action attempt may exist at its provider:
		// the resolver cancels it once it can be seen.
		r.startAttempt(q, o.next)
	default:
		f := failureOf(o.err)
		if providers.ClassOf(o.err) != providers.Declined {
			f = payrouter.Failure{Code: "provider_unavailable", Message: "no provider could take the payment: " + strings.Join(w.reasons, "; "), ProviderCode: f.ProviderCode}
		}
		if _, err := q.Fail(payrouter.StatusFailed, f, now); err != nil {
			return err
		}
	}
	q.Route.Reason = w.reason()
	q.ResolveAt = r.nextResolve(q, now)
	return nil
}

// resolveHeld asks about a held card at once (same-key resend, status) and
// answers with what is known then; an idempotent create stores that answer.
func (w *attempts) resolveHeld(ctx context.Context) (*payrouter.Payment, error) {
	r, idem, p := w.r, w.idem, w.p
	r.resolveNow(ctx, p)
	if q, err := r.store.GetPayment(ctx, "", p.ID); err == nil {
		p = q
	}
	if idem != nil {
		// The resolver may have moved it: store what is returned.
		b, err := idem.Render(p)
		if err != nil {
			return nil, err
		}
		if err := r.store.CompleteIdempotencyKey(context.WithoutCancel(ctx), idem.MerchantID, idem.Key, idem.Status, b); err != nil {
			// As a separately completed key: the answer stands, a retry
			// takes the key over once it is stale.
			r.log.Error("idempotency record not completed", "payment", p.ID, "err", err)
		}
		w.out.Body = b
	}
	return p, nil
}
