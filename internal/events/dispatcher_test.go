package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/events"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/internal/store/sqlite"
	"github.com/payrouter/payrouter/webhooksig"
)

func openStore(tb testing.TB) *sqlite.Store {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "p.db"), sqlite.Options{Synchronous: "off"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// pay creates a payment of merchant that ends succeeded: two events
// (payment_requires_action, payment_success).
func pay(tb testing.TB, st store.Store, merchant string, n int) *payrouter.Payment {
	tb.Helper()
	now := time.Now().UTC()
	p := &payrouter.Payment{ID: fmt.Sprintf("pay_%s_%d", merchant, n), MerchantID: merchant, Status: payrouter.StatusProcessing,
		Amount: 1999, Currency: "USD", Method: payrouter.MethodCard, Reference: fmt.Sprintf("ref-%d", n),
		Capture: payrouter.CaptureAutomatic, CreatedAt: now, UpdatedAt: now}
	if _, err := p.Advance(payrouter.StatusRequiresAction, now); err != nil {
		tb.Fatal(err)
	}
	if err := st.CreatePayment(context.Background(), p); err != nil {
		tb.Fatal(err)
	}
	got, err := st.UpdatePayment(context.Background(), p.ID, func(p *payrouter.Payment) error {
		_, err := p.Advance(payrouter.StatusSucceeded, now)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return got
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// merchant is a webhook endpoint that fails its first failFor requests
// with 503, then verifies and records every webhook.
type merchant struct {
	secret  string
	failFor int64
	calls   atomic.Int64
	mu      sync.Mutex
	got     []payrouter.Event
	bad     []string // signature errors
	clk     *clock
}

func (m *merchant) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := m.calls.Add(1)
	if n <= m.failFor {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	body, _ := io.ReadAll(r.Body)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := webhooksig.Verify(r.Header.Get(webhooksig.Header), body, m.secret, time.Minute, m.clk.Now()); err != nil {
		m.bad = append(m.bad, err.Error())
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var e payrouter.Event
	if err := json.Unmarshal(body, &e); err != nil || r.Header.Get("Payrouter-Event-Id") != e.ID {
		m.bad = append(m.bad, fmt.Sprintf("body %s: %v", body, err))
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	m.got = append(m.got, e)
	w.WriteHeader(http.StatusNoContent)
}

func (m *merchant) received() []payrouter.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]payrouter.Event(nil), m.got...)
}

// maxJitter makes backoff deterministic: always the ceiling.
func maxJitter(d time.Duration) time.Duration { return d }

func TestDeliveredAfterEndpointComesBack(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clk := &clock{t: time.Now().Truncate(time.Second)}
	m := &merchant{secret: "whsec_m1", failFor: 5, clk: clk}
	srv := httptest.NewServer(m)
	defer srv.Close()
	p := pay(t, st, "m1", 1)
	pay(t, st, "m2", 2) // m2 has no webhook_url: pulled only, never POSTed

	d := events.NewDispatcher(st, events.Options{
		Endpoints: map[string]events.Endpoint{"m1": {URL: srv.URL, Secret: "whsec_m1"}},
		BaseDelay: 10 * time.Second, MaxDelay: time.Hour, Now: clk.Now, Jitter: maxJitter,
	})
	if n, err := d.Feed(ctx); err != nil || n != 2 {
		t.Fatalf("Feed = %d, %v; want 2 deliveries (m1's two events)", n, err)
	}
	// The endpoint is down for 5 requests: 2 now, then 3 more over the retries.
	var waits []time.Duration
	for round := 0; len(m.received()) < 2; round++ {
		if round > 20 {
			t.Fatalf("not delivered after %d rounds; merchant saw %d calls", round, m.calls.Load())
		}
		if _, err := d.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		ds, _ := st.ListDeliveries(ctx, store.DeliveryFilter{Status: store.DeliveryPending})
		if len(ds) == 0 {
			continue
		}
		wait := ds[0].NextAt.Sub(clk.Now())
		waits = append(waits, wait)
		clk.Add(wait)
	}
	// Full jitter at its ceiling: 10s, 20s, 40s … per delivery.
	if len(waits) < 2 || waits[0] != 10*time.Second || waits[1] != 20*time.Second {
		t.Errorf("waits between rounds = %v, want 10s, 20s, …", waits)
	}
	got := m.received()
	if len(m.bad) > 0 {
		t.Fatalf("merchant refused webhooks: %v", m.bad)
	}
	evs, _ := st.ListEvents(ctx, "m1", 0, 10)
	for i, e := range evs {
		var found *payrouter.Event
		for j := range got {
			if got[j].ID == e.ID {
				found = &got[j]
			}
		}
		if found == nil {
			t.Errorf("event %s (%s) never delivered", e.ID, e.Type)
			continue
		}
		if found.Type != e.Type || found.PaymentID != p.ID || string(found.Data) != string(e.Data) {
			t.Errorf("event %d delivered as %+v, want %+v", i, found, e)
		}
		dl, err := st.GetDelivery(ctx, "m1", e.Seq)
		if err != nil || dl.Status != store.DeliveryDelivered || dl.DeliveredAt == nil || dl.LastStatus != 204 {
			t.Errorf("delivery of %s = %+v, %v; want delivered with 204", e.ID, dl, err)
		}
	}
	if n := m.calls.Load(); n != 7 {
		t.Errorf("merchant saw %d calls, want 7 (5 refused + 2 delivered)", n)
	}
	// Nothing more to do, and a second dispatcher on the same store queues
	// nothing again (the cursor is in the store).
	d2 := events.NewDispatcher(st, events.Options{Endpoints: map[string]events.Endpoint{"m1": {URL: srv.URL, Secret: "whsec_m1"}}, Now: clk.Now})
	if n, err := d2.Feed(ctx); n != 0 || err != nil {
		t.Errorf("Feed after restart = %d, %v; want 0", n, err)
	}
	clk.Add(48 * time.Hour)
	if n, err := d2.DeliverDue(ctx); n != 0 || err != nil {
		t.Errorf("DeliverDue after everything was delivered = %d, %v", n, err)
	}
}

func TestDeadLetterAfterRetryWindowThenRedeliver(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: start}
	m := &merchant{secret: "s", failFor: 1 << 40, clk: clk} // down for good
	srv := httptest.NewServer(m)
	defer srv.Close()
	pay(t, st, "m1", 1)
	ep := map[string]events.Endpoint{"m1": {URL: srv.URL, Secret: "s"}}
	d := events.NewDispatcher(st, events.Options{Endpoints: ep, RetryFor: 24 * time.Hour, Now: clk.Now, Jitter: maxJitter})
	if _, err := d.Feed(ctx); err != nil {
		t.Fatal(err)
	}
	evs, _ := st.ListEvents(ctx, "", 0, 10)
	seq := evs[0].Seq
	var attemptsAt []time.Time
	for i := 0; ; i++ {
		if i > 100 {
			t.Fatal("never dead-lettered")
		}
		before := m.calls.Load()
		if _, err := d.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		if m.calls.Load() > before {
			attemptsAt = append(attemptsAt, clk.Now())
		}
		dl, err := st.GetDelivery(ctx, "", seq)
		if err != nil {
			t.Fatal(err)
		}
		if dl.Status == store.DeliveryDead {
			if dl.LastStatus != 503 || dl.LastError != "HTTP 503" || dl.Attempts != len(attemptsAt) {
				t.Errorf("dead delivery = %+v, want last 503 and %d attempts", dl, len(attemptsAt))
			}
			break
		}
		if dl.Status != store.DeliveryPending {
			t.Fatalf("status %s before the window ended", dl.Status)
		}
		clk.t = dl.NextAt
	}
	first, last := attemptsAt[0], attemptsAt[len(attemptsAt)-1]
	if span := last.Sub(first); span < 24*time.Hour {
		t.Errorf("retried for %s, want at least 24h", span)
	}
	for i := 1; i < len(attemptsAt); i++ {
		if gap := attemptsAt[i].Sub(attemptsAt[i-1]); gap > time.Hour {
			t.Errorf("gap %d between attempts = %s, want at most MaxDelay (1h)", i, gap)
		}
	}

	// The merchant is fixed; the dead letter is redelivered on request.
	if _, err := d.Redeliver(ctx, "m2", seq); !isAPIError(err, payrouter.ErrNotFound) {
		t.Errorf("Redeliver of another merchant's event: %v, want not_found", err)
	}
	dl, err := d.Redeliver(ctx, "m1", seq)
	if err != nil || dl.Status != store.DeliveryPending || dl.Attempts != 0 {
		t.Fatalf("Redeliver = %+v, %v", dl, err)
	}
	m.calls.Store(1 << 41) // past failFor: the endpoint answers now
	if n, err := d.DeliverDue(ctx); n != 1 || err != nil {
		t.Fatalf("DeliverDue after redeliver = %d, %v; want 1", n, err)
	}
	if got := m.received(); len(got) != 1 || got[0].Seq != 0 || got[0].ID != payrouter.EventID(seq) {
		t.Errorf("merchant received %+v, want event %d", got, seq)
	}
}

func TestMerchantWithoutWebhookURL(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	pay(t, st, "m2", 1)
	d := events.NewDispatcher(st, events.Options{})
	if n, err := d.Feed(ctx); n != 0 || err != nil {
		t.Fatalf("Feed = %d, %v; want nothing queued", n, err)
	}
	if c, _ := st.Cursor(ctx, events.WebhookCursor); c != 2 {
		t.Errorf("cursor = %d, want 2: events without a webhook_url are passed", c)
	}
	_, err := d.Redeliver(ctx, "m2", 1)
	var pe *payrouter.Error
	if !errors.As(err, &pe) || pe.Type != payrouter.ErrInvalidState || pe.Code != "webhook_url_missing" {
		t.Errorf("Redeliver without webhook_url = %v, want invalid_state webhook_url_missing", err)
	}
	if _, err := d.Redeliver(ctx, "", 99); !isAPIError(err, payrouter.ErrNotFound) {
		t.Errorf("Redeliver(missing event) = %v, want not_found", err)
	}
}

// A redirect is a failed attempt: following it would turn the POST into a
// GET to wherever it points.
func TestRedirectIsAFailure(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	srv := httptest.NewServer(http.RedirectHandler("http://example.invalid/", http.StatusFound))
	defer srv.Close()
	pay(t, st, "m1", 1)
	d := events.NewDispatcher(st, events.Options{Endpoints: map[string]events.Endpoint{"m1": {URL: srv.URL, Secret: "s"}}, Batch: 1})
	if _, err := d.Feed(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := d.DeliverDue(ctx); n != 0 || err != nil {
		t.Fatalf("DeliverDue = %d, %v", n, err)
	}
	dl, _ := st.GetDelivery(ctx, "", 1)
	if dl.Status != store.DeliveryPending || dl.LastStatus != 302 || dl.Attempts != 1 {
		t.Errorf("delivery after a redirect = %+v, want pending, 302, 1 attempt", dl)
	}
}

func isAPIError(err error, typ payrouter.ErrorType) bool {
	var pe *payrouter.Error
	return errors.As(err, &pe) && pe.Type == typ
}
