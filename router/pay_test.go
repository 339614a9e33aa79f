package router_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/internal/store/sqlite"
	"github.com/payrouter/payrouter/providers"
	"github.com/payrouter/payrouter/router"
)

// The SQL stores have the router's optional power.
var _ router.PaymentWriter = store.PaymentWriter(nil)

// Fake is a provider whose answers the test scripts: Authorize returns
// the next of Answers (the last one repeats), Status returns StatusAnswer
// (nil: unavailable). It records every call.
type Fake struct {
	Answers      []Answer
	StatusAnswer *Answer

	mu         sync.Mutex
	authorized []*providers.AuthorizeRequest
	statuses   int
}

// Answer is one scripted provider answer.
type Answer struct {
	Result *providers.Result
	Err    error
}

var (
	_ providers.Provider      = (*Fake)(nil)
	_ providers.StatusChecker = (*Fake)(nil)
)

func (f *Fake) Capabilities() providers.Capabilities { return providers.Capabilities{} }

func (f *Fake) Authorize(_ context.Context, req *providers.AuthorizeRequest) (*providers.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.authorized = append(f.authorized, req)
	a := f.Answers[min(len(f.authorized), len(f.Answers))-1]
	return a.Result, a.Err
}

func (f *Fake) Status(context.Context, *providers.StatusRequest) (*providers.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses++
	if f.StatusAnswer == nil {
		return nil, &providers.Error{Class: providers.Unavailable, Code: "service_unavailable"}
	}
	return f.StatusAnswer.Result, f.StatusAnswer.Err
}

func (f *Fake) Capture(context.Context, *providers.CaptureRequest) (*providers.Result, error) {
	return nil, errors.New("fake: capture not scripted")
}

func (f *Fake) Cancel(context.Context, *providers.CancelRequest) (*providers.Result, error) {
	return &providers.Result{Status: payrouter.StatusCanceled}, nil
}

func (f *Fake) Refund(context.Context, *providers.RefundRequest) (*providers.RefundResult, error) {
	return nil, errors.New("fake: refund not scripted")
}

func (f *Fake) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.authorized)
}

// fixedRoute routes every payment to the same candidates.
type fixedRoute []string

func (r fixedRoute) Plan(*payrouter.Payment, string) (router.Plan, error) {
	p := router.Plan{Route: payrouter.Route{Rule: "test", Strategy: "priority", Reason: "test route"}}
	for _, name := range r {
		p.Candidates = append(p.Candidates, router.Candidate{Provider: name})
	}
	return p, nil
}

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "r.db"), sqlite.Options{Synchronous: "off"})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// options are config.yaml's defaults.
var options = router.Options{Deadline: 30 * time.Second, MaxAttempts: 3, PaymentTTL: 24 * time.Hour, ResolveBackoff: 2 * time.Second}

// closedBreaker never trips within a test.
var closedBreaker = router.BreakerSettings{FailureRatio: 1, MinRequests: 1000, OpenFor: time.Minute, HalfOpenProbes: 1}

func ok(s payrouter.Status, id string) Answer {
	return Answer{Result: &providers.Result{Status: s, ProviderPaymentID: id}}
}

func fail(c providers.Class, code string) Answer {
	return Answer{Err: &providers.Error{Class: c, Code: code, Message: code}}
}

