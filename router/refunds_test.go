package router

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/internal/store/sqlite"
	"github.com/payrouter/payrouter/providers"
)

// resolveRefunder is a provider that keeps a ledger of refunds keyed by refund id
// (the provider's duplicate guard), so a resend never refunds twice, and
// can lose the answer after refunding, refuse before, or turn refunds
// into failures.
type resolveRefunder struct {
	mu      sync.Mutex
	held    map[string]payrouter.RefundStatus // refund id → state at the provider
	amounts map[string]int64
	calls   int  // Refund calls that reached the provider
	drop    bool // refund, then lose the answer
	down    bool // refuse refunds before doing anything
	qdown   bool // refuse status queries
	failing bool // refunds end failed at the provider
	// acceptOnly answers pending with an id and lists nothing yet (a
	// provider still processing the refund)
	acceptOnly bool
	statuses   int // RefundStatus calls
}

func newRefunder() *resolveRefunder {
	return &resolveRefunder{held: map[string]payrouter.RefundStatus{}, amounts: map[string]int64{}}
}

var _ providers.Provider = (*resolveRefunder)(nil)

func (f *resolveRefunder) Capabilities() providers.Capabilities {
	return providers.Capabilities{Methods: map[payrouter.Method][]payrouter.Currency{payrouter.MethodCard: {"IDR"}}, Refund: true, PartialRefund: true}
}
func (f *resolveRefunder) Authorize(context.Context, *providers.AuthorizeRequest) (*providers.Result, error) {
	return nil, providers.Unsupported("unused")
}
func (f *resolveRefunder) Capture(context.Context, *providers.CaptureRequest) (*providers.Result, error) {
	return nil, providers.Unsupported("unused")
}
func (f *resolveRefunder) Cancel(context.Context, *providers.CancelRequest) (*providers.Result, error) {
	return nil, providers.Unsupported("unused")
}

func (f *resolveRefunder) Refund(_ context.Context, req *providers.RefundRequest) (*providers.RefundResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, &providers.Error{Class: providers.Unavailable, Code: "service_unavailable"}
	}
	f.calls++
	if f.acceptOnly {
		return &providers.RefundResult{ProviderRefundID: "prv_" + req.RefundID, Status: payrouter.RefundPending}, nil
	}
	if req.IdempotencyKey != req.RefundID {
		return nil, providers.Errorf(providers.Invalid, "bad_key", "idempotency key %q is not the refund id %q", req.IdempotencyKey, req.RefundID)
	}
	if _, ok := f.held[req.RefundID]; !ok {
		st := payrouter.RefundSucceeded
		if f.failing {
			st = payrouter.RefundFailed
		}
		f.held[req.RefundID], f.amounts[req.RefundID] = st, req.Amount
	}
	if f.drop {
		return nil, &providers.Error{Class: providers.Ambiguous, Code: "connection_reset"}
	}
	return &providers.RefundResult{ProviderRefundID: "prv_" + req.RefundID, Status: f.held[req.RefundID]}, nil
}

// refunded is the money the provider moved back to the customer.
func (f *resolveRefunder) refunded() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for id, st := range f.held {
		if st == payrouter.RefundSucceeded {
			n += f.amounts[id]
		}
	}
	return n
}

func (f *resolveRefunder) refundCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// queryingRefunder also answers refund status queries.
type queryingRefunder struct{ *resolveRefunder }

var _ providers.RefundStatusChecker = queryingRefunder{}

