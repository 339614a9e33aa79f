package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// CodeBreakerOpen is the error code of a call refused by an open breaker:
// class Unavailable, and nothing was sent.
const CodeBreakerOpen = "breaker_open"

// Breaker is what Guarded needs from a circuit breaker: gobreaker's local
// CircuitBreaker[any] and its Redis-shared DistributedCircuitBreaker[any]
// both fit.
type Breaker interface {
	Execute(func() (any, error)) (any, error)
}

// BreakerSettings configures the breakers of one provider.
type BreakerSettings struct {
	FailureRatio   float64 // trip when failures/requests ≥ this …
	MinRequests    uint32  // … over at least this many requests
	OpenFor        time.Duration
	HalfOpenProbes uint32
	Interval       time.Duration // counts reset this often while closed
}

// Gobreaker turns BreakerSettings into gobreaker settings. Only unavailable
// and ambiguous errors count as failures: a decline or an invalid request
// says nothing about the provider's health. A call cut short by its caller
// (the request's overall deadline, shutdown) is excluded: it says nothing
// either. The failure ratio is taken over counted requests (exclusions
// left out), so a distributed breaker's admission checks do not dilute it.
func (s BreakerSettings) Gobreaker(name string, onChange func(name string, from, to gobreaker.State)) gobreaker.Settings {
	if s.MinRequests == 0 {
		s.MinRequests = 10
	}
	if s.FailureRatio == 0 {
		s.FailureRatio = 0.5
	}
	if s.OpenFor == 0 {
		s.OpenFor = 30 * time.Second
	}
	if s.HalfOpenProbes == 0 {
		s.HalfOpenProbes = 1
	}
	if s.Interval == 0 {
		s.Interval = 60 * time.Second
	}
	ratioPermille := uint64(s.FailureRatio * 1000)
	return gobreaker.Settings{
		Name:        name,
		MaxRequests: s.HalfOpenProbes,
		Interval:    s.Interval,
		Timeout:     s.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			n := c.Requests
			if c.TotalExclusions < n {
				n -= c.TotalExclusions
			} else {
				n = 0
			}
			return n >= s.MinRequests && uint64(c.TotalFailures)*1000 >= uint64(n)*ratioPermille
		},
		OnStateChange: onChange,
		IsExcluded: func(err error) bool {
			var cg *callerGone
			return errors.As(err, &cg)
		},
		IsSuccessful: func(err error) bool {
			if err == nil {
				return true
			}
			c := providers.ClassOf(err)
			return c == providers.Declined || c == providers.Invalid
		},
	}
}

// Guarded wraps a Provider with what every adapter needs and none should
// repeat: a per-call timeout and a circuit breaker per method.
type Guarded struct {
	Name     string
	Provider providers.Provider
	Timeout  time.Duration

	mu         sync.Mutex
	breakers   map[payrouter.Method]Breaker
	newBreaker func(method payrouter.Method) Breaker
	state      map[payrouter.Method]gobreaker.State
	// OnStateChange observes breaker transitions (logs, metrics).
	OnStateChange func(provider string, method payrouter.Method, from, to gobreaker.State)
	// Observe sees every call's outcome: op is authorize|capture|cancel|
	// refund|status, class is "" on success (metrics).
	Observe func(provider string, method payrouter.Method, op string, class providers.Class, d time.Duration)
	// Forced, when set, can hold a method's breaker open whatever its
	// counts say (ops maintenance): Allow then refuses with its reason.
	Forced func(method payrouter.Method) (allow bool, why string)
}

// Guard wraps p. newBreaker makes the breaker of one method (nil: local
// gobreaker breakers with the settings).
func Guard(name string, p providers.Provider, timeout time.Duration, bs BreakerSettings, newBreaker func(name string, st gobreaker.Settings) (Breaker, error)) *Guarded {
	g := &Guarded{Name: name, Provider: p, Timeout: timeout, breakers: map[payrouter.Method]Breaker{}, state: map[payrouter.Method]gobreaker.State{}}
	g.newBreaker = func(m payrouter.Method) Breaker {
		bname := name + "/" + string(m)
		st := bs.Gobreaker(bname, func(_ string, from, to gobreaker.State) {
			g.mu.Lock()
			g.state[m] = to
			f := g.OnStateChange
			g.mu.Unlock()
			if f != nil {
				f(name, m, from, to)
			}
		})
		if newBreaker != nil {
			if b, err := newBreaker(bname, st); err == nil {
				return b
			}
		}
		return gobreaker.NewCircuitBreaker[any](st)
	}
	return g
}

func (g *Guarded) breaker(m payrouter.Method) Breaker {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.breakers[m]
	if b == nil {
		b = g.newBreaker(m)
		g.breakers[m] = b
	}
	return b
}

// callerGone marks an error caused by the caller's context ending (not the
// per-call timeout): excluded from the breaker's counts.
type callerGone struct{ err error }

func (e *callerGone) Error() string { return e.err.Error() }
func (e *callerGone) Unwrap() error { return e.err }

// stater is implemented by gobreaker's breakers.
type stater interface{ State() gobreaker.State }
type distStater interface {
	State() (gobreaker.State, error)
}

// BreakerState returns the state of the method's breaker.
func (g *Guarded) BreakerState(m payrouter.Method) gobreaker.State {
	switch b := g.breaker(m).(type) {
	case stater:
		return b.State()
	case distStater:
		s, err := b.State()
		if err != nil {
			return gobreaker.StateClosed
		}
		return s
	}
	return gobreaker.StateClosed
}

