// Package stripesim is a stateful in-memory simulator of the part of the
// Stripe API payrouter uses: PaymentIntents (create/confirm, retrieve,
// search, capture, cancel), Refunds and BalanceTransactions, with Stripe's
// form-encoded requests, JSON shapes, error shapes and status codes,
// Idempotency-Key replay, API-key auth and signed webhooks
// (Stripe-Signature, HMAC-SHA256 via stripe-go's webhook package).
//
// Amounts are Stripe units throughout (IDR two-decimal). Test payment
// methods: pm_card_visa, tok_visa, tok_sandbox_success succeed;
// pm_card_chargeDeclined, tok_chargeDeclined, tok_sandbox_decline decline
// (generic_decline); pm_card_chargeDeclinedInsufficientFunds,
// tok_chargeDeclinedInsufficientFunds, tok_sandbox_insufficient_funds
// decline with insufficient_funds; pm_card_threeDSecure2Required,
// tok_threeDSecure2Required, tok_sandbox_3ds require a redirect the customer
// completes through Pay (the sim core's /_pay and /checkout pages).
package stripesim

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/payrouter/payrouter/internal/sim"
)

// APIVersion is the API version the simulator speaks and stamps on events.
const APIVersion = "2023-10-16"

// Options configures a simulator.
type Options struct {
	// SecretKey, when set, is the only API key accepted. When empty any key
	// starting with sk_test_ or sk_sandbox_ is accepted (a sandbox with no
	// configuration still refuses live or malformed keys).
	SecretKey string
	// WebhookSecret signs webhooks (Stripe-Signature).
	WebhookSecret string
	// Notifier posts webhooks; nil drops them.
	Notifier *sim.Notifier
	// PublicURL is the absolute base of /sim/stripe, for next_action URLs.
	PublicURL string
	// Now is the clock (nil = time.Now).
	Now func() time.Time
}

// Backend is the Stripe simulator; it implements sim.Backend.
type Backend struct {
	opts Options
	mux  *http.ServeMux
	idem sim.Idempotency

	mu      sync.Mutex
	seq     int
	intents map[string]*intent
	order   []string // intent ids, creation order
	refunds map[string]*refund
	bts     []*balanceTxn

	// Webhooks caused by API calls are delivered in order by one goroutine
	// at a time, started on demand, so API latency never includes them.
	qmu      sync.Mutex
	queue    []queued
	draining bool
	wg       sync.WaitGroup
}

type queued struct {
	header http.Header
	body   []byte
}

var _ sim.Backend = (*Backend)(nil)

type intent struct {
	seq                int
	ID                 string
	Amount             int64
	Currency           string
	Status             string
	CaptureMethod      string
	AmountCapturable   int64
	AmountReceived     int64
	AmountRefunded     int64
	LatestCharge       string
	Metadata           map[string]string
	Description        string
	PaymentMethod      string
	ReturnURL          string
	CancellationReason string
	LastPaymentError   map[string]any
	Created            int64
	held               bool // was ever authorised, charged or awaiting the customer
}

type refund struct {
	seq           int
	ID            string
	Amount        int64
	Currency      string
	PaymentIntent string
	Charge        string
	Status        string
	Reason        string
	Metadata      map[string]string
	Created       int64
}

type balanceTxn struct {
	ID       string
	Amount   int64
	Fee      int64
	Currency string
	Type     string
	Source   string // ch_… or re_…
	Created  int64
}

// New builds a simulator.
func New(opts Options) *Backend {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	b := &Backend{opts: opts, intents: map[string]*intent{}, refunds: map[string]*refund{}}
	m := http.NewServeMux()
	m.HandleFunc("POST /v1/payment_intents", b.post(b.create))
	m.HandleFunc("GET /v1/payment_intents/search", b.authed(b.search))
	m.HandleFunc("GET /v1/payment_intents/{id}", b.authed(b.retrieve))
	m.HandleFunc("POST /v1/payment_intents/{id}/confirm", b.post(b.confirm))
	m.HandleFunc("POST /v1/payment_intents/{id}/capture", b.post(b.capture))
	m.HandleFunc("POST /v1/payment_intents/{id}/cancel", b.post(b.cancel))
	m.HandleFunc("POST /v1/refunds", b.post(b.createRefund))
	m.HandleFunc("GET /v1/refunds/{id}", b.authed(b.retrieveRefund))
	m.HandleFunc("GET /v1/refunds", b.authed(b.listRefunds))
	m.HandleFunc("GET /v1/balance_transactions", b.authed(b.listBalance))
	m.HandleFunc("GET /v1/payouts", b.authed(b.listPayouts))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, apiErr(404, "invalid_request_error", "", "Unrecognized request URL ("+r.Method+": "+r.URL.Path+").", ""))
	})
	b.mux = m
	return b
}

