// Package stripe is payrouter's Stripe adapter, built on stripe-go v76
// (API version 2023-10-16): card payments through PaymentIntents, manual
// and partial capture, (partial) refunds, status queries, signed webhooks
// and balance transactions for reconciliation.
//
// Amounts cross the boundary in payrouter minor units and are converted to
// Stripe's convention: Stripe treats IDR as a two-decimal currency (×100
// from payrouter's exponent-0 IDR), while JPY, KRW and VND are zero-decimal
// at Stripe as in payrouter.
//
// Each Provider owns one stripe-go client; nothing touches stripe-go's
// package globals (stripe.Key, stripe.SetBackend), so several Stripe
// accounts can be configured side by side. stripe-go's own retries are off
// (MaxNetworkRetries 0) and its logger is silenced: the router owns retries,
// breakers and logging.
package stripe

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	stripeapi "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// Config configures one Stripe account.
type Config struct {
	// Name is the configured provider name, echoed in Notification.Provider.
	Name string
	// SecretKey is the account's secret API key (sk_live_…, sk_test_…).
	SecretKey string
	// WebhookSecret is the endpoint's signing secret (whsec_…); without it
	// every webhook is refused.
	WebhookSecret string
	// WebhookTolerance is the accepted age of a webhook signature (0 = 300 s,
	// Stripe's default).
	WebhookTolerance time.Duration
	// BaseURL replaces https://api.stripe.com (a simulator or stripe-mock).
	BaseURL string
	// HTTPClient is used for every call; nil means providers.NewHTTPClient(Timeout).
	HTTPClient *http.Client
	// Timeout bounds each call when HTTPClient is nil (0 = 30 s).
	Timeout time.Duration
}

// Provider is a configured Stripe account. It implements
// providers.Provider, StatusChecker, WebhookParser and SettlementLister and
// is safe for concurrent use.
type Provider struct {
	name      string
	whSecret  string
	tolerance time.Duration
	api       *client.API
}

var (
	_ providers.Provider            = (*Provider)(nil)
	_ providers.StatusChecker       = (*Provider)(nil)
	_ providers.RefundStatusChecker = (*Provider)(nil)
	_ providers.WebhookParser       = (*Provider)(nil)
	_ providers.SettlementLister    = (*Provider)(nil)
)

// New builds a Provider. It fails when the secret key is missing or the
// base URL is not an absolute http(s) URL.
func New(cfg Config) (*Provider, error) {
	if cfg.Name == "" {
		cfg.Name = "stripe"
	}
	if cfg.SecretKey == "" {
		return nil, fmt.Errorf("stripe provider %q: secret_key is required", cfg.Name)
	}
	if cfg.BaseURL != "" && !strings.HasPrefix(cfg.BaseURL, "http://") && !strings.HasPrefix(cfg.BaseURL, "https://") {
		return nil, fmt.Errorf("stripe provider %q: base_url %q must be an absolute http(s) URL", cfg.Name, cfg.BaseURL)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		t := cfg.Timeout
		if t <= 0 {
			t = 30 * time.Second
		}
		hc = providers.NewHTTPClient(t)
	}
	// Copy the client so the status-recording transport never leaks into a
	// client the caller shares with others.
	wrapped := *hc
	base := wrapped.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	wrapped.Transport = &recordingTransport{next: base}

	backend := func(t stripeapi.SupportedBackend) stripeapi.Backend {
		bc := &stripeapi.BackendConfig{
			HTTPClient:        &wrapped,
			MaxNetworkRetries: stripeapi.Int64(0),
			LeveledLogger:     silentLogger{},
			EnableTelemetry:   stripeapi.Bool(false),
		}
		if cfg.BaseURL != "" {
			// All three backends point at the base URL, so a sandbox
			// configuration can never reach production by accident.
			bc.URL = stripeapi.String(cfg.BaseURL)
		}
		return stripeapi.GetBackendWithConfig(t, bc)
	}
	tol := cfg.WebhookTolerance
	if tol <= 0 {
		tol = 300 * time.Second
	}
	return &Provider{
		name:      cfg.Name,
		whSecret:  cfg.WebhookSecret,
		tolerance: tol,
		api: client.New(cfg.SecretKey, &stripeapi.Backends{
			API:     backend(stripeapi.APIBackend),
			Connect: backend(stripeapi.ConnectBackend),
			Uploads: backend(stripeapi.UploadsBackend),
		}),
	}, nil
}

// Name is the configured provider name.
func (p *Provider) Name() string { return p.name }

