// Package midtrans is payrouter's adapter for the Midtrans Core API, built on
// github.com/midtrans/midtrans-go (v1.3.8).
//
// Methods (IDR only; Midtrans gross_amount is whole rupiah, payrouter's IDR
// exponent 0): card (credit_card with a Midtrans token; 3-D Secure redirect
// when Midtrans answers with redirect_url; capture=manual sends type
// "authorize"), gopay (deeplink + QR), qris (QR string), shopeepay
// (deeplink), bank_transfer (bca, bni, bri, permata virtual accounts; mandiri
// as echannel bill payment).
//
// The order id sent to Midtrans is AuthorizeRequest.OrderID(); Midtrans
// echoes it in every notification, and refuses a repeated one (406), so an
// attempt is never charged twice even without the idempotency key.
//
// The SDK has pitfalls this adapter works around (see PROVIDERS.md):
//   - a coreapi.Client and its Options are built fresh for every call, so an
//     Idempotency-Key set for one request never leaks into the next;
//   - ConfigOptions.SetContext has no effect in the SDK, so the context's
//     deadline and cancellation are applied by the adapter's own
//     http.RoundTripper (which also rewrites scheme, host and path prefix to
//     Config.BaseURL, so the SDK's hard-coded URLs reach a simulator);
//   - the SDK's sandbox logger prints the Authorization header (the server
//     key): the adapter always installs a logger that logs nothing.
//
// Midtrans idempotency keys are limited to 36 characters: a longer
// AuthorizeRequest.IdempotencyKey is replaced by the first 32 hex digits of
// its SHA-256, deterministically, so a retry still sends the same key.
//
// Midtrans has no public settlement-list API, so the adapter does not
// implement providers.SettlementLister; reconcile Midtrans from its CSV
// settlement reports.
package midtrans

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	mt "github.com/midtrans/midtrans-go"
	"github.com/midtrans/midtrans-go/coreapi"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// Config configures one Midtrans account.
type Config struct {
	// Name is the configured provider name, used in Notification.Provider.
	Name string
	// ServerKey authenticates every call (HTTP Basic user) and signs
	// notifications. It is never logged.
	ServerKey string
	// Production selects https://api.midtrans.com when BaseURL is empty;
	// otherwise the sandbox https://api.sandbox.midtrans.com is used.
	Production bool
	// BaseURL overrides the API base (scheme, host and an optional path
	// prefix such as http://127.0.0.1:8080/sim/midtrans).
	BaseURL string
	// HTTPClient is the client whose Transport is used; nil means the
	// default transport behind providers.NoReplay. Its Timeout applies when Timeout is zero.
	HTTPClient *http.Client
	// Timeout bounds every call (default 30s).
	Timeout time.Duration
	// NotificationURL, when set, is sent on charges as the
	// X-Override-Notification header (supported by the SDK's
	// ConfigOptions.PaymentOverrideNotification), so Midtrans notifies this
	// URL instead of the dashboard's.
	NotificationURL string
}

// Provider is a configured Midtrans adapter. It is safe for concurrent use.
type Provider struct {
	cfg     Config
	env     mt.EnvironmentType
	base    *url.URL // nil: the SDK's own URL
	rt      http.RoundTripper
	timeout time.Duration
}

var (
	_ providers.Provider            = (*Provider)(nil)
	_ providers.StatusChecker       = (*Provider)(nil)
	_ providers.RefundStatusChecker = (*Provider)(nil)
	_ providers.WebhookParser       = (*Provider)(nil)
)

// banks lists the bank_transfer banks Midtrans takes; mandiri is the echannel
// bill payment.
var banks = []string{"bca", "bni", "bri", "permata", "mandiri"}

