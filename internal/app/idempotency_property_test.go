package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/app/apptest"
	"github.com/payrouter/payrouter/internal/config"
	"github.com/payrouter/payrouter/internal/sim"
)

// TestPropertyRetriesMoveMoneyOnce: whatever the merchant's retries of a
// POST under one Idempotency-Key look like — how many, sequential or
// concurrent, reformatted bodies, given up on by a client timeout, with
// the router "crashing" between them (the key left running and stale) or
// a provider answer lost mid-call — every create, capture, cancel, refund
// and redeliver takes effect exactly once: one payment per reference, one
// charge in the Stripe simulator's ledger, captured and refunded amounts
// equal to what the operations asked, and every answer under a key the
// same bytes (since the last crash, which loses the stored answer).
//
// Run more cases with -rapid.checks=N; a failure prints the drawn case.
func TestPropertyRetriesMoveMoneyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("property test: a sandbox and hundreds of requests")
	}
	for _, sc := range testStores(t) {
		t.Run(sc.name, func(t *testing.T) {
			propertyRetriesMoveMoneyOnce(t, startOn(t, sc, chain(webhookSink(t), breakersNeverTrip)))
		})
	}
}

// breakersNeverTrip keeps every breaker closed. The property test loses
// provider answers on purpose (ambiguous calls, which breakers count), up
// to four at once with concurrent retries: a few unlucky draws opened
// Stripe's breaker (found in CI), and the next create answered 503 where
// the property expects 201. Breakers are not what this test is about
// (chaos_test.go covers them).
func breakersNeverTrip(c *config.Config) {
	for name, pc := range c.Providers {
		pc.Breaker.MinRequests = math.MaxUint32
		c.Providers[name] = pc
	}
}

func propertyRetriesMoveMoneyOnce(t *testing.T, ti *apptest.TestInstance) {
	var (
		n      int
		cursor string // last event seen, for redeliver targets
	)
	rapid.Check(t, func(rt *rapid.T) {
		n++
		ref := fmt.Sprintf("prop-%d", n)
		amount := rapid.Int64Range(100, 100000).Draw(rt, "amount")
		manual := rapid.Bool().Draw(rt, "manual")
		capture := "automatic"
		if manual {
			capture = "manual"
		}
		body := fmt.Sprintf(`{"amount":%d,"currency":"USD","method":"card","reference":%q,"capture":%q,"payment_method_tokens":{"stripe":"pm_card_visa"}}`,
			amount, ref, capture)
		created := retries(rt, t, ti, "/v1/payments", body, "create-"+ref, 201, false)
		p := decodePayment(t, created)
		checkOnePayment(rt, t, ti, ref, p)

		captured := int64(0)
		if manual {
			if rapid.Bool().Draw(rt, "cancel") {
				retries(rt, t, ti, "/v1/payments/"+p.ID+"/cancel", "", "cancel-"+ref, 200, false)
				if e := stripeEntry(t, ti, p); e.Status != "canceled" {
					rt.Fatalf("stripe status %s after cancel, want canceled", e.Status)
				}
			} else {
				capAmt := rapid.Int64Range(0, amount).Draw(rt, "capture_amount") // 0: all
				capBody := ""
				if capAmt > 0 {
					capBody = fmt.Sprintf(`{"amount":%d}`, capAmt)
				} else {
					capAmt = amount
				}
				retries(rt, t, ti, "/v1/payments/"+p.ID+"/capture", capBody, "capture-"+ref, 200, false)
				captured = capAmt
			}
		} else {
			captured = amount
		}
		if captured > 0 {
			if e := stripeEntry(t, ti, p); e.Status != "succeeded" {
				rt.Fatalf("stripe status %s, want succeeded", e.Status)
			}
			if q := getPayment(t, ti, p.ID); q.AmountCaptured != captured {
				rt.Fatalf("amount_captured %d, want %d", q.AmountCaptured, captured)
			}
		}

		refunded := int64(0)
		for i := range rapid.IntRange(0, 3).Draw(rt, "refunds") {
			if captured == 0 || refunded == captured {
				break
			}
			amt := rapid.Int64Range(1, captured-refunded).Draw(rt, fmt.Sprintf("refund_%d", i))
			lose := rapid.Bool().Draw(rt, fmt.Sprintf("refund_%d_answer_lost", i))
			retries(rt, t, ti, "/v1/payments/"+p.ID+"/refunds", fmt.Sprintf(`{"amount":%d,"reason":"requested_by_customer"}`, amt),
				fmt.Sprintf("refund-%s-%d", ref, i), 201, lose)
			refunded += amt
			settleRefunds(rt, t, ti, p.ID)
			if e := stripeEntry(t, ti, p); e.Refunded != refunded {
				rt.Fatalf("stripe refunded %d after refund %d, want %d", e.Refunded, i, refunded)
			}
			if q := getPayment(t, ti, p.ID); q.AmountRefunded != refunded {
				rt.Fatalf("amount_refunded %d after refund %d, want %d", q.AmountRefunded, i, refunded)
			}
		}

		if rapid.Bool().Draw(rt, "redeliver") {
			q := url.Values{"limit": {"1000"}}
			if cursor != "" {
				q.Set("after", cursor)
			}
			_, b := ti.Do(t, "GET", "/v1/events?"+q.Encode(), nil)
			var evs struct {
				Data []payrouter.Event `json:"data"`
			}
			_ = json.Unmarshal(b, &evs)
			if len(evs.Data) > 0 {
				ev := evs.Data[rapid.IntRange(0, len(evs.Data)-1).Draw(rt, "event")]
				cursor = evs.Data[len(evs.Data)-1].ID
				retries(rt, t, ti, "/v1/events/"+ev.ID+"/redeliver", "", "redeliver-"+ref, 202, false)
			}
		}
		checkOnePayment(rt, t, ti, ref, p)
	})
}

