package midtrans_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/sim"
	"github.com/payrouter/payrouter/internal/sim/midtranssim"
	"github.com/payrouter/payrouter/internal/sim/simtest"
	"github.com/payrouter/payrouter/providers"
	"github.com/payrouter/payrouter/providers/midtrans"
)

const serverKey = "SB-Mid-server-TEST0123456789"

type env struct {
	p     *midtrans.Provider
	be    *midtranssim.Backend
	sim   *sim.Sim
	url   string // the simulator's base
	hooks *simtest.Hooks
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{hooks: simtest.NewHooks(t)}
	e.url, e.sim = simtest.Serve(t, "midtrans", func(base string) sim.Backend {
		e.be = midtranssim.New(midtranssim.Options{ServerKey: serverKey, PublicURL: base, Notifier: e.hooks.Notifier()})
		return e.be
	})
	t.Cleanup(e.be.Flush)
	e.p = e.provider(t, serverKey, 2*time.Second)
	return e
}

func (e *env) provider(t *testing.T, key string, timeout time.Duration) *midtrans.Provider {
	t.Helper()
	p, err := midtrans.New(midtrans.Config{Name: "mt-test", ServerKey: key, BaseURL: e.url, Timeout: timeout})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func (e *env) waitHook(t *testing.T, match func(*providers.Notification) bool) *providers.Notification {
	t.Helper()
	return e.hooks.Wait(t, e.p, match)
}

var seq int

func authReq(method payrouter.Method, amount int64) *providers.AuthorizeRequest {
	seq++
	id := "pay_" + strings.Repeat("0", 3) + time.Now().Format("150405.000000") + "_" + string(rune('a'+seq%26))
	id = strings.ReplaceAll(id, ".", "")
	return &providers.AuthorizeRequest{
		PaymentID: id, Attempt: 1, IdempotencyKey: payrouter.AttemptKey(id, 1),
		Amount: amount, Currency: "IDR", Method: method, Capture: payrouter.CaptureAutomatic,
		Customer:  payrouter.Customer{Name: "Budi", Email: "budi@example.com", Phone: "081234567890"},
		ReturnURL: "https://merchant.example/return", Description: "test order",
	}
}

func errClass(t *testing.T, err error) *providers.Error {
	t.Helper()
	return simtest.ProviderError(t, err)
}

func TestCustomerActionMethods(t *testing.T) {
	e := newEnv(t)
	methods := []struct {
		name   string
		method payrouter.Method
		bank   string
		action string
	}{
		{"gopay", payrouter.MethodGoPay, "", "deeplink"},
		{"qris", payrouter.MethodQRIS, "", "qr_code"},
		{"shopeepay", payrouter.MethodShopeePay, "", "deeplink"},
		{"bca", payrouter.MethodBankTransfer, "bca", "bank_transfer"},
		{"bni", payrouter.MethodBankTransfer, "bni", "bank_transfer"},
		{"bri", payrouter.MethodBankTransfer, "bri", "bank_transfer"},
		{"permata", payrouter.MethodBankTransfer, "permata", "bank_transfer"},
		{"mandiri", payrouter.MethodBankTransfer, "mandiri", "bank_transfer"},
		{"card_3ds", payrouter.MethodCard, "", "redirect"},
	}
	outcomes := []struct {
		outcome sim.Outcome
		want    payrouter.Status
	}{
		{sim.OutcomeSuccess, payrouter.StatusSucceeded},
		{sim.OutcomeFailure, payrouter.StatusFailed},
		{sim.OutcomeExpire, payrouter.StatusExpired},
	}
	for _, m := range methods {
		for _, o := range outcomes {
			t.Run(m.name+"/"+string(o.outcome), func(t *testing.T) {
				req := authReq(m.method, 150000)
				req.Bank = m.bank
				if m.method == payrouter.MethodCard {
					req.Token = "tok_sandbox_3ds"
				}
				res, err := e.p.Authorize(context.Background(), req)
				if err != nil {
					t.Fatalf("Authorize: %v", err)
				}
				if res.Status != payrouter.StatusRequiresAction {
					t.Fatalf("status = %q, want requires_action", res.Status)
				}
				na := res.NextAction
				if na == nil || na.Type != m.action {
					t.Fatalf("next_action = %+v, want type %s", na, m.action)
				}
				switch na.Type {
				case "bank_transfer":
					if na.VANumber == "" || !strings.HasPrefix(na.Bank, m.bank) {
						t.Fatalf("bank_transfer next_action = %+v", na)
					}
					if m.bank == "mandiri" && na.BillerCode == "" {
						t.Fatalf("mandiri bill without biller code: %+v", na)
					}
				case "qr_code":
					if !strings.HasPrefix(na.QRString, "000201") || !strings.Contains(na.QRString, res.ProviderPaymentID) {
						t.Fatalf("qr_string %q is not a QRIS payload with the id", na.QRString)
					}
				default:
					if want := e.url + "/checkout/" + res.ProviderPaymentID; na.URL != want {
						t.Fatalf("next_action url = %q, want %q", na.URL, want)
					}
					// The checkout page must be usable by a human.
					resp, err := http.Get(na.URL)
					if err != nil || resp.StatusCode != 200 {
						t.Fatalf("checkout page: %v %v", resp, err)
					}
					resp.Body.Close()
				}
				if err := e.be.Pay(context.Background(), res.ProviderPaymentID, o.outcome); err != nil {
					t.Fatalf("Pay: %v", err)
				}
				n := e.waitHook(t, func(n *providers.Notification) bool {
					return n.OrderID == req.OrderID() && n.Status != payrouter.StatusRequiresAction
				})
				want := o.want
				if m.method == payrouter.MethodCard && o.outcome == sim.OutcomeSuccess {
					want = payrouter.StatusSucceeded // capture
				}
				if n.Status != want || n.ProviderPaymentID != res.ProviderPaymentID || n.Amount != 150000 || n.Currency != "IDR" {
					t.Fatalf("notification = %+v, want status %s, id %s, amount 150000 IDR", n, want, res.ProviderPaymentID)
				}
				if !n.ConfirmByStatus || n.Provider != "mt-test" || n.EventID == "" {
					t.Fatalf("notification metadata = %+v", n)
				}
				st, err := e.p.Status(context.Background(), &providers.StatusRequest{OrderID: req.OrderID()})
				if err != nil {
					t.Fatalf("Status by order id: %v", err)
				}
				if st.Status != want || st.ProviderPaymentID != res.ProviderPaymentID {
					t.Fatalf("Status = %+v, want %s", st, want)
				}
			})
		}
	}
}

func TestCard(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name       string
		token      string
		capture    payrouter.CaptureMode
		wantStatus payrouter.Status
		wantClass  providers.Class
		wantCode   string
	}{
		{"success", "tok_sandbox_success", payrouter.CaptureAutomatic, payrouter.StatusSucceeded, "", ""},
		{"manual", "tok_sandbox_success", payrouter.CaptureManual, payrouter.StatusAuthorized, "", ""},
		{"decline", "tok_sandbox_decline", payrouter.CaptureAutomatic, "", providers.Declined, "card_declined"},
		{"insufficient", "tok_sandbox_insufficient_funds", payrouter.CaptureAutomatic, "", providers.Declined, "insufficient_funds"},
		{"bad token", "tok_nonsense", payrouter.CaptureAutomatic, "", providers.Invalid, "invalid_request"},
		{"no token", "", payrouter.CaptureAutomatic, "", providers.Invalid, "token_required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := authReq(payrouter.MethodCard, 10000)
			req.Token, req.Capture = tt.token, tt.capture
			res, err := e.p.Authorize(context.Background(), req)
			if tt.wantClass != "" {
				pe := errClass(t, err)
				if pe.Class != tt.wantClass || pe.Code != tt.wantCode {
					t.Fatalf("error = %v, want %s/%s", pe, tt.wantClass, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			if res.Status != tt.wantStatus {
				t.Fatalf("status = %s, want %s", res.Status, tt.wantStatus)
			}
			if tt.wantStatus == payrouter.StatusSucceeded && res.AmountCaptured != 10000 {
				t.Fatalf("amount captured = %d, want 10000", res.AmountCaptured)
			}
		})
	}
}

func TestCaptureCancelRefund(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	t.Run("manual capture of all", func(t *testing.T) {
		req := authReq(payrouter.MethodCard, 25000)
		req.Token, req.Capture = "tok_sandbox_success", payrouter.CaptureManual
		res, err := e.p.Authorize(ctx, req)
		if err != nil || res.Status != payrouter.StatusAuthorized {
			t.Fatalf("Authorize = %+v, %v", res, err)
		}
		c, err := e.p.Capture(ctx, &providers.CaptureRequest{ProviderPaymentID: res.ProviderPaymentID, IdempotencyKey: req.IdempotencyKey + "_c", Currency: "IDR"})
		if err != nil {
			t.Fatalf("Capture: %v", err)
		}
		if c.Status != payrouter.StatusSucceeded || c.AmountCaptured != 25000 {
			t.Fatalf("Capture = %+v, want succeeded 25000", c)
		}
		_, err = e.p.Capture(ctx, &providers.CaptureRequest{ProviderPaymentID: res.ProviderPaymentID, IdempotencyKey: req.IdempotencyKey + "_c2", Amount: 1})
		if pe := errClass(t, err); pe.Class != providers.Invalid || pe.Code != "invalid_state" {
			t.Fatalf("second capture error = %v, want invalid/invalid_state", pe)
		}
	})

	t.Run("cancel authorization", func(t *testing.T) {
		req := authReq(payrouter.MethodCard, 25000)
		req.Token, req.Capture = "tok_sandbox_success", payrouter.CaptureManual
		res, err := e.p.Authorize(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		c, err := e.p.Cancel(ctx, &providers.CancelRequest{ProviderPaymentID: res.ProviderPaymentID, IdempotencyKey: req.IdempotencyKey + "_x", Method: payrouter.MethodCard})
		if err != nil || c.Status != payrouter.StatusCanceled {
			t.Fatalf("Cancel = %+v, %v; want canceled", c, err)
		}
	})

	t.Run("cancel pending gopay by order id expires it", func(t *testing.T) {
		req := authReq(payrouter.MethodGoPay, 25000)
		if _, err := e.p.Authorize(ctx, req); err != nil {
			t.Fatal(err)
		}
		c, err := e.p.Cancel(ctx, &providers.CancelRequest{OrderID: req.OrderID(), IdempotencyKey: req.IdempotencyKey + "_x", Method: payrouter.MethodGoPay})
		if err != nil || c.Status != payrouter.StatusExpired {
			t.Fatalf("Cancel = %+v, %v; want expired", c, err)
		}
		if err := e.be.Pay(ctx, req.OrderID(), sim.OutcomeSuccess); !errors.Is(err, sim.ErrNotPayable) {
			t.Fatalf("Pay after cancel = %v, want ErrNotPayable", err)
		}
	})

	t.Run("partial refunds", func(t *testing.T) {
		req := authReq(payrouter.MethodCard, 10000)
		req.Token = "tok_sandbox_success"
		res, err := e.p.Authorize(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		refund := &providers.RefundRequest{ProviderPaymentID: res.ProviderPaymentID, RefundID: "re_1", IdempotencyKey: "re_1", Amount: 3000, Currency: "IDR", Method: payrouter.MethodCard, Reason: "customer asked"}
		for i := 0; i < 2; i++ { // the same refund twice refunds once
			rr, err := e.p.Refund(ctx, refund)
			if err != nil || rr.Status != payrouter.RefundSucceeded || rr.ProviderRefundID == "" {
				t.Fatalf("Refund #%d = %+v, %v", i, rr, err)
			}
		}
		n := e.waitHook(t, func(n *providers.Notification) bool {
			return n.OrderID == req.OrderID() && n.Kind == providers.KindRefund
		})
		if n.RefundID != "re_1" || n.Amount != 3000 || n.Status != payrouter.StatusPartiallyRefunded {
			t.Fatalf("refund notification = %+v", n)
		}
		st, err := e.p.Status(ctx, &providers.StatusRequest{ProviderPaymentID: res.ProviderPaymentID})
		if err != nil || st.Status != payrouter.StatusPartiallyRefunded {
			t.Fatalf("Status = %+v, %v; want partially_refunded", st, err)
		}
		// The status answer lists the refunds: what a refund notification
		// (whose refund key is not signed) is confirmed against.
		if len(st.Refunds) != 1 || st.Refunds[0].RefundID != "re_1" || st.Refunds[0].Amount != 3000 {
			t.Fatalf("Status refunds = %+v, want re_1 for 3000", st.Refunds)
		}
		if got := ledger(t, e, res.ProviderPaymentID).Refunded; got != 3000 {
			t.Fatalf("ledger refunded = %d, want 3000", got)
		}
		_, err = e.p.Refund(ctx, &providers.RefundRequest{ProviderPaymentID: res.ProviderPaymentID, RefundID: "re_2", IdempotencyKey: "re_2", Amount: 8000, Currency: "IDR"})
		if pe := errClass(t, err); pe.Class != providers.Invalid {
			t.Fatalf("over-refund error = %v, want invalid", pe)
		}
		if _, err = e.p.Refund(ctx, &providers.RefundRequest{ProviderPaymentID: res.ProviderPaymentID, RefundID: "re_3", Amount: 7000, Currency: "IDR"}); err != nil {
			t.Fatalf("refund of the rest: %v", err)
		}
		if st, _ := e.p.Status(ctx, &providers.StatusRequest{ProviderPaymentID: res.ProviderPaymentID}); st.Status != payrouter.StatusRefunded {
			t.Fatalf("Status = %+v, want refunded", st)
		}
	})

	t.Run("refund of a VA refused before sending", func(t *testing.T) {
		_, err := e.p.Refund(ctx, &providers.RefundRequest{ProviderPaymentID: "x", RefundID: "r", Amount: 1, Currency: "IDR", Method: payrouter.MethodBankTransfer})
		if pe := errClass(t, err); pe.Class != providers.Invalid {
			t.Fatalf("error = %v, want invalid", pe)
		}
	})
}

func ledger(t *testing.T, e *env, id string) sim.LedgerEntry {
	t.Helper()
	for _, l := range e.be.Ledger() {
		if l.ID == id {
			return l
		}
	}
	t.Fatalf("%s not in the ledger", id)
	return sim.LedgerEntry{}
}

func countOrder(e *env, order string) int {
	n := 0
	for _, l := range e.be.Ledger() {
		if l.Reference == order {
			n++
		}
	}
	return n
}

func TestIdempotentReplay(t *testing.T) {
	e := newEnv(t)
	req := authReq(payrouter.MethodQRIS, 50000)
	a, err := e.p.Authorize(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.p.Authorize(context.Background(), req)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if a.ProviderPaymentID != b.ProviderPaymentID {
		t.Fatalf("replay gave %s, first %s", b.ProviderPaymentID, a.ProviderPaymentID)
	}
	if n := countOrder(e, req.OrderID()); n != 1 {
		t.Fatalf("ledger has %d charges for the order, want 1", n)
	}
	// The same order id without the key: Midtrans refuses the duplicate
	// order (406, carried in an HTTP 200 body).
	body := `{"payment_type":"qris","transaction_details":{"order_id":"` + req.OrderID() + `","gross_amount":50000}}`
	hreq, _ := http.NewRequest("POST", e.url+"/v2/charge", strings.NewReader(body))
	hreq.SetBasicAuth(serverKey, "")
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		StatusCode string `json:"status_code"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != 200 || got.StatusCode != "406" {
		t.Fatalf("duplicate order = HTTP %d body %q, want HTTP 200 body 406", resp.StatusCode, got.StatusCode)
	}
}

func TestDuplicateOrderIsInvalid(t *testing.T) {
	e := newEnv(t)
	req := authReq(payrouter.MethodGoPay, 50000)
	if _, err := e.p.Authorize(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	// The same attempt (order id and key) with a different body: refused,
	// never charged twice.
	other := *req
	other.Method = payrouter.MethodQRIS
	_, err := e.p.Authorize(context.Background(), &other)
	if pe := errClass(t, err); pe.Class != providers.Invalid {
		t.Fatalf("error = %v, want invalid", pe)
	}
	if n := countOrder(e, req.OrderID()); n != 1 {
		t.Fatalf("ledger has %d charges for the order, want 1", n)
	}
}

func TestBodyStatusCodes(t *testing.T) {
	tests := []struct {
		name      string
		http      int
		body      string
		wantClass providers.Class
		wantCode  string
	}{
		{"406 in HTTP 200", 200, `{"status_code":"406","status_message":"duplicate order id"}`, providers.Invalid, "duplicate_order_id"},
		{"400 in HTTP 200 (the SDK ignores it)", 200, `{"status_code":"400","status_message":"validation"}`, providers.Invalid, "invalid_request"},
		{"500 in HTTP 200", 200, `{"status_code":"500","status_message":"internal"}`, providers.Ambiguous, "provider_error"},
		{"503", 503, `{"status_code":"503","status_message":"maintenance"}`, providers.Unavailable, "provider_unavailable"},
		{"HTML 502", 502, `<html>bad gateway</html>`, providers.Ambiguous, "provider_error"},
		{"garbage 200", 200, `<html>ok?</html>`, providers.Ambiguous, "bad_response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.http)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			p, _ := midtrans.New(midtrans.Config{ServerKey: serverKey, BaseURL: srv.URL})
			_, err := p.Authorize(context.Background(), authReq(payrouter.MethodQRIS, 1000))
			if pe := errClass(t, err); pe.Class != tt.wantClass || pe.Code != tt.wantCode {
				t.Fatalf("error = %v, want %s/%s", pe, tt.wantClass, tt.wantCode)
			}
		})
	}
	t.Run("407 expired is a state, not an error", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"status_code":"407","transaction_id":"t","order_id":"o","transaction_status":"expire","gross_amount":"1000.00"}`))
		}))
		defer srv.Close()
		p, _ := midtrans.New(midtrans.Config{ServerKey: serverKey, BaseURL: srv.URL})
		st, err := p.Status(context.Background(), &providers.StatusRequest{OrderID: "o"})
		if err != nil || st.Status != payrouter.StatusExpired {
			t.Fatalf("Status = %+v, %v; want expired", st, err)
		}
	})
}

