// Package httpapi serves payrouter's merchant API v1, provider webhooks,
// health and metrics. It is the only place that maps errors to HTTP status
// codes, and the only place that logs a request's internal error (once).
package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/apikey"
	"github.com/payrouter/payrouter/internal/inbox"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/router"
)

// Readiness reports extra readiness details (rules, breakers).
type Readiness func(ctx context.Context) (ok bool, detail map[string]any)

// Server holds the API's dependencies.
type Server struct {
	Router *router.Router
	Store  store.Store
	Inbox  *inbox.Inbox
	// Keys maps merchant API keys (by digest) to merchant ids.
	Keys *apikey.Set
	// Limiter spends a merchant's request budget; nil: no limit.
	Limiter    RateLimiter
	Log        *slog.Logger
	Ready      Readiness
	Metrics    http.Handler
	OpenAPI    []byte
	TrustProxy bool
	// Explain renders a routing explanation (rules.Explain); nil falls
	// back to the router's plan.
	Explain func(req *router.CreateRequest) any
	// IdempotencyStale is when a still-running idempotent request is
	// presumed dead (its router crashed) and may be taken over.
	IdempotencyStale time.Duration
	// Deliveries requeues merchant webhooks (POST /v1/events/{id}/redeliver);
	// nil answers that route with invalid_state.
	Deliveries Redeliverer
}

// RateLimiter is a per-merchant request budget (ratelimit.Limiter).
type RateLimiter interface {
	// Allow spends one request; when refused, retryAfter says when one fits.
	Allow(ctx context.Context, merchantID string) (ok bool, retryAfter time.Duration)
}

// Handler returns the API's routes on mux (sim routes are mounted by the caller).
func (s *Server) Handler(mux *http.ServeMux) http.Handler {
	if s.Keys == nil {
		s.Keys = apikey.NewSet()
	}
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	if s.IdempotencyStale == 0 {
		s.IdempotencyStale = 2 * time.Minute
	}
	mux.HandleFunc("POST /v1/payments", s.auth(s.createPayment))
	mux.HandleFunc("GET /v1/payments", s.auth(s.listPayments))
	mux.HandleFunc("GET /v1/payments/{id}", s.auth(s.getPayment))
	mux.HandleFunc("POST /v1/payments/{id}/capture", s.auth(s.capture))
	mux.HandleFunc("POST /v1/payments/{id}/cancel", s.auth(s.cancel))
	mux.HandleFunc("POST /v1/payments/{id}/refunds", s.auth(s.refund))
	mux.HandleFunc("GET /v1/events", s.auth(s.listEvents))
	mux.HandleFunc("POST /v1/events/{id}/redeliver", s.auth(s.redeliver))
	mux.HandleFunc("POST /v1/routing/explain", s.auth(s.explain))
	mux.HandleFunc("POST /webhooks/{provider}", s.webhook)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.Metrics != nil {
		mux.Handle("GET /metrics", s.Metrics)
	}
	if s.OpenAPI != nil {
		mux.HandleFunc("GET /openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/yaml")
			_, _ = w.Write(s.OpenAPI)
		})
	}
	return mux
}

type ctxKey struct{}

func merchantOf(r *http.Request) string { v, _ := r.Context().Value(ctxKey{}).(string); return v }

// auth resolves the Bearer key to its merchant, then spends one request of
// the merchant's budget. The key is hashed once and looked up by its
// SHA-256 (apikey.Set): the time taken does not depend on how much of a
// key matches, and an expired key is refused like an unknown one.
func (s *Server) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		key, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			if u, _, basic := r.BasicAuth(); basic {
				key, ok = u, true
			}
		}
		var e apikey.Entry
		if ok {
			e, ok = s.Keys.Lookup(key, time.Now())
		}
		if !ok {
			s.writeError(w, r, &payrouter.Error{Type: payrouter.ErrAuthentication, Code: "api_key_invalid", Message: "missing or invalid API key (Authorization: Bearer <key>)"})
			return
		}
		id := e.Owner
		noteMerchant(r.Context(), id)
		if s.Limiter != nil {
			if ok, after := s.Limiter.Allow(r.Context(), id); !ok {
				// Whole seconds, rounded up: Retry-After has no fractions.
				w.Header().Set("Retry-After", strconv.FormatInt(int64(max(1, (after+time.Second-1)/time.Second)), 10))
				s.writeError(w, r, &payrouter.Error{Type: payrouter.ErrRateLimited, Code: "rate_limited",
					Message: "too many requests for this merchant; retry after the Retry-After header's seconds"})
				return
			}
		}
		next(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, id)))
	}
}

