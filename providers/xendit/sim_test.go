package xendit_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/sim"
	"github.com/payrouter/payrouter/internal/sim/simtest"
	"github.com/payrouter/payrouter/internal/sim/xenditsim"
	"github.com/payrouter/payrouter/providers"
	"github.com/payrouter/payrouter/providers/xendit"
)

const (
	secretKey     = "xnd_development_TESTKEY0123456789"
	callbackToken = "cbtoken-TEST-0123456789"
)

type env struct {
	p     *xendit.Provider
	be    *xenditsim.Backend
	sim   *sim.Sim
	url   string
	hooks *simtest.Hooks
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{hooks: simtest.NewHooks(t)}
	e.url, e.sim = simtest.Serve(t, "xendit", func(base string) sim.Backend {
		e.be = xenditsim.New(xenditsim.Options{SecretKey: secretKey, CallbackToken: callbackToken, PublicURL: base,
			Notifier: e.hooks.Notifier()})
		return e.be
	})
	t.Cleanup(e.be.Flush)
	e.p = e.provider(t, secretKey, 2*time.Second)
	return e
}

func (e *env) provider(t *testing.T, key string, timeout time.Duration) *xendit.Provider {
	t.Helper()
	p, err := xendit.New(xendit.Config{Name: "xnd-test", SecretKey: key, CallbackToken: callbackToken, BaseURL: e.url, Timeout: timeout})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func (e *env) waitHook(t *testing.T, match func(*providers.Notification) bool) *providers.Notification {
	t.Helper()
	return e.hooks.Wait(t, e.p, match)
}

var seq atomic.Int64

func authReq(method payrouter.Method, amount int64) *providers.AuthorizeRequest {
	id := "pay_x" + strconv.FormatInt(time.Now().UnixNano(), 36) + strconv.FormatInt(seq.Add(1), 10)
	return &providers.AuthorizeRequest{
		PaymentID: id, Attempt: 1, IdempotencyKey: payrouter.AttemptKey(id, 1),
		Amount: amount, Currency: "IDR", Method: method, Capture: payrouter.CaptureAutomatic,
		Customer:  payrouter.Customer{Name: "Budi", Email: "budi@example.com", Phone: "0812-3456-7890"},
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
		name       string
		method     payrouter.Method
		bank       string
		token      string
		wantStatus payrouter.Status
		action     string
	}{
		{"ovo", payrouter.MethodOVO, "", "", payrouter.StatusProcessing, ""},
		{"dana", payrouter.MethodDANA, "", "", payrouter.StatusRequiresAction, "redirect"},
		{"shopeepay", payrouter.MethodShopeePay, "", "", payrouter.StatusRequiresAction, "redirect"},
		{"qris", payrouter.MethodQRIS, "", "", payrouter.StatusRequiresAction, "qr_code"},
		{"bca", payrouter.MethodBankTransfer, "bca", "", payrouter.StatusRequiresAction, "bank_transfer"},
		{"bni", payrouter.MethodBankTransfer, "bni", "", payrouter.StatusRequiresAction, "bank_transfer"},
		{"bri", payrouter.MethodBankTransfer, "bri", "", payrouter.StatusRequiresAction, "bank_transfer"},
		{"permata", payrouter.MethodBankTransfer, "permata", "", payrouter.StatusRequiresAction, "bank_transfer"},
		{"mandiri", payrouter.MethodBankTransfer, "mandiri", "", payrouter.StatusRequiresAction, "bank_transfer"},
		{"card_3ds", payrouter.MethodCard, "", "tok_sandbox_3ds", payrouter.StatusRequiresAction, "redirect"},
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
				req.Bank, req.Token = m.bank, m.token
				res, err := e.p.Authorize(context.Background(), req)
				if err != nil {
					t.Fatalf("Authorize: %v", err)
				}
				if res.Status != m.wantStatus {
					t.Fatalf("status = %q, want %q", res.Status, m.wantStatus)
				}
				na := res.NextAction
				switch {
				case m.action == "":
					if na != nil {
						t.Fatalf("OVO push has next_action %+v", na)
					}
				case na == nil || na.Type != m.action:
					t.Fatalf("next_action = %+v, want type %s", na, m.action)
				case na.Type == "bank_transfer":
					if na.VANumber == "" || na.Bank != m.bank || na.ExpiresAt == nil {
						t.Fatalf("bank_transfer next_action = %+v", na)
					}
				case na.Type == "qr_code":
					if !strings.HasPrefix(na.QRString, "000201") || !strings.Contains(na.QRString, res.ProviderPaymentID) {
						t.Fatalf("qr_string %q is not a QRIS payload with the id", na.QRString)
					}
				default:
					if want := e.url + "/checkout/" + res.ProviderPaymentID; na.URL != want {
						t.Fatalf("next_action url = %q, want %q", na.URL, want)
					}
					resp, err := http.Get(na.URL)
					if err != nil || resp.StatusCode != 200 {
						t.Fatalf("checkout page: %v %v", resp, err)
					}
					resp.Body.Close()
				}
				if err := e.be.Pay(context.Background(), res.ProviderPaymentID, o.outcome); err != nil {
					t.Fatalf("Pay: %v", err)
				}
				n := e.waitHook(t, func(n *providers.Notification) bool { return n.OrderID == req.OrderID() })
				if n.Status != o.want || n.ProviderPaymentID != res.ProviderPaymentID || n.Amount != 150000 || n.Currency != "IDR" || n.Kind != providers.KindPayment {
					t.Fatalf("webhook = %+v, want %s for %s, 150000 IDR", n, o.want, res.ProviderPaymentID)
				}
				if n.EventID == "" || n.Provider != "xnd-test" {
					t.Fatalf("webhook metadata = %+v", n)
				}
				if o.want == payrouter.StatusFailed && (n.Failure == nil || n.Failure.ProviderCode == "") {
					t.Fatalf("failed webhook without failure code: %+v", n)
				}
				st, err := e.p.Status(context.Background(), &providers.StatusRequest{OrderID: req.OrderID(), Currency: "IDR"})
				if err != nil || st.Status != o.want || st.ProviderPaymentID != res.ProviderPaymentID {
					t.Fatalf("Status by order id = %+v, %v; want %s", st, err, o.want)
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
		currency   payrouter.Currency
		capture    payrouter.CaptureMode
		wantStatus payrouter.Status
		wantClass  providers.Class
		wantCode   string
	}{
		{"success", "tok_sandbox_success", "IDR", payrouter.CaptureAutomatic, payrouter.StatusSucceeded, "", ""},
		{"success usd", "tok_sandbox_success", "USD", payrouter.CaptureAutomatic, payrouter.StatusSucceeded, "", ""},
		{"manual", "tok_sandbox_success", "IDR", payrouter.CaptureManual, payrouter.StatusAuthorized, "", ""},
		{"decline", "tok_sandbox_decline", "IDR", payrouter.CaptureAutomatic, "", providers.Declined, "card_declined"},
		{"insufficient", "tok_sandbox_insufficient_funds", "IDR", payrouter.CaptureAutomatic, "", providers.Declined, "insufficient_funds"},
		{"unknown token", "pm-nope", "IDR", payrouter.CaptureAutomatic, "", providers.Invalid, "not_found"},
		{"eur", "tok_sandbox_success", "EUR", payrouter.CaptureAutomatic, "", providers.Invalid, "unsupported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := authReq(payrouter.MethodCard, 10050)
			req.Token, req.Currency, req.Capture = tt.token, tt.currency, tt.capture
			res, err := e.p.Authorize(context.Background(), req)
			if tt.wantClass != "" {
				if pe := errClass(t, err); pe.Class != tt.wantClass || pe.Code != tt.wantCode {
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
			if tt.wantStatus == payrouter.StatusSucceeded && res.AmountCaptured != 10050 {
				t.Fatalf("amount captured = %d, want 10050 (minor units)", res.AmountCaptured)
			}
			if l := ledger(t, e, res.ProviderPaymentID); l.Amount != 10050 || l.Currency != string(tt.currency) {
				t.Fatalf("ledger = %+v, want 10050 %s", l, tt.currency)
			}
		})
	}
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

func countRef(e *env, ref string) int {
	n := 0
	for _, l := range e.be.Ledger() {
		if l.Reference == ref {
			n++
		}
	}
	return n
}

func TestCaptureCancelRefund(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	t.Run("partial capture", func(t *testing.T) {
		req := authReq(payrouter.MethodCard, 20000)
		req.Token, req.Capture = "tok_sandbox_success", payrouter.CaptureManual
		res, err := e.p.Authorize(ctx, req)
		if err != nil || res.Status != payrouter.StatusAuthorized {
			t.Fatalf("Authorize = %+v, %v", res, err)
		}
		c, err := e.p.Capture(ctx, &providers.CaptureRequest{ProviderPaymentID: res.ProviderPaymentID, IdempotencyKey: req.IdempotencyKey + "_c", Amount: 15000, Currency: "IDR"})
		if err != nil || c.Status != payrouter.StatusSucceeded || c.AmountCaptured != 15000 {
			t.Fatalf("Capture = %+v, %v; want succeeded 15000", c, err)
		}
		_, err = e.p.Capture(ctx, &providers.CaptureRequest{ProviderPaymentID: res.ProviderPaymentID, IdempotencyKey: req.IdempotencyKey + "_c2"})
		if pe := errClass(t, err); pe.Class != providers.Invalid {
			t.Fatalf("second capture: %v, want invalid", pe)
		}
	})
	t.Run("cancel authorization", func(t *testing.T) {
		req := authReq(payrouter.MethodCard, 20000)
		req.Token, req.Capture = "tok_sandbox_success", payrouter.CaptureManual
		res, err := e.p.Authorize(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		c, err := e.p.Cancel(ctx, &providers.CancelRequest{ProviderPaymentID: res.ProviderPaymentID, IdempotencyKey: req.IdempotencyKey + "_x"})
		if err != nil || c.Status != payrouter.StatusCanceled {
			t.Fatalf("Cancel = %+v, %v; want canceled", c, err)
		}
	})
	t.Run("cancel pending qris by order id", func(t *testing.T) {
		req := authReq(payrouter.MethodQRIS, 20000)
		if _, err := e.p.Authorize(ctx, req); err != nil {
			t.Fatal(err)
		}
		c, err := e.p.Cancel(ctx, &providers.CancelRequest{OrderID: req.OrderID(), IdempotencyKey: req.IdempotencyKey + "_x", Method: payrouter.MethodQRIS})
		if err != nil || c.Status != payrouter.StatusCanceled {
			t.Fatalf("Cancel = %+v, %v; want canceled", c, err)
		}
		if err := e.be.Pay(ctx, req.OrderID(), sim.OutcomeSuccess); !errors.Is(err, sim.ErrNotPayable) {
			t.Fatalf("Pay after cancel = %v, want ErrNotPayable", err)
		}
	})
	t.Run("partial refund", func(t *testing.T) {
		req := authReq(payrouter.MethodDANA, 10000)
		res, err := e.p.Authorize(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.be.Pay(ctx, res.ProviderPaymentID, sim.OutcomeSuccess); err != nil {
			t.Fatal(err)
		}
		rr := &providers.RefundRequest{ProviderPaymentID: res.ProviderPaymentID, RefundID: "re_" + req.PaymentID, IdempotencyKey: "re_" + req.PaymentID,
			Amount: 4000, Currency: "IDR", Method: payrouter.MethodDANA, Reason: "requested_by_customer"}
		for i := 0; i < 2; i++ { // replayed: refunds once
			out, err := e.p.Refund(ctx, rr)
			if err != nil || out.Status != payrouter.RefundSucceeded || out.ProviderRefundID == "" {
				t.Fatalf("Refund #%d = %+v, %v", i, out, err)
			}
		}
		if got := ledger(t, e, res.ProviderPaymentID).Refunded; got != 4000 {
			t.Fatalf("ledger refunded = %d, want 4000", got)
		}
		n := e.waitHook(t, func(n *providers.Notification) bool {
			return n.Kind == providers.KindRefund && n.ProviderPaymentID == res.ProviderPaymentID
		})
		if n.RefundID != rr.RefundID || n.Amount != 4000 || n.RefundStatus != payrouter.RefundSucceeded {
			t.Fatalf("refund webhook = %+v", n)
		}
		_, err = e.p.Refund(ctx, &providers.RefundRequest{ProviderPaymentID: res.ProviderPaymentID, RefundID: "re_big", Amount: 7000, Currency: "IDR"})
		if pe := errClass(t, err); pe.Class != providers.Invalid {
			t.Fatalf("over-refund: %v, want invalid", pe)
		}
	})
}

func TestIdempotentReplay(t *testing.T) {
	e := newEnv(t)
	req := authReq(payrouter.MethodDANA, 50000)
	a, err := e.p.Authorize(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.p.Authorize(context.Background(), req)
	if err != nil || b.ProviderPaymentID != a.ProviderPaymentID {
		t.Fatalf("replay = %+v, %v; want %s", b, err, a.ProviderPaymentID)
	}
	if n := countRef(e, req.OrderID()); n != 1 {
		t.Fatalf("ledger has %d requests for the reference, want 1", n)
	}
	other := *req
	other.Amount = 60000
	_, err = e.p.Authorize(context.Background(), &other)
	if pe := errClass(t, err); pe.Class != providers.Invalid || pe.Code != "conflict" {
		t.Fatalf("same key, other body: %v, want invalid/conflict", pe)
	}
}

func TestErrors(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name      string
		mutate    func(*providers.AuthorizeRequest)
		wantClass providers.Class
		wantCode  string
		sent      bool
	}{
		{"test amount 10100", func(r *providers.AuthorizeRequest) { r.Amount = 10100 }, providers.Invalid, "forbidden", true},
		{"test amount 10101", func(r *providers.AuthorizeRequest) { r.Amount = 10101 }, providers.Unavailable, "provider_unavailable", true},
		{"test amount 10102", func(r *providers.AuthorizeRequest) { r.Amount = 10102 }, providers.Ambiguous, "provider_error", true},
		{"ovo without phone", func(r *providers.AuthorizeRequest) { r.Method, r.Customer.Phone = payrouter.MethodOVO, "" }, providers.Invalid, "phone_required", false},
		{"usd ewallet", func(r *providers.AuthorizeRequest) { r.Currency = "USD" }, providers.Invalid, "unsupported", false},
		{"gopay", func(r *providers.AuthorizeRequest) { r.Method = payrouter.MethodGoPay }, providers.Invalid, "unsupported", false},
		{"unknown bank", func(r *providers.AuthorizeRequest) { r.Method, r.Bank = payrouter.MethodBankTransfer, "hsbc" }, providers.Invalid, "unsupported", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := authReq(payrouter.MethodDANA, 10000)
			tt.mutate(req)
			_, err := e.p.Authorize(context.Background(), req)
			if pe := errClass(t, err); pe.Class != tt.wantClass || pe.Code != tt.wantCode {
				t.Fatalf("error = %v, want %s/%s", pe, tt.wantClass, tt.wantCode)
			}
		})
	}
	t.Run("simulator enforces OVO mobile_number", func(t *testing.T) {
		req, _ := http.NewRequest("POST", e.url+"/payment_requests", strings.NewReader(
			`{"reference_id":"r1","amount":10000,"currency":"IDR","payment_method":{"type":"EWALLET","reusability":"ONE_TIME_USE","ewallet":{"channel_code":"OVO","channel_properties":{}}}}`))
		req.SetBasicAuth(secretKey, "")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), "API_VALIDATION_ERROR") {
			t.Fatalf("OVO without mobile_number = %d %s, want 400 API_VALIDATION_ERROR", resp.StatusCode, b)
		}
	})
	t.Run("wrong credentials", func(t *testing.T) {
		_, err := e.provider(t, "xnd_development_WRONG", time.Second).Authorize(context.Background(), authReq(payrouter.MethodQRIS, 10000))
		pe := errClass(t, err)
		if pe.Class != providers.Unavailable || pe.Code != providers.CodeCredentialsRefused || pe.HTTPStatus != 401 || pe.ProviderCode != "INVALID_API_KEY" {
			t.Fatalf("error = %+v, want unavailable/credentials_refused 401", pe)
		}
		if strings.Contains(pe.Error(), "WRONG") {
			t.Fatalf("error leaks the key: %v", pe)
		}
	})
	t.Run("status of an unknown order", func(t *testing.T) {
		_, err := e.p.Status(context.Background(), &providers.StatusRequest{OrderID: "pay_nope_a1"})
		if pe := errClass(t, err); pe.Class != providers.Invalid || pe.Code != "not_found" {
			t.Fatalf("error = %v, want invalid/not_found", pe)
		}
		_, err = e.p.Status(context.Background(), &providers.StatusRequest{ProviderPaymentID: "pr-nope"})
		if pe := errClass(t, err); pe.Class != providers.Invalid || pe.Code != "not_found" || pe.ProviderCode != "DATA_NOT_FOUND" {
			t.Fatalf("error = %v, want invalid/not_found DATA_NOT_FOUND", pe)
		}
	})
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
		{"429", sim.Faults{Mode: "down", Status: 429}, time.Second, providers.Unavailable, "rate_limited", false},
		{"500", sim.Faults{Mode: "error"}, time.Second, providers.Ambiguous, "provider_error", false},
		{"drop after charge", sim.Faults{Mode: "drop_after_charge"}, time.Second, providers.Ambiguous, "network_error", true},
		{"timeout", sim.Faults{Mode: "slow", LatencyMS: 500}, 100 * time.Millisecond, providers.Ambiguous, "timeout", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if err := e.sim.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			req := authReq(payrouter.MethodQRIS, 10000)
			_, err := e.provider(t, secretKey, tt.timeout).Authorize(context.Background(), req)
			if pe := errClass(t, err); pe.Class != tt.wantClass || pe.Code != tt.wantCode {
				t.Fatalf("error = %v, want %s/%s", pe, tt.wantClass, tt.wantCode)
			}
			if got := countRef(e, req.OrderID()) == 1; got != tt.charged {
				t.Fatalf("in ledger = %v, want %v", got, tt.charged)
			}
		})
	}
	t.Run("refused connection", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		u := srv.URL
		srv.Close()
		p, _ := xendit.New(xendit.Config{SecretKey: secretKey, BaseURL: u})
		_, err := p.Authorize(context.Background(), authReq(payrouter.MethodQRIS, 10000))
		if pe := errClass(t, err); pe.Class != providers.Unavailable {
			t.Fatalf("error = %v, want unavailable", pe)
		}
	})
}

