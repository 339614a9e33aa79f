// Package midtranssim is a stateful simulator of the Midtrans Core API for
// payrouter's sandbox: POST /v2/charge, GET /v2/{id}/status, POST
// /v2/{id}/cancel, /v2/{id}/expire, /v2/{id}/refund and /v2/capture, with
// Midtrans' field names, string status codes (errors often arrive as HTTP
// 200 with a body status_code such as "406"), HTTP Basic auth with the
// server key as user, Idempotency-Key replay, and HTTP notifications signed
// with signature_key = SHA-512(order_id + status_code + gross_amount +
// server_key).
//
// Card tokens: tok_sandbox_success (capture, or authorize for type
// "authorize"), tok_sandbox_decline and tok_sandbox_insufficient_funds
// (deny, status_code "202", channel_response_code "05" / "51"),
// tok_sandbox_3ds (pending with redirect_url to the checkout page). Other
// methods start pending with actions, a QRIS string or a VA number, whose
// URLs point at PublicURL + "/checkout/" + transaction_id.
//
// Like Midtrans, a notification is sent asynchronously after every charge
// and state change made through the API; Pay sends its notification
// synchronously. Ledger ids are transaction ids, references are order ids,
// amounts whole rupiah.
package midtranssim

import (
	"context"
	"crypto/rand"
	"crypto/sha512"
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
	// ServerKey is the only key accepted (HTTP Basic user) and signs
	// notifications.
	ServerKey string
	// PublicURL is the absolute base of /sim/midtrans, for next-action URLs.
	PublicURL string
	// Notifier receives the HTTP notifications; nil drops them.
	Notifier *sim.Notifier
	// MerchantID is echoed in responses (default "G000000000").
	MerchantID string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Backend is the simulator; it implements sim.Backend.
type Backend struct {
	opts Options
	mux  *http.ServeMux
	idem sim.Idempotency
	wg   sync.WaitGroup

	mu      sync.Mutex
	txs     map[string]*tx // by transaction id
	byOrder map[string]string
	order   []string
	vaSeq   int
}

type refund struct {
	ID        int
	UUID      string
	Key       string
	Amount    int64
	Reason    string
	CreatedAt time.Time
}

type tx struct {
	ID, OrderID   string
	Gross         int64
	Captured      int64
	PaymentType   string
	Status        string // transaction_status
	Fraud         string
	StatusCode    string
	StatusMessage string
	ChannelCode   string
	Bank          string
	VANumber      string
	BillKey       string
	BillerCode    string
	Card3DS       bool
	Manual        bool
	CallbackURL   string // gopay / shopeepay: where the app returns the customer
	Created       time.Time
	Settled       time.Time
	Expiry        time.Time
	Refunds       []refund
}

func (t *tx) refunded() int64 {
	var n int64
	for _, r := range t.Refunds {
		n += r.Amount
	}
	return n
}

// New returns a simulator.
func New(o Options) *Backend {
	if o.MerchantID == "" {
		o.MerchantID = "G000000000"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.PublicURL = strings.TrimSuffix(o.PublicURL, "/")
	b := &Backend{opts: o, mux: http.NewServeMux(), txs: map[string]*tx{}, byOrder: map[string]string{}}
	b.mux.HandleFunc("POST /v2/charge", b.post(b.charge))
	b.mux.HandleFunc("POST /v2/capture", b.post(b.capture))
	b.mux.HandleFunc("POST /v2/{id}/cancel", b.post(b.cancel))
	b.mux.HandleFunc("POST /v2/{id}/expire", b.post(b.expire))
	b.mux.HandleFunc("POST /v2/{id}/refund", b.post(b.refund))
	b.mux.HandleFunc("GET /v2/{id}/status", b.status)
	return b
}

// Flush waits for the asynchronous notifications sent so far.
//
// The lock orders Flush against handlers still adding deliveries (a
// WaitGroup's Add must not race its Wait); deliveries never take it.
func (b *Backend) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.wg.Wait()
}

// ServeHTTP serves the Core API (paths without the /sim/midtrans prefix).
func (b *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || user != b.opts.ServerKey || pass != "" || b.opts.ServerKey == "" {
		writeJSON(w, http.StatusUnauthorized, map[string]any{
			"status_code":    "401",
			"status_message": "Unknown Merchant server_key/id",
			"id":             uuid(),
		})
		return
	}
	b.mux.ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) { sim.WriteJSON(w, status, v) }

// answer is a Midtrans response: HTTP status plus body.
type answer struct {
	http int
	body map[string]any
}

func errBody(code int, msg string, validation ...string) answer {
	body := map[string]any{"status_code": strconv.Itoa(code), "status_message": msg, "id": uuid()}
	if len(validation) > 0 {
		body["validation_messages"] = validation
	}
	// Midtrans answers most API errors with HTTP 200 and the code in the
	// body; authentication, lookups and server faults use the HTTP status
	// too. Both happen, so the simulator does both.
	status := http.StatusOK
	if code == 401 || code == 404 || code >= 500 {
		status = code
	}
	return answer{status, body}
}

// post wraps a POST handler with Idempotency-Key replay.
func (b *Backend) post(fn func(r *http.Request, body []byte) answer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			writeJSON(w, 400, errBody(400, "cannot read body").body)
			return
		}
		key := r.Header.Get("Idempotency-Key")
		if len(key) > 36 {
			a := errBody(400, "Idempotency-Key must be at most 36 characters")
			writeJSON(w, a.http, a.body)
			return
		}
		// Midtrans keys are global across endpoints: the same key on
		// another endpoint (a different body) is a conflict.
		b.idem.Do(key, body, w, func() *sim.Replay {
			a := fn(r, body)
			return sim.JSONReplay(a.http, a.body)
		}, func(w http.ResponseWriter) {
			a := errBody(409, "Idempotency-Key was used with a different request")
			writeJSON(w, a.http, a.body)
		})
	}
}

