package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
)

// capturedWithPendingRefund is a succeeded payment holding one pending
// refund, queued for the resolver: the state the router writes before it
// calls the provider.
func capturedWithPendingRefund(n int) *payrouter.Payment {
	p := newPayment("m1", n)
	p.Status, p.AmountCaptured = payrouter.StatusSucceeded, p.Amount
	p.Attempts[0].Status = payrouter.AttemptSucceeded
	p.Refunds = []payrouter.Refund{{ID: "re_pending", Amount: 20000, Reason: "requested_by_customer", Status: payrouter.RefundPending, CreatedAt: at(time.Minute)}}
	p.ResolveAt = ptr(at(2 * time.Minute))
	return p
}

// A pending refund is the resolver's work: its payment is due; it holds its
// amount until settled; settling it from many writers at once (webhook,
// resolvers on several instances) changes the payment once and commits one
// refund_success event with it. A failed refund releases its amount.
func testRefundSettleOnce(t *testing.T, s store.Store) {
	ctx := context.Background()
	p := capturedWithPendingRefund(1)
	create(t, s, p)
	due, err := s.DuePayments(ctx, at(2*time.Minute), 10)
	if err != nil || len(due) != 1 || due[0].ID != p.ID {
		t.Fatalf("DuePayments = %v, %v; want the payment with the pending refund", ids(due), err)
	}
	if got := due[0].Refunds; len(got) != 1 || got[0].Status != payrouter.RefundPending || !got[0].CreatedAt.Equal(at(time.Minute)) {
		t.Fatalf("due payment's refunds = %+v, want re_pending as written", got)
	}
	if left := due[0].Refundable(); left != p.Amount-20000 {
		t.Errorf("Refundable with the refund pending = %d, want %d (its amount held)", left, p.Amount-20000)
	}
	const writers = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	settled := 0
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdatePayment(ctx, p.ID, func(q *payrouter.Payment) error {
				if q.Refunds[0].Status != payrouter.RefundPending {
					return nil
				}
				q.Refunds[0].ProviderRefundID = "prv-re-1"
				q.ResolveAt = nil
				return q.SettleRefund("re_pending", true, "", at(3*time.Minute))
			})
			if err != nil {
				t.Errorf("UpdatePayment: %v", err)
				return
			}
			mu.Lock()
			settled++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if settled != writers {
		t.Fatalf("%d of %d writers finished", settled, writers)
	}
	got := get(t, s, "m1", p.ID)
	if got.Status != payrouter.StatusPartiallyRefunded || got.AmountRefunded != 20000 || got.Refunds[0].Status != payrouter.RefundSucceeded || got.Refunds[0].ProviderRefundID != "prv-re-1" {
		t.Errorf("after settling: status %s refunded %d refund %+v; want partially_refunded 20000 succeeded prv-re-1", got.Status, got.AmountRefunded, got.Refunds[0])
	}
	if got.ResolveAt != nil {
		t.Errorf("ResolveAt = %v after the refund settled, want nil", got.ResolveAt)
	}
	if due, _ := s.DuePayments(ctx, at(time.Hour), 10); len(due) != 0 {
		t.Errorf("DuePayments after settling = %v, want none", ids(due))
	}
	evs, err := s.ListEvents(ctx, "m1", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.PaymentID == p.ID && e.Type == payrouter.EventRefundSuccess {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d refund_success events after %d concurrent settles, want 1", n, writers)
	}

	// A failed refund releases what it held, with one refund_failed.
	f := capturedWithPendingRefund(2)
	create(t, s, f)
	if _, err := s.UpdatePayment(ctx, f.ID, func(q *payrouter.Payment) error {
		return q.SettleRefund("re_pending", false, "provider_refund_failed", at(3*time.Minute))
	}); err != nil {
		t.Fatal(err)
	}
	got = get(t, s, "m1", f.ID)
	if got.Refundable() != f.Amount || got.Refunds[0].Status != payrouter.RefundFailed || got.Refunds[0].FailureCode != "provider_refund_failed" || got.Status != payrouter.StatusSucceeded {
		t.Errorf("after a failed refund: refundable %d refund %+v status %s; want %d, failed provider_refund_failed, succeeded", got.Refundable(), got.Refunds[0], got.Status, f.Amount)
	}
	evs, _ = s.ListEvents(ctx, "m1", 0, 100)
	n = 0
	for _, e := range evs {
		if e.PaymentID == f.ID && e.Type == payrouter.EventRefundFailed {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d refund_failed events, want 1", n)
	}
}

// A read never mixes two versions of a payment: the payment row and its
// refunds (and attempts) come from the same committed state, even while
// another writer settles refunds. A torn read would show a refund
// succeeded while amount_refunded does not count it yet.
func testReadConsistent(t *testing.T, s store.Store) {
	ctx := context.Background()
	p := newPayment("m1", 1)
	p.Status, p.Amount, p.AmountCaptured = payrouter.StatusSucceeded, 1000000, 1000000
	p.Attempts[0].Status = payrouter.AttemptSucceeded
	create(t, s, p)
	const rounds = 60
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range rounds {
			id := "re_" + string(rune('a'+i%26)) + time.Duration(i).String()
			if _, err := s.UpdatePayment(ctx, p.ID, func(q *payrouter.Payment) error {
				q.Refunds = append(q.Refunds, payrouter.Refund{ID: id, Amount: 100, Status: payrouter.RefundPending, CreatedAt: at(time.Minute)})
				return nil
			}); err != nil {
				t.Errorf("append refund: %v", err)
				return
			}
			if _, err := s.UpdatePayment(ctx, p.ID, func(q *payrouter.Payment) error {
				return q.SettleRefund(id, true, "", at(2*time.Minute))
			}); err != nil {
				t.Errorf("settle refund: %v", err)
				return
			}
		}
	}()
	reads := 0
	for {
		select {
		case <-done:
			if reads == 0 {
				t.Fatal("no read ran while the writer did")
			}
			return
		default:
		}
		got, err := s.GetPayment(ctx, "m1", p.ID)
		if err != nil {
			t.Fatal(err)
		}
		reads++
		var sum int64
		for _, rf := range got.Refunds {
			if rf.Status == payrouter.RefundSucceeded {
				sum += rf.Amount
			}
		}
		if sum != got.AmountRefunded {
			<-done
			t.Fatalf("torn read (read %d): amount_refunded %d but succeeded refunds sum to %d (version %d)", reads, got.AmountRefunded, sum, got.Revision())
		}
	}
}
