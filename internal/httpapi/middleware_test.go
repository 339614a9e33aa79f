package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/payrouter/payrouter/internal/reqid"
)

func TestClientsOnly(t *testing.T) {
	loop := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	h := ClientsOnly("/sim/", loop, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	tests := []struct {
		remote, path string
		want         int
	}{
		{"127.0.0.1:5000", "/sim/stripe/_pay/x", 204},
		{"127.8.9.10:5000", "/sim/stripe/_ledger", 204},
		{"[::1]:5000", "/sim/gopay/checkout/x", 204},
		{"[::ffff:127.0.0.1]:5000", "/sim/gopay/checkout/x", 204}, // IPv4-mapped loopback
		{"203.0.113.7:5000", "/sim/stripe/_pay/x", 403},
		{"[2001:db8::1]:5000", "/sim/stripe/_ledger", 403},
		{"172.17.0.1:5000", "/sim/stripe/_ledger", 403},
		{"garbage", "/sim/stripe/_ledger", 403},
		{"203.0.113.7:5000", "/v1/payments", 204}, // other paths are not this guard's
		{"203.0.113.7:5000", "/simulate", 204},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", tt.path, nil)
		r.RemoteAddr = tt.remote
		r.Header.Set("X-Forwarded-For", "127.0.0.1") // never believed
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("%s %s: got %d, want %d", tt.remote, tt.path, w.Code, tt.want)
		}
	}
}

func TestRequestLogLine(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(reqid.NewHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/payments/{id}", func(w http.ResponseWriter, r *http.Request) {
		noteMerchant(r.Context(), "demo")
		log.InfoContext(r.Context(), "inside")
		w.WriteHeader(404)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {})
	h := RequestLog(log, mux)

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/v1/payments/pay_1", nil))
	id := w.Header().Get("Request-Id")
	if !reqid.Valid(id) {
		t.Fatalf("Request-Id = %q", id)
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/healthz", nil)) // debug: not at info

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d log lines, want the handler's and one access line:\n%s", len(lines), buf.String())
	}
	var inside, access map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &inside)
	_ = json.Unmarshal([]byte(lines[1]), &access)
	if inside["request_id"] != id {
		t.Errorf("handler's line has request_id %v, want %s", inside["request_id"], id)
	}
	want := map[string]any{"msg": "request", "method": "GET", "route": "GET /v1/payments/{id}", "status": float64(404),
		"request_id": id, "merchant": "demo", "level": "INFO"}
	for k, v := range want {
		if access[k] != v {
			t.Errorf("access line %s = %v, want %v (%s)", k, access[k], v, lines[1])
		}
	}
	if _, ok := access["duration"]; !ok {
		t.Errorf("access line has no duration: %s", lines[1])
	}
}
