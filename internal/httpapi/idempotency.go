package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/router"
)

// Idempotency: one mechanism for every POST under /v1 (create, capture,
// cancel, refunds, redeliver).
//
// A request with an Idempotency-Key claims the key, scoped to merchant +
// method + path, with the fingerprint of its parsed request; the response
// (any status but a 5xx) is stored under it and replayed byte for byte with
// Idempotent-Replayed: true. Another request under the key → 422
// (KeyReusedError); the key still running → 409; a running key whose owner
// died (older than IdempotencyStale) is taken over and the operation
// resumed (router.Op.Resumed), which finishes it instead of doing it twice.
// A request refused before anything was written (validation, no route,
// every provider unavailable before a call, a duplicate reference) and a
// 5xx store nothing: the key stays free for a retry.

// idemRequest is a request's idempotency key and fingerprint.
type idemRequest struct {
	merchant string
	// key is the stored key: "<METHOD> <escaped path> <merchant's key>"
	// (the escaped path has no space, so the scope cannot run into the key).
	key string
	// hash fingerprints the parsed request: "v2:" + hex SHA-256 of the
	// method, path and canonical JSON of the decoded request, so the same
	// JSON with keys reordered or whitespace changed is the same request.
	hash string
	// legacy is the hex SHA-256 of the raw body, the fingerprint records
	// created before v2 carry (creates only); "" when not applicable.
	legacy string
	now    time.Time
}

// maxIdempotencyKey is the longest Idempotency-Key accepted.
const maxIdempotencyKey = 255

// idempotencyOf returns r's idempotency key with the fingerprint of its
// parsed request canon (a value whose JSON encoding is deterministic:
// structs and maps), or nil without an Idempotency-Key. raw is the body
// as sent, for records of the raw-bytes era (nil: none to match).
func (s *Server) idempotencyOf(r *http.Request, canon any, raw []byte) (*idemRequest, error) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		return nil, nil
	}
	if len(key) > maxIdempotencyKey {
		return nil, payrouter.InvalidParam("Idempotency-Key", "must be at most %d characters", maxIdempotencyKey)
	}
	c, err := json.Marshal(canon)
	if err != nil {
		return nil, err
	}
	scope := r.Method + " " + r.URL.EscapedPath()
	sum := sha256.Sum256(append([]byte(scope+"\n"), c...))
	ir := &idemRequest{merchant: merchantOf(r), key: scope + " " + key, hash: "v2:" + hex.EncodeToString(sum[:]), now: time.Now().UTC()}
	if raw != nil {
		sum := sha256.Sum256(raw)
		ir.legacy = hex.EncodeToString(sum[:])
	}
	return ir, nil
}

// matches reports whether rec was stored for this same request.
func (ir *idemRequest) matches(rec *store.IdempotencyRecord) bool {
	return rec.RequestHash == ir.hash || (ir.legacy != "" && rec.RequestHash == ir.legacy)
}

// opKey is the operation's identity for the router: stable across retries
// of this request under this key.
func (ir *idemRequest) opKey() string { return ir.merchant + "\x00" + ir.key + "\x00" + ir.hash }

// idemOp runs an operation and renders its response. op.Resumed when an
// earlier run under the key died (rec is then its record); op.Key is ""
// without an Idempotency-Key. An error is answered (and stored, unless a
// 5xx) as the API error it is.
type idemOp func(ctx context.Context, op router.Op, rec *store.IdempotencyRecord) (status int, body []byte, err error)

// render marshals v as a response with status.
func render(status int, v any, err error) (int, []byte, error) {
	if err != nil {
		return 0, nil, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return 0, nil, err
	}
	return status, b, nil
}

// idempotent runs op under ir (nil: plainly): claim, run, store, answer.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, ir *idemRequest, op idemOp) {
	if ir == nil {
		status, body, err := op(r.Context(), router.Op{}, nil)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeRaw(w, status, body)
		return
	}
	// Not cancelled by the merchant hanging up: a claim committed but
	// reported as cancelled would leave the key running and unowned until
	// it is stale.
	rec, err := s.Store.ClaimIdempotencyKey(context.WithoutCancel(r.Context()), ir.merchant, ir.key, ir.hash, ir.now)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if rec != nil {
		s.idempotentExisting(w, r, ir, rec, op)
		return
	}
	s.runClaimed(w, r, ir, router.Op{Key: ir.opKey()}, nil, op)
}

// idempotentExisting answers a request whose key is already claimed:
// 422 for another request, the stored response, 409 while the first
// request runs — or, when that one is presumed dead, takes the key over
// and resumes the operation.
func (s *Server) idempotentExisting(w http.ResponseWriter, r *http.Request, ir *idemRequest, rec *store.IdempotencyRecord, op idemOp) {
	switch {
	case !ir.matches(rec):
		s.writeError(w, r, &payrouter.KeyReusedError{})
		return
	case !rec.Running():
		w.Header().Set("Idempotent-Replayed", "true")
		writeRaw(w, rec.Status, rec.Body)
		return
	}
	took, err := s.Store.TakeOverIdempotencyKey(context.WithoutCancel(r.Context()), ir.merchant, ir.key, ir.now.Add(-s.IdempotencyStale), ir.now)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !took {
		s.writeError(w, r, &payrouter.Error{Type: payrouter.ErrIdempotencyConflict, Code: "idempotency_key_in_use",
			Message: "a request with this Idempotency-Key is still in progress; retry later"})
		return
	}
	s.runClaimed(w, r, ir, router.Op{Key: ir.opKey(), Resumed: true}, rec, op)
}

