package snapbi

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// Wallet describes one SNAP BI wallet: the thin mapping each wallet
// package supplies.
type Wallet struct {
	Label         string           // "DANA", for messages
	Method        payrouter.Method // the one method it takes
	ProductionURL string           // used when the config has no BaseURL
	// AccessTokenPath is the B2B access-token endpoint; "" when the
	// wallet takes no B2B token (DANA Payment Gateway): then no
	// Authorization header is sent (see Config.AccessTokenPath).
	AccessTokenPath string
	PaymentPath     string // debit/payment-host-to-host
	StatusPath      string
	CancelPath      string // "" when the wallet has no cancel API
	RefundPath      string // "" when the wallet has no refund API
	// RefundQueryPath is the refund status inquiry; "" when the wallet has
	// none (a pending refund then waits for the wallet's notification).
	RefundQueryPath string
	Scheme          Scheme
	ChannelID       string // default CHANNEL-ID
	// URLParamsField names the redirect-URL array: "urlParams" (DANA) or
	// "urlParam" (GoPay via Midtrans).
	URLParamsField string
	// NeedsPhone: the customer's phone is required (OVO push to phone).
	NeedsPhone    bool
	PartialRefund bool
	// ClosedMeansExpired: latestTransactionStatus "05" in a finish notify
	// means the order lapsed unpaid (DANA documents "05 = Cancelled, the
	// order has been closed because it is expired").
	ClosedMeansExpired bool
	// AdditionalInfo adds wallet-specific additionalInfo to the payment
	// request; nil for none. mcc is the configured merchant category code.
	AdditionalInfo func(req *providers.AuthorizeRequest, mcc string) map[string]any
	// URLParamsRequired: the wallet's create order requires urlParams
	// (DANA), so a payment without a return URL is refused before sending.
	URLParamsRequired bool
	// ValidFor, when > 0, is the wallet's default order lifetime, sent as
	// validUpTo (DANA requires validUpTo, at most 30 minutes ahead).
	ValidFor time.Duration
	// OrderIDRequired: cancel and refund require originalPartnerReferenceNo
	// (DANA's models mark it required).
	OrderIDRequired bool
	// NeedsMCC: the configured MCC is required (DANA additionalInfo.mcc).
	NeedsMCC bool
	// NotifyCloseReasonField and StatusCloseReasonField name the
	// additionalInfo key carrying why a "05" order was closed, in the
	// finish notify and in the status answer; default CloseReasonField.
	// DANA: "extendInfo.closedReason" (notify) and "closeReason" (query).
	NotifyCloseReasonField string
	StatusCloseReasonField string
}

// DirectDebitConfig is what a wallet package passes through from its own
// Config.
type DirectDebitConfig struct {
	Name       string // configured provider name (Notification.Provider)
	MerchantID string
	// NotifyPath is the path the wallet POSTs its finish notify to, which
	// it signs. ParseWebhook has no request path, so the configured one is
	// used; default "/webhooks/<Name>" (the router's route).
	NotifyPath string
	// ValidFor, when > 0, sends validUpTo = now + ValidFor (default the
	// Wallet's ValidFor; 0 for a wallet that does not require it: then its
	// own default expiry applies, GoPay 15 min). validUpTo is fixed per
	// attempt the first time it is sent and reused on every resend with
	// the same idempotency key, so a retry carries the same body and is
	// the same request at the wallet (within this process; after a restart
	// the resolver asks by status).
	ValidFor time.Duration
	// MCC is the merchant category code (ISO 18245) sent as
	// additionalInfo.mcc where the wallet requires it (DANA).
	MCC    string
	Client Config // BaseURL "" = Wallet.ProductionURL; paths and scheme come from the Wallet
}

// DirectDebit is a providers.Provider, StatusChecker, RefundStatusChecker and
// WebhookParser for one SNAP BI wallet's direct debit (service code 54) API.
type DirectDebit struct {
	w   Wallet
	cfg DirectDebitConfig
	c   *Client

	mu        sync.Mutex
	validUpTo map[string]time.Time // by idempotency key, while in the future
	pruned    time.Time            // last sweep of validUpTo
}

