// Package xenditsim is a stateful simulator of Xendit's Payment Requests
// API for payrouter's sandbox: POST /payment_requests, GET
// /payment_requests/{id}, GET /payment_requests?reference_id=…, POST
// /payment_requests/{id}/captures, POST /v3/payment_requests/{id}/cancel,
// POST /refunds, test mode's POST /payment_requests/{id}/payments/simulate,
// and the settlement data Xendit's Balance and Transaction API serves
// (GET /transactions, GET /balance; POST /_settlement_faults changes it for
// tests), with HTTP Basic auth (secret key,
// empty password),
// idempotency-key replay, Xendit's JSON shapes and error bodies
// ({error_code, message}), and webhooks carrying x-callback-token.
//
// Test behaviour follows Xendit's test mode: amounts 10100, 10101 and 10102
// answer 403 CHANNEL_NOT_ACTIVATED, 503 CHANNEL_UNAVAILABLE and 500
// SERVER_ERROR. OVO (push-to-phone) needs channel_properties.mobile_number
// (else 400 API_VALIDATION_ERROR) and stays PENDING without actions; DANA and
// ShopeePay are REQUIRES_ACTION with WEB/MOBILE (and DEEPLINK) actions to
// PublicURL + "/checkout/" + id; QRIS carries a qr_string and VAs a
// virtual_account_number. Card tokens (payment_method_id):
// tok_sandbox_success (SUCCEEDED, or AWAITING_CAPTURE with MANUAL capture),
// tok_sandbox_decline (FAILED CARD_DECLINED), tok_sandbox_insufficient_funds
// (FAILED INSUFFICIENT_BALANCE), tok_sandbox_3ds (REQUIRES_ACTION).
//
// Ledger ids are payment request ids, references the reference_id, amounts
// minor units of the currency (whole rupiah for IDR).
//
// Settlement (transactions.go): every capture records a PAYMENT
// transaction (MONEY_IN, fee per the sandbox fee table, Fees) and every
// refund a REFUND transaction (MONEY_OUT, no fee). They settle after
// Options.SettleAfter (0: at once, T+0): settlement_status PENDING until
// estimated_settlement_time, then SETTLED. Assumptions (Xendit does not
// document them for payment requests): a PAYMENT's product_id is the
// payment request id and its reference_id the payment request's; a
// REFUND's product_id is the refund id and its reference_id the refund's.
package xenditsim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/sim"
)

// Options configures the simulator.
type Options struct {
	// SecretKey is the only API key accepted.
	SecretKey string
	// CallbackToken is sent as x-callback-token on webhooks.
	CallbackToken string
	// PublicURL is the absolute base of /sim/xendit, for action URLs.
	PublicURL string
	// Notifier receives webhooks; nil drops them.
	Notifier *sim.Notifier
	// BusinessID is echoed in objects (default a fixed sandbox id).
	BusinessID string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Fees is the sandbox fee table (default DefaultFees).
	Fees map[string]Fee
	// SettleAfter delays settlement of captured payments (default 0: T+0).
	SettleAfter time.Duration
}

// Backend is the simulator; it implements sim.Backend.
type Backend struct {
	opts Options
	mux  *http.ServeMux
	idem sim.Idempotency
	wg   sync.WaitGroup

	mu    sync.Mutex
	prs   map[string]*pr
	order []string
	vaSeq int
	txns  []*txn // settlement transactions, oldest first
}

type refund struct {
	ID, ReferenceID, Reason string
	Amount                  int64
	Created                 time.Time
}

type pr struct {
	ID, ReferenceID, PaymentID string
	Currency                   payrouter.Currency
	Amount                     int64 // minor units
	Captured                   int64
	Status                     string
	FailureCode                string
	CaptureMethod              string
	Type                       string // EWALLET | QR_CODE | VIRTUAL_ACCOUNT | CARD
	ChannelCode                string
	Props                      map[string]any // channel_properties as answered
	PaymentMethodID            string
	Metadata                   map[string]any
	Description                string
	Actions                    []map[string]any
	Refunds                    []refund
	Created, Updated           time.Time
}

func (p *pr) refunded() int64 {
	var n int64
	for _, r := range p.Refunds {
		n += r.Amount
	}
	return n
}