// BreakerStates reports every breaker that has been used.
func (g *Guarded) BreakerStates() map[payrouter.Method]string {
	g.mu.Lock()
	ms := make([]payrouter.Method, 0, len(g.breakers))
	for m := range g.breakers {
		ms = append(ms, m)
	}
	g.mu.Unlock()
	out := map[payrouter.Method]string{}
	for _, m := range ms {
		out[m] = g.BreakerState(m).String()
	}
	return out
}

// Allow reports whether a call for method may be made now, and why not.
func (g *Guarded) Allow(m payrouter.Method) (bool, string) {
	if g.Forced != nil {
		if ok, why := g.Forced(m); !ok {
			return false, why
		}
	}
	if g.BreakerState(m) == gobreaker.StateOpen {
		return false, "breaker open"
	}
	return true, ""
}

// Capabilities is the wrapped provider's.
func (g *Guarded) Capabilities() providers.Capabilities { return g.Provider.Capabilities() }

func (g *Guarded) observe(m payrouter.Method, op string, start time.Time, err error) {
	if g.Observe == nil {
		return
	}
	var c providers.Class
	if err != nil {
		c = providers.ClassOf(err)
	}
	g.Observe(g.Name, m, op, c, time.Since(start))
}

func call[T any](g *Guarded, ctx context.Context, m payrouter.Method, op string, f func(context.Context) (T, error)) (v T, err error) {
	var zero T
	start := time.Now()
	defer func() { g.observe(m, op, start, err) }()
	parent := ctx
	if g.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.Timeout)
		defer cancel()
	}
	out, err := g.breaker(m).Execute(func() (any, error) {
		v, err := f(ctx)
		if err != nil {
			var pe *providers.Error
			if !errors.As(err, &pe) {
				// Adapters must return *providers.Error; classify a stray one
				// conservatively rather than trust it.
				err = providers.ClassifyTransport(err)
			}
			if parent.Err() != nil {
				// Our own deadline or shutdown cut the call: the outcome is
				// still ambiguous, but the provider is not to blame.
				err = &callerGone{err}
			}
		}
		return v, err
	})
	var cg *callerGone
	if errors.As(err, &cg) {
		err = cg.err
	}
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		err = &providers.Error{Class: providers.Unavailable, Code: CodeBreakerOpen, Message: fmt.Sprintf("%s breaker for %s is open", g.Name, m)}
		return zero, err
	}
	if err != nil {
		var pe *providers.Error
		if !errors.As(err, &pe) {
			// The breaker itself failed (a shared store that cannot be
			// reached): nothing was sent, so the provider is unavailable
			// to us now, never ambiguous.
			err = &providers.Error{Class: providers.Unavailable, Code: CodeBreakerOpen, Message: fmt.Sprintf("%s breaker for %s cannot be consulted", g.Name, m), Err: err}
		}
		return zero, err
	}
	v, _ = out.(T)
	return v, nil
}

// Authorize calls the provider under its breaker and timeout.
func (g *Guarded) Authorize(ctx context.Context, req *providers.AuthorizeRequest) (*providers.Result, error) {
	return call(g, ctx, req.Method, "authorize", func(ctx context.Context) (*providers.Result, error) { return g.Provider.Authorize(ctx, req) })
}

// Capture calls the provider under its breaker and timeout.
func (g *Guarded) Capture(ctx context.Context, m payrouter.Method, req *providers.CaptureRequest) (*providers.Result, error) {
	return call(g, ctx, m, "capture", func(ctx context.Context) (*providers.Result, error) { return g.Provider.Capture(ctx, req) })
}

// Cancel calls the provider under its breaker and timeout.
func (g *Guarded) Cancel(ctx context.Context, req *providers.CancelRequest) (*providers.Result, error) {
	return call(g, ctx, req.Method, "cancel", func(ctx context.Context) (*providers.Result, error) { return g.Provider.Cancel(ctx, req) })
}

// Refund calls the provider under its breaker and timeout.
func (g *Guarded) Refund(ctx context.Context, req *providers.RefundRequest) (*providers.RefundResult, error) {
	return call(g, ctx, req.Method, "refund", func(ctx context.Context) (*providers.RefundResult, error) { return g.Provider.Refund(ctx, req) })
}

// CancelUnguarded cancels under the timeout but not the breaker: the
// resolver's clean-up (a stray attempt after failover, an expired payment)
// must go on while the breaker is open, as status queries do. Cancel is
// idempotent under req.IdempotencyKey.
func (g *Guarded) CancelUnguarded(ctx context.Context, req *providers.CancelRequest) (*providers.Result, error) {
	if g.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.Timeout)
		defer cancel()
	}
	start := time.Now()
	res, err := g.Provider.Cancel(ctx, req)
	if err != nil {
		err = providers.ClassifyTransport(err)
	}
	g.observe(req.Method, "cancel", start, err)
	return res, err
}

// Status asks the provider about a payment, if it can be asked. Status
// queries bypass the breaker: they decide truth, and are what tells us a
// provider is back.
func (g *Guarded) Status(ctx context.Context, req *providers.StatusRequest) (*providers.Result, error) {
	sc, ok := g.Provider.(providers.StatusChecker)
	if !ok {
		return nil, providers.Unsupported("%s cannot be asked for a payment's status", g.Name)
	}
	if g.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.Timeout)
		defer cancel()
	}
	res, err := sc.Status(ctx, req)
	if err != nil {
		return nil, providers.ClassifyTransport(err)
	}
	return res, nil
}
