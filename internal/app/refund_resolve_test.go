package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/app/apptest"
	"github.com/payrouter/payrouter/internal/config"
	"github.com/payrouter/payrouter/internal/sim"
	"github.com/payrouter/payrouter/router"
)

// Refunds that a fault left pending reach their true state at every
// provider: the simulator refunds and the answer is lost
// (drop_after_refund), the request times out before the simulator acts on
// it (slow), or the router died between writing the refund and calling the
// provider (the refund is in the store, never sent). Each ends succeeded
// with exactly one refund_success event, and the simulator's ledger shows
// the money refunded once.
func TestRefundsSettleAfterFaults(t *testing.T) {
	const callTimeout = time.Second // SNAP signing under -race on a busy machine needs it
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), chain(fastResolver, func(c *config.Config) {
		// The resolver leaves a refund alone for deadline + 5 s (its call
		// may still be running); keep that short.
		c.Router.Deadline = config.Duration(time.Second)
		c.Router.AttemptTimeout = config.Duration(callTimeout)
		for name, p := range c.Providers {
			p.Timeout = config.Duration(callTimeout)
			c.Providers[name] = p
		}
	}))
	cases := []struct {
		provider, method string
		unit             int64 // ledger units per payrouter unit (Stripe: IDR two-decimal)
		partial          bool  // the provider takes partial refunds
	}{
		{"stripe", "card", 100, true}, {"midtrans", "card", 1, true}, {"xendit", "card", 1, true},
		{"gopay", "gopay", 1, true}, {"ovo", "ovo", 1, false}, {"dana", "dana", 1, true},
	}
	var mu sync.Mutex
	var ids, ovoIDs []string // ovoIDs: one full refund each, no partial ones
	for _, c := range cases {
		t.Run(c.provider, func(t *testing.T) {
			t.Parallel()
			first := int64(50000) // the faulty refund; the rest is refunded after it
			if !c.partial {
				first = 150000
			}
			paid := func(fault string) payrouter.Payment {
				t.Helper()
				ref := fmt.Sprintf("rf-%s-%s", c.provider, fault)
				body := map[string]any{"amount": 150000, "currency": "IDR", "method": c.method, "provider": c.provider, "reference": ref,
					"customer": map[string]string{"name": "Budi", "phone": "+6281234567890", "email": "budi@example.com"}, "return_url": "https://merchant.example/return"}
				if c.method == "card" {
					body["payment_method_tokens"] = map[string]string{c.provider: "tok_sandbox_success"}
				}
				st, b := ti.Do(t, "POST", "/v1/payments", body, "Idempotency-Key", ref)
				if st != 201 {
					t.Fatalf("create: %d %s", st, b)
				}
				p := decodePayment(t, b)
				if p.Status != payrouter.StatusSucceeded {
					simPay(t, ti, c.provider, p.ProviderPaymentID, "success")
					p = waitStatus(t, ti, p.ID, payrouter.StatusSucceeded)
				}
				mu.Lock()
				if c.partial {
					ids = append(ids, p.ID)
				} else {
					ovoIDs = append(ovoIDs, p.ID)
				}
				mu.Unlock()
				return p
			}
			refund := func(p payrouter.Payment) payrouter.Refund {
				t.Helper()
				st, b := ti.Do(t, "POST", "/v1/payments/"+p.ID+"/refunds", fmt.Sprintf(`{"amount":%d}`, first))
				var rr struct {
					Refund payrouter.Refund `json:"refund"`
				}
				// Pending, or already succeeded when the provider's refund
				// webhook (Stripe, Midtrans, Xendit send one) beat the answer.
				if err := json.Unmarshal(b, &rr); err != nil || st != 201 || rr.Refund.Status == payrouter.RefundFailed {
					t.Fatalf("refund under a fault: %d %s, want 201 with the refund pending", st, b)
				}
				return rr.Refund
			}
			s := ti.Sims[c.provider]
			dropped, timedOut, crashed := paid("drop"), paid("timeout"), paid("crash")
			setFaults(t, ti, c.provider, sim.Faults{Mode: "drop_after_refund"})
			dr := refund(dropped)
			setFaults(t, ti, c.provider, sim.Faults{Mode: "slow", LatencyMS: int(4 * callTimeout / time.Millisecond)})
			tr := refund(timedOut)
			setFaults(t, ti, c.provider, sim.Faults{Mode: "none"})
			cr := writeUnsentRefund(t, ti, crashed.ID, first)

			for _, w := range []struct {
				p  payrouter.Payment
				rf string
			}{{dropped, dr.ID}, {timedOut, tr.ID}, {crashed, cr}} {
				got := waitRefund(t, ti, w.p.ID, w.rf)
				if got.AmountRefunded != first {
					t.Errorf("%s: status %s refunded %d, want %d: %+v", w.p.Reference, got.Status, got.AmountRefunded, first, got)
				}
				if c.partial {
					// Nothing is held: the rest is refundable in full.
					st, b := ti.Do(t, "POST", "/v1/payments/"+w.p.ID+"/refunds", `{}`)
					var rr struct {
						Refund  payrouter.Refund  `json:"refund"`
						Payment payrouter.Payment `json:"payment"`
					}
					_ = json.Unmarshal(b, &rr)
					if st != 201 || rr.Refund.Amount != 150000-first || rr.Payment.Status != payrouter.StatusRefunded {
						t.Errorf("%s: refund of the rest: %d %s, want %d and refunded", w.p.Reference, st, b, 150000-first)
					}
				}
				found := false
				for _, l := range s.Backend.Ledger() {
					if l.ID == w.p.ProviderPaymentID {
						found = true
						if l.Refunded != 150000*c.unit {
							t.Errorf("%s: ledger refunded %d, want %d: money moved more or less than once", w.p.Reference, l.Refunded, 150000*c.unit)
						}
					}
				}
				if !found {
					t.Errorf("%s: no ledger entry %s", w.p.Reference, w.p.ProviderPaymentID)
				}
			}
		})
	}
	// One refund_success per refund, no refund_failed: two per payment.
	_, b := ti.Do(t, "GET", "/v1/events?limit=1000", nil)
	var evs struct {
		Data []payrouter.Event `json:"data"`
	}
	if err := json.Unmarshal(b, &evs); err != nil {
		t.Fatal(err)
	}
	success := map[string]int{}
	want := map[string]int{}
	for _, id := range ids {
		want[id] = 2
	}
	for _, id := range ovoIDs {
		want[id] = 1
	}
	for _, e := range evs.Data {
		switch e.Type {
		case payrouter.EventRefundSuccess:
			success[e.PaymentID]++
		case payrouter.EventRefundFailed:
			t.Errorf("refund_failed for %s: %s", e.PaymentID, e.Data)
		}
	}
	for id, n := range want {
		if success[id] != n {
			t.Errorf("payment %s: %d refund_success events, want %d", id, success[id], n)
		}
	}
}

