package stripe_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/sim"
	"github.com/payrouter/payrouter/internal/sim/stripesim"
	"github.com/payrouter/payrouter/providers"
	"github.com/payrouter/payrouter/providers/stripe"
)

const (
	testKey    = "sk_test_payrouter"
	testWHSec  = "whsec_payrouter_test"
	simPrefix  = "/sim/stripe"
	hookPrefix = "/webhooks/stripe"
)

type hook struct {
	header http.Header
	body   []byte
}

type env struct {
	srv     *httptest.Server
	sim     *sim.Sim
	backend *stripesim.Backend
	p       *stripe.Provider
	hooks   chan hook
}

// newEnv starts the simulator and a webhook receiver on one httptest server
// and an adapter pointed at it.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{hooks: make(chan hook, 256)}
	mux := http.NewServeMux()
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	mux.HandleFunc("POST "+hookPrefix, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		e.hooks <- hook{header: r.Header.Clone(), body: b}
	})
	e.backend = stripesim.New(stripesim.Options{
		SecretKey:     testKey,
		WebhookSecret: testWHSec,
		Notifier:      &sim.Notifier{URL: e.srv.URL + hookPrefix},
		PublicURL:     e.srv.URL + simPrefix,
	})
	t.Cleanup(e.backend.Wait) // before srv.Close (cleanups run last-first)
	e.sim = sim.New("stripe", e.backend)
	e.sim.Mount(mux, simPrefix)
	e.p = newProvider(t, e.srv.URL+simPrefix, testKey, nil)
	return e
}

func newProvider(t *testing.T, baseURL, key string, hc *http.Client) *stripe.Provider {
	t.Helper()
	p, err := stripe.New(stripe.Config{Name: "stripe", SecretKey: key, WebhookSecret: testWHSec, BaseURL: baseURL, HTTPClient: hc, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("stripe.New: %v", err)
	}
	return p
}

func authReq(key string, amount int64, cur payrouter.Currency, token string, capture payrouter.CaptureMode) *providers.AuthorizeRequest {
	return &providers.AuthorizeRequest{
		PaymentID: strings.TrimSuffix(key, "_a1"), Attempt: 1, IdempotencyKey: key,
		Amount: amount, Currency: cur, Method: payrouter.MethodCard, Capture: capture, Token: token,
		Description: "test order", Reference: "ref-" + key, ReturnURL: "https://shop.example/return",
		Metadata: map[string]string{"cart": "42"},
	}
}

var keySeq struct {
	sync.Mutex
	n int
}

func newKey() string {
	keySeq.Lock()
	defer keySeq.Unlock()
	keySeq.n++
	return payrouter.AttemptKey(fmt.Sprintf("pay_test%d_%d", time.Now().UnixNano(), keySeq.n), 1)
}

func wantErr(t *testing.T, err error, class providers.Class, code string) *providers.Error {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error = %v (%T), want *providers.Error class %s code %s", err, err, class, code)
	}
	if pe.Class != class || (code != "" && pe.Code != code) {
		t.Fatalf("error class/code = %s/%s, want %s/%s (%v)", pe.Class, pe.Code, class, code, err)
	}
	return pe
}

func ledgerEntry(t *testing.T, e *env, id string) sim.LedgerEntry {
	t.Helper()
	for _, l := range e.backend.Ledger() {
		if l.ID == id {
			return l
		}
	}
	t.Fatalf("ledger has no entry %s: %+v", id, e.backend.Ledger())
	return sim.LedgerEntry{}
}

// nextHook waits for a webhook of the given Stripe event type and parses it
// with the adapter.
func (e *env) nextHook(t *testing.T, eventType string) *providers.Notification {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case h := <-e.hooks:
			n, err := e.p.ParseWebhook(h.header, h.body, time.Now())
			if err != nil {
				t.Fatalf("webhook from the simulator does not verify: %v", err)
			}
			if n.ProviderStatus == eventType || strings.Contains(string(h.body), `"type":"`+eventType+`"`) {
				return n
			}
		case <-deadline:
			t.Fatalf("no %s webhook within 5s", eventType)
			return nil
		}
	}
}