const timeLayout = "2006-01-02 15:04:05"

var wib = time.FixedZone("WIB", 7*3600)

func (b *Backend) fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(wib).Format(timeLayout)
}

func gross(n int64) string { return payrouter.FormatDecimal(n*100, 2) }

type chargeReq struct {
	PaymentType        string `json:"payment_type"`
	TransactionDetails struct {
		OrderID     string          `json:"order_id"`
		GrossAmount json.RawMessage `json:"gross_amount"`
	} `json:"transaction_details"`
	CreditCard *struct {
		TokenID string `json:"token_id"`
		Type    string `json:"type"`
	} `json:"credit_card"`
	BankTransfer *struct {
		Bank string `json:"bank"`
	} `json:"bank_transfer"`
	EChannel *struct {
		BillInfo1 string `json:"bill_info1"`
	} `json:"echannel"`
	Gopay *struct {
		CallbackURL string `json:"callback_url"`
	} `json:"gopay"`
	ShopeePay *struct {
		CallbackURL string `json:"callback_url"`
	} `json:"shopeepay"`
	Qris *struct {
		Acquirer string `json:"acquirer"`
	} `json:"qris"`
}

func (b *Backend) charge(r *http.Request, body []byte) answer {
	var req chargeReq
	if err := json.Unmarshal(body, &req); err != nil {
		return errBody(400, "One or more parameters in the payload is invalid.", "body is not valid JSON")
	}
	d := req.TransactionDetails
	if d.OrderID == "" || len(d.OrderID) > 50 {
		return errBody(400, "One or more parameters in the payload is invalid.", "transaction_details.order_id is required (max 50 characters)")
	}
	amount, err := payrouter.ParseAmount(d.GrossAmount)
	if err != nil {
		return errBody(400, "One or more parameters in the payload is invalid.", "transaction_details.gross_amount "+err.Error())
	}
	now := b.opts.Now()
	t := &tx{ID: uuid(), OrderID: d.OrderID, Gross: amount, PaymentType: req.PaymentType, Fraud: "accept", Created: now}
	switch req.PaymentType {
	case "credit_card":
		if req.CreditCard == nil || req.CreditCard.TokenID == "" {
			return errBody(400, "One or more parameters in the payload is invalid.", "credit_card.token_id is required")
		}
		t.Manual = req.CreditCard.Type == "authorize"
		t.Bank = "bni"
		switch req.CreditCard.TokenID {
		case "tok_sandbox_success":
			if t.Manual {
				t.Status, t.StatusCode, t.StatusMessage = "authorize", "200", "Success, Credit Card authorize transaction is successful"
			} else {
				t.Status, t.StatusCode, t.StatusMessage = "capture", "200", "Success, Credit Card transaction is successful"
				t.Captured = amount
			}
			t.ChannelCode = "00"
		case "tok_sandbox_decline":
			t.Status, t.StatusCode, t.StatusMessage, t.ChannelCode = "deny", "202", "Deny by Bank [BNI] with code [05] and message [Do not honour]", "05"
		case "tok_sandbox_insufficient_funds":
			t.Status, t.StatusCode, t.StatusMessage, t.ChannelCode = "deny", "202", "Deny by Bank [BNI] with code [51] and message [Insufficient funds]", "51"
		case "tok_sandbox_3ds":
			t.Status, t.StatusCode, t.StatusMessage, t.Card3DS = "pending", "201", "Success, Credit Card transaction is successful", true
			t.Expiry = now.Add(15 * time.Minute)
		default:
			return errBody(411, "Token id is missing, invalid, or timed out")
		}
	case "gopay", "shopeepay", "qris":
		if req.Gopay != nil {
			t.CallbackURL = req.Gopay.CallbackURL
		}
		if req.ShopeePay != nil {
			t.CallbackURL = req.ShopeePay.CallbackURL
		}
		t.Status, t.StatusCode = "pending", "201"
		t.StatusMessage = map[string]string{"gopay": "GO-PAY transaction is created", "shopeepay": "ShopeePay transaction is created", "qris": "QRIS transaction is created"}[req.PaymentType]
		t.Expiry = now.Add(15 * time.Minute)
	case "bank_transfer":
		if req.BankTransfer == nil {
			return errBody(400, "One or more parameters in the payload is invalid.", "bank_transfer.bank is required")
		}
		switch req.BankTransfer.Bank {
		case "bca", "bni", "bri", "permata":
		default:
			return errBody(400, "One or more parameters in the payload is invalid.", "bank_transfer.bank must be one of bca, bni, bri, permata")
		}
		t.Bank = req.BankTransfer.Bank
		t.Status, t.StatusCode, t.StatusMessage = "pending", "201", "Success, Bank Transfer transaction is created"
		t.Expiry = now.Add(24 * time.Hour)
	case "echannel":
		if req.EChannel == nil {
			return errBody(400, "One or more parameters in the payload is invalid.", "echannel is required")
		}
		t.Bank = "mandiri"
		t.Status, t.StatusCode, t.StatusMessage = "pending", "201", "OK, Mandiri Bill transaction is successful"
		t.BillerCode = "70012"
		t.Expiry = now.Add(24 * time.Hour)
	default:
		return errBody(402, "Payment channel is not activated.")
	}

	if sim.Declined(r.Context()) {
		t.Status, t.StatusCode, t.StatusMessage, t.ChannelCode = "deny", "202", "Deny by Bank [BNI] with code [05] and message [Do not honour]", "05"
		t.Captured, t.Card3DS, t.Expiry = 0, false, time.Time{}
	}
	b.mu.Lock()
	if _, dup := b.byOrder[t.OrderID]; dup {
		b.mu.Unlock()
		return errBody(406, "The request could not be completed due to a conflict with the current state of the target resource, please try again")
	}
	b.vaSeq++
	switch {
	case t.PaymentType == "bank_transfer":
		prefix := map[string]string{"bca": "12345", "bni": "9888", "bri": "8578", "permata": "8562"}[t.Bank]
		t.VANumber = prefix + fmt.Sprintf("%011d", b.vaSeq)
	case t.PaymentType == "echannel":
		t.BillKey = fmt.Sprintf("77%010d", b.vaSeq)
	}
	b.txs[t.ID] = t
	b.byOrder[t.OrderID] = t.ID
	b.order = append(b.order, t.ID)
	resp := b.chargeBody(t)
	note := b.notificationBody(t)
	b.mu.Unlock()

	b.notifyAsync(note)
	return answer{http.StatusOK, resp}
}