var (
	_ providers.Provider            = (*DirectDebit)(nil)
	_ providers.StatusChecker       = (*DirectDebit)(nil)
	_ providers.RefundStatusChecker = (*DirectDebit)(nil)
	_ providers.WebhookParser       = (*DirectDebit)(nil)
)

// NewDirectDebit validates the configuration; errors are plain and name
// the missing setting.
func NewDirectDebit(w Wallet, cfg DirectDebitConfig) (*DirectDebit, error) {
	if cfg.Name == "" {
		return nil, errors.New("snapbi: Name is required")
	}
	if cfg.MerchantID == "" {
		return nil, errors.New("snapbi: " + cfg.Name + ": MerchantID is required")
	}
	if cfg.NotifyPath == "" {
		cfg.NotifyPath = "/webhooks/" + cfg.Name
	}
	if cfg.ValidFor <= 0 {
		cfg.ValidFor = w.ValidFor
	}
	if w.NeedsMCC && cfg.MCC == "" {
		return nil, errors.New("snapbi: " + cfg.Name + ": MCC (merchant category code) is required by " + w.Label)
	}
	if w.NotifyCloseReasonField == "" {
		w.NotifyCloseReasonField = CloseReasonField
	}
	if w.StatusCloseReasonField == "" {
		w.StatusCloseReasonField = CloseReasonField
	}
	cc := cfg.Client
	if cc.BaseURL == "" {
		cc.BaseURL = w.ProductionURL
	}
	cc.AccessTokenPath = w.AccessTokenPath
	cc.Scheme = w.Scheme
	if cc.ChannelID == "" {
		cc.ChannelID = w.ChannelID
	}
	c, err := NewClient(cc)
	if err != nil {
		return nil, errors.New(strings.Replace(err.Error(), "snapbi:", "snapbi: "+cfg.Name+":", 1))
	}
	if w.URLParamsField == "" {
		w.URLParamsField = "urlParams"
	}
	return &DirectDebit{w: w, cfg: cfg, c: c, validUpTo: map[string]time.Time{}}, nil
}

// orderValidUpTo is the validUpTo of the attempt under key: fixed the
// first time, so every resend is byte for byte the same request. Entries
// are dropped once their time has passed (a resend then gets a new one,
// which the wallet would refuse as expired anyway).
func (d *DirectDebit) orderValidUpTo(key string) time.Time {
	now := d.c.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if now.Sub(d.pruned) > time.Minute { // sweep at most once a minute: O(1) per call
		for k, t := range d.validUpTo {
			if !t.After(now) {
				delete(d.validUpTo, k)
			}
		}
		d.pruned = now
	}
	t, ok := d.validUpTo[key]
	if !ok || !t.After(now) {
		t = now.Add(d.cfg.ValidFor).Truncate(time.Second)
		d.validUpTo[key] = t
	}
	return t
}

// Client exposes the underlying SNAP client (tests, notification checks).
func (d *DirectDebit) Client() *Client { return d.c }

// Capabilities: the wallet's one method, IDR only, automatic capture.
func (d *DirectDebit) Capabilities() providers.Capabilities {
	return providers.Capabilities{
		Methods:         map[payrouter.Method][]payrouter.Currency{d.w.Method: {"IDR"}},
		Refund:          d.w.RefundPath != "",
		PartialRefund:   d.w.RefundPath != "" && d.w.PartialRefund,
		IdempotentRetry: true,
	}
}

// Money is SNAP's amount object: value with two decimals ("10000.00").
type Money struct {
	Value    string `json:"value"`
	Currency string `json:"currency"`
}

// ToMoney converts payrouter IDR (exponent 0) to SNAP's two-decimal value.
// It returns an Invalid *providers.Error for another currency.
func ToMoney(amount int64, cur payrouter.Currency) (Money, error) {
	if cur != "IDR" {
		return Money{}, providers.Unsupported("SNAP BI wallets take IDR only, not %s", cur)
	}
	if amount <= 0 || amount > payrouter.MaxAmount {
		return Money{}, providers.Errorf(providers.Invalid, "invalid_amount", "amount must be between 1 and %d", payrouter.MaxAmount)
	}
	v, err := payrouter.ScaleAmount(amount, 0, 2)
	if err != nil {
		return Money{}, providers.Errorf(providers.Invalid, "invalid_amount", "%v", err)
	}
	return Money{Value: payrouter.FormatDecimal(v, 2), Currency: "IDR"}, nil
}

