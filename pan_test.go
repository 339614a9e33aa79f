package payrouter

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode"
)

// withCheckDigit completes prefix (padded with a fixed filler) to n digits
// with a Luhn check digit.
func withCheckDigit(prefix string, n int) string {
	s := prefix
	for i := 0; len(s) < n-1; i++ {
		s += string(rune('0' + (i*7+3)%10))
	}
	for c := '0'; c <= '9'; c++ {
		if luhn(toDigits(s + string(c))) {
			return s + string(c)
		}
	}
	panic("unreachable")
}

func toDigits(s string) []byte {
	d := make([]byte, len(s))
	for i := range s {
		d[i] = s[i] - '0'
	}
	return d
}

// breakLuhn changes the check digit.
func breakLuhn(s string) string {
	last := (s[len(s)-1]-'0'+1)%10 + '0'
	return s[:len(s)-1] + string(last)
}

// mapDigits writes s's ASCII digits in another Unicode digit set.
func mapDigits(s string, zero rune) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return zero + (r - '0')
		}
		return r
	}, s)
}

func TestEveryTableRowIsDetected(t *testing.T) {
	for _, row := range iins {
		for n := 13; n <= 19; n++ {
			for _, prefix := range []int{row.lo, row.hi} {
				pan := withCheckDigit(fmt.Sprint(prefix), n)
				issued := row.lengths&(1<<n) != 0
				if got := ContainsCardNumber(pan); issued && !got {
					t.Errorf("%s %d digits %s: not detected", row.brand, n, pan)
				}
				if ContainsCardNumber(breakLuhn(pan)) && !otherRowMatches(breakLuhn(pan)) {
					t.Errorf("%s %s with a wrong check digit: detected", row.brand, breakLuhn(pan))
				}
			}
		}
	}
}

// otherRowMatches is true when a number is a valid card number for some
// row (changing one digit may land in another network's range).
func otherRowMatches(s string) bool { return IsCardNumber(toDigits(s)) }

// Card numbers in every position and form an API body may carry them.
func TestCardNumbersFound(t *testing.T) {
	pans := []string{
		"4111111111111111", "4242424242424242", "4012888888881881", "4222222222222", // Visa 16 and 13
		withCheckDigit("4", 19),
		"5555555555554444", "2223003122003222", "2720990000000007", // Mastercard
		"378282246310005", "371449635398431", // Amex
		"6011111111111117", "6011000990139424", "6500000000000002", // Discover
		"3530111333300000", "3566002020360505", // JCB
		"6200000000000005", "6250941006528599", withCheckDigit("62", 19), // UnionPay
		"36227206271667", "30569309025904", // Diners 14
		withCheckDigit("6759", 18), withCheckDigit("5018", 13), // Maestro
		withCheckDigit("508", 16), withCheckDigit("2200", 16), // RuPay, Mir
	}
	for _, pan := range pans {
		if !IsCardNumber(toDigits(pan)) {
			t.Fatalf("corpus error: %s is not a card number", pan)
		}
	}
	forms := map[string]func(p string) string{
		"plain":              func(p string) string { return p },
		"spaces":             func(p string) string { return group(p, " ") },
		"dashes":             func(p string) string { return group(p, "-") },
		"dots":               func(p string) string { return group(p, ".") },
		"slashes":            func(p string) string { return group(p, "/") },
		"spaced dash":        func(p string) string { return group(p, " - ") },
		"underscores":        func(p string) string { return group(p, "_") },
		"nbsp":               func(p string) string { return group(p, "\u00a0") },
		"ideographic space":  func(p string) string { return group(p, "\u3000") },
		"zero width space":   func(p string) string { return group(p, "\u200b") },
		"soft hyphen":        func(p string) string { return group(p, "\u00ad") },
		"en dash":            func(p string) string { return group(p, "–") },
		"fullwidth":          func(p string) string { return mapDigits(p, '０') },
		"fullwidth dashes":   func(p string) string { return mapDigits(group(p, "－"), '０') },
		"fullwidth dots":     func(p string) string { return mapDigits(group(p, "．"), '０') },
		"arabic-indic":       func(p string) string { return mapDigits(p, '٠') },
		"devanagari":         func(p string) string { return mapDigits(p, '०') },
		"math bold":          func(p string) string { return mapDigits(p, '𝟎') },
		"mixed digit sets":   func(p string) string { return mapDigits(p[:8], '０') + p[8:] },
		"in text":            func(p string) string { return "my card is " + p + ", thanks" },
		"glued to letters":   func(p string) string { return "card" + p + "exp" },
		"email":              func(p string) string { return p + "@example.com" },
		"dotted email":       func(p string) string { return "budi." + group(p, ".") + "@example.com" },
		"phone field":        func(p string) string { return group(p, " ") },
		"phone with prefix":  func(p string) string { return "+62 812 3456 7890 / " + p },
		"url query":          func(p string) string { return "https://shop.example.com/return?order=42&card=" + p },
		"url query %20":      func(p string) string { return "https://shop.example.com/r?c=" + group(p, "%20") },
		"url query +":        func(p string) string { return "https://shop.example.com/r?c=" + group(p, "+") },
		"url percent digits": func(p string) string { return "https://shop.example.com/r?c=" + percentAll(p) },
		"url path":           func(p string) string { return "https://shop.example.com/cards/" + p + "/return" },
		"with expiry, cvv":   func(p string) string { return p + " 12/28 123" },
		"expiry slash glued": func(p string) string { return p + "/1228" },
		"after a date":       func(p string) string { return "2026-12-01 " + group(p, " ") },
		"after digits":       func(p string) string { return "0812 3456 " + p },
		"between numbers":    func(p string) string { return "qty 3 " + p + " 999" },
	}
	for _, pan := range pans {
		for name, form := range forms {
			s := form(pan)
			if !ContainsCardNumber(s) {
				t.Errorf("%s (%s): %q not detected", pan, name, s)
			}
		}
	}
}