// New returns a simulator.
func New(o Options) *Backend {
	if o.BusinessID == "" {
		o.BusinessID = "5f27a14a9bf05c73dd040bc8"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.PublicURL = strings.TrimSuffix(o.PublicURL, "/")
	b := &Backend{opts: o, mux: http.NewServeMux(), prs: map[string]*pr{}}
	b.mux.HandleFunc("POST /payment_requests", b.post(b.create))
	b.mux.HandleFunc("GET /payment_requests/{id}", b.get)
	b.mux.HandleFunc("GET /payment_requests", b.list)
	b.mux.HandleFunc("POST /payment_requests/{id}/captures", b.post(b.capture))
	b.mux.HandleFunc("POST /v3/payment_requests/{id}/cancel", b.post(b.cancel))
	b.mux.HandleFunc("POST /refunds", b.post(b.refund))
	b.mux.HandleFunc("POST /payment_requests/{id}/payments/simulate", b.post(b.simulate))
	b.mux.HandleFunc("GET /transactions", b.listTransactions)
	b.mux.HandleFunc("GET /balance", b.balance)
	if o.Fees == nil {
		b.opts.Fees = DefaultFees()
	}
	b.mux.HandleFunc("GET /refunds/{id}", b.getRefund)
	b.mux.HandleFunc("GET /refunds", b.listRefunds)
	return b
}

// Flush waits for the asynchronous webhooks sent so far.
//
// The lock orders Flush against handlers still adding deliveries (a
// WaitGroup's Add must not race its Wait); deliveries never take it.
func (b *Backend) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.wg.Wait()
}

type answer struct {
	status int
	body   any
}

func apiErr(status int, code, msg string) answer {
	return answer{status, map[string]any{"error_code": code, "message": msg}}
}

// ServeHTTP serves the API (paths without the /sim/xendit prefix).
func (b *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_settlement_faults" && r.Method == http.MethodPost {
		b.handleSettlementFault(w, r) // control API: no Xendit auth
		return
	}
	user, pass, ok := r.BasicAuth()
	if !ok || b.opts.SecretKey == "" || user != b.opts.SecretKey || pass != "" {
		sim.WriteJSON(w, http.StatusUnauthorized, apiErr(401, "INVALID_API_KEY", "API key is not authorized for this API service").body)
		return
	}
	b.mux.ServeHTTP(w, r)
}

func (b *Backend) post(fn func(r *http.Request, body []byte) answer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			a := apiErr(400, "API_VALIDATION_ERROR", "cannot read body")
			sim.WriteJSON(w, a.status, a.body)
			return
		}
		b.idem.Do(r.Header.Get("Idempotency-Key"), body, w, func() *sim.Replay {
			a := fn(r, body)
			return sim.JSONReplay(a.status, a.body)
		}, func(w http.ResponseWriter) {
			a := apiErr(409, "IDEMPOTENCY_ERROR", "idempotency-key was already used with a different request")
			sim.WriteJSON(w, a.status, a.body)
		})
	}
}

func (b *Backend) checkoutURL(id string) string { return b.opts.PublicURL + "/checkout/" + id }

type createReq struct {
	ReferenceID     string         `json:"reference_id"`
	Country         string         `json:"country"`
	Amount          json.Number    `json:"amount"`
	Currency        string         `json:"currency"`
	CaptureMethod   string         `json:"capture_method"`
	PaymentMethodID string         `json:"payment_method_id"`
	Description     string         `json:"description"`
	Metadata        map[string]any `json:"metadata"`
	PaymentMethod   *struct {
		Type           string     `json:"type"`
		Reusability    string     `json:"reusability"`
		Ewallet        *pmChannel `json:"ewallet"`
		QRCode         *pmChannel `json:"qr_code"`
		VirtualAccount *pmChannel `json:"virtual_account"`
	} `json:"payment_method"`
}

type pmChannel struct {
	ChannelCode       string         `json:"channel_code"`
	ChannelProperties map[string]any `json:"channel_properties"`
}

// amountOf parses Xendit's decimal major units into minor units exactly.
func amountOf(n json.Number, cur payrouter.Currency) (int64, error) {
	s := string(n)
	if i, f, ok := strings.Cut(s, "."); ok {
		f = strings.TrimRight(f, "0")
		s = i
		if f != "" {
			s += "." + f
		}
	}
	v, err := payrouter.ParseDecimal(s, cur.Exponent())
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("amount must be a positive number with at most %d decimals", cur.Exponent())
	}
	return v, nil
}

func wire(amount int64, cur payrouter.Currency) json.Number {
	return json.Number(payrouter.FormatDecimal(amount, cur.Exponent()))
}

