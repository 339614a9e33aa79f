package xendit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/sim"
	"github.com/payrouter/payrouter/internal/sim/simtest"
	"github.com/payrouter/payrouter/internal/sim/xenditsim"
	"github.com/payrouter/payrouter/providers"
	"github.com/payrouter/payrouter/providers/xendit"
)

// sdkClient builds requests the way xendit-go v7 does (client.go
// PrepareRequest and the generated payment_request, refund and
// balance_and_transaction services), written out because the SDK is not
// reachable as a dependency: URL = the configured server URL (path prefix
// included) + the operation path, query parameters with url.Values
// (created[gte] and created[lte] as RFC 3339 from DateRangeFilter, limit
// formatted with 'g'), the body as JSON, headers xendit-lib "go",
// xendit-lib-ver, Accept and Content-Type application/json, the optional
// idempotency-key, and SetBasicAuth(secret key, "").
type sdkClient struct {
	server, key string
}

func (c *sdkClient) call(t *testing.T, method, path string, q url.Values, hdr map[string]string, body, out any) int {
	t.Helper()
	var rd io.Reader
	headers := map[string]string{"Accept": "application/json", "xendit-lib": "go", "xendit-lib-ver": "7.0.0"}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
		headers["Content-Type"] = "application/json"
	}
	for k, v := range hdr {
		headers[k] = v
	}
	u, err := url.Parse(c.server + path)
	if err != nil {
		t.Fatal(err)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequest(method, u.String(), rd)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for k, v := range headers {
		h[k] = []string{v} // raw keys, as the SDK sets them
	}
	req.Header = h
	req.Header.Add("User-Agent", "OpenAPI-Generator/1.0.0/go")
	req.SetBasicAuth(c.key, "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

func keySet(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// Fields of xendit-go's models (payment_request.PaymentRequest, Capture,
// balance_and_transaction.TransactionResponse, TransactionsResponse,
// FeeResponse, Balance, PaymentSimulation); the refund object adds status,
// reason, payment_id, invoice_id and payment_method_type from Xendit's
// refund API reference (the SDK's Refund model omits them).
var (
	prFields      = keySet("id", "created", "updated", "reference_id", "business_id", "customer_id", "customer", "amount", "min_amount", "max_amount", "country", "currency", "payment_method", "description", "failure_code", "capture_method", "initiator", "card_verification_results", "status", "actions", "metadata", "shipping_information", "items")
	captureFields = keySet("id", "payment_request_id", "payment_id", "reference_id", "currency", "authorized_amount", "captured_amount", "status", "payment_method", "failure_code", "customer_id", "metadata", "channel_properties", "created", "updated")
	refundFields  = keySet("id", "payment_request_id", "amount", "channel_code", "country", "currency", "reference_id", "failure_code", "refund_fee_amount", "created", "updated", "metadata",
		"status", "reason", "payment_id", "invoice_id", "payment_method_type")
	txnFields     = keySet("id", "product_id", "type", "status", "channel_category", "channel_code", "account_identifier", "reference_id", "currency", "amount", "cashflow", "settlement_status", "estimated_settlement_time", "business_id", "fee", "created", "updated")
	txnListFields = keySet("has_more", "links", "data")
	feeFields     = keySet("xendit_fee", "value_added_tax", "xendit_withholding_tax", "third_party_withholding_tax", "status")
	txnTypes      = keySet("BATCH_DISBURSEMENT", "DISBURSEMENT", "PAYMENT", "REMITTANCE", "REMITTANCE_PAYOUT", "REMITTANCE_COLLECTION", "TRANSFER", "PLATFORM_FEE", "REFUND", "CASHBACK", "TOPUP", "WITHDRAWAL", "OTHER")
	channelCats   = keySet("BANK", "CARDLESS_CREDIT", "PAYLATER", "CARDS", "CASH", "DIRECT_DEBIT", "EWALLET", "INVOICE", "QR_CODE", "RETAIL_OUTLET", "VIRTUAL_ACCOUNT", "XENPLATFORM", "DIRECT_BANK_TRANSFER", "OTHER")
)

func only(t *testing.T, what string, got map[string]any, allowed map[string]bool) {
	t.Helper()
	for k := range got {
		if !allowed[k] {
			t.Errorf("%s carries %q, which Xendit's model does not have", what, k)
		}
	}
}

// A client built the way xendit-go builds requests, configured with the
// simulator's base URL (<host>/sim/xendit), works for every operation
// payrouter uses, and the simulator answers with the SDK models' fields.
func TestSDKClientAgainstSimulator(t *testing.T) {
	e := newEnv(t)
	c := &sdkClient{server: e.url, key: secretKey}
	start := time.Now().UTC().Add(-time.Second).Truncate(time.Second)

	var qr map[string]any
	if st := c.call(t, "POST", "/payment_requests", nil, map[string]string{"idempotency-key": "sdk-qr"},
		map[string]any{"reference_id": "sdk-qr_a1", "amount": 150000, "currency": "IDR", "country": "ID",
			"payment_method": map[string]any{"type": "QR_CODE", "reusability": "ONE_TIME_USE", "qr_code": map[string]any{"channel_code": "QRIS"}}}, &qr); st != 201 {
		t.Fatalf("create answered %d %v", st, qr)
	}
	only(t, "payment request", qr, prFields)
	id := qr["id"].(string)
	var got, list map[string]any
	if st := c.call(t, "GET", "/payment_requests/"+id, nil, nil, nil, &got); st != 200 || got["status"] != "PENDING" {
		t.Fatalf("get answered %d %v", st, got)
	}
	if st := c.call(t, "GET", "/payment_requests", url.Values{"reference_id": {"sdk-qr_a1"}}, nil, nil, &list); st != 200 || len(list["data"].([]any)) != 1 {
		t.Fatalf("list answered %d %v", st, list)
	}
	var simRes map[string]any
	if st := c.call(t, "POST", "/payment_requests/"+id+"/payments/simulate", nil, nil, nil, &simRes); st != 200 {
		t.Fatalf("simulate answered %d %v", st, simRes)
	}
	only(t, "payment simulation", simRes, keySet("status", "message"))
	e.waitHook(t, func(n *providers.Notification) bool {
		return n.ProviderPaymentID == id && n.Status == payrouter.StatusSucceeded
	})
	if c.call(t, "GET", "/payment_requests/"+id, nil, nil, nil, &got); got["status"] != "SUCCEEDED" {
		t.Fatalf("after simulate the payment request is %v", got["status"])
	}
	var rf map[string]any
	if st := c.call(t, "POST", "/refunds", nil, map[string]string{"idempotency-key": "sdk-rf"},
		map[string]any{"payment_request_id": id, "reference_id": "re_sdk", "amount": 50000, "currency": "IDR", "reason": "REQUESTED_BY_CUSTOMER"}, &rf); st != 200 {
		t.Fatalf("refund answered %d %v", st, rf)
	}
	only(t, "refund", rf, refundFields)

	var card, capt map[string]any
	c.call(t, "POST", "/payment_requests", nil, map[string]string{"idempotency-key": "sdk-card"},
		map[string]any{"reference_id": "sdk-card_a1", "amount": 100000, "currency": "IDR", "capture_method": "MANUAL", "payment_method_id": "tok_sandbox_success"}, &card)
	if card["status"] != "AWAITING_CAPTURE" {
		t.Fatalf("manual card = %v", card)
	}
	if st := c.call(t, "POST", "/payment_requests/"+card["id"].(string)+"/captures", nil, map[string]string{"idempotency-key": "sdk-capt"},
		map[string]any{"capture_amount": 100000}, &capt); st != 200 || capt["status"] != "SUCCEEDED" {
		t.Fatalf("capture answered %d %v", st, capt)
	}
	only(t, "capture", capt, captureFields)

	// Cancel is not in the SDK: Xendit's v3 endpoint with its api-version header.
	var ew, canceled map[string]any
	c.call(t, "POST", "/payment_requests", nil, map[string]string{"idempotency-key": "sdk-ew"},
		map[string]any{"reference_id": "sdk-ew_a1", "amount": 20000, "currency": "IDR", "payment_method": map[string]any{"type": "EWALLET", "reusability": "ONE_TIME_USE",
			"ewallet": map[string]any{"channel_code": "DANA", "channel_properties": map[string]any{"success_return_url": "https://shop.example/r"}}}}, &ew)
	if st := c.call(t, "POST", "/v3/payment_requests/"+ew["id"].(string)+"/cancel", nil, map[string]string{"api-version": "2024-11-11"}, map[string]any{}, &canceled); st != 200 || canceled["status"] != "CANCELED" {
		t.Fatalf("cancel answered %d %v", st, canceled)
	}

	// Transactions: a page at a time with the SDK's limit and after_id cursor.
	q := url.Values{"types": {"PAYMENT", "REFUND"}, "statuses": {"SUCCESS"}, "limit": {"1"},
		"created[gte]": {start.Format(time.RFC3339)}, "created[lte]": {time.Now().UTC().Add(time.Minute).Format(time.RFC3339)}}
	var txns []map[string]any
	for pages := 0; ; pages++ {
		var page map[string]any
		if st := c.call(t, "GET", "/transactions", q, nil, nil, &page); st != 200 {
			t.Fatalf("transactions answered %d %v", st, page)
		}
		only(t, "transactions list", page, txnListFields)
		for _, x := range page["data"].([]any) {
			tx := x.(map[string]any)
			only(t, "transaction", tx, txnFields)
			only(t, "transaction fee", tx["fee"].(map[string]any), feeFields)
			if !txnTypes[tx["type"].(string)] || !channelCats[tx["channel_category"].(string)] {
				t.Errorf("transaction type %v / channel_category %v not in the SDK's enums", tx["type"], tx["channel_category"])
			}
			if s := tx["settlement_status"]; s != "PENDING" && s != "SETTLED" {
				t.Errorf("settlement_status %v", s)
			}
			txns = append(txns, tx)
		}
		if page["has_more"] != true {
			break
		}
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		q.Set("after_id", txns[len(txns)-1]["id"].(string))
	}
	// QRIS payment, its refund, the captured card; not the canceled e-wallet.
	if len(txns) != 3 || txns[0]["type"] != "PAYMENT" || txns[1]["type"] != "REFUND" || txns[2]["product_id"] != id {
		t.Fatalf("transactions (newest first) = %v", txns)
	}
	if txns[2]["cashflow"] != "MONEY_IN" || txns[1]["cashflow"] != "MONEY_OUT" || fmt.Sprint(txns[2]["fee"].(map[string]any)["xendit_fee"]) != "1050" {
		t.Errorf("QRIS 150000 at 0.7%%: want fee 1050 money in, refund money out: %v / %v", txns[2], txns[1])
	}
	var bal map[string]any
	if st := c.call(t, "GET", "/balance", url.Values{"account_type": {"CASH"}, "currency": {"IDR"}}, nil, nil, &bal); st != 200 {
		t.Fatalf("balance answered %d %v", st, bal)
	}
	only(t, "balance", bal, keySet("balance"))
	// 150000 − 1050 − 50000 + 100000 − (2900 + 2000)
	if fmt.Sprint(bal["balance"]) != "194050" {
		t.Errorf("CASH balance = %v, want 194050", bal["balance"])
	}
	if st := c.call(t, "GET", "/balance", url.Values{"account_type": {"SAVINGS"}}, nil, nil, &bal); st != 400 {
		t.Errorf("an account_type outside the enum answered %d, want 400", st)
	}
	if st := c.call(t, "GET", "/transactions", url.Values{"types": {"CHARGE"}}, nil, nil, &bal); st != 400 {
		t.Errorf("a transaction type outside the enum answered %d, want 400", st)
	}
}

// Settlements pages through GET /transactions (more than one page of 50)
// and reports payments positive, refunds negative, fees per the sandbox
// table, settlement status PENDING until the settlement delay has passed.
func TestSettlementsPaged(t *testing.T) {
	hooks := simtest.NewHooks(t)
	now := time.Now()
	clock := func() time.Time { return now }
	var be *xenditsim.Backend
	url, _ := simtest.Serve(t, "xendit", func(base string) sim.Backend {
		be = xenditsim.New(xenditsim.Options{SecretKey: secretKey, CallbackToken: callbackToken, PublicURL: base,
			Notifier: hooks.Notifier(), Now: clock, SettleAfter: 48 * time.Hour})
		return be
	})
	t.Cleanup(be.Flush)
	p, err := xendit.New(xendit.Config{Name: "xendit", SecretKey: secretKey, CallbackToken: callbackToken, BaseURL: url, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var ids []string
	for i := 0; i < 60; i++ {
		req := authReq(payrouter.MethodCard, 10000+int64(i))
		req.Token = "tok_sandbox_success"
		res, err := p.Authorize(ctx, req)
		if err != nil || res.Status != payrouter.StatusSucceeded {
			t.Fatalf("card %d: %+v %v", i, res, err)
		}
		ids = append(ids, res.ProviderPaymentID)
	}
	if _, err := p.Refund(ctx, &providers.RefundRequest{ProviderPaymentID: ids[0], RefundID: "re_paged", IdempotencyKey: "re_paged", Amount: 4000, Currency: "IDR"}); err != nil {
		t.Fatal(err)
	}
	ss, err := p.Settlements(ctx, now.Add(-time.Minute), now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 61 {
		t.Fatalf("got %d settlements, want 60 payments and 1 refund", len(ss))
	}
	seen := map[string]bool{}
	for _, s := range ss {
		switch s.Type {
		case "payment":
			seen[s.ProviderPaymentID] = true
			if want := (s.Amount*290+5000)/10000 + 2000; s.Fee != want || s.Net != s.Amount-s.Fee || s.Status != "PENDING" || !s.SettledAt.Equal(now.Add(48*time.Hour).UTC()) {
				t.Errorf("payment settlement %+v, want fee %d, pending until +48h", s, want)
			}
		case "refund":
			if s.Amount != -4000 || s.Fee != 0 || s.OrderID != "re_paged" {
				t.Errorf("refund settlement %+v, want -4000, no fee, order id re_paged", s)
			}
		default:
			t.Errorf("unexpected settlement %+v", s)
		}
	}
	for _, id := range ids {
		if !seen[id] {
			t.Errorf("payment %s is missing from the settlements", id)
		}
	}
	// A window that ends before the payments lists none of them.
	if ss, err := p.Settlements(ctx, now.Add(-time.Hour), now.Add(-time.Minute)); err != nil || len(ss) != 0 {
		t.Errorf("earlier window: %d settlements, %v; want none", len(ss), err)
	}
}

// A payment request Xendit will not cancel (here: already paid) is
// Invalid "not_cancelable", which the router takes as "let it expire".
func TestCancelRefusedIsNotCancelable(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	req := authReq(payrouter.MethodQRIS, 30000)
	res, err := e.p.Authorize(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.be.Pay(ctx, res.ProviderPaymentID, sim.OutcomeSuccess); err != nil {
		t.Fatal(err)
	}
	_, err = e.p.Cancel(ctx, &providers.CancelRequest{ProviderPaymentID: res.ProviderPaymentID, IdempotencyKey: req.IdempotencyKey + "_x"})
	if pe := errClass(t, err); pe.Class != providers.Invalid || pe.Code != "not_cancelable" || pe.HTTPStatus != 409 {
		t.Fatalf("cancel of a paid payment request = %v, want invalid not_cancelable (409)", err)
	}
	if _, err := e.p.Cancel(ctx, &providers.CancelRequest{ProviderPaymentID: "pr-unknown", IdempotencyKey: "k"}); errClass(t, err).Code != "not_found" {
		t.Fatalf("cancel of an unknown id = %v, want not_found", err)
	}
}

// The simulator refuses values outside xendit-go's enums, as Xendit does.
func TestSimulatorRefusesUnknownEnums(t *testing.T) {
	e := newEnv(t)
	c := &sdkClient{server: e.url, key: secretKey}
	for name, pm := range map[string]map[string]any{
		"reusability": {"type": "QR_CODE", "reusability": "FOREVER", "qr_code": map[string]any{"channel_code": "QRIS"}},
		"type":        {"type": "CASH", "reusability": "ONE_TIME_USE"},
	} {
		var resp map[string]any
		st := c.call(t, "POST", "/payment_requests", nil, nil, map[string]any{"reference_id": "enum-" + name, "amount": 10000, "currency": "IDR", "payment_method": pm}, &resp)
		if st != 400 || resp["error_code"] != "API_VALIDATION_ERROR" {
			t.Errorf("%s outside the enum answered %d %v, want 400 API_VALIDATION_ERROR", name, st, resp)
		}
	}
	if n := len(e.be.Ledger()); n != 0 {
		t.Errorf("refused requests created %d payment requests", n)
	}
}