// ServeHTTP serves the Stripe wire API (paths without the /sim/stripe prefix).
func (b *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Request-Id", "req_"+randID(14))
	w.Header().Set("Stripe-Version", APIVersion)
	if r.URL.Path == "/_settlement_faults" && r.Method == http.MethodPost {
		b.handleSettlementFault(w, r) // control API: no Stripe auth
		return
	}
	b.mux.ServeHTTP(w, r)
}

// Wait blocks until every queued webhook has been delivered (or given up).
func (b *Backend) Wait() { b.wg.Wait() }

// Flush implements sim.Flusher. It polls rather than waiting on wg: a
// handler may still be queueing, and a WaitGroup's Add from zero must not
// race its Wait. The queue is empty and its last post done when the drainer
// has stopped.
func (b *Backend) Flush() {
	for {
		b.qmu.Lock()
		idle := !b.draining
		b.qmu.Unlock()
		if idle {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// ---- auth, idempotency, request parsing ----

type stripeError struct {
	status int
	body   map[string]any
}

func apiErr(status int, typ, code, msg, param string) *stripeError {
	e := map[string]any{"type": typ, "message": msg}
	if code != "" {
		e["code"] = code
	}
	if param != "" {
		e["param"] = param
	}
	return &stripeError{status: status, body: e}
}

func writeErr(w http.ResponseWriter, e *stripeError) {
	sim.WriteJSON(w, e.status, map[string]any{"error": e.body})
}

func (e *stripeError) replay() *sim.Replay {
	return sim.JSONReplay(e.status, map[string]any{"error": e.body})
}

// authenticate checks the API key as Stripe does: Bearer or Basic (key as
// user name). The key is never echoed back.
func (b *Backend) authenticate(r *http.Request) *stripeError {
	var key string
	if u, _, ok := r.BasicAuth(); ok {
		key = u
	} else if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
		key = strings.TrimPrefix(a, "Bearer ")
	}
	if key == "" {
		return apiErr(401, "invalid_request_error", "", "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth.", "")
	}
	ok := false
	if b.opts.SecretKey != "" {
		ok = subtle.ConstantTimeCompare([]byte(key), []byte(b.opts.SecretKey)) == 1
	} else {
		ok = (strings.HasPrefix(key, "sk_test_") || strings.HasPrefix(key, "sk_sandbox_")) && len(key) > len("sk_test_")
	}
	if !ok {
		return apiErr(401, "invalid_request_error", "api_key_invalid", "Invalid API Key provided.", "")
	}
	return nil
}

func (b *Backend) authed(h func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if e := b.authenticate(r); e != nil {
			writeErr(w, e)
			return
		}
		h(w, r)
	}
}

// post authenticates, parses the form body and runs h under the request's
// Idempotency-Key. The key's fingerprint is the method, path and the
// canonical (sorted) form, so the same parameters in another order replay
// and other parameters conflict, as at Stripe.
func (b *Backend) post(h func(r *http.Request, f url.Values) *sim.Replay) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if e := b.authenticate(r); e != nil {
			writeErr(w, e)
			return
		}
		raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			writeErr(w, apiErr(400, "invalid_request_error", "", "could not read the request body", ""))
			return
		}
		form, err := url.ParseQuery(string(raw))
		if err != nil {
			writeErr(w, apiErr(400, "invalid_request_error", "", "request body is not form-encoded", ""))
			return
		}
		for k := range r.URL.Query() { // Stripe also reads query parameters
			if _, ok := form[k]; !ok {
				form[k] = r.URL.Query()[k]
			}
		}
		key := r.Header.Get("Idempotency-Key")
		if len(key) > 255 {
			writeErr(w, apiErr(400, "invalid_request_error", "", "Idempotency-Key must be at most 255 characters.", ""))
			return
		}
		if key != "" {
			w.Header().Set("Idempotency-Key", key)
		}
		fp := []byte(r.Method + " " + r.URL.Path + "\n" + form.Encode())
		b.idem.Do(key, fp, w, func() *sim.Replay { return h(r, form) }, func(w http.ResponseWriter) {
			writeErr(w, apiErr(400, "idempotency_error", "idempotency_key_in_use",
				"Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '"+key+"' if you meant to execute a different request.", ""))
		})
	}
}

// metadata collects metadata[k]=v parameters.
func metadata(f url.Values) map[string]string {
	md := map[string]string{}
	for k, v := range f {
		if strings.HasPrefix(k, "metadata[") && strings.HasSuffix(k, "]") && len(v) > 0 {
			md[k[len("metadata["):len(k)-1]] = v[0]
		}
	}
	return md
}

