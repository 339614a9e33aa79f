package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/app/apptest"
)

// waitStatus polls a payment until it reaches want (webhooks are applied
// as they arrive; the poll only bounds the wait).
func waitStatus(t *testing.T, ti *apptest.TestInstance, id string, want payrouter.Status) payrouter.Payment {
	t.Helper()
	var p payrouter.Payment
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		_, b := ti.Do(t, "GET", "/v1/payments/"+id, nil)
		p = decodePayment(t, b)
		if p.Status == want {
			return p
		}
	}
	t.Fatalf("payment %s: status %s, want %s (attempts %+v)", id, p.Status, want, p.Attempts)
	return p
}

func simPay(t *testing.T, ti *apptest.TestInstance, provider, id, outcome string) {
	t.Helper()
	resp, err := http.Post(ti.URL+"/sim/"+provider+"/_pay/"+id, "application/json", strings.NewReader(`{"outcome":"`+outcome+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("_pay %s/%s: %d", provider, id, resp.StatusCode)
	}
}

// Every customer-action method, pinned to every provider that declares it
// in IDR: requires_action with a usable next action, then the customer acts
// at the simulator, whose signed webhook ends the payment.
func TestEveryProviderMethodInSandbox(t *testing.T) {
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), nil)
	type pair struct{ provider, method string }
	var pairs []pair
	for name, p := range ti.Providers {
		for m, curs := range p.Capabilities().Methods {
			for _, c := range curs {
				if c == "IDR" {
					pairs = append(pairs, pair{name, string(m)})
				}
			}
		}
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].provider+pairs[i].method < pairs[j].provider+pairs[j].method })
	if len(pairs) < 12 {
		t.Fatalf("only %d provider×method pairs in IDR: %v", len(pairs), pairs)
	}
	outcomes := map[string]payrouter.Status{"success": payrouter.StatusSucceeded, "failure": payrouter.StatusFailed, "expire": payrouter.StatusExpired}
	n := 0
	for _, pr := range pairs {
		for outcome, want := range outcomes {
			if pr.provider == "dana" && outcome == "failure" {
				// DANA documents no failed status: an order the customer
				// does not pay is closed (05), which payrouter calls canceled.
				want = payrouter.StatusCanceled
			}
			t.Run(pr.provider+"/"+pr.method+"/"+outcome, func(t *testing.T) {
				n++
				body := map[string]any{"amount": 150000, "currency": "IDR", "method": pr.method, "provider": pr.provider,
					"reference": fmt.Sprintf("e2e-%d", n), "customer": map[string]string{"name": "Budi", "phone": "+6281234567890", "email": "budi@example.com"},
					"return_url": "https://merchant.example/return"}
				switch pr.method {
				case "card":
					body["payment_method_tokens"] = map[string]string{pr.provider: "tok_sandbox_3ds"}
				case "bank_transfer":
					body["bank"] = "bca"
				}
				st, b := ti.Do(t, "POST", "/v1/payments", body)
				if st != 201 {
					t.Fatalf("create: %d %s", st, b)
				}
				p := decodePayment(t, b)
				if p.Provider != pr.provider || len(p.Attempts) != 1 {
					t.Fatalf("pinned to %s, went to %q with %d attempts (%s)", pr.provider, p.Provider, len(p.Attempts), p.Route.Reason)
				}
				pushed := p.Status == payrouter.StatusProcessing && pr.method == "ovo" // push to the customer's phone
				if pushed {
					simPay(t, ti, pr.provider, p.ProviderPaymentID, outcome)
					waitStatus(t, ti, p.ID, want)
					return
				}
				if p.Status != payrouter.StatusRequiresAction || p.NextAction == nil {
					t.Fatalf("status %s next_action %+v, want requires_action with a next action (failure %+v)", p.Status, p.NextAction, p.Failure)
				}
				na := p.NextAction
				if na.URL == "" && na.QRString == "" && na.VANumber == "" {
					t.Fatalf("next_action has nothing to act on: %+v", na)
				}
				if na.URL != "" && strings.Contains(na.URL, "/sim/") {
					resp, err := http.Get(na.URL)
					if err != nil || resp.StatusCode != 200 {
						t.Fatalf("next_action.url %s not usable: %v %v", na.URL, err, resp)
					}
					resp.Body.Close()
				}
				simPay(t, ti, pr.provider, p.ProviderPaymentID, outcome)
				got := waitStatus(t, ti, p.ID, want)
				if (want == payrouter.StatusFailed || want == payrouter.StatusCanceled) && (got.Failure == nil || got.Failure.Code == "") {
					t.Errorf("failed payment without failure code")
				}
			})
		}
	}

	// Exactly one terminal event per payment, of the right type.
	_, b := ti.Do(t, "GET", "/v1/events?limit=1000", nil)
	var evs struct {
		Data []payrouter.Event `json:"data"`
	}
	if err := json.Unmarshal(b, &evs); err != nil {
		t.Fatal(err)
	}
	terminal := map[string]int{}
	for _, e := range evs.Data {
		if e.Type == payrouter.EventSuccess || e.Type == payrouter.EventFailed {
			terminal[e.PaymentID]++
		}
	}
	for id, c := range terminal {
		if c != 1 {
			t.Errorf("payment %s has %d terminal events", id, c)
		}
	}
	if len(terminal) != n {
		t.Errorf("%d payments with a terminal event, want %d", len(terminal), n)
	}
}

// Forged webhooks are refused per provider and change nothing.
func TestForgedWebhooksRefused(t *testing.T) {
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), nil)
	for _, provider := range []string{"stripe", "midtrans", "xendit", "gopay", "ovo", "dana"} {
		t.Run(provider, func(t *testing.T) {
			for name, hdr := range map[string][]string{
				"unsigned": nil,
				"garbage":  {"Stripe-Signature", "t=1,v1=00", "X-Callback-Token", "wrong", "X-Signature", "AAAA", "X-Timestamp", time.Now().Format(time.RFC3339)},
			} {
				body := `{"id":"evt_1","type":"payment_intent.succeeded","order_id":"x","transaction_status":"settlement","status_code":"200","gross_amount":"1.00","signature_key":"00","data":{"id":"x","status":"SUCCEEDED"},"originalPartnerReferenceNo":"x","latestTransactionStatus":"00"}`
				args := append([]string{"Authorization", ""}, hdr...)
				st, b := ti.Do(t, "POST", "/webhooks/"+provider, body, args...)
				if st != 401 {
					t.Errorf("%s: got %d %s, want 401", name, st, b)
				}
			}
		})
	}
	_, b := ti.Do(t, "GET", "/v1/events", nil)
	if !strings.Contains(string(b), `"data":[]`) {
		t.Errorf("forged webhooks produced events: %s", b)
	}
	_, m := ti.Do(t, "GET", "/metrics", nil)
	if !strings.Contains(string(m), `payrouter_webhooks_total{result="refused"} 12`) {
		t.Errorf("refused webhooks are not counted in /metrics")
	}
}
