// Package router orchestrates payments: it asks the rules where a payment
// should go, calls providers in order, classifies every failure with
// providers.ClassOf and decides — once, here — whether to fail over, stop, or
// resolve an ambiguous outcome before anything else is tried.
package router

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// Routing decides where a payment may go. The rules package provides the
// implementation; the router only needs the ordered candidates.
type Routing interface {
	Plan(p *payrouter.Payment, pinned string) (Plan, error)
}

// Plan is a routing decision: candidates in the order to try.
type Plan struct {
	Route      payrouter.Route `json:"route"`
	Candidates []Candidate     `json:"candidates"`
}

// Candidate is one provider to try, with the fee the rules expect it to charge.
type Candidate struct {
	Provider    string `json:"provider"`
	ExpectedFee int64  `json:"expected_fee"`
}

// Options tune failover.
type Options struct {
	// Deadline bounds the merchant's whole create request.
	Deadline time.Duration
	// MaxAttempts bounds provider calls per create request.
	MaxAttempts int
	// SoftDeclines lists, per provider, decline codes that may cascade to
	// the next candidate (e.g. "do_not_honor" at an issuer that is flaky).
	SoftDeclines map[string][]string
	// PaymentTTL is how long a customer-action payment may wait.
	PaymentTTL time.Duration
	// ResolveBackoff is the resolver's first delay; it doubles up to 10 min.
	ResolveBackoff time.Duration
	// CheckoutURL renders the hosted checkout page's URL for a payment
	// (next_action.url); nil refuses checkout "hosted".
	CheckoutURL func(p *payrouter.Payment) string
	// Outcomes, when set, is told every call that reached a provider and
	// was approved or declined (the adaptive strategy's samples).
	Outcomes OutcomeRecorder
}

// OutcomeRecorder counts approvals and declines per provider × method ×
// currency (internal/approval). Record must not block.
type OutcomeRecorder interface {
	Record(provider string, m payrouter.Method, c payrouter.Currency, approved bool)
}

// Store is what the router keeps in its store: payments (with the events
// their changes produce), the idempotency response of a resolved payment
// and anomalies. internal/store's implementations satisfy it; a store that
// also implements PaymentWriter folds idempotency keys into the payment's
// own transactions (PayIdempotent needs it).
type Store interface {
	// CreatePayment inserts p with its attempts and pending events; a
	// reference the merchant already used is payrouter.ErrDuplicateReference.
	CreatePayment(ctx context.Context, p *payrouter.Payment) error
	// UpdatePayment loads the payment, calls fn (no I/O) and saves what it
	// did in one transaction, serialized with every other update of it.
	UpdatePayment(ctx context.Context, id string, fn func(p *payrouter.Payment) error) (*payrouter.Payment, error)
	// GetPayment reads one payment (merchantID "" = any merchant); a
	// missing one is payrouter.ErrNotExist.
	GetPayment(ctx context.Context, merchantID, id string) (*payrouter.Payment, error)
	// FindPayment finds a payment by a provider's payment or order id.
	FindPayment(ctx context.Context, provider, providerPaymentID string) (*payrouter.Payment, error)
	// DuePayments lists payments whose ResolveAt is at or before now.
	DuePayments(ctx context.Context, now time.Time, limit int) ([]*payrouter.Payment, error)
	// CompleteIdempotencyKey stores the response to replay for a key.
	CompleteIdempotencyKey(ctx context.Context, merchantID, key string, status int, body []byte) error
	// RecordAnomaly keeps something ops must look at.
	RecordAnomaly(ctx context.Context, a *payrouter.Anomaly) error
}

// PaymentWriter is the optional power of a Store to claim an idempotency
// key in the transaction that creates a payment and to store the response
// in the one that saves its outcome (internal/store's SQL stores have it).
// Found by type assertion.
type PaymentWriter interface {
	// CreatePaymentClaiming claims c's key and creates p in one
	// transaction: (nil, nil) when both are stored, the existing record
	// (nothing written) when the key is taken, ErrDuplicateReference
	// (nothing written) for a used reference.
	CreatePaymentClaiming(ctx context.Context, p *payrouter.Payment, c payrouter.IdempotencyClaim) (*payrouter.IdempotencyRecord, error)
	// UpdatePaymentWith is UpdatePayment with options; with opts.Current
	// fn may run twice.
	UpdatePaymentWith(ctx context.Context, id string, fn func(p *payrouter.Payment) error, opts payrouter.UpdateOptions) (*payrouter.Payment, error)
}

