package xendit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
	"github.com/payrouter/payrouter/providers/xendit"
)

// Fixtures in testdata come from Xendit, not from the simulator:
//
//	webhook_payment_succeeded.json  PaymentCallback example of Xendit's API reference as published
//	                                with its official SDK (github.com/xendit/xendit-go docs/PaymentRequestApi.md,
//	                                "Callback Objects"; https://developers.xendit.co/api-reference/#payment-callback)
//	webhook_refund_succeeded.json   RefundCallback example (xendit-go docs/RefundApi.md)
//	webhook_payment_capture_va.json "Payment capture status callback" example of
//	                                https://docs.xendit.co/apidocs/payment-webhook-notification
//	payment_request_requires_action.json  a Payment Request create response (e-wallet,
//	                                REQUIRES_ACTION with WEB and MOBILE actions) from the test fixtures
//	                                of Xendit's own Python SDK; same shape as the DANA example of
//	                                https://docs.xendit.co/ewallet/integrations/test-guideline
//	transactions_list.json          a GET /transactions answer shaped by xendit-go's
//	                                balance_and_transaction models (TransactionsResponse, TransactionResponse,
//	                                FeeResponse, LinkItem; docs/balance_and_transaction/*.md): every required
//	                                field, null settlement fields on money out; the values are ours

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDocumentedWebhooks(t *testing.T) {
	p, _ := xendit.New(xendit.Config{Name: "xendit", SecretKey: secretKey, CallbackToken: callbackToken})
	h := http.Header{"X-Callback-Token": {callbackToken}}
	tests := []struct {
		file string
		want providers.Notification
	}{
		{"webhook_payment_succeeded.json", providers.Notification{Provider: "xendit", Kind: providers.KindPayment,
			ProviderPaymentID: "pr-5b26cae1-545b-49e9-855e-f85128f3e705", OrderID: "25cfd0f9-baee-44ca-9a12-6debe03f3c22",
			Status: payrouter.StatusSucceeded, ProviderStatus: "SUCCEEDED", Amount: 100000, Currency: "PHP", ConfirmByStatus: true}}, // PHP 1000.00
		{"webhook_payment_capture_va.json", providers.Notification{Provider: "xendit", Kind: providers.KindPayment,
			ProviderPaymentID: "pr-1fdaf346-dd2e-4b6c-b938-124c7167a822", OrderID: "example_reference_id",
			Status: payrouter.StatusSucceeded, ProviderStatus: "SUCCEEDED", Amount: 10000, Currency: "IDR", ConfirmByStatus: true}},
		{"webhook_refund_succeeded.json", providers.Notification{Provider: "xendit", Kind: providers.KindRefund,
			ProviderPaymentID: "ddpy-3cd658ae-25b9-4659-aa36-596ae41a809f", ProviderStatus: "SUCCEEDED",
			Amount: 1000000, Currency: "PHP", RefundID: "b2756a1e-e6cd-4352-9a68-0483aa2b6a2",
			ProviderRefundID: "rfd-6f4a377d-a201-437f-9119-f8b00cbbe857", RefundStatus: payrouter.RefundSucceeded, ConfirmRefund: true}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			n, err := p.ParseWebhook(h, fixture(t, tt.file), time.Now())
			if err != nil {
				t.Fatalf("ParseWebhook: %v", err)
			}
			if n.EventID == "" {
				t.Fatalf("no event id")
			}
			got := *n
			got.EventID = ""
			if got != tt.want {
				t.Fatalf("notification =\n %+v, want\n %+v", got, tt.want)
			}
			again, _ := p.ParseWebhook(h, fixture(t, tt.file), time.Now())
			if again.EventID != n.EventID {
				t.Fatalf("event id is not stable: %s vs %s", again.EventID, n.EventID)
			}
		})
	}
	// Nothing of a Xendit webhook is signed: the id comes from the claim
	// (which the router confirms), not from the webhook-id header, which a
	// forger could copy from a genuine event to shadow it.
	t.Run("id from the claim, not the webhook-id header", func(t *testing.T) {
		body := fixture(t, "webhook_payment_succeeded.json")
		n, err := p.ParseWebhook(h, body, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		hh := h.Clone()
		hh.Set("webhook-id", "whk-123")
		withHeader, err := p.ParseWebhook(hh, body, time.Now())
		if err != nil || withHeader.EventID != n.EventID {
			t.Fatalf("with webhook-id: %+v, %v; want event id %s", withHeader, err, n.EventID)
		}
		other := bytes.Replace(body, []byte(`"amount" : 1000,`), []byte(`"amount" : 999,`), 1)
		if bytes.Equal(other, body) {
			t.Fatal("fixture has no amount to change")
		}
		m, err := p.ParseWebhook(h, other, time.Now())
		if err != nil || m.EventID == n.EventID {
			t.Fatalf("another amount: %+v, %v; want another event id than %s", m, err, n.EventID)
		}
	})
}