func group(p, sep string) string {
	var parts []string
	for len(p) > 4 {
		parts = append(parts, p[:4])
		p = p[4:]
	}
	return strings.Join(append(parts, p), sep)
}

func percentAll(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		fmt.Fprintf(&b, "%%%02X", p[i])
	}
	return b.String()
}

// What merchants honestly send must pass.
func TestReferencesNotFlagged(t *testing.T) {
	corpus := []string{
		"20261201123456", "20261201123456789", "2026-12-01T12:34:56.789Z", "2026-12-01 12:34:56",
		"01/12/2026 12:34:56", "1/12/2026, 10:30:45", "1764590400", "1764590400123", "1764590400123456",
		"1764590400123456789", "+62 812-3456-7890", "+6281234567890", "081234567890", "+49 1512 3456789",
		"+1 (415) 555-0123", "+44 7911 123456", "0062 812 3456 7890", "ORD-2026-000123456",
		"INV/2026/12/0000042", "order-1234567", "123e4567-e89b-12d3-a456-426614174000",
		"pay_3ko36jrucvxigfwksmfuw7en", "481111-1114-a901971f-2f1b-4781-802a-df326fbf0e9c",
		"pm_card_visa", "tok_sandbox_success", "Rp 1.500.000", "USD 1,234,567.89", "192.168.100.200",
		"10000000000000000000", "1000000000000000000", "9000000000000000001", "budi@example.com",
		"https://shop.example.com/return?order=20261201123456&ts=1764590400123", "ref 2026 1201 1234 56",
		"Two coffees and a croissant", "", "0000000000000000", "1234567890123",
		"8808123456789012", // a Xendit-style VA number
		// masked card numbers, as providers return them
		"481111******1114", "4111 11** **** 1111", "**** **** **** 1111", "XXXX-XXXX-XXXX-1111", "411111xxxxxx1111",
	}
	for _, s := range corpus {
		if ContainsCardNumber(s) {
			t.Errorf("%q flagged as a card number", s)
		}
	}
	// +49 mobile numbers are 13 digits starting with 4 (Visa's 13-digit
	// length): written as E.164 they are phone numbers, even when Luhn-valid.
	phone := withCheckDigit("491512345", 13)
	if !ContainsCardNumber(phone) || ContainsCardNumber("+"+phone) || ContainsCardNumber("+49 "+phone[2:]) {
		t.Errorf("E.164 rule: bare %s should be a card number, +%s not", phone, phone)
	}
}