func (b *Backend) create(r *http.Request, body []byte) answer {
	var req createReq
	if err := json.Unmarshal(body, &req); err != nil {
		return apiErr(400, "API_VALIDATION_ERROR", "request body is not valid JSON")
	}
	// Enums of xendit-go's payment_request models.
	if req.Country != "" && !oneOf(req.Country, "ID", "PH", "VN", "TH", "MY") {
		return apiErr(400, "API_VALIDATION_ERROR", "country must be one of ID, PH, VN, TH, MY")
	}
	if pm := req.PaymentMethod; pm != nil {
		if !oneOf(pm.Reusability, "ONE_TIME_USE", "MULTIPLE_USE") {
			return apiErr(400, "API_VALIDATION_ERROR", "payment_method.reusability must be ONE_TIME_USE or MULTIPLE_USE")
		}
		if !oneOf(pm.Type, "CARD", "DIRECT_DEBIT", "EWALLET", "OVER_THE_COUNTER", "QR_CODE", "VIRTUAL_ACCOUNT") {
			return apiErr(400, "API_VALIDATION_ERROR", "payment_method.type is not a payment method type")
		}
	}
	if req.ReferenceID == "" {
		return apiErr(400, "API_VALIDATION_ERROR", "reference_id is required")
	}
	cur, err := payrouter.ParseCurrency(req.Currency)
	if err != nil || (cur != "IDR" && cur != "USD") {
		return apiErr(400, "API_VALIDATION_ERROR", "currency must be IDR or USD")
	}
	amount, err := amountOf(req.Amount, cur)
	if err != nil {
		return apiErr(400, "API_VALIDATION_ERROR", err.Error())
	}
	if cur == "IDR" {
		switch amount { // Xendit test-mode amounts
		case 10100:
			return apiErr(403, "CHANNEL_NOT_ACTIVATED", "Payment channel has not been activated")
		case 10101:
			return apiErr(503, "CHANNEL_UNAVAILABLE", "The payment channel requested is currently experiencing unexpected issues")
		case 10102:
			return apiErr(500, "SERVER_ERROR", "An unexpected error occured")
		}
	}
	now := b.opts.Now()
	p := &pr{ID: "pr-" + uuid(), PaymentID: "py-" + uuid(), ReferenceID: req.ReferenceID, Currency: cur, Amount: amount,
		CaptureMethod: orDefault(req.CaptureMethod, "AUTOMATIC"), Metadata: req.Metadata, Description: req.Description,
		Created: now, Updated: now, Props: map[string]any{}}
	if p.CaptureMethod != "AUTOMATIC" && p.CaptureMethod != "MANUAL" {
		return apiErr(400, "API_VALIDATION_ERROR", "capture_method must be AUTOMATIC or MANUAL")
	}
	switch {
	case req.PaymentMethodID != "":
		p.Type, p.ChannelCode, p.PaymentMethodID = "CARD", "CARDS", req.PaymentMethodID
		switch req.PaymentMethodID {
		case "tok_sandbox_success":
			if p.CaptureMethod == "MANUAL" {
				p.Status = "AWAITING_CAPTURE"
			} else {
				p.Status, p.Captured = "SUCCEEDED", amount
			}
		case "tok_sandbox_decline":
			p.Status, p.FailureCode = "FAILED", "CARD_DECLINED"
		case "tok_sandbox_insufficient_funds":
			p.Status, p.FailureCode = "FAILED", "INSUFFICIENT_BALANCE"
		case "tok_sandbox_3ds":
			p.Status = "REQUIRES_ACTION"
			p.Actions = []map[string]any{{"action": "AUTH", "url_type": "WEB", "method": "GET", "url": b.checkoutURL(p.ID), "qr_code": nil}}
		default:
			return apiErr(404, "DATA_NOT_FOUND", "payment_method_id "+req.PaymentMethodID+" was not found")
		}
	case req.PaymentMethod == nil:
		return apiErr(400, "API_VALIDATION_ERROR", "payment_method or payment_method_id is required")
	default:
		pm := req.PaymentMethod
		if cur != "IDR" {
			return apiErr(400, "UNSUPPORTED_CURRENCY", "currency "+string(cur)+" is not supported for "+pm.Type)
		}
		if p.CaptureMethod == "MANUAL" {
			return apiErr(400, "API_VALIDATION_ERROR", "capture_method MANUAL is only available for cards")
		}
		p.Type = pm.Type
		switch pm.Type {
		case "EWALLET":
			if pm.Ewallet == nil {
				return apiErr(400, "API_VALIDATION_ERROR", "payment_method.ewallet is required")
			}
			p.ChannelCode, p.Props = pm.Ewallet.ChannelCode, orEmpty(pm.Ewallet.ChannelProperties)
			switch p.ChannelCode {
			case "OVO":
				if s, _ := p.Props["mobile_number"].(string); !strings.HasPrefix(s, "+") || len(s) < 9 {
					return apiErr(400, "API_VALIDATION_ERROR", "payment_method.ewallet.channel_properties.mobile_number is required for OVO in E.164 format")
				}
				p.Status = "PENDING" // push notification to the OVO app
			case "DANA", "SHOPEEPAY", "LINKAJA":
				if s, _ := p.Props["success_return_url"].(string); s == "" {
					return apiErr(400, "API_VALIDATION_ERROR", "payment_method.ewallet.channel_properties.success_return_url is required")
				}
				p.Status = "REQUIRES_ACTION"
				p.Actions = []map[string]any{
					{"action": "AUTH", "url_type": "WEB", "method": "GET", "url": b.checkoutURL(p.ID), "qr_code": nil},
					{"action": "AUTH", "url_type": "MOBILE", "method": "GET", "url": b.checkoutURL(p.ID), "qr_code": nil},
				}
				if p.ChannelCode == "SHOPEEPAY" {
					p.Actions = append(p.Actions, map[string]any{"action": "AUTH", "url_type": "DEEPLINK", "method": "GET",
						"url": "shopeeid://main?apprl=" + b.checkoutURL(p.ID), "qr_code": nil})
				}
			default:
				return apiErr(400, "API_VALIDATION_ERROR", "unsupported ewallet channel_code "+p.ChannelCode)
			}
		case "QR_CODE":
			if pm.QRCode == nil || pm.QRCode.ChannelCode != "QRIS" {
				return apiErr(400, "API_VALIDATION_ERROR", "payment_method.qr_code.channel_code must be QRIS")
			}
			p.ChannelCode = "QRIS"
			p.Status = "PENDING"
			p.Props = map[string]any{"qr_string": qrString(p.ID, amount), "expires_at": now.Add(30 * time.Minute).UTC().Format(time.RFC3339)}
		case "VIRTUAL_ACCOUNT":
			if pm.VirtualAccount == nil {
				return apiErr(400, "API_VALIDATION_ERROR", "payment_method.virtual_account is required")
			}
			p.ChannelCode, p.Props = pm.VirtualAccount.ChannelCode, orEmpty(pm.VirtualAccount.ChannelProperties)
			prefix, ok := map[string]string{"BCA": "10766", "BNI": "8808", "BRI": "26215", "PERMATA": "8214", "MANDIRI": "88908"}[p.ChannelCode]
			if !ok {
				return apiErr(400, "API_VALIDATION_ERROR", "unsupported virtual_account channel_code "+p.ChannelCode)
			}
			if s, _ := p.Props["customer_name"].(string); s == "" {
				return apiErr(400, "API_VALIDATION_ERROR", "payment_method.virtual_account.channel_properties.customer_name is required")
			}
			b.mu.Lock()
			b.vaSeq++
			n := b.vaSeq
			b.mu.Unlock()
			p.Props["virtual_account_number"] = prefix + fmt.Sprintf("%010d", n)
			p.Props["expires_at"] = now.Add(24 * time.Hour).UTC().Format(time.RFC3339)
			p.Status = "PENDING"
		default:
			return apiErr(400, "API_VALIDATION_ERROR", "unsupported payment_method.type "+pm.Type)
		}
	}
	if sim.Declined(r.Context()) {
		p.Status, p.FailureCode, p.Captured, p.Actions = "FAILED", "CARD_DECLINED", 0, nil
		if p.Type != "CARD" {
			p.FailureCode = "TRANSACTION_DECLINED"
		}
	}
	b.mu.Lock()
	b.prs[p.ID] = p
	b.order = append(b.order, p.ID)
	if p.Status == "SUCCEEDED" {
		b.recordPaymentLocked(p)
	}
	resp := b.render(p)
	var hook []byte
	if p.Type == "CARD" && p.Status != "REQUIRES_ACTION" {
		hook = b.webhookBody(p, eventFor(p.Status))
	}
	b.mu.Unlock()
	if hook != nil {
		b.notifyAsync(hook)
	}
	return answer{http.StatusCreated, resp}
}