// Capabilities: cards in every payrouter currency (Stripe takes them all),
// manual and partial capture, partial refunds, idempotent retries.
func (p *Provider) Capabilities() providers.Capabilities {
	curs := make([]payrouter.Currency, 0, len(stripeExponent))
	for _, c := range []payrouter.Currency{"USD", "EUR", "SGD", "GBP", "AUD", "MYR", "IDR", "PHP", "THB", "JPY", "KRW", "VND"} {
		if c.Valid() {
			curs = append(curs, c)
		}
	}
	return providers.Capabilities{
		Methods:         map[payrouter.Method][]payrouter.Currency{payrouter.MethodCard: curs},
		ManualCapture:   []payrouter.Method{payrouter.MethodCard},
		Refund:          true,
		PartialRefund:   true,
		PartialCapture:  true,
		IdempotentRetry: true,
	}
}

// Authorize creates and confirms a PaymentIntent. req.Token is a Stripe
// PaymentMethod id (pm_…) or a card token (tok_…). Idempotent under
// req.IdempotencyKey (Stripe's Idempotency-Key): a retry with the same key
// returns the first outcome, never a second charge. Returns a Result with
// status succeeded (automatic capture), authorized (manual capture),
// requires_action (3-D Secure, with a redirect NextAction) or processing; a
// decline is an *providers.Error of class Declined with Code card_declined
// or the issuer's decline code (insufficient_funds, …).
func (p *Provider) Authorize(ctx context.Context, req *providers.AuthorizeRequest) (*providers.Result, error) {
	if req.Method != payrouter.MethodCard {
		return nil, providers.Unsupported("stripe adapter takes cards only, not %q", req.Method)
	}
	if req.IdempotencyKey == "" || len(req.IdempotencyKey) > 255 {
		return nil, providers.Errorf(providers.Invalid, "idempotency_key", "an idempotency key of 1..255 characters is required")
	}
	amount, err := toStripe(req.Amount, req.Currency)
	if err != nil {
		return nil, err
	}
	params := &stripeapi.PaymentIntentParams{
		Amount:             stripeapi.Int64(amount),
		Currency:           stripeapi.String(strings.ToLower(string(req.Currency))),
		Confirm:            stripeapi.Bool(true),
		PaymentMethodTypes: stripeapi.StringSlice([]string{"card"}),
		CaptureMethod:      stripeapi.String(string(stripeapi.PaymentIntentCaptureMethodAutomatic)),
	}
	if req.Capture == payrouter.CaptureManual {
		params.CaptureMethod = stripeapi.String(string(stripeapi.PaymentIntentCaptureMethodManual))
	}
	switch {
	case strings.HasPrefix(req.Token, "pm_"):
		params.PaymentMethod = stripeapi.String(req.Token)
	case strings.HasPrefix(req.Token, "tok_"):
		// stripe-go's typed params have no payment_method_data[card]; the
		// API takes a card token there, so send it as an extra parameter.
		params.PaymentMethodData = &stripeapi.PaymentIntentPaymentMethodDataParams{Type: stripeapi.String("card")}
		params.AddExtra("payment_method_data[card][token]", req.Token)
	case req.Token == "":
		return nil, providers.Errorf(providers.Invalid, "token_required", "a Stripe card token (pm_… or tok_…) is required")
	default:
		// Never echo the token: it is card data.
		return nil, providers.Errorf(providers.Invalid, "token_invalid", "the card token is not a Stripe token (pm_… or tok_…)")
	}
	if req.ReturnURL != "" {
		params.ReturnURL = stripeapi.String(req.ReturnURL)
	}
	if req.Description != "" {
		params.Description = stripeapi.String(req.Description)
	}
	if req.Customer.Email != "" {
		params.ReceiptEmail = stripeapi.String(req.Customer.Email)
	}
	for k, v := range req.Metadata {
		params.AddMetadata(k, v)
	}
	// Ours last, so merchant metadata cannot overwrite what webhooks and
	// status queries rely on.
	params.AddMetadata("payrouter_payment_id", req.PaymentID)
	params.AddMetadata("order_id", req.OrderID())
	if req.Reference != "" {
		params.AddMetadata("reference", req.Reference)
	}
	params.SetIdempotencyKey(req.IdempotencyKey)

	rec := &callRecord{}
	params.Context = rec.with(ctx)
	pi, err := p.api.PaymentIntents.New(params)
	if err != nil {
		return nil, classify(err, rec)
	}
	return resultFromPI(pi)
}

