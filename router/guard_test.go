package router_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
	"github.com/payrouter/payrouter/router"
)

// blocking answers only when its context ends.
type blocking struct{ Fake }

func (b *blocking) Authorize(ctx context.Context, _ *providers.AuthorizeRequest) (*providers.Result, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// The wrappers stack like any providers.Provider: Observed around Breakers
// around Timeout around the adapter, each layer seeing what the one below
// made of the call.
func TestWrappersCompose(t *testing.T) {
	type seen struct {
		op    string
		class providers.Class
	}
	var got []seen
	adapter := &blocking{}
	var p providers.Provider = &router.Timeout{Next: adapter, D: 10 * time.Millisecond}
	p = router.NewBreakers("x", p, router.BreakerSettings{FailureRatio: 0.5, MinRequests: 2, OpenFor: time.Hour, HalfOpenProbes: 1}, nil, nil)
	p = &router.Observed{Next: p, Observe: func(_ payrouter.Method, op string, c providers.Class, _ time.Duration) {
		got = append(got, seen{op, c})
	}}
	req := &providers.AuthorizeRequest{Method: payrouter.MethodCard}
	for range 3 {
		_, _ = p.Authorize(context.Background(), req)
	}
	// Two timeouts (ambiguous: the stray context error was classified by
	// Timeout) trip the breaker; the third call is refused without reaching
	// the adapter.
	want := []seen{{"authorize", providers.Ambiguous}, {"authorize", providers.Ambiguous}, {"authorize", providers.Unavailable}}
	if len(got) != len(want) {
		t.Fatalf("observed %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("call %d observed %v, want %v", i+1, got[i], want[i])
		}
	}
	_, err := p.Authorize(context.Background(), req)
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Code != router.CodeBreakerOpen {
		t.Errorf("after the trip: %v, want %s", err, router.CodeBreakerOpen)
	}
	// A Guarded is itself a Provider: another stack may wrap it.
	var _ providers.Provider = router.Guard("inner", adapter, time.Second, router.BreakerSettings{}, nil)
}

// Capture runs under the breaker of the payment's method, now carried in
// the request: a card breaker that is open refuses a card capture and lets
// a QRIS one through.
func TestCaptureUsesTheMethodsBreaker(t *testing.T) {
	f := &Fake{Answers: []Answer{fail(providers.Unavailable, "service_unavailable")}}
	g := router.Guard("p", f, time.Second, router.BreakerSettings{FailureRatio: 0.5, MinRequests: 1, OpenFor: time.Hour, HalfOpenProbes: 1}, nil)
	_, _ = g.Authorize(context.Background(), &providers.AuthorizeRequest{Method: payrouter.MethodCard})
	if ok, _ := g.Allow(payrouter.MethodCard); ok {
		t.Fatal("card breaker closed after a failure at min_requests 1")
	}
	_, err := g.Capture(context.Background(), &providers.CaptureRequest{Method: payrouter.MethodCard})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Code != router.CodeBreakerOpen {
		t.Errorf("card capture: %v, want %s", err, router.CodeBreakerOpen)
	}
	_, err = g.Capture(context.Background(), &providers.CaptureRequest{Method: payrouter.MethodQRIS})
	if errors.As(err, &pe) && pe.Code == router.CodeBreakerOpen {
		t.Errorf("qris capture refused by a breaker: %v", err)
	}
}