func oneOf(s string, vs ...string) bool {
	for _, v := range vs {
		if s == v {
			return true
		}
	}
	return false
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// render is the payment request object; b.mu is held.
func (b *Backend) render(p *pr) map[string]any {
	var failure any
	if p.FailureCode != "" {
		failure = p.FailureCode
	}
	pm := map[string]any{
		"id": "pm-" + strings.TrimPrefix(p.ID, "pr-"), "type": p.Type, "reusability": "ONE_TIME_USE", "status": "ACTIVE",
		"reference_id": p.ReferenceID, "ewallet": nil, "qr_code": nil, "virtual_account": nil, "card": nil,
		"created": p.Created.UTC().Format(time.RFC3339Nano), "updated": p.Updated.UTC().Format(time.RFC3339Nano),
	}
	ch := map[string]any{"channel_code": p.ChannelCode, "channel_properties": p.Props}
	switch p.Type {
	case "EWALLET":
		pm["ewallet"] = ch
	case "QR_CODE":
		pm["qr_code"] = ch
	case "VIRTUAL_ACCOUNT":
		ch["amount"] = wire(p.Amount, p.Currency)
		ch["currency"] = p.Currency
		pm["virtual_account"] = ch
	case "CARD":
		pm["id"] = p.PaymentMethodID
		pm["reusability"] = "MULTIPLE_USE"
		pm["card"] = map[string]any{"currency": p.Currency, "channel_properties": map[string]any{},
			"card_information": map[string]any{"masked_card_number": "400000XXXXXX0002", "network": "VISA"}}
	}
	actions := p.Actions
	if p.Status != "REQUIRES_ACTION" {
		actions = nil
	}
	if actions == nil {
		actions = []map[string]any{}
	}
	return map[string]any{
		"id": p.ID, "reference_id": p.ReferenceID, "business_id": b.opts.BusinessID, "customer_id": nil,
		"amount": wire(p.Amount, p.Currency), "currency": p.Currency, "country": "ID",
		"payment_method": pm, "description": nilIfEmpty(p.Description), "metadata": p.Metadata,
		"failure_code": failure, "capture_method": p.CaptureMethod, "initiator": nil,
		"status": p.Status, "actions": actions,
		"created": p.Created.UTC().Format(time.RFC3339Nano), "updated": p.Updated.UTC().Format(time.RFC3339Nano),
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func eventFor(status string) string {
	switch status {
	case "SUCCEEDED":
		return "payment.succeeded"
	case "FAILED":
		return "payment.failed"
	case "AWAITING_CAPTURE":
		return "payment.awaiting_capture"
	case "EXPIRED":
		return "payment.expired"
	}
	return "payment." + strings.ToLower(status)
}

// webhookBody is a PaymentCallback; b.mu is held.
func (b *Backend) webhookBody(p *pr, event string) []byte {
	obj := b.render(p)
	var failure any
	if p.FailureCode != "" {
		failure = p.FailureCode
	}
	data := map[string]any{
		"id": p.PaymentID, "payment_request_id": p.ID, "reference_id": p.ReferenceID, "business_id": b.opts.BusinessID,
		"customer_id": nil, "amount": wire(p.Amount, p.Currency), "currency": p.Currency, "country": "ID",
		"status": p.Status, "payment_method": obj["payment_method"], "channel_properties": nil,
		"payment_detail": nil, "failure_code": failure, "metadata": p.Metadata, "description": nilIfEmpty(p.Description),
		"created": p.Created.UTC().Format(time.RFC3339Nano), "updated": p.Updated.UTC().Format(time.RFC3339Nano),
	}
	body, _ := json.Marshal(map[string]any{"event": event, "business_id": b.opts.BusinessID,
		"created": b.opts.Now().UTC().Format(time.RFC3339Nano), "data": data, "api_version": nil})
	return body
}

func (b *Backend) header() http.Header {
	return http.Header{"Content-Type": {"application/json"}, "X-Callback-Token": {b.opts.CallbackToken}, "Webhook-Id": {"whk-" + uuid()}}
}

func (b *Backend) notifyAsync(body []byte) {
	if b.opts.Notifier == nil || b.opts.Notifier.URL == "" {
		return
	}
	h := b.header()
	b.mu.Lock()
	b.wg.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.opts.Notifier.Post(ctx, h, body)
	}()
}

func (b *Backend) get(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	p := b.prs[r.PathValue("id")]
	var body map[string]any
	if p != nil {
		body = b.render(p)
	}
	b.mu.Unlock()
	if p == nil {
		a := apiErr(404, "DATA_NOT_FOUND", "payment request "+r.PathValue("id")+" was not found")
		sim.WriteJSON(w, a.status, a.body)
		return
	}
	sim.WriteJSON(w, http.StatusOK, body)
}

// list answers newest first, filtered by reference_id.
func (b *Backend) list(w http.ResponseWriter, r *http.Request) {
	ref := r.URL.Query().Get("reference_id")
	b.mu.Lock()
	data := []map[string]any{}
	for i := len(b.order) - 1; i >= 0; i-- {
		p := b.prs[b.order[i]]
		if ref == "" || p.ReferenceID == ref {
			data = append(data, b.render(p))
		}
	}
	b.mu.Unlock()
	sim.WriteJSON(w, http.StatusOK, map[string]any{"data": data, "has_more": false})
}

func (b *Backend) capture(r *http.Request, body []byte) answer {
	var req struct {
		CaptureAmount json.Number `json:"capture_amount"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return apiErr(400, "API_VALIDATION_ERROR", "request body is not valid JSON")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.prs[r.PathValue("id")]
	if p == nil {
		return apiErr(404, "DATA_NOT_FOUND", "payment request was not found")
	}
	amount, err := amountOf(req.CaptureAmount, p.Currency)
	if err != nil {
		return apiErr(400, "API_VALIDATION_ERROR", "capture_amount: "+err.Error())
	}
	if p.Status != "AWAITING_CAPTURE" {
		return apiErr(409, "INVALID_PAYMENT_STATUS", "payment request is "+p.Status+", not AWAITING_CAPTURE")
	}
	if amount > p.Amount {
		return apiErr(400, "INVALID_CAPTURE_AMOUNT", "capture_amount exceeds the authorized amount")
	}
	p.Status, p.Captured, p.Updated = "SUCCEEDED", amount, b.opts.Now()
	b.recordPaymentLocked(p)
	return answer{http.StatusOK, map[string]any{
		"id": "cptr-" + uuid(), "payment_request_id": p.ID, "payment_id": p.PaymentID, "reference_id": p.ReferenceID,
		"currency": p.Currency, "authorized_amount": wire(p.Amount, p.Currency), "captured_amount": wire(amount, p.Currency),
		"status": "SUCCEEDED", "failure_code": nil, "customer_id": nil, "metadata": p.Metadata, "channel_properties": map[string]any{},
		"payment_method": b.render(p)["payment_method"],
		"created":        p.Updated.UTC().Format(time.RFC3339Nano), "updated": p.Updated.UTC().Format(time.RFC3339Nano),
	}}
}

func (b *Backend) cancel(r *http.Request, _ []byte) answer {
	if r.Header.Get("Api-Version") == "" {
		return apiErr(400, "API_VALIDATION_ERROR", "api-version header is required")
	}
	b.mu.Lock()
	p := b.prs[r.PathValue("id")]
	if p == nil {
		b.mu.Unlock()
		return apiErr(404, "DATA_NOT_FOUND", "payment request was not found")
	}
	switch p.Status {
	case "PENDING", "REQUIRES_ACTION", "AWAITING_CAPTURE":
	default:
		b.mu.Unlock()
		return apiErr(409, "INVALID_PAYMENT_REQUEST_STATUS", "payment request is "+p.Status+" and cannot be canceled")
	}
	p.Status, p.Updated = "CANCELED", b.opts.Now()
	resp := b.render(p)
	b.mu.Unlock()
	return answer{http.StatusOK, resp}
}

func (b *Backend) refund(r *http.Request, body []byte) answer {
	var req struct {
		PaymentRequestID string      `json:"payment_request_id"`
		ReferenceID      string      `json:"reference_id"`
		Amount           json.Number `json:"amount"`
		Currency         string      `json:"currency"`
		Reason           string      `json:"reason"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return apiErr(400, "API_VALIDATION_ERROR", "request body is not valid JSON")
	}
	switch req.Reason {
	case "FRAUDULENT", "DUPLICATE", "REQUESTED_BY_CUSTOMER", "CANCELLATION", "OTHERS":
	default:
		return apiErr(400, "API_VALIDATION_ERROR", "reason must be one of FRAUDULENT, DUPLICATE, REQUESTED_BY_CUSTOMER, CANCELLATION, OTHERS")
	}
	b.mu.Lock()
	p := b.prs[req.PaymentRequestID]
	if p == nil {
		b.mu.Unlock()
		return apiErr(404, "DATA_NOT_FOUND", "payment request was not found")
	}
	if req.Currency != string(p.Currency) {
		b.mu.Unlock()
		return apiErr(400, "API_VALIDATION_ERROR", "currency does not match the payment")
	}
	amount, err := amountOf(req.Amount, p.Currency)
	if err != nil {
		b.mu.Unlock()
		return apiErr(400, "API_VALIDATION_ERROR", err.Error())
	}
	if p.Status != "SUCCEEDED" {
		b.mu.Unlock()
		return apiErr(409, "INELIGIBLE_TRANSACTION", "payment request is "+p.Status+" and cannot be refunded")
	}
	if amount > p.Captured-p.refunded() {
		b.mu.Unlock()
		return apiErr(400, "MAXIMUM_REFUND_AMOUNT_REACHED", "refund amount exceeds the refundable amount")
	}
	now := b.opts.Now()
	rf := refund{ID: "rfd-" + uuid(), ReferenceID: req.ReferenceID, Reason: req.Reason, Amount: amount, Created: now}
	p.Refunds = append(p.Refunds, rf)
	b.recordRefundLocked(p, rf)
	obj := refundObject(p, rf)
	hook, _ := json.Marshal(map[string]any{"event": "refund.succeeded", "business_id": b.opts.BusinessID,
		"created": now.UTC().Format(time.RFC3339Nano), "data": obj})
	b.mu.Unlock()
	b.notifyAsync(hook)
	return answer{http.StatusOK, obj}
}

// IsRefund reports a refund create (sim.RefundMatcher).
func (b *Backend) IsRefund(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == "/refunds"
}

// refundObject is Xendit's Refund object. Refunds succeed at once here.
func refundObject(p *pr, rf refund) map[string]any {
	var ref any
	if rf.ReferenceID != "" {
		ref = rf.ReferenceID
	}
	return map[string]any{
		"id": rf.ID, "payment_request_id": p.ID, "payment_id": p.PaymentID, "invoice_id": nil, "reference_id": ref,
		"amount": wire(rf.Amount, p.Currency), "currency": p.Currency, "country": "ID", "channel_code": p.ChannelCode,
		"payment_method_type": p.Type, "status": "SUCCEEDED", "reason": rf.Reason, "failure_code": nil, "refund_fee_amount": nil,
		"metadata": nil, "created": rf.Created.UTC().Format(time.RFC3339Nano), "updated": rf.Created.UTC().Format(time.RFC3339Nano),
	}
}

// getRefund is GET /refunds/{id}.
func (b *Backend) getRefund(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	var obj map[string]any
	for _, id := range b.order {
		p := b.prs[id]
		for _, rf := range p.Refunds {
			if rf.ID == r.PathValue("id") {
				obj = refundObject(p, rf)
			}
		}
	}
	b.mu.Unlock()
	if obj == nil {
		a := apiErr(404, "DATA_NOT_FOUND", "refund "+r.PathValue("id")+" was not found")
		sim.WriteJSON(w, a.status, a.body)
		return
	}
	sim.WriteJSON(w, http.StatusOK, obj)
}

// listRefunds is GET /refunds, newest first, filtered by
// payment_request_id; limit (default 10) and after_id page through them.
func (b *Backend) listRefunds(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 10
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			a := apiErr(400, "API_VALIDATION_ERROR", "limit must be between 1 and 100")
			sim.WriteJSON(w, a.status, a.body)
			return
		}
		limit = n
	}
	b.mu.Lock()
	var all []map[string]any
	for i := len(b.order) - 1; i >= 0; i-- {
		p := b.prs[b.order[i]]
		if id := q.Get("payment_request_id"); id != "" && p.ID != id {
			continue
		}
		for j := len(p.Refunds) - 1; j >= 0; j-- {
			all = append(all, refundObject(p, p.Refunds[j]))
		}
	}
	b.mu.Unlock()
	if after := q.Get("after_id"); after != "" {
		for i, o := range all {
			if o["id"] == after {
				all = all[i+1:]
				break
			}
		}
	}
	more := len(all) > limit
	if more {
		all = all[:limit]
	}
	if all == nil {
		all = []map[string]any{}
	}
	sim.WriteJSON(w, http.StatusOK, map[string]any{"data": all, "has_more": more})
}

