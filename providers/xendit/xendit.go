// Package xendit is payrouter's adapter for Xendit's Payment Requests API
// through a small typed REST client (no Xendit Go SDK is reachable from the
// module proxy).
//
// Calls: POST /payment_requests (create), GET /payment_requests/{id} and
// GET /payment_requests?reference_id=… (status), POST
// /payment_requests/{id}/captures (capture), POST /refunds (refund), and
// POST /v3/payment_requests/{id}/cancel with header api-version 2024-11-11
// (cancel): the v2 Payment Requests API has no cancel endpoint, so the
// adapter uses the one Xendit documents for payment requests
// (https://docs.xendit.co/apidocs/cancel-payment-request; see Cancel for
// what happens where it does not apply), GET /transactions (settlements,
// settlement.go). Authentication
// is HTTP Basic with the secret key as user and an empty password; every
// mutating call carries header idempotency-key.
//
// Methods: ovo (push-to-phone: needs Customer.Phone), dana, shopeepay
// (redirect), qris, bank_transfer (BCA, BNI, BRI, PERMATA, MANDIRI virtual
// accounts), all in IDR; card in IDR and USD, by Xendit token: the token is
// a card payment method id (pm-…) and is sent as payment_method_id, manual
// capture as capture_method MANUAL. reference_id is
// AuthorizeRequest.OrderID().
//
// Amounts: Xendit takes decimal major units (IDR 10000, USD 10.50);
// payrouter minor units are converted exactly with FormatDecimal and sent
// as JSON numbers, and amounts read back are parsed exactly, never through
// a float.
package xendit

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// DefaultBaseURL is Xendit's API.
const DefaultBaseURL = "https://api.xendit.co"

// Config configures one Xendit account.
type Config struct {
	// Name is the configured provider name, used in Notification.Provider.
	Name string
	// SecretKey authenticates API calls (HTTP Basic user). Never logged.
	SecretKey string
	// CallbackToken is the dashboard's webhook verification token, compared
	// with the x-callback-token header. Empty refuses every webhook.
	CallbackToken string
	// BaseURL overrides DefaultBaseURL (may carry a path prefix).
	BaseURL string
	// HTTPClient is used for calls; nil means providers.NewHTTPClient(Timeout).
	HTTPClient *http.Client
	// Timeout bounds every call (default 30s) when HTTPClient is nil or has
	// no timeout of its own.
	Timeout time.Duration
}

// Provider is a configured Xendit adapter. It is safe for concurrent use.
type Provider struct {
	cfg  Config
	base string
	hc   *http.Client
	auth string
}

var (
	_ providers.Provider            = (*Provider)(nil)
	_ providers.StatusChecker       = (*Provider)(nil)
	_ providers.RefundStatusChecker = (*Provider)(nil)
	_ providers.WebhookParser       = (*Provider)(nil)
)

