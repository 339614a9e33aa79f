package router

import (
	"context"
	"strings"
	"time"

	"github.com/payrouter/payrouter"
)

// Hosted checkout: a payment created with checkout "hosted" is stored
// awaiting the customer (requires_action, no attempt, next_action: the
// checkout page); the customer chooses a method there (Choose), which runs
// the normal path — rules, breakers, failover — for that method.

// errNoCheckout: checkout "hosted" without a checkout page configured.
var errNoCheckout = &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "checkout_unavailable", Param: "checkout",
	Message: "hosted checkout is not configured on this server (server.public_url and checkout.secret)"}

func errChosen(p *payrouter.Payment) error {
	return invalidState("payment is %s with %d attempts: its method was already chosen or it has ended", p.Status, len(p.Attempts))
}

// probeTokens stands in a card token for every provider, so that asking
// the rules which methods are routable does not drop card providers for
// the tokens the checkout page has not collected yet.
func (r *Router) probeTokens() map[string]string {
	t := make(map[string]string, len(r.providers))
	for name := range r.providers {
		t[name] = "probe"
	}
	return t
}

// CheckoutMethods lists the methods the rules can route p by (its
// currency, amount, country and the providers' capabilities), in the
// order of payrouter.Methods; only p.Method when the merchant fixed it.
func (r *Router) CheckoutMethods(p *payrouter.Payment) []payrouter.Method {
	var out []payrouter.Method
	for _, m := range payrouter.Methods {
		if p.Method != "" && m != p.Method {
			continue
		}
		q := *p
		q.Method, q.Tokens = m, r.probeTokens()
		if m == payrouter.MethodBankTransfer && q.Bank == "" {
			q.Bank = "bca"
		}
		plan, err := r.routing.Plan(&q, "")
		if err == nil && len(plan.Candidates) > 0 {
			out = append(out, m)
		}
	}
	return out
}

func (r *Router) openCheckout(ctx context.Context, p *payrouter.Payment, idem *Idempotency, res *PayResult) (*payrouter.Payment, error) {
	if r.opts.CheckoutURL == nil {
		return nil, errNoCheckout
	}
	methods := r.CheckoutMethods(p)
	if len(methods) == 0 {
		return nil, &payrouter.Error{Type: payrouter.ErrNoRoute, Code: "no_route", Message: "no method can be routed for this payment"}
	}
	names := make([]string, len(methods))
	for i, m := range methods {
		names[i] = string(m)
	}
	now := p.CreatedAt
	exp := now.Add(r.opts.PaymentTTL)
	p.ExpiresAt, p.ResolveAt = &exp, &exp
	p.Route = payrouter.Route{Strategy: "checkout", Candidates: []string{},
		Reason: "hosted checkout: the customer chooses among " + strings.Join(names, ", ")}
	if _, err := p.Advance(payrouter.StatusRequiresAction, now); err != nil {
		return nil, err
	}
	p.NextAction = &payrouter.NextAction{Type: "redirect", URL: r.opts.CheckoutURL(p), ExpiresAt: &exp}
	if idem == nil {
		if err := r.store.CreatePayment(ctx, p); err != nil {
			return nil, err
		}
		return p, nil
	}
	pw := r.store.(PaymentWriter)
	rec, err := pw.CreatePaymentClaiming(ctx, p, payrouter.IdempotencyClaim{MerchantID: idem.MerchantID, Key: idem.Key, RequestHash: idem.RequestHash, Now: idem.Now})
	if err != nil {
		return nil, err
	}
	if rec != nil {
		res.Existing = rec
		return nil, nil
	}
	res.Claimed = true
	saved, err := pw.UpdatePaymentWith(context.WithoutCancel(ctx), p.ID, func(*payrouter.Payment) error { return nil },
		payrouter.UpdateOptions{Current: p, Complete: &payrouter.IdempotencyCompletion{MerchantID: idem.MerchantID, Key: idem.Key, Status: idem.Status,
			Render: func(q *payrouter.Payment) ([]byte, error) {
				b, err := idem.Render(q)
				res.Body = b
				return b, err
			}}})
	if err != nil {
		return nil, err
	}
	return saved, nil
}

// Choice is what the customer picked on the checkout page.
type Choice struct {
	Method payrouter.Method
	Bank   string // bank_transfer
	Phone  string // OVO push, when the merchant gave none
	// CardToken is the provider's token from its own tokenization (in
	// sandbox: a test token), used for every card provider.
	CardToken string
}

// Choose starts a hosted-checkout payment with the customer's method: the
// rules route it and the attempts run as for any payment. Only the first
// choice counts (a concurrent second one gets invalid_state). Errors:
// invalid_state, invalid_request (a method the page did not offer), no_route.
func (r *Router) Choose(ctx context.Context, id string, c Choice) (*payrouter.Payment, error) {
	p, err := r.store.GetPayment(ctx, "", id)
	if err != nil {
		return nil, err
	}
	if p.Checkout != payrouter.CheckoutHosted || p.Status != payrouter.StatusRequiresAction || len(p.Attempts) > 0 {
		return nil, errChosen(p)
	}
	offered := false
	for _, m := range r.CheckoutMethods(p) {
		offered = offered || m == c.Method
	}
	if !offered {
		return nil, payrouter.InvalidParam("method", "%q is not offered for this payment", c.Method)
	}
	q := *p
	q.Method = c.Method
	switch c.Method {
	case payrouter.MethodCard:
		if c.CardToken == "" {
			return nil, payrouter.InvalidParam("card_token", "is required for a card")
		}
		q.Tokens = map[string]string{}
		for name := range r.providers {
			q.Tokens[name] = c.CardToken
		}
	case payrouter.MethodBankTransfer:
		if c.Bank == "" {
			return nil, payrouter.InvalidParam("bank", "is required for a bank transfer")
		}
		q.Bank = c.Bank
	}
	if c.Phone != "" {
		cust := payrouter.Customer{}
		if q.Customer != nil {
			cust = *q.Customer
		}
		cust.Phone = c.Phone
		q.Customer = &cust
	}
	plan, err := r.routing.Plan(&q, "")
	if err != nil {
		return nil, err
	}
	if len(plan.Candidates) == 0 {
		return nil, &payrouter.Error{Type: payrouter.ErrNoRoute, Code: "no_route", Message: "no provider can take this payment: " + plan.Route.Reason}
	}
	q.Route = plan.Route
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.Deadline)
	defer cancel()
	first := func(ctx context.Context, chosen *payrouter.Payment) (*payrouter.Payment, error) {
		return r.store.UpdatePayment(ctx, chosen.ID, func(s *payrouter.Payment) error {
			if s.Status != payrouter.StatusRequiresAction || len(s.Attempts) > 0 {
				return errChosen(s)
			}
			s.Method, s.Tokens, s.Bank, s.Customer = chosen.Method, chosen.Tokens, chosen.Bank, chosen.Customer
			s.Route, s.Attempts, s.ResolveAt = chosen.Route, chosen.Attempts, chosen.ResolveAt
			s.NextAction = nil // the page shows the provider's action once it answers
			s.UpdatedAt = time.Now().UTC()
			return nil
		})
	}
	return r.run(ctx, &q, plan.Candidates, nil, &PayResult{}, first)
}