// Ledger lists every payment request, oldest first.
func (b *Backend) Ledger() []sim.LedgerEntry {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]sim.LedgerEntry, 0, len(b.order))
	for _, id := range b.order {
		p := b.prs[id]
		out = append(out, sim.LedgerEntry{ID: p.ID, Reference: p.ReferenceID, Amount: p.Amount, Currency: string(p.Currency),
			Status: p.Status, Method: strings.ToLower(p.Type + ":" + p.ChannelCode), Refunded: p.refunded()})
	}
	return out
}

// Pay completes a payment request awaiting the customer (id is the payment
// request id or its reference_id): success → SUCCEEDED (a manual-capture
// card → AWAITING_CAPTURE), failure → FAILED, expire → EXPIRED. The
// webhook, with x-callback-token, is posted before Pay returns.
func (b *Backend) Pay(ctx context.Context, id string, o sim.Outcome) error {
	b.mu.Lock()
	p := b.prs[id]
	if p == nil {
		for i := len(b.order) - 1; i >= 0; i-- {
			if q := b.prs[b.order[i]]; q.ReferenceID == id {
				p = q
				break
			}
		}
	}
	if p == nil {
		b.mu.Unlock()
		return sim.ErrNotFound
	}
	if p.Status != "PENDING" && p.Status != "REQUIRES_ACTION" {
		b.mu.Unlock()
		return sim.ErrNotPayable
	}
	b.completeLocked(p, o)
	hook := b.webhookBody(p, eventFor(p.Status))
	b.mu.Unlock()
	if b.opts.Notifier == nil {
		return nil
	}
	return b.opts.Notifier.Post(ctx, b.header(), hook)
}

