package apptest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The harness must fail on drift, or the e2e tests prove nothing.
func TestSpecTransportCatchesDrift(t *testing.T) {
	var answer string
	var status int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(answer))
	}))
	defer srv.Close()
	tr, err := NewSpecTransport(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: tr}
	tests := []struct {
		name, method, path, body string
		status                   int
		answer                   string
		wantErr                  string
	}{
		{"documented", "GET", "/v1/payments", "", 200, `{"data":[],"has_more":false}`, ""},
		{"missing field", "GET", "/v1/payments", "", 200, `{"data":[]}`, "has_more"},
		{"wrong type", "GET", "/v1/payments", "", 200, `{"data":[],"has_more":"no"}`, "has_more"},
		{"undocumented status", "GET", "/v1/payments", "", 418, `{}`, "status is not supported"},
		{"error shape", "GET", "/v1/payments/pay_1", "", 404, `{"error":"nope"}`, "error"},
		{"undescribed path", "GET", "/v1/nothing", "", 200, `{}`, "does not describe"},
		{"accepted a forbidden request", "GET", "/v1/payments?limit=5000", "", 200, `{"data":[],"has_more":false}`, "accepted"},
		{"refused a forbidden request", "GET", "/v1/payments?limit=5000", "", 400,
			`{"error":{"type":"invalid_request","code":"parameter_invalid","message":"limit","param":"limit"}}`, ""},
		{"simulators are not the API", "GET", "/sim/stripe/_ledger", "", 200, `[]`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, answer = tt.status, tt.answer
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			resp, err := c.Do(req)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				resp.Body.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
	if tr.Checked.Load() != 2 {
		t.Errorf("Checked = %d, want the 2 validated API calls", tr.Checked.Load())
	}
}