// Capture captures an authorised PaymentIntent: req.Amount payrouter minor
// units (0 = all that is capturable). Idempotent under req.IdempotencyKey.
// Capturing a PaymentIntent not in requires_capture is Invalid.
func (p *Provider) Capture(ctx context.Context, req *providers.CaptureRequest) (*providers.Result, error) {
	if req.ProviderPaymentID == "" {
		return nil, providers.Errorf(providers.Invalid, "parameter_missing", "provider payment id is required")
	}
	params := &stripeapi.PaymentIntentCaptureParams{}
	if req.Amount > 0 {
		amount, err := toStripe(req.Amount, req.Currency)
		if err != nil {
			return nil, err
		}
		params.AmountToCapture = stripeapi.Int64(amount)
	}
	if req.IdempotencyKey != "" {
		params.SetIdempotencyKey(req.IdempotencyKey)
	}
	rec := &callRecord{}
	params.Context = rec.with(ctx)
	pi, err := p.api.PaymentIntents.Capture(req.ProviderPaymentID, params)
	if err != nil {
		return nil, classify(err, rec)
	}
	return resultFromPI(pi)
}

// Cancel cancels a PaymentIntent (voids an authorisation, abandons a
// pending 3-D Secure). When only req.OrderID is known the PaymentIntent is
// found by search first. Idempotent under req.IdempotencyKey.
func (p *Provider) Cancel(ctx context.Context, req *providers.CancelRequest) (*providers.Result, error) {
	id := req.ProviderPaymentID
	if id == "" {
		pi, err := p.search(ctx, req.OrderID)
		if err != nil {
			return nil, err
		}
		id = pi.ID
	}
	params := &stripeapi.PaymentIntentCancelParams{}
	if req.IdempotencyKey != "" {
		params.SetIdempotencyKey(req.IdempotencyKey)
	}
	rec := &callRecord{}
	params.Context = rec.with(ctx)
	pi, err := p.api.PaymentIntents.Cancel(id, params)
	if err != nil {
		return nil, classify(err, rec)
	}
	return resultFromPI(pi)
}

// stripeRefundReasons are the reasons Stripe accepts; anything else goes to
// metadata.
var stripeRefundReasons = map[string]bool{"duplicate": true, "fraudulent": true, "requested_by_customer": true}

// Refund refunds req.Amount payrouter minor units (0 = the rest) of a
// captured PaymentIntent, tagging the Stripe refund with metadata
// payrouter_refund_id = req.RefundID so webhooks can be matched.
// Idempotent under req.IdempotencyKey.
func (p *Provider) Refund(ctx context.Context, req *providers.RefundRequest) (*providers.RefundResult, error) {
	id := req.ProviderPaymentID
	if id == "" {
		pi, err := p.search(ctx, req.OrderID)
		if err != nil {
			return nil, err
		}
		id = pi.ID
	}
	params := &stripeapi.RefundParams{PaymentIntent: stripeapi.String(id)}
	if req.Amount > 0 {
		amount, err := toStripe(req.Amount, req.Currency)
		if err != nil {
			return nil, err
		}
		params.Amount = stripeapi.Int64(amount)
	}
	if req.RefundID != "" {
		params.AddMetadata("payrouter_refund_id", req.RefundID)
	}
	if req.Reason != "" {
		if stripeRefundReasons[req.Reason] {
			params.Reason = stripeapi.String(req.Reason)
		} else {
			params.AddMetadata("reason", req.Reason)
		}
	}
	if req.IdempotencyKey != "" {
		params.SetIdempotencyKey(req.IdempotencyKey)
	}
	rec := &callRecord{}
	params.Context = rec.with(ctx)
	r, err := p.api.Refunds.New(params)
	if err != nil {
		return nil, classify(err, rec)
	}
	return &providers.RefundResult{ProviderRefundID: r.ID, Status: refundStatus(r.Status)}, nil
}

