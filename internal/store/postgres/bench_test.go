package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
)

// BenchmarkRouterWritePath is the router's write path for one idempotent
// payment, with 64 writers (the bench's --concurrency 64):
// CreatePaymentClaiming (key + payment + attempt) then UpdatePaymentWith on
// the held copy, completing the key (payment + attempt + event + a 1 KB
// response). It needs PAYROUTER_TEST_POSTGRES.
func BenchmarkRouterWritePath(b *testing.B) {
	s := openFresh(b)
	ctx := context.Background()
	now := time.Now()
	body := bytes.Repeat([]byte("x"), 1024)
	var seq atomic.Int64
	b.SetParallelism(32) // 32 × GOMAXPROCS (2) writers
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("pay_%09d", seq.Add(1))
			p := &payrouter.Payment{ID: id, MerchantID: "m1", Reference: "ref_" + id, Status: payrouter.StatusProcessing,
				Amount: 1000, Currency: "USD", Method: payrouter.MethodCard, Provider: "stripe",
				Capture: payrouter.CaptureAutomatic, CreatedAt: now, UpdatedAt: now, Metadata: map[string]string{"order": id},
				Attempts: []payrouter.Attempt{{N: 1, Provider: "stripe", Status: payrouter.AttemptPending, StartedAt: now, IdempotencyKey: id + "_1"}}}
			rec, err := s.CreatePaymentClaiming(ctx, p, store.IdempotencyClaim{MerchantID: "m1", Key: id, RequestHash: "h", Now: now})
			if err != nil || rec != nil {
				b.Errorf("create = %v, %v", rec, err)
				return
			}
			_, err = s.UpdatePaymentWith(ctx, id, func(p *payrouter.Payment) error {
				p.Attempts[0].Status = payrouter.AttemptSucceeded
				p.Attempts[0].ProviderPaymentID = "pi_" + id
				_, err := p.Advance(payrouter.StatusSucceeded, now)
				return err
			}, store.UpdateOptions{Current: p, Complete: &store.IdempotencyCompletion{MerchantID: "m1", Key: id, Status: 201,
				Render: func(*payrouter.Payment) ([]byte, error) { return body, nil }}})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "payments/s")
}
