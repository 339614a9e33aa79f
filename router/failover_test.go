package router

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// fake is a Provider whose Authorize returns what the test says.
type fake struct {
	authorize func(ctx context.Context) (*providers.Result, error)
}

var _ providers.Provider = (*fake)(nil)

func (f *fake) Capabilities() providers.Capabilities { return providers.Capabilities{} }
func (f *fake) Authorize(ctx context.Context, _ *providers.AuthorizeRequest) (*providers.Result, error) {
	return f.authorize(ctx)
}
func (f *fake) Capture(context.Context, *providers.CaptureRequest) (*providers.Result, error) {
	return nil, errors.New("unused")
}
func (f *fake) Cancel(context.Context, *providers.CancelRequest) (*providers.Result, error) {
	return &providers.Result{Status: payrouter.StatusCanceled}, nil
}
func (f *fake) Refund(context.Context, *providers.RefundRequest) (*providers.RefundResult, error) {
	return nil, errors.New("unused")
}

// The failover table (docs/architecture.md, Failover classes).
func TestDecide(t *testing.T) {
	r := New(nil, nil, nil, Options{SoftDeclines: map[string][]string{"stripe": {"do_not_honor"}}}, nil)
	err := func(c providers.Class, code, pcode string) error {
		return &providers.Error{Class: c, Code: code, ProviderCode: pcode}
	}
	tests := []struct {
		name     string
		provider string
		method   payrouter.Method
		err      error
		want     decision
	}{
		{"success", "stripe", payrouter.MethodCard, nil, stop},
		{"hard decline stops", "stripe", payrouter.MethodCard, err(providers.Declined, "card_declined", "insufficient_funds"), stop},
		{"soft decline cascades", "stripe", payrouter.MethodCard, err(providers.Declined, "card_declined", "do_not_honor"), failover},
		{"soft decline is per provider", "xendit", payrouter.MethodCard, err(providers.Declined, "card_declined", "do_not_honor"), stop},
		{"invalid moves on", "stripe", payrouter.MethodCard, err(providers.Invalid, "unsupported", ""), failover},
		{"unavailable moves on", "stripe", payrouter.MethodCard, err(providers.Unavailable, "service_unavailable", ""), failover},
		{"ambiguous card holds", "stripe", payrouter.MethodCard, err(providers.Ambiguous, "timeout", ""), hold},
		{"ambiguous qris moves on", "midtrans", payrouter.MethodQRIS, err(providers.Ambiguous, "timeout", ""), failover},
		{"unclassified error is ambiguous: card holds", "stripe", payrouter.MethodCard, errors.New("EOF"), hold},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.decide(tt.provider, tt.method, tt.err); got != tt.want {
				t.Errorf("decide(%s, %s, %v) = %d, want %d", tt.provider, tt.method, tt.err, got, tt.want)
			}
		})
	}
}

// A call cut by the caller's context (overall deadline, shutdown) is
// excluded from the breaker; the same error from the per-call timeout
// counts. Declines and invalid requests never count.
func TestBreakerCountsOnlyProviderFailures(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		cancelled bool // the caller's context ends during the call
		wantOpen  bool
	}{
		{"unavailable trips", &providers.Error{Class: providers.Unavailable, Code: "service_unavailable"}, false, true},
		{"ambiguous trips", &providers.Error{Class: providers.Ambiguous, Code: "timeout"}, false, true},
		{"declined does not", &providers.Error{Class: providers.Declined, Code: "card_declined"}, false, false},
		{"invalid does not", &providers.Error{Class: providers.Invalid, Code: "unsupported"}, false, false},
		{"caller gone does not", &providers.Error{Class: providers.Ambiguous, Code: "timeout"}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fake{}
			g := Guard("p", f, time.Second, BreakerSettings{MinRequests: 3, FailureRatio: 0.5, OpenFor: time.Minute}, nil)
			for i := range 3 {
				ctx, cancel := context.WithCancel(context.Background())
				f.authorize = func(context.Context) (*providers.Result, error) {
					if tt.cancelled {
						cancel()
					}
					return nil, tt.err
				}
				_, err := g.Authorize(ctx, &providers.AuthorizeRequest{Method: payrouter.MethodCard})
				cancel()
				if providers.ClassOf(err) != providers.ClassOf(tt.err) {
					t.Fatalf("call %d: class %s, want the provider's %s", i, providers.ClassOf(err), providers.ClassOf(tt.err))
				}
			}
			if got := g.BreakerState(payrouter.MethodCard) == gobreaker.StateOpen; got != tt.wantOpen {
				t.Errorf("open = %v after 3 calls, want %v", got, tt.wantOpen)
			}
			ok, why := g.Allow(payrouter.MethodCard)
			if ok == tt.wantOpen {
				t.Errorf("Allow = %v (%s) with the breaker open=%v", ok, why, tt.wantOpen)
			}
		})
	}
}

// Exclusions (a distributed breaker's admission checks, calls the caller
// cut) do not dilute the failure ratio.
func TestReadyToTripIgnoresExclusions(t *testing.T) {
	st := BreakerSettings{MinRequests: 4, FailureRatio: 0.5}.Gobreaker("x", nil)
	tests := []struct {
		c    gobreaker.Counts
		want bool
	}{
		{gobreaker.Counts{Requests: 8, TotalExclusions: 4, TotalFailures: 4}, true},
		{gobreaker.Counts{Requests: 8, TotalExclusions: 4, TotalFailures: 1}, false},
		{gobreaker.Counts{Requests: 6, TotalExclusions: 3, TotalFailures: 3}, false}, // 3 counted < min 4
		{gobreaker.Counts{Requests: 2, TotalExclusions: 5, TotalFailures: 0}, false},
	}
	for _, tt := range tests {
		if got := st.ReadyToTrip(tt.c); got != tt.want {
			t.Errorf("ReadyToTrip(%+v) = %v, want %v", tt.c, got, tt.want)
		}
	}
}