// Every date-like reference (YYYYMMDDhhmmss, with or without a counter)
// passes: the old detector refused about one in ten.
func TestDateLikeReferencesNeverFlagged(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	flagged, n := 0, 0
	for d := 0; d < 365*5; d++ {
		day := start.AddDate(0, 0, d)
		for k := 0; k < 20; k++ {
			ts := day.Add(time.Duration(rng.IntN(86400)) * time.Second)
			for _, s := range []string{
				ts.Format("20060102150405"),
				ts.Format("20060102150405") + fmt.Sprintf("%03d", rng.IntN(1000)),
				ts.Format("20060102") + fmt.Sprintf("%06d", rng.IntN(1_000_000)),
				ts.Format("2006-01-02") + "-" + fmt.Sprintf("%07d", rng.IntN(10_000_000)),
				fmt.Sprint(ts.UnixMilli()), fmt.Sprint(ts.UnixNano()),
			} {
				n++
				if ContainsCardNumber(s) {
					flagged++
					if flagged < 5 {
						t.Errorf("%q flagged", s)
					}
				}
			}
		}
	}
	if flagged > 0 {
		t.Errorf("%d of %d date-like references flagged", flagged, n)
	}
}

// A card number glued to other digits cannot be told from a long reference:
// documented as not found.
func TestGluedDigitsAreAReference(t *testing.T) {
	if ContainsCardNumber("2026120" + "4111111111111111") {
		t.Error("a 23-digit reference was flagged")
	}
}

func TestDigitRangesStartAtZero(t *testing.T) {
	check := func(lo, hi, stride uint32) {
		if stride != 1 || (hi-lo+1)%10 != 0 {
			t.Errorf("Nd range %U–%U stride %d is not whole 0–9 sets", lo, hi, stride)
		}
		if !unicode.IsDigit(rune(lo)) {
			t.Errorf("%U not a digit", lo)
		}
	}
	for _, r := range unicode.Nd.R16 {
		check(uint32(r.Lo), uint32(r.Hi), uint32(r.Stride))
	}
	for _, r := range unicode.Nd.R32 {
		check(r.Lo, r.Hi, r.Stride)
	}
	for _, tt := range []struct {
		r    rune
		want byte
	}{{'7', 7}, {'７', 7}, {'٣', 3}, {'९', 9}, {'𝟗', 9}, {'𝟶', 0}} {
		if v, ok := digitValue(tt.r); !ok || v != tt.want {
			t.Errorf("digitValue(%q) = %d %v, want %d", tt.r, v, ok, tt.want)
		}
	}
}

func FuzzContainsCardNumber(f *testing.F) {
	for _, s := range []string{"", "4111 1111 1111 1111", "+62 812-3456-7890", "20261201123456",
		"４１１１１１１１１１１１１１１１", "%34%31", "a\u200b1", "12/28 123", "+"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		_ = ContainsCardNumber(a)
		// A card number set apart by spaces is found whatever surrounds it.
		if s := a + " 4111111111111111 " + b; !ContainsCardNumber(s) {
			t.Fatalf("%q: card number not found", s)
		}
	})
}

func BenchmarkContainsCardNumber(b *testing.B) {
	for _, s := range []string{"order-1234567", "Two coffees and a croissant", "+6281234567890", "https://shop.example.com/return?order=20261201123456"} {
		b.Run(s[:min(len(s), 12)], func(b *testing.B) {
			for b.Loop() {
				ContainsCardNumber(s)
			}
		})
	}
}