func TestAuthorize(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name         string
		token        string
		capture      payrouter.CaptureMode
		wantStatus   payrouter.Status
		wantCaptured int64
		wantClass    providers.Class
		wantCode     string
		wantProvCode string
		wantInLedger bool
	}{
		{"pm visa automatic", "pm_card_visa", payrouter.CaptureAutomatic, payrouter.StatusSucceeded, 1999, "", "", "", true},
		{"sandbox token automatic", "tok_sandbox_success", payrouter.CaptureAutomatic, payrouter.StatusSucceeded, 1999, "", "", "", true},
		{"manual capture", "pm_card_visa", payrouter.CaptureManual, payrouter.StatusAuthorized, 0, "", "", "", true},
		{"generic decline pm", "pm_card_chargeDeclined", payrouter.CaptureAutomatic, "", 0, providers.Declined, "card_declined", "generic_decline", false},
		{"generic decline token", "tok_sandbox_decline", payrouter.CaptureAutomatic, "", 0, providers.Declined, "card_declined", "generic_decline", false},
		{"insufficient funds", "tok_sandbox_insufficient_funds", payrouter.CaptureAutomatic, "", 0, providers.Declined, "insufficient_funds", "insufficient_funds", false},
		{"3ds", "tok_sandbox_3ds", payrouter.CaptureAutomatic, payrouter.StatusRequiresAction, 0, "", "", "", true},
		{"unknown payment method", "pm_card_nope", payrouter.CaptureAutomatic, "", 0, providers.Invalid, "resource_missing", "resource_missing", false},
		{"not a stripe token", "4242424242424242", payrouter.CaptureAutomatic, "", 0, providers.Invalid, "token_invalid", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.backend.Ledger())
			res, err := e.p.Authorize(t.Context(), authReq(newKey(), 1999, "USD", tc.token, tc.capture))
			if tc.wantClass != "" {
				pe := wantErr(t, err, tc.wantClass, tc.wantCode)
				if pe.ProviderCode != tc.wantProvCode {
					t.Errorf("ProviderCode = %q, want %q", pe.ProviderCode, tc.wantProvCode)
				}
				if strings.Contains(pe.Error(), "4242424242424242") || strings.Contains(pe.Error(), "secret") {
					t.Errorf("error leaks card data or secrets: %v", pe)
				}
			} else {
				if err != nil {
					t.Fatalf("Authorize: %v", err)
				}
				if res.Status != tc.wantStatus || res.AmountCaptured != tc.wantCaptured {
					t.Errorf("status/captured = %s/%d, want %s/%d", res.Status, res.AmountCaptured, tc.wantStatus, tc.wantCaptured)
				}
				if !strings.HasPrefix(res.ProviderPaymentID, "pi_") {
					t.Errorf("ProviderPaymentID = %q, want pi_…", res.ProviderPaymentID)
				}
				if tc.wantStatus == payrouter.StatusRequiresAction {
					want := e.srv.URL + simPrefix + "/checkout/" + res.ProviderPaymentID
					if res.NextAction == nil || res.NextAction.Type != "redirect" || res.NextAction.URL != want {
						t.Errorf("NextAction = %+v, want redirect to %s", res.NextAction, want)
					}
				}
			}
			if got := len(e.backend.Ledger()) - before; (got == 1) != tc.wantInLedger {
				t.Errorf("ledger grew by %d, want in ledger = %v", got, tc.wantInLedger)
			}
		})
	}
}

func TestManualCapturePartial(t *testing.T) {
	e := newEnv(t)
	res, err := e.p.Authorize(t.Context(), authReq(newKey(), 1000, "USD", "pm_card_visa", payrouter.CaptureManual))
	if err != nil || res.Status != payrouter.StatusAuthorized {
		t.Fatalf("Authorize = %+v, %v; want authorized", res, err)
	}
	got, err := e.p.Capture(t.Context(), &providers.CaptureRequest{ProviderPaymentID: res.ProviderPaymentID, IdempotencyKey: "cap1", Amount: 600, Currency: "USD"})
	if err != nil {
		t.Fatalf("Capture: %v", err)
	}
	if got.Status != payrouter.StatusSucceeded || got.AmountCaptured != 600 {
		t.Errorf("Capture = %s/%d, want succeeded/600", got.Status, got.AmountCaptured)
	}
	// A second capture of a captured PaymentIntent is refused as invalid.
	_, err = e.p.Capture(t.Context(), &providers.CaptureRequest{ProviderPaymentID: res.ProviderPaymentID, IdempotencyKey: "cap2"})
	wantErr(t, err, providers.Invalid, "payment_intent_unexpected_state")
	// Capturing more than authorised is refused.
	res2, _ := e.p.Authorize(t.Context(), authReq(newKey(), 1000, "USD", "pm_card_visa", payrouter.CaptureManual))
	_, err = e.p.Capture(t.Context(), &providers.CaptureRequest{ProviderPaymentID: res2.ProviderPaymentID, IdempotencyKey: "cap3", Amount: 1001, Currency: "USD"})
	wantErr(t, err, providers.Invalid, "amount_too_large")
}