// writeUnsentRefund leaves the store as a router that died between writing
// a refund and calling the provider does: the refund pending (written a
// while ago), the payment queued for the resolver, no provider call.
func writeUnsentRefund(t *testing.T, ti *apptest.TestInstance, paymentID string, amount int64) string {
	t.Helper()
	id := router.NewID("re_")
	_, err := ti.Store.UpdatePayment(context.Background(), paymentID, func(q *payrouter.Payment) error {
		at := time.Now().UTC().Add(-time.Minute)
		q.Refunds = append(q.Refunds, payrouter.Refund{ID: id, Amount: amount, Status: payrouter.RefundPending, CreatedAt: at})
		now := time.Now().UTC()
		q.ResolveAt = &now
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// waitRefund polls a payment until refund id is no longer pending and
// fails unless it succeeded.
func waitRefund(t *testing.T, ti *apptest.TestInstance, paymentID, id string) payrouter.Payment {
	t.Helper()
	var p payrouter.Payment
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, b := ti.Do(t, "GET", "/v1/payments/"+paymentID, nil)
		p = decodePayment(t, b)
		for _, rf := range p.Refunds {
			if rf.ID != id || rf.Status == payrouter.RefundPending {
				continue
			}
			if rf.Status != payrouter.RefundSucceeded {
				t.Fatalf("payment %s refund %s: %s (%s), want succeeded", paymentID, id, rf.Status, rf.FailureCode)
			}
			return p
		}
	}
	t.Fatalf("payment %s refund %s still pending: %+v", paymentID, id, p.Refunds)
	return p
}