// FromMoney is the exact inverse of ToMoney: "10000.00" IDR → 10000. A
// value with a non-zero sen part is refused (payrouter IDR has no minor
// unit).
func FromMoney(m Money) (int64, payrouter.Currency, error) {
	if m.Currency != "IDR" {
		return 0, "", errors.New("currency " + m.Currency + " is not IDR")
	}
	v, err := payrouter.ParseDecimal(m.Value, 2)
	if err != nil {
		return 0, "", err
	}
	n, err := payrouter.ScaleAmount(v, 2, 0)
	if err != nil {
		return 0, "", errors.New("amount " + m.Value + " is not a whole rupiah")
	}
	return n, "IDR", nil
}

type urlParam struct {
	URL        string `json:"url"`
	Type       string `json:"type"`
	IsDeeplink string `json:"isDeeplink"`
}

// PaymentResponse is the payment-host-to-host answer.
type PaymentResponse struct {
	Envelope
	ReferenceNo        string         `json:"referenceNo"`
	PartnerReferenceNo string         `json:"partnerReferenceNo"`
	WebRedirectURL     string         `json:"webRedirectUrl"`
	AppRedirectURL     string         `json:"appRedirectUrl"`
	AdditionalInfo     map[string]any `json:"additionalInfo,omitempty"`
}

// Authorize sends debit/payment-host-to-host with partnerReferenceNo =
// req.OrderID() and X-EXTERNAL-ID derived from req.IdempotencyKey, so a
// retry of the same attempt is the same request at the wallet. Amount is
// IDR whole rupiah, sent as "10000.00". The answer is requires_action with
// a redirect (webRedirectUrl) or deeplink (appRedirectUrl) next action, or
// processing when the wallet pushes the payment to the customer's phone
// with no URL. Errors: Invalid for another currency/method, manual
// capture, a missing phone where needed; otherwise as Client.Do.
func (d *DirectDebit) Authorize(ctx context.Context, req *providers.AuthorizeRequest) (*providers.Result, error) {
	if req.Method != d.w.Method {
		return nil, providers.Unsupported("%s takes method %s only, not %s", d.w.Label, d.w.Method, req.Method)
	}
	if req.Capture == payrouter.CaptureManual {
		return nil, providers.Unsupported("%s has no manual capture", d.w.Label)
	}
	if req.IdempotencyKey == "" {
		return nil, providers.Errorf(providers.Invalid, "invalid_request", "idempotency key is required")
	}
	amt, err := ToMoney(req.Amount, req.Currency)
	if err != nil {
		return nil, err
	}
	body := map[string]any{
		"partnerReferenceNo": req.OrderID(),
		"merchantId":         d.cfg.MerchantID,
		"amount":             amt,
	}
	switch {
	case req.ReturnURL != "":
		body[d.w.URLParamsField] = []urlParam{{URL: req.ReturnURL, Type: "PAY_RETURN", IsDeeplink: "N"}}
	case d.w.URLParamsRequired:
		return nil, providers.Errorf(providers.Invalid, "return_url_required", "%s needs return_url (urlParams is required)", d.w.Label)
	}
	var validUpTo *time.Time
	if d.cfg.ValidFor > 0 {
		t := d.orderValidUpTo(req.IdempotencyKey)
		validUpTo = &t
		body["validUpTo"] = Timestamp(t)
	}
	info := map[string]any{}
	if d.w.NeedsPhone {
		phone, err := normalizePhone(req.Customer.Phone)
		if err != nil {
			return nil, err
		}
		info["phoneNumber"] = phone
	}
	if d.w.AdditionalInfo != nil {
		for k, v := range d.w.AdditionalInfo(req, d.cfg.MCC) {
			info[k] = v
		}
	}
	if len(info) > 0 {
		body["additionalInfo"] = info
	}
	var resp PaymentResponse
	if err := d.c.Do(ctx, Request{Path: d.w.PaymentPath, ExternalID: ExternalID("payment", req.IdempotencyKey), Body: body}, &resp); err != nil {
		return nil, err
	}
	if resp.ReferenceNo == "" {
		return nil, &providers.Error{Class: providers.Ambiguous, Code: "unexpected_response", ProviderCode: string(resp.ResponseCode), Message: d.w.Label + " accepted the payment without a referenceNo"}
	}
	return PaymentResult(resp, validUpTo), nil
}

