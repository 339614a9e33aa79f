// Package httpapi serves payrouter's merchant API v1, provider webhooks,
// health and metrics. It is the only place that maps errors to HTTP status
// codes, and the only place that logs a request's internal error (once).
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
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
	Store  Store
	Inbox  *inbox.Inbox
	// Keys maps merchant API keys (by digest) to merchant ids.
	Keys *apikey.Set
	// Limiter spends a merchant's request budget; nil: no limit.
	Limiter    RateLimiter
	Log        *slog.Logger
	Ready      Readiness
	Metrics    http.Handler
	OpenAPI    []byte
	ProxyCIDRs []netip.Prefix // server.trusted_proxies: X-Forwarded-For is read past these (inbox.ClientAddr)
	// Explain renders a routing explanation (rules.Explain); nil falls
	// back to the router's plan.
	Explain func(req *router.CreateRequest) any
	// IdempotencyStale is when a still-running idempotent request is
	// presumed dead (its router crashed) and may be taken over.
	IdempotencyStale time.Duration
	// Deliveries requeues merchant webhooks (POST /v1/events/{id}/redeliver);
	// nil answers that route with invalid_state.
	Deliveries Redeliverer
	// Limits bound reading request bodies in time and size (every route).
	Limits BodyLimits
}

// Store is the part of the store the API reads and writes itself: the
// merchants' payments (reads; the router writes), idempotency records,
// the event stream, and readiness.
type Store interface {
	store.Idempotency
	GetPayment(ctx context.Context, merchantID, id string) (*payrouter.Payment, error)
	ListPayments(ctx context.Context, f store.ListFilter) ([]*payrouter.Payment, error)
	ListEvents(ctx context.Context, merchantID string, after int64, limit int) ([]payrouter.Event, error)
	Ping(ctx context.Context) error
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
	return s.bounded(s.vetRequest(jsonMisses(mux)))
}

// jsonMisses answers a path no route matches (404) or a method the path
// does not take (405, with its Allow header) with the API's JSON error
// object under /v1, /ops and /webhooks — not net/http's text/plain.
func jsonMisses(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		p := r.URL.Path
		api := strings.HasPrefix(p, "/v1/") || strings.HasPrefix(p, "/ops/") || strings.HasPrefix(p, "/webhooks/") ||
			p == "/v1" || p == "/ops" || p == "/webhooks"
		if pattern != "" || !api {
			mux.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(&missWriter{ResponseWriter: w, r: r}, r)
	})
}

// missWriter turns net/http's 404/405 text into the JSON error object.
type missWriter struct {
	http.ResponseWriter
	r       *http.Request
	written bool
}

func (m *missWriter) WriteHeader(code int) {
	if m.written {
		return
	}
	m.written = true
	e := &payrouter.Error{Type: payrouter.ErrNotFound, Code: "route_not_found", Message: "no such route: " + m.r.URL.Path}
	if code == http.StatusMethodNotAllowed {
		e = &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "method_not_allowed",
			Message: m.r.Method + " is not allowed on " + m.r.URL.Path + " (allowed: " + m.Header().Get("Allow") + ")"}
	}
	writeJSON(m.ResponseWriter, code, map[string]any{"error": e})
}

