// Package storetest is the conformance suite every store.Store must pass.
// A store's own test calls Run with a function opening a fresh, empty store.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
)

// Run runs the conformance suite. open must return a new, empty store for
// each call and close it at t's cleanup.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"MerchantIsolation", testMerchantIsolation},
		{"DuplicateReference", testDuplicateReference},
		{"Update", testUpdate},
		{"UpdateFnErrorWritesNothing", testUpdateFnError},
		{"ConcurrentUpdate", testConcurrentUpdate},
		{"Events", testEvents},
		{"EventsCommitOrder", testEventsCommitOrder},
		{"IdempotencyConcurrentClaim", testIdempotencyConcurrentClaim},
		{"IdempotencyLifecycle", testIdempotencyLifecycle},
		{"IdempotencyTakeOver", testIdempotencyTakeOver},
		{"IdempotencyPurge", testIdempotencyPurge},
		{"Inbox", testInbox},
		{"Anomalies", testAnomalies},
		{"FindPayment", testFindPayment},
		{"DuePayments", testDuePayments},
		{"ListPayments", testListPayments},
		{"ScanPayments", testScanPayments},
		{"Cursors", testCursors},
		{"EventsBefore", testEventsBefore},
		{"Deliveries", testDeliveries},
		{"DeliveryConcurrentClaim", testDeliveryConcurrentClaim},
		{"CreateClaiming", testCreateClaiming},
		{"CreateClaimingConcurrent", testCreateClaimingConcurrent},
		{"UpdateCompleting", testUpdateCompleting},
		{"UpdateCurrent", testUpdateCurrent},
		{"ReferenceReuse", testReferenceReuse},
		{"IdempotencyGet", testIdempotencyGet},
		{"RefundSettleOnce", testRefundSettleOnce},
		{"ReadConsistent", testReadConsistent},
		{"ReconRuns", testReconRuns},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			if err := s.Ping(context.Background()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			tt.fn(t, s)
		})
	}
}

// settledEvents is ListEvents once at least want events are visible, or
// the last answer after a few seconds. A store may show a committed event
// only once older concurrent transactions have finished (PostgreSQL's
// transaction-id watermark, which keeps "after=" consumers from skipping
// one), so a read right after a commit can briefly lag; never by losing
// an event.
func settledEvents(t *testing.T, s store.Store, merchant string, after int64, limit, want int) []payrouter.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := s.ListEvents(context.Background(), merchant, after, limit)
		if err != nil {
			t.Fatalf("ListEvents: %v", err)
		}
		if len(evs) >= want || time.Now().After(deadline) {
			return evs
		}
		time.Sleep(2 * time.Millisecond) // poll
	}
}

// base is the suite's clock: UTC with microseconds, the precision every
// store keeps.
var base = time.Date(2025, 3, 1, 10, 0, 0, 123456000, time.UTC)

func at(d time.Duration) time.Time { return base.Add(d) }

func ptr[T any](v T) *T { return &v }

// newPayment is a small processing payment with one attempt. n makes the id
// and reference unique and orders created_at.
func newPayment(merchant string, n int) *payrouter.Payment {
	id := fmt.Sprintf("pay_%s_%04d", merchant, n)
	return &payrouter.Payment{
		ID: id, MerchantID: merchant, Status: payrouter.StatusProcessing,
		Amount: 50000, Currency: "IDR", Method: payrouter.MethodGoPay,
		Reference: fmt.Sprintf("ref-%04d", n), Capture: payrouter.CaptureAutomatic,
		Provider: "midtrans", ProviderPaymentID: "mt-" + id,
		Route: payrouter.Route{Rule: "default", Strategy: "priority", Candidates: []string{"midtrans"}},
		Attempts: []payrouter.Attempt{{
			N: 1, Provider: "midtrans", ProviderPaymentID: "mt-" + id, Status: payrouter.AttemptProcessing,
			StartedAt: at(time.Duration(n) * time.Second), IdempotencyKey: payrouter.AttemptKey(id, 1),
		}},
		CreatedAt: at(time.Duration(n) * time.Second), UpdatedAt: at(time.Duration(n) * time.Second),
	}
}

// fullPayment sets every field of Payment, including the json:"-" ones.
func fullPayment(merchant string, n int) *payrouter.Payment {
	p := newPayment(merchant, n)
	p.Status = payrouter.StatusPartiallyRefunded
	p.Description = "Order #42 — kopi ☕"
	p.Customer = &payrouter.Customer{Name: "Budi", Email: "budi@example.com", Phone: "+628123456789"}
	p.Country = "ID"
	p.Capture = payrouter.CaptureManual
	p.ReturnURL = "https://shop.example/return?x=1&y=2"
	p.Metadata = map[string]string{"order": "42", "note": "quote \" and \\ backslash"}
	p.Bank = "bca"
	p.Checkout = payrouter.CheckoutHosted
	p.AmountCaptured = 50000
	p.AmountRefunded = 1000
	p.NextAction = &payrouter.NextAction{Type: "qr_code", URL: "https://pay.example/qr", QRString: "000201...",
		VANumber: "8808123", Bank: "bca", BillerCode: "70012", ExpiresAt: ptr(at(time.Hour))}
	p.Route = payrouter.Route{Rule: "idr-wallets", RulesVersion: "v7", Strategy: "cheapest",
		Candidates: []string{"gopay", "midtrans"}, Reason: "cheapest fee 2.0%"}
	p.Failure = &payrouter.Failure{Code: "card_declined", Message: "declined", ProviderCode: "05"}
	p.Tokens = map[string]string{"stripe": "pm_123", "xendit": "tok_456"}
	p.ExpiresAt = ptr(at(2 * time.Hour))
	p.ResolveAt = ptr(at(30 * time.Second))
	p.UpdatedAt = at(time.Minute)
	p.Attempts = []payrouter.Attempt{
		{N: 1, Provider: "gopay", ProviderPaymentID: "gp-1", Status: payrouter.AttemptFailed,
			ErrorClass: "unavailable", ErrorCode: "503", ErrorMessage: "gopay: 503 service unavailable",
			ExpectedFee: 1000, LatencyMS: 1234, StartedAt: at(time.Millisecond), IdempotencyKey: payrouter.AttemptKey(p.ID, 1)},
		{N: 2, Provider: "midtrans", ProviderPaymentID: "mt-2", Status: payrouter.AttemptSucceeded,
			ErrorClass: "ambiguous", ErrorCode: "timeout", ErrorMessage: "resolved by status query",
			ExpectedFee: 1001, LatencyMS: 99, StartedAt: at(2 * time.Millisecond), IdempotencyKey: payrouter.AttemptKey(p.ID, 2)},
	}
	p.Refunds = []payrouter.Refund{
		{ID: "re_1", Amount: 1000, Reason: "requested_by_customer", Status: payrouter.RefundSucceeded,
			ProviderRefundID: "mt-re-1", FailureCode: "none", CreatedAt: at(3 * time.Minute)},
		{ID: "re_2", Amount: 2000, Reason: "duplicate", Status: payrouter.RefundFailed,
			ProviderRefundID: "mt-re-2", FailureCode: "insufficient_balance", CreatedAt: at(4 * time.Minute)},
	}
	return p
}

