package app

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
	"github.com/payrouter/payrouter/router"
)

// refusing is a provider whose every call is refused with our credentials.
type refusing struct{ refuse bool }

func (r *refusing) Capabilities() providers.Capabilities { return providers.Capabilities{} }
func (r *refusing) Authorize(context.Context, *providers.AuthorizeRequest) (*providers.Result, error) {
	if r.refuse {
		return nil, providers.CredentialsRefused(401, "", "bad key")
	}
	return &providers.Result{Status: payrouter.StatusSucceeded}, nil
}
func (r *refusing) Capture(context.Context, *providers.CaptureRequest) (*providers.Result, error) {
	return nil, errors.New("unused")
}
func (r *refusing) Cancel(context.Context, *providers.CancelRequest) (*providers.Result, error) {
	return nil, errors.New("unused")
}
func (r *refusing) Refund(context.Context, *providers.RefundRequest) (*providers.RefundResult, error) {
	return nil, errors.New("unused")
}

// Readiness names every provider refusing our credentials, and is lost
// only when all of them refuse.
func TestCredentialsReadiness(t *testing.T) {
	a := router.Guard("a", &refusing{refuse: true}, time.Second, router.BreakerSettings{}, nil)
	b := router.Guard("b", &refusing{}, time.Second, router.BreakerSettings{}, nil)
	call := func(g *router.Guarded) {
		_, _ = g.Authorize(context.Background(), &providers.AuthorizeRequest{Method: payrouter.MethodCard})
	}
	provs := map[string]*router.Guarded{"a": a, "b": b}
	if refused, ok := credentialsReadiness(provs); !ok || len(refused) != 0 {
		t.Fatalf("before any call: %v, %v; want ready, none refused", refused, ok)
	}
	call(a)
	call(b)
	refused, ok := credentialsReadiness(provs)
	if !ok || len(refused) != 1 || refused["a"] == nil {
		t.Fatalf("one refusing: %v, %v; want ready naming a", refused, ok)
	}
	b.Provider.(*refusing).refuse = true
	call(b)
	if refused, ok := credentialsReadiness(provs); ok || len(refused) != 2 {
		t.Fatalf("all refusing: %v, %v; want not ready naming a and b", refused, ok)
	}
}