// qrString is an EMVCo-shaped QRIS payload embedding the transaction id.
func qrString(id string, amount int64) string {
	tlv := func(tag, v string) string { return fmt.Sprintf("%s%02d%s", tag, len(v), v) }
	merchant := tlv("00", "COM.GO-JEK.WWW") + tlv("01", "936009140000000000") + tlv("02", strings.ReplaceAll(id, "-", "")[:15])
	s := tlv("00", "01") + tlv("01", "12") + tlv("26", merchant) + tlv("52", "5999") + tlv("53", "360") +
		tlv("54", strconv.FormatInt(amount, 10)) + tlv("58", "ID") + tlv("59", "PAYROUTER SANDBOX") + tlv("60", "JAKARTA") +
		tlv("62", tlv("05", id)) + "6304"
	return s + crc16(s)
}

// crc16 is CRC-16/CCITT-FALSE, the QRIS checksum.
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

func (b *Backend) checkoutURL(t *tx) string { return b.opts.PublicURL + "/checkout/" + t.ID }

// chargeBody renders a charge response; b.mu is held.
func (b *Backend) chargeBody(t *tx) map[string]any {
	m := b.baseBody(t)
	switch t.PaymentType {
	case "credit_card":
		m["masked_card"] = "48111111-1114"
		m["card_type"] = "credit"
		m["bank"] = t.Bank
		if t.ChannelCode != "" {
			m["channel_response_code"] = t.ChannelCode
			m["channel_response_message"] = map[string]string{"00": "Approved", "05": "Do not honour", "51": "Insufficient funds"}[t.ChannelCode]
		}
		if t.Status != "deny" {
			m["approval_code"] = strconv.FormatInt(t.Created.UnixMilli(), 10)
		}
		if t.Card3DS && t.Status == "pending" {
			m["redirect_url"] = b.checkoutURL(t)
			m["three_ds_version"] = "2"
		}
	case "gopay":
		m["actions"] = []map[string]string{
			{"name": "generate-qr-code", "method": "GET", "url": b.checkoutURL(t) + "?view=qr"},
			{"name": "deeplink-redirect", "method": "GET", "url": b.checkoutURL(t)},
			{"name": "get-status", "method": "GET", "url": b.opts.PublicURL + "/v2/" + t.ID + "/status"},
			{"name": "cancel", "method": "POST", "url": b.opts.PublicURL + "/v2/" + t.ID + "/cancel"},
		}
	case "shopeepay":
		m["actions"] = []map[string]string{{"name": "deeplink-redirect", "method": "GET", "url": b.checkoutURL(t)}}
	case "qris":
		m["actions"] = []map[string]string{{"name": "generate-qr-code", "method": "GET", "url": b.checkoutURL(t) + "?view=qr"}}
		m["qr_string"] = qrString(t.ID, t.Gross)
		m["acquirer"] = "gopay"
	}
	if !t.Expiry.IsZero() && t.Status == "pending" {
		m["expiry_time"] = b.fmtTime(t.Expiry)
	}
	return m
}