// PaymentResult maps a payment-host-to-host answer to a Result: a web
// redirect is preferred (it works on any device and, in sandbox, is the
// simulator's checkout page), then the app deeplink, else processing
// (push to phone).
func PaymentResult(resp PaymentResponse, expires *time.Time) *providers.Result {
	r := &providers.Result{ProviderPaymentID: resp.ReferenceNo, ProviderStatus: string(resp.ResponseCode)}
	switch {
	case resp.WebRedirectURL != "":
		r.Status = payrouter.StatusRequiresAction
		r.NextAction = &payrouter.NextAction{Type: "redirect", URL: resp.WebRedirectURL, ExpiresAt: expires}
	case resp.AppRedirectURL != "":
		r.Status = payrouter.StatusRequiresAction
		r.NextAction = &payrouter.NextAction{Type: "deeplink", URL: resp.AppRedirectURL, ExpiresAt: expires}
	default:
		r.Status = payrouter.StatusProcessing
	}
	return r
}

// normalizePhone accepts +62…, 62… or 08… with spaces or dashes and
// returns digits only (leading 62 kept as sent); it refuses anything else.
func normalizePhone(p string) (string, error) {
	var b strings.Builder
	for i, r := range strings.TrimSpace(p) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0, r == ' ', r == '-':
		default:
			return "", &providers.Error{Class: providers.Invalid, Code: "invalid_phone", Message: "customer.phone must be a phone number"}
		}
	}
	s := b.String()
	if len(s) < 8 || len(s) > 15 {
		return "", &providers.Error{Class: providers.Invalid, Code: "phone_required", Message: "customer.phone (8–15 digits) is required for push-to-phone payments"}
	}
	return s, nil
}

// Capture is not part of SNAP direct debit: payments capture on payment.
func (d *DirectDebit) Capture(ctx context.Context, req *providers.CaptureRequest) (*providers.Result, error) {
	return nil, providers.Unsupported("%s has no capture: payments capture when the customer pays", d.w.Label)
}

type cancelResponse struct {
	Envelope
	OriginalPartnerReferenceNo string `json:"originalPartnerReferenceNo"`
	OriginalReferenceNo        string `json:"originalReferenceNo"`
	CancelTime                 string `json:"cancelTime"`
}

// Cancel sends debit/cancel for a payment still awaiting the customer.
// Idempotent: X-EXTERNAL-ID derives from req.IdempotencyKey (or the
// payment ids). Invalid when the wallet has no cancel API; Ambiguous
// "in_progress" when the wallet answers 202 Request In Progress.
func (d *DirectDebit) Cancel(ctx context.Context, req *providers.CancelRequest) (*providers.Result, error) {
	if d.w.CancelPath == "" {
		return nil, providers.Unsupported("%s has no public cancel API; an unpaid payment lapses at its expiry", d.w.Label)
	}
	if req.OrderID == "" && req.ProviderPaymentID == "" {
		return nil, providers.Errorf(providers.Invalid, "invalid_request", "order id or provider payment id is required")
	}
	if d.w.OrderIDRequired && req.OrderID == "" {
		return nil, providers.Errorf(providers.Invalid, "invalid_request", "%s cancel needs the order id (originalPartnerReferenceNo)", d.w.Label)
	}
	key := req.IdempotencyKey
	if key == "" {
		key = req.OrderID + "|" + req.ProviderPaymentID
	}
	body := map[string]any{"merchantId": d.cfg.MerchantID, "reason": "canceled by merchant"}
	if req.OrderID != "" {
		body["originalPartnerReferenceNo"] = req.OrderID
	}
	if req.ProviderPaymentID != "" {
		body["originalReferenceNo"] = req.ProviderPaymentID
	}
	var resp cancelResponse
	if err := d.c.Do(ctx, Request{Path: d.w.CancelPath, ExternalID: ExternalID("cancel", key), Body: body}, &resp); err != nil {
		return nil, err
	}
	id := resp.OriginalReferenceNo
	if id == "" {
		id = req.ProviderPaymentID
	}
	if resp.ResponseCode.HTTPStatus() == http.StatusAccepted {
		// "Request In Progress": the outcome is not known yet; the
		// resolver asks with Status.
		return nil, &providers.Error{Class: providers.Ambiguous, Code: "in_progress", ProviderCode: string(resp.ResponseCode), Message: d.w.Label + " is still processing the cancel"}
	}
	return &providers.Result{ProviderPaymentID: id, Status: payrouter.StatusCanceled, ProviderStatus: string(resp.ResponseCode),
		Failure: &payrouter.Failure{Code: "canceled", ProviderCode: string(resp.ResponseCode)}}, nil
}