func TestWrongCredentials(t *testing.T) {
	e := newEnv(t)
	p := e.provider(t, "SB-Mid-server-WRONG", time.Second)
	_, err := p.Authorize(context.Background(), authReq(payrouter.MethodQRIS, 10000))
	pe := errClass(t, err)
	if pe.Class != providers.Unavailable || !providers.IsCredentialsRefused(err) || pe.HTTPStatus != 401 {
		t.Fatalf("error = %+v, want unavailable/credentials_refused HTTP 401", pe)
	}
	if strings.Contains(pe.Error(), "WRONG") {
		t.Fatalf("error message leaks the server key: %v", pe)
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name      string
		faults    sim.Faults
		timeout   time.Duration
		wantClass providers.Class
		wantCode  string
		charged   bool
	}{
		{"down", sim.Faults{Mode: "down"}, time.Second, providers.Unavailable, "provider_unavailable", false},
		{"rate limited", sim.Faults{Mode: "down", Status: 429}, time.Second, providers.Unavailable, "rate_limited", false},
		{"500", sim.Faults{Mode: "error", Status: 500}, time.Second, providers.Ambiguous, "provider_error", false},
		{"drop after charge", sim.Faults{Mode: "drop_after_charge"}, time.Second, providers.Ambiguous, "network_error", true},
		{"timeout", sim.Faults{Mode: "slow", LatencyMS: 500}, 100 * time.Millisecond, providers.Ambiguous, "timeout", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if err := e.sim.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			p := e.provider(t, serverKey, tt.timeout)
			req := authReq(payrouter.MethodGoPay, 10000)
			_, err := p.Authorize(context.Background(), req)
			pe := errClass(t, err)
			if pe.Class != tt.wantClass || pe.Code != tt.wantCode {
				t.Fatalf("error = %v, want %s/%s", pe, tt.wantClass, tt.wantCode)
			}
			if got := countOrder(e, req.OrderID()) == 1; got != tt.charged {
				t.Fatalf("charge in ledger = %v, want %v", got, tt.charged)
			}
		})
	}
	t.Run("context deadline", func(t *testing.T) {
		e := newEnv(t)
		_ = e.sim.SetFaults(sim.Faults{Mode: "slow", LatencyMS: 500})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := e.p.Authorize(ctx, authReq(payrouter.MethodGoPay, 10000))
		if pe := errClass(t, err); pe.Class != providers.Ambiguous || pe.Code != "timeout" {
			t.Fatalf("error = %v, want ambiguous/timeout", pe)
		}
		if d := time.Since(start); d > 400*time.Millisecond {
			t.Fatalf("call took %v: the context deadline was not applied", d)
		}
	})
}