// Pay's failover decisions per error class, through the public API: which
// providers were called, and what the payment says afterwards.
func TestPayFailover(t *testing.T) {
	tests := []struct {
		name      string
		method    payrouter.Method
		first     []Answer
		status    *Answer // the first provider's answer to a status query
		second    []Answer
		maxTries  int
		wantCalls [2]int
		want      payrouter.Status
		wantAt    string // the payment's provider
		wantCode  string // the failure code, when failed
	}{
		{name: "success stops", method: payrouter.MethodCard, first: []Answer{ok(payrouter.StatusSucceeded, "a_1")},
			wantCalls: [2]int{1, 0}, want: payrouter.StatusSucceeded, wantAt: "a"},
		{name: "declined stops", method: payrouter.MethodCard, first: []Answer{fail(providers.Declined, "card_declined")},
			second: []Answer{ok(payrouter.StatusSucceeded, "b_1")}, wantCalls: [2]int{1, 0}, want: payrouter.StatusFailed, wantCode: "card_declined"},
		{name: "invalid moves on", method: payrouter.MethodCard, first: []Answer{fail(providers.Invalid, "unsupported")},
			second: []Answer{ok(payrouter.StatusSucceeded, "b_1")}, wantCalls: [2]int{1, 1}, want: payrouter.StatusSucceeded, wantAt: "b"},
		{name: "unavailable moves on", method: payrouter.MethodCard, first: []Answer{fail(providers.Unavailable, "service_unavailable")},
			second: []Answer{ok(payrouter.StatusSucceeded, "b_1")}, wantCalls: [2]int{1, 1}, want: payrouter.StatusSucceeded, wantAt: "b"},
		{name: "every candidate unavailable fails plainly", method: payrouter.MethodCard, first: []Answer{fail(providers.Unavailable, "service_unavailable")},
			second: []Answer{fail(providers.Unavailable, "service_unavailable")}, wantCalls: [2]int{1, 1}, want: payrouter.StatusFailed, wantCode: "provider_unavailable"},
		{name: "max attempts bounds failover", method: payrouter.MethodCard, maxTries: 1, first: []Answer{fail(providers.Unavailable, "service_unavailable")},
			second: []Answer{ok(payrouter.StatusSucceeded, "b_1")}, wantCalls: [2]int{1, 0}, want: payrouter.StatusFailed, wantCode: "provider_unavailable"},
		{name: "ambiguous card resolves at its provider, never fails over", method: payrouter.MethodCard,
			first: []Answer{fail(providers.Ambiguous, "timeout")}, status: &Answer{Result: &providers.Result{Status: payrouter.StatusSucceeded, ProviderPaymentID: "a_1"}},
			second: []Answer{ok(payrouter.StatusSucceeded, "b_1")}, wantCalls: [2]int{1, 0}, want: payrouter.StatusSucceeded, wantAt: "a"},
		{name: "ambiguous card still unknown stays processing, never fails over", method: payrouter.MethodCard,
			first: []Answer{fail(providers.Ambiguous, "timeout")}, second: []Answer{ok(payrouter.StatusSucceeded, "b_1")},
			wantCalls: [2]int{1, 0}, want: payrouter.StatusProcessing, wantAt: "a"},
		{name: "ambiguous QR fails over", method: payrouter.MethodQRIS, first: []Answer{fail(providers.Ambiguous, "timeout")},
			second: []Answer{ok(payrouter.StatusRequiresAction, "b_1")}, wantCalls: [2]int{1, 1}, want: payrouter.StatusRequiresAction, wantAt: "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &Fake{Answers: tt.first, StatusAnswer: tt.status}
			b := &Fake{Answers: tt.second}
			if len(b.Answers) == 0 {
				b.Answers = []Answer{ok(payrouter.StatusSucceeded, "b_1")}
			}
			guard := func(name string, p providers.Provider) *router.Guarded {
				return router.Guard(name, p, time.Second, closedBreaker, nil)
			}
			o := options
			if tt.maxTries != 0 {
				o.MaxAttempts = tt.maxTries
			}
			r := router.New(openStore(t), fixedRoute{"a", "b"}, map[string]*router.Guarded{"a": guard("a", a), "b": guard("b", b)}, o, nil)
			p, err := r.Pay(context.Background(), &router.CreateRequest{MerchantID: "m1", Amount: 50000, Currency: "IDR",
				Method: tt.method, Reference: "ref-1"})
			if err != nil {
				t.Fatalf("Pay: %v", err)
			}
			if got := [2]int{a.calls(), b.calls()}; got != tt.wantCalls {
				t.Errorf("authorize calls (a, b) = %v, want %v", got, tt.wantCalls)
			}
			if p.Status != tt.want {
				t.Errorf("status = %s, want %s (route: %s)", p.Status, tt.want, p.Route.Reason)
			}
			if tt.wantAt != "" && p.Provider != tt.wantAt {
				t.Errorf("provider = %q, want %q", p.Provider, tt.wantAt)
			}
			if tt.wantCode != "" && (p.Failure == nil || p.Failure.Code != tt.wantCode) {
				t.Errorf("failure = %+v, want code %s", p.Failure, tt.wantCode)
			}
			if n := a.calls() + b.calls(); len(p.Attempts) != n {
				t.Errorf("%d attempts recorded for %d calls", len(p.Attempts), n)
			}
			for i, at := range p.Attempts {
				if at.IdempotencyKey != payrouter.AttemptKey(p.ID, i+1) {
					t.Errorf("attempt %d key = %q, want %q", i+1, at.IdempotencyKey, payrouter.AttemptKey(p.ID, i+1))
				}
			}
		})
	}
}

// A provider whose breaker is open is skipped without a call, and the skip
// is not an attempt against MaxAttempts.
func TestPaySkipsOpenBreaker(t *testing.T) {
	a := &Fake{Answers: []Answer{fail(providers.Unavailable, "service_unavailable")}}
	b := &Fake{Answers: []Answer{ok(payrouter.StatusSucceeded, "b_1")}}
	ga := router.Guard("a", a, time.Second, router.BreakerSettings{MinRequests: 1, FailureRatio: 0.5, OpenFor: time.Hour}, nil)
	gb := router.Guard("b", b, time.Second, closedBreaker, nil)
	o := options
	o.MaxAttempts = 1
	r := router.New(openStore(t), fixedRoute{"a", "b"}, map[string]*router.Guarded{"a": ga, "b": gb}, o, nil)
	req := func(ref string) *router.CreateRequest {
		return &router.CreateRequest{MerchantID: "m1", Amount: 50000, Currency: "IDR", Method: payrouter.MethodCard, Reference: ref}
	}
	// The first payment trips a's breaker (max attempts 1: it fails there).
	if p, err := r.Pay(context.Background(), req("ref-1")); err != nil || p.Status != payrouter.StatusFailed {
		t.Fatalf("first Pay = %v, %v; want failed at a", p, err)
	}
	if ok, _ := ga.Allow(payrouter.MethodCard); ok {
		t.Fatalf("a's breaker still closed after a failure at ratio 0.5, min 1")
	}
	p, err := r.Pay(context.Background(), req("ref-2"))
	if err != nil {
		t.Fatalf("second Pay: %v", err)
	}
	if p.Status != payrouter.StatusSucceeded || p.Provider != "b" || a.calls() != 1 || b.calls() != 1 {
		t.Errorf("second Pay = %s at %q with calls (a %d, b %d); want succeeded at b, a not called again", p.Status, p.Provider, a.calls(), b.calls())
	}
}
