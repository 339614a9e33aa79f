package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
)

// paymentWriter returns s as a store.PaymentWriter, skipping the test when
// s is not one (the interface is optional).
func paymentWriter(t *testing.T, s store.Store) store.PaymentWriter {
	t.Helper()
	pw, ok := s.(store.PaymentWriter)
	if !ok {
		t.Skipf("%T does not implement store.PaymentWriter", s)
	}
	return pw
}

func claimOf(key, hash string) store.IdempotencyClaim {
	return store.IdempotencyClaim{MerchantID: "m1", Key: key, RequestHash: hash, Now: base}
}

func testCreateClaiming(t *testing.T, s store.Store) {
	ctx := context.Background()
	pw := paymentWriter(t, s)

	p := newPayment("m1", 1)
	if ok, err := p.Advance(payrouter.StatusRequiresAction, at(time.Second)); !ok || err != nil {
		t.Fatalf("Advance = %v, %v", ok, err)
	}
	want := clonePayment(p)
	rec, err := pw.CreatePaymentClaiming(ctx, p, claimOf("k1", "h1"))
	if rec != nil || err != nil {
		t.Fatalf("CreatePaymentClaiming = %+v, %v; want nil, nil", rec, err)
	}
	equalPayment(t, "created with claim", get(t, s, "m1", p.ID), want)
	if evs := settledEvents(t, s, "m1", 0, 10, 1); len(evs) != 1 || evs[0].Type != payrouter.EventRequiresAction {
		t.Errorf("events after claiming create = %v; want one %s", evs, payrouter.EventRequiresAction)
	}
	// The key is claimed, running and linked to the payment.
	got, err := s.ClaimIdempotencyKey(ctx, "m1", "k1", "h1", base)
	if err != nil || got == nil || !got.Running() || got.PaymentID != p.ID || got.RequestHash != "h1" {
		t.Fatalf("ClaimIdempotencyKey after claiming create = %+v, %v; want running record linked to %s", got, err, p.ID)
	}

	// The same key again: the record, and nothing written.
	p2 := newPayment("m1", 2)
	rec, err = pw.CreatePaymentClaiming(ctx, p2, claimOf("k1", "h2"))
	if err != nil || rec == nil || !rec.Running() || rec.RequestHash != "h1" || rec.PaymentID != p.ID {
		t.Fatalf("CreatePaymentClaiming(taken key) = %+v, %v; want the running record of h1", rec, err)
	}
	if _, err := s.GetPayment(ctx, "m1", p2.ID); !errors.Is(err, payrouter.ErrNotExist) {
		t.Errorf("GetPayment of the payment with a taken key: %v, want ErrNotExist (nothing written)", err)
	}

	// A completed key is reported with its response.
	if err := s.CompleteIdempotencyKey(ctx, "m1", "k1", 201, []byte(`{"id":"x"}`)); err != nil {
		t.Fatal(err)
	}
	rec, err = pw.CreatePaymentClaiming(ctx, newPayment("m1", 3), claimOf("k1", "h1"))
	if err != nil || rec == nil || rec.Running() || rec.Status != 201 || string(rec.Body) != `{"id":"x"}` {
		t.Errorf("CreatePaymentClaiming(completed key) = %+v, %v; want the completed record", rec, err)
	}

	// A duplicate reference writes nothing: the key stays free.
	dup := newPayment("m1", 4)
	dup.Reference = p.Reference
	rec, err = pw.CreatePaymentClaiming(ctx, dup, claimOf("k2", "h"))
	if rec != nil || !errors.Is(err, store.ErrDuplicateReference) {
		t.Fatalf("CreatePaymentClaiming(duplicate reference) = %+v, %v; want ErrDuplicateReference", rec, err)
	}
	if got, err := s.ClaimIdempotencyKey(ctx, "m1", "k2", "h", base); got != nil || err != nil {
		t.Errorf("ClaimIdempotencyKey after a failed create = %+v, %v; want nil, nil (the key was not left claimed)", got, err)
	}
}

func testCreateClaimingConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	pw := paymentWriter(t, s)
	const n = 20
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		owners  []string
		running int
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := newPayment("m1", 100+i) // distinct ids and references
			rec, err := pw.CreatePaymentClaiming(ctx, p, claimOf("same", "h"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Errorf("CreatePaymentClaiming: %v", err)
			case rec == nil:
				owners = append(owners, p.ID)
			case rec.Running():
				running++
			}
		}()
	}
	wg.Wait()
	if len(owners) != 1 || running != n-1 {
		t.Fatalf("%d owners, %d told running, of %d concurrent creates with one key; want 1 and %d", len(owners), running, n, n-1)
	}
	ps, err := s.ListPayments(ctx, store.ListFilter{MerchantID: "m1", Limit: 100})
	if err != nil || len(ps) != 1 || ps[0].ID != owners[0] {
		t.Errorf("payments after concurrent creates = %v, %v; want only %s", ids(ps), err, owners[0])
	}
}

func testUpdateCompleting(t *testing.T, s store.Store) {
	ctx := context.Background()
	pw := paymentWriter(t, s)
	p := newPayment("m1", 1)
	if rec, err := pw.CreatePaymentClaiming(ctx, p, claimOf("k1", "h1")); rec != nil || err != nil {
		t.Fatalf("CreatePaymentClaiming = %+v, %v", rec, err)
	}
	render := func(q *payrouter.Payment) ([]byte, error) { return json.Marshal(q) }
	for _, current := range []bool{false, true} {
		t.Run(fmt.Sprintf("current=%v", current), func(t *testing.T) {
			opts := store.UpdateOptions{Complete: &store.IdempotencyCompletion{MerchantID: "m1", Key: "k1", Status: 201, Render: render}}
			if current {
				opts.Current = get(t, s, "m1", p.ID)
			}
			saved, err := pw.UpdatePaymentWith(ctx, p.ID, func(q *payrouter.Payment) error {
				q.Description = fmt.Sprintf("current=%v", current)
				_, err := q.Advance(payrouter.StatusSucceeded, at(time.Minute))
				return err
			}, opts)
			if err != nil {
				t.Fatalf("UpdatePaymentWith: %v", err)
			}
			stored := get(t, s, "m1", p.ID)
			equalPayment(t, "saved", saved, stored)
			rec, err := s.ClaimIdempotencyKey(ctx, "m1", "k1", "h1", base)
			if err != nil || rec == nil || rec.Status != 201 {
				t.Fatalf("record after completing update = %+v, %v; want status 201", rec, err)
			}
			want, _ := render(stored)
			if !bytes.Equal(rec.Body, want) {
				t.Errorf("stored body:\n got  %s\n want %s (the saved payment)", rec.Body, want)
			}
		})
	}

	// A failing fn writes nothing: neither the payment nor the response.
	if err := s.ReleaseIdempotencyKey(ctx, "m1", "k2"); err != nil {
		t.Fatal(err)
	}
	if rec, err := s.ClaimIdempotencyKey(ctx, "m1", "k2", "h", base); rec != nil || err != nil {
		t.Fatalf("claim k2 = %+v, %v", rec, err)
	}
	before := get(t, s, "m1", p.ID)
	errFn := errors.New("no")
	_, err := pw.UpdatePaymentWith(ctx, p.ID, func(q *payrouter.Payment) error { q.Description = "changed"; return errFn },
		store.UpdateOptions{Current: before, Complete: &store.IdempotencyCompletion{MerchantID: "m1", Key: "k2", Status: 201, Render: render}})
	if err != errFn {
		t.Errorf("UpdatePaymentWith error = %v, want fn's", err)
	}
	equalPayment(t, "after failed completing update", get(t, s, "m1", p.ID), before)
	if rec, err := s.ClaimIdempotencyKey(ctx, "m1", "k2", "h", base); err != nil || rec == nil || !rec.Running() {
		t.Errorf("record after failed completing update = %+v, %v; want still running", rec, err)
	}
}

func testUpdateCurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	pw := paymentWriter(t, s)
	p := newPayment("m1", 1)
	create(t, s, p)
	if p.Revision() == 0 {
		t.Fatalf("Revision after CreatePayment = 0, want the stored version")
	}
	old := get(t, s, "m1", p.ID)
	appendB := func(q *payrouter.Payment) error {
		q.Description += "b"
		q.Attempts = append(q.Attempts, payrouter.Attempt{N: len(q.Attempts) + 1, Provider: "xendit", StartedAt: base,
			IdempotencyKey: payrouter.AttemptKey(q.ID, len(q.Attempts)+1)})
		return nil
	}

	// Fresh copy: saved from it; its revision moves.
	saved, err := pw.UpdatePaymentWith(ctx, p.ID, appendB, store.UpdateOptions{Current: old})
	if err != nil {
		t.Fatalf("UpdatePaymentWith(fresh current): %v", err)
	}
	if saved.Revision() <= old.Revision() {
		t.Errorf("revision after update = %d, want > %d", saved.Revision(), old.Revision())
	}
	if old.Description != "" || len(old.Attempts) != 1 {
		t.Errorf("Current was modified: description %q, %d attempts", old.Description, len(old.Attempts))
	}
	equalPayment(t, "after update from current", get(t, s, "m1", p.ID), saved)

	// Stale copy (old is now behind): fn runs on the stored payment.
	saved, err = pw.UpdatePaymentWith(ctx, p.ID, appendB, store.UpdateOptions{Current: old})
	if err != nil {
		t.Fatalf("UpdatePaymentWith(stale current): %v", err)
	}
	got := get(t, s, "m1", p.ID)
	if got.Description != "bb" || len(got.Attempts) != 3 {
		t.Errorf("after update from a stale copy: description %q, %d attempts; want \"bb\", 3 (applied to the stored payment)", got.Description, len(got.Attempts))
	}
	equalPayment(t, "after update from stale current", got, saved)

	// An fn that fails on a stale copy but not on the stored payment: the
	// stored payment decides.
	_, err = pw.UpdatePaymentWith(ctx, p.ID, func(q *payrouter.Payment) error {
		if q.Description != "bb" {
			return errors.New("stale")
		}
		q.Description = "ok"
		return nil
	}, store.UpdateOptions{Current: old})
	if err != nil {
		t.Fatalf("UpdatePaymentWith(fn fails only on the stale copy): %v", err)
	}
	if got := get(t, s, "m1", p.ID); got.Description != "ok" {
		t.Errorf("description = %q, want ok", got.Description)
	}

	// Concurrent updates from one stale copy all apply, one after another.
	const n = 10
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := pw.UpdatePaymentWith(ctx, p.ID, func(q *payrouter.Payment) error { q.AmountRefunded++; return nil },
				store.UpdateOptions{Current: old}); err != nil {
				t.Errorf("concurrent UpdatePaymentWith: %v", err)
			}
		}()
	}
	wg.Wait()
	if got := get(t, s, "m1", p.ID); got.AmountRefunded != n {
		t.Errorf("AmountRefunded after %d concurrent increments = %d", n, got.AmountRefunded)
	}
}

// claimLinked claims (merchant, key) with a new payment, the only way a
// record gets its payment link, and returns the payment's id.
func claimLinked(t *testing.T, s store.Store, merchant, key, hash string) string {
	t.Helper()
	p := newPayment(merchant, 900)
	c := store.IdempotencyClaim{MerchantID: merchant, Key: key, RequestHash: hash, Now: base}
	if rec, err := paymentWriter(t, s).CreatePaymentClaiming(context.Background(), p, c); rec != nil || err != nil {
		t.Fatalf("CreatePaymentClaiming(%s, %s) = %+v, %v; want ownership (nil, nil)", merchant, key, rec, err)
	}
	return p.ID
}