func TestCancel(t *testing.T) {
	e := newEnv(t)
	key := newKey()
	res, err := e.p.Authorize(t.Context(), authReq(key, 1000, "EUR", "pm_card_visa", payrouter.CaptureManual))
	if err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	got, err := e.p.Cancel(t.Context(), &providers.CancelRequest{ProviderPaymentID: res.ProviderPaymentID, IdempotencyKey: "c1", Method: payrouter.MethodCard})
	if err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if got.Status != payrouter.StatusCanceled {
		t.Errorf("Cancel status = %s, want canceled", got.Status)
	}
	if l := ledgerEntry(t, e, res.ProviderPaymentID); l.Status != "canceled" {
		t.Errorf("ledger status = %s, want canceled", l.Status)
	}
	// Cancel by order id only (provider id never learnt).
	key2 := newKey()
	res2, _ := e.p.Authorize(t.Context(), authReq(key2, 1000, "EUR", "tok_sandbox_3ds", payrouter.CaptureAutomatic))
	got, err = e.p.Cancel(t.Context(), &providers.CancelRequest{OrderID: key2, IdempotencyKey: "c2"})
	if err != nil || got.Status != payrouter.StatusCanceled || got.ProviderPaymentID != res2.ProviderPaymentID {
		t.Errorf("Cancel by order id = %+v, %v; want canceled %s", got, err, res2.ProviderPaymentID)
	}
	// Cancelling a succeeded payment is invalid.
	res3, _ := e.p.Authorize(t.Context(), authReq(newKey(), 1000, "EUR", "pm_card_visa", payrouter.CaptureAutomatic))
	_, err = e.p.Cancel(t.Context(), &providers.CancelRequest{ProviderPaymentID: res3.ProviderPaymentID})
	wantErr(t, err, providers.Invalid, "payment_intent_unexpected_state")
}

func TestRefundPartialAndFull(t *testing.T) {
	e := newEnv(t)
	res, err := e.p.Authorize(t.Context(), authReq(newKey(), 1000, "SGD", "pm_card_visa", payrouter.CaptureAutomatic))
	if err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	steps := []struct {
		name     string
		amount   int64
		wantLeft int64 // refunded so far, Stripe units
		wantErr  bool
	}{
		{"partial", 300, 300, false},
		{"rest", 0, 1000, false},
		{"nothing left", 100, 1000, true},
	}
	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			r, err := e.p.Refund(t.Context(), &providers.RefundRequest{ProviderPaymentID: res.ProviderPaymentID, RefundID: fmt.Sprintf("rf_%d", i),
				IdempotencyKey: fmt.Sprintf("rk_%d", i), Amount: s.amount, Currency: "SGD", Reason: "requested_by_customer"})
			if s.wantErr {
				wantErr(t, err, providers.Invalid, "")
			} else {
				if err != nil {
					t.Fatalf("Refund: %v", err)
				}
				if r.Status != payrouter.RefundSucceeded || !strings.HasPrefix(r.ProviderRefundID, "re_") {
					t.Errorf("Refund = %+v, want succeeded re_…", r)
				}
			}
			if l := ledgerEntry(t, e, res.ProviderPaymentID); l.Refunded != s.wantLeft {
				t.Errorf("ledger refunded = %d, want %d", l.Refunded, s.wantLeft)
			}
		})
	}
	// The refund webhooks carry payrouter's refund id back.
	n := e.nextHook(t, "refund.created")
	if n.Kind != providers.KindRefund || n.RefundID != "rf_0" || n.Amount != 300 || n.RefundStatus != payrouter.RefundSucceeded {
		t.Errorf("refund webhook = %+v, want refund rf_0 300 succeeded", n)
	}
}