func TestRefusedBeforeSending(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		mutate func(*providers.AuthorizeRequest)
		code   string
	}{
		{"usd", func(r *providers.AuthorizeRequest) { r.Currency = "USD" }, "unsupported"},
		{"ovo", func(r *providers.AuthorizeRequest) { r.Method = payrouter.MethodOVO }, "unsupported"},
		{"unknown bank", func(r *providers.AuthorizeRequest) { r.Method, r.Bank = payrouter.MethodBankTransfer, "hsbc" }, "unsupported"},
		{"no bank", func(r *providers.AuthorizeRequest) { r.Method = payrouter.MethodBankTransfer }, "bank_required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := authReq(payrouter.MethodGoPay, 10000)
			tt.mutate(req)
			_, err := e.p.Authorize(context.Background(), req)
			if pe := errClass(t, err); pe.Class != providers.Invalid || pe.Code != tt.code {
				t.Fatalf("error = %v, want invalid/%s", pe, tt.code)
			}
			if n := countOrder(e, req.OrderID()); n != 0 {
				t.Fatalf("refused request reached the simulator")
			}
		})
	}
}

func TestForgedNotifications(t *testing.T) {
	e := newEnv(t)
	valid := func() map[string]any {
		return map[string]any{
			"transaction_status": "settlement", "transaction_id": "tx-1", "status_code": "200",
			"order_id": "pay_1_a1", "gross_amount": "100000.00", "payment_type": "gopay", "currency": "IDR",
			"signature_key": midtrans.SignatureKey("pay_1_a1", "200", "100000.00", serverKey),
		}
	}
	enc := func(m map[string]any) []byte { b, _ := json.Marshal(m); return b }
	if n, err := e.p.ParseWebhook(http.Header{}, enc(valid()), time.Now()); err != nil || n.Amount != 100000 || n.Status != payrouter.StatusSucceeded {
		t.Fatalf("valid notification = %+v, %v", n, err)
	}
	tests := []struct {
		name   string
		mutate func(map[string]any)
	}{
		{"bad signature", func(m map[string]any) { m["signature_key"] = strings.Repeat("ab", 64) }},
		{"signed with another key", func(m map[string]any) {
			m["signature_key"] = midtrans.SignatureKey("pay_1_a1", "200", "100000.00", "other-key")
		}},
		{"tampered gross_amount", func(m map[string]any) { m["gross_amount"] = "1000000.00" }},
		{"reformatted gross_amount", func(m map[string]any) { m["gross_amount"] = "100000" }},
		{"tampered status_code", func(m map[string]any) { m["status_code"] = "201" }},
		{"other order", func(m map[string]any) { m["order_id"] = "pay_2_a1" }},
		{"missing signature", func(m map[string]any) { delete(m, "signature_key") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid()
			tt.mutate(m)
			_, err := e.p.ParseWebhook(http.Header{}, enc(m), time.Now())
			if !providers.IsSignatureError(err) {
				t.Fatalf("error = %v, want a signature error", err)
			}
		})
	}
	if _, err := e.p.ParseWebhook(http.Header{}, []byte("not json"), time.Now()); !providers.IsSignatureError(err) {
		t.Fatalf("garbage: error = %v, want a signature error", err)
	}
}

