package payrouter

import (
	"math"
	"strconv"
	"testing"
)

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"1", 1, false},
		{"1999", 1999, false},
		{"1000000000000000", MaxAmount, false},
		{"1000000000000001", 0, true},
		{"99999999999999999999", 0, true},
		{"0", 0, true},
		{"-1", 0, true},
		{"19.99", 0, true},
		{"1e3", 0, true},
		{"1E3", 0, true},
		{"10.0", 0, true},
		{`"1999"`, 0, true},
		{"007", 0, true},
		{"null", 0, true},
		{"", 0, true},
		{"true", 0, true},
		{"[1]", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseAmount([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseAmount(%s) = %d, %v; want %d, err=%v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestCurrencies(t *testing.T) {
	for _, tt := range []struct {
		in   string
		exp  int
		fail bool
	}{{"IDR", 0, false}, {"idr", 0, false}, {"USD", 2, false}, {"EUR", 2, false}, {"SGD", 2, false}, {"JPY", 0, false}, {"XYZ", 0, true}, {"", 0, true}} {
		c, err := ParseCurrency(tt.in)
		if (err != nil) != tt.fail {
			t.Fatalf("ParseCurrency(%q) err = %v", tt.in, err)
		}
		if err == nil && c.Exponent() != tt.exp {
			t.Errorf("%s exponent = %d, want %d", c, c.Exponent(), tt.exp)
		}
	}
}

func TestScaleAmount(t *testing.T) {
	tests := []struct {
		amount   int64
		from, to int
		want     int64
		wantErr  bool
	}{
		{50000, 0, 2, 5000000, false}, // Stripe's two-decimal IDR
		{5000000, 2, 0, 50000, false},
		{5000050, 2, 0, 0, true}, // half a rupiah is not representable
		{1999, 2, 2, 1999, false},
		{math.MaxInt64 / 10, 0, 2, 0, true},
	}
	for _, tt := range tests {
		got, err := ScaleAmount(tt.amount, tt.from, tt.to)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ScaleAmount(%d, %d, %d) = %d, %v; want %d, err=%v", tt.amount, tt.from, tt.to, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestDecimalRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		amount int64
		dec    int
		s      string
	}{{10000000, 2, "100000.00"}, {5, 2, "0.05"}, {0, 2, "0.00"}, {150000, 0, "150000"}, {1050, 2, "10.50"}} {
		if got := FormatDecimal(tt.amount, tt.dec); got != tt.s {
			t.Errorf("FormatDecimal(%d, %d) = %q, want %q", tt.amount, tt.dec, got, tt.s)
		}
		if got, err := ParseDecimal(tt.s, tt.dec); err != nil || got != tt.amount {
			t.Errorf("ParseDecimal(%q, %d) = %d, %v; want %d", tt.s, tt.dec, got, err, tt.amount)
		}
	}
	for _, bad := range []string{"", "1.", ".5", "1.005", "-1.00", "1e2", "1,00", " 1.00", "abc"} {
		if _, err := ParseDecimal(bad, 2); err == nil {
			t.Errorf("ParseDecimal(%q) accepted", bad)
		}
	}
	if got, _ := ParseDecimal("10.5", 2); got != 1050 {
		t.Errorf("ParseDecimal(10.5) = %d, want 1050", got)
	}
}

func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"1", "1999", "-1", "1.5", "1e9", `"1"`, "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseAmount([]byte(s))
		if err != nil {
			return
		}
		// Whatever is accepted is exactly the decimal integer written.
		if n <= 0 || n > MaxAmount || strconv.FormatInt(n, 10) != s {
			t.Fatalf("ParseAmount(%q) = %d", s, n)
		}
	})
}

func TestFormatMoney(t *testing.T) {
	for _, tt := range []struct {
		amount int64
		c      Currency
		want   string
	}{
		{150000, "IDR", "Rp 150.000"}, {1999, "USD", "US$19.99"}, {5, "USD", "US$0.05"}, {0, "IDR", "Rp 0"},
		{123456789, "USD", "US$1,234,567.89"}, {1000000000, "IDR", "Rp 1.000.000.000"}, {-250, "SGD", "-S$2.50"},
		{999, "IDR", "Rp 999"}, {1000, "EUR", "€10,00"},
	} {
		if got := FormatMoney(tt.amount, tt.c); got != tt.want {
			t.Errorf("FormatMoney(%d, %s) = %q, want %q", tt.amount, tt.c, got, tt.want)
		}
	}
}
