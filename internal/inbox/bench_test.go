package inbox_test

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payrouter/payrouter/internal/cpustat"
	"github.com/payrouter/payrouter/internal/inbox"
	"github.com/payrouter/payrouter/internal/store/sqlite"
	"github.com/payrouter/payrouter/providers/stripe"
	"github.com/payrouter/payrouter/router"
)

// BenchmarkWebhookIngest measures verified webhook ingestion on the
// embedded store: Stripe signature verification (stripe-go), the durable
// inbox insert with dedup, and applying the notification (find the
// payment, move it requires_action → succeeded with its payment_success
// event, mark the inbox item done), for b.N distinct webhooks of b.N
// existing payments, from many concurrent senders. sync=full is the
// shipped durability (every commit synced); sync=off shows what the
// fsyncs cost. Run:
//
//	go test ./internal/inbox -run '^$' -bench WebhookIngest -benchtime 20000x
func BenchmarkWebhookIngest(b *testing.B) {
	for _, mode := range []string{"full", "off"} {
		b.Run("sync="+mode, func(b *testing.B) { benchIngest(b, mode) })
	}
}

func benchIngest(b *testing.B, mode string) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "p.db")

	// Payments are created unsynced (setup, not measured), then the store
	// is reopened with the durability under test.
	setup, err := sqlite.Open(ctx, path, sqlite.Options{Synchronous: "off"})
	if err != nil {
		b.Fatal(err)
	}
	type hook struct {
		body []byte
		h    map[string][]string
	}
	hooks := make([]hook, b.N)
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				p := waitingPayment(b, setup, i)
				body, h := stripeEvent(b, propSecret, fmt.Sprintf("evt_bench_%08d", i), p, "succeeded", time.Now())
				hooks[i] = hook{body, h}
			}
		}()
	}
	wg.Wait()
	setup.Close()

	st, err := sqlite.Open(ctx, path, sqlite.Options{Synchronous: mode})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	parser, err := stripe.New(stripe.Config{Name: "stripe", SecretKey: "sk_test_x", WebhookSecret: propSecret})
	if err != nil {
		b.Fatal(err)
	}
	in := inbox.New(st, router.New(st, nil, nil, router.Options{}, nil), map[string]inbox.Source{"stripe": {Parser: parser}}, nil)

	var idx, failed atomic.Int64
	b.SetParallelism(64) // many providers' deliveries in flight, as in production
	b.ResetTimer()
	cpu0 := cpustat.Process()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			hk := hooks[idx.Add(1)-1]
			if res, err := in.Receive(ctx, "stripe", netip.Addr{}, hk.h, hk.body); err != nil || res.Outcome != router.OutcomeApplied {
				failed.Add(1)
			}
		}
	})
	b.StopTimer()
	cpu := cpustat.Process() - cpu0
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d webhooks not applied", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "webhooks/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/webhook")
}