func TestIDRConversion(t *testing.T) {
	e := newEnv(t)
	key := newKey()
	res, err := e.p.Authorize(t.Context(), authReq(key, 50000, "IDR", "tok_sandbox_success", payrouter.CaptureAutomatic))
	if err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	if res.AmountCaptured != 50000 {
		t.Errorf("AmountCaptured = %d, want 50000 (payrouter IDR)", res.AmountCaptured)
	}
	l := ledgerEntry(t, e, res.ProviderPaymentID)
	if l.Amount != 5_000_000 || l.Currency != "IDR" {
		t.Errorf("ledger = %d %s, want 5000000 IDR (Stripe two-decimal)", l.Amount, l.Currency)
	}
	n := e.nextHook(t, "payment_intent.succeeded")
	if n.Amount != 50000 || n.Currency != "IDR" || n.OrderID != key || n.Status != payrouter.StatusSucceeded {
		t.Errorf("webhook = %+v, want 50000 IDR succeeded order %s", n, key)
	}
	if _, err := e.p.Refund(t.Context(), &providers.RefundRequest{ProviderPaymentID: res.ProviderPaymentID, RefundID: "rf", IdempotencyKey: "rk", Amount: 20000, Currency: "IDR"}); err != nil {
		t.Fatalf("Refund: %v", err)
	}
	if l := ledgerEntry(t, e, res.ProviderPaymentID); l.Refunded != 2_000_000 {
		t.Errorf("ledger refunded = %d, want 2000000", l.Refunded)
	}
	// Zero-decimal at both ends: JPY passes unchanged.
	res, err = e.p.Authorize(t.Context(), authReq(newKey(), 500, "JPY", "pm_card_visa", payrouter.CaptureAutomatic))
	if err != nil {
		t.Fatalf("Authorize JPY: %v", err)
	}
	if l := ledgerEntry(t, e, res.ProviderPaymentID); l.Amount != 500 {
		t.Errorf("JPY ledger amount = %d, want 500", l.Amount)
	}
}

