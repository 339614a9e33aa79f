// Package sim is the shared core of payrouter's sandbox provider simulators:
// fault injection, the ledger, idempotent replay, the control API
// (/_faults, /_ledger, /_flush, /_pay/{id}, /checkout/{id}) and webhook delivery.
// Each provider's simulator (internal/sim/stripesim, …) implements Backend
// with that provider's real wire format; Mount wraps it with the rest.
package sim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// LedgerEntry is one charge as the simulator holds it (control API shape).
type LedgerEntry struct {
	ID        string `json:"id"`
	Reference string `json:"reference"`
	Amount    int64  `json:"amount"` // in the provider's own units
	Currency  string `json:"currency"`
	Status    string `json:"status"`
	Method    string `json:"method,omitempty"`
	Refunded  int64  `json:"refunded,omitempty"`
}

// Outcome is what the customer does on the checkout page or via _pay.
type Outcome string

const (
	OutcomeSuccess Outcome = "success"
	OutcomeFailure Outcome = "failure"
	OutcomeExpire  Outcome = "expire"
)

// ErrNotFound is returned by Backend.Pay for an unknown id.
var ErrNotFound = errors.New("no such payment")

// ErrNotPayable is returned by Backend.Pay for a payment not awaiting the customer.
var ErrNotPayable = errors.New("payment is not awaiting the customer")

// Backend is one provider's simulator.
type Backend interface {
	// ServeHTTP serves the provider's wire API; the path has the
	// /sim/{provider} prefix stripped.
	http.Handler
	// Ledger lists every charge, oldest first.
	Ledger() []LedgerEntry
	// Pay completes a payment awaiting the customer with the outcome and
	// sends the provider's signed webhook (through the Notifier).
	Pay(ctx context.Context, id string, outcome Outcome) error
}

// Faults is the fault-injection setting of the control API.
type Faults struct {
	Mode      string  `json:"mode"` // none | down | error | slow | flaky | drop_after_charge | drop_after_refund | decline
	Status    int     `json:"status,omitempty"`
	LatencyMS int     `json:"latency_ms,omitempty"`
	ErrorRate float64 `json:"error_rate,omitempty"` // a probability, not money
}

var modes = map[string]bool{"": true, "none": true, "down": true, "error": true, "slow": true, "flaky": true, "drop_after_charge": true, "drop_after_refund": true, "decline": true}

type declineKey struct{}

// Declined says whether the decline fault picked this request: the
// backend then answers a new charge with its provider's generic (hard)
// decline, as an issuer saying no would.
func Declined(ctx context.Context) bool {
	v, _ := ctx.Value(declineKey{}).(bool)
	return v
}

// Flusher is implemented by backends that deliver webhooks asynchronously:
// Flush returns once every webhook queued so far has been delivered (or
// given up). POST /sim/{p}/_flush calls it; the bench does between its
// phases, so that one side's webhook backlog is not served in the other's.
type Flusher interface {
	Flush()
}

// FlushWithin flushes b (when it is a Flusher) or gives up when ctx ends:
// a receiver that keeps failing makes every queued webhook go through its
// retries, which can take long. (A Flush given up on finishes in the
// background.)
func FlushWithin(ctx context.Context, b Backend) error {
	f, ok := b.(Flusher)
	if !ok {
		return nil
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Flush()
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RefundMatcher is implemented by backends that can tell a refund request
// from the rest: the drop_after_refund fault processes refunds and loses
// their answers while every other request (charges, status and refund
// queries) is served.
type RefundMatcher interface {
	IsRefund(r *http.Request) bool
}

// Sim is one mounted simulator: a Backend plus faults and control routes.
type Sim struct {
	Name    string
	Backend Backend
	// Settlement is the settlement book of a Backend that is a Settler
	// (nil otherwise): faults, fees and payout delay of its reports.
	Settlement *SettlementBook

	mu     sync.Mutex
	faults Faults
	rnd    *rand.Rand
}

// New wraps a backend.
func New(name string, b Backend) *Sim {
	s := &Sim{Name: name, Backend: b, rnd: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))}
	if st, ok := b.(Settler); ok {
		f := st.SettlementFormat()
		s.Settlement = &SettlementBook{Fees: SettleFeesFor(f), OrphanMethod: f, BatchPrefix: strings.ToUpper(f)}
		if f == "midtrans" {
			s.Settlement.OrphanMethod = "qris"
		}
	}
	return s
}

