package inbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/inbox"
	"github.com/payrouter/payrouter/internal/snapbi"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/internal/store/sqlite"
	"github.com/payrouter/payrouter/providers"
	"github.com/payrouter/payrouter/providers/dana"
	"github.com/payrouter/payrouter/providers/midtrans"
	"github.com/payrouter/payrouter/router"
)

const midtransKey = "SB-Mid-server-inbox-test"

// statusAPI is a provider whose status query answers what the test says
// (the provider's truth); only Status is used.
type statusAPI struct {
	mu     sync.Mutex
	status string // Midtrans transaction_status
	asked  []providers.StatusRequest
}

func (s *statusAPI) set(status string) { s.mu.Lock(); s.status = status; s.mu.Unlock() }

func (s *statusAPI) Capabilities() providers.Capabilities { return providers.Capabilities{} }
func (s *statusAPI) Authorize(context.Context, *providers.AuthorizeRequest) (*providers.Result, error) {
	return nil, errors.New("unused")
}
func (s *statusAPI) Capture(context.Context, *providers.CaptureRequest) (*providers.Result, error) {
	return nil, errors.New("unused")
}
func (s *statusAPI) Cancel(context.Context, *providers.CancelRequest) (*providers.Result, error) {
	return nil, errors.New("unused")
}
func (s *statusAPI) Refund(context.Context, *providers.RefundRequest) (*providers.RefundResult, error) {
	return nil, errors.New("unused")
}
func (s *statusAPI) Status(_ context.Context, req *providers.StatusRequest) (*providers.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, *req)
	if s.status == "" {
		return nil, &providers.Error{Class: providers.Unavailable, Code: "service_unavailable"}
	}
	return &providers.Result{ProviderPaymentID: "mt-tx-" + req.OrderID, Status: midtrans.MapStatus(s.status, ""), ProviderStatus: s.status}, nil
}

var _ providers.StatusChecker = (*statusAPI)(nil)

// confirmRig is the webhook path without HTTP for Midtrans: the real
// Midtrans parser, the inbox and the router (whose status queries go to
// api), on a real SQLite store, with a clock the test moves.
type confirmRig struct {
	in    *inbox.Inbox
	st    *sqlite.Store
	api   *statusAPI
	clock time.Time
}

func newConfirmRig(t *testing.T) *confirmRig {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "p.db"), sqlite.Options{Synchronous: "off"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	parser, err := midtrans.New(midtrans.Config{Name: "midtrans", ServerKey: midtransKey})
	if err != nil {
		t.Fatal(err)
	}
	api := &statusAPI{status: "pending"}
	g := router.Guard("midtrans", api, time.Second, router.BreakerSettings{}, nil)
	rt := router.New(st, nil, map[string]*router.Guarded{"midtrans": g}, router.Options{}, nil)
	rig := &confirmRig{st: st, api: api, clock: time.Now()}
	rig.in = inbox.New(st, rt, map[string]inbox.Source{"midtrans": {Parser: parser}}, nil)
	rig.in.Now = func() time.Time { return rig.clock }
	return rig
}

