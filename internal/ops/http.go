package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/payrouter/payrouter"
)

// Handler serves the JSON ops API under /ops/v1 with ops keys
// (Authorization: Bearer <ops key>); merchant keys get 401 here.
type Handler struct {
	Service *Service
	Keys    *Keys
	Log     *slog.Logger
}

// Mount registers the routes on mux.
func (h *Handler) Mount(mux *http.ServeMux) {
	h.mountRules(mux)
	h.mountProviders(mux)
	h.mountQueues(mux)
}

// mountRules: rule versions, from draft to activation.
func (h *Handler) mountRules(mux *http.ServeMux) {
	s := h.Service
	mux.HandleFunc("GET /ops/v1/rules", h.do(func(r *http.Request, a Actor) (int, any, error) {
		v, err := s.Rules(r.Context(), a)
		return 200, v, err
	}))
	mux.HandleFunc("POST /ops/v1/rules/versions", h.do(func(r *http.Request, a Actor) (int, any, error) {
		var req CreateRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		v, err := s.CreateVersion(r.Context(), a, req)
		return 201, v, err
	}))
	mux.HandleFunc("POST /ops/v1/rules/check", h.do(func(r *http.Request, a Actor) (int, any, error) {
		var req CreateRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		c, err := s.CheckYAML(a, req.YAML)
		return 200, map[string]any{"check": c}, err
	}))
	mux.HandleFunc("GET /ops/v1/rules/versions/{v}", h.do(func(r *http.Request, a Actor) (int, any, error) {
		v, err := s.Version(r.Context(), a, r.PathValue("v"))
		return 200, v, err
	}))
	mux.HandleFunc("POST /ops/v1/rules/versions/{v}/replay", h.do(func(r *http.Request, a Actor) (int, any, error) {
		var req ReplayRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		v, err := s.Replay(r.Context(), a, r.PathValue("v"), req)
		return 200, v, err
	}))
	mux.HandleFunc("POST /ops/v1/rules/versions/{v}/test", h.do(func(r *http.Request, a Actor) (int, any, error) {
		var req CasesRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		v, err := s.TestCases(r.Context(), a, r.PathValue("v"), req)
		return 200, v, err
	}))
	mux.HandleFunc("POST /ops/v1/rules/versions/{v}/shadow", h.do(func(r *http.Request, a Actor) (int, any, error) {
		var req ReasonRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		v, err := s.Shadow(r.Context(), a, r.PathValue("v"), req.Reason)
		return 200, v, err
	}))
	mux.HandleFunc("GET /ops/v1/rules/versions/{v}/shadow", h.do(func(r *http.Request, a Actor) (int, any, error) {
		v, err := s.ShadowReport(r.Context(), a, r.PathValue("v"))
		return 200, v, err
	}))
	mux.HandleFunc("POST /ops/v1/rules/versions/{v}/activate", h.do(func(r *http.Request, a Actor) (int, any, error) {
		var req ReasonRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		v, err := s.Activate(r.Context(), a, r.PathValue("v"), req.Reason)
		return 200, v, err
	}))
}

// mountProviders: provider health, forced-open breakers, adaptive scores.
func (h *Handler) mountProviders(mux *http.ServeMux) {
	s := h.Service
	mux.HandleFunc("GET /ops/v1/adaptive", h.do(func(r *http.Request, a Actor) (int, any, error) {
		d, err := s.Adaptive(r.Context(), a)
		return http.StatusOK, map[string]any{"data": d}, err
	}))
	mux.HandleFunc("GET /ops/v1/providers", h.do(func(r *http.Request, a Actor) (int, any, error) {
		v, err := s.Providers(r.Context(), a)
		return 200, v, err
	}))
	mux.HandleFunc("POST /ops/v1/providers/{name}/breaker", h.do(func(r *http.Request, a Actor) (int, any, error) {
		var req BreakerRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		o, err := s.SetBreaker(r.Context(), a, r.PathValue("name"), req)
		return 200, map[string]any{"provider": r.PathValue("name"), "method": req.Method, "state": req.State, "override": o}, err
	}))
}