// New validates cfg and returns a Provider.
func New(cfg Config) (*Provider, error) {
	if cfg.SecretKey == "" {
		return nil, errors.New("xendit: secret_key is required")
	}
	if cfg.Name == "" {
		cfg.Name = "xendit"
	}
	base := strings.TrimSuffix(cfg.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("xendit: base_url %q must be an absolute http(s) URL", cfg.BaseURL)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = providers.NewHTTPClient(timeout)
	} else if hc.Timeout == 0 || cfg.Timeout > 0 {
		c := *hc
		c.Timeout = timeout
		hc = &c
	}
	return &Provider{cfg: cfg, base: base, hc: hc,
		auth: "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.SecretKey+":"))}, nil
}

// Capabilities: e-wallets, QRIS and VAs in IDR; cards in IDR and USD with
// manual and partial capture; partial refunds.
func (p *Provider) Capabilities() providers.Capabilities {
	idr := []payrouter.Currency{"IDR"}
	return providers.Capabilities{
		Methods: map[payrouter.Method][]payrouter.Currency{
			payrouter.MethodCard:         {"IDR", "USD"},
			payrouter.MethodOVO:          idr,
			payrouter.MethodDANA:         idr,
			payrouter.MethodShopeePay:    idr,
			payrouter.MethodQRIS:         idr,
			payrouter.MethodBankTransfer: idr,
		},
		ManualCapture:   []payrouter.Method{payrouter.MethodCard},
		Refund:          true,
		PartialRefund:   true,
		PartialCapture:  true,
		IdempotentRetry: true,
		Banks:           []string{"bca", "bni", "bri", "permata", "mandiri"},
	}
}

// Wire types (only the fields payrouter uses).

type channelProperties struct {
	SuccessReturnURL     string     `json:"success_return_url,omitempty"`
	FailureReturnURL     string     `json:"failure_return_url,omitempty"`
	MobileNumber         string     `json:"mobile_number,omitempty"`
	CustomerName         string     `json:"customer_name,omitempty"`
	VirtualAccountNumber string     `json:"virtual_account_number,omitempty"`
	QRString             string     `json:"qr_string,omitempty"`
	ExpiresAt            *time.Time `json:"expires_at,omitempty"`
}

type channel struct {
	ChannelCode       string             `json:"channel_code,omitempty"`
	ChannelProperties *channelProperties `json:"channel_properties,omitempty"`
}

type paymentMethod struct {
	ID             string   `json:"id,omitempty"`
	Type           string   `json:"type,omitempty"`
	Reusability    string   `json:"reusability,omitempty"`
	Ewallet        *channel `json:"ewallet,omitempty"`
	QRCode         *channel `json:"qr_code,omitempty"`
	VirtualAccount *channel `json:"virtual_account,omitempty"`
}

type createRequest struct {
	ReferenceID     string            `json:"reference_id"`
	Amount          json.Number       `json:"amount"`
	Currency        string            `json:"currency"`
	Country         string            `json:"country,omitempty"`
	CaptureMethod   string            `json:"capture_method,omitempty"`
	PaymentMethod   *paymentMethod    `json:"payment_method,omitempty"`
	PaymentMethodID string            `json:"payment_method_id,omitempty"`
	Description     string            `json:"description,omitempty"`
	Metadata        map[string]string `json:"metadata,omitempty"`
}

type action struct {
	Action  string  `json:"action"`
	URLType string  `json:"url_type"`
	Method  *string `json:"method"`
	URL     *string `json:"url"`
	QRCode  *string `json:"qr_code"`
}

// paymentRequest is Xendit's payment request object (the fields payrouter
// reads).
type paymentRequest struct {
	ID            string         `json:"id"`
	ReferenceID   string         `json:"reference_id"`
	Amount        json.Number    `json:"amount"`
	Currency      string         `json:"currency"`
	Status        string         `json:"status"`
	FailureCode   *string        `json:"failure_code"`
	CaptureMethod *string        `json:"capture_method"`
	PaymentMethod *paymentMethod `json:"payment_method"`
	Actions       []action       `json:"actions"`
}

type apiError struct {
	ErrorCode string `json:"error_code"`
	Message   string `json:"message"`
}

// do sends one call and decodes a 2xx answer into out. Every error is a
// *providers.Error.
func (p *Provider) do(ctx context.Context, method, path, idemKey string, header http.Header, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return &providers.Error{Class: providers.Invalid, Code: "invalid_request", Message: "cannot encode request", Err: err}
		}
		body = bytes.NewReader(b)
	}
	if err := ctx.Err(); err != nil {
		return &providers.Error{Class: providers.Unavailable, Code: "canceled", Message: "not sent: context done", Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, body)
	if err != nil {
		return &providers.Error{Class: providers.Invalid, Code: "invalid_request", Message: "cannot build request", Err: err}
	}
	req.Header.Set("Authorization", p.auth)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idemKey != "" {
		req.Header.Set("idempotency-key", idemKey)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		pe := providers.ClassifyTransport(err)
		return &providers.Error{Class: pe.Class, Code: pe.Code, Message: "xendit unreachable", Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return &providers.Error{Class: providers.Ambiguous, Code: "network_error", HTTPStatus: resp.StatusCode, Message: "xendit answer lost", Err: err}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(raw, out); err != nil {
			return &providers.Error{Class: providers.Ambiguous, Code: "bad_response", HTTPStatus: resp.StatusCode, Message: "xendit answered an unreadable body"}
		}
		return nil
	}
	var ae apiError
	_ = json.Unmarshal(raw, &ae)
	return classifyAPI(resp.StatusCode, ae)
}

// declineCodes are Xendit error/failure codes meaning the payer's instrument
// refused: Declined, with payrouter's code.
var declineCodes = map[string]string{
	"CARD_DECLINED":                      "card_declined",
	"DECLINED_BY_ISSUER":                 "card_declined",
	"DECLINED_BY_PROCESSOR":              "card_declined",
	"STOLEN_CARD":                        "card_declined",
	"INACTIVE_OR_UNAUTHORIZED_CARD":      "card_declined",
	"FRAUD_RISK_BLOCKED":                 "fraud_denied",
	"EXPIRED_CARD":                       "expired_card",
	"INVALID_CVV":                        "incorrect_cvc",
	"INSUFFICIENT_BALANCE":               "insufficient_funds",
	"INSUFFICIENT_FUNDS":                 "insufficient_funds",
	"ACCOUNT_ACCESS_BLOCKED":             "account_blocked",
	"USER_DECLINED_PAYMENT":              "payment_declined",
	"USER_DID_NOT_AUTHORIZE_THE_PAYMENT": "payment_declined",
	"AUTHENTICATION_FAILED":              "authentication_failed",
}

// classifyAPI maps a Xendit error answer.
//
//	400 API_VALIDATION_ERROR and other 4xx  → Invalid
//	401, 403 REQUEST_FORBIDDEN_ERROR        → Unavailable "credentials_refused"
//	other 403 (channel not active)          → Invalid (configuration)
//	404 DATA_NOT_FOUND                      → Invalid "not_found"
//	409 DUPLICATE_ERROR / idempotency       → Invalid
//	429, 503                                → Unavailable
//	500 and other 5xx                       → Ambiguous
//	a decline code with any 4xx             → Declined
func classifyAPI(status int, ae apiError) *providers.Error {
	e := &providers.Error{Class: providers.ClassifyHTTP(status), ProviderCode: ae.ErrorCode, HTTPStatus: status, Message: ae.Message}
	if e.Class == "" {
		e.Class = providers.Ambiguous
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	if code, ok := declineCodes[ae.ErrorCode]; ok && status < 500 {
		e.Class, e.Code = providers.Declined, code
		return e
	}
	switch {
	case status == 401, status == 403 && ae.ErrorCode == "REQUEST_FORBIDDEN_ERROR":
		// A wrong key, or one without the permission: nothing was
		// processed; fail over and tell ops.
		e.Class, e.Code = providers.Unavailable, providers.CodeCredentialsRefused
	case status == 403:
		e.Code = "forbidden"
	case status == 404:
		e.Code = "not_found"
	case status == 409:
		e.Code = "conflict"
	case status == 429:
		e.Code = "rate_limited"
	case e.Class == providers.Invalid:
		e.Code = "invalid_request"
	case e.Class == providers.Unavailable:
		e.Code = "provider_unavailable"
	default:
		e.Code = "provider_error"
	}
	return e
}

// wireAmount renders minor units as Xendit's decimal major units.
func wireAmount(amount int64, cur payrouter.Currency) json.Number {
	return json.Number(payrouter.FormatDecimal(amount, cur.Exponent()))
}

// parseAmount reads Xendit's decimal amount exactly into minor units of cur
// ("10000", "10000.0", "10.5" in USD → 1050).
func parseAmount(n json.Number, cur payrouter.Currency) (int64, error) {
	s := string(n)
	if intPart, frac, ok := strings.Cut(s, "."); ok {
		frac = strings.TrimRight(frac, "0")
		s = intPart
		if frac != "" {
			s += "." + frac
		}
	}
	return payrouter.ParseDecimal(s, cur.Exponent())
}

var ewalletChannels = map[payrouter.Method]string{
	payrouter.MethodOVO: "OVO", payrouter.MethodDANA: "DANA", payrouter.MethodShopeePay: "SHOPEEPAY",
}

// Authorize creates a payment request. E-wallet, QRIS and VA requests return
// requires_action with a NextAction (OVO push-to-phone returns processing:
// the customer confirms in the OVO app). A card returns succeeded,
// authorized (capture=manual) or requires_action (3-D Secure); a refused
// card is an *Error of class Declined. Currencies and methods Xendit cannot
// take, an unknown bank and OVO without a phone are Invalid before sending.
// Idempotent under req.IdempotencyKey (header idempotency-key).
func (p *Provider) Authorize(ctx context.Context, req *providers.AuthorizeRequest) (*providers.Result, error) {
	cr, err := p.createRequest(req)
	if err != nil {
		return nil, err
	}
	var pr paymentRequest
	if err := p.do(ctx, http.MethodPost, "/payment_requests", req.IdempotencyKey, nil, cr, &pr); err != nil {
		return nil, err
	}
	res := p.result(&pr, req.Currency)
	switch {
	case res.Status == payrouter.StatusFailed:
		f := res.Failure
		return nil, &providers.Error{Class: providers.Declined, Code: f.Code, ProviderCode: f.ProviderCode, HTTPStatus: 200, Message: f.Message}
	case res.Status == "":
		return nil, &providers.Error{Class: providers.Ambiguous, Code: "unmapped_status", ProviderCode: pr.Status,
			Message: "xendit answered status " + pr.Status}
	case res.Status == payrouter.StatusRequiresAction && res.NextAction == nil:
		// Nothing to show: the customer acts elsewhere (OVO push).
		res.Status = payrouter.StatusProcessing
	}
	return res, nil
}

func (p *Provider) createRequest(req *providers.AuthorizeRequest) (*createRequest, error) {
	if !p.Capabilities().Supports(req.Method, req.Currency, orAutomatic(req.Capture)) {
		return nil, providers.Unsupported("xendit does not take %s in %s with %s capture", req.Method, req.Currency, orAutomatic(req.Capture))
	}
	if req.Amount <= 0 || req.Amount > payrouter.MaxAmount {
		return nil, providers.Errorf(providers.Invalid, "invalid_amount", "amount must be within 1..%d", payrouter.MaxAmount)
	}
	cr := &createRequest{
		ReferenceID:   req.OrderID(),
		Amount:        wireAmount(req.Amount, req.Currency),
		Currency:      string(req.Currency),
		Country:       "ID",
		CaptureMethod: "AUTOMATIC",
		Description:   req.Description,
		Metadata:      req.Metadata,
	}
	if cr.ReferenceID == "" {
		return nil, providers.Errorf(providers.Invalid, "invalid_request", "idempotency key (reference id) is required")
	}
	switch req.Method {
	case payrouter.MethodCard:
		if req.Token == "" {
			return nil, providers.Errorf(providers.Invalid, "token_required", "a Xendit card token (payment method id) is required")
		}
		cr.PaymentMethodID = req.Token
		if req.Capture == payrouter.CaptureManual {
			cr.CaptureMethod = "MANUAL"
		}
	case payrouter.MethodOVO, payrouter.MethodDANA, payrouter.MethodShopeePay:
		props := &channelProperties{SuccessReturnURL: req.ReturnURL, FailureReturnURL: req.ReturnURL}
		if req.Method == payrouter.MethodOVO {
			phone, err := e164(req.Customer.Phone)
			if err != nil {
				return nil, &providers.Error{Class: providers.Invalid, Code: "phone_required", Message: "OVO needs customer.phone: " + err.Error()}
			}
			props = &channelProperties{MobileNumber: phone}
		} else if req.ReturnURL == "" {
			return nil, &providers.Error{Class: providers.Invalid, Code: "return_url_required", Message: string(req.Method) + " through xendit needs return_url"}
		}
		cr.PaymentMethod = &paymentMethod{Type: "EWALLET", Reusability: "ONE_TIME_USE",
			Ewallet: &channel{ChannelCode: ewalletChannels[req.Method], ChannelProperties: props}}
	case payrouter.MethodQRIS:
		cr.PaymentMethod = &paymentMethod{Type: "QR_CODE", Reusability: "ONE_TIME_USE", QRCode: &channel{ChannelCode: "QRIS"}}
	case payrouter.MethodBankTransfer:
		bank := strings.ToUpper(req.Bank)
		switch bank {
		case "BCA", "BNI", "BRI", "PERMATA", "MANDIRI":
		case "":
			return nil, &providers.Error{Class: providers.Invalid, Code: "bank_required", Message: "bank is required for bank_transfer (bca, bni, bri, permata, mandiri)"}
		default:
			return nil, &providers.Error{Class: providers.Invalid, Code: "unsupported", Message: fmt.Sprintf("xendit has no virtual account for bank %q", req.Bank)}
		}
		name := req.Customer.Name
		if name == "" {
			name = "Customer"
		}
		cr.PaymentMethod = &paymentMethod{Type: "VIRTUAL_ACCOUNT", Reusability: "ONE_TIME_USE",
			VirtualAccount: &channel{ChannelCode: bank, ChannelProperties: &channelProperties{CustomerName: name}}}
	}
	return cr, nil
}

func orAutomatic(c payrouter.CaptureMode) payrouter.CaptureMode {
	if c == "" {
		return payrouter.CaptureAutomatic
	}
	return c
}

// e164 normalizes an Indonesian mobile number to +62… (Xendit's format).
func e164(phone string) (string, error) {
	s := strings.NewReplacer(" ", "", "-", "", "(", "", ")", "").Replace(phone)
	switch {
	case s == "":
		return "", errors.New("missing")
	case strings.HasPrefix(s, "+"):
	case strings.HasPrefix(s, "62"):
		s = "+" + s
	case strings.HasPrefix(s, "0"):
		s = "+62" + s[1:]
	default:
		return "", errors.New("not a phone number")
	}
	if len(s) < 9 || len(s) > 16 || strings.Trim(s[1:], "0123456789") != "" {
		return "", errors.New("not a phone number")
	}
	return s, nil
}

// MapStatus maps a Xendit payment (request) status; "" is unmapped.
//
//	PENDING, REQUIRES_ACTION   → requires_action
//	AWAITING_CAPTURE, AUTHORIZED → authorized
//	SUCCEEDED, CAPTURED        → succeeded
//	FAILED                     → failed
//	VOIDED, CANCELED           → canceled
//	EXPIRED                    → expired
//	UNKNOWN and anything else  → ""
func MapStatus(s string) payrouter.Status {
	switch s {
	case "PENDING", "REQUIRES_ACTION":
		return payrouter.StatusRequiresAction
	case "AWAITING_CAPTURE", "AUTHORIZED":
		return payrouter.StatusAuthorized
	case "SUCCEEDED", "CAPTURED":
		return payrouter.StatusSucceeded
	case "FAILED":
		return payrouter.StatusFailed
	case "VOIDED", "CANCELED":
		return payrouter.StatusCanceled
	case "EXPIRED":
		return payrouter.StatusExpired
	}
	return ""
}

func failure(code *string, status string) *payrouter.Failure {
	f := &payrouter.Failure{Code: "payment_failed", Message: "xendit payment " + strings.ToLower(status)}
	if code != nil && *code != "" {
		f.ProviderCode = *code
		if c, ok := declineCodes[*code]; ok {
			f.Code = c
		}
	}
	return f
}

// result maps a payment request; cur is the fallback currency.
func (p *Provider) result(pr *paymentRequest, cur payrouter.Currency) *providers.Result {
	res := &providers.Result{ProviderPaymentID: pr.ID, Status: MapStatus(pr.Status), ProviderStatus: pr.Status}
	if c, err := payrouter.ParseCurrency(pr.Currency); err == nil {
		cur = c
	}
	switch res.Status {
	case payrouter.StatusSucceeded:
		if cur.Valid() {
			if n, err := parseAmount(pr.Amount, cur); err == nil {
				res.AmountCaptured = n
			}
		}
	case payrouter.StatusFailed:
		res.Failure = failure(pr.FailureCode, pr.Status)
	case payrouter.StatusRequiresAction:
		res.NextAction = nextAction(pr)
	}
	return res
}

// nextAction derives what the customer must do: a QR string, a VA number,
// or a redirect/deeplink from actions[] (WEB first, which also serves a
// desktop browser, then MOBILE, then DEEPLINK).
func nextAction(pr *paymentRequest) *payrouter.NextAction {
	if pm := pr.PaymentMethod; pm != nil {
		if q := pm.QRCode; q != nil && q.ChannelProperties != nil && q.ChannelProperties.QRString != "" {
			return &payrouter.NextAction{Type: "qr_code", QRString: q.ChannelProperties.QRString, ExpiresAt: utc(q.ChannelProperties.ExpiresAt)}
		}
		if va := pm.VirtualAccount; va != nil && va.ChannelProperties != nil && va.ChannelProperties.VirtualAccountNumber != "" {
			return &payrouter.NextAction{Type: "bank_transfer", VANumber: va.ChannelProperties.VirtualAccountNumber,
				Bank: strings.ToLower(va.ChannelCode), ExpiresAt: utc(va.ChannelProperties.ExpiresAt)}
		}
	}
	for _, kind := range []string{"WEB", "MOBILE", "DEEPLINK"} {
		for _, a := range pr.Actions {
			if a.URLType == kind && a.URL != nil && *a.URL != "" {
				t := "redirect"
				if kind == "DEEPLINK" {
					t = "deeplink"
				}
				return &payrouter.NextAction{Type: t, URL: *a.URL}
			}
		}
	}
	for _, a := range pr.Actions {
		if a.QRCode != nil && *a.QRCode != "" {
			return &payrouter.NextAction{Type: "qr_code", QRString: *a.QRCode}
		}
	}
	return nil
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// Capture captures Amount (0 = all authorised) of an AWAITING_CAPTURE card
// payment through POST /payment_requests/{id}/captures. Idempotent under
// req.IdempotencyKey.
func (p *Provider) Capture(ctx context.Context, req *providers.CaptureRequest) (*providers.Result, error) {
	if req.ProviderPaymentID == "" {
		return nil, providers.Errorf(providers.Invalid, "invalid_request", "provider payment id is required")
	}
	cur := req.Currency
	amount := req.Amount
	if amount == 0 || cur == "" {
		var pr paymentRequest
		if err := p.do(ctx, http.MethodGet, "/payment_requests/"+url.PathEscape(req.ProviderPaymentID), "", nil, nil, &pr); err != nil {
			return nil, err
		}
		c, err := payrouter.ParseCurrency(pr.Currency)
		if err != nil {
			return nil, &providers.Error{Class: providers.Ambiguous, Code: "bad_response", Message: "xendit currency " + pr.Currency}
		}
		cur = c
		if amount == 0 {
			if amount, err = parseAmount(pr.Amount, cur); err != nil {
				return nil, &providers.Error{Class: providers.Ambiguous, Code: "bad_response", Message: "xendit amount " + string(pr.Amount)}
			}
		}
	}
	if !cur.Valid() {
		return nil, providers.Unsupported("unknown currency %q", cur)
	}
	var capt struct {
		Status           string      `json:"status"`
		CapturedAmount   json.Number `json:"captured_amount"`
		PaymentRequestID string      `json:"payment_request_id"`
		FailureCode      *string     `json:"failure_code"`
	}
	body := map[string]any{"capture_amount": wireAmount(amount, cur)}
	if err := p.do(ctx, http.MethodPost, "/payment_requests/"+url.PathEscape(req.ProviderPaymentID)+"/captures", req.IdempotencyKey, nil, body, &capt); err != nil {
		return nil, err
	}
	res := &providers.Result{ProviderPaymentID: req.ProviderPaymentID, Status: MapStatus(capt.Status), ProviderStatus: capt.Status}
	switch res.Status {
	case payrouter.StatusSucceeded:
		res.AmountCaptured = amount
		if n, err := parseAmount(capt.CapturedAmount, cur); err == nil && n > 0 {
			res.AmountCaptured = n
		}
	case payrouter.StatusFailed:
		res.Failure = failure(capt.FailureCode, capt.Status)
	}
	return res, nil
}

// apiVersion is the header Xendit's v3 payment request endpoints require.
const apiVersion = "2024-11-11"

// Cancel cancels a payment request that is still awaiting the customer or
// awaiting capture.
//
// Xendit's SDK (xendit-go v7, payment_request) has no cancel and no void
// for payment requests; Xendit documents POST
// /v3/payment_requests/{id}/cancel with header api-version 2024-11-11
// ("prevents end users from completing payment",
// https://docs.xendit.co/apidocs/cancel-payment-request), which the
// adapter sends with an empty JSON body. Which channels and which v2
// payment requests it accepts is not documented beyond that; so when
// Xendit refuses the cancel (a 4xx other than authentication, rate
// limiting or not found) Cancel returns an Invalid *providers.Error with
// code "not_cancelable" and payrouter does the rest itself: the router
// treats an Invalid cancel as "nothing to cancel" and lets the payment
// expire (it expires at Xendit too: QRIS and VA carry expires_at,
// e-wallet redirects lapse), and a payment that is paid after payrouter
// gave up on it arrives as a webhook for a closed payment, which the
// router records as an anomaly for refund. A payment request already
// ended is also "not_cancelable" (409 at Xendit).
func (p *Provider) Cancel(ctx context.Context, req *providers.CancelRequest) (*providers.Result, error) {
	id := req.ProviderPaymentID
	if id == "" {
		found, err := p.byReference(ctx, req.OrderID)
		if err != nil {
			return nil, err
		}
		id = found.ID
	}
	var pr paymentRequest
	if err := p.do(ctx, http.MethodPost, "/v3/payment_requests/"+url.PathEscape(id)+"/cancel", req.IdempotencyKey,
		http.Header{"Api-Version": {apiVersion}}, struct{}{}, &pr); err != nil {
		var pe *providers.Error
		if errors.As(err, &pe) && pe.Class == providers.Invalid && notCancelable(pe.HTTPStatus) {
			pe.Code = "not_cancelable"
			pe.Message = "xendit cannot cancel payment request " + id + " (" + pe.Message + "); payrouter lets it expire"
		}
		return nil, err
	}
	if pr.ID == "" {
		pr.ID = id
	}
	return p.result(&pr, ""), nil
}

// notCancelable: Xendit refused the cancel itself, not our credentials,
// rate or the id.
func notCancelable(status int) bool {
	return status >= 400 && status < 500 && status != 401 && status != 403 && status != 404 && status != 429
}

var refundReasons = map[string]bool{"FRAUDULENT": true, "DUPLICATE": true, "REQUESTED_BY_CUSTOMER": true, "CANCELLATION": true, "OTHERS": true}

// Refund refunds Amount through POST /refunds with reference_id =
// req.RefundID (echoed in refund webhooks) and idempotency-key. Xendit's
// reason is an enum: a reason that is not one of its values is sent as
// OTHERS.
func (p *Provider) Refund(ctx context.Context, req *providers.RefundRequest) (*providers.RefundResult, error) {
	if req.ProviderPaymentID == "" || req.RefundID == "" {
		return nil, providers.Errorf(providers.Invalid, "invalid_request", "provider payment id and refund id are required")
	}
	if req.Amount <= 0 || !req.Currency.Valid() {
		return nil, providers.Errorf(providers.Invalid, "invalid_amount", "refund needs a positive amount and a currency")
	}
	reason := strings.ToUpper(req.Reason)
	if !refundReasons[reason] {
		reason = "OTHERS"
	}
	in := map[string]any{
		"payment_request_id": req.ProviderPaymentID,
		"reference_id":       req.RefundID,
		"amount":             wireAmount(req.Amount, req.Currency),
		"currency":           string(req.Currency),
		"reason":             reason,
	}
	var out struct {
		ID          string  `json:"id"`
		Status      string  `json:"status"`
		FailureCode *string `json:"failure_code"`
	}
	key := req.IdempotencyKey
	if key == "" {
		key = req.RefundID
	}
	if err := p.do(ctx, http.MethodPost, "/refunds", key, nil, in, &out); err != nil {
		return nil, err
	}
	return &providers.RefundResult{ProviderRefundID: out.ID, Status: refundStatus(out.Status)}, nil
}

func refundStatus(s string) payrouter.RefundStatus {
	switch s {
	case "SUCCEEDED":
		return payrouter.RefundSucceeded
	case "FAILED", "CANCELLED", "CANCELED":
		return payrouter.RefundFailed
	}
	return payrouter.RefundPending
}

// xenditRefund is Xendit's Refund object (the fields we read).
type xenditRefund struct {
	ID               string  `json:"id"`
	PaymentRequestID string  `json:"payment_request_id"`
	ReferenceID      *string `json:"reference_id"`
	Status           string  `json:"status"`
	FailureCode      *string `json:"failure_code"`
}

// RefundStatus reads a refund: GET /refunds/{id} when its id is known,
// else GET /refunds?payment_request_id=… for the one whose reference_id is
// req.RefundID (the answer to the create was lost). A refund Xendit does
// not have is Invalid "not_found".
func (p *Provider) RefundStatus(ctx context.Context, req *providers.RefundStatusRequest) (*providers.RefundResult, error) {
	if req.ProviderRefundID != "" {
		var rf xenditRefund
		if err := p.do(ctx, http.MethodGet, "/refunds/"+url.PathEscape(req.ProviderRefundID), "", nil, nil, &rf); err != nil {
			return nil, err
		}
		return &providers.RefundResult{ProviderRefundID: rf.ID, Status: refundStatus(rf.Status)}, nil
	}
	if req.ProviderPaymentID == "" || req.RefundID == "" {
		return nil, providers.Errorf(providers.Invalid, "invalid_request", "provider payment id and refund id are required")
	}
	q := url.Values{"payment_request_id": {req.ProviderPaymentID}, "limit": {"100"}}
	for {
		var list struct {
			Data    []xenditRefund `json:"data"`
			HasMore bool           `json:"has_more"`
		}
		if err := p.do(ctx, http.MethodGet, "/refunds?"+q.Encode(), "", nil, nil, &list); err != nil {
			return nil, err
		}
		for _, rf := range list.Data {
			if rf.ReferenceID != nil && *rf.ReferenceID == req.RefundID {
				return &providers.RefundResult{ProviderRefundID: rf.ID, Status: refundStatus(rf.Status)}, nil
			}
		}
		if !list.HasMore || len(list.Data) == 0 {
			break
		}
		q.Set("after_id", list.Data[len(list.Data)-1].ID)
	}
	return nil, &providers.Error{Class: providers.Invalid, Code: "not_found", HTTPStatus: 200, Message: "xendit has no refund with reference_id " + req.RefundID}
}

// Status reads a payment request by id, or by reference_id (the order id)
// when the id was never learnt. An unknown payment is Invalid "not_found".
func (p *Provider) Status(ctx context.Context, req *providers.StatusRequest) (*providers.Result, error) {
	if req.ProviderPaymentID != "" {
		var pr paymentRequest
		if err := p.do(ctx, http.MethodGet, "/payment_requests/"+url.PathEscape(req.ProviderPaymentID), "", nil, nil, &pr); err != nil {
			return nil, err
		}
		return p.result(&pr, req.Currency), nil
	}
	pr, err := p.byReference(ctx, req.OrderID)
	if err != nil {
		return nil, err
	}
	return p.result(pr, req.Currency), nil
}

// byReference finds the newest payment request with reference_id ref.
func (p *Provider) byReference(ctx context.Context, ref string) (*paymentRequest, error) {
	if ref == "" {
		return nil, providers.Errorf(providers.Invalid, "invalid_request", "provider payment id or order id is required")
	}
	var list struct {
		Data []paymentRequest `json:"data"`
	}
	if err := p.do(ctx, http.MethodGet, "/payment_requests?reference_id="+url.QueryEscape(ref), "", nil, nil, &list); err != nil {
		return nil, err
	}
	if len(list.Data) == 0 {
		return nil, &providers.Error{Class: providers.Invalid, Code: "not_found", HTTPStatus: 200, Message: "xendit has no payment request with reference_id " + ref}
	}
	return &list.Data[0], nil
}
