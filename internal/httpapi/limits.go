package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/payrouter/payrouter"
)

// BodyLimits bound how long and how much of a request body is read, on
// every route. Zero fields take the defaults.
type BodyLimits struct {
	// ReadTimeout is the longest a body may take to arrive, counted from
	// the end of the headers (default 10s). A slower body — a client
	// trickling a byte a second — is answered 408 and its connection
	// closed, so it holds a goroutine and a connection for at most this.
	ReadTimeout time.Duration
	// MaxBytes bounds a body (default 64 KiB, at most maxBody); webhooks
	// have MaxWebhookBytes (default and most 1 MiB, what the webhook
	// handler reads): provider payloads are larger.
	MaxBytes        int64
	MaxWebhookBytes int64
}

// Defaults of BodyLimits.
const (
	DefaultReadTimeout     = 10 * time.Second
	DefaultMaxBodyBytes    = 64 << 10
	DefaultMaxWebhookBytes = 1 << 20
)

func (l BodyLimits) limitFor(path string) int64 {
	if strings.HasPrefix(path, "/webhooks/") {
		if l.MaxWebhookBytes > 0 {
			return min(l.MaxWebhookBytes, DefaultMaxWebhookBytes)
		}
		return DefaultMaxWebhookBytes
	}
	if l.MaxBytes > 0 {
		return min(l.MaxBytes, maxBody)
	}
	return DefaultMaxBodyBytes
}

// bounded reads every request body before the handler runs, within the
// read deadline and the size limit, and hands the handler the bytes. The
// handlers then never block on a slow client, and one rule covers every
// route (API, webhooks, simulators).
func (s *Server) bounded(next http.Handler) http.Handler {
	timeout := s.Limits.ReadTimeout
	if timeout <= 0 {
		timeout = DefaultReadTimeout
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		limit := s.Limits.limitFor(r.URL.Path)
		if r.ContentLength > limit {
			w.Header().Set("Connection", "close")
			s.writeError(w, r, tooLarge(limit))
			return
		}
		rc := http.NewResponseController(w)
		// Not every ResponseWriter supports deadlines (httptest's
		// recorder does not); the server's ReadTimeout still applies.
		_ = rc.SetReadDeadline(time.Now().Add(timeout))
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			w.Header().Set("Connection", "close")
			var mbe *http.MaxBytesError
			switch {
			case errors.As(err, &mbe):
				s.writeError(w, r, tooLarge(limit))
			case errors.Is(err, os.ErrDeadlineExceeded):
				s.writeError(w, r, &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "body_timeout",
					Message: fmt.Sprintf("the request body did not arrive within %s", timeout)})
			default:
				s.writeError(w, r, &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "body_unreadable", Message: "could not read the request body"})
			}
			return
		}
		// The body is in: later reads (the server's background read for a
		// closed connection) must not hit the deadline.
		_ = rc.SetReadDeadline(time.Time{})
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// storedHeaders are request headers payrouter stores (the idempotency
// key is a column of the idempotency table): vetted like body strings.
var storedHeaders = []string{"Idempotency-Key"}

// vetRequest refuses, before any handler, what the stores cannot take or
// must never hold outside the body: a NUL or invalid UTF-8 in the path or
// the query (PostgreSQL refuses both in a text parameter: a 500 on every
// retry of GET /v1/payments/pay_%00), and a card number in a stored
// header. (A NUL cannot arrive in a header: net/http refuses control
// characters there.)
func (s *Server) vetRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if unstorable(r.URL.Path) {
			s.writeError(w, r, &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "parameter_invalid",
				Message: "the request path contains a NUL character or invalid UTF-8"})
			return
		}
		if r.URL.RawQuery != "" {
			for k, vs := range r.URL.Query() {
				bad := unstorable(k)
				for _, v := range vs {
					bad = bad || unstorable(v)
				}
				if bad {
					param := k
					if unstorable(k) {
						param = ""
					}
					s.writeError(w, r, &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "parameter_invalid", Param: param,
						Message: "a query parameter contains a NUL character or invalid UTF-8"})
					return
				}
			}
		}
		for _, h := range storedHeaders {
			if v := r.Header.Get(h); v != "" && payrouter.ContainsCardNumber(v) {
				s.writeError(w, r, &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "raw_card_data", Param: h,
					Message: h + " looks like a card number: raw card numbers are not accepted anywhere in a request"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func unstorable(s string) bool { return strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) }

func tooLarge(limit int64) *payrouter.Error {
	return &payrouter.Error{Type: payrouter.ErrInvalidRequest, Code: "body_too_large", Message: fmt.Sprintf("request body exceeds %d bytes", limit)}
}