// Router is safe for concurrent use.
type Router struct {
	store     Store
	routing   Routing
	providers map[string]*Guarded
	opts      Options
	log       *slog.Logger
	now       func() time.Time
}

// New returns a router. providers maps the configured name to a guarded
// provider (see Guard). opts are taken as given: their defaults live in
// one place, internal/config (router: section of config.yaml); a zero
// Deadline or MaxAttempts lets no payment be tried.
func New(st Store, routing Routing, provs map[string]*Guarded, opts Options, log *slog.Logger) *Router {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Router{store: st, routing: routing, providers: provs, opts: opts, log: log, now: time.Now}
}

// Provider returns a configured provider by name.
func (r *Router) Provider(name string) (*Guarded, bool) {
	g, ok := r.providers[name]
	return g, ok
}

// Providers returns every configured provider.
func (r *Router) Providers() map[string]*Guarded { return r.providers }

// SetClock replaces time.Now (tests).
func (r *Router) SetClock(now func() time.Time) { r.now = now }

// NewID returns a fresh id with a prefix (pay_, re_): time-ordered, then random.
func NewID(prefix string) string {
	var b [15]byte
	// 48 bits of milliseconds, then 72 random bits, in base32hex (whose
	// alphabet sorts like the bytes): new ids append to the id indexes
	// instead of landing on random B-tree pages, so a payment's writes
	// dirty fewer pages (and WAL frames). 72 random bits keep ids
	// unguessable.
	ms := uint64(time.Now().UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (8 * (5 - i)))
	}
	_, _ = rand.Read(b[6:]) // crypto/rand never fails on supported platforms
	return prefix + strings.ToLower(idEncoding.EncodeToString(b[:]))
}

// idEncoding is NewID's: built once (WithPadding allocates a copy).
var idEncoding = base32.HexEncoding.WithPadding(base32.NoPadding)

// CreateRequest is a validated create request (see httpapi for decoding).
type CreateRequest struct {
	MerchantID  string
	Amount      int64
	Currency    payrouter.Currency
	Method      payrouter.Method
	Reference   string
	Description string
	Customer    *payrouter.Customer
	Country     string
	Capture     payrouter.CaptureMode
	ReturnURL   string
	Metadata    map[string]string
	Tokens      map[string]string
	Bank        string
	Provider    string // pin
	// Checkout "hosted": store the payment awaiting the customer's choice
	// on the hosted checkout page instead of paying now (Method optional).
	Checkout string
}

// NewPayment builds the payment a request describes, with a fresh id.
func (r *Router) NewPayment(req *CreateRequest) *payrouter.Payment {
	now := r.now().UTC()
	capture := req.Capture
	if capture == "" {
		capture = payrouter.CaptureAutomatic
	}
	return &payrouter.Payment{
		ID: NewID("pay_"), MerchantID: req.MerchantID, Status: payrouter.StatusProcessing,
		Amount: req.Amount, Currency: req.Currency, Method: req.Method, Reference: req.Reference,
		Description: req.Description, Customer: req.Customer, Country: req.Country, Capture: capture,
		ReturnURL: req.ReturnURL, Metadata: req.Metadata, Tokens: req.Tokens, Bank: req.Bank, Checkout: req.Checkout,
		Attempts: []payrouter.Attempt{}, CreatedAt: now, UpdatedAt: now,
	}
}

// Explain returns the routing plan for a request without paying.
func (r *Router) Explain(req *CreateRequest) (Plan, error) {
	return r.routing.Plan(r.NewPayment(req), req.Provider)
}

// Pay creates the payment and tries its candidates. It returns the payment
// in whatever state the attempts left it: succeeded, authorized,
// requires_action, failed, or processing when an outcome is ambiguous and
// the resolver will finish it. Errors: *payrouter.Error no_route (nothing
// stored), payrouter.ErrDuplicateReference, or internal.
func (r *Router) Pay(ctx context.Context, req *CreateRequest) (*payrouter.Payment, error) {
	return r.pay(ctx, req, nil, nil)
}

// Idempotency is a merchant's idempotency key for PayIdempotent, and how
// to render the response stored under it.
type Idempotency struct {
	MerchantID, Key, RequestHash string
	Now                          time.Time
	// Status is the HTTP status stored with a payment response (201).
	Status int
	// Render renders the response body for the payment Pay returns. It
	// must not do I/O; it may run more than once.
	Render func(p *payrouter.Payment) ([]byte, error)
}

