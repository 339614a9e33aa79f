package stripe

import (
	"strings"

	stripeapi "github.com/stripe/stripe-go/v76"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// stripeExponent is Stripe's own minor-unit convention for the payrouter
// currencies it takes. It differs from payrouter's table for IDR, which
// Stripe treats as two-decimal (https://stripe.com/docs/currencies);
// JPY, KRW and VND are zero-decimal at Stripe too.
var stripeExponent = map[payrouter.Currency]int{
	"IDR": 2, "JPY": 0, "KRW": 0, "VND": 0,
	"USD": 2, "EUR": 2, "SGD": 2, "GBP": 2, "AUD": 2, "MYR": 2, "PHP": 2, "THB": 2,
}

// toStripe converts a positive payrouter amount to Stripe's units. It
// returns an Invalid *providers.Error for an unknown currency, a
// non-positive amount or an overflow.
func toStripe(amount int64, cur payrouter.Currency) (int64, error) {
	exp, ok := stripeExponent[cur]
	if !ok || !cur.Valid() {
		return 0, providers.Unsupported("stripe adapter does not take currency %q", cur)
	}
	if amount <= 0 {
		return 0, providers.Errorf(providers.Invalid, "amount_invalid", "amount must be positive")
	}
	n, err := payrouter.ScaleAmount(amount, cur.Exponent(), exp)
	if err != nil {
		return 0, providers.Errorf(providers.Invalid, "amount_invalid", "amount cannot be expressed in Stripe units: %v", err)
	}
	return n, nil
}

// fromStripe converts an amount in Stripe's units back to payrouter minor
// units exactly; a Stripe IDR amount that is not a whole rupiah is refused
// (Invalid, amount_unrepresentable).
func fromStripe(amount int64, cur payrouter.Currency) (int64, error) {
	exp, ok := stripeExponent[cur]
	if !ok || !cur.Valid() {
		return 0, providers.Unsupported("stripe adapter does not take currency %q", cur)
	}
	n, err := payrouter.ScaleAmount(amount, exp, cur.Exponent())
	if err != nil {
		return 0, providers.Errorf(providers.Invalid, "amount_unrepresentable", "Stripe amount %d %s is not a whole payrouter minor unit", amount, cur)
	}
	return n, nil
}

// fromStripeRounded converts like fromStripe but rounds half away from zero
// instead of refusing; only for settlement fees and nets, which Stripe
// computes to the sen for IDR. Integer arithmetic only.
func fromStripeRounded(amount int64, cur payrouter.Currency) int64 {
	exp, ok := stripeExponent[cur]
	if !ok {
		return amount
	}
	div := int64(1)
	for d := exp - cur.Exponent(); d > 0; d-- {
		div *= 10
	}
	q, r := amount/div, amount%div
	switch {
	case 2*r >= div:
		q++
	case 2*r <= -div:
		q--
	}
	amount = q
	return amount
}

// fromStripeCurrency maps Stripe's lower-case currency to payrouter's.
func fromStripeCurrency(c stripeapi.Currency) (payrouter.Currency, bool) {
	cur, err := payrouter.ParseCurrency(strings.ToUpper(string(c)))
	if err != nil {
		return "", false
	}
	if _, ok := stripeExponent[cur]; !ok {
		return "", false
	}
	return cur, true
}