// New validates cfg and returns a Provider.
func New(cfg Config) (*Provider, error) {
	if cfg.ServerKey == "" {
		return nil, errors.New("midtrans: server_key is required")
	}
	if strings.ContainsAny(cfg.ServerKey, " \t\r\n") {
		return nil, errors.New("midtrans: server_key must not contain white space")
	}
	if cfg.Name == "" {
		cfg.Name = "midtrans"
	}
	p := &Provider{cfg: cfg, env: mt.Sandbox, rt: providers.NoReplay(nil), timeout: cfg.Timeout}
	if cfg.Production {
		p.env = mt.Production
	}
	if cfg.BaseURL != "" {
		u, err := url.Parse(strings.TrimSuffix(cfg.BaseURL, "/"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("midtrans: base_url %q must be an absolute http(s) URL", cfg.BaseURL)
		}
		p.base = u
	}
	if cfg.HTTPClient != nil {
		if cfg.HTTPClient.Transport != nil {
			p.rt = cfg.HTTPClient.Transport
		}
		if p.timeout == 0 {
			p.timeout = cfg.HTTPClient.Timeout
		}
	}
	if p.timeout <= 0 {
		p.timeout = 30 * time.Second
	}
	return p, nil
}

// Name is the configured provider name.
func (p *Provider) Name() string { return p.cfg.Name }

// Capabilities: every method in IDR; manual capture for cards; refunds
// (partial too) for card, gopay and qris — Midtrans refunds neither VA nor
// ShopeePay through the Core API refund endpoint used here.
func (p *Provider) Capabilities() providers.Capabilities {
	idr := []payrouter.Currency{"IDR"}
	return providers.Capabilities{
		Methods: map[payrouter.Method][]payrouter.Currency{
			payrouter.MethodCard:         idr,
			payrouter.MethodGoPay:        idr,
			payrouter.MethodQRIS:         idr,
			payrouter.MethodShopeePay:    idr,
			payrouter.MethodBankTransfer: idr,
		},
		ManualCapture:   []payrouter.Method{payrouter.MethodCard},
		Refund:          true,
		PartialRefund:   true,
		IdempotentRetry: true,
		Banks:           append([]string(nil), banks...),
	}
}

// refundable reports whether Midtrans refunds method through /v2/{id}/refund.
func refundable(m payrouter.Method) bool {
	return m == payrouter.MethodCard || m == payrouter.MethodGoPay || m == payrouter.MethodQRIS
}

// IdempotencyKey maps payrouter's key to one Midtrans accepts (≤ 36
// characters): unchanged when short enough, else the first 32 hex digits of
// its SHA-256. Deterministic, so a retry sends the same key.
func IdempotencyKey(k string) string {
	if len(k) <= 36 {
		return k
	}
	sum := sha256.Sum256([]byte(k))
	return hex.EncodeToString(sum[:16])
}

// quiet is the SDK logger: it logs nothing, because the SDK's own loggers
// print the Authorization header (the server key) in sandbox.
type quiet struct{}

func (quiet) Error(string, ...interface{}) {}
func (quiet) Info(string, ...interface{})  {}
func (quiet) Debug(string, ...interface{}) {}

// client builds a fresh SDK client for one call: its http.Client carries
// ctx bounded by the timeout (the SDK drops contexts) and the BaseURL
// rewrite; its Options carry only this call's idempotency key. The caller
// calls done once the SDK call has returned (the SDK reads the whole body
// before it returns).
func (p *Provider) client(ctx context.Context, idemKey string, notify bool) (c coreapi.Client, done context.CancelFunc) {
	ctx, done = context.WithTimeout(ctx, p.timeout)
	hc := &http.Client{
		Transport: &transport{ctx: ctx, base: p.base, next: p.rt},
		// Midtrans never redirects API calls; following one could resend
		// the server key elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	opts := &mt.ConfigOptions{}
	if idemKey != "" {
		opts.SetPaymentIdempotencyKey(IdempotencyKey(idemKey))
	}
	if notify && p.cfg.NotificationURL != "" {
		opts.SetPaymentOverrideNotification(p.cfg.NotificationURL)
	}
	return coreapi.Client{
		ServerKey:  p.cfg.ServerKey,
		Env:        p.env,
		HttpClient: &mt.HttpClientImplementation{HttpClient: hc, Logger: quiet{}},
		Options:    opts,
	}, done
}

// transport applies the call's context (deadline and cancellation) to the
// request and points the SDK's fixed URL at BaseURL. A deadline surfaces
// as context.DeadlineExceeded, which providers.ClassifyTransport reports as
// an ambiguous timeout.
type transport struct {
	ctx  context.Context
	base *url.URL
	next http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(t.ctx)
	if t.base != nil {
		r.URL.Scheme = t.base.Scheme
		r.URL.Host = t.base.Host
		r.URL.Path = t.base.Path + req.URL.Path
		r.URL.RawPath = ""
		r.Host = ""
	}
	return t.next.RoundTrip(r)
}

// wib is Midtrans' time zone (Western Indonesian Time) for its
// "2006-01-02 15:04:05" timestamps.
var wib = time.FixedZone("WIB", 7*3600)

// Authorize charges req through POST /v2/charge. Customer-action methods
// return StatusRequiresAction with a NextAction; a card returns succeeded,
// authorized (capture=manual) or requires_action (3-D Secure redirect). A
// card denied by the bank or by fraud detection is an *Error of class
// Declined (insufficient_funds when the channel says 51, else card_declined).
// Non-IDR currencies, unknown banks and missing card tokens are Invalid,
// before anything is sent. Idempotent under req.IdempotencyKey (sent as
// Idempotency-Key) and under the order id, which Midtrans never charges twice.
func (p *Provider) Authorize(ctx context.Context, req *providers.AuthorizeRequest) (*providers.Result, error) {
	charge, err := p.chargeRequest(req)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, &providers.Error{Class: providers.Unavailable, Code: "canceled", Message: "not sent: context done", Err: err}
	}
	c, done := p.client(ctx, req.IdempotencyKey, true)
	resp, merr := c.ChargeTransaction(charge)
	done()
	if merr != nil {
		return nil, classify(merr)
	}
	if e := bodyError(resp.StatusCode, resp.StatusMessage); e != nil {
		return nil, e
	}
	res := chargeResult(resp)
	if res.Status == payrouter.StatusFailed {
		f := res.Failure
		return nil, &providers.Error{Class: providers.Declined, Code: f.Code, ProviderCode: f.ProviderCode, HTTPStatus: 200, Message: f.Message}
	}
	if res.Status == "" {
		// The charge exists at Midtrans but in a state we cannot name:
		// the router must resolve it by status query, never retry elsewhere.
		return nil, &providers.Error{Class: providers.Ambiguous, Code: "unmapped_status", ProviderCode: resp.TransactionStatus,
			Message: "midtrans answered transaction_status " + strconv.Quote(resp.TransactionStatus)}
	}
	return res, nil
}

func (p *Provider) chargeRequest(req *providers.AuthorizeRequest) (*coreapi.ChargeReq, error) {
	if req.Currency != "IDR" {
		return nil, providers.Unsupported("midtrans takes IDR only, not %s", req.Currency)
	}
	if req.Amount <= 0 || req.Amount > payrouter.MaxAmount {
		return nil, providers.Errorf(providers.Invalid, "invalid_amount", "amount must be within 1..%d", payrouter.MaxAmount)
	}
	if req.OrderID() == "" {
		return nil, providers.Errorf(providers.Invalid, "invalid_request", "idempotency key (order id) is required")
	}
	c := &coreapi.ChargeReq{
		TransactionDetails: mt.TransactionDetails{OrderID: req.OrderID(), GrossAmt: req.Amount},
	}
	if req.Customer != (payrouter.Customer{}) {
		c.CustomerDetails = &mt.CustomerDetails{FName: req.Customer.Name, Email: req.Customer.Email, Phone: req.Customer.Phone}
	}
	if len(req.Metadata) > 0 {
		c.Metadata = req.Metadata
	}
	switch req.Method {
	case payrouter.MethodCard:
		if req.Token == "" {
			return nil, providers.Errorf(providers.Invalid, "token_required", "a Midtrans card token is required")
		}
		c.PaymentType = coreapi.PaymentTypeCreditCard
		c.CreditCard = &coreapi.CreditCardDetails{TokenID: req.Token, Authentication: true}
		if req.Capture == payrouter.CaptureManual {
			c.CreditCard.Type = "authorize"
		}
	case payrouter.MethodGoPay:
		c.PaymentType = coreapi.PaymentTypeGopay
		c.Gopay = &coreapi.GopayDetails{EnableCallback: req.ReturnURL != "", CallbackUrl: req.ReturnURL}
	case payrouter.MethodShopeePay:
		c.PaymentType = coreapi.PaymentTypeShopeepay
		c.ShopeePay = &coreapi.ShopeePayDetails{CallbackUrl: req.ReturnURL}
	case payrouter.MethodQRIS:
		c.PaymentType = coreapi.PaymentTypeQris
		c.Qris = &coreapi.QrisDetails{Acquirer: "gopay"}
	case payrouter.MethodBankTransfer:
		switch bank := strings.ToLower(req.Bank); bank {
		case "bca", "bni", "bri", "permata":
			c.PaymentType = coreapi.PaymentTypeBankTransfer
			c.BankTransfer = &coreapi.BankTransferDetails{Bank: mt.Bank(bank)}
		case "mandiri":
			c.PaymentType = coreapi.PaymentTypeEChannel
			c.EChannel = &coreapi.EChannelDetail{BillInfo1: "Payment:", BillInfo2: truncate(orDefault(req.Description, "Online purchase"), 30)}
		case "":
			return nil, &providers.Error{Class: providers.Invalid, Code: "bank_required", Message: "bank is required for bank_transfer (bca, bni, bri, permata, mandiri)"}
		default:
			return nil, &providers.Error{Class: providers.Invalid, Code: "unsupported", Message: fmt.Sprintf("midtrans has no bank_transfer for bank %q", req.Bank)}
		}
	default:
		return nil, providers.Unsupported("midtrans does not take method %s", req.Method)
	}
	return c, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}

// chargeResult maps a charge (or capture/cancel/expire) response.
func chargeResult(r *coreapi.ChargeResponse) *providers.Result {
	res := &providers.Result{
		ProviderPaymentID: r.TransactionID,
		Status:            MapStatus(r.TransactionStatus, r.FraudStatus),
		ProviderStatus:    r.TransactionStatus,
	}
	if r.FraudStatus != "" {
		res.ProviderStatus += "/" + r.FraudStatus
	}
	switch res.Status {
	case payrouter.StatusSucceeded:
		if n, err := grossAmount(r.GrossAmount); err == nil {
			res.AmountCaptured = n
		}
	case payrouter.StatusFailed:
		res.Failure = failure(r.TransactionStatus, r.FraudStatus, r.StatusCode, r.ChannelResponseCode, r.StatusMessage)
	case payrouter.StatusRequiresAction:
		res.NextAction = nextAction(r)
	}
	return res
}

// nextAction derives what the customer must do from a pending charge.
func nextAction(r *coreapi.ChargeResponse) *payrouter.NextAction {
	var na *payrouter.NextAction
	action := func(name string) string {
		for _, a := range r.Actions {
			if a.Name == name {
				return a.URL
			}
		}
		return ""
	}
	switch {
	case r.RedirectURL != "": // card 3-D Secure
		na = &payrouter.NextAction{Type: "redirect", URL: r.RedirectURL}
	case action("deeplink-redirect") != "": // gopay, shopeepay
		na = &payrouter.NextAction{Type: "deeplink", URL: action("deeplink-redirect"), QRString: r.QRString}
	case r.QRString != "" || action("generate-qr-code") != "": // qris, gopay QR-only
		na = &payrouter.NextAction{Type: "qr_code", URL: action("generate-qr-code"), QRString: r.QRString}
	case len(r.VaNumbers) > 0:
		na = &payrouter.NextAction{Type: "bank_transfer", VANumber: r.VaNumbers[0].VANumber, Bank: r.VaNumbers[0].Bank}
	case r.PermataVaNumber != "":
		na = &payrouter.NextAction{Type: "bank_transfer", VANumber: r.PermataVaNumber, Bank: "permata"}
	case r.BillKey != "":
		// Mandiri bill payment: the customer enters the biller code, then
		// the bill key.
		na = &payrouter.NextAction{Type: "bank_transfer", VANumber: r.BillKey, BillerCode: r.BillerCode, Bank: "mandiri"}
	default:
		return nil
	}
	if t, err := time.ParseInLocation("2006-01-02 15:04:05", r.ExpiryTime, wib); err == nil {
		t = t.UTC()
		na.ExpiresAt = &t
	}
	return na
}

// MapStatus maps Midtrans transaction_status × fraud_status to payrouter's
// status. "" means unmapped: the caller records it and never guesses.
//
//	pending                        → requires_action
//	authorize  (accept or none)    → authorized
//	authorize  + challenge         → processing (held by fraud review)
//	capture    (accept or none)    → succeeded
//	capture    + challenge         → processing (not yet paid)
//	settlement                     → succeeded
//	any        + fraud deny, deny  → failed
//	cancel                         → canceled
//	expire                         → expired
//	failure                        → failed
//	refund                         → refunded
//	partial_refund                 → partially_refunded
//	anything else (chargeback, …)  → ""
func MapStatus(transactionStatus, fraudStatus string) payrouter.Status {
	if fraudStatus == "deny" && (transactionStatus == "authorize" || transactionStatus == "capture" || transactionStatus == "deny") {
		return payrouter.StatusFailed
	}
	switch transactionStatus {
	case "pending":
		return payrouter.StatusRequiresAction
	case "authorize":
		if fraudStatus == "challenge" {
			return payrouter.StatusProcessing
		}
		return payrouter.StatusAuthorized
	case "capture":
		if fraudStatus == "challenge" {
			return payrouter.StatusProcessing
		}
		return payrouter.StatusSucceeded
	case "settlement":
		return payrouter.StatusSucceeded
	case "deny", "failure":
		return payrouter.StatusFailed
	case "cancel":
		return payrouter.StatusCanceled
	case "expire":
		return payrouter.StatusExpired
	case "refund":
		return payrouter.StatusRefunded
	case "partial_refund":
		return payrouter.StatusPartiallyRefunded
	}
	return ""
}

// failure explains a deny/failure. ISO 8583 response code 51 from the
// acquirer is insufficient funds.
func failure(txStatus, fraud, statusCode, channelCode, message string) *payrouter.Failure {
	f := &payrouter.Failure{Code: "card_declined", ProviderCode: statusCode, Message: message}
	if channelCode != "" {
		f.ProviderCode = channelCode
	}
	switch {
	case fraud == "deny":
		f.Code = "fraud_denied"
	case channelCode == "51":
		f.Code = "insufficient_funds"
	case txStatus == "failure":
		f.Code = "failed"
	}
	return f
}

// grossAmount parses Midtrans' decimal gross_amount ("100000.00") exactly
// into whole rupiah; a non-zero fraction is refused.
func grossAmount(s string) (int64, error) {
	n, err := payrouter.ParseDecimal(s, 2)
	if err != nil {
		return 0, err
	}
	return payrouter.ScaleAmount(n, 2, 0)
}

// bodyError turns a Midtrans body status_code of 400 or more (except 407,
// "expired", which is a state, not an error) into an *Error. The SDK only
// catches ≥ 401, and only when the HTTP status says so.
func bodyError(statusCode, message string) *providers.Error {
	n, err := strconv.Atoi(statusCode)
	if err != nil || n < 400 || n == 407 {
		return nil
	}
	return apiError(n, 200, message)
}

// apiError classifies a Midtrans API error status code.
func apiError(code, httpStatus int, message string) *providers.Error {
	e := &providers.Error{Class: providers.ClassifyHTTP(code), ProviderCode: strconv.Itoa(code), HTTPStatus: httpStatus, Message: message}
	if e.Class == "" {
		e.Class = providers.Ambiguous
	}
	switch code {
	case 401:
		// The server key is wrong: nothing was processed; fail over and
		// tell ops.
		e.Class, e.Code = providers.Unavailable, providers.CodeCredentialsRefused
	case 402:
		e.Code = "payment_type_not_enabled"
	case 404:
		e.Code = "not_found"
	case 406:
		e.Code = "duplicate_order_id"
	case 412:
		e.Code = "invalid_state"
	case 429:
		e.Code = "rate_limited"
	default:
		switch e.Class {
		case providers.Invalid:
			e.Code = "invalid_request"
		case providers.Unavailable:
			e.Code = "provider_unavailable"
		default:
			e.Code = "provider_error"
		}
	}
	return e
}

// classify maps an SDK error. The SDK wraps transport errors in
// *midtrans.Error with RawError (which unwraps to the net/url error, so a
// timeout stays a timeout) and no RawApiResponse.
func classify(e *mt.Error) *providers.Error {
	if e == nil {
		return nil
	}
	if e.RawApiResponse == nil {
		if e.RawError == nil {
			// Refused by the SDK before sending (empty or spaced key).
			return &providers.Error{Class: providers.Invalid, Code: "invalid_config", Message: "midtrans request not sent: invalid server key"}
		}
		pe := providers.ClassifyTransport(e.RawError)
		if e.StatusCode != 0 && pe.Class != providers.Ambiguous {
			// A response arrived but its body was lost: processed, maybe.
			pe = &providers.Error{Class: providers.Ambiguous, Code: "network_error", Err: e.RawError}
		}
		return &providers.Error{Class: pe.Class, Code: pe.Code, HTTPStatus: e.StatusCode, Message: "midtrans unreachable", Err: e.RawError}
	}
	httpStatus := e.RawApiResponse.StatusCode
	var body struct {
		StatusCode    string `json:"status_code"`
		StatusMessage string `json:"status_message"`
	}
	parsed := json.Unmarshal(e.RawApiResponse.RawBody, &body) == nil
	code := httpStatus
	if n, err := strconv.Atoi(body.StatusCode); err == nil && n >= 400 {
		code = n
	}
	if code < 400 {
		// HTTP 2xx/3xx whose body could not be decoded: Midtrans may
		// have processed the request.
		return &providers.Error{Class: providers.Ambiguous, Code: "bad_response", HTTPStatus: httpStatus, Message: "midtrans answered an unreadable body"}
	}
	msg := body.StatusMessage
	if !parsed || msg == "" {
		msg = http.StatusText(code)
	}
	return apiError(code, httpStatus, msg)
}

// Capture captures an authorised card charge through POST /v2/capture.
// Amount 0 captures the whole authorisation (looked up by status first).
// Idempotent under req.IdempotencyKey. Errors: Invalid (412) when the charge
// is not authorised; otherwise as Authorize.
func (p *Provider) Capture(ctx context.Context, req *providers.CaptureRequest) (*providers.Result, error) {
	if req.ProviderPaymentID == "" {
		return nil, providers.Errorf(providers.Invalid, "invalid_request", "provider payment id is required")
	}
	if req.Currency != "" && req.Currency != "IDR" {
		return nil, providers.Unsupported("midtrans takes IDR only, not %s", req.Currency)
	}
	amount := req.Amount
	if amount == 0 {
		st, err := p.status(ctx, req.ProviderPaymentID)
		if err != nil {
			return nil, err
		}
		if amount, err = grossAmount(st.GrossAmount); err != nil {
			return nil, &providers.Error{Class: providers.Ambiguous, Code: "bad_response", Message: "midtrans gross_amount " + strconv.Quote(st.GrossAmount)}
		}
	}
	// coreapi.CaptureReq carries gross_amount as float64; payrouter keeps
	// money off floats, so the call goes through the SDK's HttpClient with
	// an integer body instead.
	body, _ := json.Marshal(struct {
		TransactionID string `json:"transaction_id"`
		GrossAmount   int64  `json:"gross_amount"`
	}{req.ProviderPaymentID, amount})
	c, done := p.client(ctx, req.IdempotencyKey, false)
	resp := &coreapi.ChargeResponse{}
	merr := c.HttpClient.Call(http.MethodPost, c.Env.BaseUrl()+"/v2/capture", &c.ServerKey, c.Options, bytes.NewReader(body), resp)
	done()
	if merr != nil {
		return nil, classify(merr)
	}
	if e := bodyError(resp.StatusCode, resp.StatusMessage); e != nil {
		return nil, e
	}
	res := chargeResult(resp)
	if res.ProviderPaymentID == "" {
		res.ProviderPaymentID = req.ProviderPaymentID
	}
	if res.Status == payrouter.StatusSucceeded {
		res.AmountCaptured = amount
	}
	return res, nil
}

// Cancel voids a card authorisation or cancels a pending payment through
// POST /v2/{id}/cancel. Midtrans refuses to cancel some pending
// customer-action payments (412); those are expired instead through
// POST /v2/{id}/expire, and the result says expired. The id is the
// transaction id, or the order id when the transaction id was never learnt.
func (p *Provider) Cancel(ctx context.Context, req *providers.CancelRequest) (*providers.Result, error) {
	id := req.ProviderPaymentID
	if id == "" {
		id = req.OrderID
	}
	if id == "" {
		return nil, providers.Errorf(providers.Invalid, "invalid_request", "provider payment id or order id is required")
	}
	c, done := p.client(ctx, req.IdempotencyKey, false)
	resp, merr := c.CancelTransaction(url.PathEscape(id))
	done()
	perr := classify(merr)
	if perr == nil {
		perr = bodyError(resp.StatusCode, resp.StatusMessage)
	}
	if perr != nil && perr.Class == providers.Invalid && perr.Code == "invalid_state" && req.Method.CustomerAction() {
		key := req.IdempotencyKey
		if key != "" {
			key += "_expire" // a different operation: its own key
		}
		c, done := p.client(ctx, key, false)
		resp, merr = c.ExpireTransaction(url.PathEscape(id))
		done()
		if perr = classify(merr); perr == nil {
			perr = bodyError(resp.StatusCode, resp.StatusMessage)
		}
	}
	if perr != nil {
		return nil, perr
	}
	res := chargeResult(resp)
	if res.ProviderPaymentID == "" {
		res.ProviderPaymentID = req.ProviderPaymentID
	}
	return res, nil
}

// Refund refunds Amount (whole rupiah) through POST /v2/{id}/refund with
// refund_key = req.RefundID, which Midtrans uses to refuse a second refund
// with the same key; the Idempotency-Key header is sent too. Only card,
// gopay and qris are refundable (Invalid otherwise).
func (p *Provider) Refund(ctx context.Context, req *providers.RefundRequest) (*providers.RefundResult, error) {
	if req.Currency != "" && req.Currency != "IDR" {
		return nil, providers.Unsupported("midtrans takes IDR only, not %s", req.Currency)
	}
	if req.Method != "" && !refundable(req.Method) {
		return nil, providers.Unsupported("midtrans cannot refund %s payments", req.Method)
	}
	if req.Amount <= 0 {
		return nil, providers.Errorf(providers.Invalid, "invalid_amount", "refund amount must be positive")
	}
	id := req.ProviderPaymentID
	if id == "" {
		id = req.OrderID
	}
	if id == "" || req.RefundID == "" {
		return nil, providers.Errorf(providers.Invalid, "invalid_request", "provider payment id and refund id are required")
	}
	c, done := p.client(ctx, req.IdempotencyKey, false)
	resp, merr := c.RefundTransaction(url.PathEscape(id),
		&coreapi.RefundReq{RefundKey: req.RefundID, Amount: req.Amount, Reason: req.Reason})
	done()
	if merr != nil {
		return nil, classify(merr)
	}
	if e := bodyError(resp.StatusCode, resp.StatusMessage); e != nil {
		return nil, e
	}
	out := &providers.RefundResult{ProviderRefundID: resp.RefundChargebackUUID, Status: payrouter.RefundSucceeded}
	if out.ProviderRefundID == "" && resp.RefundChargebackID != 0 {
		out.ProviderRefundID = strconv.Itoa(resp.RefundChargebackID)
	}
	if resp.StatusCode == "201" { // accepted, not yet done (online refunds)
		out.Status = payrouter.RefundPending
	}
	return out, nil
}

// RefundStatus finds a refund in the refunds[] of GET /v2/{id}/status by
// its refund_key (req.RefundID) or refund_chargeback_uuid. Midtrans lists
// a refund there once it is done and has no failed-refund state, so a
// listed refund is succeeded and one not listed (or a transaction Midtrans
// does not know) is Invalid "not_found".
func (p *Provider) RefundStatus(ctx context.Context, req *providers.RefundStatusRequest) (*providers.RefundResult, error) {
	id := req.ProviderPaymentID
	if id == "" {
		id = req.OrderID
	}
	if id == "" || (req.RefundID == "" && req.ProviderRefundID == "") {
		return nil, providers.Errorf(providers.Invalid, "invalid_request", "provider payment id and refund id are required")
	}
	st, err := p.status(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, rf := range st.Refunds {
		if (req.RefundID != "" && rf.RefundKey == req.RefundID) || (req.ProviderRefundID != "" && rf.RefundChargebackUUID == req.ProviderRefundID) {
			out := &providers.RefundResult{ProviderRefundID: rf.RefundChargebackUUID, Status: payrouter.RefundSucceeded}
			if out.ProviderRefundID == "" && rf.RefundChargebackID != 0 {
				out.ProviderRefundID = strconv.Itoa(rf.RefundChargebackID)
			}
			return out, nil
		}
	}
	return nil, providers.Errorf(providers.Invalid, "not_found", "midtrans lists no refund with this refund key")
}

// Status asks GET /v2/{id}/status, by transaction id or, when that is
// unknown, by the order id sent on Authorize. A denied charge is a Result
// with status failed (not an error); an unknown one is Invalid "not_found".
func (p *Provider) Status(ctx context.Context, req *providers.StatusRequest) (*providers.Result, error) {
	id := req.ProviderPaymentID
	if id == "" {
		id = req.OrderID
	}
	if id == "" {
		return nil, providers.Errorf(providers.Invalid, "invalid_request", "provider payment id or order id is required")
	}
	st, err := p.status(ctx, id)
	if err != nil {
		return nil, err
	}
	res := &providers.Result{
		ProviderPaymentID: st.TransactionID,
		Status:            MapStatus(st.TransactionStatus, st.FraudStatus),
		ProviderStatus:    st.TransactionStatus,
	}
	if st.FraudStatus != "" {
		res.ProviderStatus += "/" + st.FraudStatus
	}
	switch res.Status {
	case payrouter.StatusSucceeded, payrouter.StatusPartiallyRefunded, payrouter.StatusRefunded:
		if n, err := grossAmount(st.GrossAmount); err == nil {
			res.AmountCaptured = n
		}
		res.Refunds = []providers.ReportedRefund{} // Midtrans lists them: none is none
		for _, r := range st.Refunds {
			if n, err := grossAmount(r.RefundAmount); err == nil {
				res.Refunds = append(res.Refunds, providers.ReportedRefund{RefundID: r.RefundKey, ProviderRefundID: r.RefundChargebackUUID, Amount: n})
			}
		}
	case payrouter.StatusFailed:
		res.Failure = failure(st.TransactionStatus, st.FraudStatus, st.StatusCode, st.ChannelResponseCode, st.StatusMessage)
	}
	return res, nil
}

func (p *Provider) status(ctx context.Context, id string) (*coreapi.TransactionStatusResponse, error) {
	c, done := p.client(ctx, "", false)
	st, merr := c.CheckTransaction(url.PathEscape(id))
	done()
	if merr != nil {
		return nil, classify(merr)
	}
	if e := bodyError(st.StatusCode, st.StatusMessage); e != nil {
		return nil, e
	}
	return st, nil
}