// PayResult is what PayIdempotent did.
type PayResult struct {
	// Payment and Body: the payment and its stored response (Render of it),
	// when PayIdempotent returns no error.
	Payment *payrouter.Payment
	Body    []byte
	// Existing is the key's record when it was already claimed or
	// completed: nothing was done (no payment, no provider call).
	Existing *payrouter.IdempotencyRecord
	// Claimed reports that this request holds the key: the payment was
	// created with it. After an error, the caller must release or complete
	// the key; when it is false and there is an error, nothing was written.
	Claimed bool
}

// errNoPaymentWriter: the store cannot claim keys with the payment.
var errNoPaymentWriter = errors.New("router: the store does not implement router.PaymentWriter")

// PayIdempotent is Pay for a request with an idempotency key, with the key's
// record folded into the payment's own transactions: the key is claimed
// (linked to the payment) in the transaction that creates the payment and
// its first attempt — before any provider call — and the rendered response
// is stored in the transaction that saves the outcome, before it is
// returned. A concurrent request with the same key therefore sees the
// claim (res.Existing, Running) from the moment the payment exists, and a
// failed create (duplicate reference, no route, no provider available)
// leaves no claimed key.
//
// Errors are Pay's. With an error and !res.Claimed nothing was written
// under the key (also when the store cannot do this: then the caller
// should claim the key itself and call Pay).
func (r *Router) PayIdempotent(ctx context.Context, req *CreateRequest, idem *Idempotency) (PayResult, error) {
	var res PayResult
	if _, ok := r.store.(PaymentWriter); !ok {
		return res, errNoPaymentWriter
	}
	if idem == nil || idem.Key == "" || idem.Render == nil || idem.Status == 0 {
		return res, errors.New("router: pay idempotent: key, status and renderer are required")
	}
	p, err := r.pay(ctx, req, idem, &res)
	if err != nil || res.Existing != nil {
		return res, err
	}
	res.Payment = p
	return res, nil
}

func (r *Router) pay(ctx context.Context, req *CreateRequest, idem *Idempotency, res *PayResult) (*payrouter.Payment, error) {
	p := r.NewPayment(req)
	if req.Checkout == payrouter.CheckoutHosted {
		return r.openCheckout(ctx, p, idem, res)
	}
	plan, err := r.routing.Plan(p, req.Provider)
	if err != nil {
		return nil, err
	}
	if len(plan.Candidates) == 0 {
		return nil, &payrouter.Error{Type: payrouter.ErrNoRoute, Code: "no_route", Message: "no provider can take this payment: " + plan.Route.Reason}
	}
	p.Route = plan.Route
	if p.Method.CustomerAction() {
		exp := p.CreatedAt.Add(r.opts.PaymentTTL)
		p.ExpiresAt = &exp
	}
	// The overall deadline, not the merchant's connection, bounds the
	// attempts: a merchant hanging up mid-call must not turn a clean
	// answer into an ambiguous one (the idempotency key replays the result).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.Deadline)
	defer cancel()
	return r.run(ctx, p, plan.Candidates, idem, res, nil)
}

// updatePayment saves through the store's PaymentWriter when it has one
// (opts: the copy the router holds, the idempotent response), else plainly.
func (r *Router) updatePayment(ctx context.Context, id string, fn func(q *payrouter.Payment) error, opts payrouter.UpdateOptions) (*payrouter.Payment, error) {
	if pw, ok := r.store.(PaymentWriter); ok {
		return pw.UpdatePaymentWith(ctx, id, fn, opts)
	}
	if opts.Complete != nil {
		return nil, errNoPaymentWriter
	}
	return r.store.UpdatePayment(ctx, id, fn)
}

