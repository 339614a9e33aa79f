package stripesim_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/payrouter/payrouter/internal/sim"
	"github.com/payrouter/payrouter/internal/sim/stripesim"
)

type wire struct {
	srv   *httptest.Server
	b     *stripesim.Backend
	hooks chan []byte
	sigs  chan string
}

func newWire(t *testing.T, key string) *wire {
	t.Helper()
	w := &wire{hooks: make(chan []byte, 64), sigs: make(chan string, 64)}
	mux := http.NewServeMux()
	w.srv = httptest.NewServer(mux)
	t.Cleanup(w.srv.Close)
	mux.HandleFunc("POST /hooks", func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.sigs <- r.Header.Get("Stripe-Signature")
		w.hooks <- b
	})
	w.b = stripesim.New(stripesim.Options{SecretKey: key, WebhookSecret: "whsec_x",
		Notifier: &sim.Notifier{URL: w.srv.URL + "/hooks"}, PublicURL: w.srv.URL + "/sim/stripe"})
	t.Cleanup(w.b.Wait)
	sim.New("stripe", w.b).Mount(mux, "/sim/stripe")
	return w
}

// call sends a Stripe-style request and decodes the JSON answer.
func (w *wire) call(t *testing.T, method, path, auth, idemKey string, form url.Values) (int, map[string]any) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, w.srv.URL+"/sim/stripe"+path, body)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("%s %s: response is not JSON: %v", method, path, err)
	}
	return resp.StatusCode, m
}

func errField(m map[string]any, k string) string {
	e, _ := m["error"].(map[string]any)
	s, _ := e[k].(string)
	return s
}

func piForm(pm string) url.Values {
	return url.Values{"amount": {"1000"}, "currency": {"usd"}, "confirm": {"true"}, "payment_method": {pm},
		"metadata[order_id]": {"pay_1_a1"}, "payment_method_types[0]": {"card"}}
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name, configured, auth string
		want                   int
	}{
		{"exact key bearer", "sk_test_abc", "Bearer sk_test_abc", 200},
		{"exact key basic", "sk_test_abc", "Basic " + basic("sk_test_abc"), 200},
		{"wrong key", "sk_test_abc", "Bearer sk_test_abd", 401},
		{"no key", "sk_test_abc", "", 401},
		{"any test key when unconfigured", "", "Bearer sk_test_anything", 200},
		{"any sandbox key when unconfigured", "", "Bearer sk_sandbox_demo", 200},
		{"live key refused when unconfigured", "", "Bearer sk_live_abc", 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWire(t, tc.configured)
			status, m := w.call(t, "POST", "/v1/payment_intents", tc.auth, "", piForm("pm_card_visa"))
			if status != tc.want {
				t.Fatalf("status = %d, want %d (%v)", status, tc.want, m)
			}
			if status == 401 && (errField(m, "type") != "invalid_request_error" || strings.Contains(errField(m, "message"), "sk_")) {
				t.Errorf("401 body = %v, want invalid_request_error without the key", m)
			}
		})
	}
}

func basic(user string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, "")
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

func TestWireShapes(t *testing.T) {
	w := newWire(t, "sk_test_abc")
	auth := "Bearer sk_test_abc"
	t.Run("success", func(t *testing.T) {
		status, m := w.call(t, "POST", "/v1/payment_intents", auth, "", piForm("pm_card_visa"))
		if status != 200 || m["object"] != "payment_intent" || m["status"] != "succeeded" || m["currency"] != "usd" ||
			m["amount_received"] != float64(1000) || !strings.HasPrefix(m["id"].(string), "pi_") {
			t.Errorf("PI = %d %v", status, m)
		}
		if md, _ := m["metadata"].(map[string]any); md["order_id"] != "pay_1_a1" {
			t.Errorf("metadata = %v, want order_id", m["metadata"])
		}
	})
	t.Run("decline with token in payment_method_data", func(t *testing.T) {
		f := url.Values{"amount": {"1000"}, "currency": {"usd"}, "confirm": {"true"},
			"payment_method_data[type]": {"card"}, "payment_method_data[card][token]": {"tok_sandbox_insufficient_funds"}}
		status, m := w.call(t, "POST", "/v1/payment_intents", auth, "", f)
		if status != 402 || errField(m, "type") != "card_error" || errField(m, "code") != "card_declined" || errField(m, "decline_code") != "insufficient_funds" {
			t.Errorf("decline = %d %v", status, m)
		}
	})
	t.Run("missing resource", func(t *testing.T) {
		status, m := w.call(t, "GET", "/v1/payment_intents/pi_nope", auth, "", nil)
		if status != 404 || errField(m, "code") != "resource_missing" {
			t.Errorf("missing = %d %v", status, m)
		}
	})
	t.Run("bad amount", func(t *testing.T) {
		f := piForm("pm_card_visa")
		f.Set("amount", "10.5")
		status, m := w.call(t, "POST", "/v1/payment_intents", auth, "", f)
		if status != 400 || errField(m, "param") != "amount" {
			t.Errorf("bad amount = %d %v", status, m)
		}
	})
	t.Run("idempotency conflict", func(t *testing.T) {
		if s, _ := w.call(t, "POST", "/v1/payment_intents", auth, "k1", piForm("pm_card_visa")); s != 200 {
			t.Fatalf("first = %d", s)
		}
		f := piForm("pm_card_visa")
		f.Set("amount", "2000")
		status, m := w.call(t, "POST", "/v1/payment_intents", auth, "k1", f)
		if status != 400 || errField(m, "type") != "idempotency_error" {
			t.Errorf("conflict = %d %v", status, m)
		}
	})
	t.Run("3ds next action", func(t *testing.T) {
		status, m := w.call(t, "POST", "/v1/payment_intents", auth, "", piForm("pm_card_threeDSecure2Required"))
		na, _ := m["next_action"].(map[string]any)
		rt, _ := na["redirect_to_url"].(map[string]any)
		if status != 200 || m["status"] != "requires_action" || rt["url"] != w.srv.URL+"/sim/stripe/checkout/"+m["id"].(string) {
			t.Errorf("3ds = %d %v", status, m)
		}
	})
}