func TestDocumentedCreateResponse(t *testing.T) {
	body := fixture(t, "payment_request_requires_action.json")
	var sent map[string]any
	var header http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header = r.Header.Clone()
		_ = json.NewDecoder(r.Body).Decode(&sent)
		w.WriteHeader(201)
		w.Write(body)
	}))
	defer srv.Close()
	p, _ := xendit.New(xendit.Config{SecretKey: secretKey, BaseURL: srv.URL})
	req := authReq(payrouter.MethodDANA, 1500)
	res, err := p.Authorize(context.Background(), req)
	if err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	if res.Status != payrouter.StatusRequiresAction || res.ProviderPaymentID != "ewc_93f9be97-67dc-47cf-8225-0bb18cb3dfb1" {
		t.Fatalf("result = %+v", res)
	}
	if na := res.NextAction; na == nil || na.Type != "redirect" || na.URL != "https://mock-test.co" {
		t.Fatalf("next_action = %+v, want redirect to the WEB action", res.NextAction)
	}
	// The request on the wire.
	if u, pw, ok := (&http.Request{Header: header}).BasicAuth(); !ok || u != secretKey || pw != "" {
		t.Fatalf("auth = %q/%q/%v, want basic secret key with empty password", u, pw, ok)
	}
	if header.Get("Idempotency-Key") != req.IdempotencyKey {
		t.Fatalf("idempotency-key = %q", header.Get("Idempotency-Key"))
	}
	pm, _ := sent["payment_method"].(map[string]any)
	ew, _ := pm["ewallet"].(map[string]any)
	if sent["reference_id"] != req.OrderID() || sent["amount"] != float64(1500) || sent["currency"] != "IDR" ||
		pm["type"] != "EWALLET" || pm["reusability"] != "ONE_TIME_USE" || ew["channel_code"] != "DANA" {
		t.Fatalf("request body = %v", sent)
	}
}

func TestAmountsOnTheWire(t *testing.T) {
	var sent map[string]json.RawMessage
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewDecoder(r.Body).Decode(&sent)
		w.WriteHeader(201)
		w.Write([]byte(`{"id":"pr-1","status":"SUCCEEDED","amount":10.5,"currency":"USD"}`))
	}))
	defer srv.Close()
	p, _ := xendit.New(xendit.Config{SecretKey: secretKey, BaseURL: srv.URL})
	req := authReq(payrouter.MethodCard, 1050)
	req.Currency, req.Token = "USD", "pm-x"
	res, err := p.Authorize(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if string(sent["amount"]) != "10.50" {
		t.Fatalf("amount on the wire = %s, want 10.50", sent["amount"])
	}
	if res.AmountCaptured != 1050 {
		t.Fatalf("amount captured = %d, want 1050 cents", res.AmountCaptured)
	}
}