// run tries candidates in order, starting a new attempt for each. The
// first attempt is written with the payment itself (create); every later
// one in the same transaction that closes the previous attempt, so a crash
// at any point leaves an attempt recorded before its call. With idem, the
// key is claimed with the create and completed with the final update (see
// PayIdempotent); res tells the caller which happened. With first, the
// payment already exists (hosted checkout): first writes it with its first
// attempt instead of the create, and returns what it saved. The steps are
// attempts' methods (router/attempts.go).
func (r *Router) run(ctx context.Context, p *payrouter.Payment, cands []Candidate, idem *Idempotency, out *PayResult,
	first func(context.Context, *payrouter.Payment) (*payrouter.Payment, error)) (*payrouter.Payment, error) {
	w := &attempts{r: r, p: p, cands: cands, base: p.Route.Reason, idem: idem, out: out}
	c := w.next()
	if c == nil {
		// Nothing was called and nothing stored: tell the merchant plainly.
		return nil, &payrouter.Error{Type: payrouter.ErrProviderUnavailable, Code: "provider_unavailable",
			Message: "every candidate provider is unavailable: " + strings.Join(w.reasons, "; ")}
	}
	if stored, err := w.begin(ctx, c, first); !stored || err != nil {
		return nil, err
	}
	for {
		o := w.call(ctx, c)
		body, err := w.save(ctx, &o)
		if err != nil {
			return nil, err
		}
		if o.held() {
			return w.resolveHeld(ctx)
		}
		if o.final() {
			if idem != nil {
				out.Body = body
			}
			return w.p, nil
		}
		c = o.next
	}
}

// recordOutcome tells Options.Outcomes what the provider answered, when it
// is an answer about the customer's payment: approved (authorized or paid)
// or declined. Customer-action payments still waiting, and calls that failed
// for other reasons (the breakers' business), are not samples. A soft
// decline that cascades counts against the provider that declined.
func (r *Router) recordOutcome(p *payrouter.Payment, provider string, res *providers.Result, err error) {
	if r.opts.Outcomes == nil {
		return
	}
	switch {
	case err != nil:
		if providers.ClassOf(err) == providers.Declined {
			r.opts.Outcomes.Record(provider, p.Method, p.Currency, false)
		}
	case res.Status == payrouter.StatusAuthorized || res.Status == payrouter.StatusSucceeded:
		r.opts.Outcomes.Record(provider, p.Method, p.Currency, true)
	case res.Status == payrouter.StatusFailed:
		r.opts.Outcomes.Record(provider, p.Method, p.Currency, false)
	}
}

type decision int

const (
	stop     decision = iota // declined: the customer's answer
	failover                 // try the next candidate
	hold                     // ambiguous card: resolve first
)

// decide applies the failover table (docs/architecture.md) to one call's error at
// provider: declined stops (unless a configured soft decline), invalid and
// unavailable move on, ambiguous holds a card and moves a customer-action
// payment on.
func (r *Router) decide(provider string, m payrouter.Method, err error) decision {
	if err == nil {
		return stop
	}
	switch providers.ClassOf(err) {
	case providers.Declined:
		var pe *providers.Error
		if errors.As(err, &pe) {
			for _, code := range r.opts.SoftDeclines[provider] {
				if code != "" && (code == pe.Code || code == pe.ProviderCode) {
					return failover
				}
			}
		}
		return stop
	case providers.Ambiguous:
		if !m.CustomerAction() {
			return hold
		}
		return failover
	default:
		return failover
	}
}

// minAttemptTime is the least time left before the overall deadline for
// another attempt to be worth starting: one started with less would most
// likely end ambiguous, which is worse than a clean failure.
const minAttemptTime = 500 * time.Millisecond

func (r *Router) timeLeft(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	d, ok := ctx.Deadline()
	return !ok || time.Until(d) >= minAttemptTime
}

func isSkip(err error) bool {
	var pe *providers.Error
	return errors.As(err, &pe) && pe.Code == CodeBreakerOpen
}

func attemptN(q *payrouter.Payment, n int) *payrouter.Attempt {
	for i := range q.Attempts {
		if q.Attempts[i].N == n {
			return &q.Attempts[i]
		}
	}
	return q.LastAttempt()
}

func (r *Router) startAttempt(p *payrouter.Payment, c *Candidate) {
	n := len(p.Attempts) + 1
	p.Attempts = append(p.Attempts, payrouter.Attempt{
		N: n, Provider: c.Provider, Status: payrouter.AttemptPending, ExpectedFee: c.ExpectedFee,
		StartedAt: r.now().UTC(), IdempotencyKey: payrouter.AttemptKey(p.ID, n),
	})
}

func (r *Router) authorize(ctx context.Context, p *payrouter.Payment, c *Candidate, a *payrouter.Attempt) (*providers.Result, error) {
	return r.providers[c.Provider].Authorize(ctx, r.authorizeRequest(p, a))
}

