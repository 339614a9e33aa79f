package payrouter

import (
	"strings"
	"unicode"
)

// Card-number detection. payrouter never takes raw card data: a merchant
// tokenizes a card with its provider and sends the token. Anything that
// looks like a primary account number (PAN) in a request is refused, so it
// never reaches a provider, a table or a log.

// iin is one row of the card-network table: a prefix range and the
// lengths the network issues.
type iin struct {
	brand   string
	lo, hi  int    // prefix range, inclusive
	digits  int    // how many leading digits lo and hi cover
	lengths uint32 // bit n set: the network issues n-digit numbers
	note    string
}

// ContainsCardNumber reports whether s holds a card number anywhere.
// A digit sequence is a card number when all of these hold:
//   - it has 13 to 19 digits, with nothing but separators between them
//     (spaces, dashes, dots, slashes, commas, underscores, colons, plus
//     signs, zero-width and other format characters, percent-encoded
//     spaces; at most three in a row), and no digit right before or after it;
//   - its digits may be any Unicode decimal digits (fullwidth １２３,
//     Arabic-Indic ١٢٣, …), read by their digit value;
//   - it starts with the IIN of a card network in the table below and has
//     a length that network issues;
//   - it passes the Luhn check.
//
// Longer runs of digit groups are searched group by group, so a card
// number next to an expiry date, a CVV or a phone number is still found.
// A card number glued to other digits with no separator is not: it cannot
// be told from a long reference, and refusing long references would refuse
// honest merchants (the old detector refused one date-like reference in
// ten). A run right after '+' that has at most 15 digits is an E.164 phone
// number, not a card number. UATP (airline, prefix 1) is left out on
// purpose: it would make every Unix timestamp a candidate. Percent-encoded
// text (a URL query) is also read decoded.
func ContainsCardNumber(s string) bool {
	if scanCardNumber(s) {
		return true
	}
	if strings.IndexByte(s, '%') >= 0 {
		return scanCardNumber(percentDecode(s))
	}
	return false
}

func lengths(ns ...int) uint32 {
	var m uint32
	for _, n := range ns {
		m |= 1 << n
	}
	return m
}

var (
	len16to19 = lengths(16, 17, 18, 19)
	len16     = lengths(16)
)

// iins is the documented table of card networks and their issuer
// identification number ranges (ISO/IEC 7812 prefixes as the networks
// publish them). Overlaps are harmless: any match counts.
var iins = []iin{
	{brand: "Visa", lo: 4, hi: 4, digits: 1, lengths: lengths(13, 16, 19)},
	{brand: "Mastercard", lo: 51, hi: 55, digits: 2, lengths: len16},
	{brand: "Mastercard", lo: 2221, hi: 2720, digits: 4, lengths: len16, note: "2-series since 2017"},
	{brand: "American Express", lo: 34, hi: 34, digits: 2, lengths: lengths(15)},
	{brand: "American Express", lo: 37, hi: 37, digits: 2, lengths: lengths(15)},
	{brand: "Discover", lo: 6011, hi: 6011, digits: 4, lengths: len16to19},
	{brand: "Discover", lo: 644, hi: 649, digits: 3, lengths: len16to19},
	{brand: "Discover", lo: 65, hi: 65, digits: 2, lengths: len16to19},
	{brand: "JCB", lo: 3528, hi: 3589, digits: 4, lengths: len16to19},
	{brand: "UnionPay", lo: 62, hi: 62, digits: 2, lengths: len16to19, note: "includes Discover's 622126–622925"},
	{brand: "UnionPay", lo: 81, hi: 81, digits: 2, lengths: len16to19},
	{brand: "Diners Club International", lo: 300, hi: 305, digits: 3, lengths: lengths(14, 15, 16, 17, 18, 19)},
	{brand: "Diners Club International", lo: 3095, hi: 3095, digits: 4, lengths: lengths(14, 15, 16, 17, 18, 19)},
	{brand: "Diners Club International", lo: 36, hi: 36, digits: 2, lengths: lengths(14, 15, 16, 17, 18, 19)},
	{brand: "Diners Club International", lo: 38, hi: 39, digits: 2, lengths: lengths(14, 15, 16, 17, 18, 19)},
	{brand: "Maestro", lo: 5018, hi: 5018, digits: 4, lengths: lengths(13, 14, 15, 16, 17, 18, 19)},
	{brand: "Maestro", lo: 5020, hi: 5020, digits: 4, lengths: lengths(13, 14, 15, 16, 17, 18, 19)},
	{brand: "Maestro", lo: 5038, hi: 5038, digits: 4, lengths: lengths(13, 14, 15, 16, 17, 18, 19)},
	{brand: "Maestro", lo: 5893, hi: 5893, digits: 4, lengths: lengths(13, 14, 15, 16, 17, 18, 19)},
	{brand: "Maestro", lo: 6304, hi: 6304, digits: 4, lengths: lengths(13, 14, 15, 16, 17, 18, 19)},
	{brand: "Maestro", lo: 6759, hi: 6759, digits: 4, lengths: lengths(13, 14, 15, 16, 17, 18, 19)},
	{brand: "Maestro", lo: 6761, hi: 6763, digits: 4, lengths: lengths(13, 14, 15, 16, 17, 18, 19)},
	{brand: "Dankort", lo: 5019, hi: 5019, digits: 4, lengths: len16},
	{brand: "RuPay", lo: 60, hi: 60, digits: 2, lengths: len16},
	{brand: "RuPay", lo: 82, hi: 82, digits: 2, lengths: len16},
	{brand: "RuPay", lo: 508, hi: 508, digits: 3, lengths: len16},
	{brand: "RuPay", lo: 353, hi: 353, digits: 3, lengths: len16, note: "co-branded with JCB"},
	{brand: "RuPay", lo: 356, hi: 356, digits: 3, lengths: len16, note: "co-branded with JCB"},
	{brand: "Mir", lo: 2200, hi: 2204, digits: 4, lengths: len16to19},
	{brand: "BORICA", lo: 2205, hi: 2205, digits: 4, lengths: len16},
	{brand: "Verve", lo: 506099, hi: 506198, digits: 6, lengths: lengths(16, 18, 19)},
	{brand: "Verve", lo: 507865, hi: 507964, digits: 6, lengths: lengths(16, 18, 19)},
	{brand: "Verve", lo: 650002, hi: 650027, digits: 6, lengths: lengths(16, 18, 19)},
	{brand: "Troy", lo: 9792, hi: 9792, digits: 4, lengths: len16},
	{brand: "InterPayment", lo: 636, hi: 636, digits: 3, lengths: len16to19},
	{brand: "InstaPayment", lo: 637, hi: 639, digits: 3, lengths: len16},
	{brand: "UzCard", lo: 8600, hi: 8600, digits: 4, lengths: len16},
	{brand: "Humo", lo: 9860, hi: 9860, digits: 4, lengths: len16},
	{brand: "LankaPay", lo: 357111, hi: 357111, digits: 6, lengths: len16},
}