func (s *Server) createPayment(w http.ResponseWriter, r *http.Request) {
	merchant := merchantOf(r)
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		s.writeError(w, r, &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "body_unreadable", Message: "could not read the request body"})
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > 255 {
		s.writeError(w, r, payrouter.InvalidParam("Idempotency-Key", "must be at most 255 characters"))
		return
	}
	var b createBody
	if err := decodeBytes(body, &b); err != nil {
		s.writeError(w, r, err)
		return
	}
	req, err := b.toRequest(merchant)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if key == "" {
		p, err := s.Router.Pay(r.Context(), req)
		s.writePayResult(w, r, p, err)
		return
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	now := time.Now().UTC()

	// Fast path: the key is claimed in the transaction that creates the
	// payment and completed in the one that saves its outcome (two write
	// transactions instead of four). Anything else — the key already taken,
	// an error before the payment existed — goes the general way below.
	res, err := s.Router.PayIdempotent(r.Context(), req, &router.Idempotency{MerchantID: merchant, Key: key,
		RequestHash: hash, Now: now, Status: http.StatusCreated, Render: renderPayment})
	switch {
	case err == nil && res.Existing == nil:
		writeRaw(w, http.StatusCreated, res.Body)
		return
	case err != nil && res.Claimed:
		// The payment exists but its outcome was not saved: the store
		// failed (a 5xx), so the key is released for a retry, as below.
		s.finishIdempotentError(w, r, merchant, key, err)
		return
	case err == nil && res.Existing != nil:
		s.idempotentExisting(w, r, merchant, key, hash, now, req, res.Existing)
		return
	}
	s.createIdempotent(w, r, merchant, key, hash, now, req)
}

// renderPayment is the stored and sent body of a created payment.
func renderPayment(p *payrouter.Payment) ([]byte, error) { return json.Marshal(p) }

// createIdempotent is the general idempotent create: claim the key, pay,
// store the response.
func (s *Server) createIdempotent(w http.ResponseWriter, r *http.Request, merchant, key, hash string, now time.Time, req *router.CreateRequest) {
	rec, err := s.Store.ClaimIdempotencyKey(r.Context(), merchant, key, hash, now)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if rec != nil {
		s.idempotentExisting(w, r, merchant, key, hash, now, req, rec)
		return
	}
	s.payClaimed(w, r, merchant, key, req)
}

// idempotentExisting answers a request whose key is already claimed:
// 422 for another body, the stored response, 409 while the first request
// runs — or, when that one is presumed dead, takes the key over.
func (s *Server) idempotentExisting(w http.ResponseWriter, r *http.Request, merchant, key, hash string, now time.Time, req *router.CreateRequest, rec *store.IdempotencyRecord) {
	switch {
	case rec.RequestHash != hash:
		s.writeError(w, r, &payrouter.Error{Type: payrouter.ErrIdempotencyConflict, Code: "idempotency_key_reused", Param: "Idempotency-Key",
			Message: "this Idempotency-Key was used with a different request body"})
		return
	case !rec.Running():
		w.Header().Set("Idempotent-Replayed", "true")
		writeRaw(w, rec.Status, rec.Body)
		return
	}
	took, err := s.Store.TakeOverIdempotencyKey(r.Context(), merchant, key, now.Add(-s.IdempotencyStale), now)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !took {
		s.writeError(w, r, &payrouter.Error{Type: payrouter.ErrIdempotencyConflict, Code: "idempotency_key_in_use",
			Message: "a request with this Idempotency-Key is still in progress; retry later"})
		return
	}
	// The first request's router died. If it created the payment, answer
	// with that payment (the resolver finishes it); never pay twice.
	ps, err := s.Store.ListPayments(r.Context(), store.ListFilter{MerchantID: merchant, Reference: req.Reference, Limit: 1})
	if err == nil && len(ps) == 1 {
		s.finishIdempotent(w, r, merchant, key, http.StatusCreated, ps[0])
		return
	}
	s.payClaimed(w, r, merchant, key, req)
}