// RefundStatus reads a refund: GET /v1/refunds/{id} when its id is known,
// else GET /v1/refunds?payment_intent=… for the refund tagged
// metadata payrouter_refund_id = req.RefundID (the answer to the create
// was lost). A refund Stripe does not have is Invalid "not_found".
func (p *Provider) RefundStatus(ctx context.Context, req *providers.RefundStatusRequest) (*providers.RefundResult, error) {
	rec := &callRecord{}
	if req.ProviderRefundID != "" {
		params := &stripeapi.RefundParams{}
		params.Context = rec.with(ctx)
		r, err := p.api.Refunds.Get(req.ProviderRefundID, params)
		if err != nil {
			return nil, classify(err, rec)
		}
		return &providers.RefundResult{ProviderRefundID: r.ID, Status: refundStatus(r.Status)}, nil
	}
	if req.RefundID == "" {
		return nil, providers.Errorf(providers.Invalid, "parameter_missing", "refund id or provider refund id is required")
	}
	id := req.ProviderPaymentID
	if id == "" {
		pi, err := p.search(ctx, req.OrderID)
		if err != nil {
			return nil, err
		}
		id = pi.ID
	}
	params := &stripeapi.RefundListParams{PaymentIntent: stripeapi.String(id)}
	params.Limit = stripeapi.Int64(100)
	params.Context = rec.with(ctx)
	it := p.api.Refunds.List(params)
	for it.Next() {
		r := it.Refund()
		if r.Metadata["payrouter_refund_id"] == req.RefundID {
			return &providers.RefundResult{ProviderRefundID: r.ID, Status: refundStatus(r.Status)}, nil
		}
	}
	if err := it.Err(); err != nil {
		return nil, classify(err, rec)
	}
	return nil, providers.Errorf(providers.Invalid, "not_found", "no Stripe refund for this refund id")
}

// Status retrieves a PaymentIntent by id or, when only req.OrderID is
// known, by searching metadata['order_id']. A PaymentIntent that does not
// exist is an *providers.Error of class Invalid with Code "not_found": after
// an ambiguous create the router reads that as "never created".
//
// Caveat for live Stripe: the search index is eventually consistent (Stripe
// documents up to a minute), so a not_found from an order-id search made
// right after a create is not proof; resending the create with the same
// idempotency key (IdempotentRetry) is the reliable resolution.
func (p *Provider) Status(ctx context.Context, req *providers.StatusRequest) (*providers.Result, error) {
	if req.ProviderPaymentID == "" {
		pi, err := p.search(ctx, req.OrderID)
		if err != nil {
			return nil, err
		}
		return resultFromPI(pi)
	}
	params := &stripeapi.PaymentIntentParams{}
	rec := &callRecord{}
	params.Context = rec.with(ctx)
	pi, err := p.api.PaymentIntents.Get(req.ProviderPaymentID, params)
	if err != nil {
		return nil, classify(err, rec)
	}
	return resultFromPI(pi)
}