// baseBody holds the fields common to responses and notifications.
func (b *Backend) baseBody(t *tx) map[string]any {
	m := map[string]any{
		"status_code":        t.StatusCode,
		"status_message":     t.StatusMessage,
		"transaction_id":     t.ID,
		"order_id":           t.OrderID,
		"merchant_id":        b.opts.MerchantID,
		"gross_amount":       gross(t.Gross),
		"currency":           "IDR",
		"payment_type":       t.PaymentType,
		"transaction_time":   b.fmtTime(t.Created),
		"transaction_status": t.Status,
		"fraud_status":       t.Fraud,
	}
	switch {
	case t.PaymentType == "bank_transfer" && t.Bank == "permata":
		m["permata_va_number"] = t.VANumber
	case t.PaymentType == "bank_transfer":
		m["va_numbers"] = []map[string]string{{"bank": t.Bank, "va_number": t.VANumber}}
	case t.PaymentType == "echannel":
		m["bill_key"] = t.BillKey
		m["biller_code"] = t.BillerCode
	}
	if !t.Settled.IsZero() {
		m["settlement_time"] = b.fmtTime(t.Settled)
	}
	return m
}

// notificationBody renders the signed notification; b.mu is held.
func (b *Backend) notificationBody(t *tx) []byte {
	m := b.baseBody(t)
	m["status_message"] = "midtrans payment notification"
	if t.ChannelCode != "" {
		m["channel_response_code"] = t.ChannelCode
	}
	if len(t.Refunds) > 0 {
		m["refund_amount"] = gross(t.refunded())
		m["refunds"] = refundsBody(t)
	}
	m["signature_key"] = Signature(t.OrderID, t.StatusCode, gross(t.Gross), b.opts.ServerKey)
	body, _ := json.Marshal(m)
	return body
}