// requireAllSet fails when a field of v (a struct) is zero, so that a field
// added to the aggregate must be added to the fixture — and therefore to the
// round-trip check.
func requireAllSet(t *testing.T, what string, v any) {
	t.Helper()
	rv := reflect.ValueOf(v)
	for i := range rv.NumField() {
		f := rv.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		if rv.Field(i).IsZero() {
			t.Fatalf("fixture %s leaves field %s zero: set it so the round trip covers it", what, f.Name)
		}
	}
}

func create(t *testing.T, s store.Store, p *payrouter.Payment) {
	t.Helper()
	if err := s.CreatePayment(context.Background(), p); err != nil {
		t.Fatalf("CreatePayment(%s): %v", p.ID, err)
	}
}

func get(t *testing.T, s store.Store, merchant, id string) *payrouter.Payment {
	t.Helper()
	p, err := s.GetPayment(context.Background(), merchant, id)
	if err != nil {
		t.Fatalf("GetPayment(%q, %s): %v", merchant, id, err)
	}
	return p
}

// clonePayment copies p and its slices, so that what a store (or an update
// fn) does to its argument cannot change the test's expectation.
func clonePayment(p *payrouter.Payment) *payrouter.Payment {
	c := *p
	c.Attempts = append([]payrouter.Attempt(nil), p.Attempts...)
	c.Refunds = append([]payrouter.Refund(nil), p.Refunds...)
	return &c
}

// equalPayment reports the fields where got and want differ.
func equalPayment(t *testing.T, what string, got, want *payrouter.Payment) {
	t.Helper()
	if got == nil || want == nil {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
	gv, wv := reflect.ValueOf(*got), reflect.ValueOf(*want)
	for i := range gv.NumField() {
		f := gv.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: payment %s field %s:\n got  %s\n want %s", what, want.ID, f.Name, show(g), show(w))
		}
	}
}

func show(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		return fmt.Sprintf("&%+v", rv.Elem().Interface())
	}
	if rv.Kind() == reflect.Slice {
		var b bytes.Buffer
		b.WriteString("[")
		for i := range rv.Len() {
			fmt.Fprintf(&b, "%+v ", rv.Index(i).Interface())
		}
		b.WriteString("]")
		return b.String()
	}
	return fmt.Sprintf("%+v", v)
}

func ids(ps []*payrouter.Payment) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

func testRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	want := fullPayment("m1", 1)
	requireAllSet(t, "Payment", *want)
	requireAllSet(t, "Attempt", want.Attempts[0])
	requireAllSet(t, "Refund", want.Refunds[0])
	requireAllSet(t, "NextAction", *want.NextAction)
	requireAllSet(t, "Route", want.Route)
	requireAllSet(t, "Failure", *want.Failure)
	requireAllSet(t, "Customer", *want.Customer)
	create(t, s, clonePayment(want))

	equalPayment(t, "GetPayment(merchant)", get(t, s, "m1", want.ID), want)
	equalPayment(t, "GetPayment(internal)", get(t, s, "", want.ID), want)

	got, err := s.FindPayment(ctx, "midtrans", "mt-2")
	if err != nil {
		t.Fatalf("FindPayment: %v", err)
	}
	equalPayment(t, "FindPayment", got, want)

	list, err := s.ListPayments(ctx, store.ListFilter{MerchantID: "m1"})
	if err != nil || len(list) != 1 {
		t.Fatalf("ListPayments = %d payments, %v; want 1", len(list), err)
	}
	equalPayment(t, "ListPayments", list[0], want)

	due, err := s.DuePayments(ctx, at(time.Hour), 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("DuePayments = %d payments, %v; want 1", len(due), err)
	}
	equalPayment(t, "DuePayments", due[0], want)

	var scanned []*payrouter.Payment
	if err := s.ScanPayments(ctx, time.Time{}, func(p *payrouter.Payment) error { scanned = append(scanned, p); return nil }); err != nil || len(scanned) != 1 {
		t.Fatalf("ScanPayments = %d payments, %v; want 1", len(scanned), err)
	}
	equalPayment(t, "ScanPayments", scanned[0], want)

	// Nil pointers, maps and slices come back nil, except Attempts: a
	// payment without any renders "attempts": [] (the API's promise).
	bare := &payrouter.Payment{ID: "pay_bare", MerchantID: "m1", Status: payrouter.StatusProcessing,
		Amount: 1, Currency: "USD", Method: payrouter.MethodCard, Reference: "bare", CreatedAt: base, UpdatedAt: base}
	create(t, s, clonePayment(bare))
	bare.Attempts = []payrouter.Attempt{}
	equalPayment(t, "bare payment", get(t, s, "m1", "pay_bare"), bare)
}

func testMerchantIsolation(t *testing.T, s store.Store) {
	ctx := context.Background()
	p := newPayment("m1", 1)
	p.Advance(payrouter.StatusRequiresAction, at(time.Second))
	create(t, s, p)

	if _, err := s.GetPayment(ctx, "m2", p.ID); !errors.Is(err, payrouter.ErrNotExist) {
		t.Errorf("GetPayment(other merchant) error = %v, want ErrNotExist", err)
	}
	if _, err := s.GetPayment(ctx, "m1", "pay_missing"); !errors.Is(err, payrouter.ErrNotExist) {
		t.Errorf("GetPayment(missing) error = %v, want ErrNotExist", err)
	}
	list, err := s.ListPayments(ctx, store.ListFilter{MerchantID: "m2"})
	if err != nil || len(list) != 0 {
		t.Errorf("ListPayments(other merchant) = %v, %v; want none", ids(list), err)
	}
	evs := settledEvents(t, s, "m1", 0, 10, 1)
	if len(evs) != 1 {
		t.Fatalf("ListEvents(m1) = %d events; want 1", len(evs))
	}
	if evs, err := s.ListEvents(ctx, "m2", 0, 10); err != nil || len(evs) != 0 {
		t.Errorf("ListEvents(other merchant) = %d events, %v; want none", len(evs), err)
	}
	if _, err := s.GetEvent(ctx, "m2", evs[0].Seq); !errors.Is(err, payrouter.ErrNotExist) {
		t.Errorf("GetEvent(other merchant) error = %v, want ErrNotExist", err)
	}
	if _, err := s.GetEvent(ctx, "m1", evs[0].Seq); err != nil {
		t.Errorf("GetEvent(m1): %v", err)
	}
	if _, err := s.GetEvent(ctx, "", evs[0].Seq); err != nil {
		t.Errorf("GetEvent(internal): %v", err)
	}
}

