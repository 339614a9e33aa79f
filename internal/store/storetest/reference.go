package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
)

// outageFailed is a payment that failed because no provider could take
// it: every attempt refused as unavailable (or skipped by a breaker).
func outageFailed(merchant string, n int, ref string) *payrouter.Payment {
	p := newPayment(merchant, n)
	p.Reference, p.Provider, p.ProviderPaymentID = ref, "", ""
	p.Status = payrouter.StatusFailed
	p.Failure = &payrouter.Failure{Code: "provider_unavailable", Message: "no provider could take the payment"}
	p.Attempts = []payrouter.Attempt{
		{N: 1, Provider: "stripe", Status: payrouter.AttemptFailed, ErrorClass: "unavailable", ErrorCode: "provider_unavailable",
			StartedAt: p.CreatedAt, IdempotencyKey: payrouter.AttemptKey(p.ID, 1)},
		{N: 2, Provider: "xendit", Status: payrouter.AttemptSkipped, ErrorClass: "unavailable", ErrorCode: "breaker_open",
			StartedAt: p.CreatedAt, IdempotencyKey: payrouter.AttemptKey(p.ID, 2)},
	}
	return p
}

func testReferenceReuse(t *testing.T, s store.Store) {
	ctx := context.Background()
	n := 0
	next := func() int { n++; return n }
	tests := []struct {
		name     string
		first    func(ref string) *payrouter.Payment
		reusable bool
	}{
		{"outage: every attempt unavailable or skipped", func(ref string) *payrouter.Payment { return outageFailed("m1", next(), ref) }, true},
		{"no_route failure without attempts", func(ref string) *payrouter.Payment {
			p := outageFailed("m1", next(), ref)
			p.Failure.Code, p.Attempts = "no_route", nil
			return p
		}, true},
		{"an attempt refused as invalid", func(ref string) *payrouter.Payment {
			p := outageFailed("m1", next(), ref)
			p.Attempts[1].Status, p.Attempts[1].ErrorClass = payrouter.AttemptFailed, "invalid"
			return p
		}, true},
		{"an ambiguous attempt: a provider may hold it", func(ref string) *payrouter.Payment {
			p := outageFailed("m1", next(), ref)
			p.Attempts[0].Status, p.Attempts[0].ErrorClass = payrouter.AttemptAmbiguous, "ambiguous"
			return p
		}, false},
		{"an attempt with a provider payment id", func(ref string) *payrouter.Payment {
			p := outageFailed("m1", next(), ref)
			p.Attempts[0].ProviderPaymentID = "pi_1"
			return p
		}, false},
		{"a decline", func(ref string) *payrouter.Payment {
			p := outageFailed("m1", next(), ref)
			p.Failure.Code = "card_declined"
			p.Attempts[0].ErrorClass = "declined"
			return p
		}, false},
		{"failed with provider_unavailable after a decline", func(ref string) *payrouter.Payment {
			p := outageFailed("m1", next(), ref)
			p.Attempts[0].ErrorClass = "declined"
			return p
		}, false},
		{"succeeded", func(ref string) *payrouter.Payment { p := newPayment("m1", next()); p.Reference = ref; return p }, false},
		{"processing with unavailable attempts so far", func(ref string) *payrouter.Payment {
			p := outageFailed("m1", next(), ref)
			p.Status, p.Failure = payrouter.StatusProcessing, nil
			return p
		}, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := fmt.Sprintf("reuse-%d", i)
			first := tt.first(ref)
			if got := first.ReferenceReusable(); got != tt.reusable {
				t.Fatalf("ReferenceReusable() = %v, want %v", got, tt.reusable)
			}
			create(t, s, first)
			again := newPayment("m1", next())
			again.Reference = ref
			err := s.CreatePayment(ctx, again)
			if tt.reusable {
				if err != nil {
					t.Fatalf("CreatePayment with the freed reference: %v, want it accepted", err)
				}
				// The new payment takes the reference: a third is refused.
				third := newPayment("m1", next())
				third.Reference = ref
				if err := s.CreatePayment(ctx, third); !errors.Is(err, store.ErrDuplicateReference) {
					t.Errorf("third create with the reference = %v, want ErrDuplicateReference (the second holds it)", err)
				}
				list, err := s.ListPayments(ctx, store.ListFilter{MerchantID: "m1", Reference: ref})
				if err != nil || len(list) != 2 || list[0].ID != again.ID {
					t.Errorf("ListPayments(reference) = %v, %v; want the new payment, then the failed one", ids(list), err)
				}
				return
			}
			if !errors.Is(err, store.ErrDuplicateReference) {
				t.Fatalf("CreatePayment with a taken reference = %v, want ErrDuplicateReference", err)
			}
		})
	}

	// A payment that fails in an outage by an update frees its reference.
	t.Run("freed by an update", func(t *testing.T) {
		p := newPayment("m1", next())
		p.Reference = "reuse-upd"
		p.Status, p.Provider, p.ProviderPaymentID = payrouter.StatusProcessing, "", ""
		p.Attempts[0].ProviderPaymentID = ""
		p.Attempts[0].Status = payrouter.AttemptPending
		create(t, s, p)
		again := newPayment("m1", next())
		again.Reference = p.Reference
		if err := s.CreatePayment(ctx, again); !errors.Is(err, store.ErrDuplicateReference) {
			t.Fatalf("create while the first is processing = %v, want ErrDuplicateReference", err)
		}
		if _, err := s.UpdatePayment(ctx, p.ID, func(q *payrouter.Payment) error {
			q.Attempts[0].Status, q.Attempts[0].ErrorClass = payrouter.AttemptFailed, "unavailable"
			_, err := q.Fail(payrouter.StatusFailed, payrouter.Failure{Code: "provider_unavailable"}, at(time.Minute))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		again = newPayment("m1", next())
		again.Reference = p.Reference
		if err := s.CreatePayment(ctx, again); err != nil {
			t.Fatalf("create after the first failed in an outage = %v, want it accepted", err)
		}
	})

	// Two concurrent creates with one freed reference: exactly one wins,
	// through CreatePayment and CreatePaymentClaiming alike.
	t.Run("concurrent", func(t *testing.T) {
		create(t, s, outageFailed("m1", next(), "reuse-race"))
		const k = 10
		pw, claiming := s.(store.PaymentWriter)
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			wins, dup int
		)
		for i := range k {
			p := newPayment("m1", next())
			p.Reference = "reuse-race"
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				if claiming && i%2 == 1 {
					var rec *store.IdempotencyRecord
					rec, err = pw.CreatePaymentClaiming(ctx, p, claimOf(fmt.Sprintf("race-%d", i), "h"))
					if rec != nil {
						err = fmt.Errorf("unexpected existing record %+v", rec)
					}
				} else {
					err = s.CreatePayment(ctx, p)
				}
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, store.ErrDuplicateReference):
					dup++
				default:
					t.Errorf("create: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 || dup != k-1 {
			t.Errorf("%d won, %d refused of %d concurrent creates with a freed reference; want 1 and %d", wins, dup, k, k-1)
		}
	})

	// Other merchants are unaffected; references stay per merchant.
	other := newPayment("m2", next())
	other.Reference = "reuse-race"
	create(t, s, other)
}