func refundsBody(t *tx) []map[string]any {
	out := make([]map[string]any, 0, len(t.Refunds))
	for _, r := range t.Refunds {
		out = append(out, map[string]any{
			"refund_chargeback_id":   r.ID,
			"refund_chargeback_uuid": r.UUID,
			"refund_amount":          gross(r.Amount),
			"reason":                 r.Reason,
			"refund_key":             r.Key,
			"created_at":             r.CreatedAt.In(wib).Format(timeLayout),
		})
	}
	return out
}

// Signature is Midtrans' signature_key: hex(SHA-512(order_id + status_code
// + gross_amount + server_key)).
func Signature(orderID, statusCode, grossAmount, serverKey string) string {
	sum := sha512.Sum512([]byte(orderID + statusCode + grossAmount + serverKey))
	return hex.EncodeToString(sum[:])
}

func (b *Backend) notifyAsync(body []byte) {
	if b.opts.Notifier == nil || b.opts.Notifier.URL == "" {
		return
	}
	b.mu.Lock()
	b.wg.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.opts.Notifier.Post(ctx, notifyHeader(), body) // Midtrans retries; the sandbox does not care
	}()
}

func notifyHeader() http.Header {
	return http.Header{"Content-Type": {"application/json"}, "User-Agent": {"Veritrans"}}
}

// lookup finds a transaction by transaction id or order id; b.mu is held.
func (b *Backend) lookup(id string) *tx {
	if t := b.txs[id]; t != nil {
		return t
	}
	return b.txs[b.byOrder[id]]
}

func (b *Backend) status(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	t := b.lookup(r.PathValue("id"))
	if t == nil {
		b.mu.Unlock()
		a := errBody(404, "Transaction doesn't exist.")
		writeJSON(w, a.http, a.body)
		return
	}
	m := b.chargeBody(t)
	m["signature_key"] = Signature(t.OrderID, t.StatusCode, gross(t.Gross), b.opts.ServerKey)
	if len(t.Refunds) > 0 {
		m["refund_amount"] = gross(t.refunded())
		m["refunds"] = refundsBody(t)
	}
	if t.ChannelCode != "" {
		m["channel_response_code"] = t.ChannelCode
	}
	b.mu.Unlock()
	writeJSON(w, http.StatusOK, m)
}

// transition applies fn under the lock and, when it changed the state,
// notifies asynchronously and answers the charge body.
func (b *Backend) transition(id string, fn func(t *tx) *answer) answer {
	b.mu.Lock()
	t := b.lookup(id)
	if t == nil {
		b.mu.Unlock()
		return errBody(404, "Transaction doesn't exist.")
	}
	if a := fn(t); a != nil {
		b.mu.Unlock()
		return *a
	}
	resp := b.chargeBody(t)
	note := b.notificationBody(t)
	b.mu.Unlock()
	b.notifyAsync(note)
	return answer{http.StatusOK, resp}
}

func cannotModify() *answer {
	a := errBody(412, "Merchant cannot modify the status of the transaction")
	return &a
}

func (b *Backend) cancel(r *http.Request, _ []byte) answer {
	return b.transition(r.PathValue("id"), func(t *tx) *answer {
		cardHold := t.PaymentType == "credit_card" && (t.Status == "authorize" || t.Status == "capture" || t.Status == "pending")
		if !cardHold {
			// Midtrans cancels pending e-money/VA only in some channels;
			// the simulator refuses, so clients must fall back to expire.
			return cannotModify()
		}
		t.Status, t.StatusCode, t.StatusMessage = "cancel", "200", "Success, transaction is canceled"
		return nil
	})
}

func (b *Backend) expire(r *http.Request, _ []byte) answer {
	return b.transition(r.PathValue("id"), func(t *tx) *answer {
		if t.Status != "pending" {
			return cannotModify()
		}
		t.Status, t.StatusCode, t.StatusMessage = "expire", "407", "Success, transaction has expired"
		return nil
	})
}