// authorizeRequest is the one request an attempt sends: the first call and
// the resolver's same-key resend must be identical, or the provider answers
// the resend with an idempotency error.
func (r *Router) authorizeRequest(p *payrouter.Payment, a *payrouter.Attempt) *providers.AuthorizeRequest {
	req := &providers.AuthorizeRequest{
		PaymentID: p.ID, Attempt: a.N, IdempotencyKey: a.IdempotencyKey,
		Amount: p.Amount, Currency: p.Currency, Method: p.Method, Capture: p.Capture,
		Token: p.Tokens[a.Provider], Bank: p.Bank, Description: p.Description,
		Reference: p.Reference, ReturnURL: p.ReturnURL, Metadata: p.Metadata,
	}
	if p.Checkout == payrouter.CheckoutHosted && r.opts.CheckoutURL != nil {
		// The provider's page sends the customer back to the checkout
		// page, which shows the result and then returns to the merchant.
		req.ReturnURL = r.opts.CheckoutURL(p)
	}
	if p.Customer != nil {
		req.Customer = *p.Customer
	}
	return req
}

// finishAttempt records a call's outcome on the stored attempt.
func (r *Router) finishAttempt(q *payrouter.Payment, a, sent *payrouter.Attempt, res *providers.Result, err error, now time.Time) {
	a.LatencyMS = now.Sub(sent.StartedAt).Milliseconds()
	if err != nil {
		var pe *providers.Error
		if errors.As(err, &pe) {
			a.ErrorCode = pe.Code
			if pe.ProviderCode != "" {
				a.ErrorCode = pe.Code + ":" + pe.ProviderCode
			}
			a.ErrorMessage = pe.Message
		}
		cls := providers.ClassOf(err)
		a.ErrorClass = string(cls)
		if cls == providers.Ambiguous {
			a.Status = payrouter.AttemptAmbiguous
		} else {
			a.Status = payrouter.AttemptFailed
		}
		if pe != nil && pe.Code == CodeBreakerOpen {
			a.Status = payrouter.AttemptSkipped
		}
		return
	}
	a.ProviderPaymentID = res.ProviderPaymentID
	a.Status = attemptStatus(res.Status)
}

func attemptStatus(s payrouter.Status) payrouter.AttemptStatus {
	switch s {
	case payrouter.StatusSucceeded, payrouter.StatusPartiallyRefunded, payrouter.StatusRefunded:
		return payrouter.AttemptSucceeded
	case payrouter.StatusAuthorized:
		return payrouter.AttemptAuthorized
	case payrouter.StatusRequiresAction:
		return payrouter.AttemptRequiresAction
	case payrouter.StatusFailed:
		return payrouter.AttemptFailed
	case payrouter.StatusCanceled:
		return payrouter.AttemptCanceled
	case payrouter.StatusExpired:
		return payrouter.AttemptExpired
	}
	return payrouter.AttemptProcessing
}

// applyResult moves the payment to what the provider said.
func (r *Router) applyResult(q *payrouter.Payment, provider string, res *providers.Result, now time.Time) {
	q.Provider = provider
	q.ProviderPaymentID = res.ProviderPaymentID
	if res.NextAction != nil {
		q.NextAction = res.NextAction
	}
	if res.Status == payrouter.StatusProcessing {
		at := now.Add(r.opts.ResolveBackoff)
		q.ResolveAt = &at
	}
	if res.Status.Failed() && res.Failure != nil {
		q.Failure = res.Failure
	}
	if res.Status == "" {
		return
	}
	if _, err := q.Advance(res.Status, now); err != nil {
		r.log.Warn("impossible transition from provider answer", "payment", q.ID, "err", err)
	}
}

func codeOf(err error) string {
	var pe *providers.Error
	if errors.As(err, &pe) {
		if pe.ProviderCode != "" {
			return pe.Code + "/" + pe.ProviderCode
		}
		return pe.Code
	}
	return "error"
}

func failureOf(err error) payrouter.Failure {
	var pe *providers.Error
	if errors.As(err, &pe) {
		code := pe.Code
		if code == "" {
			code = string(pe.Class)
		}
		return payrouter.Failure{Code: code, Message: pe.Message, ProviderCode: pe.ProviderCode}
	}
	return payrouter.Failure{Code: "processing_error", Message: "the provider failed"}
}

// invalidState is the invalid_state error for an operation the payment's
// status does not allow.
func invalidState(format string, args ...any) error {
	return &payrouter.Error{Type: payrouter.ErrInvalidState, Code: "payment_invalid_state", Message: fmt.Sprintf(format, args...)}
}