func TestNotificationURLHeader(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("X-Override-Notification")
		_, _ = io.Copy(io.Discard, r.Body)
		w.Write([]byte(`{"status_code":"201","transaction_id":"t","transaction_status":"pending","actions":[{"name":"deeplink-redirect","url":"gojek://x"}]}`))
	}))
	defer srv.Close()
	p, err := midtrans.New(midtrans.Config{ServerKey: serverKey, BaseURL: srv.URL, NotificationURL: "https://router.example/webhooks/midtrans"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Authorize(context.Background(), authReq(payrouter.MethodGoPay, 1000)); err != nil {
		t.Fatal(err)
	}
	if got != "https://router.example/webhooks/midtrans" {
		t.Fatalf("X-Override-Notification = %q", got)
	}
}

func TestLongIdempotencyKey(t *testing.T) {
	long := strings.Repeat("k", 60)
	got := midtrans.IdempotencyKey(long)
	if len(got) > 36 || got != midtrans.IdempotencyKey(long) || got == midtrans.IdempotencyKey(long+"x") {
		t.Fatalf("IdempotencyKey(%d chars) = %q: must be ≤ 36, stable and distinct", len(long), got)
	}
	if short := "pay_abc_a1"; midtrans.IdempotencyKey(short) != short {
		t.Fatalf("a short key must be sent unchanged")
	}
	var sent []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent = append(sent, r.Header.Get("Idempotency-Key"))
		w.Write([]byte(`{"status_code":"201","transaction_id":"t","transaction_status":"pending","qr_string":"000201"}`))
	}))
	defer srv.Close()
	p, _ := midtrans.New(midtrans.Config{ServerKey: serverKey, BaseURL: srv.URL})
	req := authReq(payrouter.MethodQRIS, 1000)
	req.IdempotencyKey = long
	_, _ = p.Authorize(context.Background(), req)
	_, _ = p.Status(context.Background(), &providers.StatusRequest{ProviderPaymentID: "t"})
	if len(sent) != 2 || sent[0] != got || sent[1] != "" {
		t.Fatalf("Idempotency-Key headers = %q; want [%q, \"\"] (no leak into the next call)", sent, got)
	}
}