// payClaimed pays for a request whose key this request holds and stores the
// response (a 5xx or a duplicate reference releases the key instead).
func (s *Server) payClaimed(w http.ResponseWriter, r *http.Request, merchant, key string, req *router.CreateRequest) {
	p, err := s.Router.Pay(r.Context(), req)
	if err != nil {
		s.finishIdempotentError(w, r, merchant, key, err)
		return
	}
	s.finishIdempotent(w, r, merchant, key, http.StatusCreated, p)
}

// finishIdempotentError answers a failed create whose key this request
// holds: a 5xx or a duplicate reference releases the key, any other error
// is stored for replay.
func (s *Server) finishIdempotentError(w http.ResponseWriter, r *http.Request, merchant, key string, err error) {
	status, _ := s.errorStatus(err)
	if status >= 500 || errors.Is(err, store.ErrDuplicateReference) {
		// Not stored: a 5xx may be retried with the key; a duplicate
		// reference says nothing about this key's request.
		_ = s.Store.ReleaseIdempotencyKey(context.WithoutCancel(r.Context()), merchant, key)
		s.writePayResult(w, r, nil, err)
		return
	}
	buf := s.errorBody(err)
	_ = s.Store.CompleteIdempotencyKey(context.WithoutCancel(r.Context()), merchant, key, status, buf)
	writeRaw(w, status, buf)
}

func (s *Server) finishIdempotent(w http.ResponseWriter, r *http.Request, merchant, key string, status int, p *payrouter.Payment) {
	buf, err := json.Marshal(p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.Store.CompleteIdempotencyKey(context.WithoutCancel(r.Context()), merchant, key, status, buf); err != nil {
		s.Log.Error("idempotency record not completed", "err", err)
	}
	writeRaw(w, status, buf)
}

func (s *Server) writePayResult(w http.ResponseWriter, r *http.Request, p *payrouter.Payment, err error) {
	if errors.Is(err, store.ErrDuplicateReference) {
		err = &payrouter.Error{Type: payrouter.ErrIdempotencyConflict, Code: "duplicate_reference", Param: "reference",
			Message: "a payment with this reference already exists"}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, p)
}

func (s *Server) getPayment(w http.ResponseWriter, r *http.Request) {
	p, err := s.Store.GetPayment(r.Context(), merchantOf(r), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, 200, p)
}

func (s *Server) listPayments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.ListFilter{MerchantID: merchantOf(r), Reference: q.Get("reference"), Before: q.Get("starting_after"), After: q.Get("ending_before")}
	if f.Before != "" && f.After != "" {
		s.writeError(w, r, payrouter.InvalidParam("ending_before", "give starting_after or ending_before, not both"))
		return
	}
	if st := q.Get("status"); st != "" {
		if !payrouter.Status(st).Valid() {
			s.writeError(w, r, payrouter.InvalidParam("status", "%q is not a payment status", st))
			return
		}
		f.Status = payrouter.Status(st)
	}
	limit, err := limitParam(q.Get("limit"), 20, 100)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f.Limit = limit + 1
	ps, err := s.Store.ListPayments(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	more := len(ps) > limit
	if more && f.After != "" {
		ps = ps[1:] // the page nearest the cursor; more lie further ahead
	} else if more {
		ps = ps[:limit]
	}
	if ps == nil {
		ps = []*payrouter.Payment{}
	}
	writeJSON(w, 200, map[string]any{"data": ps, "has_more": more})
}

func limitParam(s string, def, max int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, payrouter.InvalidParam("limit", "must be an integer from 1 to %d", max)
	}
	return n, nil
}