func testIdempotencyGet(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.GetIdempotencyKey(ctx, "m1", "k"); !errors.Is(err, payrouter.ErrNotExist) {
		t.Fatalf("GetIdempotencyKey(missing) error = %v, want ErrNotExist", err)
	}
	if rec, err := s.ClaimIdempotencyKey(ctx, "m1", "k", "h", base); rec != nil || err != nil {
		t.Fatalf("claim = %+v, %v", rec, err)
	}
	rec, err := s.GetIdempotencyKey(ctx, "m1", "k")
	if err != nil || !rec.Running() || rec.RequestHash != "h" || !rec.CreatedAt.Equal(base) {
		t.Fatalf("GetIdempotencyKey(running) = %+v, %v; want the running record", rec, err)
	}
	if _, err := s.GetIdempotencyKey(ctx, "m2", "k"); !errors.Is(err, payrouter.ErrNotExist) {
		t.Errorf("GetIdempotencyKey(other merchant) error = %v, want ErrNotExist", err)
	}
	if err := s.CompleteIdempotencyKey(ctx, "m1", "k", 201, []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	rec, err = s.GetIdempotencyKey(ctx, "m1", "k")
	if err != nil || rec.Status != 201 || string(rec.Body) != `{"a":1}` {
		t.Fatalf("GetIdempotencyKey(completed) = %+v, %v", rec, err)
	}
	// Reading never claims: a missing key is still free.
	if rec, err := s.ClaimIdempotencyKey(ctx, "m1", "k2", "h", base); rec != nil || err != nil {
		t.Errorf("claim after reads = %+v, %v; want ownership", rec, err)
	}
}