// runClaimed runs op for a request holding its key and stores the answer.
// The merchant hanging up does not stop the operation half-way: its
// outcome is stored for the retry.
func (s *Server) runClaimed(w http.ResponseWriter, r *http.Request, ir *idemRequest, o router.Op, rec *store.IdempotencyRecord, op idemOp) {
	status, body, err := op(context.WithoutCancel(r.Context()), o, rec)
	if err != nil {
		s.finishIdempotentError(w, r, ir, err)
		return
	}
	if err := s.Store.CompleteIdempotencyKey(context.WithoutCancel(r.Context()), ir.merchant, ir.key, status, body); err != nil {
		// The answer stands; a retry takes the stale key over and the
		// resumed operation answers the same.
		s.Log.Error("idempotency record not completed", "err", err)
	}
	writeRaw(w, status, body)
}

// finishIdempotentError answers a failed operation whose key this request
// holds: a 5xx or a duplicate reference releases the key, any other error
// is stored for replay.
func (s *Server) finishIdempotentError(w http.ResponseWriter, r *http.Request, ir *idemRequest, err error) {
	status, _ := s.errorStatus(err)
	if status >= 500 || errors.Is(err, store.ErrDuplicateReference) {
		// Not stored: a 5xx may be retried with the key; a duplicate
		// reference says nothing about this key's request (and the
		// reference may become free).
		if rerr := s.Store.ReleaseIdempotencyKey(context.WithoutCancel(r.Context()), ir.merchant, ir.key); rerr != nil {
			s.Log.Error("idempotency key not released", "err", rerr)
		}
		s.writeError(w, r, err)
		return
	}
	buf := s.errorBody(err)
	if cerr := s.Store.CompleteIdempotencyKey(context.WithoutCancel(r.Context()), ir.merchant, ir.key, status, buf); cerr != nil {
		s.Log.Error("idempotency record not completed", "err", cerr)
	}
	writeRaw(w, status, buf)
}

// createIdempotent creates a payment under ir. The fast path claims the
// key in the transaction that creates the payment and stores the response
// in the one that saves its outcome (router.PayIdempotent: two write
// transactions, routing once); everything else is the common mechanism.
func (s *Server) createIdempotent(w http.ResponseWriter, r *http.Request, ir *idemRequest, req *router.CreateRequest) {
	op := s.createOp(req)
	if _, fast := s.Store.(store.PaymentWriter); ir == nil || !fast {
		s.idempotent(w, r, ir, op)
		return
	}
	res, err := s.Router.PayIdempotent(r.Context(), req, &router.Idempotency{MerchantID: ir.merchant, Key: ir.key,
		RequestHash: ir.hash, Now: ir.now, Status: http.StatusCreated, Render: renderPayment})
	switch {
	case err == nil && res.Existing == nil:
		writeRaw(w, http.StatusCreated, res.Body)
	case res.Existing != nil:
		s.idempotentExisting(w, r, ir, res.Existing, op)
	case res.Claimed:
		// The payment exists but its outcome was not saved (the store
		// failed: a 5xx), so the key is released for a retry.
		s.finishIdempotentError(w, r, ir, err)
	default:
		// Refused before anything was written under the key (no route, no
		// provider, duplicate reference): nothing happened, so nothing is
		// stored — unless the key is someone's already (routing differs
		// from the first time, or another request used the key).
		rec, gerr := s.Store.GetIdempotencyKey(r.Context(), ir.merchant, ir.key)
		if gerr == nil {
			s.idempotentExisting(w, r, ir, rec, op)
			return
		}
		s.writeError(w, r, err)
	}
}

// createOp is the create operation for the common mechanism: resumed, it
// answers with the payment the dead run created (linked to its key, or
// found by the reference it holds) — it never pays twice.
func (s *Server) createOp(req *router.CreateRequest) idemOp {
	return func(ctx context.Context, op router.Op, rec *store.IdempotencyRecord) (int, []byte, error) {
		if op.Resumed {
			if p := s.createdBy(ctx, req, rec); p != nil {
				return render(http.StatusCreated, p, nil)
			}
		}
		p, err := s.Router.Pay(ctx, req)
		return render(http.StatusCreated, p, err)
	}
}

// createdBy returns the payment a dead create run made, or nil.
func (s *Server) createdBy(ctx context.Context, req *router.CreateRequest, rec *store.IdempotencyRecord) *payrouter.Payment {
	if rec != nil && rec.PaymentID != "" {
		if p, err := s.Store.GetPayment(ctx, req.MerchantID, rec.PaymentID); err == nil {
			return p
		}
	}
	ps, err := s.Store.ListPayments(ctx, store.ListFilter{MerchantID: req.MerchantID, Reference: req.Reference, Limit: 1})
	if err == nil && len(ps) == 1 && !ps[0].ReferenceReusable() {
		return ps[0]
	}
	return nil
}

// amountBodyCanon is the parsed body of capture and refunds, as
// fingerprinted.
type amountBodyCanon struct {
	Amount int64  `json:"amount"`
	Reason string `json:"reason"`
}