// qrisPayment stores a QRIS payment waiting for the customer at Midtrans.
func qrisPayment(t *testing.T, st store.Store, id string) *payrouter.Payment {
	t.Helper()
	now := time.Now().UTC()
	key := payrouter.AttemptKey(id, 1)
	p := &payrouter.Payment{ID: id, MerchantID: "demo", Status: payrouter.StatusProcessing, Amount: 150000, Currency: "IDR",
		Method: payrouter.MethodQRIS, Reference: id, Capture: payrouter.CaptureAutomatic, Provider: "midtrans", ProviderPaymentID: "mt-tx-" + key,
		Attempts: []payrouter.Attempt{{N: 1, Provider: "midtrans", ProviderPaymentID: "mt-tx-" + key, Status: payrouter.AttemptRequiresAction,
			StartedAt: now, IdempotencyKey: key}},
		CreatedAt: now, UpdatedAt: now}
	if _, err := p.Advance(payrouter.StatusRequiresAction, now); err != nil {
		t.Fatal(err)
	}
	if err := st.CreatePayment(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

// midtransNotification is an HTTP notification for p's attempt signed as
// Midtrans signs: over order_id + status_code + gross_amount only. status
// is the (unsigned) transaction_status written into it.
func midtransNotification(p *payrouter.Payment, statusCode, status string) []byte {
	order := p.Attempts[0].IdempotencyKey
	gross := fmt.Sprintf("%d.00", p.Amount)
	b, _ := json.Marshal(map[string]string{
		"transaction_time": "2026-12-01 10:00:00", "transaction_status": status, "transaction_id": "mt-tx-" + order,
		"status_message": "midtrans payment notification", "status_code": statusCode, "payment_type": "qris",
		"order_id": order, "gross_amount": gross, "currency": "IDR", "fraud_status": "accept",
		"signature_key": midtrans.SignatureKey(order, statusCode, gross, midtransKey),
	})
	return b
}

func (rig *confirmRig) receive(t *testing.T, body []byte) string {
	t.Helper()
	res, err := rig.in.Receive(context.Background(), "midtrans", netip.Addr{}, http.Header{"Content-Type": {"application/json"}}, body)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	return res.Outcome
}

func (rig *confirmRig) payment(t *testing.T, id string) *payrouter.Payment {
	t.Helper()
	p, err := rig.st.GetPayment(context.Background(), "", id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (rig *confirmRig) events(t *testing.T, id string) []payrouter.EventType {
	t.Helper()
	evs, err := rig.st.ListEvents(context.Background(), "", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []payrouter.EventType
	for _, e := range evs {
		if e.PaymentID == id {
			out = append(out, e.Type)
		}
	}
	return out
}

// The genuine signature of a pending notification (order_id + "201" +
// gross_amount), relabelled expire / cancel / deny, kills nothing: the
// status API still says pending. When the customer then pays, the genuine
// settlement notification is applied, and the relabelled ones, checked
// again, are refuted. A genuine expiry (the status API agrees) is applied.
func TestRelabelledMidtransNotificationIgnored(t *testing.T) {
	rig := newConfirmRig(t)
	p := qrisPayment(t, rig.st, "pay_relabel")
	if got := rig.receive(t, midtransNotification(p, "201", "pending")); got != router.OutcomeStale {
		t.Fatalf("genuine pending: %s, want stale (already waiting)", got)
	}
	for _, label := range []string{"expire", "cancel", "deny", "failure", "settlement", "chargeback"} {
		t.Run(label, func(t *testing.T) {
			forged := midtransNotification(p, "201", label) // the pending signature, relabelled
			if got := rig.receive(t, forged); got != router.OutcomeUnconfirmed {
				t.Errorf("relabelled %s: %s, want unconfirmed", label, got)
			}
			if got := rig.payment(t, p.ID); got.Status != payrouter.StatusRequiresAction {
				t.Errorf("after relabelled %s: %s, want requires_action", label, got.Status)
			}
		})
	}
	for _, q := range rig.api.asked {
		if q.OrderID != p.Attempts[0].IdempotencyKey || q.ProviderPaymentID != p.Attempts[0].ProviderPaymentID {
			t.Fatalf("status asked by %+v, want payrouter's own ids for the attempt", q)
		}
	}

	rig.api.set("settlement") // the customer pays
	if got := rig.receive(t, midtransNotification(p, "200", "settlement")); got != router.OutcomeApplied {
		t.Fatalf("genuine settlement: %s, want applied", got)
	}
	rig.clock = rig.clock.Add(time.Hour)
	if _, err := rig.in.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Checked again, every relabelled claim is dealt with — but the
	// unmapped one (a chargeback may yet come) until confirm_for.
	pending, err := rig.st.PendingWebhooks(context.Background(), 100)
	if err != nil || len(pending) != 1 || pending[0].EventID != mustParse(t, midtransNotification(p, "201", "chargeback")).EventID {
		t.Errorf("inbox holds %d pending items (%v) after the status API settled, want only the chargeback claim", len(pending), err)
	}
	for _, label := range []string{"expire", "cancel", "deny"} {
		it, err := rig.st.GetWebhook(context.Background(), "midtrans", mustParse(t, midtransNotification(p, "201", label)).EventID)
		if err != nil || it.Outcome != router.OutcomeRefuted {
			t.Errorf("relabelled %s after the payment settled: %+v, %v; want refuted", label, it, err)
		}
	}
	if got := rig.payment(t, p.ID); got.Status != payrouter.StatusSucceeded {
		t.Fatalf("status %s, want succeeded", got.Status)
	}
	if evs := rig.events(t, p.ID); len(evs) != 2 || evs[1] != payrouter.EventSuccess {
		t.Errorf("events %v, want [payment_requires_action payment_success] (never payment_failed)", evs)
	}

	// The other direction: a genuine expiry the status API confirms ends
	// the payment.
	q := qrisPayment(t, rig.st, "pay_expires")
	rig.api.set("expire")
	if got := rig.receive(t, midtransNotification(q, "202", "expire")); got != router.OutcomeApplied {
		t.Fatalf("genuine expire: %s, want applied", got)
	}
	if got := rig.payment(t, q.ID); got.Status != payrouter.StatusExpired {
		t.Errorf("status %s, want expired", got.Status)
	}
}

// A settlement notification that arrives while the status API still says
// pending is not burnt: it stays pending in the inbox, the provider's
// redelivery is checked again at once (never a duplicate until dealt with),
// and the inbox's own re-check settles it when nobody redelivers.
func TestStaleThenRealSettles(t *testing.T) {
	t.Run("redelivered", func(t *testing.T) {
		rig := newConfirmRig(t)
		p := qrisPayment(t, rig.st, "pay_lag")
		body := midtransNotification(p, "200", "settlement")
		for i := range 2 {
			if got := rig.receive(t, body); got != router.OutcomeUnconfirmed {
				t.Fatalf("delivery %d while the status API lags: %s, want unconfirmed", i+1, got)
			}
		}
		if got := rig.payment(t, p.ID); got.Status != payrouter.StatusRequiresAction {
			t.Fatalf("status %s before the status API agrees, want requires_action", got.Status)
		}
		rig.api.set("settlement")
		if got := rig.receive(t, body); got != router.OutcomeApplied {
			t.Fatalf("identical notification once the status API agrees: %s, want applied", got)
		}
		if got := rig.receive(t, body); got != inbox.OutcomeDuplicate {
			t.Fatalf("after it was applied: %s, want duplicate", got)
		}
		if got := rig.payment(t, p.ID); got.Status != payrouter.StatusSucceeded {
			t.Fatalf("status %s, want succeeded", got.Status)
		}
	})
	t.Run("re-checked by the inbox", func(t *testing.T) {
		rig := newConfirmRig(t)
		rig.in.RetryBase = time.Minute
		p := qrisPayment(t, rig.st, "pay_lag2")
		if got := rig.receive(t, midtransNotification(p, "200", "settlement")); got != router.OutcomeUnconfirmed {
			t.Fatalf("first delivery: %s, want unconfirmed", got)
		}
		rig.api.set("settlement")
		asked := len(rig.api.asked)
		if n, err := rig.in.Drain(context.Background()); err != nil || n != 0 || len(rig.api.asked) != asked {
			t.Fatalf("Drain before the retry is due finished %d (%v), asked %d more; want nothing", n, err, len(rig.api.asked)-asked)
		}
		rig.clock = rig.clock.Add(time.Minute)
		if n, err := rig.in.Drain(context.Background()); err != nil || n != 1 {
			t.Fatalf("Drain when due finished %d (%v), want 1", n, err)
		}
		if got := rig.payment(t, p.ID); got.Status != payrouter.StatusSucceeded {
			t.Fatalf("status %s, want succeeded", got.Status)
		}
		it, err := rig.st.GetWebhook(context.Background(), "midtrans", mustParse(t, midtransNotification(p, "200", "settlement")).EventID)
		if err != nil || it.Outcome != router.OutcomeApplied || it.Attempts != 1 {
			t.Errorf("inbox item = %+v, %v; want applied after 1 re-check", it, err)
		}
	})
	t.Run("given up after confirm_for", func(t *testing.T) {
		rig := newConfirmRig(t)
		rig.in.ConfirmFor = time.Hour
		p := qrisPayment(t, rig.st, "pay_never")
		rig.receive(t, midtransNotification(p, "200", "settlement"))
		rig.clock = rig.clock.Add(2 * time.Hour)
		if n, err := rig.in.Drain(context.Background()); err != nil || n != 1 {
			t.Fatalf("Drain after confirm_for finished %d (%v), want 1 (closed)", n, err)
		}
		pending, _ := rig.st.PendingWebhooks(context.Background(), 10)
		if len(pending) != 0 || rig.payment(t, p.ID).Status != payrouter.StatusRequiresAction {
			t.Errorf("pending %d, status %s; want closed, payment untouched", len(pending), rig.payment(t, p.ID).Status)
		}
	})
	t.Run("status API down: queued and retried", func(t *testing.T) {
		rig := newConfirmRig(t)
		p := qrisPayment(t, rig.st, "pay_down")
		rig.api.set("") // status queries fail
		if got := rig.receive(t, midtransNotification(p, "200", "settlement")); got != inbox.OutcomeQueued {
			t.Fatalf("with the status API down: %s, want queued", got)
		}
		rig.api.set("settlement")
		rig.clock = rig.clock.Add(time.Minute)
		if n, err := rig.in.Drain(context.Background()); err != nil || n != 1 || rig.payment(t, p.ID).Status != payrouter.StatusSucceeded {
			t.Fatalf("Drain = %d, %v; status %s; want the queued notification applied", n, err, rig.payment(t, p.ID).Status)
		}
	})
}

func mustParse(t *testing.T, body []byte) *providers.Notification {
	t.Helper()
	p, _ := midtrans.New(midtrans.Config{Name: "midtrans", ServerKey: midtransKey})
	n, err := p.ParseWebhook(nil, body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A SNAP finish notify for another amount (an anomaly) has its own
// dedupe id: the genuine notify for the payment's amount is still applied.
func TestSNAPAmountMismatchDoesNotShadow(t *testing.T) {
	ctx := context.Background()
	partner, wallet, err := snapbi.GenerateSandboxKeys()
	if err != nil {
		t.Fatal(err)
	}
	parser, err := dana.New(dana.Config{ClientID: "c", PrivateKey: partner, ProviderPublicKey: &wallet.PublicKey,
		MerchantID: "216620000000000000000", BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "p.db"), sqlite.Options{Synchronous: "off"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	in := inbox.New(st, router.New(st, nil, nil, router.Options{}, nil), map[string]inbox.Source{"dana": {Parser: parser}}, nil)

	now := time.Now().UTC()
	key := payrouter.AttemptKey("pay_snap", 1)
	p := &payrouter.Payment{ID: "pay_snap", MerchantID: "demo", Status: payrouter.StatusProcessing, Amount: 10000, Currency: "IDR",
		Method: payrouter.MethodDANA, Reference: "snap", Capture: payrouter.CaptureAutomatic, Provider: "dana", ProviderPaymentID: "DANA-1",
		Attempts:  []payrouter.Attempt{{N: 1, Provider: "dana", ProviderPaymentID: "DANA-1", Status: payrouter.AttemptRequiresAction, StartedAt: now, IdempotencyKey: key}},
		CreatedAt: now, UpdatedAt: now}
	if _, err := p.Advance(payrouter.StatusRequiresAction, now); err != nil {
		t.Fatal(err)
	}
	if err := st.CreatePayment(ctx, p); err != nil {
		t.Fatal(err)
	}
	notify := func(value string) (http.Header, []byte) {
		b, _ := json.Marshal(snapbi.FinishNotify{OriginalPartnerReferenceNo: key, OriginalReferenceNo: "DANA-1", MerchantID: "216620000000000000000",
			Amount: snapbi.Money{Value: value, Currency: "IDR"}, LatestTransactionStatus: "00", CreatedTime: "2026-12-01T10:00:00+07:00",
			FinishedTime: "2026-12-01T10:01:00+07:00"})
		h, err := snapbi.SignNotification(wallet, http.MethodPost, "/webhooks/dana", b, now)
		if err != nil {
			t.Fatal(err)
		}
		return h, b
	}
	h, b := notify("9000.00")
	if res, err := in.Receive(ctx, "dana", netip.Addr{}, h, b); err != nil || res.Outcome != router.OutcomeAnomaly {
		t.Fatalf("notify for 9000: %+v, %v; want anomaly", res, err)
	}
	if got, _ := st.GetPayment(ctx, "", p.ID); got.Status != payrouter.StatusRequiresAction {
		t.Fatalf("after the mismatch: %s, want requires_action", got.Status)
	}
	h, b = notify("10000.00")
	if res, err := in.Receive(ctx, "dana", netip.Addr{}, h, b); err != nil || res.Outcome != router.OutcomeApplied {
		t.Fatalf("genuine notify for 10000: %+v, %v; want applied (not a duplicate of the mismatch)", res, err)
	}
	if got, _ := st.GetPayment(ctx, "", p.ID); got.Status != payrouter.StatusSucceeded {
		t.Errorf("status %s, want succeeded", got.Status)
	}
	an, _ := st.ListAnomalies(ctx, 10)
	if len(an) != 1 || an[0].Kind != store.AnomalyAmount {
		t.Errorf("anomalies %+v, want the one amount mismatch", an)
	}
}
