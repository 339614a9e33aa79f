package stripe

import (
	"context"
	"time"

	stripeapi "github.com/stripe/stripe-go/v76"

	"github.com/payrouter/payrouter/providers"
)

// Settlements lists the account's balance transactions created in
// [from, to). Amount, Fee and Net are payrouter minor units: Stripe's IDR
// fees are computed to the sen, so for IDR Fee and Net are rounded half
// away from zero to whole rupiah (integer arithmetic), and Amount of a
// payment we created is exact. ProviderPaymentID is the PaymentIntent of
// the charge or refund where Stripe reports it (the source is expanded);
// Type is payment, refund, fee, adjustment or Stripe's own type; Batch is
// the automatic payout that paid the transaction out (payoutsOf). Balance
// transactions in currencies payrouter does not know are skipped.
func (p *Provider) Settlements(ctx context.Context, from, to time.Time) ([]providers.Settlement, error) {
	params := &stripeapi.BalanceTransactionListParams{
		CreatedRange: &stripeapi.RangeQueryParams{
			GreaterThanOrEqual: from.Unix(),
			LesserThan:         to.Unix(),
		},
	}
	params.Limit = stripeapi.Int64(100)
	params.AddExpand("data.source")
	rec := &callRecord{}
	params.Context = rec.with(ctx)
	payouts, err := p.payoutsOf(ctx, from, to)
	if err != nil {
		return nil, err
	}
	it := p.api.BalanceTransactions.List(params)
	var out []providers.Settlement
	for it.Next() {
		bt := it.BalanceTransaction()
		cur, ok := fromStripeCurrency(bt.Currency)
		if !ok {
			continue
		}
		s := providers.Settlement{
			Provider:  p.name,
			Type:      settlementType(bt.Type),
			Amount:    fromStripeRounded(bt.Amount, cur),
			Fee:       fromStripeRounded(bt.Fee, cur),
			Net:       fromStripeRounded(bt.Net, cur),
			Currency:  cur,
			Status:    string(bt.Status),
			SettledAt: time.Unix(bt.Created, 0).UTC(),
			Batch:     payouts[bt.ID],
		}
		if bt.AvailableOn > 0 {
			s.SettledAt = time.Unix(bt.AvailableOn, 0).UTC()
		}
		if src := bt.Source; src != nil {
			switch {
			case src.Charge != nil && src.Charge.PaymentIntent != nil:
				s.ProviderPaymentID = src.Charge.PaymentIntent.ID
				s.OrderID = src.Charge.Metadata["order_id"]
			case src.Refund != nil && src.Refund.PaymentIntent != nil:
				s.ProviderPaymentID = src.Refund.PaymentIntent.ID
			default:
				s.ProviderPaymentID = src.ID
			}
		}
		out = append(out, s)
	}
	if err := it.Err(); err != nil {
		return nil, classify(err, rec)
	}
	return out, nil
}

// payoutsOf maps the balance transactions paid out by the automatic
// payouts created from a day before from to a week after to (the usual
// payout delay) to their payout id: GET /v1/payouts, then each payout's
// GET /v1/balance_transactions?payout=…, as Stripe documents for payout
// reconciliation.
func (p *Provider) payoutsOf(ctx context.Context, from, to time.Time) (map[string]string, error) {
	out := map[string]string{}
	pp := &stripeapi.PayoutListParams{CreatedRange: &stripeapi.RangeQueryParams{
		GreaterThanOrEqual: from.Add(-24 * time.Hour).Unix(), LesserThan: to.Add(7 * 24 * time.Hour).Unix()}}
	pp.Limit = stripeapi.Int64(100)
	rec := &callRecord{}
	pp.Context = rec.with(ctx)
	it := p.api.Payouts.List(pp)
	var ids []string
	for it.Next() {
		ids = append(ids, it.Payout().ID)
	}
	if err := it.Err(); err != nil {
		return nil, classify(err, rec)
	}
	for _, id := range ids {
		bp := &stripeapi.BalanceTransactionListParams{Payout: stripeapi.String(id)}
		bp.Limit = stripeapi.Int64(100)
		rec := &callRecord{}
		bp.Context = rec.with(ctx)
		bit := p.api.BalanceTransactions.List(bp)
		for bit.Next() {
			out[bit.BalanceTransaction().ID] = id
		}
		if err := bit.Err(); err != nil {
			return nil, classify(err, rec)
		}
	}
	return out, nil
}

func settlementType(t stripeapi.BalanceTransactionType) string {
	switch t {
	case "charge", "payment":
		return "payment"
	case "refund", "payment_refund":
		return "refund"
	case "stripe_fee", "stripe_fx_fee", "tax_fee", "application_fee":
		return "fee"
	case "adjustment":
		return "adjustment"
	}
	return string(t)
}