func testDuplicateReference(t *testing.T, s store.Store) {
	ctx := context.Background()
	create(t, s, newPayment("m1", 1))

	tests := []struct {
		name    string
		p       *payrouter.Payment
		wantDup bool
		wantErr bool
	}{
		{"same merchant same reference", func() *payrouter.Payment {
			p := newPayment("m1", 2)
			p.Reference = "ref-0001"
			p.Advance(payrouter.StatusRequiresAction, at(time.Second))
			return p
		}(), true, true},
		{"other merchant same reference", func() *payrouter.Payment { p := newPayment("m2", 3); p.Reference = "ref-0001"; return p }(), false, false},
		{"same id other reference", func() *payrouter.Payment { p := newPayment("m1", 1); p.Reference = "ref-x"; return p }(), false, true},
		{"empty references do not collide 1", func() *payrouter.Payment { p := newPayment("m1", 4); p.Reference = ""; return p }(), false, false},
		{"empty references do not collide 2", func() *payrouter.Payment { p := newPayment("m1", 5); p.Reference = ""; return p }(), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.CreatePayment(ctx, tt.p)
			if got := errors.Is(err, store.ErrDuplicateReference); got != tt.wantDup {
				t.Errorf("errors.Is(%v, ErrDuplicateReference) = %v, want %v", err, got, tt.wantDup)
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("CreatePayment error = %v, want error %v", err, tt.wantErr)
			}
		})
	}
	// The refused payment left nothing behind: no row, no attempt, no event.
	if _, err := s.GetPayment(ctx, "", "pay_m1_0002"); !errors.Is(err, payrouter.ErrNotExist) {
		t.Errorf("refused payment: GetPayment error = %v, want ErrNotExist", err)
	}
	if _, err := s.FindPayment(ctx, "midtrans", "mt-pay_m1_0002"); !errors.Is(err, payrouter.ErrNotExist) {
		t.Errorf("refused payment: FindPayment error = %v, want ErrNotExist", err)
	}
	if evs, err := s.ListEvents(ctx, "", 0, 100); err != nil || len(evs) != 0 {
		t.Errorf("refused payment: ListEvents = %d events, %v; want none", len(evs), err)
	}
	// A reference change into a taken one is refused the same way.
	_, err := s.UpdatePayment(ctx, "pay_m1_0004", func(p *payrouter.Payment) error { p.Reference = "ref-0001"; return nil })
	if !errors.Is(err, store.ErrDuplicateReference) {
		t.Errorf("UpdatePayment to a taken reference: error = %v, want ErrDuplicateReference", err)
	}
}

func testUpdate(t *testing.T, s store.Store) {
	ctx := context.Background()
	p := newPayment("m1", 1)
	create(t, s, p)

	var want *payrouter.Payment
	got, err := s.UpdatePayment(ctx, p.ID, func(p *payrouter.Payment) error {
		p.Attempts[0].Status = payrouter.AttemptAmbiguous
		p.Attempts[0].ErrorClass = "ambiguous"
		p.Attempts = append(p.Attempts, payrouter.Attempt{N: 2, Provider: "xendit", ProviderPaymentID: "xe-9",
			Status: payrouter.AttemptSucceeded, StartedAt: at(time.Minute), IdempotencyKey: payrouter.AttemptKey(p.ID, 2)})
		p.Provider, p.ProviderPaymentID = "xendit", "xe-9"
		if ok, err := p.Advance(payrouter.StatusSucceeded, at(2*time.Minute)); !ok || err != nil {
			return fmt.Errorf("p.Advance = %v, %v", ok, err)
		}
		p.Refunds = append(p.Refunds, payrouter.Refund{ID: "re_1", Amount: 500, Status: payrouter.RefundPending, CreatedAt: at(3 * time.Minute)})
		if err := p.SettleRefund("re_1", true, "", at(4*time.Minute)); err != nil {
			return err
		}
		want = clonePayment(p)
		return nil
	})
	if err != nil {
		t.Fatalf("UpdatePayment: %v", err)
	}
	equalPayment(t, "UpdatePayment result", got, want)
	equalPayment(t, "GetPayment after update", get(t, s, "m1", p.ID), want)

	evs := settledEvents(t, s, "m1", 0, 100, 2)
	var types []payrouter.EventType
	for _, e := range evs {
		types = append(types, e.Type)
	}
	wantTypes := []payrouter.EventType{payrouter.EventSuccess, payrouter.EventRefundSuccess}
	if !reflect.DeepEqual(types, wantTypes) {
		t.Errorf("events = %v, want %v", types, wantTypes)
	}

	// Attempts shrink too (the aggregate is saved as a whole).
	got, err = s.UpdatePayment(ctx, p.ID, func(p *payrouter.Payment) error { p.Attempts = p.Attempts[:1]; p.Refunds = nil; return nil })
	if err != nil {
		t.Fatalf("UpdatePayment(shrink): %v", err)
	}
	equalPayment(t, "after shrink", get(t, s, "m1", p.ID), got)

	if _, err := s.UpdatePayment(ctx, "pay_missing", func(*payrouter.Payment) error { return nil }); !errors.Is(err, payrouter.ErrNotExist) {
		t.Errorf("UpdatePayment(missing) error = %v, want ErrNotExist", err)
	}
	if _, err := s.UpdatePayment(ctx, p.ID, func(p *payrouter.Payment) error { p.MerchantID = "m2"; return nil }); err == nil {
		t.Errorf("UpdatePayment changing the merchant: error = nil, want an error")
	}
}

