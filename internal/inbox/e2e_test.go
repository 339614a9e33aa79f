package inbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/app/apptest"
	"github.com/payrouter/payrouter/internal/config"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/internal/store/sqlite"
	"github.com/payrouter/payrouter/providers"
	"github.com/payrouter/payrouter/providers/midtrans"
	"github.com/payrouter/payrouter/providers/stripe"
	"github.com/payrouter/payrouter/router"
	"github.com/payrouter/payrouter/webhooksig"
)

// sandboxStripeWebhookSecret is the secret the sandbox Stripe adapter and
// simulator share when config.yaml leaves it empty (internal/app).
const sandboxStripeWebhookSecret = "whsec_payrouter_sandbox"

// stripeEvent is a Stripe payment_intent.* event for p's PaymentIntent in
// status piStatus ("abandoned": canceled for abandonment), signed at ts
// with secret exactly as Stripe signs (stripe-go's signing function).
func stripeEvent(tb testing.TB, secret, evtID string, p *payrouter.Payment, piStatus string, ts time.Time) ([]byte, http.Header) {
	tb.Helper()
	typ := map[string]string{
		"succeeded": "payment_intent.succeeded", "processing": "payment_intent.processing",
		"requires_action": "payment_intent.requires_action", "requires_payment_method": "payment_intent.payment_failed",
		"canceled": "payment_intent.canceled", "abandoned": "payment_intent.canceled",
	}[piStatus]
	pi := map[string]any{
		"id": p.ProviderPaymentID, "object": "payment_intent", "amount": p.Amount, "currency": "usd",
		"status": piStatus, "metadata": map[string]string{"order_id": payrouter.AttemptKey(p.ID, 1)},
	}
	if piStatus == "requires_payment_method" {
		pi["last_payment_error"] = map[string]any{"type": "card_error", "code": "card_declined", "decline_code": "generic_decline"}
	}
	switch piStatus {
	case "canceled":
		pi["cancellation_reason"] = "requested_by_customer"
	case "abandoned": // canceled because the customer never authenticated
		pi["status"], pi["cancellation_reason"] = "canceled", "abandoned"
	}
	body, err := json.Marshal(map[string]any{
		"id": evtID, "object": "event", "api_version": "2023-10-16", "type": typ, "created": ts.Unix(),
		"data": map[string]any{"object": pi},
	})
	if err != nil {
		tb.Fatal(err)
	}
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: ts})
	h := http.Header{}
	h.Set("Stripe-Signature", signed.Header)
	h.Set("Content-Type", "application/json")
	return body, h
}

