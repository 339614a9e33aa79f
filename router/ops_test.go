package router

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store/sqlite"
	"github.com/payrouter/payrouter/providers"
)

// refunder is a Provider that refunds like a provider with idempotency
// keys: the same key is the same refund. next says how the next call
// ends (nil: succeeded).
type refunder struct {
	fake
	mu                sync.Mutex
	keys              []string         // every refund call's key
	refunded          map[string]int64 // key → amount, once per key
	next              []error          // outcomes of the next calls
	captures, cancels []string         // keys
}

func (f *refunder) Capabilities() providers.Capabilities {
	return providers.Capabilities{Refund: true, PartialRefund: true, PartialCapture: true}
}

func (f *refunder) Refund(_ context.Context, r *providers.RefundRequest) (*providers.RefundResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys = append(f.keys, r.IdempotencyKey)
	var err error
	if len(f.next) > 0 {
		err, f.next = f.next[0], f.next[1:]
	}
	if err != nil && providers.ClassOf(err) != providers.Ambiguous {
		return nil, err // refused: nothing refunded
	}
	if _, ok := f.refunded[r.IdempotencyKey]; !ok {
		f.refunded[r.IdempotencyKey] = r.Amount
	}
	if err != nil {
		return nil, err // refunded, answer lost
	}
	return &providers.RefundResult{ProviderRefundID: "rf_" + r.IdempotencyKey, Status: payrouter.RefundSucceeded}, nil
}

func (f *refunder) Capture(_ context.Context, r *providers.CaptureRequest) (*providers.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.captures = append(f.captures, r.IdempotencyKey)
	return &providers.Result{Status: payrouter.StatusSucceeded}, nil
}

func (f *refunder) Cancel(_ context.Context, r *providers.CancelRequest) (*providers.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancels = append(f.cancels, r.IdempotencyKey)
	return &providers.Result{Status: payrouter.StatusCanceled}, nil
}

func (f *refunder) total() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, a := range f.refunded {
		n += a
	}
	return n
}