func (b *Backend) capture(r *http.Request, body []byte) answer {
	var req struct {
		TransactionID string          `json:"transaction_id"`
		GrossAmount   json.RawMessage `json:"gross_amount"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.TransactionID == "" {
		return errBody(400, "One or more parameters in the payload is invalid.", "transaction_id is required")
	}
	amount, err := payrouter.ParseAmount(req.GrossAmount)
	if err != nil {
		return errBody(400, "One or more parameters in the payload is invalid.", "gross_amount "+err.Error())
	}
	return b.transition(req.TransactionID, func(t *tx) *answer {
		if t.Status != "authorize" {
			return cannotModify()
		}
		if amount > t.Gross {
			a := errBody(400, "One or more parameters in the payload is invalid.", "gross_amount exceeds the authorized amount")
			return &a
		}
		t.Status, t.StatusCode, t.StatusMessage = "capture", "200", "Success, Credit Card capture transaction is successful"
		t.Captured = amount
		return nil
	})
}

// IsRefund reports a refund request, POST /v2/{id}/refund
// (sim.RefundMatcher).
func (b *Backend) IsRefund(r *http.Request) bool {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	return r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "v2" && parts[2] == "refund"
}

func (b *Backend) refund(r *http.Request, body []byte) answer {
	var req struct {
		RefundKey string `json:"refund_key"`
		Amount    int64  `json:"amount"`
		Reason    string `json:"reason"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Amount < 0 {
		return errBody(400, "One or more parameters in the payload is invalid.", "refund_key and a positive amount are expected")
	}
	b.mu.Lock()
	t := b.lookup(r.PathValue("id"))
	if t == nil {
		b.mu.Unlock()
		return errBody(404, "Transaction doesn't exist.")
	}
	for _, rf := range t.Refunds {
		if req.RefundKey != "" && rf.Key == req.RefundKey {
			// Same refund key: Midtrans refuses a second refund; the
			// sandbox answers the first one again.
			resp := b.refundBody(t, rf)
			b.mu.Unlock()
			return answer{http.StatusOK, resp}
		}
	}
	switch {
	case t.PaymentType != "credit_card" && t.PaymentType != "gopay" && t.PaymentType != "qris":
		b.mu.Unlock()
		return errBody(412, "Payment type does not support refund")
	case t.Status != "settlement" && t.Status != "capture" && t.Status != "partial_refund":
		b.mu.Unlock()
		return *cannotModify()
	}
	paid := t.Gross
	if t.Captured > 0 {
		paid = t.Captured
	}
	left := paid - t.refunded()
	amount := req.Amount
	if amount == 0 {
		amount = left
	}
	if amount > left {
		b.mu.Unlock()
		return errBody(412, "Refund amount is greater than the refundable amount")
	}
	rf := refund{ID: len(t.Refunds) + 1000, UUID: uuid(), Key: req.RefundKey, Amount: amount, Reason: req.Reason, CreatedAt: b.opts.Now()}
	t.Refunds = append(t.Refunds, rf)
	if t.refunded() >= paid {
		t.Status = "refund"
	} else {
		t.Status = "partial_refund"
	}
	t.StatusCode, t.StatusMessage = "200", "Success, refund request is approved"
	resp := b.refundBody(t, rf)
	note := b.notificationBody(t)
	b.mu.Unlock()
	b.notifyAsync(note)
	return answer{http.StatusOK, resp}
}

func (b *Backend) refundBody(t *tx, rf refund) map[string]any {
	m := b.baseBody(t)
	m["status_code"] = "200"
	m["status_message"] = "Success, refund request is approved"
	m["refund_chargeback_id"] = rf.ID
	m["refund_chargeback_uuid"] = rf.UUID
	m["refund_amount"] = gross(rf.Amount)
	m["refund_key"] = rf.Key
	return m
}

// Ledger lists every transaction, oldest first.
func (b *Backend) Ledger() []sim.LedgerEntry {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]sim.LedgerEntry, 0, len(b.order))
	for _, id := range b.order {
		t := b.txs[id]
		out = append(out, sim.LedgerEntry{ID: t.ID, Reference: t.OrderID, Amount: t.Gross, Currency: "IDR",
			Status: t.Status, Method: t.PaymentType, Refunded: t.refunded()})
	}
	return out
}

