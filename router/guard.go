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
// The settings are taken as given (gobreaker's zero values: Timeout 0 is
// its 60s, Interval 0 never resets); internal/config sets the defaults.
func (s BreakerSettings) Gobreaker(name string, onChange func(name string, from, to gobreaker.State)) gobreaker.Settings {
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

// The cross-cutting wrappers below each implement providers.Provider (and
// providers.StatusChecker) around a providers.Provider, so they stack like
// achgateway's retry agent around its Agent: Observed(Breakers(Timeout(p)))
// is what Guard builds. Status queries pass through every layer but the
// timeout: they decide truth and are what tells us a provider is back.

// Timeout bounds every call to the wrapped provider by D (0: no bound) and
// classifies an error that is not a *providers.Error conservatively with
// providers.ClassifyTransport (adapters must return *providers.Error; a
// stray one is not to be trusted).
type Timeout struct {
	Next providers.Provider
	D    time.Duration
}

var (
	_ providers.Provider      = (*Timeout)(nil)
	_ providers.StatusChecker = (*Timeout)(nil)
)

func (t *Timeout) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if t.D > 0 {
		return context.WithTimeout(ctx, t.D)
	}
	return ctx, func() {}
}

func timed[Req, Res any](t *Timeout, ctx context.Context, req Req, f func(context.Context, Req) (Res, error)) (Res, error) {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	res, err := f(ctx, req)
	return res, classify(err)
}

// classify keeps a *providers.Error as it is and classifies anything else
// with providers.ClassifyTransport.
func classify(err error) error {
	var pe *providers.Error
	if err == nil || errors.As(err, &pe) {
		return err
	}
	return providers.ClassifyTransport(err)
}

// Capabilities is the wrapped provider's.
func (t *Timeout) Capabilities() providers.Capabilities { return t.Next.Capabilities() }

// Authorize calls the wrapped provider within the timeout.
func (t *Timeout) Authorize(ctx context.Context, req *providers.AuthorizeRequest) (*providers.Result, error) {
	return timed(t, ctx, req, t.Next.Authorize)
}

// Capture calls the wrapped provider within the timeout.
func (t *Timeout) Capture(ctx context.Context, req *providers.CaptureRequest) (*providers.Result, error) {
	return timed(t, ctx, req, t.Next.Capture)
}

// Cancel calls the wrapped provider within the timeout.
func (t *Timeout) Cancel(ctx context.Context, req *providers.CancelRequest) (*providers.Result, error) {
	return timed(t, ctx, req, t.Next.Cancel)
}

// Refund calls the wrapped provider within the timeout.
func (t *Timeout) Refund(ctx context.Context, req *providers.RefundRequest) (*providers.RefundResult, error) {
	return timed(t, ctx, req, t.Next.Refund)
}

// Status asks the wrapped provider within the timeout (see statusOf).
func (t *Timeout) Status(ctx context.Context, req *providers.StatusRequest) (*providers.Result, error) {
	return timed(t, ctx, req, func(ctx context.Context, req *providers.StatusRequest) (*providers.Result, error) {
		return statusOf(ctx, t.Next, req)
	})
}

// statusOf asks p, when p can be asked (providers.StatusChecker), and is
// an Unsupported error otherwise.
func statusOf(ctx context.Context, p providers.Provider, req *providers.StatusRequest) (*providers.Result, error) {
	sc, ok := p.(providers.StatusChecker)
	if !ok {
		return nil, providers.Unsupported("%T cannot be asked for a payment's status", p)
	}
	return sc.Status(ctx, req)
}

// Breakers runs the money-moving calls of the wrapped provider under a
// circuit breaker per payment method (a provider's QRIS may be down while
// its cards work). A call the breaker refuses is a *providers.Error of class
// Unavailable with Code CodeBreakerOpen: nothing was sent. A call cut short
// by the caller's context is excluded from the counts (see
// BreakerSettings.Gobreaker). Status passes through unguarded.
type Breakers struct {
	name       string
	next       providers.Provider
	mu         sync.Mutex
	breakers   map[payrouter.Method]Breaker
	newBreaker func(method payrouter.Method) Breaker
}

var (
	_ providers.Provider      = (*Breakers)(nil)
	_ providers.StatusChecker = (*Breakers)(nil)
)

// NewBreakers wraps next. name names the breakers ("name/method");
// newBreaker makes the breaker of one method from gobreaker settings (nil,
// or when it fails: a local gobreaker breaker); onChange, if set, sees
// every transition.
func NewBreakers(name string, next providers.Provider, bs BreakerSettings, newBreaker func(name string, st gobreaker.Settings) (Breaker, error), onChange func(m payrouter.Method, from, to gobreaker.State)) *Breakers {
	b := &Breakers{name: name, next: next, breakers: map[payrouter.Method]Breaker{}}
	b.newBreaker = func(m payrouter.Method) Breaker {
		bname := name + "/" + string(m)
		st := bs.Gobreaker(bname, func(_ string, from, to gobreaker.State) {
			if onChange != nil {
				onChange(m, from, to)
			}
		})
		if newBreaker != nil {
			if br, err := newBreaker(bname, st); err == nil {
				return br
			}
		}
		return gobreaker.NewCircuitBreaker[any](st)
	}
	return b
}