func opsRouter(t *testing.T) (*Router, *refunder, func(status payrouter.Status) *payrouter.Payment) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "r.db"), sqlite.Options{Synchronous: "off"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &refunder{refunded: map[string]int64{}}
	r := New(st, nil, map[string]*Guarded{"p": Guard("p", f, time.Second, BreakerSettings{FailureRatio: 1, MinRequests: 1000, OpenFor: time.Minute, HalfOpenProbes: 1}, nil)},
		Options{Deadline: 30 * time.Second, MaxAttempts: 3, PaymentTTL: 24 * time.Hour, ResolveBackoff: 2 * time.Second}, nil)
	n := 0
	mk := func(status payrouter.Status) *payrouter.Payment {
		t.Helper()
		n++
		now := time.Now().UTC()
		p := &payrouter.Payment{ID: NewID("pay_"), MerchantID: "m", Status: status, Amount: 10000, Currency: "USD",
			Method: payrouter.MethodCard, Reference: "r" + string(rune('a'+n)), Provider: "p", ProviderPaymentID: "pp",
			Capture: payrouter.CaptureManual, CreatedAt: now, UpdatedAt: now}
		if status == payrouter.StatusSucceeded {
			p.AmountCaptured = p.Amount
		}
		if err := st.CreatePayment(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return r, f, mk
}

func TestRefundOpOncePerOperation(t *testing.T) {
	ctx := context.Background()
	unavailable := &providers.Error{Class: providers.Unavailable, Code: "provider_unavailable"}
	lost := &providers.Error{Class: providers.Ambiguous, Code: "timeout"}
	tests := []struct {
		name string
		next []error
		runs []Op // the operation's runs, in order
		// want: refunded once at the provider, refunds recorded, provider
		// calls, and whether the provider keys of all calls are one.
		wantRefunds int
		wantCalls   int
		sameKey     bool
	}{
		{"retried after success: the refund is the answer", nil,
			[]Op{{Key: "k"}, {Key: "k", Resumed: true}, {Key: "k"}}, 1, 1, true},
		{"answer lost: resent with the same key", []error{lost},
			[]Op{{Key: "k"}, {Key: "k", Resumed: true}}, 1, 2, true},
		{"unavailable: the retry refunds under the next id", []error{unavailable},
			[]Op{{Key: "k"}, {Key: "k"}}, 2, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, f, mk := opsRouter(t)
			f.next = tt.next
			p := mk(payrouter.StatusSucceeded)
			for _, op := range tt.runs {
				_, _, _ = r.RefundOp(ctx, "m", p.ID, 3000, "x", op)
			}
			if got := f.total(); got != 3000 {
				t.Errorf("provider refunded %d, want 3000 once", got)
			}
			q, _ := r.store.GetPayment(ctx, "m", p.ID)
			if q.AmountRefunded != 3000 || len(q.Refunds) != tt.wantRefunds {
				t.Errorf("amount_refunded %d in %d refunds, want 3000 in %d", q.AmountRefunded, len(q.Refunds), tt.wantRefunds)
			}
			if len(f.keys) != tt.wantCalls {
				t.Errorf("%d provider calls %v, want %d", len(f.keys), f.keys, tt.wantCalls)
			}
			if same := len(f.keys) > 0 && f.keys[0] == f.keys[len(f.keys)-1]; same != tt.sameKey {
				t.Errorf("provider keys %v: all the same = %v, want %v", f.keys, same, tt.sameKey)
			}
			for _, rf := range q.Refunds {
				if rf.ID != OpRefundID("k", 1) && rf.ID != OpRefundID("k", 2) {
					t.Errorf("refund id %s is not derived from the operation key", rf.ID)
				}
			}
		})
	}

	t.Run("other operations refund again", func(t *testing.T) {
		r, f, mk := opsRouter(t)
		p := mk(payrouter.StatusSucceeded)
		for _, op := range []Op{{Key: "a"}, {Key: "b"}, {}, {}} {
			if _, _, err := r.RefundOp(ctx, "m", p.ID, 1000, "", op); err != nil {
				t.Fatal(err)
			}
		}
		if got := f.total(); got != 4000 {
			t.Errorf("provider refunded %d, want 4000 (four operations)", got)
		}
	})
}

func TestCaptureCancelResumed(t *testing.T) {
	ctx := context.Background()
	r, f, mk := opsRouter(t)
	p := mk(payrouter.StatusAuthorized)
	if _, err := r.CaptureOp(ctx, "m", p.ID, 0, Op{Key: "c"}); err != nil {
		t.Fatal(err)
	}
	// A resumed capture answers with the captured payment, without a call.
	q, err := r.CaptureOp(ctx, "m", p.ID, 0, Op{Key: "c", Resumed: true})
	if err != nil || q.Status != payrouter.StatusSucceeded {
		t.Fatalf("resumed capture = %v, %v; want the succeeded payment", q, err)
	}
	// Not resumed (another operation), the state refuses it.
	var pe *payrouter.Error
	if _, err := r.CaptureOp(ctx, "m", p.ID, 0, Op{Key: "c2"}); !errors.As(err, &pe) || pe.Type != payrouter.ErrInvalidState {
		t.Errorf("second capture = %v, want invalid_state", err)
	}
	if len(f.captures) != 1 || f.captures[0] != p.ID+"_capture" {
		t.Errorf("provider captures %v, want one with key %s_capture", f.captures, p.ID)
	}

	c := mk(payrouter.StatusAuthorized)
	if _, err := r.CancelOp(ctx, "m", c.ID, Op{Key: "x"}); err != nil {
		t.Fatal(err)
	}
	if q, err := r.CancelOp(ctx, "m", c.ID, Op{Key: "x", Resumed: true}); err != nil || q.Status != payrouter.StatusCanceled {
		t.Fatalf("resumed cancel = %v, %v; want the canceled payment", q, err)
	}
	if _, err := r.CancelOp(ctx, "m", c.ID, Op{Key: "y"}); !errors.As(err, &pe) || pe.Type != payrouter.ErrInvalidState {
		t.Errorf("second cancel = %v, want invalid_state", err)
	}
	if len(f.cancels) != 1 {
		t.Errorf("provider cancels %v, want one", f.cancels)
	}
}
