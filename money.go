package payrouter

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Currency is an ISO 4217 code in upper case. Only currencies in the table
// below are accepted anywhere in payrouter.
type Currency string

// currencies is payrouter's own explicit table of minor-unit exponents. IDR is
// 0 (as Midtrans, Xendit and Adyen use it) even though ISO says 2: "amount":
// 50000 in IDR is Rp 50.000. Adapters convert to their provider's convention.
var currencies = map[Currency]int{
	"IDR": 0, "JPY": 0, "KRW": 0, "VND": 0,
	"USD": 2, "EUR": 2, "SGD": 2, "GBP": 2, "AUD": 2, "MYR": 2, "PHP": 2, "THB": 2,
}

// ParseCurrency accepts a known currency code, in any case.
func ParseCurrency(s string) (Currency, error) {
	c := Currency(strings.ToUpper(s))
	if _, ok := currencies[c]; !ok {
		return "", fmt.Errorf("unknown currency %q", s)
	}
	return c, nil
}

// Valid reports whether c is in the currency table.
func (c Currency) Valid() bool { _, ok := currencies[c]; return ok }

// Exponent is the number of minor-unit digits (IDR 0, USD 2). It panics on an
// unknown currency: callers validate with ParseCurrency first.
func (c Currency) Exponent() int {
	e, ok := currencies[c]
	if !ok {
		panic("payrouter: unknown currency " + string(c))
	}
	return e
}

// MaxAmount bounds every amount accepted from outside: large enough for any
// real payment (10^15 minor units), small enough that sums and ×100
// conversions never overflow int64.
const MaxAmount int64 = 1_000_000_000_000_000

// ParseAmount parses a JSON number token as a positive integer amount in minor
// units. It refuses fractions, exponents, signs, leading zeros, strings,
// zero and anything above MaxAmount: money never passes through a float.
func ParseAmount(raw []byte) (int64, error) {
	s := string(raw)
	switch {
	case s == "" || s == "null":
		return 0, fmt.Errorf("is required")
	case s[0] == '"':
		return 0, fmt.Errorf("must be an integer number of minor units, not a string")
	case s[0] == '-':
		return 0, fmt.Errorf("must be positive")
	case strings.ContainsAny(s, ".eE"):
		return 0, fmt.Errorf("must be an integer number of minor units, not a fraction")
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("must be an integer number of minor units")
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("must not have leading zeros")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > MaxAmount {
		return 0, fmt.Errorf("is too large (max %d)", MaxAmount)
	}
	if n == 0 {
		return 0, fmt.Errorf("must be greater than zero")
	}
	return n, nil
}

// ScaleAmount converts an amount from exponent `from` to exponent `to`
// (Stripe's two-decimal IDR: ScaleAmount(50000, 0, 2) = 5000000). Going down
// in precision fails unless the amount is exactly representable.
func ScaleAmount(amount int64, from, to int) (int64, error) {
	for ; from < to; from++ {
		if amount > math.MaxInt64/10 || amount < math.MinInt64/10 {
			return 0, fmt.Errorf("amount %d overflows", amount)
		}
		amount *= 10
	}
	for ; from > to; from-- {
		if amount%10 != 0 {
			return 0, fmt.Errorf("amount is not representable with %d decimals", to)
		}
		amount /= 10
	}
	return amount, nil
}

// FormatDecimal renders minor units as a decimal string with the given
// number of decimals: FormatDecimal(100000, 2) = "1000.00". Providers such as
// Midtrans and SNAP BI put amounts on the wire this way.
func FormatDecimal(amount int64, decimals int) string {
	neg := amount < 0
	if neg {
		amount = -amount
	}
	s := strconv.FormatInt(amount, 10)
	if decimals > 0 {
		for len(s) <= decimals {
			s = "0" + s
		}
		s = s[:len(s)-decimals] + "." + s[len(s)-decimals:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// ParseDecimal is the exact inverse of FormatDecimal for non-negative
// amounts: "100000.00" with 2 decimals is 10000000. It accepts fewer
// fractional digits than decimals ("10.5" → 1050) and refuses more, signs,
// exponents and anything that is not plain digits.
func ParseDecimal(s string, decimals int) (int64, error) {
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" || (hasDot && frac == "") || len(frac) > decimals {
		return 0, fmt.Errorf("invalid decimal amount %q", s)
	}
	for _, r := range intPart + frac {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("invalid decimal amount %q", s)
		}
	}
	frac += strings.Repeat("0", decimals-len(frac))
	n, err := strconv.ParseInt(intPart+frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid decimal amount %q: %w", s, err)
	}
	return n, nil
}

// currencySigns are how an amount is written for people, by the
// currency's own convention (Rp 150.000, US$19.99), whatever the page's
// language: the sign, whether a space follows it, and the group and decimal
// separators.
var currencySigns = map[Currency]struct {
	sign       string
	space      bool
	group, dec byte
}{
	"IDR": {"Rp", true, '.', ','}, "USD": {"US$", false, ',', '.'}, "SGD": {"S$", false, ',', '.'},
	"EUR": {"€", false, '.', ','}, "GBP": {"£", false, ',', '.'}, "AUD": {"A$", false, ',', '.'},
	"MYR": {"RM", true, ',', '.'}, "PHP": {"₱", false, ',', '.'}, "THB": {"฿", false, ',', '.'},
	"JPY": {"¥", false, ',', '.'}, "KRW": {"₩", false, ',', '.'}, "VND": {"₫", true, '.', ','},
}

// FormatMoney writes amount minor units of c for people: "Rp 150.000",
// "US$19.99". Integer arithmetic only.
func FormatMoney(amount int64, c Currency) string {
	s, ok := currencySigns[c]
	if !ok {
		s.sign, s.space, s.group, s.dec = string(c), true, ',', '.'
	}
	exp := 0
	if c.Valid() {
		exp = c.Exponent()
	}
	neg := amount < 0
	if neg {
		amount = -amount
	}
	digits := strconv.FormatInt(amount, 10)
	if len(digits) <= exp {
		digits = strings.Repeat("0", exp-len(digits)+1) + digits
	}
	whole, frac := digits[:len(digits)-exp], digits[len(digits)-exp:]
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	b.WriteString(s.sign)
	if s.space {
		b.WriteByte(' ')
	}
	for i := 0; i < len(whole); i++ {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(s.group)
		}
		b.WriteByte(whole[i])
	}
	if exp > 0 {
		b.WriteByte(s.dec)
		b.WriteString(frac)
	}
	return b.String()
}