func TestForgedWebhooks(t *testing.T) {
	e := newEnv(t)
	body := []byte(`{"event":"payment.succeeded","business_id":"b","created":"2024-01-01T00:00:00Z","data":{"id":"py-1","payment_request_id":"pr-1","reference_id":"pay_1_a1","status":"SUCCEEDED","amount":10000,"currency":"IDR"}}`)
	ok := http.Header{"X-Callback-Token": {callbackToken}}
	if n, err := e.p.ParseWebhook(ok, body, time.Now()); err != nil || n.Status != payrouter.StatusSucceeded || n.Amount != 10000 {
		t.Fatalf("genuine webhook = %+v, %v", n, err)
	}
	tests := []struct {
		name string
		h    http.Header
	}{
		{"missing token", http.Header{}},
		{"wrong token", http.Header{"X-Callback-Token": {"cbtoken-TEST-0123456780"}}},
		{"token prefix", http.Header{"X-Callback-Token": {callbackToken[:10]}}},
		{"token with suffix", http.Header{"X-Callback-Token": {callbackToken + "x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e.p.ParseWebhook(tt.h, body, time.Now()); !providers.IsSignatureError(err) {
				t.Fatalf("error = %v, want signature error", err)
			}
		})
	}
	t.Run("no token configured", func(t *testing.T) {
		p, _ := xendit.New(xendit.Config{SecretKey: secretKey})
		if _, err := p.ParseWebhook(http.Header{"X-Callback-Token": {""}}, body, time.Now()); !providers.IsSignatureError(err) {
			t.Fatalf("error = %v, want signature error", err)
		}
	})
}