// SetFaults changes the fault mode.
func (s *Sim) SetFaults(f Faults) error {
	if !modes[f.Mode] {
		return fmt.Errorf("unknown mode %q", f.Mode)
	}
	if f.ErrorRate < 0 || f.ErrorRate > 1 {
		return fmt.Errorf("error_rate must be within 0..1")
	}
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
	return nil
}

// Faults returns the current fault setting.
func (s *Sim) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

func (s *Sim) roll(p float64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rnd.Float64() < p
}

// Mount registers the simulator under prefix (e.g. "/sim/stripe").
func (s *Sim) Mount(mux *http.ServeMux, prefix string) {
	prefix = strings.TrimSuffix(prefix, "/")
	mux.HandleFunc("POST "+prefix+"/_faults", s.handleFaults)
	mux.HandleFunc("GET "+prefix+"/_faults", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.Faults()) })
	mux.HandleFunc("GET "+prefix+"/_ledger", func(w http.ResponseWriter, r *http.Request) {
		l := s.Backend.Ledger()
		if l == nil {
			l = []LedgerEntry{}
		}
		writeJSON(w, 200, l)
	})
	if st, ok := s.Backend.(Settler); ok && s.Settlement != nil {
		s.mountSettlement(mux, prefix, st)
	}
	mux.HandleFunc("POST "+prefix+"/_flush", func(w http.ResponseWriter, r *http.Request) {
		if err := FlushWithin(r.Context(), s.Backend); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "webhooks still queued: " + err.Error()})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST "+prefix+"/_pay/{id}", s.handlePay)
	mux.HandleFunc("GET "+prefix+"/checkout/{id}", s.handleCheckout)
	mux.HandleFunc("POST "+prefix+"/checkout/{id}", s.handleCheckoutPost)
	mux.Handle(prefix+"/", http.StripPrefix(prefix, s.withFaults(s.Backend)))
}

func (s *Sim) handleFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		writeJSON(w, 400, map[string]string{"error": err.Error()})
		return
	}
	if err := s.SetFaults(f); err != nil {
		writeJSON(w, 400, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, 200, f)
}

func (s *Sim) handlePay(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Outcome Outcome `json:"outcome"`
	}
	if r.ContentLength != 0 {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeJSON(w, 400, map[string]string{"error": err.Error()})
			return
		}
	}
	if body.Outcome == "" {
		body.Outcome = OutcomeSuccess
	}
	if body.Outcome != OutcomeSuccess && body.Outcome != OutcomeFailure && body.Outcome != OutcomeExpire {
		writeJSON(w, 400, map[string]string{"error": "outcome must be success, failure or expire"})
		return
	}
	s.pay(w, r, body.Outcome)
}

func (s *Sim) pay(w http.ResponseWriter, r *http.Request, o Outcome) {
	err := s.Backend.Pay(r.Context(), r.PathValue("id"), o)
	switch {
	case errors.Is(err, ErrNotFound):
		writeJSON(w, 404, map[string]string{"error": err.Error()})
	case errors.Is(err, ErrNotPayable):
		writeJSON(w, 409, map[string]string{"error": err.Error()})
	case err != nil:
		writeJSON(w, 502, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, 200, map[string]string{"id": r.PathValue("id"), "outcome": string(o)})
	}
}

// Page is what a simulator's checkout page shows of a payment, as the
// provider's own page would: the amount in payrouter's minor units, the
// customer-facing state, the QR payload of a QR flow, and where the
// provider sends the customer once the payment has an outcome.
type Page struct {
	Amount    int64
	Currency  string
	State     PageState
	QRString  string
	ReturnURL string // with the provider's own query parameters
}

// PageState is a payment's state as the customer sees it.
type PageState string

const (
	PagePending  PageState = "pending"
	PagePaid     PageState = "paid"
	PageFailed   PageState = "failed"
	PageExpired  PageState = "expired"
	PageCanceled PageState = "canceled"
)

// Pager is implemented by backends whose checkout page shows the payment
// like the provider's (every simulator of ours); others get the ledger
// entry.
type Pager interface {
	Page(id string) (Page, bool)
}

