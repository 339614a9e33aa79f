package app_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/app/apptest"
	"github.com/payrouter/payrouter/internal/config"
	"github.com/payrouter/payrouter/internal/sim"
)

// Idempotency end to end: every POST under /v1 honours Idempotency-Key the
// same way, checked against the Stripe simulator's ledger.

type answer struct {
	status   int
	body     []byte
	replayed bool
}

// post sends a POST with the demo key and, unless key is "", an
// Idempotency-Key; timeout > 0 gives up after it (the request may still
// run on the server).
func post(t *testing.T, ti *apptest.TestInstance, path, body, key string, timeout time.Duration) (answer, error) {
	t.Helper()
	req, err := http.NewRequest("POST", ti.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer sk_sandbox_demo")
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	c := &http.Client{Timeout: timeout}
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, b, resp.Header.Get("Idempotent-Replayed") == "true"}, nil
}

func mustPost(t *testing.T, ti *apptest.TestInstance, path, body, key string) answer {
	t.Helper()
	a, err := post(t, ti, path, body, key, 0)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func errCode(t *testing.T, b []byte) string {
	t.Helper()
	var e struct {
		Error payrouter.Error `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return e.Error.Code
}

// stripeEntry is the Stripe simulator's ledger entry of a payment.
func stripeEntry(t *testing.T, ti *apptest.TestInstance, p payrouter.Payment) sim.LedgerEntry {
	t.Helper()
	var found []sim.LedgerEntry
	for _, e := range ledger(t, ti, "stripe") {
		if e.ID == p.ProviderPaymentID {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("stripe ledger has %d entries for %s, want 1", len(found), p.ProviderPaymentID)
	}
	return found[0]
}

func getPayment(t *testing.T, ti *apptest.TestInstance, id string) payrouter.Payment {
	t.Helper()
	st, b := ti.Do(t, "GET", "/v1/payments/"+id, nil)
	if st != 200 {
		t.Fatalf("GET %s: %d %s", id, st, b)
	}
	return decodePayment(t, b)
}

// crash makes the record of key at path what a router killed after the
// operation (or during it) leaves behind: running, and old enough to be
// taken over. It reaches into the database, as a crash would.
func crash(t *testing.T, ti *apptest.TestInstance, path, key string) {
	t.Helper()
	db := ti.Store.(interface{ Writer() *sql.DB }).Writer()
	q, at := `UPDATE idempotency SET status = 0, body = NULL, created_at = ? WHERE merchant_id = 'demo' AND key = ?`, any(time.Now().Add(-time.Hour).UnixMicro())
	if ti.Config.Store.Driver == "postgres" {
		q, at = strings.NewReplacer("?", "$1").Replace(q[:strings.Index(q, "WHERE")])+`WHERE merchant_id = 'demo' AND key = $2`, time.Now().Add(-time.Hour)
	}
	res, err := db.Exec(q, at, "POST "+path+" "+key)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("crash: no idempotency record for %s %s", path, key)
	}
}

// webhookSink is a merchant webhook endpoint answering 200, so the demo
// merchant's events can be redelivered.
func webhookSink(t *testing.T) func(*config.Config) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	t.Cleanup(srv.Close)
	return func(c *config.Config) {
		for i := range c.Merchants {
			if c.Merchants[i].ID == "demo" {
				c.Merchants[i].WebhookURL = srv.URL
			}
		}
	}
}

func manualCard(ref string, amount int64) string {
	return fmt.Sprintf(`{"amount":%d,"currency":"USD","method":"card","reference":%q,"capture":"manual","payment_method_tokens":{"stripe":"pm_card_visa"}}`, amount, ref)
}

// reformat is the same JSON object with its keys in reverse order and
// other whitespace: the same request.
func reformat(t *testing.T, body string) string {
	t.Helper()
	if strings.TrimSpace(body) == "" {
		return "  "
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	// Reverse of sorted order: differs from how the body was written
	// whenever it has two keys.
	for i := 0; i < len(keys); i++ {
		for j := i + 1; j < len(keys); j++ {
			if keys[j] > keys[i] {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	var b bytes.Buffer
	b.WriteString("{\n  ")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ,\n\t")
		}
		fmt.Fprintf(&b, "%q :  %s", k, m[k])
	}
	b.WriteString("\n}\n")
	return b.String()
}

// TestIdempotencyEveryPost: for each POST, the same key and request (also
// reformatted) replays the stored answer byte for byte and moves nothing;
// another body under the key is refused with 422; a new key, or the key on
// another path, is a new request that runs.
func TestIdempotencyEveryPost(t *testing.T) {
	for _, sc := range testStores(t) {
		t.Run(sc.name, func(t *testing.T) { idempotencyEveryPost(t, startOn(t, sc, webhookSink(t))) })
	}
}

func idempotencyEveryPost(t *testing.T, ti *apptest.TestInstance) {
	create := func(ref string) payrouter.Payment {
		t.Helper()
		a := mustPost(t, ti, "/v1/payments", manualCard(ref, 10000), "")
		if a.status != 201 {
			t.Fatalf("create %s: %d %s", ref, a.status, a.body)
		}
		return decodePayment(t, a.body)
	}

	type op struct {
		name      string
		path      func() string // a fresh target for the op
		body      string
		otherBody string // "" when the op reads no body
		status    int
		// effect checks the provider's ledger after the op ran once.
		effect func(t *testing.T, target string)
	}
	var capturedRef, canceledRef, refundedRef string
	byPath := map[string]payrouter.Payment{}
	newPay := func(ref string, capture bool) string {
		p := create(ref)
		if capture {
			if a := mustPost(t, ti, "/v1/payments/"+p.ID+"/capture", "", ""); a.status != 200 {
				t.Fatalf("capture: %d %s", a.status, a.body)
			}
		}
		byPath[p.ID] = getPayment(t, ti, p.ID)
		return p.ID
	}
	n := 0
	ops := []op{
		{"create", func() string { return "/v1/payments" },
			manualCard("every-create", 700), manualCard("every-create", 701), 201,
			func(t *testing.T, _ string) {
				count := 0
				for _, e := range ledger(t, ti, "stripe") {
					if e.Reference != "" && e.Amount == 700 {
						count++
					}
				}
				if count != 1 {
					t.Errorf("stripe holds %d charges of the create, want 1", count)
				}
			}},
		{"capture", func() string {
			n++
			capturedRef = newPay(fmt.Sprintf("every-cap-%d", n), false)
			return "/v1/payments/" + capturedRef + "/capture"
		},
			`{"amount":6000,"reason":"x"}`, `{"amount":5000,"reason":"x"}`, 200,
			func(t *testing.T, _ string) {
				e := stripeEntry(t, ti, byPath[capturedRef])
				if e.Status != "succeeded" {
					t.Errorf("stripe status %s, want succeeded", e.Status)
				}
				if p := getPayment(t, ti, capturedRef); p.AmountCaptured != 6000 {
					t.Errorf("amount_captured %d, want 6000", p.AmountCaptured)
				}
			}},
		{"cancel", func() string {
			n++
			canceledRef = newPay(fmt.Sprintf("every-can-%d", n), false)
			return "/v1/payments/" + canceledRef + "/cancel"
		},
			"", "", 200,
			func(t *testing.T, _ string) {
				if e := stripeEntry(t, ti, byPath[canceledRef]); e.Status != "canceled" {
					t.Errorf("stripe status %s, want canceled", e.Status)
				}
			}},
		{"refunds", func() string {
			n++
			refundedRef = newPay(fmt.Sprintf("every-ref-%d", n), true)
			return "/v1/payments/" + refundedRef + "/refunds"
		},
			`{"amount":3000,"reason":"requested_by_customer"}`, `{"amount":3001,"reason":"requested_by_customer"}`, 201,
			func(t *testing.T, _ string) {
				if e := stripeEntry(t, ti, byPath[refundedRef]); e.Refunded != 3000 {
					t.Errorf("stripe refunded %d, want 3000 (refunded once)", e.Refunded)
				}
				if p := getPayment(t, ti, refundedRef); p.AmountRefunded != 3000 || len(p.Refunds) != 1 {
					t.Errorf("amount_refunded %d with %d refunds, want 3000 and 1", p.AmountRefunded, len(p.Refunds))
				}
			}},
		{"redeliver", func() string {
			_, b := ti.Do(t, "GET", "/v1/events?limit=1", nil)
			var evs struct {
				Data []payrouter.Event `json:"data"`
			}
			_ = json.Unmarshal(b, &evs)
			if len(evs.Data) == 0 {
				t.Fatalf("no events: %s", b)
			}
			return "/v1/events/" + evs.Data[0].ID + "/redeliver"
		}, "", "", 202, nil},
	}
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			path := o.path()
			key := "key-" + o.name
			first := mustPost(t, ti, path, o.body, key)
			if first.status != o.status || first.replayed {
				t.Fatalf("first: %d replayed=%v %s, want %d", first.status, first.replayed, first.body, o.status)
			}
			for _, body := range []string{o.body, reformat(t, o.body)} {
				again := mustPost(t, ti, path, body, key)
				if again.status != first.status || !bytes.Equal(again.body, first.body) || !again.replayed {
					t.Fatalf("same key and request %q: %d replayed=%v identical=%v, want the stored answer with Idempotent-Replayed",
						body, again.status, again.replayed, bytes.Equal(again.body, first.body))
				}
			}
			if o.otherBody != "" {
				other := mustPost(t, ti, path, o.otherBody, key)
				if other.status != 422 || errCode(t, other.body) != "idempotency_key_reused" {
					t.Fatalf("same key, other body: %d %s, want 422 idempotency_key_reused", other.status, other.body)
				}
			}
			if o.effect != nil {
				o.effect(t, path)
			}
		})
	}

	// Still accepted: a new key is a new request, and a key is scoped to
	// its path.
	t.Run("new key refunds again", func(t *testing.T) {
		path := "/v1/payments/" + refundedRef + "/refunds"
		if a := mustPost(t, ti, path, `{"amount":3000}`, "key-refunds-2"); a.status != 201 || a.replayed {
			t.Fatalf("second refund with a new key: %d %s", a.status, a.body)
		}
		if e := stripeEntry(t, ti, byPath[refundedRef]); e.Refunded != 6000 {
			t.Errorf("stripe refunded %d, want 6000", e.Refunded)
		}
	})
	t.Run("same key on another path runs", func(t *testing.T) {
		other := newPay("every-scope", true)
		a := mustPost(t, ti, "/v1/payments/"+other+"/refunds", `{"amount":3000,"reason":"requested_by_customer"}`, "key-refunds")
		if a.status != 201 || a.replayed {
			t.Fatalf("key of another payment's refund: %d replayed=%v %s, want a new refund", a.status, a.replayed, a.body)
		}
		if e := stripeEntry(t, ti, byPath[other]); e.Refunded != 3000 {
			t.Errorf("stripe refunded %d, want 3000", e.Refunded)
		}
		// The create's key used on capture is not the create's either.
		c := newPay("every-scope-2", false)
		if a := mustPost(t, ti, "/v1/payments/"+c+"/capture", "", "key-create"); a.status != 200 || a.replayed {
			t.Fatalf("create's key on a capture: %d replayed=%v %s", a.status, a.replayed, a.body)
		}
	})
	t.Run("new key on a captured payment is refused by its state", func(t *testing.T) {
		a := mustPost(t, ti, "/v1/payments/"+capturedRef+"/capture", `{"amount":6000,"reason":"x"}`, "key-capture-2")
		if a.status != 409 || errCode(t, a.body) != "payment_invalid_state" {
			t.Fatalf("capture again with a new key: %d %s, want 409 payment_invalid_state", a.status, a.body)
		}
	})
	t.Run("without a key nothing is replayed", func(t *testing.T) {
		a := mustPost(t, ti, "/v1/payments/"+refundedRef+"/refunds", `{"amount":1000}`, "")
		b := mustPost(t, ti, "/v1/payments/"+refundedRef+"/refunds", `{"amount":1000}`, "")
		if a.status != 201 || b.status != 201 || a.replayed || b.replayed {
			t.Fatalf("refunds without a key: %d, %d", a.status, b.status)
		}
		if e := stripeEntry(t, ti, byPath[refundedRef]); e.Refunded != 8000 {
			t.Errorf("stripe refunded %d, want 8000 (two keyless refunds of 1000 each)", e.Refunded)
		}
	})
}

// TestRefundInFlight: a retry while the first refund is still at the
// provider is told 409 idempotency_key_in_use; after it, the stored answer.
func TestRefundInFlight(t *testing.T) {
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), nil)
	a := mustPost(t, ti, "/v1/payments", card("inflight", 5000, "pm_card_visa"), "")
	p := decodePayment(t, a.body)
	setFaults(t, ti, "stripe", sim.Faults{Mode: "slow", LatencyMS: 1500})
	path := "/v1/payments/" + p.ID + "/refunds"
	done := make(chan answer, 1)
	go func() {
		a, err := post(t, ti, path, `{"amount":2000}`, "k", 0)
		if err != nil {
			t.Error(err)
		}
		done <- a
	}()
	// The refund is recorded (pending) before the provider call: then the
	// first request is surely in flight.
	deadline := time.Now().Add(10 * time.Second)
	for len(getPayment(t, ti, p.ID).Refunds) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the refund was never recorded")
		}
		time.Sleep(10 * time.Millisecond) // polling the state, not waiting for it
	}
	busy := mustPost(t, ti, path, `{"amount":2000}`, "k")
	if busy.status != 409 || errCode(t, busy.body) != "idempotency_key_in_use" {
		t.Fatalf("retry in flight: %d %s, want 409 idempotency_key_in_use", busy.status, busy.body)
	}
	first := <-done
	setFaults(t, ti, "stripe", sim.Faults{Mode: "none"})
	if first.status != 201 {
		t.Fatalf("first refund: %d %s", first.status, first.body)
	}
	again := mustPost(t, ti, path, `{"amount":2000}`, "k")
	if !again.replayed || !bytes.Equal(again.body, first.body) {
		t.Fatalf("after the first finished: %d replayed=%v", again.status, again.replayed)
	}
	if e := stripeEntry(t, ti, p); e.Refunded != 2000 {
		t.Errorf("stripe refunded %d, want 2000", e.Refunded)
	}
}

// TestIdempotencyResumesAfterCrash: a router that died after (or during)
// an operation leaves its key running; the retry after the stale window
// takes it over and finishes the operation — it never does it twice, and
// it answers as if the first had answered.
func TestIdempotencyResumesAfterCrash(t *testing.T) {
	for _, sc := range testStores(t) {
		t.Run(sc.name, func(t *testing.T) { idempotencyResumesAfterCrash(t, startOn(t, sc, nil)) })
	}
}

func idempotencyResumesAfterCrash(t *testing.T, ti *apptest.TestInstance) {

	t.Run("create", func(t *testing.T) {
		body := card("crash-create", 4200, "pm_card_visa")
		first := mustPost(t, ti, "/v1/payments", body, "kc")
		crash(t, ti, "/v1/payments", "kc")
		again := mustPost(t, ti, "/v1/payments", body, "kc")
		if again.status != 201 || decodePayment(t, again.body).ID != decodePayment(t, first.body).ID {
			t.Fatalf("resumed create: %d %s, want 201 with the first payment", again.status, again.body)
		}
		stripeEntry(t, ti, decodePayment(t, first.body)) // exactly one charge
		if replay := mustPost(t, ti, "/v1/payments", body, "kc"); !replay.replayed || !bytes.Equal(replay.body, again.body) {
			t.Errorf("after the resumed create: replayed=%v identical=%v", replay.replayed, bytes.Equal(replay.body, again.body))
		}
	})
	t.Run("capture", func(t *testing.T) {
		p := decodePayment(t, mustPost(t, ti, "/v1/payments", manualCard("crash-cap", 5000), "").body)
		path := "/v1/payments/" + p.ID + "/capture"
		if a := mustPost(t, ti, path, "", "kcap"); a.status != 200 {
			t.Fatalf("capture: %d %s", a.status, a.body)
		}
		crash(t, ti, path, "kcap")
		again := mustPost(t, ti, path, "", "kcap")
		if again.status != 200 || decodePayment(t, again.body).Status != payrouter.StatusSucceeded {
			t.Fatalf("resumed capture: %d %s, want 200 succeeded (not invalid_state)", again.status, again.body)
		}
		if e := stripeEntry(t, ti, p); e.Status != "succeeded" {
			t.Errorf("stripe status %s", e.Status)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		p := decodePayment(t, mustPost(t, ti, "/v1/payments", manualCard("crash-can", 5000), "").body)
		path := "/v1/payments/" + p.ID + "/cancel"
		if a := mustPost(t, ti, path, "", "kcan"); a.status != 200 {
			t.Fatalf("cancel: %d %s", a.status, a.body)
		}
		crash(t, ti, path, "kcan")
		if again := mustPost(t, ti, path, "", "kcan"); again.status != 200 || decodePayment(t, again.body).Status != payrouter.StatusCanceled {
			t.Fatalf("resumed cancel: %d %s, want 200 canceled", again.status, again.body)
		}
	})
	t.Run("refund done, answer lost", func(t *testing.T) {
		p := decodePayment(t, mustPost(t, ti, "/v1/payments", card("crash-ref", 9000, "pm_card_visa"), "").body)
		path := "/v1/payments/" + p.ID + "/refunds"
		if a := mustPost(t, ti, path, `{"amount":3000}`, "kr"); a.status != 201 {
			t.Fatalf("refund: %d %s", a.status, a.body)
		}
		crash(t, ti, path, "kr")
		again := mustPost(t, ti, path, `{"amount":3000}`, "kr")
		if again.status != 201 {
			t.Fatalf("resumed refund: %d %s", again.status, again.body)
		}
		if e := stripeEntry(t, ti, p); e.Refunded != 3000 {
			t.Errorf("stripe refunded %d, want 3000", e.Refunded)
		}
		if q := getPayment(t, ti, p.ID); q.AmountRefunded != 3000 || len(q.Refunds) != 1 {
			t.Errorf("amount_refunded %d in %d refunds, want 3000 in 1", q.AmountRefunded, len(q.Refunds))
		}
	})
	t.Run("refund died mid-call", func(t *testing.T) {
		p := decodePayment(t, mustPost(t, ti, "/v1/payments", card("crash-ref-2", 9000, "pm_card_visa"), "").body)
		path := "/v1/payments/" + p.ID + "/refunds"
		// Stripe refunds, the answer is lost: the refund stays pending.
		setFaults(t, ti, "stripe", sim.Faults{Mode: "drop_after_charge"})
		a := mustPost(t, ti, path, `{"amount":4000}`, "kr2")
		setFaults(t, ti, "stripe", sim.Faults{Mode: "none"})
		if a.status != 201 {
			t.Fatalf("refund with a lost answer: %d %s", a.status, a.body)
		}
		crash(t, ti, path, "kr2")
		again := mustPost(t, ti, path, `{"amount":4000}`, "kr2")
		var rr struct {
			Refund payrouter.Refund `json:"refund"`
		}
		_ = json.Unmarshal(again.body, &rr)
		if again.status != 201 || rr.Refund.Status != payrouter.RefundSucceeded {
			t.Fatalf("resumed refund: %d %s, want 201 with the refund succeeded (same provider key)", again.status, again.body)
		}
		if e := stripeEntry(t, ti, p); e.Refunded != 4000 {
			t.Errorf("stripe refunded %d, want 4000", e.Refunded)
		}
		if q := getPayment(t, ti, p.ID); q.AmountRefunded != 4000 || len(q.Refunds) != 1 {
			t.Errorf("amount_refunded %d in %d refunds, want 4000 in 1", q.AmountRefunded, len(q.Refunds))
		}
	})
}

// TestOutageDoesNotBurnReference: creates during an outage fail without
// any provider accepting them; after recovery the merchant's retry with a
// new key and the same reference pays. A reference a provider did take
// (a decline, a success) stays taken.
func TestOutageDoesNotBurnReference(t *testing.T) {
	for _, sc := range testStores(t) {
		t.Run(sc.name, func(t *testing.T) { outageDoesNotBurnReference(t, startOn(t, sc, nil)) })
	}
}

func outageDoesNotBurnReference(t *testing.T, ti *apptest.TestInstance) {
	setFaults(t, ti, "stripe", sim.Faults{Mode: "down"})
	a := mustPost(t, ti, "/v1/payments", card("outage-1", 1500, "pm_card_visa"), "o1")
	setFaults(t, ti, "stripe", sim.Faults{Mode: "none"})
	failed := decodePayment(t, a.body)
	if a.status != 201 || failed.Status != payrouter.StatusFailed || failed.Failure == nil || failed.Failure.Code != "provider_unavailable" {
		t.Fatalf("create in an outage: %d %s, want 201 failed provider_unavailable", a.status, a.body)
	}
	// The same key still replays the failure (it is the key's answer).
	if r := mustPost(t, ti, "/v1/payments", card("outage-1", 1500, "pm_card_visa"), "o1"); !r.replayed || !bytes.Equal(r.body, a.body) {
		t.Fatalf("same key after the outage: %d replayed=%v", r.status, r.replayed)
	}
	b := mustPost(t, ti, "/v1/payments", card("outage-1", 1500, "pm_card_visa"), "o2")
	paid := decodePayment(t, b.body)
	if b.status != 201 || paid.Status != payrouter.StatusSucceeded || paid.ID == failed.ID {
		t.Fatalf("retry with a new key after recovery: %d %s, want 201 succeeded", b.status, b.body)
	}
	// Now a provider holds the reference: refused.
	c := mustPost(t, ti, "/v1/payments", card("outage-1", 1500, "pm_card_visa"), "o3")
	if c.status != 409 || errCode(t, c.body) != "duplicate_reference" {
		t.Fatalf("third create with the reference: %d %s, want 409 duplicate_reference", c.status, c.body)
	}
	// A decline is the customer's answer from a provider: the reference
	// stays taken.
	d := mustPost(t, ti, "/v1/payments", card("outage-2", 1500, "pm_card_chargeDeclined"), "o4")
	if decodePayment(t, d.body).Status != payrouter.StatusFailed {
		t.Fatalf("decline: %d %s", d.status, d.body)
	}
	if e := mustPost(t, ti, "/v1/payments", card("outage-2", 1500, "pm_card_visa"), "o5"); e.status != 409 || errCode(t, e.body) != "duplicate_reference" {
		t.Fatalf("new key after a decline: %d %s, want 409 duplicate_reference", e.status, e.body)
	}
	// The list shows both payments of the freed reference.
	_, lb := ti.Do(t, "GET", "/v1/payments?reference=outage-1", nil)
	var list struct {
		Data []payrouter.Payment `json:"data"`
	}
	_ = json.Unmarshal(lb, &list)
	if len(list.Data) != 2 || list.Data[0].ID != paid.ID {
		t.Errorf("list by reference: %d payments, want the paid one first, then the failed one", len(list.Data))
	}
	charged := 0
	for _, e := range ledger(t, ti, "stripe") {
		if e.Status == "succeeded" && e.ID == paid.ProviderPaymentID {
			charged++
		}
	}
	if charged != 1 {
		t.Errorf("stripe charged the reference %d times, want 1", charged)
	}
}

// TestIdempotencyLegacyRecords: a create's record stored before requests
// were fingerprinted as parsed (its hash is the raw body's) still replays
// for the same bytes, and refuses others.
func TestIdempotencyLegacyRecords(t *testing.T) {
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), nil)
	body := card("legacy-1", 1234, "pm_card_visa")
	sum := sha256.Sum256([]byte(body))
	ctx := context.Background()
	key := "POST /v1/payments legacy" // as migration 4 rewrites old keys
	if rec, err := ti.Store.ClaimIdempotencyKey(ctx, "demo", key, hex.EncodeToString(sum[:]), time.Now()); rec != nil || err != nil {
		t.Fatalf("claim = %+v, %v", rec, err)
	}
	stored := []byte(`{"id":"pay_legacy"}`)
	if err := ti.Store.CompleteIdempotencyKey(ctx, "demo", key, 201, stored); err != nil {
		t.Fatal(err)
	}
	a := mustPost(t, ti, "/v1/payments", body, "legacy")
	if a.status != 201 || !a.replayed || !bytes.Equal(bytes.TrimSpace(a.body), stored) {
		t.Fatalf("legacy replay: %d replayed=%v %s", a.status, a.replayed, a.body)
	}
	if b := mustPost(t, ti, "/v1/payments", card("legacy-1", 1235, "pm_card_visa"), "legacy"); b.status != 422 {
		t.Fatalf("legacy record, other body: %d %s, want 422", b.status, b.body)
	}
	if n := len(ledger(t, ti, "stripe")); n != 0 {
		t.Errorf("stripe holds %d charges, want none (everything replayed or refused)", n)
	}
}

// TestIdempotencyPurgeRuns: the server purges records older than
// idempotency.retention on its schedule and keeps younger ones.
func TestIdempotencyPurgeRuns(t *testing.T) {
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), func(c *config.Config) {
		c.Idempotency.PurgeEvery = config.Duration(20 * time.Millisecond)
	})
	ctx := context.Background()
	for key, age := range map[string]time.Duration{"old": 25 * time.Hour, "young": 23 * time.Hour} {
		// Running records: the purge takes completed and abandoned alike.
		if rec, err := ti.Store.ClaimIdempotencyKey(ctx, "demo", key, "h", time.Now().Add(-age)); rec != nil || err != nil {
			t.Fatalf("claim %s = %+v, %v", key, rec, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := ti.Store.GetIdempotencyKey(ctx, "demo", "old")
		if errors.Is(err, payrouter.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the 25h old record was not purged: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // polling the purge's effect
	}
	if _, err := ti.Store.GetIdempotencyKey(ctx, "demo", "young"); err != nil {
		t.Errorf("the 23h old record: %v, want it kept", err)
	}
}
