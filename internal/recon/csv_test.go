package recon

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in      string
		cur     payrouter.Currency
		minor   bool
		want    int64
		wantErr bool
	}{
		{"19.99", "USD", false, 1999, false},
		{"19.9", "USD", false, 1990, false},
		{"19", "USD", false, 1900, false},
		{"0.01", "USD", false, 1, false},
		{"-5.00", "USD", false, -500, false},
		{"19.990", "USD", false, 1999, false}, // extra zero: no value lost
		{"150000", "IDR", false, 150000, false},
		{"150000.00", "IDR", false, 150000, false},
		{"92233720368547758.07", "USD", false, 0, true}, // above MaxAmount
		{"150000.50", "IDR", false, 0, true},            // would round
		{"19.999", "USD", false, 0, true},
		{"1e3", "USD", false, 0, true},
		{"1E3", "IDR", false, 0, true},
		{"+5", "USD", false, 0, true},
		{"1,000.00", "USD", false, 0, true},
		{" 5", "USD", false, 0, true},
		{".5", "USD", false, 0, true},
		{"5.", "USD", false, 0, true},
		{"", "USD", false, 0, true},
		{"-", "USD", false, 0, true},
		{"--5", "USD", false, 0, true},
		{"NaN", "USD", false, 0, true},
		{"0x10", "USD", false, 0, true},
		{"1999", "USD", true, 1999, false},
		{"-1999", "USD", true, -1999, false},
		{"19.99", "USD", true, 0, true},
		{"1e3", "USD", true, 0, true},
		{"1000000000000000001", "IDR", true, 0, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.cur)+"/"+tt.in, func(t *testing.T) {
			got, err := ParseAmount(tt.in, tt.cur, tt.minor)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseAmount(%q, %s, minor=%v) error = %v, wantErr %v", tt.in, tt.cur, tt.minor, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseAmount(%q, %s, minor=%v) = %d, want %d", tt.in, tt.cur, tt.minor, got, tt.want)
			}
		})
	}
}

