package inbox_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/inbox"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/internal/store/sqlite"
	"github.com/payrouter/payrouter/providers/stripe"
	"github.com/payrouter/payrouter/router"
)

const propSecret = "whsec_property"

// pipeline is the webhook path without HTTP: the real Stripe parser
// (signature check), the inbox (dedup, durable store) and the router's
// ApplyNotification, on a real SQLite store.
func pipeline(tb testing.TB, sync string) (*inbox.Inbox, *sqlite.Store) {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "p.db"), sqlite.Options{Synchronous: sync})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	parser, err := stripe.New(stripe.Config{Name: "stripe", SecretKey: "sk_test_x", WebhookSecret: propSecret})
	if err != nil {
		tb.Fatal(err)
	}
	r := router.New(st, nil, nil, router.Options{}, nil)
	return inbox.New(st, r, map[string]inbox.Source{"stripe": {Parser: parser}}, nil), st
}

// waitingPayment stores a card payment waiting for 3-D Secure at Stripe,
// as the router leaves it: one attempt, one payment_requires_action event.
func waitingPayment(tb testing.TB, st store.Store, i int) *payrouter.Payment {
	tb.Helper()
	now := time.Now().UTC()
	id := fmt.Sprintf("pay_prop_%06d", i)
	pi := fmt.Sprintf("pi_prop_%06d", i)
	p := &payrouter.Payment{ID: id, MerchantID: "demo", Status: payrouter.StatusProcessing, Amount: 1999, Currency: "USD",
		Method: payrouter.MethodCard, Reference: id, Capture: payrouter.CaptureAutomatic, Provider: "stripe", ProviderPaymentID: pi,
		Attempts: []payrouter.Attempt{{N: 1, Provider: "stripe", ProviderPaymentID: pi, Status: payrouter.AttemptRequiresAction,
			StartedAt: now, IdempotencyKey: payrouter.AttemptKey(id, 1)}},
		CreatedAt: now, UpdatedAt: now}
	if _, err := p.Advance(payrouter.StatusRequiresAction, now); err != nil {
		tb.Fatal(err)
	}
	if err := st.CreatePayment(context.Background(), p); err != nil {
		tb.Fatal(err)
	}
	return p
}

// finals are the provider's possible final states: the PaymentIntent
// status, and what payrouter must end with.
var finals = []struct {
	pi     string
	status payrouter.Status
	event  payrouter.EventType
}{
	{"succeeded", payrouter.StatusSucceeded, payrouter.EventSuccess},
	{"requires_payment_method", payrouter.StatusFailed, payrouter.EventFailed},
	{"canceled", payrouter.StatusCanceled, payrouter.EventFailed},
	{"abandoned", payrouter.StatusExpired, payrouter.EventFailed},
}

type delivery struct {
	body []byte
	h    http.Header
}

// TestWebhookInterleavings: for many payments, the provider's history
// (requires_action, maybe processing, then a final state) is sent as
// webhooks duplicated (some re-signed, as Stripe's retries are), reordered
// across and within payments, late, and applied concurrently. Every payment
// must end in the provider's final state with exactly one terminal event of
// the matching type; a success is never an anomaly.
func TestWebhookInterleavings(t *testing.T) {
	rounds, payments := 5, 150
	if testing.Short() {
		rounds, payments = 2, 50
	}
	for round := range rounds {
		seed := uint64(time.Now().UnixNano()) + uint64(round)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
			in, st := pipeline(t, "off") // durability is not under test here
			now := time.Now()
			type want struct {
				p     *payrouter.Payment
				final int
			}
			var wants []want
			var queue []delivery
			distinct := 0
			for i := range payments {
				p := waitingPayment(t, st, i)
				f := rng.IntN(len(finals))
				wants = append(wants, want{p, f})
				history := []string{"requires_action"}
				if rng.IntN(2) == 0 {
					history = append(history, "processing")
				}
				history = append(history, finals[f].pi)
				for j, status := range history {
					evt := fmt.Sprintf("evt_%s_%d", p.ID, j)
					distinct++
					// 1 to 3 deliveries of each event, some re-signed later.
					for k := range 1 + rng.IntN(3) {
						ts := now.Add(time.Duration(j*10+k) * time.Second)
						body, h := stripeEvent(t, propSecret, evt, p, status, ts)
						queue = append(queue, delivery{body, h})
					}
				}
			}
			rng.Shuffle(len(queue), func(i, j int) { queue[i], queue[j] = queue[j], queue[i] })

			var wg sync.WaitGroup
			work := make(chan delivery)
			errs := make(chan string, len(queue))
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for d := range work {
						res, err := in.Receive(ctx, "stripe", netip.Addr{}, d.h, d.body)
						if err != nil || res.Outcome == inbox.OutcomeQueued {
							errs <- fmt.Sprintf("Receive: %s %v", res.Outcome, err)
						}
					}
				}()
			}
			for _, d := range queue {
				work <- d
			}
			close(work)
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Fatal(e)
			}
			if got, want := in.Received.Load(), int64(distinct); got != want {
				t.Errorf("inbox stored %d webhooks, want %d distinct", got, want)
			}

			terminal := map[string][]payrouter.EventType{}
			var after int64
			for {
				evs, err := st.ListEvents(ctx, "", after, 1000)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range evs {
					if e.Type == payrouter.EventSuccess || e.Type == payrouter.EventFailed {
						terminal[e.PaymentID] = append(terminal[e.PaymentID], e.Type)
					}
					after = e.Seq
				}
				if len(evs) < 1000 {
					break
				}
			}
			for _, w := range wants {
				f := finals[w.final]
				got, err := st.GetPayment(ctx, "", w.p.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != f.status {
					t.Errorf("%s: status %s, want %s (provider ended %s)", w.p.ID, got.Status, f.status, f.pi)
				}
				if ts := terminal[w.p.ID]; len(ts) != 1 || ts[0] != f.event {
					t.Errorf("%s: terminal events %v, want exactly [%s]", w.p.ID, ts, f.event)
				}
			}
			// A success is never an anomaly here (nothing failed before it in
			// any history). A pending webhook arriving after a failure is
			// stale, yet the domain (status.go checkTransition) records it as
			// an impossible transition: reported to the lead, counted here.
			an, err := st.ListAnomalies(ctx, 10000)
			if err != nil {
				t.Fatal(err)
			}
			finalOf := map[string]int{}
			for _, w := range wants {
				finalOf[w.p.ID] = w.final
			}
			latePending := 0
			for _, a := range an {
				if finals[finalOf[a.PaymentID]].status == payrouter.StatusSucceeded || a.Kind != store.AnomalyTransition {
					t.Errorf("unexpected anomaly: %+v", a)
					continue
				}
				latePending++
			}
			t.Logf("%d payments, %d webhooks (%d distinct); %d late pending-after-failure webhooks recorded as anomalies",
				payments, len(queue), distinct, latePending)
		})
	}
}