// mountQueues: anomalies, payments, deliveries, audit; and the JSON 404.
func (h *Handler) mountQueues(mux *http.ServeMux) {
	s := h.Service
	mux.HandleFunc("GET /ops/v1/anomalies", h.do(func(r *http.Request, a Actor) (int, any, error) {
		v, err := s.Anomalies(r.Context(), a, limit(r))
		return 200, v, err
	}))
	mux.HandleFunc("POST /ops/v1/anomalies/{id}/resolve", h.do(func(r *http.Request, a Actor) (int, any, error) {
		var req ReasonRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			return 0, nil, payrouter.Errorf(payrouter.ErrNotFound, "resource_missing", "no anomaly %q", r.PathValue("id"))
		}
		if err := s.ResolveAnomaly(r.Context(), a, id, req.Reason); err != nil {
			return 0, nil, err
		}
		return 200, map[string]any{"id": id, "status": "resolved"}, nil
	}))
	mux.HandleFunc("GET /ops/v1/payments", h.do(func(r *http.Request, a Actor) (int, any, error) {
		v, err := s.SearchPayments(r.Context(), a, r.URL.Query().Get("q"))
		return 200, v, err
	}))
	mux.HandleFunc("GET /ops/v1/deliveries", h.do(func(r *http.Request, a Actor) (int, any, error) {
		v, err := s.Deliveries(r.Context(), a, r.URL.Query().Get("status"), limit(r))
		return 200, v, err
	}))
	mux.HandleFunc("POST /ops/v1/events/{id}/redeliver", h.do(func(r *http.Request, a Actor) (int, any, error) {
		var req ReasonRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		seq, err := EventSeq(r.PathValue("id"))
		if err != nil {
			return 0, nil, err
		}
		d, err := s.Redeliver(r.Context(), a, seq, req.Reason)
		return 200, d, err
	}))
	mux.HandleFunc("GET /ops/v1/audit", h.do(func(r *http.Request, a Actor) (int, any, error) {
		v, err := s.Audit(r.Context(), a, limit(r))
		return 200, v, err
	}))
	mux.HandleFunc("/ops/", h.do(func(r *http.Request, a Actor) (int, any, error) {
		return 0, nil, payrouter.Errorf(payrouter.ErrNotFound, "route_missing", "no ops route %s %s", r.Method, r.URL.Path)
	}))
}

// EventSeq reads an event id (evt_0000000000000042) or a bare sequence.
func EventSeq(id string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimLeft(strings.TrimPrefix(id, "evt_"), "0"), 10, 64)
	if err != nil || n <= 0 {
		return 0, payrouter.Errorf(payrouter.ErrNotFound, "resource_missing", "no event %q", id)
	}
	return n, nil
}

func limit(r *http.Request) int {
	n, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	return n
}

func (h *Handler) do(fn func(r *http.Request, a Actor) (int, any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		a, found := h.Keys.Authenticate(strings.TrimSpace(tok))
		if !ok || !found {
			WriteError(w, h.Log, &payrouter.Error{Type: payrouter.ErrAuthentication, Code: "invalid_api_key",
				Message: "an ops key is required: Authorization: Bearer <ops key>"})
			return
		}
		status, v, err := fn(r, a)
		if err != nil {
			WriteError(w, h.Log, err)
			return
		}
		writeJSON(w, status, v)
	}
}

// Access authenticates an ops key for a handler mounted beside these
// routes (the reconciliation endpoints, internal/recon): it returns the
// key's id, or writes the 401/403 JSON error and returns false. operator:
// the call needs the operator role, else viewer.
func (h *Handler) Access(w http.ResponseWriter, r *http.Request, operator bool) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	a, found := h.Keys.Authenticate(strings.TrimSpace(tok))
	if !ok || !found {
		WriteError(w, h.Log, &payrouter.Error{Type: payrouter.ErrAuthentication, Code: "invalid_api_key",
			Message: "an ops key is required: Authorization: Bearer <ops key>"})
		return "", false
	}
	need := Viewer
	if operator {
		need = Operator
	}
	if a.Role < need {
		WriteError(w, h.Log, &payrouter.Error{Type: ErrForbidden, Code: "forbidden",
			Message: fmt.Sprintf("ops key %s is %s; this needs %s", a.ID, a.Role, need)})
		return "", false
	}
	return a.ID, true
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return payrouter.Errorf(payrouter.ErrInvalidRequest, "invalid_json", "request body: %v", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// StatusOf maps an error to its HTTP status: the one place ops errors
// become statuses (the console uses it too).
func StatusOf(err error) int {
	var ce *CheckError
	if errors.As(err, &ce) {
		return http.StatusUnprocessableEntity
	}
	if errors.Is(err, context.Canceled) {
		return 499
	}
	switch payrouter.ErrorTypeOf(err) {
	case payrouter.ErrInvalidRequest:
		return 400
	case payrouter.ErrAuthentication:
		return 401
	case ErrForbidden:
		return 403
	case payrouter.ErrNotFound:
		return 404
	case payrouter.ErrInvalidState:
		return 409
	}
	return 500
}

// WriteError writes err as the API's JSON error; internal errors are
// logged here, once, and not shown.
func WriteError(w http.ResponseWriter, log *slog.Logger, err error) {
	status := StatusOf(err)
	var ce *CheckError
	if errors.As(err, &ce) {
		writeJSON(w, status, map[string]any{
			"error": &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "rules_invalid", Message: ce.Error()},
			"check": ce.Check})
		return
	}
	var pe *payrouter.Error
	if !errors.As(err, &pe) || status == 500 {
		if log != nil {
			log.Error("ops request failed", "err", err)
		}
		pe = &payrouter.Error{Type: payrouter.ErrInternal, Code: "internal", Message: "internal error"}
	}
	writeJSON(w, status, map[string]any{"error": pe})
}