func parseAmount(f url.Values, name string, required bool) (int64, bool, *stripeError) {
	s := f.Get(name)
	if s == "" {
		if required {
			return 0, false, apiErr(400, "invalid_request_error", "parameter_missing", "Missing required param: "+name+".", name)
		}
		return 0, false, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > 99_999_999_999_999 {
		return 0, false, apiErr(400, "invalid_request_error", "parameter_invalid_integer", "Invalid positive integer", name)
	}
	return n, true, nil
}

// zeroDecimal are Stripe's zero-decimal currencies.
var zeroDecimal = map[string]bool{"bif": true, "clp": true, "djf": true, "gnf": true, "jpy": true, "kmf": true, "krw": true,
	"mga": true, "pyg": true, "rwf": true, "ugx": true, "vnd": true, "vuv": true, "xaf": true, "xof": true, "xpf": true}

var knownCurrency = map[string]bool{"usd": true, "eur": true, "sgd": true, "gbp": true, "aud": true, "myr": true, "idr": true,
	"php": true, "thb": true, "jpy": true, "krw": true, "vnd": true, "cad": true, "chf": true, "hkd": true, "nzd": true, "inr": true}

// ---- PaymentIntents ----

func (b *Backend) create(r *http.Request, f url.Values) *sim.Replay {
	amount, _, e := parseAmount(f, "amount", true)
	if e != nil {
		return e.replay()
	}
	cur := f.Get("currency")
	if cur == "" {
		return apiErr(400, "invalid_request_error", "parameter_missing", "Missing required param: currency.", "currency").replay()
	}
	if cur != strings.ToLower(cur) || !knownCurrency[cur] {
		return apiErr(400, "invalid_request_error", "parameter_invalid_string", "Invalid currency: "+cur+".", "currency").replay()
	}
	capture := f.Get("capture_method")
	switch capture {
	case "":
		capture = "automatic"
	case "automatic", "automatic_async", "manual":
	default:
		return apiErr(400, "invalid_request_error", "parameter_invalid_string", "Invalid capture_method.", "capture_method").replay()
	}
	pm, e := paymentMethod(f)
	if e != nil {
		return e.replay()
	}
	if pm != "" && sim.Declined(r.Context()) {
		pm = "pm_card_chargeDeclined"
	}
	if pm != "" {
		if _, ok := outcomeOf(pm); !ok {
			return apiErr(400, "invalid_request_error", "resource_missing", "No such PaymentMethod: '"+pm+"'", "payment_method").replay()
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	pi := &intent{
		seq: b.seq, ID: "pi_" + randID(24), Amount: amount, Currency: cur, CaptureMethod: capture,
		Status: "requires_payment_method", Metadata: metadata(f), Description: f.Get("description"),
		PaymentMethod: pm, ReturnURL: f.Get("return_url"), Created: b.opts.Now().Unix(),
	}
	if pm != "" {
		pi.Status = "requires_confirmation"
	}
	b.intents[pi.ID] = pi
	b.order = append(b.order, pi.ID)
	if f.Get("confirm") == "true" {
		if pm == "" {
			return apiErr(400, "invalid_request_error", "parameter_missing", "You cannot confirm this PaymentIntent because it's missing a payment method.", "payment_method").replay()
		}
		return b.confirmLocked(pi, pm)
	}
	return sim.JSONReplay(200, b.piJSON(pi))
}

// paymentMethod reads payment_method or payment_method_data[card][token].
func paymentMethod(f url.Values) (string, *stripeError) {
	if pm := f.Get("payment_method"); pm != "" {
		return pm, nil
	}
	if tok := f.Get("payment_method_data[card][token]"); tok != "" {
		if t := f.Get("payment_method_data[type]"); t != "" && t != "card" {
			return "", apiErr(400, "invalid_request_error", "parameter_invalid_string", "payment_method_data[type] must be card with a card token.", "payment_method_data[type]")
		}
		return tok, nil
	}
	return "", nil
}

type pmOutcome struct {
	decline string // "" ok, else decline_code
	threeDS bool
}

// outcomeOf says what a test payment method does.
func outcomeOf(pm string) (pmOutcome, bool) {
	switch pm {
	case "pm_card_visa", "pm_card_mastercard", "tok_visa", "tok_mastercard", "tok_sandbox_success":
		return pmOutcome{}, true
	case "pm_card_chargeDeclined", "tok_chargeDeclined", "tok_sandbox_decline":
		return pmOutcome{decline: "generic_decline"}, true
	case "pm_card_chargeDeclinedInsufficientFunds", "tok_chargeDeclinedInsufficientFunds", "tok_sandbox_insufficient_funds":
		return pmOutcome{decline: "insufficient_funds"}, true
	case "pm_card_threeDSecure2Required", "tok_threeDSecure2Required", "tok_sandbox_3ds":
		return pmOutcome{threeDS: true}, true
	}
	return pmOutcome{}, false
}

// confirmLocked confirms pi with pm; b.mu is held.
func (b *Backend) confirmLocked(pi *intent, pm string) *sim.Replay {
	o, ok := outcomeOf(pm)
	if !ok {
		return apiErr(400, "invalid_request_error", "resource_missing", "No such PaymentMethod: '"+pm+"'", "payment_method").replay()
	}
	pi.PaymentMethod = pm
	pi.LastPaymentError = nil
	switch {
	case o.decline != "":
		pi.Status = "requires_payment_method"
		pi.LatestCharge = "ch_" + randID(24) // Stripe records the failed charge
		pi.LastPaymentError = map[string]any{
			"type": "card_error", "code": "card_declined", "decline_code": o.decline,
			"message": declineMessage(o.decline), "charge": pi.LatestCharge,
		}
		b.emitLocked("payment_intent.payment_failed", b.piJSON(pi))
		body := map[string]any{}
		for k, v := range pi.LastPaymentError {
			body[k] = v
		}
		body["payment_intent"] = b.piJSON(pi)
		return sim.JSONReplay(402, map[string]any{"error": body})
	case o.threeDS:
		pi.Status = "requires_action"
		pi.held = true
		b.emitLocked("payment_intent.requires_action", b.piJSON(pi))
	default:
		b.authorizeLocked(pi, pi.Amount)
	}
	return sim.JSONReplay(200, b.piJSON(pi))
}

func declineMessage(code string) string {
	if code == "insufficient_funds" {
		return "Your card has insufficient funds."
	}
	return "Your card was declined."
}

// authorizeLocked moves pi to requires_capture (manual) or succeeded.
func (b *Backend) authorizeLocked(pi *intent, amount int64) {
	pi.held = true
	pi.LatestCharge = "ch_" + randID(24)
	if pi.CaptureMethod == "manual" {
		pi.Status = "requires_capture"
		pi.AmountCapturable = amount
		b.emitLocked("payment_intent.amount_capturable_updated", b.piJSON(pi))
		return
	}
	b.captureLocked(pi, amount)
}

func (b *Backend) captureLocked(pi *intent, amount int64) {
	pi.Status = "succeeded"
	pi.AmountCapturable = 0
	pi.AmountReceived = amount
	b.bts = append(b.bts, &balanceTxn{ID: "txn_" + randID(24), Amount: amount, Fee: fee(amount, pi.Currency),
		Currency: pi.Currency, Type: "charge", Source: pi.LatestCharge, Created: b.opts.Now().Unix()})
	b.emitLocked("payment_intent.succeeded", b.piJSON(pi))
}

// fee is the simulated card fee: 2.9 % (290 bp, half up) plus 30 minor
// units in two-decimal currencies.
func fee(amount int64, cur string) int64 {
	f := (amount*290 + 5000) / 10000
	if !zeroDecimal[cur] && cur != "idr" {
		f += 30
	}
	return f
}

func (b *Backend) lookupLocked(id string) (*intent, *stripeError) {
	pi, ok := b.intents[id]
	if !ok {
		return nil, apiErr(404, "invalid_request_error", "resource_missing", "No such payment_intent: '"+id+"'", "intent")
	}
	return pi, nil
}

func (b *Backend) retrieve(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	pi, e := b.lookupLocked(r.PathValue("id"))
	if e != nil {
		writeErr(w, e)
		return
	}
	sim.WriteJSON(w, 200, b.piJSON(pi))
}

func (b *Backend) confirm(r *http.Request, f url.Values) *sim.Replay {
	b.mu.Lock()
	defer b.mu.Unlock()
	pi, e := b.lookupLocked(r.PathValue("id"))
	if e != nil {
		return e.replay()
	}
	if pi.Status != "requires_payment_method" && pi.Status != "requires_confirmation" {
		return b.unexpectedState(pi, "confirm")
	}
	pm, e := paymentMethod(f)
	if e != nil {
		return e.replay()
	}
	if pm == "" {
		pm = pi.PaymentMethod
	}
	if pm == "" {
		return apiErr(400, "invalid_request_error", "parameter_missing", "You cannot confirm this PaymentIntent because it's missing a payment method.", "payment_method").replay()
	}
	if rt := f.Get("return_url"); rt != "" {
		pi.ReturnURL = rt
	}
	return b.confirmLocked(pi, pm)
}

func (b *Backend) unexpectedState(pi *intent, action string) *sim.Replay {
	e := apiErr(400, "invalid_request_error", "payment_intent_unexpected_state",
		fmt.Sprintf("You cannot %s this PaymentIntent because it has a status of %s.", action, pi.Status), "")
	e.body["payment_intent"] = b.piJSON(pi)
	return e.replay()
}

func (b *Backend) capture(r *http.Request, f url.Values) *sim.Replay {
	b.mu.Lock()
	defer b.mu.Unlock()
	pi, e := b.lookupLocked(r.PathValue("id"))
	if e != nil {
		return e.replay()
	}
	if pi.Status != "requires_capture" {
		return b.unexpectedState(pi, "capture")
	}
	amount, set, e := parseAmount(f, "amount_to_capture", false)
	if e != nil {
		return e.replay()
	}
	if !set {
		amount = pi.AmountCapturable
	}
	if amount > pi.AmountCapturable {
		return apiErr(400, "invalid_request_error", "amount_too_large",
			fmt.Sprintf("The amount to capture (%d) is greater than the amount capturable (%d).", amount, pi.AmountCapturable), "amount_to_capture").replay()
	}
	b.captureLocked(pi, amount)
	return sim.JSONReplay(200, b.piJSON(pi))
}

func (b *Backend) cancel(r *http.Request, f url.Values) *sim.Replay {
	b.mu.Lock()
	defer b.mu.Unlock()
	pi, e := b.lookupLocked(r.PathValue("id"))
	if e != nil {
		return e.replay()
	}
	switch pi.Status {
	case "requires_payment_method", "requires_confirmation", "requires_action", "requires_capture", "processing":
	default:
		return b.unexpectedState(pi, "cancel")
	}
	reason := f.Get("cancellation_reason")
	if reason == "" {
		reason = "requested_by_customer"
	}
	b.cancelLocked(pi, reason)
	return sim.JSONReplay(200, b.piJSON(pi))
}

func (b *Backend) cancelLocked(pi *intent, reason string) {
	pi.Status = "canceled"
	pi.CancellationReason = reason
	pi.AmountCapturable = 0
	b.emitLocked("payment_intent.canceled", b.piJSON(pi))
}

// search supports Stripe's search query language for what payrouter asks:
// clauses metadata['key']:'value' and status:'value' joined by AND.
func (b *Backend) search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("query")
	if q == "" {
		writeErr(w, apiErr(400, "invalid_request_error", "parameter_missing", "Missing required param: query.", "query"))
		return
	}
	type clause struct{ field, key, value string }
	var clauses []clause
	for _, part := range strings.Split(q, " AND ") {
		part = strings.TrimSpace(part)
		field, val, ok := strings.Cut(part, ":")
		if !ok || len(val) < 2 || val[0] != '\'' || val[len(val)-1] != '\'' {
			writeErr(w, apiErr(400, "invalid_request_error", "", "Invalid search query: "+q, "query"))
			return
		}
		val = val[1 : len(val)-1]
		switch {
		case strings.HasPrefix(field, "metadata['") && strings.HasSuffix(field, "']"):
			clauses = append(clauses, clause{"metadata", field[len("metadata['") : len(field)-2], val})
		case field == "status":
			clauses = append(clauses, clause{"status", "", val})
		default:
			writeErr(w, apiErr(400, "invalid_request_error", "", "Unsupported search field in the simulator: "+field, "query"))
			return
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	data := []any{}
	for i := len(b.order) - 1; i >= 0; i-- { // newest first, as Stripe
		pi := b.intents[b.order[i]]
		match := true
		for _, c := range clauses {
			if (c.field == "metadata" && pi.Metadata[c.key] != c.value) || (c.field == "status" && pi.Status != c.value) {
				match = false
				break
			}
		}
		if match {
			data = append(data, b.piJSON(pi))
		}
	}
	sim.WriteJSON(w, 200, map[string]any{"object": "search_result", "url": "/v1/payment_intents/search",
		"has_more": false, "next_page": nil, "data": data})
}

// ---- Refunds ----

func (b *Backend) createRefund(r *http.Request, f url.Values) *sim.Replay {
	amount, set, e := parseAmount(f, "amount", false)
	if e != nil {
		return e.replay()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var pi *intent
	if id := f.Get("payment_intent"); id != "" {
		if pi, e = b.lookupLocked(id); e != nil {
			e.body["param"] = "payment_intent"
			return e.replay()
		}
	} else if ch := f.Get("charge"); ch != "" {
		for _, x := range b.intents {
			if x.LatestCharge == ch && x.Status == "succeeded" {
				pi = x
			}
		}
		if pi == nil {
			return apiErr(404, "invalid_request_error", "resource_missing", "No such charge: '"+ch+"'", "charge").replay()
		}
	} else {
		return apiErr(400, "invalid_request_error", "parameter_missing", "One of the following params should be provided for this request: payment_intent or charge.", "").replay()
	}
	if pi.Status != "succeeded" {
		return apiErr(400, "invalid_request_error", "charge_not_refundable",
			"This PaymentIntent does not have a successful charge to refund.", "payment_intent").replay()
	}
	left := pi.AmountReceived - pi.AmountRefunded
	if left <= 0 {
		return apiErr(400, "invalid_request_error", "charge_already_refunded",
			"Charge "+pi.LatestCharge+" has already been refunded.", "").replay()
	}
	if !set {
		amount = left
	}
	if amount > left {
		return apiErr(400, "invalid_request_error", "amount_too_large",
			fmt.Sprintf("Refund amount (%d) is greater than unrefunded amount on charge (%d)", amount, left), "amount").replay()
	}
	switch reason := f.Get("reason"); reason {
	case "", "duplicate", "fraudulent", "requested_by_customer":
	default:
		return apiErr(400, "invalid_request_error", "parameter_invalid_string", "Invalid reason.", "reason").replay()
	}
	now := b.opts.Now().Unix()
	b.seq++
	rf := &refund{seq: b.seq, ID: "re_" + randID(24), Amount: amount, Currency: pi.Currency, PaymentIntent: pi.ID,
		Charge: pi.LatestCharge, Status: "succeeded", Reason: f.Get("reason"), Metadata: metadata(f), Created: now}
	b.refunds[rf.ID] = rf
	pi.AmountRefunded += amount
	b.bts = append(b.bts, &balanceTxn{ID: "txn_" + randID(24), Amount: -amount, Currency: pi.Currency,
		Type: "refund", Source: rf.ID, Created: now})
	b.emitLocked("charge.refunded", b.chargeJSON(pi))
	b.emitLocked("refund.created", b.refundJSON(rf))
	return sim.JSONReplay(200, b.refundJSON(rf))
}

func (b *Backend) retrieveRefund(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rf, ok := b.refunds[r.PathValue("id")]
	if !ok {
		writeErr(w, apiErr(404, "invalid_request_error", "resource_missing", "No such refund: '"+r.PathValue("id")+"'", "id"))
		return
	}
	sim.WriteJSON(w, 200, b.refundJSON(rf))
}

// listRefunds is GET /v1/refunds, newest first, filtered by payment_intent
// or charge as Stripe does; limit (1–100, default 10) and starting_after
// page through them.
func (b *Backend) listRefunds(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 10
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			writeErr(w, apiErr(400, "invalid_request_error", "parameter_invalid_integer", "Invalid integer: "+s, "limit"))
			return
		}
		limit = n
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var all []*refund
	for _, rf := range b.refunds {
		if pi := q.Get("payment_intent"); pi != "" && rf.PaymentIntent != pi {
			continue
		}
		if ch := q.Get("charge"); ch != "" && rf.Charge != ch {
			continue
		}
		all = append(all, rf)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].seq > all[j].seq })
	if after := q.Get("starting_after"); after != "" {
		for i, rf := range all {
			if rf.ID == after {
				all = all[i+1:]
				break
			}
		}
	}
	more := len(all) > limit
	if more {
		all = all[:limit]
	}
	data := make([]any, 0, len(all))
	for _, rf := range all {
		data = append(data, b.refundJSON(rf))
	}
	sim.WriteJSON(w, 200, map[string]any{"object": "list", "url": "/v1/refunds", "has_more": more, "data": data})
}

// IsRefund reports a refund create (sim.RefundMatcher).
func (b *Backend) IsRefund(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == "/v1/refunds"
}

// ---- Balance transactions ----

func (b *Backend) listBalance(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	bound := func(name string) (int64, bool) {
		s := q.Get("created[" + name + "]")
		if s == "" {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	expand := false
	for k, v := range q {
		if strings.HasPrefix(k, "expand") && len(v) > 0 && v[0] == "data.source" {
			expand = true
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	data := []any{}
	for i := len(b.bts) - 1; i >= 0; i-- {
		t := b.bts[i]
		if po := q.Get("payout"); po != "" && payoutID(t) != po {
			continue
		}
		if n, ok := bound("gte"); ok && t.Created < n {
			continue
		}
		if n, ok := bound("gt"); ok && t.Created <= n {
			continue
		}
		if n, ok := bound("lt"); ok && t.Created >= n {
			continue
		}
		if n, ok := bound("lte"); ok && t.Created > n {
			continue
		}
		var src any = t.Source
		if expand {
			src = b.sourceJSON(t.Source)
		}
		data = append(data, map[string]any{
			"id": t.ID, "object": "balance_transaction", "amount": t.Amount, "fee": t.Fee, "net": t.Amount - t.Fee,
			"currency": t.Currency, "type": t.Type, "reporting_category": reportingCategory(t.Type),
			"status": "available", "created": t.Created, "available_on": t.Created, "source": src,
			"fee_details": feeDetails(t),
		})
	}
	sim.WriteJSON(w, 200, map[string]any{"object": "list", "url": "/v1/balance_transactions", "has_more": false, "data": data})
}

func feeDetails(t *balanceTxn) []any {
	if t.Fee == 0 {
		return []any{}
	}
	return []any{map[string]any{"amount": t.Fee, "currency": t.Currency, "type": "stripe_fee", "description": "Stripe processing fees"}}
}

func reportingCategory(t string) string {
	if t == "refund" {
		return "refund"
	}
	return "charge"
}

func (b *Backend) sourceJSON(id string) any {
	if rf, ok := b.refunds[id]; ok {
		return b.refundJSON(rf)
	}
	for _, pi := range b.intents {
		if pi.LatestCharge == id {
			return b.chargeJSON(pi)
		}
	}
	return id
}

// ---- JSON shapes ----

func (b *Backend) piJSON(pi *intent) map[string]any {
	m := map[string]any{
		"id": pi.ID, "object": "payment_intent", "amount": pi.Amount, "currency": pi.Currency,
		"status": pi.Status, "capture_method": pi.CaptureMethod, "confirmation_method": "automatic",
		"amount_capturable": pi.AmountCapturable, "amount_received": pi.AmountReceived,
		"metadata": copyMap(pi.Metadata), "description": nullable(pi.Description),
		"payment_method_types": []string{"card"}, "livemode": false, "created": pi.Created,
		"client_secret": pi.ID + "_secret_" + "sim", "latest_charge": nullable(pi.LatestCharge),
		"payment_method": nullable(pi.PaymentMethod), "next_action": nil, "last_payment_error": nil,
		"cancellation_reason": nullable(pi.CancellationReason),
	}
	if pi.Status == "requires_action" {
		m["next_action"] = map[string]any{
			"type": "redirect_to_url",
			"redirect_to_url": map[string]any{
				"url":        strings.TrimSuffix(b.opts.PublicURL, "/") + "/checkout/" + pi.ID,
				"return_url": pi.ReturnURL,
			},
		}
	}
	if pi.LastPaymentError != nil {
		m["last_payment_error"] = pi.LastPaymentError
	}
	return m
}

func (b *Backend) chargeJSON(pi *intent) map[string]any {
	var refunds []any
	var ids []*refund
	for _, rf := range b.refunds {
		if rf.PaymentIntent == pi.ID {
			ids = append(ids, rf)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].seq > ids[j].seq }) // newest first, as Stripe lists
	for _, rf := range ids {
		refunds = append(refunds, b.refundJSON(rf))
	}
	if refunds == nil {
		refunds = []any{}
	}
	return map[string]any{
		"id": pi.LatestCharge, "object": "charge", "amount": pi.Amount, "amount_captured": pi.AmountReceived,
		"amount_refunded": pi.AmountRefunded, "currency": pi.Currency, "payment_intent": pi.ID,
		"captured": pi.AmountReceived > 0, "refunded": pi.AmountRefunded >= pi.AmountReceived && pi.AmountReceived > 0,
		"paid": pi.AmountReceived > 0 || pi.AmountCapturable > 0, "status": "succeeded",
		"metadata": copyMap(pi.Metadata), "created": pi.Created, "livemode": false,
		"refunds": map[string]any{"object": "list", "data": refunds, "has_more": false, "url": "/v1/charges/" + pi.LatestCharge + "/refunds"},
	}
}

func (b *Backend) refundJSON(rf *refund) map[string]any {
	return map[string]any{
		"id": rf.ID, "object": "refund", "amount": rf.Amount, "currency": rf.Currency,
		"payment_intent": rf.PaymentIntent, "charge": rf.Charge, "status": rf.Status,
		"reason": nullable(rf.Reason), "metadata": copyMap(rf.Metadata), "created": rf.Created,
	}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ---- sim.Backend ----

// Ledger lists every PaymentIntent that was authorised, charged or awaiting
// the customer, oldest first; amounts in Stripe units.
func (b *Backend) Ledger() []sim.LedgerEntry {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []sim.LedgerEntry
	for _, id := range b.order {
		pi := b.intents[id]
		if !pi.held {
			continue
		}
		out = append(out, sim.LedgerEntry{ID: pi.ID, Reference: pi.Metadata["order_id"], Amount: pi.Amount,
			Currency: strings.ToUpper(pi.Currency), Status: pi.Status, Method: "card", Refunded: pi.AmountRefunded})
	}
	return out
}

// Pay completes a PaymentIntent awaiting 3-D Secure: success authorises
// (manual capture) or charges it, failure returns it to
// requires_payment_method with an authentication error, expire cancels it.
// The webhook is delivered before Pay returns; its error is returned.
func (b *Backend) Pay(ctx context.Context, id string, outcome sim.Outcome) error {
	b.mu.Lock()
	pi, ok := b.intents[id]
	if !ok {
		b.mu.Unlock()
		return sim.ErrNotFound
	}
	if pi.Status != "requires_action" {
		b.mu.Unlock()
		return sim.ErrNotPayable
	}
	var typ string
	switch outcome {
	case sim.OutcomeSuccess:
		pi.LatestCharge = "ch_" + randID(24)
		if pi.CaptureMethod == "manual" {
			pi.Status, pi.AmountCapturable, typ = "requires_capture", pi.Amount, "payment_intent.amount_capturable_updated"
		} else {
			pi.Status, pi.AmountCapturable, pi.AmountReceived, typ = "succeeded", 0, pi.Amount, "payment_intent.succeeded"
			b.bts = append(b.bts, &balanceTxn{ID: "txn_" + randID(24), Amount: pi.Amount, Fee: fee(pi.Amount, pi.Currency),
				Currency: pi.Currency, Type: "charge", Source: pi.LatestCharge, Created: b.opts.Now().Unix()})
		}
	case sim.OutcomeFailure:
		pi.Status, typ = "requires_payment_method", "payment_intent.payment_failed"
		pi.LastPaymentError = map[string]any{"type": "card_error", "code": "payment_intent_authentication_failure",
			"message": "The provided PaymentMethod has failed authentication."}
	case sim.OutcomeExpire:
		pi.Status, pi.CancellationReason, typ = "canceled", "abandoned", "payment_intent.canceled"
	default:
		b.mu.Unlock()
		return fmt.Errorf("unknown outcome %q", outcome)
	}
	body, header := b.eventLocked(typ, b.piJSON(pi))
	b.mu.Unlock()
	return b.opts.Notifier.Post(ctx, header, body)
}

// ---- webhooks ----

// eventLocked builds a signed Stripe event.
func (b *Backend) eventLocked(typ string, obj map[string]any) ([]byte, http.Header) {
	now := b.opts.Now()
	ev := map[string]any{
		"id": "evt_" + randID(24), "object": "event", "api_version": APIVersion, "type": typ,
		"created": now.Unix(), "livemode": false, "pending_webhooks": 1,
		"request": map[string]any{"id": nil, "idempotency_key": nil},
		"data":    map[string]any{"object": obj},
	}
	body, _ := json.Marshal(ev) // maps of JSON values always marshal
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: b.opts.WebhookSecret, Timestamp: now})
	h := http.Header{}
	h.Set("Stripe-Signature", signed.Header)
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	return body, h
}

// emitLocked queues an event caused by an API call for asynchronous,
// in-order delivery; b.mu is held.
func (b *Backend) emitLocked(typ string, obj map[string]any) {
	if b.opts.Notifier == nil || b.opts.Notifier.URL == "" {
		return
	}
	body, h := b.eventLocked(typ, obj)
	b.qmu.Lock()
	b.queue = append(b.queue, queued{header: h, body: body})
	start := !b.draining
	if start {
		b.draining = true
		b.wg.Add(1)
	}
	b.qmu.Unlock()
	if start {
		go b.drain()
	}
}

func (b *Backend) drain() {
	defer b.wg.Done()
	for {
		b.qmu.Lock()
		if len(b.queue) == 0 {
			b.draining = false
			b.qmu.Unlock()
			return
		}
		q := b.queue[0]
		b.queue = b.queue[1:]
		b.qmu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = b.opts.Notifier.Post(ctx, q.header, q.body) // Stripe retries later; the sim gives up
		cancel()
	}
}

// randID returns n base-62 characters from crypto/rand (the modulo bias
// is irrelevant for simulator ids).
func randID(n int) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	buf := make([]byte, n)
	_, _ = rand.Read(buf) // never fails since Go 1.24
	for i, c := range buf {
		buf[i] = alphabet[int(c)%len(alphabet)]
	}
	return string(buf)
}

// Page implements sim.Pager: Stripe's 3-D Secure page returns the customer
// to the PaymentIntent's return_url with payment_intent and
// redirect_status, as Stripe does.
func (b *Backend) Page(id string) (sim.Page, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	pi, ok := b.intents[id]
	if !ok {
		return sim.Page{}, false
	}
	amount := pi.Amount
	if pi.Currency == "idr" {
		amount /= 100 // Stripe's IDR has two decimals; payrouter's none
	}
	pg := sim.Page{Amount: amount, Currency: pi.Currency, State: sim.PagePending}
	redirect := ""
	switch {
	case pi.Status == "succeeded" || pi.Status == "requires_capture":
		pg.State, redirect = sim.PagePaid, "succeeded"
	case pi.Status == "canceled":
		pg.State, redirect = sim.PageCanceled, "failed"
	case pi.LastPaymentError != nil:
		pg.State, redirect = sim.PageFailed, "failed"
	}
	if redirect != "" {
		pg.ReturnURL = sim.WithQuery(pi.ReturnURL, "payment_intent", pi.ID, "redirect_status", redirect)
	}
	return pg, true
}
