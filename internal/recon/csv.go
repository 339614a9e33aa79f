package recon

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// CSV settlement format (one file per provider; header row required, any
// column order, unknown columns ignored, '#' lines are comments):
//
//	provider_payment_id  the provider's payment id      } at least one, for
//	order_id             the order id payrouter sent    } payment and refund rows
//	type                 payment | refund | chargeback | fee | adjustment
//	refund_id            optional: payrouter's refund id of a refund row
//	payout_batch         optional: the payout batch the row was paid in
//	gross                signed: payments > 0, refunds < 0 (money out)
//	fee                  what the provider took (optional, default 0)
//	net                  optional; when present it must equal gross − fee
//	currency             a payrouter currency code (IDR, USD, …)
//	settled_at           RFC 3339 or YYYY-MM-DD (UTC)
//	status               optional, kept verbatim
//
// Amounts are decimal strings in the currency's major unit ("19.99" USD,
// "150000" IDR), parsed exactly with the currency's payrouter exponent (IDR
// 0); extra fractional zeros are accepted ("150000.00" IDR) because they
// change nothing, any other extra digit is refused. With minorUnits they
// are integers in minor units instead. Exponents ("1e3"), thousands
// separators, '+' and spaces are refused.

// ParseCSV reads a settlement CSV for provider. name is used in error
// messages, which have the form "name:line: column: problem". It returns
// the first error found; rows are never skipped silently.
func ParseCSV(r io.Reader, name, provider string, minorUnits bool) ([]Entry, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = 0 // every row as long as the header
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: empty file, want a header row", name)
	}
	if err != nil {
		return nil, csvErr(name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if _, dup := col[h]; dup && h != "" {
			return nil, fmt.Errorf("%s:1: duplicate column %q", name, h)
		}
		col[h] = i
	}
	for _, need := range []string{"type", "gross", "currency", "settled_at"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("%s:1: missing column %q (have %s)", name, need, strings.Join(header, ","))
		}
	}
	_, hasPP := col["provider_payment_id"]
	_, hasOrder := col["order_id"]
	if !hasPP && !hasOrder {
		return nil, fmt.Errorf("%s:1: need a provider_payment_id or order_id column", name)
	}
	var out []Entry
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, csvErr(name, err)
		}
		line, _ := cr.FieldPos(0)
		get := func(c string) string {
			if i, ok := col[c]; ok {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		e, err := parseRow(get, provider, minorUnits)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		e.Source = fmt.Sprintf("%s:%d", name, line)
		out = append(out, e)
	}
}

func csvErr(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s:%d: %v", name, pe.Line, pe.Err)
	}
	return fmt.Errorf("%s: %w", name, err)
}

func parseRow(get func(string) string, provider string, minorUnits bool) (Entry, error) {
	e := Entry{Settlement: providers.Settlement{Provider: provider, ProviderPaymentID: get("provider_payment_id"),
		OrderID: get("order_id"), Status: get("status")}}
	switch t := strings.ToLower(get("type")); t {
	case "payment", "refund", "chargeback", "fee", "adjustment":
		e.Type = t
	default:
		return e, fmt.Errorf("type: %q is not payment, refund, chargeback, fee or adjustment", get("type"))
	}
	e.RefundID, e.Batch = get("refund_id"), get("payout_batch")
	if (e.Type == "payment" || e.Type == "refund" || e.Type == "chargeback") && e.ProviderPaymentID == "" && e.OrderID == "" {
		return e, fmt.Errorf("a %s row needs provider_payment_id or order_id", e.Type)
	}
	cur, err := payrouter.ParseCurrency(get("currency"))
	if err != nil {
		return e, fmt.Errorf("currency: %v", err)
	}
	e.Currency = cur
	amount := func(c string, required bool) (int64, bool, error) {
		s := get(c)
		if s == "" {
			if required {
				return 0, false, fmt.Errorf("%s: is required", c)
			}
			return 0, false, nil
		}
		n, err := ParseAmount(s, cur, minorUnits)
		if err != nil {
			return 0, false, fmt.Errorf("%s: %v", c, err)
		}
		return n, true, nil
	}
	if e.Amount, _, err = amount("gross", true); err != nil {
		return e, err
	}
	if e.Fee, _, err = amount("fee", false); err != nil {
		return e, err
	}
	switch {
	case e.Type == "payment" && e.Amount <= 0:
		return e, fmt.Errorf("gross: a payment must be positive, got %s", get("gross"))
	case (e.Type == "refund" || e.Type == "chargeback") && e.Amount >= 0:
		return e, fmt.Errorf("gross: a %s is money out and must be negative, got %s", e.Type, get("gross"))
	}
	net, hasNet, err := amount("net", false)
	if err != nil {
		return e, err
	}
	e.Net = e.Amount - e.Fee
	if hasNet && net != e.Net {
		return e, fmt.Errorf("net: %s is not gross − fee (%s)", get("net"), payrouter.FormatDecimal(e.Net, unitExp(cur, minorUnits)))
	}
	if e.SettledAt, err = parseTime(get("settled_at")); err != nil {
		return e, fmt.Errorf("settled_at: %v", err)
	}
	return e, nil
}

func unitExp(cur payrouter.Currency, minorUnits bool) int {
	if minorUnits {
		return 0
	}
	return cur.Exponent()
}

// ParseAmount parses one signed CSV amount exactly into minor units of cur:
// a major-unit decimal ("-19.99") or, with minorUnits, an integer ("-1999").
// Fractional digits beyond the currency's exponent are accepted only when
// they are zeros. The result is bounded by payrouter.MaxAmount.
func ParseAmount(s string, cur payrouter.Currency, minorUnits bool) (int64, error) {
	neg := strings.HasPrefix(s, "-")
	digits := strings.TrimPrefix(s, "-")
	var n int64
	var err error
	if minorUnits {
		n, err = payrouter.ParseDecimal(digits, 0)
		if err != nil {
			return 0, fmt.Errorf("%q is not an integer number of minor units", s)
		}
	} else {
		exp := cur.Exponent()
		if i, f, ok := strings.Cut(digits, "."); ok && len(f) > exp {
			// Trailing zeros past the exponent carry no value; anything
			// else would be rounding, which we never do.
			if strings.Trim(f[exp:], "0") != "" {
				return 0, fmt.Errorf("%q has more decimals than %s's %d", s, cur, exp)
			}
			digits = i
			if exp > 0 {
				digits += "." + f[:exp]
			}
		}
		n, err = payrouter.ParseDecimal(digits, exp)
		if err != nil {
			return 0, fmt.Errorf("%q is not a decimal amount in %s major units", s, cur)
		}
	}
	if n > payrouter.MaxAmount {
		return 0, fmt.Errorf("%q is too large", s)
	}
	if neg {
		n = -n
	}
	return n, nil
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor YYYY-MM-DD", s)
}