type refundResponse struct {
	Envelope
	OriginalPartnerReferenceNo string `json:"originalPartnerReferenceNo"`
	OriginalReferenceNo        string `json:"originalReferenceNo"`
	RefundNo                   string `json:"refundNo"`
	PartnerRefundNo            string `json:"partnerRefundNo"`
	RefundAmount               Money  `json:"refundAmount"`
	RefundTime                 string `json:"refundTime"`
}

// Refund sends debit/refund with partnerRefundNo = req.RefundID (the
// wallet's own duplicate guard) and X-EXTERNAL-ID derived from
// req.IdempotencyKey. Amount is IDR whole rupiah. A 200 answer is a
// succeeded refund, a 202 ("Request In Progress") a pending one.
func (d *DirectDebit) Refund(ctx context.Context, req *providers.RefundRequest) (*providers.RefundResult, error) {
	if d.w.RefundPath == "" {
		return nil, providers.Unsupported("%s has no refund API", d.w.Label)
	}
	if req.RefundID == "" {
		return nil, providers.Errorf(providers.Invalid, "invalid_request", "refund id is required")
	}
	if d.w.OrderIDRequired && req.OrderID == "" {
		return nil, providers.Errorf(providers.Invalid, "invalid_request", "%s refund needs the order id (originalPartnerReferenceNo)", d.w.Label)
	}
	amt, err := ToMoney(req.Amount, req.Currency)
	if err != nil {
		return nil, err
	}
	key := req.IdempotencyKey
	if key == "" {
		key = req.RefundID
	}
	body := map[string]any{
		"merchantId":      d.cfg.MerchantID,
		"partnerRefundNo": req.RefundID,
		"refundAmount":    amt,
	}
	if req.OrderID != "" {
		body["originalPartnerReferenceNo"] = req.OrderID
	}
	if req.ProviderPaymentID != "" {
		body["originalReferenceNo"] = req.ProviderPaymentID
	}
	if req.Reason != "" {
		body["reason"] = req.Reason
	}
	var resp refundResponse
	if err := d.c.Do(ctx, Request{Path: d.w.RefundPath, ExternalID: ExternalID("refund", key), Body: body}, &resp); err != nil {
		return nil, err
	}
	st := payrouter.RefundSucceeded
	if resp.ResponseCode.HTTPStatus() == http.StatusAccepted {
		st = payrouter.RefundPending // "Request In Progress"
	}
	return &providers.RefundResult{ProviderRefundID: resp.RefundNo, Status: st}, nil
}

// RefundQueryResponse is the refund status inquiry's answer.
type RefundQueryResponse struct {
	Envelope
	OriginalPartnerReferenceNo string `json:"originalPartnerReferenceNo"`
	OriginalReferenceNo        string `json:"originalReferenceNo"`
	RefundNo                   string `json:"refundNo"`
	PartnerRefundNo            string `json:"partnerRefundNo"`
	RefundAmount               *Money `json:"refundAmount,omitempty"`
	LatestTransactionStatus    string `json:"latestTransactionStatus"`
	TransactionStatusDesc      string `json:"transactionStatusDesc"`
	RefundTime                 string `json:"refundTime,omitempty"`
}

