package httpapi

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/payrouter/payrouter/internal/reqid"
)

// requestInfo is what the access log learns while a request is handled
// (the merchant, once auth knows it).
type requestInfo struct{ merchant string }

type infoKey struct{}

func noteMerchant(ctx context.Context, id string) {
	if ri, _ := ctx.Value(infoKey{}).(*requestInfo); ri != nil {
		ri.merchant = id
	}
}

// quiet routes are polled by probes and scrapers: logged at debug.
var quiet = map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /metrics": true}

// RequestLog gives every request an id (the client's Request-Id when it is
// a sane token, else a fresh one), answers it in the Request-Id header,
// puts it in the context for every log line of the request (reqid.Handler),
// and writes one access log line per request at info: method, route
// pattern, status, duration, request id, merchant.
func RequestLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(reqid.Header)
		if !reqid.Valid(id) {
			id = reqid.New()
		}
		w.Header().Set(reqid.Header, id)
		ri := &requestInfo{}
		ctx := context.WithValue(reqid.With(r.Context(), id), infoKey{}, ri)
		r = r.WithContext(ctx)
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		// ServeMux sets Pattern on the request it was given: this one.
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		lvl := slog.LevelInfo
		if quiet[route] {
			lvl = slog.LevelDebug
		}
		log.LogAttrs(ctx, lvl, "request", slog.String("method", r.Method), slog.String("route", route),
			slog.Int("status", sw.status), slog.Duration("duration", time.Since(start)), slog.String("merchant", ri.merchant))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer (Flush, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ClientsOnly answers requests under prefix only from clients whose
// address (the TCP peer, never a forwarded header) is in allowed; others
// get 403. The sandbox simulators need it: their _pay and checkout routes
// mark payments paid without any key.
func ClientsOnly(prefix string, allowed []netip.Prefix, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, prefix) && !peerIn(r.RemoteAddr, allowed) {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "the sandbox simulators answer only the clients in sandbox_clients (default: loopback)"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func peerIn(remote string, allowed []netip.Prefix) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range allowed {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