func TestMapStatus(t *testing.T) {
	tests := map[string]payrouter.Status{
		"PENDING": payrouter.StatusRequiresAction, "REQUIRES_ACTION": payrouter.StatusRequiresAction,
		"AWAITING_CAPTURE": payrouter.StatusAuthorized, "SUCCEEDED": payrouter.StatusSucceeded,
		"FAILED": payrouter.StatusFailed, "VOIDED": payrouter.StatusCanceled, "CANCELED": payrouter.StatusCanceled,
		"EXPIRED": payrouter.StatusExpired, "UNKNOWN": "", "": "", "succeeded": "",
	}
	for in, want := range tests {
		if got := xendit.MapStatus(in); got != want {
			t.Errorf("MapStatus(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseWebhook(f *testing.F) {
	p, _ := xendit.New(xendit.Config{SecretKey: secretKey, CallbackToken: callbackToken})
	for _, name := range []string{"webhook_payment_succeeded.json", "webhook_refund_succeeded.json", "webhook_payment_capture_va.json"} {
		f.Add(callbackToken, fixture(f, name))
	}
	f.Add("", []byte(`{}`))
	f.Add(callbackToken, []byte(`{"event":"payment.succeeded","data":{"amount":1e400,"currency":"IDR"}}`))
	f.Fuzz(func(t *testing.T, token string, body []byte) {
		n, err := p.ParseWebhook(http.Header{"X-Callback-Token": {token}}, body, time.Now())
		if err == nil && token != callbackToken {
			t.Fatalf("accepted a webhook with token %q", token)
		}
		if err == nil && n == nil {
			t.Fatalf("nil notification without error")
		}
	})
}

// Settlements reads Xendit's documented transaction shape exactly (decimal
// amounts, fee + VAT, money out negative, settlement status and time) and
// asks with the SDK's query parameters, paging with after_id.
func TestDocumentedTransactions(t *testing.T) {
	var queries []map[string][]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/transactions" {
			t.Errorf("path %s, want /transactions", r.URL.Path)
		}
		queries = append(queries, r.URL.Query())
		if r.URL.Query().Get("after_id") == "" {
			w.Write(fixture(t, "transactions_list.json"))
			return
		}
		w.Write([]byte(`{"has_more":false,"data":[]}`))
	}))
	defer srv.Close()
	p, err := xendit.New(xendit.Config{Name: "xendit", SecretKey: "xnd_development_x", BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	ss, err := p.Settlements(context.Background(), from, from.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []providers.Settlement{
		{Provider: "xendit", ProviderPaymentID: "pr-1f3c5a7e-9b2d-4c6e-8a0f-2d4b6c8e0a13", OrderID: "pay_fixture_a1", Type: "payment",
			Amount: 150000, Fee: 2250, Net: 147750, Currency: "IDR", Status: "SETTLED", SettledAt: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)},
		{Provider: "xendit", OrderID: "re_fixture", RefundID: "re_fixture", Type: "refund", Amount: -50000, Net: -50000, Currency: "IDR",
			SettledAt: time.Date(2026, 11, 29, 11, 0, 0, 0, time.UTC)},
		{Provider: "xendit", ProviderPaymentID: "pr-2a4c6e8a-0c2e-4a6c-8e0a-4c6e8a0c2e57", OrderID: "pay_fixture_usd_a1", Type: "payment",
			Amount: 1050, Fee: 33, Net: 1017, Currency: "USD", Status: "PENDING", SettledAt: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)},
	}
	if len(ss) != len(want) {
		t.Fatalf("got %d settlements %+v, want %d", len(ss), ss, len(want))
	}
	for i := range want {
		if ss[i] != want[i] {
			t.Errorf("settlement %d = %+v\nwant %+v", i, ss[i], want[i])
		}
	}
	if len(queries) != 2 {
		t.Fatalf("%d requests, want 2 (has_more)", len(queries))
	}
	q := queries[0]
	if q["created[gte]"][0] != "2026-11-29T00:00:00Z" || q["created[lte]"][0] != "2026-11-29T23:59:59Z" || q["limit"][0] != "50" || q["statuses"][0] != "SUCCESS" {
		t.Errorf("first query = %v", q)
	}
	if got := queries[1]["after_id"]; len(got) != 1 || got[0] != "txn_9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a" {
		t.Errorf("second query after_id = %v, want the last id of the first page", got)
	}
}

// FuzzWebhookClaims: a Xendit payment callback with the right token is
// still only a claim (ConfirmByStatus), and its dedupe id never comes from
// the unsigned webhook-id header.
func FuzzWebhookClaims(f *testing.F) {
	p, _ := xendit.New(xendit.Config{SecretKey: secretKey, CallbackToken: callbackToken})
	for _, name := range []string{"webhook_payment_succeeded.json", "webhook_refund_succeeded.json", "webhook_payment_capture_va.json"} {
		f.Add(fixture(f, name), "whk-1")
	}
	f.Add([]byte(`{"event":"payment.failed","data":{"id":"x","status":"FAILED"}}`), "")
	f.Fuzz(func(t *testing.T, body []byte, webhookID string) {
		h := http.Header{"X-Callback-Token": {callbackToken}}
		n, err := p.ParseWebhook(h, body, time.Now())
		if err != nil {
			return
		}
		if n.Kind == providers.KindPayment && !n.ConfirmByStatus {
			t.Fatalf("payment callback not marked for confirmation: %+v", n)
		}
		h.Set("Webhook-Id", webhookID)
		if m, err := p.ParseWebhook(h, body, time.Now()); err != nil || m.EventID != n.EventID {
			t.Fatalf("webhook-id %q changed the dedupe id: %+v vs %+v (%v)", webhookID, n, m, err)
		}
	})
}
