package recon

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/payrouter/payrouter"
)

// Access is the ops API's authentication and role check, supplied by the
// ops package when it mounts this handler: it returns the caller's ops key
// id, or writes the 401/403 JSON error itself and returns false. operator
// is true for the calls that need the operator role (start a run,
// acknowledge or resolve a line); reads need viewer.
type Access func(w http.ResponseWriter, r *http.Request, operator bool) (actor string, ok bool)

// Handler serves the reconciliation endpoints of the ops API (DESIGN
// "Wave 2 contracts"), with their full paths:
//
//	POST /ops/v1/reconciliation/runs                       {provider, from, to, settle_after?, reason}
//	GET  /ops/v1/reconciliation/runs?provider=…&limit=…    {data: [run without lines]}
//	GET  /ops/v1/reconciliation/runs/{id}                  run with lines
//	POST /ops/v1/reconciliation/runs/{id}/lines/{n}/acknowledge  {reason}
//	POST /ops/v1/reconciliation/runs/{id}/lines/{n}/resolve      {reason}
//	GET  /ops/v1/reconciliation/runs/{id}/{report.csv|totals.csv|report.json|report.xlsx}
//
// A new run is 201 (computed before the answer: status done or failed);
// the same provider and period again is 200 with the stored run. Errors are
// the API v1 JSON errors.
func (s *Service) Handler(access Access) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ops/v1/reconciliation/runs", func(w http.ResponseWriter, r *http.Request) {
		actor, ok := access(w, r, true)
		if !ok {
			return
		}
		var body struct {
			Provider    string `json:"provider"`
			From        string `json:"from"`
			To          string `json:"to"`
			SettleAfter string `json:"settle_after"`
			Reason      string `json:"reason"`
		}
		if err := decodeStrict(r.Body, &body); err != nil {
			writeErr(w, err)
			return
		}
		req := StartRequest{Provider: body.Provider, Actor: actor, Reason: body.Reason}
		var err error
		if req.From, err = time.Parse(time.RFC3339, body.From); err != nil {
			writeErr(w, invalid("from", "must be an RFC 3339 time"))
			return
		}
		if req.To, err = time.Parse(time.RFC3339, body.To); err != nil {
			writeErr(w, invalid("to", "must be an RFC 3339 time"))
			return
		}
		if body.SettleAfter != "" {
			d, err := time.ParseDuration(body.SettleAfter)
			if err != nil {
				writeErr(w, invalid("settle_after", "must be a duration such as 72h"))
				return
			}
			req.SettleAfter = &d
		}
		if body.Reason == "" {
			writeErr(w, invalid("reason", "is required"))
			return
		}
		run, created, err := s.Start(r.Context(), req)
		if err != nil {
			writeErr(w, err)
			return
		}
		v, err := View(run, true, s.now())
		if err != nil {
			writeErr(w, err)
			return
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		writeJSON(w, status, v)
	})
	mux.HandleFunc("GET /ops/v1/reconciliation/runs", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := access(w, r, false); !ok {
			return
		}
		limit := 0
		if l := r.URL.Query().Get("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil || n < 1 || n > 1000 {
				writeErr(w, invalid("limit", "must be an integer between 1 and 1000"))
				return
			}
			limit = n
		}
		runs, err := s.List(r.Context(), r.URL.Query().Get("provider"), limit)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": runs})
	})
	mux.HandleFunc("GET /ops/v1/reconciliation/runs/{id}", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := access(w, r, false); !ok {
			return
		}
		v, err := s.Get(r.Context(), r.PathValue("id"))
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
	mux.HandleFunc("GET /ops/v1/reconciliation/runs/{id}/{file}", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := access(w, r, false); !ok {
			return
		}
		type export struct {
			ctype string
			write func(*Report, io.Writer) error
		}
		ex, ok := map[string]export{
			"report.csv":  {"text/csv; charset=utf-8", (*Report).WriteCSV},
			"totals.csv":  {"text/csv; charset=utf-8", (*Report).WriteTotalsCSV},
			"report.json": {"application/json", (*Report).WriteJSON},
			"report.xlsx": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (*Report).WriteXLSX},
		}[r.PathValue("file")]
		if !ok {
			writeErr(w, payrouter.ErrNotExist)
			return
		}
		run, err := s.Store.GetReconRun(r.Context(), r.PathValue("id"))
		if err != nil {
			writeErr(w, err)
			return
		}
		rep, err := ReportOf(run, s.now())
		if err != nil {
			writeErr(w, err)
			return
		}
		var buf bytes.Buffer
		if err := ex.write(rep, &buf); err != nil {
			writeErr(w, err)
			return
		}
		w.Header().Set("Content-Type", ex.ctype)
		w.Header().Set("Content-Disposition", `attachment; filename="`+run.ID+"-"+r.PathValue("file")+`"`)
		_, _ = w.Write(buf.Bytes())
	})
	mux.HandleFunc("POST /ops/v1/reconciliation/runs/{id}/lines/{n}/{action}", func(w http.ResponseWriter, r *http.Request) {
		actor, ok := access(w, r, true)
		if !ok {
			return
		}
		n, err := strconv.Atoi(r.PathValue("n"))
		if err != nil || n < 1 {
			writeErr(w, payrouter.ErrNotExist)
			return
		}
		action := r.PathValue("action")
		if action != "acknowledge" && action != "resolve" {
			writeErr(w, payrouter.ErrNotExist)
			return
		}
		var body struct {
			Reason string `json:"reason"`
		}
		if err := decodeStrict(r.Body, &body); err != nil {
			writeErr(w, err)
			return
		}
		l, err := s.Act(r.Context(), r.PathValue("id"), n, action, body.Reason, actor)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, l)
	})
	return mux
}