func postWebhook(tb testing.TB, ti *apptest.TestInstance, body []byte, h http.Header) (int, string) {
	tb.Helper()
	req, _ := http.NewRequest("POST", ti.URL+"/webhooks/stripe", bytes.NewReader(body))
	req.Header = h.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// threeDS creates a card payment that waits for 3-D Secure at Stripe.
func threeDS(tb testing.TB, ti *apptest.TestInstance, ref string) *payrouter.Payment {
	tb.Helper()
	st, b := ti.Do(tb, "POST", "/v1/payments", fmt.Sprintf(
		`{"amount":1999,"currency":"USD","method":"card","reference":%q,"payment_method_tokens":{"stripe":"pm_card_threeDSecure2Required"}}`, ref))
	var p payrouter.Payment
	if err := json.Unmarshal(b, &p); err != nil || st != 201 || p.Status != payrouter.StatusRequiresAction || p.ProviderPaymentID == "" {
		tb.Fatalf("create 3DS payment: %d %s", st, b)
	}
	return &p
}

func getPayment(tb testing.TB, ti *apptest.TestInstance, id string) *payrouter.Payment {
	tb.Helper()
	st, b := ti.Do(tb, "GET", "/v1/payments/"+id, nil)
	var p payrouter.Payment
	if err := json.Unmarshal(b, &p); err != nil || st != 200 {
		tb.Fatalf("GET payment %s: %d %s", id, st, b)
	}
	return &p
}

// eventTypes lists the payment's events through the pull API, in order.
func eventTypes(tb testing.TB, ti *apptest.TestInstance, paymentID string) []payrouter.EventType {
	tb.Helper()
	var out []payrouter.EventType
	after := ""
	for {
		st, b := ti.Do(tb, "GET", "/v1/events?limit=1000&after="+after, nil)
		var page struct {
			Data    []payrouter.Event `json:"data"`
			HasMore bool              `json:"has_more"`
		}
		if err := json.Unmarshal(b, &page); err != nil || st != 200 {
			tb.Fatalf("GET /v1/events: %d %s", st, b)
		}
		for _, e := range page.Data {
			if e.PaymentID == paymentID {
				out = append(out, e.Type)
			}
			after = e.ID
		}
		if !page.HasMore {
			return out
		}
	}
}

func count(ts []payrouter.EventType, t payrouter.EventType) int {
	n := 0
	for _, x := range ts {
		if x == t {
			n++
		}
	}
	return n
}

func TestDuplicatedWebhookOneEvent(t *testing.T) {
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), nil)
	p := threeDS(t, ti, "dup-1")
	body, h := stripeEvent(t, sandboxStripeWebhookSecret, "evt_dup_1", p, "succeeded", time.Now())
	for i, want := range []string{`"applied"`, `"duplicate"`, `"duplicate"`} {
		st, b := postWebhook(t, ti, body, h)
		if st != 200 || !bytes.Contains([]byte(b), []byte(want)) {
			t.Fatalf("delivery %d: got %d %s, want 200 %s", i+1, st, b, want)
		}
	}
	// Stripe re-signs a retried delivery: same event id, new timestamp.
	body2, h2 := stripeEvent(t, sandboxStripeWebhookSecret, "evt_dup_1", p, "succeeded", time.Now().Add(time.Second))
	if st, b := postWebhook(t, ti, body2, h2); st != 200 || !bytes.Contains([]byte(b), []byte(`"duplicate"`)) {
		t.Fatalf("re-signed retry: got %d %s, want 200 duplicate", st, b)
	}
	if got := getPayment(t, ti, p.ID); got.Status != payrouter.StatusSucceeded {
		t.Fatalf("status = %s, want succeeded", got.Status)
	}
	evs := eventTypes(t, ti, p.ID)
	if count(evs, payrouter.EventSuccess) != 1 || len(evs) != 2 {
		t.Errorf("events = %v, want [payment_requires_action payment_success]", evs)
	}
}

func TestSuccessThenPendingStaysSucceeded(t *testing.T) {
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), nil)
	p := threeDS(t, ti, "late-1")
	now := time.Now()
	steps := []struct {
		evt, status, want string
	}{
		{"evt_late_1", "succeeded", "applied"},
		{"evt_late_2", "processing", "stale"},      // the late, older webhook
		{"evt_late_3", "requires_action", "stale"}, // and an even older one
		{"evt_late_4", "succeeded", "stale"},       // a second success (another event id)
	}
	for _, s := range steps {
		body, h := stripeEvent(t, sandboxStripeWebhookSecret, s.evt, p, s.status, now)
		if st, b := postWebhook(t, ti, body, h); st != 200 || !bytes.Contains([]byte(b), []byte(`"`+s.want+`"`)) {
			t.Fatalf("%s (%s): got %d %s, want %s", s.evt, s.status, st, b, s.want)
		}
		if got := getPayment(t, ti, p.ID); got.Status != payrouter.StatusSucceeded {
			t.Fatalf("after %s (%s): status %s, want succeeded", s.evt, s.status, got.Status)
		}
	}
	evs := eventTypes(t, ti, p.ID)
	if count(evs, payrouter.EventSuccess) != 1 || count(evs, payrouter.EventFailed) != 0 {
		t.Errorf("events = %v, want exactly one payment_success and no payment_failed", evs)
	}
}