func (m *missWriter) Write(b []byte) (int, error) {
	if !m.written {
		m.WriteHeader(http.StatusNotFound)
	}
	return len(b), nil // net/http's text body: replaced by the JSON one
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
	ir, err := s.idempotencyOf(r, req, body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.createIdempotent(w, r, ir, req)
}

// renderPayment is the stored and sent body of a created payment.
func renderPayment(p *payrouter.Payment) ([]byte, error) { return json.Marshal(p) }

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
	amt, reason, err := s.optionalAmount(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ir, err := s.idempotencyOf(r, amountBodyCanon{Amount: amt, Reason: reason}, nil)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	merchant, id := merchantOf(r), r.PathValue("id")
	s.idempotent(w, r, ir, func(ctx context.Context, op router.Op, _ *store.IdempotencyRecord) (int, []byte, error) {
		p, err := s.Router.CaptureOp(ctx, merchant, id, amt, op)
		return render(http.StatusOK, p, err)
	})
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	ir, err := s.idempotencyOf(r, struct{}{}, nil)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	merchant, id := merchantOf(r), r.PathValue("id")
	s.idempotent(w, r, ir, func(ctx context.Context, op router.Op, _ *store.IdempotencyRecord) (int, []byte, error) {
		p, err := s.Router.CancelOp(ctx, merchant, id, op)
		return render(http.StatusOK, p, err)
	})
}

func (s *Server) refund(w http.ResponseWriter, r *http.Request) {
	amt, reason, err := s.optionalAmount(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ir, err := s.idempotencyOf(r, amountBodyCanon{Amount: amt, Reason: reason}, nil)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	merchant, id := merchantOf(r), r.PathValue("id")
	s.idempotent(w, r, ir, func(ctx context.Context, op router.Op, _ *store.IdempotencyRecord) (int, []byte, error) {
		p, ref, err := s.Router.RefundOp(ctx, merchant, id, amt, reason, op)
		if err != nil {
			return 0, nil, err
		}
		return render(http.StatusCreated, map[string]any{"refund": ref, "payment": p}, nil)
	})
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
	ir, err := s.idempotencyOf(r, struct{}{}, nil)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	merchant := merchantOf(r)
	s.idempotent(w, r, ir, func(ctx context.Context, _ router.Op, _ *store.IdempotencyRecord) (int, []byte, error) {
		// Redeliver is idempotent by itself: a resumed run just runs again.
		d, err := s.Deliveries.Redeliver(ctx, merchant, seq)
		if err != nil {
			return 0, nil, err
		}
		out := deliveryJSON{EventID: payrouter.EventID(d.Seq), Status: d.Status, Attempts: d.Attempts,
			LastStatus: d.LastStatus, LastError: d.LastError, DeliveredAt: d.DeliveredAt}
		if d.Status == store.DeliveryPending {
			out.NextAttemptAt = &d.NextAt
		}
		return render(http.StatusAccepted, out, nil)
	})
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
		s.writeError(w, r, &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "body_unreadable", Message: "could not read the request body"})
		return
	}
	res, err := s.Inbox.Receive(r.Context(), r.PathValue("provider"), inbox.ClientAddr(r, s.ProxyCIDRs), r.Header, body)
	if err != nil {
		status, e := webhookError(err)
		if status >= 500 {
			s.Log.Error("webhook failed", "provider", r.PathValue("provider"), "err", err)
		}
		b, _ := json.Marshal(map[string]any{"error": e})
		writeRaw(w, status, b)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": res.Outcome})
}

// webhookError maps an inbox refusal to the status the provider is
// answered with. A refused webhook gets a 4xx (the provider may stop
// retrying: retrying cannot help); a webhook not stored gets a 500 so that
// the provider delivers it again.
func webhookError(err error) (int, *payrouter.Error) {
	var re *inbox.RefusedError
	if !errors.As(err, &re) {
		return http.StatusInternalServerError, &payrouter.Error{Type: payrouter.ErrInternal, Code: "not_stored", Message: "webhook not stored; deliver it again"}
	}
	switch re.Reason {
	case inbox.RefusedUnknownProvider:
		return http.StatusNotFound, &payrouter.Error{Type: payrouter.ErrNotFound, Code: "unknown_provider", Message: "no webhook endpoint for this provider"}
	case inbox.RefusedSender:
		return http.StatusForbidden, &payrouter.Error{Type: payrouter.ErrAuthentication, Code: "sender_not_allowed", Message: "sender not allowed by webhook_ips"}
	case inbox.RefusedSignature:
		return http.StatusUnauthorized, &payrouter.Error{Type: payrouter.ErrAuthentication, Code: "signature_invalid", Message: "webhook signature verification failed"}
	}
	return http.StatusBadRequest, &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "malformed_webhook", Message: "verified webhook is not a notification payrouter can read"}
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
	if errors.Is(err, store.ErrDuplicateReference) {
		return 409, &payrouter.Error{Type: payrouter.ErrIdempotencyConflict, Code: "duplicate_reference", Param: "reference",
			Message: "a payment with this reference already exists"}
	}
	var reused *payrouter.KeyReusedError
	if errors.As(err, &reused) {
		return 422, reused.APIError()
	}
	if !errors.As(err, &e) {
		return 500, &payrouter.Error{Type: payrouter.ErrInternal, Code: "internal", Message: "internal error"}
	}
	st := statusOf[e.Type]
	if e.Code == "body_timeout" {
		st = http.StatusRequestTimeout
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