// Pay completes a transaction awaiting the customer (id is the
// transaction id or the order id): success settles it (a 3-D Secure card
// is captured, or authorized when manual; a captured card settles);
// failure denies a card and fails anything else; expire expires it. The
// signed notification is posted before Pay returns.
func (b *Backend) Pay(ctx context.Context, id string, o sim.Outcome) error {
	b.mu.Lock()
	t := b.lookup(id)
	if t == nil {
		b.mu.Unlock()
		return sim.ErrNotFound
	}
	now := b.opts.Now()
	switch {
	case t.Status == "capture" && o == sim.OutcomeSuccess:
		t.Status, t.StatusCode, t.StatusMessage, t.Settled = "settlement", "200", "Success, transaction is found", now
	case t.Status != "pending":
		b.mu.Unlock()
		return sim.ErrNotPayable
	case o == sim.OutcomeSuccess && t.Card3DS && t.Manual:
		t.Status, t.StatusCode, t.ChannelCode = "authorize", "200", "00"
	case o == sim.OutcomeSuccess && t.Card3DS:
		t.Status, t.StatusCode, t.ChannelCode, t.Captured = "capture", "200", "00", t.Gross
	case o == sim.OutcomeSuccess:
		t.Status, t.StatusCode, t.Settled = "settlement", "200", now
	case o == sim.OutcomeFailure && t.PaymentType == "credit_card":
		t.Status, t.StatusCode, t.ChannelCode = "deny", "202", "05"
	case o == sim.OutcomeFailure:
		t.Status, t.StatusCode = "failure", "202"
	case o == sim.OutcomeExpire:
		t.Status, t.StatusCode = "expire", "407"
	}
	t.StatusMessage = "midtrans payment notification"
	note := b.notificationBody(t)
	b.mu.Unlock()
	if b.opts.Notifier == nil {
		return nil
	}
	return b.opts.Notifier.Post(ctx, notifyHeader(), note)
}

var _ sim.Backend = (*Backend)(nil)

func uuid() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Page implements sim.Pager: e-wallet pages return to the charge's
// callback_url with order_id and result, as Midtrans' deeplink flow does.
func (b *Backend) Page(id string) (sim.Page, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.lookup(id)
	if t == nil {
		return sim.Page{}, false
	}
	pg := sim.Page{Amount: t.Gross, Currency: "IDR", State: sim.PagePending}
	if t.PaymentType == "qris" || t.PaymentType == "gopay" {
		pg.QRString = qrString(t.ID, t.Gross)
	}
	result := ""
	switch t.Status {
	case "settlement", "capture", "authorize":
		pg.State, result = sim.PagePaid, "success"
	case "deny", "failure":
		pg.State, result = sim.PageFailed, "failure"
	case "expire":
		pg.State, result = sim.PageExpired, "failure"
	case "cancel":
		pg.State, result = sim.PageCanceled, "failure"
	}
	if result != "" && t.CallbackURL != "" {
		pg.ReturnURL = sim.WithQuery(t.CallbackURL, "order_id", t.OrderID, "result", result)
	}
	return pg, true
}

var _ sim.Settler = (*Backend)(nil)

// SettlementFormat: Midtrans's dashboard settlement export.
func (b *Backend) SettlementFormat() string { return "midtrans" }

// SettlementLines lists what Midtrans would settle: every captured or
// settled transaction (the captured amount, so a partial capture settles
// what was captured) at its creation time, and every refund at its own.
func (b *Backend) SettlementLines() []sim.SettlementLine {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []sim.SettlementLine
	for _, id := range b.order {
		t := b.txs[id]
		amount := t.Captured
		switch t.Status {
		case "capture", "settlement", "refund", "partial_refund", "chargeback", "partial_chargeback":
			if amount == 0 {
				amount = t.Gross
			}
		default:
			amount = 0
		}
		if amount == 0 {
			continue
		}
		method := map[string]string{"credit_card": "card", "echannel": "bank_transfer"}[t.PaymentType]
		if method == "" {
			method = t.PaymentType
		}
		out = append(out, sim.SettlementLine{ProviderPaymentID: t.ID, OrderID: t.OrderID, Type: "payment", Method: method,
			Currency: "IDR", Amount: amount, At: t.Created})
		for _, rf := range t.Refunds {
			out = append(out, sim.SettlementLine{ProviderPaymentID: t.ID, OrderID: t.OrderID, RefundID: rf.Key, Type: "refund",
				Method: method, Currency: "IDR", Amount: rf.Amount, At: rf.CreatedAt})
		}
	}
	return out
}