func TestForgedWebhookRefused(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "p.db")
	ti := apptest.StartSandbox(t, dsn, nil)
	p := threeDS(t, ti, "forged-1")
	genuine, gh := stripeEvent(t, sandboxStripeWebhookSecret, "evt_forged_1", p, "succeeded", time.Now())
	forged, fh := stripeEvent(t, "whsec_attacker", "evt_forged_1", p, "succeeded", time.Now())
	tampered := bytes.Replace(genuine, []byte(`"amount":1999`), []byte(`"amount":1`), 1)
	stale, sh := stripeEvent(t, sandboxStripeWebhookSecret, "evt_forged_2", p, "succeeded", time.Now().Add(-time.Hour))
	cases := []struct {
		name string
		body []byte
		h    http.Header
	}{
		{"wrong secret", forged, fh},
		{"tampered body", tampered, gh},
		{"replayed an hour later", stale, sh},
		{"unsigned", genuine, http.Header{"Content-Type": {"application/json"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if st, b := postWebhook(t, ti, c.body, c.h); st != 401 {
				t.Fatalf("got %d %s, want 401", st, b)
			}
			if got := getPayment(t, ti, p.ID); got.Status != payrouter.StatusRequiresAction {
				t.Errorf("status = %s, want requires_action (unchanged)", got.Status)
			}
		})
	}
	if evs := eventTypes(t, ti, p.ID); len(evs) != 1 {
		t.Errorf("events = %v, want only payment_requires_action", evs)
	}
	if n := ti.Inbox.Refused.Load(); n != int64(len(cases)) {
		t.Errorf("refused counter = %d, want %d", n, len(cases))
	}
	// Nothing forged reached the inbox (the simulator's own genuine
	// payment_intent.requires_action webhook did).
	ti.Stop()
	st, err := sqlite.Open(context.Background(), dsn, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n int
	if err := st.Writer().QueryRow(`SELECT COUNT(*) FROM inbox WHERE event_id LIKE 'evt_forged%'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("inbox holds %d items (%v), want 0", n, err)
	}
}

// A crash after the webhook is in the inbox and before it is applied: the
// next instance on the same store applies it at start (Inbox.Run drains).
// parseSandboxStripe verifies and parses a sandbox Stripe webhook with the
// real parser, as Receive does.
func parseSandboxStripe(t *testing.T, body []byte, h http.Header) *providers.Notification {
	t.Helper()
	parser, err := stripe.New(stripe.Config{Name: "stripe", SecretKey: "sk_test_x", WebhookSecret: sandboxStripeWebhookSecret})
	if err != nil {
		t.Fatal(err)
	}
	n, err := parser.ParseWebhook(h, body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCrashAfterInboxWriteProcessedAfterRestart(t *testing.T) {
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "p.db")
	ti := apptest.StartSandbox(t, dsn, nil)
	p := threeDS(t, ti, "crash-1")
	ti.Stop()

	// What Receive had done when the process died: verified the webhook
	// with the real parser and stored it with its parsed notification.
	body, h := stripeEvent(t, sandboxStripeWebhookSecret, "evt_crash_1", p, "succeeded", time.Now())
	n := parseSandboxStripe(t, body, h)
	parsed, _ := json.Marshal(n)
	st, err := sqlite.Open(ctx, dsn, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := st.InsertWebhook(ctx, &store.InboxItem{Provider: "stripe", EventID: n.EventID, Body: body, Parsed: parsed,
		Headers: map[string]string{"Stripe-Signature": h.Get("Stripe-Signature")}}); !ok || err != nil {
		t.Fatalf("InsertWebhook = %v, %v", ok, err)
	}
	st.Close()

	ti2 := apptest.StartSandbox(t, dsn, nil)
	deadline := time.Now().Add(10 * time.Second)
	for getPayment(t, ti2, p.ID).Status != payrouter.StatusSucceeded {
		if time.Now().After(deadline) {
			t.Fatalf("payment still %s 10s after restart", getPayment(t, ti2, p.ID).Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if evs := eventTypes(t, ti2, p.ID); count(evs, payrouter.EventSuccess) != 1 {
		t.Errorf("events = %v, want one payment_success", evs)
	}
	// The provider retrying the same webhook now is a duplicate.
	if st, b := postWebhook(t, ti2, body, h); st != 200 || !bytes.Contains([]byte(b), []byte(`"duplicate"`)) {
		t.Errorf("retry after restart: %d %s, want 200 duplicate", st, b)
	}
}

// merchantEndpoint fails its first failFor requests with 503, then
// verifies each webhook's Payrouter-Signature and records the event.
type merchantEndpoint struct {
	secret  string
	failFor int64
	calls   atomic.Int64
	mu      sync.Mutex
	got     []payrouter.Event
	bad     []string
}

func (m *merchantEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if m.calls.Add(1) <= m.failFor {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	}
	body, _ := io.ReadAll(r.Body)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := webhooksig.Verify(r.Header.Get(webhooksig.Header), body, m.secret, 5*time.Minute, time.Now()); err != nil {
		m.bad = append(m.bad, err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var e payrouter.Event
	if err := json.Unmarshal(body, &e); err != nil {
		m.bad = append(m.bad, err.Error())
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	m.got = append(m.got, e)
}

func (m *merchantEndpoint) received() []payrouter.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]payrouter.Event(nil), m.got...)
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMerchantEndpointDownDeliveredLater(t *testing.T) {
	ctx := context.Background()
	m := &merchantEndpoint{secret: "whsec_demo", failFor: 3}
	srv := httptest.NewServer(m)
	defer srv.Close()
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), func(c *config.Config) {
		c.Merchants[0].WebhookURL = srv.URL + "/payrouter"
		c.Merchants[0].WebhookSecret = "whsec_demo"
		c.Events.RetryBase = config.Duration(100 * time.Millisecond)
		c.Merchants = append(c.Merchants, config.Merchant{ID: "other", APIKeys: []config.APIKey{config.PlainKey("sk_other")}})
	})
	st, b := ti.Do(t, "POST", "/v1/payments",
		`{"amount":1999,"currency":"USD","method":"card","reference":"hook-1","payment_method_tokens":{"stripe":"pm_card_visa"}}`)
	var p payrouter.Payment
	if err := json.Unmarshal(b, &p); err != nil || st != 201 || p.Status != payrouter.StatusSucceeded {
		t.Fatalf("create: %d %s", st, b)
	}
	waitFor(t, "webhook delivered after the endpoint came back", 15*time.Second, func() bool { return len(m.received()) > 0 })
	got := m.received()
	if len(m.bad) > 0 {
		t.Fatalf("merchant refused webhooks: %v", m.bad)
	}
	if got[0].Type != payrouter.EventSuccess || got[0].PaymentID != p.ID {
		t.Fatalf("merchant got %+v, want payment_success of %s", got[0], p.ID)
	}
	seq, _ := payrouter.ParseEventID(got[0].ID)
	// The merchant has the event before the dispatcher records the outcome.
	var dl *store.Delivery
	var err error
	waitFor(t, "delivery recorded", 10*time.Second, func() bool {
		dl, err = ti.Store.GetDelivery(ctx, "demo", seq)
		return err == nil && dl.Status != store.DeliveryPending
	})
	if err != nil || dl.Status != store.DeliveryDelivered || dl.Attempts != 4 {
		t.Errorf("delivery = %+v, %v; want delivered on attempt 4 (3 refused)", dl, err)
	}

	// Redelivery on request, through the API.
	code, body := ti.Do(t, "POST", "/v1/events/"+got[0].ID+"/redeliver", nil)
	if code != 202 || !bytes.Contains(body, []byte(`"status":"pending"`)) {
		t.Fatalf("redeliver: %d %s, want 202 pending", code, body)
	}
	waitFor(t, "redelivered webhook", 10*time.Second, func() bool { return len(m.received()) == 2 })
	if again := m.received()[1]; again.ID != got[0].ID || string(again.Data) != string(got[0].Data) {
		t.Errorf("redelivered %s, want the same event %s", again.ID, got[0].ID)
	}
	for _, c := range []struct {
		name, path, key string
		want            int
	}{
		{"another merchant's event", "/v1/events/" + got[0].ID + "/redeliver", "sk_other", 404},
		{"unknown event", "/v1/events/evt_0000000000009999/redeliver", "sk_sandbox_demo", 404},
		{"not an event id", "/v1/events/pay_123/redeliver", "sk_sandbox_demo", 404},
		{"no api key", "/v1/events/" + got[0].ID + "/redeliver", "", 401},
	} {
		t.Run(c.name, func(t *testing.T) {
			auth := "Bearer " + c.key
			if c.key == "" {
				auth = ""
			}
			if code, body := ti.Do(t, "POST", c.path, nil, "Authorization", auth); code != c.want {
				t.Errorf("got %d %s, want %d", code, body, c.want)
			}
		})
	}
}

func postWebhookFrom(tb testing.TB, ti *apptest.TestInstance, provider string, body []byte, h http.Header, xff ...string) (int, map[string]any) {
	tb.Helper()
	req, _ := http.NewRequest("POST", ti.URL+"/webhooks/"+provider, bytes.NewReader(body))
	req.Header = h.Clone()
	for _, v := range xff {
		req.Header.Add("X-Forwarded-For", v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		tb.Fatalf("answer is not JSON: %v", err)
	}
	return resp.StatusCode, out
}

// webhook_ips behind a proxy: the test client (127.0.0.1) is the trusted
// proxy; X-Forwarded-For is read from the right, so the address the proxy
// appended decides, and what the client wrote to its left never does.
// Refusals are the API's JSON error object.
func TestWebhookIPsBehindProxy(t *testing.T) {
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), func(c *config.Config) {
		c.Server.TrustedProxies = []string{"127.0.0.1/32", "10.0.0.0/8"}
		pc := c.Providers["stripe"]
		pc.WebhookIPs = []string{"198.51.100.0/24"} // Stripe's (documentation) range
		c.Providers["stripe"] = pc
	})
	p := threeDS(t, ti, "xff-1")
	body, h := stripeEvent(t, sandboxStripeWebhookSecret, "evt_xff_1", p, "succeeded", time.Now())
	errOf := func(m map[string]any) (string, string) {
		e, _ := m["error"].(map[string]any)
		typ, _ := e["type"].(string)
		code, _ := e["code"].(string)
		return typ, code
	}
	for _, c := range []struct {
		name string
		xff  []string
	}{
		{"spoofed leftmost entry", []string{"198.51.100.7, 203.0.113.5"}},
		{"spoofed header line", []string{"198.51.100.7", "203.0.113.5"}},
		{"no header: the proxy itself", nil},
		{"malformed hop", []string{"198.51.100.7, bogus"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, m := postWebhookFrom(t, ti, "stripe", body, h, c.xff...)
			if typ, code := errOf(m); st != 403 || typ != "authentication" || code != "sender_not_allowed" {
				t.Fatalf("got %d %v, want 403 authentication/sender_not_allowed", st, m)
			}
		})
	}
	if got := getPayment(t, ti, p.ID); got.Status != payrouter.StatusRequiresAction {
		t.Fatalf("after refused webhooks: %s, want requires_action", got.Status)
	}
	// Stripe (198.51.100.7) → edge proxy 10.1.2.3 → our proxy (127.0.0.1).
	if st, m := postWebhookFrom(t, ti, "stripe", body, h, "192.0.2.99, 198.51.100.7, 10.1.2.3"); st != 200 || m["status"] != "applied" {
		t.Fatalf("real proxy chain: %d %v, want 200 applied", st, m)
	}
	if got := getPayment(t, ti, p.ID); got.Status != payrouter.StatusSucceeded {
		t.Fatalf("status %s, want succeeded", got.Status)
	}

	// The other refusals, as JSON error objects.
	st, m := postWebhookFrom(t, ti, "paypal", body, h)
	if typ, code := errOf(m); st != 404 || typ != "not_found" || code != "unknown_provider" {
		t.Errorf("unknown provider: %d %v, want 404 not_found/unknown_provider", st, m)
	}
	forged, fh := stripeEvent(t, "whsec_attacker", "evt_xff_2", p, "succeeded", time.Now())
	st, m = postWebhookFrom(t, ti, "stripe", forged, fh, "198.51.100.7")
	if typ, code := errOf(m); st != 401 || typ != "authentication" || code != "signature_invalid" {
		t.Errorf("forged: %d %v, want 401 authentication/signature_invalid", st, m)
	}
}

// Without trusted_proxies nothing in X-Forwarded-For is believed: the TCP
// peer is the sender.
func TestWebhookIPsIgnoreForwardedForWithoutTrustedProxies(t *testing.T) {
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), func(c *config.Config) {
		pc := c.Providers["stripe"]
		pc.WebhookIPs = []string{"198.51.100.0/24"}
		c.Providers["stripe"] = pc
	})
	p := threeDS(t, ti, "xff-2")
	body, h := stripeEvent(t, sandboxStripeWebhookSecret, "evt_xff_3", p, "succeeded", time.Now())
	if st, m := postWebhookFrom(t, ti, "stripe", body, h, "198.51.100.7"); st != 403 {
		t.Fatalf("got %d %v, want 403", st, m)
	}
}

// sandboxMidtransKey is the server key the sandbox Midtrans adapter and
// simulator share when config.yaml leaves it empty (internal/app).
const sandboxMidtransKey = "SB-Mid-server-payrouter-sandbox"

// Through the whole sandbox: a pending notification's genuine signature
// relabelled expire is answered 200 "unconfirmed" and kills nothing; the
// customer then pays and the simulator's genuine settlement notification
// settles the payment, with exactly one terminal event.
func TestRelabelledMidtransNotificationInSandbox(t *testing.T) {
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), nil)
	st, b := ti.Do(t, "POST", "/v1/payments", `{"amount":150000,"currency":"IDR","method":"qris","reference":"relabel-1","provider":"midtrans"}`)
	var p payrouter.Payment
	if err := json.Unmarshal(b, &p); err != nil || st != 201 || p.Status != payrouter.StatusRequiresAction || p.Provider != "midtrans" {
		t.Fatalf("create: %d %s", st, b)
	}
	order, gross := payrouter.AttemptKey(p.ID, 1), "150000.00"
	forged, _ := json.Marshal(map[string]string{"order_id": order, "status_code": "201", "gross_amount": gross,
		"transaction_status": "expire", "transaction_id": p.ProviderPaymentID, "payment_type": "qris", "currency": "IDR",
		"signature_key": midtransSignature(order, "201", gross)})
	code, m := postWebhookFrom(t, ti, "midtrans", forged, http.Header{"Content-Type": {"application/json"}})
	if code != 200 || m["status"] != "unconfirmed" {
		t.Fatalf("relabelled expire: %d %v, want 200 unconfirmed", code, m)
	}
	if got := getPayment(t, ti, p.ID); got.Status != payrouter.StatusRequiresAction {
		t.Fatalf("after the relabelled expire: %s, want requires_action", got.Status)
	}
	resp, err := http.Post(ti.URL+"/sim/midtrans/_pay/"+p.ProviderPaymentID, "application/json", bytes.NewBufferString(`{"outcome":"success"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, "the genuine settlement applied", 15*time.Second, func() bool { return getPayment(t, ti, p.ID).Status == payrouter.StatusSucceeded })
	if evs := eventTypes(t, ti, p.ID); count(evs, payrouter.EventSuccess) != 1 || count(evs, payrouter.EventFailed) != 0 {
		t.Errorf("events = %v, want one payment_success and no payment_failed", evs)
	}
}

func midtransSignature(order, code, gross string) string {
	return midtrans.SignatureKey(order, code, gross, sandboxMidtransKey)
}

// A new webhook is applied before it is stored (Receive stores it with its
// outcome in one write). The process dying in between leaves the payment
// updated and the webhook unstored: the provider, never answered, delivers
// again, and that delivery must be a no-op that stores the item.
func TestCrashAfterApplyBeforeStoreRedeliveryIsNoop(t *testing.T) {
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "p.db")
	ti := apptest.StartSandbox(t, dsn, nil)
	p := threeDS(t, ti, "crash-2")
	ti.Stop()

	body, h := stripeEvent(t, sandboxStripeWebhookSecret, "evt_crash_2", p, "succeeded", time.Now())
	n := parseSandboxStripe(t, body, h)
	st, err := sqlite.Open(ctx, dsn, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := router.New(st, nil, nil, router.Options{}, nil).ApplyNotification(ctx, n); err != nil || out != router.OutcomeApplied {
		t.Fatalf("apply = %q, %v", out, err)
	}
	if _, err := st.GetWebhook(ctx, "stripe", n.EventID); !errors.Is(err, payrouter.ErrNotExist) {
		t.Fatalf("webhook stored before the redelivery: %v", err)
	}
	st.Close()

	ti2 := apptest.StartSandbox(t, dsn, nil)
	if code, b := postWebhook(t, ti2, body, h); code != 200 || !bytes.Contains([]byte(b), []byte(`"stale"`)) {
		t.Fatalf("redelivery: %d %s, want 200 stale", code, b)
	}
	if evs := eventTypes(t, ti2, p.ID); count(evs, payrouter.EventSuccess) != 1 {
		t.Errorf("events = %v, want one payment_success", evs)
	}
	if code, b := postWebhook(t, ti2, body, h); code != 200 || !bytes.Contains([]byte(b), []byte(`"duplicate"`)) {
		t.Errorf("third delivery: %d %s, want 200 duplicate", code, b)
	}
}

// Concurrent deliveries of one new event: each is answered 200, exactly
// one reports applied (the others stale or duplicate, even when a later
// applier won the race to store the item), and the payment succeeds once.
func TestConcurrentDeliveriesApplyOnce(t *testing.T) {
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), nil)
	p := threeDS(t, ti, "conc-1")
	body, h := stripeEvent(t, sandboxStripeWebhookSecret, "evt_conc_1", p, "succeeded", time.Now())
	const n = 8
	var wg sync.WaitGroup
	outs := make([]string, n)
	codes := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], outs[i] = postWebhook(t, ti, body, h)
		}()
	}
	wg.Wait()
	applied := 0
	for i := range n {
		if codes[i] != 200 {
			t.Errorf("delivery %d: %d %s", i, codes[i], outs[i])
		}
		if strings.Contains(outs[i], `"applied"`) {
			applied++
		}
	}
	if applied != 1 {
		t.Errorf("%d deliveries applied, want 1: %v", applied, outs)
	}
	if evs := eventTypes(t, ti, p.ID); count(evs, payrouter.EventSuccess) != 1 {
		t.Errorf("events = %v, want one payment_success", evs)
	}
}