type amountBody struct {
	Amount amount `json:"amount"`
	Reason string `json:"reason"`
}

func (s *Server) optionalAmount(r *http.Request) (int64, string, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return 0, "", err
	}
	var b amountBody
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := decodeBytes(body, &b); err != nil {
			return 0, "", err
		}
	}
	if b.Amount.set && b.Amount.err != nil {
		return 0, "", payrouter.InvalidParam("amount", "%s", b.Amount.err.Error())
	}
	return b.Amount.n, b.Reason, nil
}

func (s *Server) capture(w http.ResponseWriter, r *http.Request) {
	amt, _, err := s.optionalAmount(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.Router.Capture(r.Context(), merchantOf(r), r.PathValue("id"), amt)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, 200, p)
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	p, err := s.Router.Cancel(r.Context(), merchantOf(r), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, 200, p)
}

func (s *Server) refund(w http.ResponseWriter, r *http.Request) {
	amt, reason, err := s.optionalAmount(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p, ref, err := s.Router.Refund(r.Context(), merchantOf(r), r.PathValue("id"), amt, reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, 201, map[string]any{"refund": ref, "payment": p})
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// starting_after and ending_before as on every list; after is the
	// older name of starting_after.
	cursor := func(name string) (int64, bool, error) {
		v := q.Get(name)
		if v == "" {
			return 0, false, nil
		}
		n, err := payrouter.ParseEventID(v)
		if err != nil {
			return 0, false, payrouter.InvalidParam(name, "must be an event id like evt_0000000000000001")
		}
		return n, true, nil
	}
	after, hasAfter, err := cursor("starting_after")
	if err == nil && !hasAfter {
		after, hasAfter, err = cursor("after")
	}
	before, hasBefore, err2 := cursor("ending_before")
	if err = errors.Join(err, err2); err == nil && hasAfter && hasBefore {
		err = payrouter.InvalidParam("ending_before", "give starting_after or ending_before, not both")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit, err := limitParam(q.Get("limit"), 100, 1000)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var evs []payrouter.Event
	if hasBefore {
		bl, ok := s.Store.(eventsBeforeLister)
		if !ok {
			s.writeError(w, r, payrouter.InvalidParam("ending_before", "this store cannot page backwards"))
			return
		}
		evs, err = bl.ListEventsBefore(r.Context(), merchantOf(r), before, limit+1)
	} else {
		evs, err = s.Store.ListEvents(r.Context(), merchantOf(r), after, limit+1)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	more := len(evs) > limit
	if more && hasBefore {
		evs = evs[1:] // the page nearest the cursor; more lie further back
	} else if more {
		evs = evs[:limit]
	}
	if evs == nil {
		evs = []payrouter.Event{}
	}
	writeJSON(w, 200, map[string]any{"data": evs, "has_more": more})
}

// eventsBeforeLister pages events backwards (the SQL stores have it).
type eventsBeforeLister interface {
	ListEventsBefore(ctx context.Context, merchantID string, before int64, limit int) ([]payrouter.Event, error)
}

// Redeliverer queues an event's merchant webhook again (events.Dispatcher).
type Redeliverer interface {
	// Redeliver returns a *payrouter.Error (not_found, invalid_state) or an
	// internal error.
	Redeliver(ctx context.Context, merchantID string, seq int64) (*store.Delivery, error)
}

// deliveryJSON is a delivery as the API shows it.
type deliveryJSON struct {
	EventID       string     `json:"event_id"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	LastStatus    int        `json:"last_status,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	DeliveredAt   *time.Time `json:"delivered_at,omitempty"`
}

func (s *Server) redeliver(w http.ResponseWriter, r *http.Request) {
	seq, err := payrouter.ParseEventID(r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, &payrouter.Error{Type: payrouter.ErrNotFound, Code: "resource_missing", Message: "no such event"})
		return
	}
	if s.Deliveries == nil {
		s.writeError(w, r, &payrouter.Error{Type: payrouter.ErrInvalidState, Code: "webhooks_disabled", Message: "merchant webhook delivery is not running"})
		return
	}
	d, err := s.Deliveries.Redeliver(r.Context(), merchantOf(r), seq)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := deliveryJSON{EventID: payrouter.EventID(d.Seq), Status: d.Status, Attempts: d.Attempts,
		LastStatus: d.LastStatus, LastError: d.LastError, DeliveredAt: d.DeliveredAt}
	if d.Status == store.DeliveryPending {
		out.NextAttemptAt = &d.NextAt
	}
	writeJSON(w, http.StatusAccepted, out)
}

func (s *Server) explain(w http.ResponseWriter, r *http.Request) {
	var b createBody
	if err := decodeJSON(r.Body, &b); err != nil {
		s.writeError(w, r, err)
		return
	}
	req, err := b.toRequest(merchantOf(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.Explain != nil {
		writeJSON(w, 200, s.Explain(req))
		return
	}
	plan, err := s.Router.Explain(req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, 200, plan)
}

func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeJSON(w, 400, map[string]string{"error": "unreadable body"})
		return
	}
	res := s.Inbox.Receive(r.Context(), r.PathValue("provider"), inbox.RemoteAddr(r, s.TrustProxy), r.Header, body)
	if res.Status >= 300 {
		writeJSON(w, res.Status, map[string]string{"error": res.Message})
		return
	}
	writeJSON(w, res.Status, map[string]string{"status": res.Outcome})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	detail := map[string]any{}
	ok := true
	if err := s.Store.Ping(ctx); err != nil {
		ok = false
		detail["store"] = "unreachable"
	} else {
		detail["store"] = "ok"
	}
	if s.Ready != nil {
		more, d := s.Ready(ctx)
		ok = ok && more
		for k, v := range d {
			detail[k] = v
		}
	}
	status := 200
	if !ok {
		status = 503
	}
	detail["ready"] = ok
	writeJSON(w, status, detail)
}

var statusOf = map[payrouter.ErrorType]int{
	payrouter.ErrInvalidRequest: 400, payrouter.ErrAuthentication: 401, payrouter.ErrNotFound: 404,
	payrouter.ErrIdempotencyConflict: 409, payrouter.ErrInvalidState: 409, payrouter.ErrNoRoute: 422,
	payrouter.ErrProviderUnavailable: 503, payrouter.ErrRateLimited: 429, payrouter.ErrInternal: 500,
}

func (s *Server) errorStatus(err error) (int, *payrouter.Error) {
	var e *payrouter.Error
	if errors.Is(err, payrouter.ErrNotExist) {
		return 404, &payrouter.Error{Type: payrouter.ErrNotFound, Code: "resource_missing", Message: "no such payment"}
	}
	if !errors.As(err, &e) {
		return 500, &payrouter.Error{Type: payrouter.ErrInternal, Code: "internal", Message: "internal error"}
	}
	st := statusOf[e.Type]
	if e.Type == payrouter.ErrIdempotencyConflict && e.Code == "idempotency_key_reused" {
		st = 422
	}
	if st == 0 {
		st = 500
	}
	return st, e
}

func (s *Server) errorBody(err error) []byte {
	_, e := s.errorStatus(err)
	b, _ := json.Marshal(map[string]any{"error": e})
	return b
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, _ := s.errorStatus(err)
	if status >= 500 && status != 503 {
		// Logged once, here, without the request body.
		s.Log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeRaw(w, status, s.errorBody(err))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":{"type":"internal","message":"encoding failed"}}`, 500)
		return
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
	_, _ = w.Write([]byte("\n"))
}