// retries sends the request under key as the drawn retry pattern does and
// returns the final stored answer, checking that every answer since the
// last crash is that answer (or 409 in progress) and that its status is
// want. loseFirst drops the provider's answer to the first attempt (the
// call went through, the router does not know).
func retries(rt *rapid.T, t *testing.T, ti *apptest.TestInstance, path, body, key string, want int, loseFirst bool) []byte {
	tries := rapid.IntRange(1, 4).Draw(rt, "tries")
	concurrent := rapid.Bool().Draw(rt, "concurrent")
	crashAfter := rapid.IntRange(-1, tries-1).Draw(rt, "crash_after") // -1: no crash
	timeoutFirst := rapid.Bool().Draw(rt, "timeout_first")
	bodies := make([]string, tries)
	for i := range bodies {
		bodies[i] = body
		if rapid.Bool().Draw(rt, fmt.Sprintf("reformat_%d", i)) {
			bodies[i] = reformat(t, body)
		}
	}
	var (
		mu      sync.Mutex
		answers []answer
	)
	send := func(i int) {
		timeout := time.Duration(0)
		if i == 0 && timeoutFirst {
			timeout = time.Millisecond // the client gives up; the server may go on
		}
		a, err := post(t, ti, path, bodies[i], key, timeout)
		if err != nil {
			if timeout == 0 {
				t.Error(err)
			}
			return
		}
		mu.Lock()
		answers = append(answers, a)
		mu.Unlock()
	}
	if loseFirst {
		setFaults(t, ti, "stripe", sim.Faults{Mode: "drop_after_charge"})
	}
	if concurrent {
		var wg sync.WaitGroup
		for i := range tries {
			wg.Add(1)
			go func() { defer wg.Done(); send(i) }()
		}
		wg.Wait()
		if loseFirst {
			setFaults(t, ti, "stripe", sim.Faults{Mode: "none"})
		}
	} else {
		for i := range tries {
			send(i)
			if i == 0 && loseFirst {
				setFaults(t, ti, "stripe", sim.Faults{Mode: "none"})
			}
			// A crash only between finished requests: a timed-out one may
			// still run, and a live request is never presumed dead.
			if i == crashAfter && !(i == 0 && timeoutFirst) {
				final := settle(rt, t, ti, path, body, key)
				_ = final
				crash(t, ti, path, key)
				mu.Lock()
				answers = answers[:0] // the stored answer is lost with the crash
				mu.Unlock()
			}
		}
	}
	final := settle(rt, t, ti, path, body, key)
	if final.status != want {
		rt.Fatalf("POST %s under %s: final %d %s, want %d", path, key, final.status, final.body, want)
	}
	for _, a := range answers {
		if a.status == 409 && errCode(t, a.body) == "idempotency_key_in_use" {
			continue
		}
		if a.status != final.status || !bytes.Equal(a.body, final.body) {
			rt.Fatalf("POST %s under %s: an answer %d %s differs from the stored %d %s", path, key, a.status, a.body, final.status, final.body)
		}
	}
	return final.body
}

// settle retries until the key's request is no longer in progress and
// returns its stored answer.
func settle(rt *rapid.T, t *testing.T, ti *apptest.TestInstance, path, body, key string) answer {
	deadline := time.Now().Add(30 * time.Second)
	for {
		a, err := post(t, ti, path, body, key, 0)
		if err != nil {
			rt.Fatal(err)
		}
		if a.status != 409 || errCode(t, a.body) != "idempotency_key_in_use" {
			return a
		}
		if time.Now().After(deadline) {
			rt.Fatalf("POST %s under %s still in progress after 30s", path, key)
		}
		time.Sleep(20 * time.Millisecond) // polling the key's state
	}
}

// settleRefunds waits until no refund of the payment is pending (a lost
// answer leaves one for the resolver).
func settleRefunds(rt *rapid.T, t *testing.T, ti *apptest.TestInstance, id string) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		pending := false
		for _, rf := range getPayment(t, ti, id).Refunds {
			pending = pending || rf.Status == payrouter.RefundPending
		}
		if !pending {
			return
		}
		if time.Now().After(deadline) {
			rt.Fatalf("payment %s still has a pending refund after 30s", id)
		}
		time.Sleep(20 * time.Millisecond) // polling the resolver's progress
	}
}

// checkOnePayment: the reference has exactly one payment and Stripe one
// charge for it.
func checkOnePayment(rt *rapid.T, t *testing.T, ti *apptest.TestInstance, ref string, p payrouter.Payment) {
	_, b := ti.Do(t, "GET", "/v1/payments?reference="+url.QueryEscape(ref), nil)
	var list struct {
		Data []payrouter.Payment `json:"data"`
	}
	_ = json.Unmarshal(b, &list)
	if len(list.Data) != 1 || list.Data[0].ID != p.ID {
		rt.Fatalf("reference %s has %d payments, want only %s", ref, len(list.Data), p.ID)
	}
	count := 0
	for _, e := range ledger(t, ti, "stripe") {
		if e.ID == p.ProviderPaymentID {
			count++
		}
	}
	if count != 1 {
		rt.Fatalf("stripe holds %d charges for %s, want 1", count, ref)
	}
}