// A refund whose answer was lost (refunded, connection dropped) is found
// by its reference_id under the payment request, then by its own id; one
// never sent is not_found.
func TestRefundStatus(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	req := authReq(payrouter.MethodDANA, 10000)
	res, err := e.p.Authorize(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.be.Pay(ctx, res.ProviderPaymentID, sim.OutcomeSuccess); err != nil {
		t.Fatal(err)
	}
	q := &providers.RefundStatusRequest{ProviderPaymentID: res.ProviderPaymentID, OrderID: req.OrderID(), RefundID: "re_" + req.PaymentID, Amount: 4000, Currency: "IDR"}
	_, err = e.p.RefundStatus(ctx, q)
	if pe := errClass(t, err); pe.Class != providers.Invalid || pe.Code != "not_found" {
		t.Fatalf("RefundStatus before the refund = %v, want invalid/not_found", pe)
	}
	if err := e.sim.SetFaults(sim.Faults{Mode: "drop_after_refund"}); err != nil {
		t.Fatal(err)
	}
	_, err = e.p.Refund(ctx, &providers.RefundRequest{ProviderPaymentID: res.ProviderPaymentID, RefundID: q.RefundID, IdempotencyKey: q.RefundID,
		Amount: 4000, Currency: "IDR", Method: payrouter.MethodDANA})
	if pe := errClass(t, err); pe.Class != providers.Ambiguous {
		t.Fatalf("Refund with its answer dropped = %v, want ambiguous", pe)
	}
	got, err := e.p.RefundStatus(ctx, q) // served: only refund answers are dropped
	if err != nil || got.Status != payrouter.RefundSucceeded || got.ProviderRefundID == "" {
		t.Fatalf("RefundStatus after a lost answer = %+v, %v; want succeeded", got, err)
	}
	byID, err := e.p.RefundStatus(ctx, &providers.RefundStatusRequest{ProviderRefundID: got.ProviderRefundID})
	if err != nil || byID.ProviderRefundID != got.ProviderRefundID || byID.Status != payrouter.RefundSucceeded {
		t.Errorf("RefundStatus by id = %+v, %v", byID, err)
	}
	_, err = e.p.RefundStatus(ctx, &providers.RefundStatusRequest{ProviderRefundID: "rfd-nope"})
	if pe := errClass(t, err); pe.Code != "not_found" {
		t.Errorf("RefundStatus of an unknown id = %v, want not_found", pe)
	}
	if got := ledger(t, e, res.ProviderPaymentID).Refunded; got != 4000 {
		t.Errorf("ledger refunded = %d, want 4000 (once)", got)
	}
}
