package rules

import (
	"math"
	"math/bits"
)

// ComputeFee is the fee model: bp basis points of amount, rounded half up
// to a whole minor unit, plus fixed minor units:
//
//	fee = floor((amount × bp + 5000) / 10000) + fixed
//
// so 0.5 of a minor unit rounds up (amount 50 at 1% = 0.5 → 1) and anything
// below rounds down (amount 149 at 1% = 1.49 → 1). Amounts and fixed are
// minor units of the payment's currency. The product is computed in 128
// bits, so no amount overflows silently; ok is false for negative inputs or
// a result that does not fit an int64. Only integers: no float anywhere.
func ComputeFee(amount, bp, fixed int64) (fee int64, ok bool) {
	if amount < 0 || bp < 0 || fixed < 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(uint64(amount), uint64(bp))
	var carry uint64
	lo, carry = bits.Add64(lo, 5000, 0)
	hi += carry
	if hi >= 10000 { // the quotient would not fit 64 bits
		return 0, false
	}
	q, _ := bits.Div64(hi, lo, 10000)
	if q > math.MaxInt64 || int64(q) > math.MaxInt64-fixed {
		return 0, false
	}
	return int64(q) + fixed, true
}

// cfee is one provider × method fee, compiled: fixed by currency index.
type cfee struct {
	bp       int64
	fixed    []int64 // by currency index; 0 when none
	hasFixed []bool
}