var checkoutPage = template.Must(template.New("c").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Name}} sandbox checkout</title>
<style>body{font-family:system-ui,sans-serif;max-width:26em;margin:2em auto;padding:0 1em}button,a.b{display:block;width:100%;font-size:1.1em;margin:.4em 0;padding:.7em;text-align:center}.amount{font-size:1.8em;font-weight:bold}svg{width:14em;height:auto}</style></head>
<body><h1>{{.Name}} <small>(sandbox)</small></h1>
<p class="amount" id="amount">{{.Amount}}</p>
<p>Status: <b id="state" data-state="{{.State}}">{{.StateText}}</b></p>
{{with .QR}}<div id="qr">{{.}}</div>{{end}}
{{if eq .State "pending"}}<form method="post"><button name="outcome" value="success" id="pay">Pay</button>
<button name="outcome" value="failure" id="fail">Fail</button>
<button name="outcome" value="expire" id="expire">Let it expire</button></form>
{{else}}{{with .ReturnURL}}<p><a class="b" id="return" href="{{.}}">Back to the merchant</a></p>{{end}}{{end}}
</body></html>`))

var stateText = map[PageState]string{PagePending: "awaiting payment", PagePaid: "paid", PageFailed: "failed", PageExpired: "expired", PageCanceled: "canceled"}

func (s *Sim) page(id string) (Page, bool) {
	if pg, ok := s.Backend.(Pager); ok {
		return pg.Page(id)
	}
	for _, e := range s.Backend.Ledger() {
		if e.ID == id {
			return Page{Amount: e.Amount, Currency: e.Currency, State: PagePending}, true
		}
	}
	return Page{}, false
}

func (s *Sim) handleCheckout(w http.ResponseWriter, r *http.Request) {
	pg, ok := s.page(r.PathValue("id"))
	if !ok {
		http.Error(w, "no such payment", http.StatusNotFound)
		return
	}
	var qr template.HTML
	if pg.QRString != "" && pg.State == PagePending {
		qr = qrSVG(pg.QRString)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	_ = checkoutPage.Execute(w, map[string]any{"Name": s.Name, "ID": r.PathValue("id"), "Amount": money(pg.Amount, pg.Currency),
		"State": pg.State, "StateText": stateText[pg.State], "QR": qr, "ReturnURL": pg.ReturnURL})
}

func (s *Sim) handleCheckoutPost(w http.ResponseWriter, r *http.Request) {
	o := Outcome(r.FormValue("outcome"))
	if o != OutcomeSuccess && o != OutcomeFailure && o != OutcomeExpire {
		http.Error(w, "bad outcome", http.StatusBadRequest)
		return
	}
	id := r.PathValue("id")
	if err := s.Backend.Pay(r.Context(), id, o); err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	// As the provider's page does: back to where the payment said, or
	// this page showing the outcome.
	if pg, ok := s.page(id); ok && pg.ReturnURL != "" {
		http.Redirect(w, r, pg.ReturnURL, http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, r.URL.Path, http.StatusSeeOther)
}

// WithQuery adds provider-style query parameters to a return URL.
func WithQuery(raw string, kv ...string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// withFaults applies the fault mode to wire API requests.
func (s *Sim) withFaults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := s.Faults()
		status := f.Status
		switch f.Mode {
		case "down":
			// Refused before processing: the client can prove nothing happened.
			if status == 0 {
				status = http.StatusServiceUnavailable
			}
			http.Error(w, `{"error":"service unavailable (simulated)"}`, status)
			return
		case "error":
			if f.ErrorRate == 0 || s.roll(f.ErrorRate) {
				if status == 0 {
					status = http.StatusInternalServerError
				}
				http.Error(w, `{"error":"internal error (simulated)"}`, status)
				return
			}
		case "slow":
			if !sleep(r.Context(), time.Duration(f.LatencyMS)*time.Millisecond) {
				return
			}
		case "drop_after_charge":
			if r.Method == http.MethodPost {
				dropAfter(w, r, next)
				return
			}
		case "decline":
			if r.Method == http.MethodPost && (f.ErrorRate == 0 || s.roll(f.ErrorRate)) {
				r = r.WithContext(context.WithValue(r.Context(), declineKey{}, true))
			}
		case "drop_after_refund":
			if m, ok := s.Backend.(RefundMatcher); ok && r.Method == http.MethodPost && m.IsRefund(r) {
				dropAfter(w, r, next)
				return
			}
		case "flaky":
			rate := f.ErrorRate
			if rate == 0 {
				rate = 0.3
			}
			if s.roll(rate) {
				// Half of the faults refuse before processing, half process
				// and lose the answer: both must be survived.
				if r.Method == http.MethodPost && s.roll(0.5) {
					dropAfter(w, r, next)
					return
				}
				http.Error(w, `{"error":"service unavailable (simulated)"}`, http.StatusServiceUnavailable)
				return
			}
		}
		if f.LatencyMS > 0 && f.Mode != "slow" {
			if !sleep(r.Context(), time.Duration(f.LatencyMS)*time.Millisecond) {
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// dropAfter processes the request, then closes the connection without an
// answer: the client cannot tell whether it was charged.
func dropAfter(w http.ResponseWriter, r *http.Request, next http.Handler) {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // HTTP/2 or a test recorder: abort the stream
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteJSON writes v as JSON with the status; simulators share it.
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }

// notifyClient is the Notifiers' default: one pool of kept-alive
// connections. The default transport keeps 2 idle connections per host, so
// concurrent webhooks dialled a new connection for most posts (a tenth of
// the simulators' CPU under load, measured).
var notifyClient = func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 128
	return &http.Client{Timeout: 10 * time.Second, Transport: t}
}()

// Notifier posts a provider's webhook to the router. Delivery is
// synchronous (so _pay returns once the router has the webhook) with a few
// quick retries, like a provider's own retry schedule compressed.
type Notifier struct {
	URL    string // e.g. http://127.0.0.1:8080/webhooks/stripe; empty: drop
	Client *http.Client
}

// Post sends body with headers; it returns the router's last status error.
func (n *Notifier) Post(ctx context.Context, header http.Header, body []byte) error {
	if n == nil || n.URL == "" {
		return nil
	}
	hc := n.Client
	if hc == nil {
		hc = notifyClient
	}
	var last error
	for i := 0; i < 4; i++ {
		if i > 0 && !sleep(ctx, time.Duration(i*i)*50*time.Millisecond) {
			return ctx.Err()
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.URL, bytes.NewReader(body))
		if err != nil {
			return err
		}
		for k, v := range header {
			req.Header[k] = v
		}
		if req.Header.Get("Content-Type") == "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(req)
		if err != nil {
			last = err
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 300 {
			return nil
		}
		last = fmt.Errorf("webhook %s answered %d", n.URL, resp.StatusCode)
		if resp.StatusCode < 500 {
			return last // the router refused it; retrying will not help
		}
	}
	return last
}

// Replay is a recorded response for idempotent replay.
type Replay struct {
	Status int
	Header http.Header
	Body   []byte
	hash   string
}

// Idempotency is a provider-side idempotency-key cache: the same key with
// the same body replays the first response; concurrent requests with one
// key are serialized so only one is processed.
type Idempotency struct {
	mu    sync.Mutex
	keys  map[string]*idemEntry
	order []string
}

type idemEntry struct {
	mu sync.Mutex
	r  *Replay
}

// Do runs fn at most once per key (per body hash). conflict is called when
// the key was used with a different body. A fn response with status ≥ 500 is
// not kept, so a retry runs again.
func (c *Idempotency) Do(key string, body []byte, w http.ResponseWriter, fn func() *Replay, conflict func(w http.ResponseWriter)) {
	if key == "" {
		writeReplay(w, fn())
		return
	}
	sum := sha256.Sum256(body)
	h := hex.EncodeToString(sum[:])
	c.mu.Lock()
	if c.keys == nil {
		c.keys = map[string]*idemEntry{}
	}
	e := c.keys[key]
	if e == nil {
		e = &idemEntry{}
		c.keys[key] = e
		c.order = append(c.order, key)
		if len(c.order) > 100000 { // bounded memory for long bench runs
			delete(c.keys, c.order[0])
			c.order = c.order[1:]
		}
	}
	c.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.r != nil {
		if e.r.hash != h {
			conflict(w)
			return
		}
		w.Header().Set("Idempotent-Replayed", "true")
		writeReplay(w, e.r)
		return
	}
	r := fn()
	if r.Status < 500 {
		r.hash = h
		e.r = r
	}
	writeReplay(w, r)
}

func writeReplay(w http.ResponseWriter, r *Replay) {
	for k, v := range r.Header {
		w.Header()[k] = v
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(r.Status)
	_, _ = w.Write(r.Body)
}

// JSONReplay builds a Replay with a JSON body.
func JSONReplay(status int, v any) *Replay {
	b, _ := json.Marshal(v)
	return &Replay{Status: status, Body: b}
}

// SortLedger sorts entries by creation sequence held in order.
func SortLedger(l []LedgerEntry, seq func(id string) int) {
	sort.SliceStable(l, func(i, j int) bool { return seq(l[i].ID) < seq(l[j].ID) })
}