func (f queryingRefunder) RefundStatus(_ context.Context, req *providers.RefundStatusRequest) (*providers.RefundResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses++
	if f.qdown {
		return nil, &providers.Error{Class: providers.Unavailable, Code: "service_unavailable"}
	}
	st, ok := f.held[req.RefundID]
	if !ok {
		return nil, providers.Errorf(providers.Invalid, "not_found", "no such refund")
	}
	return &providers.RefundResult{ProviderRefundID: "prv_" + req.RefundID, Status: st}, nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type refundEnv struct {
	r   *Router
	st  store.Store
	clk *clock
	p   *payrouter.Payment
}

// newRefundEnv is a router over a SQLite store with one captured payment
// of 100000 IDR at the provider p.
func newRefundEnv(t *testing.T, p providers.Provider) *refundEnv {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "p.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	g := Guard("fake", p, time.Second, BreakerSettings{FailureRatio: 1, MinRequests: 1000, OpenFor: time.Minute, HalfOpenProbes: 1}, nil)
	r := New(st, nil, map[string]*Guarded{"fake": g}, Options{Deadline: time.Second, ResolveBackoff: time.Second}, nil)
	r.SetClock(clk.now)
	now := clk.now()
	pay := &payrouter.Payment{ID: NewID("pay_"), MerchantID: "m1", Status: payrouter.StatusSucceeded, Amount: 100000, Currency: "IDR",
		Method: payrouter.MethodCard, Reference: "ref-1", Capture: payrouter.CaptureAutomatic, Provider: "fake", ProviderPaymentID: "prv_pay_1",
		AmountCaptured: 100000, CreatedAt: now, UpdatedAt: now}
	pay.Attempts = []payrouter.Attempt{{N: 1, Provider: "fake", ProviderPaymentID: "prv_pay_1", Status: payrouter.AttemptSucceeded,
		StartedAt: now, IdempotencyKey: payrouter.AttemptKey(pay.ID, 1)}}
	if err := st.CreatePayment(context.Background(), pay); err != nil {
		t.Fatal(err)
	}
	return &refundEnv{r: r, st: st, clk: clk, p: pay}
}

func (e *refundEnv) refund(t *testing.T, amount int64) payrouter.Refund {
	t.Helper()
	_, rf, err := e.r.Refund(context.Background(), "m1", e.p.ID, amount, "requested_by_customer")
	if err != nil {
		t.Fatalf("Refund: %v", err)
	}
	return *rf
}

// resolve runs one resolver pass at the current clock.
func (e *refundEnv) resolve(t *testing.T) {
	t.Helper()
	if _, err := e.r.ResolveDue(context.Background()); err != nil {
		t.Fatalf("ResolveDue: %v", err)
	}
}

func (e *refundEnv) payment(t *testing.T) *payrouter.Payment {
	t.Helper()
	p, err := e.st.GetPayment(context.Background(), "m1", e.p.ID)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (e *refundEnv) refundOf(t *testing.T, id string) payrouter.Refund {
	t.Helper()
	for _, rf := range e.payment(t).Refunds {
		if rf.ID == id {
			return rf
		}
	}
	t.Fatalf("payment has no refund %s", id)
	return payrouter.Refund{}
}

// events counts the payment's events by type.
func (e *refundEnv) events(t *testing.T) map[payrouter.EventType]int {
	t.Helper()
	evs, err := e.st.ListEvents(context.Background(), "m1", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[payrouter.EventType]int{}
	for _, ev := range evs {
		if ev.PaymentID == e.p.ID {
			out[ev.Type]++
		}
	}
	return out
}

// pastInFlight moves the clock beyond the first call's deadline.
func (e *refundEnv) pastInFlight() { e.clk.advance(time.Second + inFlightGrace + time.Millisecond) }

func TestRefundLostAnswerSettledByStatusQuery(t *testing.T) {
	f := newRefunder()
	e := newRefundEnv(t, queryingRefunder{f})
	f.drop = true
	rf := e.refund(t, 30000)
	if rf.Status != payrouter.RefundPending {
		t.Fatalf("refund with its answer lost = %s, want pending", rf.Status)
	}
	if got := e.payment(t).Refundable(); got != 70000 {
		t.Errorf("Refundable while pending = %d, want 70000 (the refund's amount held)", got)
	}
	f.drop = false
	// The call may still be running: the resolver does not ask yet.
	e.resolve(t)
	if f.statuses != 0 || e.refundOf(t, rf.ID).Status != payrouter.RefundPending {
		t.Fatalf("resolver acted inside the call's deadline: %d queries, refund %s", f.statuses, e.refundOf(t, rf.ID).Status)
	}
	e.pastInFlight()
	e.resolve(t)
	got := e.refundOf(t, rf.ID)
	if got.Status != payrouter.RefundSucceeded || got.ProviderRefundID != "prv_"+rf.ID {
		t.Fatalf("refund after the resolver = %+v, want succeeded with the provider's id", got)
	}
	p := e.payment(t)
	if p.Status != payrouter.StatusPartiallyRefunded || p.AmountRefunded != 30000 || p.ResolveAt != nil {
		t.Errorf("payment = %s refunded %d resolve_at %v, want partially_refunded 30000 and off the queue", p.Status, p.AmountRefunded, p.ResolveAt)
	}
	e.clk.advance(time.Hour)
	e.resolve(t)
	if ev := e.events(t); ev[payrouter.EventRefundSuccess] != 1 || ev[payrouter.EventRefundFailed] != 0 {
		t.Errorf("events = %v, want one refund_success", ev)
	}
	if f.refundCalls() != 1 || f.refunded() != 30000 {
		t.Errorf("provider: %d refund calls, %d refunded; want 1 call, 30000 (found by query, not resent)", f.refundCalls(), f.refunded())
	}
}

// The router died between writing the refund and calling the provider: the
// resolver finds the refund unknown to the provider and sends it, under
// its own id as the keys.
func TestRefundWrittenButNeverSentIsSent(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    func(*resolveRefunder) providers.Provider
	}{
		{"with status query", func(f *resolveRefunder) providers.Provider { return queryingRefunder{f} }},
		{"without status query", func(f *resolveRefunder) providers.Provider { return f }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newRefunder()
			e := newRefundEnv(t, tt.p(f))
			id := NewID("re_")
			_, err := e.st.UpdatePayment(context.Background(), e.p.ID, func(q *payrouter.Payment) error {
				now := e.clk.now()
				q.Refunds = append(q.Refunds, payrouter.Refund{ID: id, Amount: 100000, Status: payrouter.RefundPending, CreatedAt: now})
				q.ResolveAt = e.r.nextResolve(q, now) // what Router.Refund writes before its call
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			e.pastInFlight()
			e.resolve(t)
			if got := e.refundOf(t, id); got.Status != payrouter.RefundSucceeded {
				t.Fatalf("refund = %+v, want succeeded", got)
			}
			e.pastInFlight()
			e.resolve(t)
			if p := e.payment(t); p.Status != payrouter.StatusRefunded || p.ResolveAt != nil {
				t.Errorf("payment %s resolve_at %v, want refunded, off the queue", p.Status, p.ResolveAt)
			}
			if f.refundCalls() != 1 || f.refunded() != 100000 {
				t.Errorf("provider: %d calls, %d refunded; want 1 call, 100000", f.refundCalls(), f.refunded())
			}
			if ev := e.events(t); ev[payrouter.EventRefundSuccess] != 1 {
				t.Errorf("events = %v, want one refund_success", ev)
			}
		})
	}
}

// A refund that fails at the provider ends failed with one refund_failed
// and releases its amount: a later full refund gets all of it.
func TestRefundFailedAtProviderReleasesAmount(t *testing.T) {
	f := newRefunder()
	e := newRefundEnv(t, queryingRefunder{f})
	f.drop, f.failing = true, true
	rf := e.refund(t, 60000)
	if got := e.payment(t).Refundable(); got != 40000 {
		t.Fatalf("Refundable while pending = %d, want 40000", got)
	}
	f.drop, f.failing = false, false
	e.pastInFlight()
	e.resolve(t)
	got := e.refundOf(t, rf.ID)
	if got.Status != payrouter.RefundFailed || got.FailureCode == "" {
		t.Fatalf("refund = %+v, want failed with a code", got)
	}
	if left := e.payment(t).Refundable(); left != 100000 {
		t.Errorf("Refundable after the failure = %d, want 100000 (released)", left)
	}
	full := e.refund(t, 0)
	if full.Amount != 100000 || full.Status != payrouter.RefundSucceeded {
		t.Errorf("full refund after the failure = %+v, want 100000 succeeded", full)
	}
	e.pastInFlight()
	e.resolve(t)
	if ev := e.events(t); ev[payrouter.EventRefundFailed] != 1 || ev[payrouter.EventRefundSuccess] != 1 {
		t.Errorf("events = %v, want one refund_failed and one refund_success", ev)
	}
	if f.refunded() != 100000 {
		t.Errorf("provider refunded %d, want 100000", f.refunded())
	}
}

// Without a status query the resolver resends within the key's window (the
// provider answers with the first outcome); past it the refund stays
// queued, backing off, until the provider's webhook settles it.
func TestRefundWithoutStatusQuery(t *testing.T) {
	t.Run("resend within the window", func(t *testing.T) {
		f := newRefunder()
		e := newRefundEnv(t, f)
		f.drop = true
		rf := e.refund(t, 25000)
		f.drop = false
		e.pastInFlight()
		e.resolve(t)
		if got := e.refundOf(t, rf.ID); got.Status != payrouter.RefundSucceeded {
			t.Fatalf("refund = %+v, want succeeded", got)
		}
		if f.refundCalls() != 2 || f.refunded() != 25000 {
			t.Errorf("provider: %d calls, %d refunded; want 2 calls (first + resend), 25000 once", f.refundCalls(), f.refunded())
		}
		if ev := e.events(t); ev[payrouter.EventRefundSuccess] != 1 {
			t.Errorf("events = %v, want one refund_success", ev)
		}
	})
	t.Run("past the window waits for the webhook", func(t *testing.T) {
		f := newRefunder()
		e := newRefundEnv(t, f)
		f.drop = true
		rf := e.refund(t, 25000)
		f.drop, f.down = false, true // every resend is refused before the provider acts
		var last time.Time
		for range 8 {
			e.clk.advance(2 * time.Hour)
			e.resolve(t)
			p := e.payment(t)
			if p.ResolveAt == nil {
				t.Fatal("pending refund dropped off the resolver's queue")
			}
			if d := p.ResolveAt.Sub(e.clk.now()); d <= 0 || d > 10*time.Minute {
				t.Errorf("next look in %v, want a backoff within (0, 10m]", d)
			}
			last = *p.ResolveAt
		}
		if got := e.refundOf(t, rf.ID); got.Status != payrouter.RefundPending {
			t.Fatalf("refund = %s after the window, want still pending (no way to ask)", got.Status)
		}
		calls := f.refundCalls()
		e.clk.set(last)
		e.resolve(t)
		if f.refundCalls() != calls {
			t.Errorf("resolver resent after the key's window: %d calls, was %d", f.refundCalls(), calls)
		}
		out, err := e.r.ApplyNotification(context.Background(), &providers.Notification{Provider: "fake", Kind: providers.KindRefund,
			ProviderPaymentID: "prv_pay_1", RefundID: rf.ID, RefundStatus: payrouter.RefundSucceeded})
		if err != nil || out != OutcomeApplied {
			t.Fatalf("refund webhook: %s, %v", out, err)
		}
		// The resolver's next look finds nothing pending and unqueues it.
		e.clk.advance(10 * time.Minute)
		e.resolve(t)
		if p := e.payment(t); p.ResolveAt != nil || p.AmountRefunded != 25000 {
			t.Errorf("after the webhook: refunded %d resolve_at %v, want 25000 and off the queue", p.AmountRefunded, p.ResolveAt)
		}
		if ev := e.events(t); ev[payrouter.EventRefundSuccess] != 1 || ev[payrouter.EventRefundFailed] != 0 {
			t.Errorf("events = %v, want one refund_success", ev)
		}
	})
}

// A refund the provider never received (written, then the router died)
// and still unknown after resending for the whole key window (the
// provider refused every resend) ends failed: nothing moved, and its
// amount is released.
func TestRefundNeverReceivedFailsAfterWindow(t *testing.T) {
	f := newRefunder()
	e := newRefundEnv(t, queryingRefunder{f})
	id := NewID("re_")
	_, err := e.st.UpdatePayment(context.Background(), e.p.ID, func(q *payrouter.Payment) error {
		now := e.clk.now()
		q.Refunds = append(q.Refunds, payrouter.Refund{ID: id, Amount: 40000, Status: payrouter.RefundPending, CreatedAt: now})
		q.ResolveAt = e.r.nextResolve(q, now)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.down = true
	for range 3 {
		e.clk.advance(3 * time.Hour)
		e.resolve(t)
		if got := e.refundOf(t, id); got.Status != payrouter.RefundPending {
			t.Fatalf("refund = %s (%s) while resends are refused inside the window, want pending", got.Status, got.FailureCode)
		}
	}
	if f.refundCalls() != 0 || f.statuses != 3 {
		t.Errorf("provider saw %d refunds, %d queries; want 0 (all refused), 3", f.refundCalls(), f.statuses)
	}
	e.clk.advance(3 * time.Hour)
	e.resolve(t)
	got := e.refundOf(t, id)
	if got.Status != payrouter.RefundFailed || got.FailureCode != "not_received" {
		t.Fatalf("refund = %+v, want failed not_received", got)
	}
	if left := e.payment(t).Refundable(); left != 100000 {
		t.Errorf("Refundable = %d, want 100000 (released)", left)
	}
	if f.refunded() != 0 || f.refundCalls() != 0 {
		t.Errorf("provider refunded %d in %d calls, want nothing", f.refunded(), f.refundCalls())
	}
	if ev := e.events(t); ev[payrouter.EventRefundFailed] != 1 {
		t.Errorf("events = %v, want one refund_failed", ev)
	}
}

// A refund the provider acknowledged (it answered pending with its id) but
// does not list yet was received: the resolver neither resends it nor
// gives it up, and settles it once the provider lists it.
func TestRefundAcknowledgedIsNeverResent(t *testing.T) {
	f := newRefunder()
	e := newRefundEnv(t, queryingRefunder{f})
	f.acceptOnly = true
	rf := e.refund(t, 10000)
	if rf.Status != payrouter.RefundPending || rf.ProviderRefundID == "" {
		t.Fatalf("refund = %+v, want pending with the provider's id", rf)
	}
	for range 3 {
		e.clk.advance(6 * time.Hour)
		e.resolve(t)
	}
	if got := e.refundOf(t, rf.ID); got.Status != payrouter.RefundPending || f.refundCalls() != 1 {
		t.Fatalf("refund = %s after %d calls, want pending and no resend", got.Status, f.refundCalls())
	}
	f.mu.Lock()
	f.held[rf.ID], f.amounts[rf.ID] = payrouter.RefundSucceeded, rf.Amount
	f.mu.Unlock()
	e.clk.advance(10 * time.Minute)
	e.resolve(t)
	if got := e.refundOf(t, rf.ID); got.Status != payrouter.RefundSucceeded {
		t.Fatalf("refund = %s once listed, want succeeded", got.Status)
	}
	if ev := e.events(t); ev[payrouter.EventRefundSuccess] != 1 {
		t.Errorf("events = %v, want one refund_success", ev)
	}
}

// A refund notification that only a token authenticates (Xendit) is a
// claim: the refund status query decides, and a claim it does not bear out
// changes nothing.
func TestRefundWebhookConfirmedByRefundQuery(t *testing.T) {
	ctx := context.Background()
	f := newRefunder()
	f.acceptOnly = true // the provider accepted the refund; it is still pending there
	e := newRefundEnv(t, queryingRefunder{f})
	rf := e.refund(t, 30000)
	claim := func(st payrouter.RefundStatus) *providers.Notification {
		return &providers.Notification{Provider: "fake", Kind: providers.KindRefund, ProviderPaymentID: "prv_pay_1",
			RefundID: rf.ID, ProviderRefundID: "prv_" + rf.ID, RefundStatus: st, ConfirmRefund: true}
	}
	// Not known to the query yet (still processing): a success claim waits.
	f.mu.Lock()
	f.held[rf.ID], f.amounts[rf.ID] = payrouter.RefundPending, 30000
	f.mu.Unlock()
	if out, err := e.r.ApplyNotification(ctx, claim(payrouter.RefundSucceeded)); err != nil || out != OutcomeUnconfirmed {
		t.Fatalf("claim while pending: %q %v, want unconfirmed", out, err)
	}
	if got := e.refundOf(t, rf.ID).Status; got != payrouter.RefundPending {
		t.Fatalf("refund is %s after an unconfirmed claim, want pending", got)
	}
	// A forged failure while the provider refunded: the truth is applied.
	f.mu.Lock()
	f.held[rf.ID] = payrouter.RefundSucceeded
	f.mu.Unlock()
	if out, err := e.r.ApplyNotification(ctx, claim(payrouter.RefundFailed)); err != nil || out != OutcomeRefuted {
		t.Fatalf("forged failure: %q %v, want refuted", out, err)
	}
	if got := e.refundOf(t, rf.ID).Status; got != payrouter.RefundSucceeded {
		t.Errorf("refund is %s, want succeeded (what the query said)", got)
	}
	if n := e.events(t)[payrouter.EventRefundSuccess]; n != 1 {
		t.Errorf("%d refund_success events, want 1", n)
	}
	// The genuine success, late: nothing more happens.
	if out, err := e.r.ApplyNotification(ctx, claim(payrouter.RefundSucceeded)); err != nil || out != OutcomeStale {
		t.Errorf("late genuine claim: %q %v, want stale", out, err)
	}
}