func testUpdateFnError(t *testing.T, s store.Store) {
	ctx := context.Background()
	p := newPayment("m1", 1)
	create(t, s, p)
	before := get(t, s, "m1", p.ID)

	errFn := errors.New("fn says no")
	_, err := s.UpdatePayment(ctx, p.ID, func(p *payrouter.Payment) error {
		p.Advance(payrouter.StatusSucceeded, at(time.Minute))
		p.Attempts[0].Status = payrouter.AttemptSucceeded
		p.Attempts = append(p.Attempts, payrouter.Attempt{N: 2, Provider: "x", StartedAt: base})
		p.Refunds = append(p.Refunds, payrouter.Refund{ID: "re_x", Amount: 1, CreatedAt: base})
		p.AmountRefunded = 99
		return errFn
	})
	if err != errFn {
		t.Errorf("UpdatePayment error = %v, want fn's error as is", err)
	}
	equalPayment(t, "after failed update", get(t, s, "m1", p.ID), before)
	if evs, err := s.ListEvents(ctx, "", 0, 100); err != nil || len(evs) != 0 {
		t.Errorf("after failed update: ListEvents = %d events, %v; want none", len(evs), err)
	}
}

func testConcurrentUpdate(t *testing.T, s store.Store) {
	ctx := context.Background()
	p := newPayment("m1", 1)
	create(t, s, p)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdatePayment(ctx, p.ID, func(p *payrouter.Payment) error {
				p.AmountRefunded++
				p.Attempts = append(p.Attempts, payrouter.Attempt{N: len(p.Attempts) + 1, Provider: "midtrans", StartedAt: base})
				return nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("UpdatePayment: %v", err)
		}
	}
	got := get(t, s, "m1", p.ID)
	if got.AmountRefunded != n {
		t.Errorf("AmountRefunded = %d after %d concurrent increments, want %d (lost update)", got.AmountRefunded, n, n)
	}
	if len(got.Attempts) != n+1 {
		t.Errorf("attempts = %d, want %d", len(got.Attempts), n+1)
	}
	for i, a := range got.Attempts {
		if a.N != i+1 {
			t.Errorf("attempt %d has N %d, want %d", i, a.N, i+1)
			break
		}
	}
}