// RefundStatus asks the wallet's refund status inquiry (Wallet.RefundQueryPath)
// about the refund sent with partnerRefundNo = req.RefundID. No wallet
// publishes this inquiry in its SDK, so it follows SNAP BI's debit/status
// shape for the refund service (58): the request names the payment
// (originalPartnerReferenceNo, originalReferenceNo), the refund
// (partnerRefundNo, refundNo when known), merchantId and serviceCode "58";
// the answer's latestTransactionStatus is 00 succeeded, 01–03 pending,
// 06 failed, 07 not found. Read-only, so X-EXTERNAL-ID is random. A
// refund the wallet does not know (07, or 404 Transaction Not Found) is
// Invalid "not_found"; a status we cannot map is pending (recorded,
// never guessed). Invalid "unsupported" without a RefundQueryPath.
func (d *DirectDebit) RefundStatus(ctx context.Context, req *providers.RefundStatusRequest) (*providers.RefundResult, error) {
	if d.w.RefundQueryPath == "" {
		return nil, providers.Unsupported("%s has no refund status inquiry", d.w.Label)
	}
	if req.RefundID == "" || (req.OrderID == "" && req.ProviderPaymentID == "") {
		return nil, providers.Errorf(providers.Invalid, "invalid_request", "refund id and order id or provider payment id are required")
	}
	body := map[string]any{"merchantId": d.cfg.MerchantID, "serviceCode": "58", "partnerRefundNo": req.RefundID}
	if req.OrderID != "" {
		body["originalPartnerReferenceNo"] = req.OrderID
	}
	if req.ProviderPaymentID != "" {
		body["originalReferenceNo"] = req.ProviderPaymentID
	}
	if req.ProviderRefundID != "" {
		body["refundNo"] = req.ProviderRefundID
	}
	var resp RefundQueryResponse
	if err := d.c.Do(ctx, Request{Path: d.w.RefundQueryPath, ExternalID: RandomExternalID(), Body: body}, &resp); err != nil {
		return nil, err
	}
	out := &providers.RefundResult{ProviderRefundID: resp.RefundNo, Status: payrouter.RefundPending}
	switch resp.LatestTransactionStatus {
	case "00":
		out.Status = payrouter.RefundSucceeded
	case "06":
		out.Status = payrouter.RefundFailed
	case "07":
		return nil, &providers.Error{Class: providers.Invalid, Code: "not_found", ProviderCode: "07", Message: d.w.Label + " does not know this refund"}
	}
	return out, nil
}

// CloseReasonField is the additionalInfo key carrying why a "05" order was
// closed ("EXPIRED" or "CANCELLED"). It is not in any wallet's public
// documentation; the simulator sets it, and a wallet that omits it gets
// the wallet default (Wallet.ClosedMeansExpired).

// CloseReasonField is the default additionalInfo key carrying why a "05"
// order was closed ("EXPIRED" or "CANCELLED"). DANA's query-payment model
// has additionalInfo.closeReason; its finish-notify model names the field
// "extendInfo.closedReason" (Wallet.NotifyCloseReasonField). For OVO and
// GoPay it is an assumption (SNAP defines no close reason); a wallet that
// omits it gets the wallet default (Wallet.ClosedMeansExpired). The values
// EXPIRED and CANCELLED are an assumption for every wallet.
const CloseReasonField = "closeReason"

// StatusResponse is the debit/status answer.
type StatusResponse struct {
	Envelope
	OriginalPartnerReferenceNo string                     `json:"originalPartnerReferenceNo"`
	OriginalReferenceNo        string                     `json:"originalReferenceNo"`
	ServiceCode                string                     `json:"serviceCode"`
	LatestTransactionStatus    string                     `json:"latestTransactionStatus"`
	TransactionStatusDesc      string                     `json:"transactionStatusDesc"`
	Amount                     *Money                     `json:"amount,omitempty"`
	AdditionalInfo             map[string]json.RawMessage `json:"additionalInfo,omitempty"`
}

// Status sends debit/status (serviceCode "54") by provider id and/or order
// id. Read-only, so X-EXTERNAL-ID is random. latestTransactionStatus "07"
// (not found) is an Invalid error with code not_found.
func (d *DirectDebit) Status(ctx context.Context, req *providers.StatusRequest) (*providers.Result, error) {
	if req.OrderID == "" && req.ProviderPaymentID == "" {
		return nil, providers.Errorf(providers.Invalid, "invalid_request", "order id or provider payment id is required")
	}
	body := map[string]any{"serviceCode": "54", "merchantId": d.cfg.MerchantID}
	if req.OrderID != "" {
		body["originalPartnerReferenceNo"] = req.OrderID
	}
	if req.ProviderPaymentID != "" {
		body["originalReferenceNo"] = req.ProviderPaymentID
	}
	var resp StatusResponse
	if err := d.c.Do(ctx, Request{Path: d.w.StatusPath, ExternalID: RandomExternalID(), Body: body}, &resp); err != nil {
		return nil, err
	}
	return d.StatusResult(resp)
}