// The SDK's default logger would print the Authorization header; the
// adapter's must print nothing.
func captureStdio(t *testing.T, buf *bytes.Buffer) (restore func()) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	out, errOut := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = w, w
	done := make(chan struct{})
	go func() { _, _ = io.Copy(buf, r); close(done) }()
	return func() {
		os.Stdout, os.Stderr = out, errOut
		w.Close()
		<-done
	}
}

func TestServerKeyNeverLogged(t *testing.T) {
	e := newEnv(t)
	var buf bytes.Buffer
	restore := captureStdio(t, &buf)
	_, _ = e.p.Authorize(context.Background(), authReq(payrouter.MethodQRIS, 10000))
	_, _ = e.provider(t, "SB-Mid-server-WRONG", time.Second).Authorize(context.Background(), authReq(payrouter.MethodQRIS, 10000))
	restore()
	if buf.Len() != 0 {
		t.Fatalf("the adapter wrote to stdout/stderr: %q", buf.String())
	}
}

// A refund whose answer was lost (refunded, connection dropped) is found in
// the status refunds[] by its refund key, by provider or order id; one
// never sent is not_found.
func TestRefundStatus(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	req := authReq(payrouter.MethodCard, 10000)
	req.Token = "tok_sandbox_success"
	res, err := e.p.Authorize(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	q := &providers.RefundStatusRequest{ProviderPaymentID: res.ProviderPaymentID, OrderID: req.OrderID(), RefundID: "re_lost", Amount: 4000, Currency: "IDR"}
	_, err = e.p.RefundStatus(ctx, q)
	if pe := errClass(t, err); pe.Class != providers.Invalid || pe.Code != "not_found" {
		t.Fatalf("RefundStatus before the refund = %v, want invalid/not_found", pe)
	}
	if err := e.sim.SetFaults(sim.Faults{Mode: "drop_after_refund"}); err != nil {
		t.Fatal(err)
	}
	_, err = e.p.Refund(ctx, &providers.RefundRequest{ProviderPaymentID: res.ProviderPaymentID, RefundID: "re_lost", IdempotencyKey: "re_lost",
		Amount: 4000, Currency: "IDR", Method: payrouter.MethodCard})
	if pe := errClass(t, err); pe.Class != providers.Ambiguous {
		t.Fatalf("Refund with its answer dropped = %v, want ambiguous", pe)
	}
	// The fault loses only refund answers: status queries are served.
	for _, by := range []*providers.RefundStatusRequest{q, {OrderID: req.OrderID(), RefundID: "re_lost"}} {
		got, err := e.p.RefundStatus(ctx, by)
		if err != nil {
			t.Fatalf("RefundStatus(%+v): %v", by, err)
		}
		if got.Status != payrouter.RefundSucceeded || got.ProviderRefundID == "" {
			t.Errorf("RefundStatus(%+v) = %+v, want succeeded with the chargeback uuid", by, got)
		}
	}
	_, err = e.p.RefundStatus(ctx, &providers.RefundStatusRequest{ProviderPaymentID: res.ProviderPaymentID, RefundID: "re_other"})
	if pe := errClass(t, err); pe.Code != "not_found" {
		t.Errorf("RefundStatus of another refund key = %v, want not_found", pe)
	}
	found := false
	for _, l := range e.be.Ledger() {
		if l.ID == res.ProviderPaymentID || l.Reference == req.OrderID() {
			found = true
			if l.Refunded != 4000 {
				t.Errorf("ledger refunded = %d, want 4000 (once)", l.Refunded)
			}
		}
	}
	if !found {
		t.Errorf("ledger has no entry for %s", res.ProviderPaymentID)
	}
}
