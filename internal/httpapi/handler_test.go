package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/apikey"
	"github.com/payrouter/payrouter/internal/httpapi"
	"github.com/payrouter/payrouter/internal/store/sqlite"
	"github.com/payrouter/payrouter/providers"
	"github.com/payrouter/payrouter/router"
)

// scripted is a provider that answers every authorize with one answer and
// counts the calls.
type scripted struct {
	mu    sync.Mutex
	calls int
	res   *providers.Result
	err   error
}

var _ providers.Provider = (*scripted)(nil)

func (p *scripted) Capabilities() providers.Capabilities { return providers.Capabilities{} }
func (p *scripted) Authorize(context.Context, *providers.AuthorizeRequest) (*providers.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	return p.res, p.err
}
func (p *scripted) Capture(context.Context, *providers.CaptureRequest) (*providers.Result, error) {
	return nil, providers.Unsupported("not scripted")
}
func (p *scripted) Cancel(context.Context, *providers.CancelRequest) (*providers.Result, error) {
	return nil, providers.Unsupported("not scripted")
}
func (p *scripted) Refund(context.Context, *providers.RefundRequest) (*providers.RefundResult, error) {
	return nil, providers.Unsupported("not scripted")
}

func (p *scripted) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

type oneRoute string

func (r oneRoute) Plan(*payrouter.Payment, string) (router.Plan, error) {
	return router.Plan{Route: payrouter.Route{Rule: "test", Strategy: "priority", Reason: "test"},
		Candidates: []router.Candidate{{Provider: string(r)}}}, nil
}

// api serves the HTTP API over a real SQLite store and a router whose one
// provider answers with p; merchants m1 (key sk_m1) and m2 (key sk_m2).
func api(t *testing.T, p *scripted) string {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "api.db"), sqlite.Options{Synchronous: "off"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	g := router.Guard("fake", p, time.Second, router.BreakerSettings{FailureRatio: 1, MinRequests: 1000, OpenFor: time.Minute}, nil)
	r := router.New(st, oneRoute("fake"), map[string]*router.Guarded{"fake": g},
		router.Options{Deadline: 30 * time.Second, MaxAttempts: 3, PaymentTTL: 24 * time.Hour, ResolveBackoff: 2 * time.Second}, nil)
	keys := apikey.NewSet()
	for _, m := range []string{"m1", "m2"} {
		if err := keys.Add(apikey.Hash("sk_"+m), apikey.Entry{Owner: m}); err != nil {
			t.Fatal(err)
		}
	}
	s := &httpapi.Server{Router: r, Store: st, Keys: keys}
	srv := httptest.NewServer(s.Handler(http.NewServeMux()))
	t.Cleanup(srv.Close)
	return srv.URL
}

type reply struct {
	status int
	body   []byte
	header http.Header
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

// errorOf is the API error object's type and code.
func (r reply) errorOf(t *testing.T) (typ, code string) {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	typ, _ = e["type"].(string)
	code, _ = e["code"].(string)
	return typ, code
}

func do(t *testing.T, method, url, key, idem, body string) reply {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader([]byte(body)))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, b, resp.Header}
}

const card = `{"amount":50000,"currency":"IDR","method":"card","reference":"%s","payment_method_tokens":{"fake":"tok_1"}}`

func body(ref string) string { return fmt.Sprintf(card, ref) }

func succeeded() *scripted {
	return &scripted{res: &providers.Result{Status: payrouter.StatusSucceeded, ProviderPaymentID: "fk_1"}}
}

func TestAuth(t *testing.T) {
	url := api(t, succeeded())
	for _, tt := range []struct{ name, key string }{{"no key", ""}, {"unknown key", "sk_nope"}} {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, "GET", url+"/v1/payments", tt.key, "", "")
			if typ, _ := r.errorOf(t); r.status != 401 || typ != "authentication" {
				t.Errorf("status %d, error type %q; want 401 authentication", r.status, typ)
			}
		})
	}
}