// search finds the PaymentIntent created for an order id. With several
// (which idempotency keys prevent) the most advanced one wins.
func (p *Provider) search(ctx context.Context, orderID string) (*stripeapi.PaymentIntent, error) {
	if orderID == "" {
		return nil, providers.Errorf(providers.Invalid, "parameter_missing", "provider payment id or order id is required")
	}
	if strings.ContainsAny(orderID, `'\`) {
		return nil, providers.Errorf(providers.Invalid, "parameter_invalid", "order id contains characters Stripe search cannot quote")
	}
	params := &stripeapi.PaymentIntentSearchParams{}
	params.Query = fmt.Sprintf("metadata['order_id']:'%s'", orderID)
	params.Limit = stripeapi.Int64(10)
	rec := &callRecord{}
	params.Context = rec.with(ctx)
	it := p.api.PaymentIntents.Search(params)
	var best *stripeapi.PaymentIntent
	for n := 0; it.Next() && n < 10; n++ {
		pi := it.PaymentIntent()
		if pi.Metadata["order_id"] != orderID {
			continue // a search backend that matches loosely must not fool us
		}
		if best == nil || piRank(pi.Status) > piRank(best.Status) {
			best = pi
		}
	}
	if err := it.Err(); err != nil {
		return nil, classify(err, rec)
	}
	if best == nil {
		return nil, providers.Errorf(providers.Invalid, "not_found", "no PaymentIntent for this order id")
	}
	return best, nil
}

func piRank(s stripeapi.PaymentIntentStatus) int {
	switch s {
	case stripeapi.PaymentIntentStatusSucceeded:
		return 5
	case stripeapi.PaymentIntentStatusRequiresCapture:
		return 4
	case stripeapi.PaymentIntentStatusProcessing:
		return 3
	case stripeapi.PaymentIntentStatusRequiresAction, stripeapi.PaymentIntentStatusRequiresConfirmation:
		return 2
	case stripeapi.PaymentIntentStatusCanceled:
		return 1
	}
	return 0
}

// resultFromPI maps a PaymentIntent to a Result.
func resultFromPI(pi *stripeapi.PaymentIntent) (*providers.Result, error) {
	st, failure := mapPIStatus(pi)
	res := &providers.Result{
		ProviderPaymentID: pi.ID,
		Status:            st,
		ProviderStatus:    string(pi.Status),
		Failure:           failure,
	}
	if cur, ok := fromStripeCurrency(pi.Currency); ok && pi.AmountReceived > 0 {
		n, err := fromStripe(pi.AmountReceived, cur)
		if err != nil {
			return nil, err
		}
		res.AmountCaptured = n
	}
	if pi.Status == stripeapi.PaymentIntentStatusRequiresAction {
		res.NextAction = nextAction(pi)
	}
	return res, nil
}

// mapPIStatus maps a PaymentIntent status to payrouter's. An unknown status
// maps to "" so callers record it rather than guess.
func mapPIStatus(pi *stripeapi.PaymentIntent) (payrouter.Status, *payrouter.Failure) {
	switch pi.Status {
	case stripeapi.PaymentIntentStatusSucceeded:
		return payrouter.StatusSucceeded, nil
	case stripeapi.PaymentIntentStatusRequiresCapture:
		return payrouter.StatusAuthorized, nil
	case stripeapi.PaymentIntentStatusRequiresAction:
		return payrouter.StatusRequiresAction, nil
	case stripeapi.PaymentIntentStatusProcessing, stripeapi.PaymentIntentStatusRequiresConfirmation:
		return payrouter.StatusProcessing, nil
	case stripeapi.PaymentIntentStatusCanceled:
		code := "canceled"
		if pi.CancellationReason == stripeapi.PaymentIntentCancellationReasonAbandoned {
			// The customer never completed authentication: the payment
			// lapsed, which payrouter calls expired.
			return payrouter.StatusExpired, &payrouter.Failure{Code: "expired", ProviderCode: "abandoned"}
		}
		if pi.CancellationReason != "" {
			return payrouter.StatusCanceled, &payrouter.Failure{Code: code, ProviderCode: string(pi.CancellationReason)}
		}
		return payrouter.StatusCanceled, &payrouter.Failure{Code: code}
	case stripeapi.PaymentIntentStatusRequiresPaymentMethod:
		// We always create with confirm=true, so requires_payment_method
		// means the confirmation failed.
		return payrouter.StatusFailed, failureFrom(pi.LastPaymentError)
	}
	return "", nil
}

// failureFrom turns Stripe's last_payment_error into a Failure.
func failureFrom(e *stripeapi.Error) *payrouter.Failure {
	if e == nil {
		return &payrouter.Failure{Code: "payment_failed"}
	}
	code, provCode := declineCodes(e)
	return &payrouter.Failure{Code: code, Message: e.Msg, ProviderCode: provCode}
}

// declineCodes returns payrouter's code and the provider code for a card
// error: the issuer's decline code when it says more than "generic".
func declineCodes(e *stripeapi.Error) (code, providerCode string) {
	providerCode = string(e.DeclineCode)
	if providerCode == "" {
		providerCode = string(e.Code)
	}
	switch {
	case e.DeclineCode != "" && e.DeclineCode != "generic_decline":
		code = string(e.DeclineCode)
	case e.Code != "":
		code = string(e.Code)
	default:
		code = "card_declined"
	}
	return code, providerCode
}

func nextAction(pi *stripeapi.PaymentIntent) *payrouter.NextAction {
	if pi.NextAction != nil && pi.NextAction.RedirectToURL != nil && pi.NextAction.RedirectToURL.URL != "" {
		return &payrouter.NextAction{Type: "redirect", URL: pi.NextAction.RedirectToURL.URL}
	}
	// use_stripe_sdk and friends: the merchant's front end must finish it
	// with Stripe.js; we can only say that a redirect-less action is due.
	return &payrouter.NextAction{Type: "redirect"}
}

func refundStatus(s stripeapi.RefundStatus) payrouter.RefundStatus {
	switch s {
	case stripeapi.RefundStatusSucceeded:
		return payrouter.RefundSucceeded
	case stripeapi.RefundStatusFailed, stripeapi.RefundStatusCanceled:
		return payrouter.RefundFailed
	}
	return payrouter.RefundPending // pending, requires_action
}

// silentLogger drops stripe-go's log lines: adapters do not log, and
// stripe-go's debug lines would carry response bodies.
type silentLogger struct{}

func (silentLogger) Debugf(string, ...interface{}) {}
func (silentLogger) Errorf(string, ...interface{}) {}
func (silentLogger) Infof(string, ...interface{})  {}
func (silentLogger) Warnf(string, ...interface{})  {}