func TestParseCSV(t *testing.T) {
	const header = "provider_payment_id,order_id,type,gross,fee,net,currency,settled_at\n"
	day := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	t.Run("good", func(t *testing.T) {
		in := header +
			"# a comment line\n" +
			"pi_1,,payment,19.99,0.88,19.11,USD,2026-11-02\n" +
			",pay_x_a1,refund,-5.00,0,,usd,2026-11-02T10:00:00+07:00\n" +
			",,fee,-1.50,0,-1.50,USD,2026-11-02\n" +
			"xnd_1,,payment,150000.00,4095,145905,IDR,2026-11-02\n"
		got, err := ParseCSV(strings.NewReader(in), "s.csv", "stripe", false)
		if err != nil {
			t.Fatal(err)
		}
		want := []Entry{
			{Source: "s.csv:3"}, {Source: "s.csv:4"}, {Source: "s.csv:5"}, {Source: "s.csv:6"},
		}
		want[0].Settlement.Provider, want[0].ProviderPaymentID, want[0].Type, want[0].Amount, want[0].Fee, want[0].Net, want[0].Currency, want[0].SettledAt = "stripe", "pi_1", "payment", 1999, 88, 1911, "USD", day
		want[1].Settlement.Provider, want[1].OrderID, want[1].Type, want[1].Amount, want[1].Fee, want[1].Net, want[1].Currency, want[1].SettledAt = "stripe", "pay_x_a1", "refund", -500, 0, -500, "USD", day.Add(3*time.Hour)
		want[2].Settlement.Provider, want[2].Type, want[2].Amount, want[2].Net, want[2].Currency, want[2].SettledAt = "stripe", "fee", -150, -150, "USD", day
		want[3].Settlement.Provider, want[3].ProviderPaymentID, want[3].Type, want[3].Amount, want[3].Fee, want[3].Net, want[3].Currency, want[3].SettledAt = "stripe", "xnd_1", "payment", 150000, 4095, 145905, "IDR", day
		if len(got) != len(want) {
			t.Fatalf("got %d entries, want %d: %+v", len(got), len(want), got)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("entry %d:\n got %+v\nwant %+v", i, got[i], want[i])
			}
		}
	})
	t.Run("minor units", func(t *testing.T) {
		got, err := ParseCSV(strings.NewReader(header+"pi_1,,payment,1999,88,,USD,2026-11-02\n"), "m.csv", "stripe", true)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Amount != 1999 || got[0].Fee != 88 || got[0].Net != 1911 {
			t.Errorf("got %+v, want amount 1999 fee 88 net 1911", got)
		}
	})
	bad := []struct {
		name, in, want string
	}{
		{"empty file", "", "f.csv: empty file"},
		{"missing column", "provider_payment_id,type,currency,settled_at\n", "f.csv:1: missing column \"gross\""},
		{"no id column", "type,gross,currency,settled_at\n", "f.csv:1: need a provider_payment_id or order_id"},
		{"float in disguise", header + "pi_1,,payment,1e3,0,,USD,2026-11-02\n", "f.csv:2: gross: \"1e3\""},
		{"too many decimals", header + "pi_1,,payment,1.999,0,,USD,2026-11-02\n", "f.csv:2: gross:"},
		{"bad fee", header + "pi_1,,payment,1.99,0.1.2,,USD,2026-11-02\n", "f.csv:2: fee:"},
		{"net not gross-fee", header + "pi_1,,payment,19.99,0.88,19.00,USD,2026-11-02\n", "f.csv:2: net:"},
		{"positive refund", header + "pi_1,,refund,5.00,0,,USD,2026-11-02\n", "f.csv:2: gross: a refund is money out"},
		{"negative payment", header + "pi_1,,payment,-5.00,0,,USD,2026-11-02\n", "f.csv:2: gross: a payment must be positive"},
		{"unknown type", header + "pi_1,,reversal,5.00,0,,USD,2026-11-02\n", "f.csv:2: type:"},
		{"positive chargeback", header + "pi_1,,chargeback,5.00,0,,USD,2026-11-02\n", "f.csv:2: gross: a chargeback is money out"},
		{"unknown currency", header + "pi_1,,payment,5.00,0,,XXX,2026-11-02\n", "f.csv:2: currency:"},
		{"bad time", header + "pi_1,,payment,5.00,0,,USD,02/11/2026\n", "f.csv:2: settled_at:"},
		{"no id", header + ",,payment,5.00,0,,USD,2026-11-02\n", "f.csv:2: a payment row needs"},
		{"short row", header + "pi_ok,,payment,5.00,0,,USD,2026-11-02\npi_1,payment\n", "f.csv:3:"},
		{"line after comment", header + "# c\n# c\npi_1,,payment,x,0,,USD,2026-11-02\n", "f.csv:4: gross:"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCSV(strings.NewReader(tt.in), "f.csv", "stripe", false)
			if err == nil {
				t.Fatalf("got %+v, want error starting %q", got, tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %q, want prefix %q", err, tt.want)
			}
		})
	}
}

func TestCommandUsageErrors(t *testing.T) {
	deps := Deps{Open: func(context.Context, string, string) (*Env, func(), error) {
		return &Env{Configured: []string{"midtrans"}, Listers: map[string]providers.SettlementLister{}}, func() {}, nil
	}}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad from", []string{"--from", "yesterday"}, "--from:"},
		{"from after to", []string{"--from", "1h", "--to", "2h"}, "is not before"},
		{"bad settlements", []string{"--settlements", "stripe"}, "want provider=file.csv"},
		{"settlements twice", []string{"--settlements", "a=x.csv", "--settlements", "a=y.csv"}, "given twice"},
		{"negative tolerance", []string{"--tolerance", "-1"}, "must not be negative"},
		{"no source", []string{"--provider", "midtrans"}, "midtrans: no settlement source"},
		{"default run names the provider without a source", nil, "midtrans: no settlement source"},
		{"unknown provider", []string{"--provider", "paypal"}, "not a configured provider"},
		{"missing file", []string{"--settlements", "midtrans=/nonexistent.csv"}, "/nonexistent.csv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Command(context.Background(), tt.args, &stdout, &stderr, deps); code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tt.want)
			}
		})
	}
}