func (b *Breakers) breaker(m payrouter.Method) Breaker {
	b.mu.Lock()
	defer b.mu.Unlock()
	br := b.breakers[m]
	if br == nil {
		br = b.newBreaker(m)
		b.breakers[m] = br
	}
	return br
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

// State returns the state of the method's breaker.
func (b *Breakers) State(m payrouter.Method) gobreaker.State {
	switch br := b.breaker(m).(type) {
	case stater:
		return br.State()
	case distStater:
		s, err := br.State()
		if err != nil {
			return gobreaker.StateClosed
		}
		return s
	}
	return gobreaker.StateClosed
}

// States reports every breaker that has been used.
func (b *Breakers) States() map[payrouter.Method]string {
	b.mu.Lock()
	ms := make([]payrouter.Method, 0, len(b.breakers))
	for m := range b.breakers {
		ms = append(ms, m)
	}
	b.mu.Unlock()
	out := map[payrouter.Method]string{}
	for _, m := range ms {
		out[m] = b.State(m).String()
	}
	return out
}

func guarded[Req, Res any](b *Breakers, ctx context.Context, m payrouter.Method, req Req, f func(context.Context, Req) (Res, error)) (Res, error) {
	var zero Res
	out, err := b.breaker(m).Execute(func() (any, error) {
		v, err := f(ctx, req)
		if err != nil {
			err = classify(err)
			if ctx.Err() != nil {
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
		return zero, &providers.Error{Class: providers.Unavailable, Code: CodeBreakerOpen, Message: fmt.Sprintf("%s breaker for %s is open", b.name, m)}
	}
	if err != nil {
		var pe *providers.Error
		if !errors.As(err, &pe) {
			// The breaker itself failed (a shared store that cannot be
			// reached): nothing was sent, so the provider is unavailable
			// to us now, never ambiguous.
			err = &providers.Error{Class: providers.Unavailable, Code: CodeBreakerOpen, Message: fmt.Sprintf("%s breaker for %s cannot be consulted", b.name, m), Err: err}
		}
		return zero, err
	}
	v, _ := out.(Res)
	return v, nil
}

// Capabilities is the wrapped provider's.
func (b *Breakers) Capabilities() providers.Capabilities { return b.next.Capabilities() }

// Authorize calls the wrapped provider under req.Method's breaker.
func (b *Breakers) Authorize(ctx context.Context, req *providers.AuthorizeRequest) (*providers.Result, error) {
	return guarded(b, ctx, req.Method, req, b.next.Authorize)
}

// Capture calls the wrapped provider under req.Method's breaker.
func (b *Breakers) Capture(ctx context.Context, req *providers.CaptureRequest) (*providers.Result, error) {
	return guarded(b, ctx, req.Method, req, b.next.Capture)
}

// Cancel calls the wrapped provider under req.Method's breaker.
func (b *Breakers) Cancel(ctx context.Context, req *providers.CancelRequest) (*providers.Result, error) {
	return guarded(b, ctx, req.Method, req, b.next.Cancel)
}

// Refund calls the wrapped provider under req.Method's breaker.
func (b *Breakers) Refund(ctx context.Context, req *providers.RefundRequest) (*providers.RefundResult, error) {
	return guarded(b, ctx, req.Method, req, b.next.Refund)
}

// Status passes through: status queries are never refused.
func (b *Breakers) Status(ctx context.Context, req *providers.StatusRequest) (*providers.Result, error) {
	return statusOf(ctx, b.next, req)
}

// Observed reports the outcome of every money-moving call of the wrapped
// provider to Observe (metrics): op is authorize|capture|cancel|refund,
// class "" on success. Status passes through unobserved.
type Observed struct {
	Next    providers.Provider
	Observe func(method payrouter.Method, op string, class providers.Class, d time.Duration)
	// Note, if set, sees every call's error (nil on success): what the
	// provider's answer says about payrouter's own credentials.
	Note func(op string, err error)
}

var (
	_ providers.Provider      = (*Observed)(nil)
	_ providers.StatusChecker = (*Observed)(nil)
)

func observed[Req, Res any](o *Observed, ctx context.Context, m payrouter.Method, op string, req Req, f func(context.Context, Req) (Res, error)) (Res, error) {
	start := time.Now()
	res, err := f(ctx, req)
	if o.Observe != nil {
		var c providers.Class
		if err != nil {
			c = providers.ClassOf(err)
		}
		o.Observe(m, op, c, time.Since(start))
	}
	if o.Note != nil {
		o.Note(op, err)
	}
	return res, err
}

// Capabilities is the wrapped provider's.
func (o *Observed) Capabilities() providers.Capabilities { return o.Next.Capabilities() }

// Authorize calls the wrapped provider and reports the outcome.
func (o *Observed) Authorize(ctx context.Context, req *providers.AuthorizeRequest) (*providers.Result, error) {
	return observed(o, ctx, req.Method, "authorize", req, o.Next.Authorize)
}

// Capture calls the wrapped provider and reports the outcome.
func (o *Observed) Capture(ctx context.Context, req *providers.CaptureRequest) (*providers.Result, error) {
	return observed(o, ctx, req.Method, "capture", req, o.Next.Capture)
}

// Cancel calls the wrapped provider and reports the outcome.
func (o *Observed) Cancel(ctx context.Context, req *providers.CancelRequest) (*providers.Result, error) {
	return observed(o, ctx, req.Method, "cancel", req, o.Next.Cancel)
}

// Refund calls the wrapped provider and reports the outcome.
func (o *Observed) Refund(ctx context.Context, req *providers.RefundRequest) (*providers.RefundResult, error) {
	return observed(o, ctx, req.Method, "refund", req, o.Next.Refund)
}

// Status passes through unobserved.
func (o *Observed) Status(ctx context.Context, req *providers.StatusRequest) (*providers.Result, error) {
	return statusOf(ctx, o.Next, req)
}

// Guarded is the stack the router calls for one configured provider:
// Observed(Breakers(Timeout(Provider))), plus the resolver's unguarded
// paths (CancelUnguarded, Status) that skip the breaker. It is itself a
// providers.Provider and StatusChecker.
type Guarded struct {
	Name     string
	Provider providers.Provider // the adapter itself, for its optional powers
	Timeout  time.Duration

	timed     *Timeout
	breakers  *Breakers
	guarded   providers.Provider // Observed(Breakers(Timeout(Provider)))
	unguarded providers.Provider // Observed(Timeout(Provider))

	mu    sync.Mutex
	state map[payrouter.Method]gobreaker.State
	// OnStateChange observes breaker transitions (logs, metrics).
	OnStateChange func(provider string, method payrouter.Method, from, to gobreaker.State)
	// Observe sees every call's outcome: op is authorize|capture|cancel|
	// refund, class is "" on success (metrics).
	Observe func(provider string, method payrouter.Method, op string, class providers.Class, d time.Duration)
	// OnCredentialsRefused sees every call the provider refused because of
	// payrouter's own credentials (providers.IsCredentialsRefused): logs,
	// metrics. Called outside any lock.
	OnCredentialsRefused func(provider, op string, err *providers.Error)

	// Forced, when set, can hold a method's breaker open whatever its
	// counts say (ops maintenance): Allow then refuses with its reason.
	Forced func(method payrouter.Method) (allow bool, why string)

	refused *CredentialsRefusal // since the last call that got past our credentials
}

// CredentialsRefusal is a provider refusing payrouter's credentials: since
// when (the first refusal after the last call that got past them), the
// latest refusal and how many there were.
type CredentialsRefusal struct {
	Since, Last time.Time
	Count       int64
	Op          string // of the latest
	HTTPStatus  int
	Code        string // the provider's own code, if any
}

// CredentialsRefused returns the provider's current refusal of our
// credentials, if it refuses them: set by a refused call, cleared by any
// call the provider answered past them (a success or a decline).
func (g *Guarded) CredentialsRefused() (CredentialsRefusal, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refused == nil {
		return CredentialsRefusal{}, false
	}
	return *g.refused, true
}

// noteCredentials records what a call says about our credentials. A
// breaker-open refusal says nothing either way (nothing was sent).
func (g *Guarded) noteCredentials(op string, err error) {
	var pe *providers.Error
	switch {
	case providers.IsCredentialsRefused(err) && errors.As(err, &pe):
		now := time.Now()
		g.mu.Lock()
		if g.refused == nil {
			g.refused = &CredentialsRefusal{Since: now}
		}
		g.refused.Last, g.refused.Op, g.refused.HTTPStatus, g.refused.Code = now, op, pe.HTTPStatus, pe.ProviderCode
		g.refused.Count++
		f := g.OnCredentialsRefused
		g.mu.Unlock()
		if f != nil {
			f(g.Name, op, pe)
		}
	case err == nil || providers.ClassOf(err) == providers.Declined:
		// The provider took our credentials to answer.
		g.mu.Lock()
		g.refused = nil
		g.mu.Unlock()
	}
}

var (
	_ providers.Provider      = (*Guarded)(nil)
	_ providers.StatusChecker = (*Guarded)(nil)
)

// Guard wraps p. newBreaker makes the breaker of one method (nil: local
// gobreaker breakers with the settings).
func Guard(name string, p providers.Provider, timeout time.Duration, bs BreakerSettings, newBreaker func(name string, st gobreaker.Settings) (Breaker, error)) *Guarded {
	g := &Guarded{Name: name, Provider: p, Timeout: timeout, state: map[payrouter.Method]gobreaker.State{}}
	g.timed = &Timeout{Next: p, D: timeout}
	g.breakers = NewBreakers(name, g.timed, bs, newBreaker, func(m payrouter.Method, from, to gobreaker.State) {
		g.mu.Lock()
		g.state[m] = to
		f := g.OnStateChange
		g.mu.Unlock()
		if f != nil {
			f(name, m, from, to)
		}
	})
	// Observe is set after Guard returns (the wiring): read it per call.
	observe := func(m payrouter.Method, op string, c providers.Class, d time.Duration) {
		if g.Observe != nil {
			g.Observe(name, m, op, c, d)
		}
	}
	g.guarded = &Observed{Next: g.breakers, Observe: observe, Note: g.noteCredentials}
	g.unguarded = &Observed{Next: g.timed, Observe: observe, Note: g.noteCredentials}
	return g
}

// BreakerState returns the state of the method's breaker.
func (g *Guarded) BreakerState(m payrouter.Method) gobreaker.State { return g.breakers.State(m) }

// BreakerStates reports every breaker that has been used.
func (g *Guarded) BreakerStates() map[payrouter.Method]string { return g.breakers.States() }

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

// Authorize calls the provider under its breaker and timeout.
func (g *Guarded) Authorize(ctx context.Context, req *providers.AuthorizeRequest) (*providers.Result, error) {
	return g.guarded.Authorize(ctx, req)
}

// Capture calls the provider under req.Method's breaker and the timeout.
func (g *Guarded) Capture(ctx context.Context, req *providers.CaptureRequest) (*providers.Result, error) {
	return g.guarded.Capture(ctx, req)
}

// Cancel calls the provider under its breaker and timeout.
func (g *Guarded) Cancel(ctx context.Context, req *providers.CancelRequest) (*providers.Result, error) {
	return g.guarded.Cancel(ctx, req)
}

// Refund calls the provider under its breaker and timeout.
func (g *Guarded) Refund(ctx context.Context, req *providers.RefundRequest) (*providers.RefundResult, error) {
	return g.guarded.Refund(ctx, req)
}

// CancelUnguarded cancels under the timeout but not the breaker: the
// resolver's clean-up (a stray attempt after failover, an expired payment)
// must go on while the breaker is open, as status queries do. Cancel is
// idempotent under req.IdempotencyKey.
func (g *Guarded) CancelUnguarded(ctx context.Context, req *providers.CancelRequest) (*providers.Result, error) {
	return g.unguarded.Cancel(ctx, req)
}

// Status asks the provider about a payment, if it can be asked. Status
// queries bypass the breaker: they decide truth, and are what tells us a
// provider is back.
func (g *Guarded) Status(ctx context.Context, req *providers.StatusRequest) (*providers.Result, error) {
	if _, ok := g.Provider.(providers.StatusChecker); !ok {
		return nil, providers.Unsupported("%s cannot be asked for a payment's status", g.Name)
	}
	res, err := g.timed.Status(ctx, req)
	g.noteCredentials("status", err)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// RefundUnguarded resends a refund under the timeout but not the breaker:
// settling a refund left pending must go on while the breaker is open.
// Refund is idempotent under req.IdempotencyKey (and the provider's refund
// key, req.RefundID), so a resend never refunds twice.
func (g *Guarded) RefundUnguarded(ctx context.Context, req *providers.RefundRequest) (*providers.RefundResult, error) {
	return g.unguarded.Refund(ctx, req)
}

// CanQueryRefunds reports whether the provider answers refund status
// queries (providers.RefundStatusChecker).
func (g *Guarded) CanQueryRefunds() bool {
	_, ok := g.Provider.(providers.RefundStatusChecker)
	return ok
}

// RefundStatus asks the provider about a refund, if it can be asked;
// like Status it bypasses the breaker.
func (g *Guarded) RefundStatus(ctx context.Context, req *providers.RefundStatusRequest) (*providers.RefundResult, error) {
	rc, ok := g.Provider.(providers.RefundStatusChecker)
	if !ok {
		return nil, providers.Unsupported("%s cannot be asked for a refund's status", g.Name)
	}
	ctx, cancel := g.timed.ctx(ctx)
	defer cancel()
	res, err := rc.RefundStatus(ctx, req)
	err = classify(err)
	g.noteCredentials("refund_status", err)
	if err != nil {
		return nil, err
	}
	return res, nil
}
