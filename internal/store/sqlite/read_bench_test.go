package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store/sqlite"
)

// BenchmarkGetPayment measures one consistent read of a payment with an
// attempt and a refund (the GET /v1/payments/{id} store cost), no writer.
func BenchmarkGetPayment(b *testing.B) {
	ctx := context.Background()
	s := open(b, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{})
	defer s.Close()
	now := time.Now()
	p := &payrouter.Payment{ID: "pay_bench", MerchantID: "m1", Status: payrouter.StatusSucceeded, Amount: 50000,
		Currency: "IDR", Method: payrouter.MethodGoPay, Reference: "ref", Provider: "midtrans", AmountCaptured: 50000,
		Capture: payrouter.CaptureAutomatic, CreatedAt: now, UpdatedAt: now,
		Attempts: []payrouter.Attempt{{N: 1, Provider: "midtrans", Status: payrouter.AttemptSucceeded, StartedAt: now, IdempotencyKey: "pay_bench_a1"}},
		Refunds:  []payrouter.Refund{{ID: "re_1", Amount: 100, Status: payrouter.RefundSucceeded, CreatedAt: now}}}
	if err := s.CreatePayment(ctx, p); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := s.GetPayment(ctx, "m1", "pay_bench"); err != nil {
			b.Fatal(err)
		}
	}
}