const maxOpsBody = 64 << 10

var strictJSON = jsonv2.JoinOptions(jsonv2.RejectUnknownMembers(true), jsonv2.MatchCaseInsensitiveNames(false),
	jsontext.AllowDuplicateNames(false))

// decodeStrict decodes one JSON object: unknown, duplicated or case-varied
// names, trailing data and oversize bodies are invalid_request.
func decodeStrict(r io.Reader, v any) error {
	b, err := io.ReadAll(io.LimitReader(r, maxOpsBody+1))
	if err != nil || len(b) > maxOpsBody {
		return payrouter.Errorf(payrouter.ErrInvalidRequest, "body_invalid", "the body must be a JSON object of at most %d bytes", maxOpsBody)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return payrouter.Errorf(payrouter.ErrInvalidRequest, "body_missing", "a JSON object body is required")
	}
	if err := jsonv2.Unmarshal(b, v, strictJSON); err != nil {
		return payrouter.Errorf(payrouter.ErrInvalidRequest, "body_invalid", "invalid JSON body: %v", err)
	}
	return nil
}

var statusOf = map[payrouter.ErrorType]int{
	payrouter.ErrInvalidRequest: 400, payrouter.ErrAuthentication: 401, payrouter.ErrNotFound: 404,
	payrouter.ErrInvalidState: 409, payrouter.ErrProviderUnavailable: 503, payrouter.ErrInternal: 500,
}

// writeErr is the HTTP layer's one mapping of errors to statuses.
func writeErr(w http.ResponseWriter, err error) {
	var e *payrouter.Error
	switch {
	case errors.Is(err, payrouter.ErrNotExist):
		e = &payrouter.Error{Type: payrouter.ErrNotFound, Code: "resource_missing", Message: "no such reconciliation run or line"}
	case errors.As(err, &e):
	default:
		e = &payrouter.Error{Type: payrouter.ErrInternal, Code: "internal", Message: "internal error"}
	}
	st := statusOf[e.Type]
	if st == 0 {
		st = 500
	}
	writeJSON(w, st, map[string]any{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