// The create answers 201 with the stored payment in every outcome the
// provider gives, and another merchant cannot see it.
func TestCreate(t *testing.T) {
	tests := []struct {
		name     string
		p        *scripted
		want     payrouter.Status
		wantCode string
	}{
		{"succeeded", succeeded(), payrouter.StatusSucceeded, ""},
		{"declined", &scripted{err: &providers.Error{Class: providers.Declined, Code: "card_declined", Message: "declined"}}, payrouter.StatusFailed, "card_declined"},
		{"unavailable", &scripted{err: &providers.Error{Class: providers.Unavailable, Code: "service_unavailable"}}, payrouter.StatusFailed, "provider_unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := api(t, tt.p)
			r := do(t, "POST", url+"/v1/payments", "sk_m1", "", body("ref-1"))
			if r.status != 201 {
				t.Fatalf("create: %d %s, want 201", r.status, r.body)
			}
			p := r.json(t)
			if p["status"] != string(tt.want) {
				t.Errorf("status %v, want %s", p["status"], tt.want)
			}
			if f, _ := p["failure"].(map[string]any); tt.wantCode != "" && (f == nil || f["code"] != tt.wantCode) {
				t.Errorf("failure %v, want code %s", p["failure"], tt.wantCode)
			}
			id, _ := p["id"].(string)
			if got := do(t, "GET", url+"/v1/payments/"+id, "sk_m1", "", ""); got.status != 200 {
				t.Errorf("GET own payment: %d, want 200", got.status)
			}
			if typ, _ := do(t, "GET", url+"/v1/payments/"+id, "sk_m2", "", "").errorOf(t); typ != "not_found" {
				t.Errorf("GET another merchant's payment: error type %q, want not_found", typ)
			}
		})
	}
}

// The idempotency decisions: replay byte for byte with no second provider
// call, a different body 422, a new key with a used reference 409, bad
// input 400 with nothing called.
func TestIdempotencyAndInput(t *testing.T) {
	p := succeeded()
	url := api(t, p)
	first := do(t, "POST", url+"/v1/payments", "sk_m1", "k1", body("ref-1"))
	if first.status != 201 {
		t.Fatalf("create: %d %s", first.status, first.body)
	}
	tests := []struct {
		name       string
		key, idem  string
		body       string
		wantStatus int
		wantType   string
		wantCode   string
		replay     bool // the first response again, byte for byte
	}{
		{"same key, same body: replay", "sk_m1", "k1", body("ref-1"), 201, "", "", true},
		{"same key, other body", "sk_m1", "k1", body("ref-2"), 422, "idempotency_conflict", "", false},
		{"new key, used reference", "sk_m1", "k2", body("ref-1"), 409, "", "duplicate_reference", false},
		{"same key, other merchant: its own key", "sk_m2", "k1", body("ref-1"), 201, "", "", false},
		{"float amount", "sk_m1", "k3", `{"amount":500.5,"currency":"IDR","method":"card","reference":"ref-3"}`, 400, "invalid_request", "", false},
		{"duplicate field", "sk_m1", "k4", `{"amount":1,"AMOUNT":2,"currency":"IDR","method":"card","reference":"ref-4"}`, 400, "invalid_request", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := p.count()
			r := do(t, "POST", url+"/v1/payments", tt.key, tt.idem, tt.body)
			if r.status != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", r.status, r.body, tt.wantStatus)
			}
			if tt.wantType != "" || tt.wantCode != "" {
				typ, code := r.errorOf(t)
				if (tt.wantType != "" && typ != tt.wantType) || (tt.wantCode != "" && code != tt.wantCode) {
					t.Errorf("error %q/%q, want %q/%q", typ, code, tt.wantType, tt.wantCode)
				}
				if p.count() != before {
					t.Errorf("the provider was called on a refused request")
				}
			}
			if tt.replay {
				if !bytes.Equal(r.body, first.body) {
					t.Errorf("replay differs:\n got %s\nwant %s", r.body, first.body)
				}
				if p.count() != before {
					t.Errorf("replay called the provider again")
				}
			}
		})
	}
}

// Unknown paths and wrong methods under /v1 and /webhooks answer the JSON
// error object, not net/http's text/plain.
func TestUnknownRoutesAnswerJSON(t *testing.T) {
	url := api(t, succeeded())
	for _, tt := range []struct {
		method, path, code string
		status             int
	}{
		{"GET", "/v1/nope", "route_not_found", 404},
		{"GET", "/v1", "route_not_found", 404},
		{"DELETE", "/v1/payments", "method_not_allowed", 405},
		{"GET", "/webhooks/stripe", "method_not_allowed", 405},
	} {
		r := do(t, tt.method, url+tt.path, "sk_m1", "", "")
		typ, code := r.errorOf(t)
		if r.status != tt.status || code != tt.code || typ == "" {
			t.Errorf("%s %s: %d %s/%s, want %d %s", tt.method, tt.path, r.status, typ, code, tt.status, tt.code)
		}
	}
	if r := do(t, "DELETE", url+"/v1/payments", "sk_m1", "", ""); !strings.Contains(r.header.Get("Allow"), "GET") {
		t.Errorf("405 lost its Allow header: %v", r.header)
	}
}