func testEvents(t *testing.T, s store.Store) {
	ctx := context.Background()
	type wantEvent struct {
		typ     payrouter.EventType
		payment *payrouter.Payment
		data    []byte
		at      time.Time
	}
	var want []wantEvent
	for i, m := range []string{"m1", "m2", "m1"} {
		p := newPayment(m, i+1)
		now := at(time.Duration(i) * time.Minute)
		p.Advance(payrouter.StatusRequiresAction, now)
		data, _ := json.Marshal(p) // what the event carries
		want = append(want, wantEvent{payrouter.EventRequiresAction, p, data, now})
		create(t, s, p)

		now = now.Add(time.Second)
		got, err := s.UpdatePayment(ctx, p.ID, func(p *payrouter.Payment) error {
			_, err := p.Advance(payrouter.StatusSucceeded, now)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		data, _ = json.Marshal(got)
		want = append(want, wantEvent{payrouter.EventSuccess, got, data, now})
	}

	all := settledEvents(t, s, "", 0, 100, len(want))
	if len(all) != len(want) {
		t.Fatalf("ListEvents = %d events, want %d", len(all), len(want))
	}
	for i, e := range all {
		w := want[i]
		if i > 0 && e.Seq <= all[i-1].Seq {
			t.Errorf("event %d: seq %d not above %d", i, e.Seq, all[i-1].Seq)
		}
		if e.ID != payrouter.EventID(e.Seq) {
			t.Errorf("event %d: id %q, want %q", i, e.ID, payrouter.EventID(e.Seq))
		}
		if e.Type != w.typ || e.PaymentID != w.payment.ID || e.MerchantID != w.payment.MerchantID || !e.CreatedAt.Equal(w.at) {
			t.Errorf("event %d = {%s %s %s %v}, want {%s %s %s %v}", i, e.Type, e.PaymentID, e.MerchantID, e.CreatedAt,
				w.typ, w.payment.ID, w.payment.MerchantID, w.at)
		}
		if !bytes.Equal(e.Data, w.data) {
			t.Errorf("event %d data:\n got  %s\n want %s", i, e.Data, w.data)
		}
		one, err := s.GetEvent(ctx, "", e.Seq)
		if err != nil || !reflect.DeepEqual(*one, e) {
			t.Errorf("GetEvent(%d) = %+v, %v; want %+v", e.Seq, one, err, e)
		}
	}
	if _, err := s.GetEvent(ctx, "", all[len(all)-1].Seq+1000); !errors.Is(err, payrouter.ErrNotExist) {
		t.Errorf("GetEvent(missing) error = %v, want ErrNotExist", err)
	}

	seqs := func(evs []payrouter.Event) []int64 {
		out := []int64{}
		for _, e := range evs {
			out = append(out, e.Seq)
		}
		return out
	}
	s0 := seqs(all)
	tests := []struct {
		name     string
		merchant string
		after    int64
		limit    int
		want     []int64
	}{
		{"all", "", 0, 0, s0},
		{"after first", "", s0[0], 0, s0[1:]},
		{"after last", "", s0[5], 0, []int64{}},
		{"limit", "", 0, 2, s0[:2]},
		{"after and limit", "", s0[1], 3, s0[2:5]},
		{"merchant m1", "m1", 0, 0, []int64{s0[0], s0[1], s0[4], s0[5]}},
		{"merchant m2", "m2", 0, 0, []int64{s0[2], s0[3]}},
		{"merchant m1 after", "m1", s0[1], 1, []int64{s0[4]}},
		{"unknown merchant", "m9", 0, 0, []int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := s.ListEvents(ctx, tt.merchant, tt.after, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got := seqs(evs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ListEvents(%q, %d, %d) seqs = %v, want %v", tt.merchant, tt.after, tt.limit, got, tt.want)
			}
		})
	}
}

// testEventsCommitOrder polls "events after the last seen seq" while many
// transactions write events concurrently: a poller must see every event,
// which holds only if seqs become visible in ascending order.
func testEventsCommitOrder(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 40
	for i := range n {
		create(t, s, newPayment("m1", i+1))
	}
	done := make(chan struct{})
	seen := map[int64]bool{}
	var pollErr error
	var pollWG sync.WaitGroup
	pollWG.Add(1)
	go func() {
		defer pollWG.Done()
		var cursor int64
		poll := func() bool {
			evs, err := s.ListEvents(ctx, "", cursor, 1000)
			if err != nil {
				pollErr = err
				return false
			}
			for _, e := range evs {
				seen[e.Seq] = true
				cursor = e.Seq
			}
			return true
		}
		for {
			select {
			case <-done:
				// Every event is committed: keep polling from the cursor
				// until all are seen (a store may show the last ones a
				// moment later). One the cursor has passed never shows.
				deadline := time.Now().Add(10 * time.Second)
				for poll() && len(seen) < n && time.Now().Before(deadline) {
					time.Sleep(2 * time.Millisecond) // poll
				}
				return
			default:
				if !poll() {
					return
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdatePayment(ctx, newPayment("m1", i+1).ID, func(p *payrouter.Payment) error {
				_, err := p.Advance(payrouter.StatusSucceeded, at(time.Hour))
				return err
			})
			if err != nil {
				t.Errorf("UpdatePayment: %v", err)
			}
		}()
	}
	wg.Wait()
	close(done)
	pollWG.Wait()
	if pollErr != nil {
		t.Fatalf("ListEvents: %v", pollErr)
	}
	all := settledEvents(t, s, "", 0, 1000, n)
	if len(all) != n {
		t.Fatalf("events = %d, want %d", len(all), n)
	}
	for _, e := range all {
		if !seen[e.Seq] {
			t.Errorf("poller never saw event %d: it became visible after a higher seq", e.Seq)
		}
	}
}

func testIdempotencyConcurrentClaim(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 50
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		owners int
		recs   []*store.IdempotencyRecord
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec, err := s.ClaimIdempotencyKey(ctx, "m1", "key-1", "hash-1", base)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("ClaimIdempotencyKey: %v", err)
				return
			}
			if rec == nil {
				owners++
			} else {
				recs = append(recs, rec)
			}
		}()
	}
	wg.Wait()
	if owners != 1 {
		t.Fatalf("%d of %d concurrent claimers own the key, want exactly 1", owners, n)
	}
	want := store.IdempotencyRecord{MerchantID: "m1", Key: "key-1", RequestHash: "hash-1", CreatedAt: base}
	for _, r := range recs {
		if !r.Running() || r.MerchantID != want.MerchantID || r.Key != want.Key || r.RequestHash != want.RequestHash || !r.CreatedAt.Equal(want.CreatedAt) {
			t.Errorf("losing claimer got %+v, want running %+v", r, want)
			break
		}
	}
}

func testIdempotencyLifecycle(t *testing.T, s store.Store) {
	ctx := context.Background()
	claim := func(merchant, key, hash string) *store.IdempotencyRecord {
		t.Helper()
		rec, err := s.ClaimIdempotencyKey(ctx, merchant, key, hash, base)
		if err != nil {
			t.Fatalf("ClaimIdempotencyKey(%s, %s): %v", merchant, key, err)
		}
		return rec
	}
	pay1 := claimLinked(t, s, "m1", "k", "h1")
	if rec := claim("m2", "k", "h1"); rec != nil {
		t.Errorf("same key, other merchant = %+v, want ownership (nil)", rec)
	}
	rec := claim("m1", "k", "h2")
	if rec == nil || !rec.Running() || rec.PaymentID != pay1 || rec.RequestHash != "h1" {
		t.Fatalf("claim while running = %+v, want running record linked to %s with hash h1", rec, pay1)
	}
	body := []byte(`{"id":"pay_1","amount":50000}` + "\n")
	if err := s.CompleteIdempotencyKey(ctx, "m1", "k", 201, body); err != nil {
		t.Fatalf("CompleteIdempotencyKey: %v", err)
	}
	rec = claim("m1", "k", "h1")
	if rec == nil || rec.Running() || rec.Status != 201 || !bytes.Equal(rec.Body, body) || rec.PaymentID != pay1 {
		t.Fatalf("replay = %+v, want completed 201 with the stored body", rec)
	}
	// Releasing a completed key keeps it: its response must still replay.
	if err := s.ReleaseIdempotencyKey(ctx, "m1", "k"); err != nil {
		t.Fatalf("ReleaseIdempotencyKey(completed): %v", err)
	}
	if rec := claim("m1", "k", "h1"); rec == nil || rec.Status != 201 {
		t.Errorf("after releasing a completed key: claim = %+v, want the completed record", rec)
	}
	// Releasing a running key lets the merchant retry.
	if err := s.ReleaseIdempotencyKey(ctx, "m2", "k"); err != nil {
		t.Fatalf("ReleaseIdempotencyKey: %v", err)
	}
	if rec := claim("m2", "k", "h3"); rec != nil {
		t.Errorf("claim after release = %+v, want ownership (nil)", rec)
	}

	missing := []struct {
		name string
		fn   func() error
	}{
		{"complete", func() error { return s.CompleteIdempotencyKey(ctx, "m1", "nope", 200, nil) }},
	}
	for _, tt := range missing {
		t.Run("missing "+tt.name, func(t *testing.T) {
			if err := tt.fn(); !errors.Is(err, payrouter.ErrNotExist) {
				t.Errorf("error = %v, want ErrNotExist", err)
			}
		})
	}
	if err := s.ReleaseIdempotencyKey(ctx, "m1", "nope"); err != nil {
		t.Errorf("ReleaseIdempotencyKey(missing) = %v, want nil (no-op)", err)
	}
}

func testIdempotencyTakeOver(t *testing.T, s store.Store) {
	ctx := context.Background()
	pay1 := claimLinked(t, s, "m1", "k", "h")
	tests := []struct {
		name        string
		key         string
		staleBefore time.Time
		now         time.Time
		want        bool
	}{
		{"not stale yet", "k", base, at(time.Minute), false},
		{"stale", "k", at(time.Second), at(time.Minute), true},
		{"taken over already", "k", at(time.Second), at(2 * time.Minute), false},
		{"stale again", "k", at(90 * time.Second), at(3 * time.Minute), true},
		{"missing", "nope", at(time.Hour), at(time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.TakeOverIdempotencyKey(ctx, "m1", tt.key, tt.staleBefore, tt.now)
			if err != nil || got != tt.want {
				t.Errorf("TakeOverIdempotencyKey = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	rec, err := s.ClaimIdempotencyKey(ctx, "m1", "k", "h", at(time.Hour))
	if err != nil || rec == nil || !rec.Running() || rec.PaymentID != pay1 || !rec.CreatedAt.Equal(at(3*time.Minute)) {
		t.Fatalf("record after take-over = %+v, %v; want running, linked to %s, created %v", rec, err, pay1, at(3*time.Minute))
	}

	// Concurrent take-overs: exactly one wins.
	const n = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.TakeOverIdempotencyKey(ctx, "m1", "k", at(time.Hour), at(2*time.Hour))
			if err != nil {
				t.Errorf("TakeOverIdempotencyKey: %v", err)
			}
			if ok {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d of %d concurrent take-overs won, want 1", wins, n)
	}

	// A completed record cannot be taken over.
	if err := s.CompleteIdempotencyKey(ctx, "m1", "k", 200, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.TakeOverIdempotencyKey(ctx, "m1", "k", at(100*time.Hour), at(100*time.Hour)); ok || err != nil {
		t.Errorf("take over of a completed record = %v, %v; want false", ok, err)
	}
}

func testIdempotencyPurge(t *testing.T, s store.Store) {
	ctx := context.Background()
	keys := []struct {
		key      string
		created  time.Time
		complete bool
		kept     bool
	}{
		{"old-done", base, true, false},
		{"old-done-2", at(time.Hour), true, false},
		{"old-running", base, false, false}, // its owner is long dead
		{"new-running", at(30 * time.Hour), false, true},
		{"new-done", at(48 * time.Hour), true, true},
	}
	for _, k := range keys {
		if rec, err := s.ClaimIdempotencyKey(ctx, "m1", k.key, "h", k.created); rec != nil || err != nil {
			t.Fatalf("claim %s = %+v, %v", k.key, rec, err)
		}
		if k.complete {
			if err := s.CompleteIdempotencyKey(ctx, "m1", k.key, 200, []byte("{}")); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, err := s.PurgeIdempotencyKeys(ctx, at(24*time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("PurgeIdempotencyKeys = %d, %v; want 3", n, err)
	}
	// A record taken over inside the window is kept (created_at moves).
	if ok, err := s.TakeOverIdempotencyKey(ctx, "m1", "new-running", at(31*time.Hour), at(49*time.Hour)); !ok || err != nil {
		t.Fatalf("TakeOverIdempotencyKey = %v, %v", ok, err)
	}
	if n, err := s.PurgeIdempotencyKeys(ctx, at(48*time.Hour)); err != nil || n != 0 {
		t.Fatalf("PurgeIdempotencyKeys(48h) = %d, %v; want 0 (new-done is at 48h, new-running was taken over at 49h)", n, err)
	}
	for _, k := range keys {
		rec, err := s.ClaimIdempotencyKey(ctx, "m1", k.key, "h", at(72*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if kept := rec != nil; kept != k.kept {
			t.Errorf("%s kept = %v, want %v", k.key, kept, k.kept)
		}
	}
}

func testInbox(t *testing.T, s store.Store) {
	ctx := context.Background()
	items := []store.InboxItem{
		{Provider: "stripe", EventID: "evt_1", Headers: map[string]string{"Stripe-Signature": "t=1,v1=ab"},
			Body: []byte("{\"id\":\"evt_1\",  \"x\":\"\xff\"}\r\n"), Parsed: []byte(`{"status":"succeeded"}`), ReceivedAt: base},
		{Provider: "midtrans", EventID: "evt_1", Headers: map[string]string{}, Body: []byte("a=1&b=2"), ReceivedAt: at(time.Second)},
		{Provider: "stripe", EventID: "evt_2", Body: []byte("{}"), Parsed: []byte("{}"), ReceivedAt: at(2 * time.Second)},
	}
	for i := range items {
		ok, err := s.InsertWebhook(ctx, &items[i])
		if err != nil || !ok {
			t.Fatalf("InsertWebhook(%s %s) = %v, %v; want true", items[i].Provider, items[i].EventID, ok, err)
		}
		if items[i].ID == 0 {
			t.Errorf("InsertWebhook did not set the id")
		}
	}
	dup := store.InboxItem{Provider: "stripe", EventID: "evt_1", Body: []byte("other"), ReceivedAt: at(time.Hour)}
	if ok, err := s.InsertWebhook(ctx, &dup); ok || err != nil {
		t.Errorf("InsertWebhook(duplicate) = %v, %v; want false", ok, err)
	}

	pending, err := s.PendingWebhooks(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != len(items) {
		t.Fatalf("PendingWebhooks = %d items, want %d", len(pending), len(items))
	}
	for i, got := range pending {
		want := items[i]
		if got.ID != want.ID || got.Provider != want.Provider || got.EventID != want.EventID ||
			!reflect.DeepEqual(got.Headers, want.Headers) || !bytes.Equal(got.Body, want.Body) ||
			!bytes.Equal(got.Parsed, want.Parsed) || !got.ReceivedAt.Equal(want.ReceivedAt) || got.Outcome != "" {
			t.Errorf("pending[%d] = %+v\nwant %+v", i, got, want)
		}
	}
	if p, err := s.PendingWebhooks(ctx, 1); err != nil || len(p) != 1 || p[0].ID != items[0].ID {
		t.Errorf("PendingWebhooks(limit 1) = %+v, %v; want the oldest", p, err)
	}

	if err := s.FinishWebhook(ctx, items[0].ID, "applied", "payment pay_1 → succeeded", at(time.Minute)); err != nil {
		t.Fatalf("FinishWebhook: %v", err)
	}
	if err := s.FinishWebhook(ctx, 999999, "applied", "", at(time.Minute)); !errors.Is(err, payrouter.ErrNotExist) {
		t.Errorf("FinishWebhook(missing) error = %v, want ErrNotExist", err)
	}
	pending, err = s.PendingWebhooks(ctx, 10)
	if err != nil || len(pending) != 2 || pending[0].ID != items[1].ID {
		t.Errorf("PendingWebhooks after finish = %+v, %v; want the two others", pending, err)
	}
	// A finished item still dedups.
	if ok, err := s.InsertWebhook(ctx, &store.InboxItem{Provider: "stripe", EventID: "evt_1", ReceivedAt: base}); ok || err != nil {
		t.Errorf("InsertWebhook(finished duplicate) = %v, %v; want false", ok, err)
	}

	// GetWebhook finds an item by (provider, event id), finished or not.
	got, err := s.GetWebhook(ctx, "stripe", "evt_1")
	if err != nil || got.ID != items[0].ID || got.Outcome != "applied" || got.Note != "payment pay_1 → succeeded" {
		t.Errorf("GetWebhook(stripe evt_1) = %+v, %v; want item %d, applied", got, err, items[0].ID)
	}
	if _, err := s.GetWebhook(ctx, "xendit", "evt_1"); !errors.Is(err, payrouter.ErrNotExist) {
		t.Errorf("GetWebhook(missing) error = %v, want ErrNotExist", err)
	}

	// RetryWebhook keeps an item pending but not due before next_at.
	if due, err := s.DueWebhooks(ctx, at(time.Minute), 10); err != nil || len(due) != 2 {
		t.Fatalf("DueWebhooks = %+v, %v; want the two pending", due, err)
	}
	if err := s.RetryWebhook(ctx, items[1].ID, "not confirmed yet", at(10*time.Minute)); err != nil {
		t.Fatalf("RetryWebhook: %v", err)
	}
	if err := s.RetryWebhook(ctx, items[0].ID, "", at(10*time.Minute)); !errors.Is(err, payrouter.ErrNotExist) {
		t.Errorf("RetryWebhook(finished) error = %v, want ErrNotExist", err)
	}
	due, err := s.DueWebhooks(ctx, at(9*time.Minute), 10)
	if err != nil || len(due) != 1 || due[0].ID != items[2].ID {
		t.Errorf("DueWebhooks before next_at = %+v, %v; want only item %d", due, err, items[2].ID)
	}
	due, err = s.DueWebhooks(ctx, at(10*time.Minute), 10)
	if err != nil || len(due) != 2 || due[0].ID != items[1].ID || due[0].Attempts != 1 ||
		!due[0].NextAt.Equal(at(10*time.Minute)) || due[0].Note != "not confirmed yet" {
		t.Errorf("DueWebhooks at next_at = %+v, %v; want item %d with 1 attempt, next_at, note", due, err, items[1].ID)
	}
	if pending, err := s.PendingWebhooks(ctx, 10); err != nil || len(pending) != 2 {
		t.Errorf("PendingWebhooks lists items not yet due too: %+v, %v", pending, err)
	}
}

func testAnomalies(t *testing.T, s store.Store) {
	ctx := context.Background()
	in := []store.Anomaly{
		{Kind: store.AnomalyTransition, PaymentID: "pay_1", Provider: "stripe", Detail: "expired → succeeded", CreatedAt: base},
		{Kind: store.AnomalyOrphan, Provider: "xendit", Detail: "no payment for inv_9", CreatedAt: at(time.Second)},
		{Kind: store.AnomalyAmount, PaymentID: "pay_2", Provider: "midtrans", Detail: "10000 != 9000", CreatedAt: at(2 * time.Second)},
	}
	for i := range in {
		if err := s.RecordAnomaly(ctx, &in[i]); err != nil {
			t.Fatalf("RecordAnomaly: %v", err)
		}
		if in[i].ID == 0 {
			t.Errorf("RecordAnomaly did not set the id")
		}
	}
	got, err := s.ListAnomalies(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Anomaly{in[2], in[1], in[0]}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ListAnomalies =\n %+v\nwant newest first\n %+v", got, want)
	}
	if got, err := s.ListAnomalies(ctx, 2); err != nil || len(got) != 2 || got[0].ID != in[2].ID {
		t.Errorf("ListAnomalies(2) = %+v, %v", got, err)
	}
}

func testFindPayment(t *testing.T, s store.Store) {
	ctx := context.Background()
	p := fullPayment("m1", 1)
	create(t, s, p)
	other := newPayment("m2", 2)
	create(t, s, other)

	tests := []struct {
		name, provider, id string
		want               string // payment id; "" = ErrNotExist
	}{
		{"provider payment id", "gopay", "gp-1", p.ID},
		{"second attempt", "midtrans", "mt-2", p.ID},
		{"attempt key", "gopay", payrouter.AttemptKey(p.ID, 1), p.ID},
		{"attempt key second", "midtrans", payrouter.AttemptKey(p.ID, 2), p.ID},
		{"other payment", "midtrans", "mt-" + other.ID, other.ID},
		{"wrong provider", "stripe", "gp-1", ""},
		{"unknown id", "gopay", "gp-404", ""},
		{"empty id", "gopay", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.FindPayment(ctx, tt.provider, tt.id)
			if tt.want == "" {
				if !errors.Is(err, payrouter.ErrNotExist) {
					t.Errorf("FindPayment(%s, %q) = %v, %v; want ErrNotExist", tt.provider, tt.id, got, err)
				}
				return
			}
			if err != nil || got.ID != tt.want {
				t.Errorf("FindPayment(%s, %q) = %v, %v; want %s", tt.provider, tt.id, got, err, tt.want)
			}
		})
	}
	// An id learned later (from a webhook or status query) is found too.
	if _, err := s.UpdatePayment(ctx, other.ID, func(p *payrouter.Payment) error {
		p.Attempts[0].ProviderPaymentID = "mt-late"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FindPayment(ctx, "midtrans", "mt-late"); err != nil || got.ID != other.ID {
		t.Errorf("FindPayment(updated id) = %v, %v; want %s", got, err, other.ID)
	}
	// Only the status changes (the lean attempt update), then the provider
	// and key too (the full one): the lookup follows each.
	if _, err := s.UpdatePayment(ctx, other.ID, func(p *payrouter.Payment) error {
		p.Attempts[0].Status = payrouter.AttemptFailed
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FindPayment(ctx, "midtrans", "mt-late"); err != nil || got.ID != other.ID || got.Attempts[0].Status != payrouter.AttemptFailed {
		t.Errorf("FindPayment after a status update = %v, %v; want %s, failed", got, err, other.ID)
	}
	if _, err := s.UpdatePayment(ctx, other.ID, func(p *payrouter.Payment) error {
		p.Attempts[0].Provider, p.Attempts[0].ProviderPaymentID, p.Attempts[0].IdempotencyKey = "xendit", "xe-late", "k-moved"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FindPayment(ctx, "xendit", "xe-late"); err != nil || got.ID != other.ID || got.Attempts[0].IdempotencyKey != "k-moved" {
		t.Errorf("FindPayment(moved attempt) = %v, %v; want %s with its new key", got, err, other.ID)
	}
	if got, err := s.FindPayment(ctx, "midtrans", "mt-late"); !errors.Is(err, payrouter.ErrNotExist) {
		t.Errorf("FindPayment(the attempt's old provider id) = %v, %v; want ErrNotExist", got, err)
	}
}

func testDuePayments(t *testing.T, s store.Store) {
	ctx := context.Background()
	resolve := []*time.Time{ptr(at(3 * time.Minute)), nil, ptr(at(time.Minute)), ptr(at(10 * time.Minute)), ptr(at(2 * time.Minute))}
	for i, r := range resolve {
		p := newPayment("m1", i+1)
		p.ResolveAt = r
		create(t, s, p)
	}
	tests := []struct {
		name  string
		now   time.Time
		limit int
		want  []string
	}{
		{"none due", at(30 * time.Second), 10, nil},
		{"due at exactly now", at(time.Minute), 10, []string{"pay_m1_0003"}},
		{"oldest first", at(5 * time.Minute), 10, []string{"pay_m1_0003", "pay_m1_0005", "pay_m1_0001"}},
		{"limit", at(time.Hour), 2, []string{"pay_m1_0003", "pay_m1_0005"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.DuePayments(ctx, tt.now, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if g := ids(got); !reflect.DeepEqual(g, tt.want) && !(len(g) == 0 && len(tt.want) == 0) {
				t.Errorf("DuePayments(%v, %d) = %v, want %v", tt.now, tt.limit, g, tt.want)
			}
		})
	}
	// Clearing ResolveAt takes the payment off the queue.
	if _, err := s.UpdatePayment(ctx, "pay_m1_0003", func(p *payrouter.Payment) error { p.ResolveAt = nil; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, err := s.DuePayments(ctx, at(time.Minute), 10); err != nil || len(got) != 0 {
		t.Errorf("DuePayments after clearing = %v, %v; want none", ids(got), err)
	}
}

func testListPayments(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 105
	var all []string // newest first
	for i := range n {
		p := newPayment("m1", i+1)
		if i%3 == 0 {
			p.Status = payrouter.StatusSucceeded
		}
		if i >= 100 {
			p.CreatedAt = at(time.Hour) // a tie on created_at: id breaks it
		}
		create(t, s, p)
	}
	create(t, s, newPayment("m2", 1000))
	for i := n; i >= 1; i-- {
		all = append(all, fmt.Sprintf("pay_m1_%04d", i))
	}

	tests := []struct {
		name string
		f    store.ListFilter
		want []string
	}{
		{"default limit 20", store.ListFilter{MerchantID: "m1"}, all[:20]},
		{"limit capped at 101 (the API asks 100+1 to learn has_more)", store.ListFilter{MerchantID: "m1", Limit: 1000}, all[:101]},
		{"limit", store.ListFilter{MerchantID: "m1", Limit: 3}, all[:3]},
		{"reference", store.ListFilter{MerchantID: "m1", Reference: "ref-0042"}, []string{"pay_m1_0042"}},
		{"reference of another merchant", store.ListFilter{MerchantID: "m2", Reference: "ref-0042"}, nil},
		{"status", store.ListFilter{MerchantID: "m1", Status: payrouter.StatusSucceeded, Limit: 3},
			[]string{"pay_m1_0103", "pay_m1_0100", "pay_m1_0097"}},
		{"before", store.ListFilter{MerchantID: "m1", Before: "pay_m1_0050", Limit: 2}, []string{"pay_m1_0049", "pay_m1_0048"}},
		{"before in a created_at tie", store.ListFilter{MerchantID: "m1", Before: "pay_m1_0104", Limit: 5},
			[]string{"pay_m1_0103", "pay_m1_0102", "pay_m1_0101", "pay_m1_0100", "pay_m1_0099"}},
		{"before the oldest", store.ListFilter{MerchantID: "m1", Before: "pay_m1_0001"}, nil},
		{"unknown cursor", store.ListFilter{MerchantID: "m1", Before: "pay_nope"}, nil},
		{"after: the nearest newer, newest first", store.ListFilter{MerchantID: "m1", After: "pay_m1_0050", Limit: 2}, []string{"pay_m1_0052", "pay_m1_0051"}},
		{"after in a created_at tie", store.ListFilter{MerchantID: "m1", After: "pay_m1_0099", Limit: 3}, []string{"pay_m1_0102", "pay_m1_0101", "pay_m1_0100"}},
		{"after the newest", store.ListFilter{MerchantID: "m1", After: "pay_m1_0105"}, nil},
		{"after with status", store.ListFilter{MerchantID: "m1", After: "pay_m1_0001", Status: payrouter.StatusSucceeded, Limit: 2},
			[]string{"pay_m1_0007", "pay_m1_0004"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListPayments(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if g := ids(got); !reflect.DeepEqual(g, tt.want) && !(len(g) == 0 && len(tt.want) == 0) {
				t.Errorf("ListPayments(%+v) = %v, want %v", tt.f, g, tt.want)
			}
		})
	}

	// Paging with Before walks every payment exactly once.
	var walked []string
	cursor := ""
	for {
		page, err := s.ListPayments(ctx, store.ListFilter{MerchantID: "m1", Limit: 7, Before: cursor})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		walked = append(walked, ids(page)...)
		cursor = page[len(page)-1].ID
	}
	if !reflect.DeepEqual(walked, all) {
		t.Errorf("paging walked %d payments, want all %d in order", len(walked), len(all))
	}
}

func testScanPayments(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 230 // more than one internal page
	for i := range n {
		create(t, s, newPayment("m"+fmt.Sprint(i%2), i+1))
	}
	var got []time.Time
	err := s.ScanPayments(ctx, at(10*time.Second), func(p *payrouter.Payment) error {
		if len(p.Attempts) != 1 {
			return fmt.Errorf("payment %s has %d attempts, want 1", p.ID, len(p.Attempts))
		}
		got = append(got, p.CreatedAt)
		return nil
	})
	if err != nil {
		t.Fatalf("ScanPayments: %v", err)
	}
	if len(got) != n-9 {
		t.Errorf("ScanPayments since #10 saw %d payments, want %d", len(got), n-9)
	}
	if !sort.SliceIsSorted(got, func(i, j int) bool { return got[i].Before(got[j]) }) || (len(got) > 0 && !got[0].Equal(at(10*time.Second))) {
		t.Errorf("ScanPayments not oldest first from since: first %v", got[:min(3, len(got))])
	}

	stop := errors.New("stop")
	calls := 0
	err = s.ScanPayments(ctx, time.Time{}, func(*payrouter.Payment) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Errorf("ScanPayments with failing fn = %v after %d calls, want fn's error after 1", err, calls)
	}
}