// IsCardNumber reports whether digits (values 0–9) are one card number:
// 13–19 digits, a known IIN with a length it issues, and Luhn-valid.
func IsCardNumber(digits []byte) bool {
	n := len(digits)
	if n < 13 || n > 19 {
		return false
	}
	// Luhn first: it is cheaper than the table and refuses nine in ten.
	return luhn(digits) && knownIIN(digits)
}

func knownIIN(d []byte) bool {
	prefix := 0
	at := 0
	for _, r := range iins {
		for at < r.digits {
			prefix = prefix*10 + int(d[at])
			at++
		}
		p := prefix
		for k := at; k > r.digits; k-- {
			p /= 10
		}
		if p >= r.lo && p <= r.hi && r.lengths&(1<<len(d)) != 0 {
			return true
		}
	}
	return false
}

func luhn(d []byte) bool {
	sum := 0
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i])
		if (len(d)-1-i)%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

// maxSeparators is how many separator characters in a row still join two
// digit groups ("4111 - 1111").
const maxSeparators = 3

// scanCardNumber walks s once, collecting runs of digit groups.
func scanCardNumber(s string) bool {
	var dbuf [40]byte
	var gbuf [12]int
	digits := dbuf[:0]
	groups := gbuf[:0] // start offset of every group in digits
	seps := 0
	afterPlus := false // the run started right after '+'
	prevPlus := false
	for _, r := range s {
		if v, ok := digitValue(r); ok {
			if len(digits) == 0 {
				afterPlus = prevPlus
				groups = append(groups, 0)
			} else if seps > 0 {
				groups = append(groups, len(digits))
			}
			digits = append(digits, v)
			seps = 0
			continue
		}
		if len(digits) > 0 && isSeparator(r) && seps < maxSeparators {
			seps++
			continue
		}
		if len(digits) >= 13 && runHasCard(digits, groups, afterPlus) {
			return true
		}
		digits, groups, seps = digits[:0], groups[:0], 0
		prevPlus = r == '+' || r == '＋'
	}
	return len(digits) >= 13 && runHasCard(digits, groups, afterPlus)
}

// runHasCard checks every span of whole groups of 13–19 digits.
func runHasCard(digits []byte, groups []int, afterPlus bool) bool {
	for i, start := range groups {
		for j := i + 1; j <= len(groups); j++ {
			end := len(digits)
			if j < len(groups) {
				end = groups[j]
			}
			n := end - start
			if n > 19 {
				break
			}
			if n < 13 || (i == 0 && afterPlus && n <= 15) {
				continue
			}
			if IsCardNumber(digits[start:end]) {
				return true
			}
		}
	}
	return false
}

// digitValue reads any Unicode decimal digit (category Nd). Every Nd range
// of the Unicode tables is made of whole 0–9 sets starting at a zero
// (TestDigitRangesStartAtZero checks it), so the value is the offset in
// the range modulo 10.
func digitValue(r rune) (byte, bool) {
	if r < 0x80 {
		if r >= '0' && r <= '9' {
			return byte(r - '0'), true
		}
		return 0, false
	}
	if !unicode.IsDigit(r) {
		return 0, false
	}
	for _, rg := range unicode.Nd.R16 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return byte((r - rune(rg.Lo)) / rune(rg.Stride) % 10), true
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return byte((r - rune(rg.Lo)) / rune(rg.Stride) % 10), true
		}
	}
	return 0, false
}

func isSeparator(r rune) bool {
	if r >= 0xFF01 && r <= 0xFF5E { // fullwidth ASCII forms
		r -= 0xFEE0
	}
	switch r {
	case ' ', '-', '.', '/', '\\', ',', '_', ':', '+', '*', '#', '|', '~', '\'', '·', '•':
		return true
	}
	return r >= 0x80 && (unicode.IsSpace(r) || unicode.Is(unicode.Pd, r) || unicode.Is(unicode.Cf, r))
}

// percentDecode decodes %XX escapes and leaves anything else as it is (a
// lenient url.QueryUnescape that never fails).
func percentDecode(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if h, ok := unhex(s[i+1]); ok {
				if l, ok := unhex(s[i+2]); ok {
					b.WriteByte(h<<4 | l)
					i += 2
					continue
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