func TestThreeDSAndPay(t *testing.T) {
	outcomes := []struct {
		outcome    sim.Outcome
		capture    payrouter.CaptureMode
		event      string
		wantStatus payrouter.Status
	}{
		{sim.OutcomeSuccess, payrouter.CaptureAutomatic, "payment_intent.succeeded", payrouter.StatusSucceeded},
		{sim.OutcomeSuccess, payrouter.CaptureManual, "payment_intent.amount_capturable_updated", payrouter.StatusAuthorized},
		{sim.OutcomeFailure, payrouter.CaptureAutomatic, "payment_intent.payment_failed", payrouter.StatusFailed},
		{sim.OutcomeExpire, payrouter.CaptureAutomatic, "payment_intent.canceled", payrouter.StatusExpired}, // abandoned 3DS: expired,
	}
	for _, tc := range outcomes {
		t.Run(string(tc.outcome)+"_"+string(tc.capture), func(t *testing.T) {
			e := newEnv(t)
			key := newKey()
			res, err := e.p.Authorize(t.Context(), authReq(key, 2500, "GBP", "pm_card_threeDSecure2Required", tc.capture))
			if err != nil || res.Status != payrouter.StatusRequiresAction {
				t.Fatalf("Authorize = %+v, %v; want requires_action", res, err)
			}
			if n := e.nextHook(t, "payment_intent.requires_action"); n.Status != payrouter.StatusRequiresAction {
				t.Errorf("requires_action webhook status = %s", n.Status)
			}
			// The customer acts through the control API, as in the sandbox.
			resp, err := http.Post(e.srv.URL+simPrefix+"/_pay/"+res.ProviderPaymentID, "application/json", strings.NewReader(`{"outcome":"`+string(tc.outcome)+`"}`))
			if err != nil {
				t.Fatalf("_pay: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("_pay status = %d, want 200", resp.StatusCode)
			}
			n := e.nextHook(t, tc.event)
			if n.Kind != providers.KindPayment || n.Status != tc.wantStatus || n.OrderID != key || n.ProviderPaymentID != res.ProviderPaymentID || n.Amount != 2500 {
				t.Errorf("webhook = %+v, want %s for order %s amount 2500", n, tc.wantStatus, key)
			}
			if !strings.HasPrefix(n.EventID, "evt_") {
				t.Errorf("EventID = %q, want evt_…", n.EventID)
			}
			st, err := e.p.Status(t.Context(), &providers.StatusRequest{ProviderPaymentID: res.ProviderPaymentID})
			if err != nil || st.Status != tc.wantStatus {
				t.Errorf("Status = %+v, %v; want %s", st, err, tc.wantStatus)
			}
			// A second Pay is refused: nothing awaits the customer any more.
			if err := e.backend.Pay(t.Context(), res.ProviderPaymentID, sim.OutcomeSuccess); !errors.Is(err, sim.ErrNotPayable) {
				t.Errorf("second Pay = %v, want ErrNotPayable", err)
			}
		})
	}
}

func TestIdempotency(t *testing.T) {
	e := newEnv(t)
	t.Run("replay", func(t *testing.T) {
		key := newKey()
		r1, err1 := e.p.Authorize(t.Context(), authReq(key, 700, "USD", "pm_card_visa", payrouter.CaptureAutomatic))
		r2, err2 := e.p.Authorize(t.Context(), authReq(key, 700, "USD", "pm_card_visa", payrouter.CaptureAutomatic))
		if err1 != nil || err2 != nil || r1.ProviderPaymentID != r2.ProviderPaymentID {
			t.Fatalf("replay = %v/%v, %v/%v; want the same PaymentIntent", r1, r2, err1, err2)
		}
		if n := countOrder(e, key); n != 1 {
			t.Errorf("ledger entries for the key = %d, want 1", n)
		}
	})
	t.Run("replayed decline", func(t *testing.T) {
		key := newKey()
		for i := 0; i < 2; i++ {
			_, err := e.p.Authorize(t.Context(), authReq(key, 700, "USD", "tok_sandbox_decline", payrouter.CaptureAutomatic))
			wantErr(t, err, providers.Declined, "card_declined")
		}
	})
	t.Run("conflict", func(t *testing.T) {
		key := newKey()
		if _, err := e.p.Authorize(t.Context(), authReq(key, 700, "USD", "pm_card_visa", payrouter.CaptureAutomatic)); err != nil {
			t.Fatal(err)
		}
		_, err := e.p.Authorize(t.Context(), authReq(key, 701, "USD", "pm_card_visa", payrouter.CaptureAutomatic))
		wantErr(t, err, providers.Invalid, "idempotency_conflict")
	})
	t.Run("50 concurrent", func(t *testing.T) {
		key := newKey()
		var wg sync.WaitGroup
		ids := make([]string, 50)
		errs := make([]error, 50)
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := e.p.Authorize(context.Background(), authReq(key, 900, "USD", "pm_card_visa", payrouter.CaptureAutomatic))
				errs[i] = err
				if r != nil {
					ids[i] = r.ProviderPaymentID
				}
			}()
		}
		wg.Wait()
		for i := range 50 {
			if errs[i] != nil || ids[i] != ids[0] {
				t.Fatalf("call %d = %s, %v; want %s", i, ids[i], errs[i], ids[0])
			}
		}
		if n := countOrder(e, key); n != 1 {
			t.Errorf("ledger entries for the key = %d, want 1", n)
		}
	})
}

func countOrder(e *env, orderID string) int {
	n := 0
	for _, l := range e.backend.Ledger() {
		if l.Reference == orderID {
			n++
		}
	}
	return n
}

