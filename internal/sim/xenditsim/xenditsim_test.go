package xenditsim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/payrouter/payrouter/internal/sim"
	"github.com/payrouter/payrouter/internal/sim/xenditsim"
)

// A human pays on the checkout page (the next action's URL); the webhook
// carries the callback token.
func TestCheckoutPage(t *testing.T) {
	type hook struct {
		token string
		body  []byte
	}
	got := make(chan hook, 8)
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- hook{r.Header.Get("X-Callback-Token"), b}
	}))
	defer hooks.Close()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	be := xenditsim.New(xenditsim.Options{SecretKey: "xnd", CallbackToken: "tok", PublicURL: srv.URL + "/sim/xendit", Notifier: &sim.Notifier{URL: hooks.URL}})
	defer be.Flush()
	sim.New("xendit", be).Mount(mux, "/sim/xendit")

	req, _ := http.NewRequest("POST", srv.URL+"/sim/xendit/payment_requests", strings.NewReader(
		`{"reference_id":"r-1","amount":25000,"currency":"IDR","payment_method":{"type":"EWALLET","reusability":"ONE_TIME_USE","ewallet":{"channel_code":"DANA","channel_properties":{"success_return_url":"https://m.example/ok"}}}}`))
	req.SetBasicAuth("xnd", "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var pr struct {
		ID      string `json:"id"`
		Status  string `json:"status"`
		Actions []struct {
			URL     string `json:"url"`
			URLType string `json:"url_type"`
		} `json:"actions"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&pr)
	resp.Body.Close()
	if resp.StatusCode != 201 || pr.Status != "REQUIRES_ACTION" || len(pr.Actions) == 0 {
		t.Fatalf("create: %d %+v", resp.StatusCode, pr)
	}
	page := pr.Actions[0].URL
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.PostForm(page, url.Values{"outcome": {"success"}})
	if err != nil || resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "https://m.example/ok" {
		t.Fatalf("checkout post: %v %v, want 303 back to the success_return_url", resp, err)
	}
	resp.Body.Close()
	h := <-got
	var w struct {
		Event string `json:"event"`
		Data  struct {
			PaymentRequestID string `json:"payment_request_id"`
			Status           string `json:"status"`
		} `json:"data"`
	}
	_ = json.Unmarshal(h.body, &w)
	if h.token != "tok" || w.Event != "payment.succeeded" || w.Data.PaymentRequestID != pr.ID || w.Data.Status != "SUCCEEDED" {
		t.Fatalf("webhook token %q body %s", h.token, h.body)
	}
	if l := be.Ledger(); len(l) != 1 || l[0].Status != "SUCCEEDED" || l[0].Reference != "r-1" {
		t.Fatalf("ledger = %+v", l)
	}
}