func TestLedgerAndPay(t *testing.T) {
	w := newWire(t, "")
	auth := "Bearer sk_test_1"
	_, ok := w.call(t, "POST", "/v1/payment_intents", auth, "", piForm("pm_card_visa"))
	w.call(t, "POST", "/v1/payment_intents", auth, "", piForm("pm_card_chargeDeclined"))
	_, act := w.call(t, "POST", "/v1/payment_intents", auth, "", piForm("tok_sandbox_3ds"))
	l := w.b.Ledger()
	if len(l) != 2 || l[0].ID != ok["id"] || l[0].Status != "succeeded" || l[1].Status != "requires_action" || l[0].Amount != 1000 || l[0].Currency != "USD" {
		t.Fatalf("ledger = %+v, want the success and the 3DS intent (no decline)", l)
	}
	ctx := context.Background()
	if err := w.b.Pay(ctx, "pi_nope", sim.OutcomeSuccess); !errors.Is(err, sim.ErrNotFound) {
		t.Errorf("Pay unknown = %v, want ErrNotFound", err)
	}
	if err := w.b.Pay(ctx, ok["id"].(string), sim.OutcomeSuccess); !errors.Is(err, sim.ErrNotPayable) {
		t.Errorf("Pay succeeded = %v, want ErrNotPayable", err)
	}
	if err := w.b.Pay(ctx, act["id"].(string), sim.OutcomeSuccess); err != nil {
		t.Fatalf("Pay: %v", err)
	}
	if l := w.b.Ledger(); l[1].Status != "succeeded" {
		t.Errorf("after Pay ledger status = %s, want succeeded", l[1].Status)
	}
	// Every webhook is a signed Stripe event that stripe-go verifies.
	w.b.Wait()
	deadline := time.After(3 * time.Second)
	types := map[string]bool{}
	for len(types) < 3 {
		select {
		case body := <-w.hooks:
			sig := <-w.sigs
			ev, err := webhook.ConstructEventWithOptions(body, sig, "whsec_x", webhook.ConstructEventOptions{})
			if err != nil {
				t.Fatalf("webhook does not verify with stripe-go: %v", err)
			}
			if ev.APIVersion != stripesim.APIVersion || !strings.HasPrefix(ev.ID, "evt_") {
				t.Errorf("event = %s %s", ev.ID, ev.APIVersion)
			}
			types[string(ev.Type)] = true
		case <-deadline:
			t.Fatalf("webhooks seen: %v; want succeeded, payment_failed, requires_action", types)
		}
	}
	for _, want := range []string{"payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.requires_action"} {
		if !types[want] {
			t.Errorf("no %s webhook among %v", want, types)
		}
	}
}

// POST /_flush returns once every queued webhook has been delivered, even to
// a slow receiver (the bench flushes between its phases).
func TestFlushWaitsForQueuedWebhooks(t *testing.T) {
	var delivered atomic.Int64
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	mux.HandleFunc("POST /hooks", func(rw http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(30 * time.Millisecond)
		delivered.Add(1)
	})
	b := stripesim.New(stripesim.Options{WebhookSecret: "whsec_x", Notifier: &sim.Notifier{URL: srv.URL + "/hooks"}, PublicURL: srv.URL + "/sim/stripe"})
	t.Cleanup(b.Wait)
	sim.New("stripe", b).Mount(mux, "/sim/stripe")
	for range 3 {
		req, _ := http.NewRequest("POST", srv.URL+"/sim/stripe/v1/payment_intents", strings.NewReader(piForm("pm_card_visa").Encode()))
		req.Header.Set("Authorization", "Bearer sk_test_1")
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if n := delivered.Load(); n >= 3 {
		t.Fatalf("%d webhooks delivered before the flush: the receiver is not slow enough for this test", n)
	}
	resp, err := http.Post(srv.URL+"/sim/stripe/_flush", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	atFlush := delivered.Load()
	if resp.StatusCode != http.StatusNoContent || atFlush < 3 {
		t.Fatalf("flush = %d with %d webhooks delivered, want 204 and every payment's webhooks", resp.StatusCode, atFlush)
	}
	time.Sleep(100 * time.Millisecond)
	if n := delivered.Load(); n != atFlush {
		t.Errorf("%d webhooks delivered after the flush returned, %d at its return", n, atFlush)
	}
}