func TestStatus(t *testing.T) {
	e := newEnv(t)
	key := newKey()
	res, err := e.p.Authorize(t.Context(), authReq(key, 1234, "AUD", "pm_card_visa", payrouter.CaptureManual))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		req       providers.StatusRequest
		wantClass providers.Class
		wantCode  string
	}{
		{"by id", providers.StatusRequest{ProviderPaymentID: res.ProviderPaymentID}, "", ""},
		{"by order id", providers.StatusRequest{OrderID: key}, "", ""},
		{"unknown id", providers.StatusRequest{ProviderPaymentID: "pi_missing"}, providers.Invalid, "not_found"},
		{"unknown order id", providers.StatusRequest{OrderID: "pay_never_a1"}, providers.Invalid, "not_found"},
		{"nothing", providers.StatusRequest{}, providers.Invalid, "parameter_missing"},
		{"unquotable order id", providers.StatusRequest{OrderID: "x' OR status:'succeeded"}, providers.Invalid, "parameter_invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.p.Status(t.Context(), &tc.req)
			if tc.wantClass != "" {
				wantErr(t, err, tc.wantClass, tc.wantCode)
				return
			}
			if err != nil {
				t.Fatalf("Status: %v", err)
			}
			if got.ProviderPaymentID != res.ProviderPaymentID || got.Status != payrouter.StatusAuthorized || got.ProviderStatus != "requires_capture" {
				t.Errorf("Status = %+v, want %s authorized", got, res.ProviderPaymentID)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	t.Run("down is unavailable", func(t *testing.T) {
		e := newEnv(t)
		if err := e.sim.SetFaults(sim.Faults{Mode: "down"}); err != nil {
			t.Fatal(err)
		}
		_, err := e.p.Authorize(t.Context(), authReq(newKey(), 100, "USD", "pm_card_visa", payrouter.CaptureAutomatic))
		pe := wantErr(t, err, providers.Unavailable, "")
		if pe.HTTPStatus != 503 {
			t.Errorf("HTTPStatus = %d, want 503", pe.HTTPStatus)
		}
	})
	t.Run("error 500 is ambiguous", func(t *testing.T) {
		e := newEnv(t)
		_ = e.sim.SetFaults(sim.Faults{Mode: "error"})
		_, err := e.p.Authorize(t.Context(), authReq(newKey(), 100, "USD", "pm_card_visa", payrouter.CaptureAutomatic))
		wantErr(t, err, providers.Ambiguous, "")
	})
	t.Run("drop after charge is ambiguous and charged", func(t *testing.T) {
		e := newEnv(t)
		_ = e.sim.SetFaults(sim.Faults{Mode: "drop_after_charge"})
		key := newKey()
		_, err := e.p.Authorize(t.Context(), authReq(key, 100, "USD", "pm_card_visa", payrouter.CaptureAutomatic))
		wantErr(t, err, providers.Ambiguous, "")
		if n := countOrder(e, key); n != 1 {
			t.Fatalf("ledger entries = %d, want the one charge", n)
		}
		// Resolution: the same key replays the charge, never a second one.
		_ = e.sim.SetFaults(sim.Faults{Mode: "none"})
		res, err := e.p.Authorize(t.Context(), authReq(key, 100, "USD", "pm_card_visa", payrouter.CaptureAutomatic))
		if err != nil || res.Status != payrouter.StatusSucceeded {
			t.Fatalf("same-key retry = %+v, %v; want succeeded", res, err)
		}
		if n := countOrder(e, key); n != 1 {
			t.Errorf("ledger entries after retry = %d, want 1", n)
		}
		st, err := e.p.Status(t.Context(), &providers.StatusRequest{OrderID: key})
		if err != nil || st.ProviderPaymentID != res.ProviderPaymentID {
			t.Errorf("Status by order id = %+v, %v; want %s", st, err, res.ProviderPaymentID)
		}
	})
	t.Run("slow with short timeout is ambiguous", func(t *testing.T) {
		e := newEnv(t)
		_ = e.sim.SetFaults(sim.Faults{Mode: "slow", LatencyMS: 700})
		p, err := stripe.New(stripe.Config{SecretKey: testKey, BaseURL: e.srv.URL + simPrefix, Timeout: 150 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Authorize(t.Context(), authReq(newKey(), 100, "USD", "pm_card_visa", payrouter.CaptureAutomatic))
		wantErr(t, err, providers.Ambiguous, "timeout")
	})
	t.Run("context deadline is ambiguous", func(t *testing.T) {
		e := newEnv(t)
		_ = e.sim.SetFaults(sim.Faults{Mode: "slow", LatencyMS: 700})
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		_, err := e.p.Authorize(ctx, authReq(newKey(), 100, "USD", "pm_card_visa", payrouter.CaptureAutomatic))
		wantErr(t, err, providers.Ambiguous, "")
	})
	t.Run("refused port is unavailable", func(t *testing.T) {
		p := newProvider(t, "http://"+closedAddr(t), testKey, nil)
		_, err := p.Authorize(t.Context(), authReq(newKey(), 100, "USD", "pm_card_visa", payrouter.CaptureAutomatic))
		wantErr(t, err, providers.Unavailable, "connection_refused")
	})
	t.Run("hijack and close after the request is ambiguous", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}))
		defer srv.Close()
		p := newProvider(t, srv.URL, testKey, nil)
		_, err := p.Authorize(t.Context(), authReq(newKey(), 100, "USD", "pm_card_visa", payrouter.CaptureAutomatic))
		wantErr(t, err, providers.Ambiguous, "")
	})
	t.Run("wrong API key is invalid", func(t *testing.T) {
		e := newEnv(t)
		p := newProvider(t, e.srv.URL+simPrefix, "sk_test_wrong", nil)
		_, err := p.Authorize(t.Context(), authReq(newKey(), 100, "USD", "pm_card_visa", payrouter.CaptureAutomatic))
		pe := wantErr(t, err, providers.Unavailable, providers.CodeCredentialsRefused)
		if strings.Contains(pe.Error(), "sk_test_wrong") {
			t.Errorf("error leaks the API key: %v", pe)
		}
	})
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestAuthorizeRefusesWhatStripeCannotTake(t *testing.T) {
	p := newProvider(t, "http://"+closedAddr(t), testKey, nil) // never reached
	tests := []struct {
		name string
		req  *providers.AuthorizeRequest
	}{
		{"unknown currency", authReq(newKey(), 100, "XXX", "pm_card_visa", payrouter.CaptureAutomatic)},
		{"zero amount", authReq(newKey(), 0, "USD", "pm_card_visa", payrouter.CaptureAutomatic)},
		{"no token", authReq(newKey(), 100, "USD", "", payrouter.CaptureAutomatic)},
		{"no idempotency key", authReq("", 100, "USD", "pm_card_visa", payrouter.CaptureAutomatic)},
		{"wallet method", func() *providers.AuthorizeRequest {
			r := authReq(newKey(), 100, "IDR", "pm_card_visa", payrouter.CaptureAutomatic)
			r.Method = payrouter.MethodGoPay
			return r
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Authorize(t.Context(), tc.req)
			wantErr(t, err, providers.Invalid, "")
		})
	}
}

func TestCapabilities(t *testing.T) {
	p := newProvider(t, "", testKey, nil)
	c := p.Capabilities()
	for _, cur := range []payrouter.Currency{"USD", "EUR", "SGD", "GBP", "AUD", "MYR", "IDR", "JPY"} {
		if !c.Supports(payrouter.MethodCard, cur, payrouter.CaptureManual) {
			t.Errorf("card %s manual not supported", cur)
		}
	}
	if c.Supports(payrouter.MethodGoPay, "IDR", payrouter.CaptureAutomatic) {
		t.Error("gopay supported, want cards only")
	}
	if !c.Refund || !c.PartialRefund || !c.PartialCapture || !c.IdempotentRetry {
		t.Errorf("capabilities = %+v, want refunds, partial capture and idempotent retry", c)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := stripe.New(stripe.Config{}); err == nil {
		t.Error("New without a key succeeded, want an error")
	}
	if _, err := stripe.New(stripe.Config{SecretKey: testKey, BaseURL: "localhost:1234"}); err == nil {
		t.Error("New with a relative base URL succeeded, want an error")
	}
}

func TestSettlements(t *testing.T) {
	e := newEnv(t)
	from := time.Now().Add(-time.Minute)
	res, err := e.p.Authorize(t.Context(), authReq(newKey(), 10000, "USD", "pm_card_visa", payrouter.CaptureAutomatic))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.Refund(t.Context(), &providers.RefundRequest{ProviderPaymentID: res.ProviderPaymentID, RefundID: "rf", IdempotencyKey: "rk", Amount: 2500, Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	got, err := e.p.Settlements(t.Context(), from, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatalf("Settlements: %v", err)
	}
	want := map[string]providers.Settlement{
		"payment": {Type: "payment", Amount: 10000, Fee: 320, Net: 9680},
		"refund":  {Type: "refund", Amount: -2500, Fee: 0, Net: -2500},
	}
	if len(got) != 2 {
		t.Fatalf("got %d settlements, want 2: %+v", len(got), got)
	}
	for _, s := range got {
		w := want[s.Type]
		if s.Amount != w.Amount || s.Fee != w.Fee || s.Net != w.Net || s.Currency != "USD" || s.ProviderPaymentID != res.ProviderPaymentID {
			t.Errorf("settlement %s = %+v, want %+v for %s", s.Type, s, w, res.ProviderPaymentID)
		}
	}
	// Outside the window: nothing.
	got, err = e.p.Settlements(t.Context(), time.Now().Add(time.Hour), time.Now().Add(2*time.Hour))
	if err != nil || len(got) != 0 {
		t.Errorf("future window = %d settlements, %v; want none", len(got), err)
	}
}

// A refund whose answer was lost (the simulator refunds, then drops the
// connection) is found by its payrouter refund id; one never sent is
// not_found; a known provider refund id reads it directly.
func TestRefundStatus(t *testing.T) {
	e := newEnv(t)
	res, err := e.p.Authorize(t.Context(), authReq(newKey(), 1000, "SGD", "pm_card_visa", payrouter.CaptureAutomatic))
	if err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	q := &providers.RefundStatusRequest{ProviderPaymentID: res.ProviderPaymentID, RefundID: "re_payrouter_1", Amount: 400, Currency: "SGD"}
	_, err = e.p.RefundStatus(t.Context(), q)
	wantErr(t, err, providers.Invalid, "not_found")

	if err := e.sim.SetFaults(sim.Faults{Mode: "drop_after_refund"}); err != nil {
		t.Fatal(err)
	}
	_, err = e.p.Refund(t.Context(), &providers.RefundRequest{ProviderPaymentID: res.ProviderPaymentID, RefundID: q.RefundID,
		IdempotencyKey: q.RefundID, Amount: 400, Currency: "SGD"})
	wantErr(t, err, providers.Ambiguous, "")
	if err := e.sim.SetFaults(sim.Faults{Mode: "none"}); err != nil {
		t.Fatal(err)
	}
	got, err := e.p.RefundStatus(t.Context(), q)
	if err != nil {
		t.Fatalf("RefundStatus after a lost answer: %v", err)
	}
	if got.Status != payrouter.RefundSucceeded || !strings.HasPrefix(got.ProviderRefundID, "re_") {
		t.Errorf("RefundStatus = %+v, want succeeded re_…", got)
	}
	byID, err := e.p.RefundStatus(t.Context(), &providers.RefundStatusRequest{ProviderRefundID: got.ProviderRefundID})
	if err != nil || byID.ProviderRefundID != got.ProviderRefundID || byID.Status != payrouter.RefundSucceeded {
		t.Errorf("RefundStatus by provider id = %+v, %v; want %s succeeded", byID, err, got.ProviderRefundID)
	}
	// By order id only (the payment's provider id unknown): found through
	// the PaymentIntent search.
	byOrder, err := e.p.RefundStatus(t.Context(), &providers.RefundStatusRequest{OrderID: authOrder(t, e, res.ProviderPaymentID), RefundID: q.RefundID})
	if err != nil || byOrder.ProviderRefundID != got.ProviderRefundID {
		t.Errorf("RefundStatus by order id = %+v, %v; want %s", byOrder, err, got.ProviderRefundID)
	}
	_, err = e.p.RefundStatus(t.Context(), &providers.RefundStatusRequest{ProviderRefundID: "re_nope"})
	wantErr(t, err, providers.Invalid, "not_found")
	if l := ledgerEntry(t, e, res.ProviderPaymentID); l.Refunded != 400 {
		t.Errorf("ledger refunded = %d, want 400 (refunded once)", l.Refunded)
	}
}

// authOrder is the order id (metadata order_id) of a PaymentIntent.
func authOrder(t *testing.T, e *env, piID string) string {
	t.Helper()
	l := ledgerEntry(t, e, piID)
	if l.Reference == "" {
		t.Fatalf("ledger entry %s has no order id", piID)
	}
	return l.Reference
}