// StatusResult maps a debit/status answer.
func (d *DirectDebit) StatusResult(resp StatusResponse) (*providers.Result, error) {
	if resp.LatestTransactionStatus == "07" {
		return nil, &providers.Error{Class: providers.Invalid, Code: "not_found", ProviderCode: "07", Message: d.w.Label + " does not know this payment"}
	}
	st, f := MapStatus(resp.LatestTransactionStatus, closeReason(resp.AdditionalInfo, d.w.StatusCloseReasonField), false)
	r := &providers.Result{ProviderPaymentID: resp.OriginalReferenceNo, Status: st, ProviderStatus: resp.LatestTransactionStatus, Failure: f}
	if f != nil && resp.TransactionStatusDesc != "" {
		f.Message = safeMessage(resp.TransactionStatusDesc)
	}
	if st == payrouter.StatusSucceeded && resp.Amount != nil {
		if n, _, err := FromMoney(*resp.Amount); err == nil {
			r.AmountCaptured = n
		}
	}
	return r, nil
}

func closeReason(info map[string]json.RawMessage, field string) string {
	var s string
	if raw, ok := info[field]; ok {
		_ = json.Unmarshal(raw, &s) // a non-string reason is no reason
	}
	return strings.ToUpper(s)
}

// MapStatus maps SNAP latestTransactionStatus to payrouter: 00 succeeded;
// 01 initiated, 02 paying → requires_action; 03 pending → processing; 04
// refunded; 05 canceled, or expired when closeReason is EXPIRED (or, with
// closedMeansExpired and no reason, always); 06 failed. Anything else
// (including 07, handled by callers) is "" — recorded, never guessed.
func MapStatus(code, reason string, closedMeansExpired bool) (payrouter.Status, *payrouter.Failure) {
	switch code {
	case "00":
		return payrouter.StatusSucceeded, nil
	case "01", "02":
		return payrouter.StatusRequiresAction, nil
	case "03":
		return payrouter.StatusProcessing, nil
	case "04":
		return payrouter.StatusRefunded, nil
	case "05":
		if reason == "EXPIRED" || (reason == "" && closedMeansExpired) {
			return payrouter.StatusExpired, &payrouter.Failure{Code: "expired", ProviderCode: code}
		}
		return payrouter.StatusCanceled, &payrouter.Failure{Code: "canceled", ProviderCode: code}
	case "06":
		return payrouter.StatusFailed, &payrouter.Failure{Code: "payment_failed", ProviderCode: code}
	}
	return "", nil
}

// FinishNotify is the wallet's finish-notify body (SNAP service 56).
type FinishNotify struct {
	OriginalPartnerReferenceNo string                     `json:"originalPartnerReferenceNo"`
	OriginalReferenceNo        string                     `json:"originalReferenceNo"`
	OriginalExternalID         string                     `json:"originalExternalId,omitempty"`
	MerchantID                 string                     `json:"merchantId"`
	Amount                     Money                      `json:"amount"`
	LatestTransactionStatus    string                     `json:"latestTransactionStatus"`
	TransactionStatusDesc      string                     `json:"transactionStatusDesc,omitempty"`
	CreatedTime                string                     `json:"createdTime"`
	FinishedTime               string                     `json:"finishedTime"`
	AdditionalInfo             map[string]json.RawMessage `json:"additionalInfo,omitempty"`
}

