package stripe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	stripeapi "github.com/stripe/stripe-go/v76"

	"github.com/payrouter/payrouter/providers"
)

// callRecord remembers the HTTP status and headers of the response to one
// adapter call. stripe-go turns a non-Stripe error body (a proxy's 503 page,
// a gateway's 502) into a plain error that has lost the status; the record
// lets classify still tell "refused before processing" from "unknown".
type callRecord struct {
	mu     sync.Mutex
	status int
	header http.Header
}

type callRecordKey struct{}

func (r *callRecord) with(ctx context.Context) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithValue(ctx, callRecordKey{}, r)
}

func (r *callRecord) get() (int, http.Header) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status, r.header
}

// recordingTransport fills the callRecord carried by the request context.
type recordingTransport struct{ next http.RoundTripper }

func (t *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if resp != nil {
		if rec, ok := req.Context().Value(callRecordKey{}).(*callRecord); ok {
			rec.mu.Lock()
			rec.status, rec.header = resp.StatusCode, resp.Header
			rec.mu.Unlock()
		}
	}
	return resp, err
}

// classify maps any error from a stripe-go call to a *providers.Error,
// modelled on stripe-go's own shouldRetry:
//
//   - card_error (402): Declined, Code card_declined or the issuer's decline
//     code, ProviderCode the decline code (or error code).
//   - 401, 403: Unavailable "credentials_refused" — our key is wrong or
//     lacks a permission: nothing was processed, fail over, and tell ops.
//   - idempotency_error: Invalid "idempotency_conflict" (same key, other
//     parameters).
//   - 409 (idempotency key in use: the first request is still running):
//     Ambiguous — its outcome is not known yet.
//   - 429 (rate limit, or lock_timeout which Stripe says is safe to retry
//     with the same key) and 503: Unavailable, not processed.
//   - other 5xx / api_error: Ambiguous, unless Stripe-Should-Retry: false
//     says a retry cannot change anything — then Unavailable.
//   - other 4xx / invalid_request_error: Invalid; 404 resource_missing has
//     Code "not_found".
//   - no Stripe error: a response status if one arrived (ClassifyHTTP),
//     else the transport classification (dial → Unavailable, timeout,
//     reset, EOF → Ambiguous).
//
// The Stripe error itself is not wrapped: its JSON form can embed the
// PaymentIntent with its client secret, which must not reach a log line.
func classify(err error, rec *callRecord) error {
	if err == nil {
		return nil
	}
	var se *stripeapi.Error
	if errors.As(err, &se) {
		return classifyStripe(se)
	}
	status, _ := rec.get()
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		return providers.CredentialsRefused(status, "", "Stripe refused the secret key (HTTP %d)", status)
	}
	if status >= 400 {
		return &providers.Error{
			Class:      providers.ClassifyHTTP(status),
			Code:       httpCode(status),
			HTTPStatus: status,
			Message:    fmt.Sprintf("Stripe answered %d without a Stripe error body", status),
		}
	}
	pe := providers.ClassifyTransport(err)
	if status != 0 && pe.Class == providers.Ambiguous {
		// A 2xx whose body could not be read or decoded: it was processed.
		pe.HTTPStatus = status
	}
	if pe.Message == "" {
		pe.Message = "stripe request failed"
	}
	return pe
}

func httpCode(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication"
	case status == http.StatusTooManyRequests:
		return "rate_limited"
	case status == http.StatusServiceUnavailable:
		return "service_unavailable"
	case status >= 500:
		return "server_error"
	}
	return fmt.Sprintf("http_%d", status)
}

func classifyStripe(se *stripeapi.Error) *providers.Error {
	e := &providers.Error{
		HTTPStatus:   se.HTTPStatusCode,
		ProviderCode: string(se.Code),
		Message:      se.Msg,
		Err:          fmt.Errorf("stripe %s (request %s)", se.Type, se.RequestID),
	}
	var shouldRetry string
	if se.LastResponse != nil && se.LastResponse.Header != nil {
		shouldRetry = se.LastResponse.Header.Get("Stripe-Should-Retry")
	}
	switch {
	case se.Type == stripeapi.ErrorTypeCard:
		e.Class = providers.Declined
		e.Code, e.ProviderCode = declineCodes(se)
	case se.HTTPStatusCode == http.StatusUnauthorized || se.HTTPStatusCode == http.StatusForbidden:
		// Stripe sends 401 as invalid_request_error: a bad key; 403 is a
		// restricted key without the permission. Our configuration.
		e.Class, e.Code = providers.Unavailable, providers.CodeCredentialsRefused
	case se.Type == stripeapi.ErrorTypeIdempotency:
		e.Class, e.Code = providers.Invalid, "idempotency_conflict"
	case se.HTTPStatusCode == http.StatusConflict:
		// idempotency_key_in_use: a request with this key is still being
		// processed; its outcome is unknown.
		e.Class, e.Code = providers.Ambiguous, "idempotency_key_in_use"
	case se.HTTPStatusCode == http.StatusTooManyRequests:
		e.Class, e.Code = providers.Unavailable, "rate_limited"
		if se.Code == stripeapi.ErrorCodeLockTimeout {
			e.Code = "lock_timeout"
		}
	case se.HTTPStatusCode == http.StatusServiceUnavailable:
		e.Class, e.Code = providers.Unavailable, "service_unavailable"
	case se.HTTPStatusCode >= 500 || se.Type == stripeapi.ErrorTypeAPI:
		e.Class, e.Code = providers.Ambiguous, "server_error"
		if shouldRetry == "false" {
			// Stripe says a retry is a no-op: the failure is final and
			// nothing was charged by this request.
			e.Class = providers.Unavailable
		}
	case se.HTTPStatusCode == http.StatusNotFound:
		e.Class, e.Code = providers.Invalid, "not_found"
	default:
		e.Class = providers.Invalid
		e.Code = string(se.Code)
		if e.Code == "" {
			e.Code = "invalid_request"
		}
	}
	return e
}