// completeLocked applies the customer's outcome; b.mu is held.
func (b *Backend) completeLocked(p *pr, o sim.Outcome) {
	switch o {
	case sim.OutcomeSuccess:
		if p.CaptureMethod == "MANUAL" {
			p.Status = "AWAITING_CAPTURE"
		} else {
			p.Status, p.Captured = "SUCCEEDED", p.Amount
			b.recordPaymentLocked(p)
		}
	case sim.OutcomeFailure:
		p.Status, p.FailureCode = "FAILED", "USER_DECLINED_PAYMENT"
		if p.Type == "CARD" {
			p.FailureCode = "CARD_DECLINED"
		}
	case sim.OutcomeExpire:
		p.Status, p.FailureCode = "EXPIRED", ""
	}
	p.Updated = b.opts.Now()
}

var _ sim.Backend = (*Backend)(nil)

// qrString is an EMVCo-shaped QRIS payload embedding the id.
func qrString(id string, amount int64) string {
	tlv := func(tag, v string) string { return fmt.Sprintf("%s%02d%s", tag, len(v), v) }
	s := tlv("00", "01") + tlv("01", "12") + tlv("26", tlv("00", "ID.CO.XENDIT.WWW")+tlv("01", "936008990000000000")+tlv("02", "ID1020000000000")) +
		tlv("52", "5999") + tlv("53", "360") + tlv("54", fmt.Sprint(amount)) + tlv("58", "ID") +
		tlv("59", "PAYROUTER SANDBOX") + tlv("60", "JAKARTA") + tlv("62", tlv("05", id)) + "6304"
	return s + crc16(s)
}

func crc16(s string) string {
	crc := uint16(0xFFFF)
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for j := 0; j < 8; j++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return fmt.Sprintf("%04X", crc)
}

func uuid() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Page implements sim.Pager: e-wallet and 3-D Secure pages return to the
// channel's success_return_url or failure_return_url, as Xendit does.
func (b *Backend) Page(id string) (sim.Page, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.prs[id]
	if !ok {
		return sim.Page{}, false
	}
	pg := sim.Page{Amount: p.Amount, Currency: string(p.Currency), State: sim.PagePending}
	pg.QRString, _ = p.Props["qr_string"].(string)
	back := ""
	switch p.Status {
	case "SUCCEEDED", "AWAITING_CAPTURE":
		pg.State, back = sim.PagePaid, "success_return_url"
	case "FAILED":
		pg.State, back = sim.PageFailed, "failure_return_url"
	case "EXPIRED":
		pg.State, back = sim.PageExpired, "failure_return_url"
	case "CANCELED", "VOIDED":
		pg.State, back = sim.PageCanceled, "failure_return_url"
	}
	if back != "" {
		pg.ReturnURL, _ = p.Props[back].(string)
	}
	return pg, true
}