// ParseWebhook verifies a finish notify (X-SIGNATURE by the wallet's key
// over POST:NotifyPath:hex(sha256(body)):X-TIMESTAMP, timestamp within
// tolerance of now) and normalizes it. Forged, stale or tampered
// notifications are providers.SignatureError; a verified body we cannot
// use (missing ids, non-IDR, fractional rupiah) is Invalid with code
// invalid_payload. The signature covers the whole body (and the
// timestamp), so every field is trusted. EventID is a hash of both
// reference numbers, status, amount and currency and finishedTime (signed
// fields all), so a repeated notify deduplicates and a notify for another
// amount (an anomaly) never shadows the genuine one.
func (d *DirectDebit) ParseWebhook(h http.Header, body []byte, now time.Time) (*providers.Notification, error) {
	if err := d.c.VerifyNotification(http.MethodPost, d.cfg.NotifyPath, h, body, now); err != nil {
		return nil, err
	}
	var n FinishNotify
	if err := json.Unmarshal(body, &n); err != nil {
		return nil, &providers.Error{Class: providers.Invalid, Code: "invalid_payload", Message: "finish notify is not valid JSON", Err: err}
	}
	if n.OriginalReferenceNo == "" && n.OriginalPartnerReferenceNo == "" {
		return nil, providers.Errorf(providers.Invalid, "invalid_payload", "finish notify has neither originalReferenceNo nor originalPartnerReferenceNo")
	}
	if n.MerchantID != "" && n.MerchantID != d.cfg.MerchantID {
		return nil, providers.Errorf(providers.Invalid, "invalid_payload", "finish notify is for another merchant")
	}
	amount, cur, err := FromMoney(n.Amount)
	if err != nil {
		return nil, &providers.Error{Class: providers.Invalid, Code: "invalid_payload", Message: "finish notify amount: " + err.Error()}
	}
	st, f := MapStatus(n.LatestTransactionStatus, closeReason(n.AdditionalInfo, d.w.NotifyCloseReasonField), d.w.ClosedMeansExpired)
	if n.LatestTransactionStatus == "07" {
		st, f = "", nil // "not found" in a notify has no meaning: record it
	}
	if f != nil && n.TransactionStatusDesc != "" {
		f.Message = safeMessage(n.TransactionStatusDesc)
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{n.OriginalReferenceNo, n.OriginalPartnerReferenceNo, n.LatestTransactionStatus,
		n.Amount.Value, n.Amount.Currency, n.FinishedTime}, "\x00")))
	return &providers.Notification{
		Provider:          d.cfg.Name,
		EventID:           "snap_" + hex.EncodeToString(sum[:16]),
		Kind:              providers.KindPayment,
		ProviderPaymentID: n.OriginalReferenceNo,
		OrderID:           n.OriginalPartnerReferenceNo,
		Status:            st,
		ProviderStatus:    n.LatestTransactionStatus,
		Amount:            amount,
		Currency:          cur,
		Failure:           f,
	}, nil
}

// AdapterConfig is the configuration every SNAP BI wallet adapter takes
// (providers/gopay, providers/ovo, providers/dana alias it as Config).
// PrivateKey is ours (its public half is registered with the wallet);
// ProviderPublicKey is the wallet's, for notifications.
type AdapterConfig struct {
	Name              string // configured provider name; default: the wallet's
	ClientID          string // X-PARTNER-ID / X-CLIENT-KEY
	ClientSecret      string // symmetric signatures only (GoPay)
	PrivateKey        *rsa.PrivateKey
	ProviderPublicKey *rsa.PublicKey
	MerchantID        string
	ChannelID         string        // CHANNEL-ID; default the wallet's
	BaseURL           string        // "" = the wallet's ProductionURL
	HTTPClient        *http.Client  // nil = a client with Timeout
	Timeout           time.Duration // default 30s
	NotifyPath        string        // path the wallet posts to; default "/webhooks/<Name>"
	ValidFor          time.Duration // > 0 sends validUpTo (see DirectDebitConfig); default the wallet's
	MCC               string        // merchant category code (DANA requires it)
	Now               func() time.Time
}

// NewAdapter builds a wallet adapter from its mapping and configuration;
// errors name the missing setting.
func NewAdapter(w Wallet, defaultName string, cfg AdapterConfig) (*DirectDebit, error) {
	if cfg.Name == "" {
		cfg.Name = defaultName
	}
	return NewDirectDebit(w, DirectDebitConfig{
		Name: cfg.Name, MerchantID: cfg.MerchantID, NotifyPath: cfg.NotifyPath, ValidFor: cfg.ValidFor, MCC: cfg.MCC,
		Client: Config{
			BaseURL: cfg.BaseURL, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
			PrivateKey: cfg.PrivateKey, ProviderPublicKey: cfg.ProviderPublicKey, ChannelID: cfg.ChannelID,
			HTTPClient: cfg.HTTPClient, Timeout: cfg.Timeout, Now: cfg.Now,
		},
	})
}
