package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/app/apptest"
	"github.com/payrouter/payrouter/internal/config"
	"github.com/payrouter/payrouter/internal/sim"
)

func decodePayment(t *testing.T, b []byte) payrouter.Payment {
	t.Helper()
	var p payrouter.Payment
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("decode payment: %v: %s", err, b)
	}
	return p
}

func ledger(t *testing.T, ti *apptest.TestInstance, provider string) []sim.LedgerEntry {
	t.Helper()
	resp, err := http.Get(ti.URL + "/sim/" + provider + "/_ledger")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l []sim.LedgerEntry
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		t.Fatal(err)
	}
	return l
}

func card(ref string, amount int64, token string) string {
	return fmt.Sprintf(`{"amount":%d,"currency":"USD","method":"card","reference":%q,"payment_method_tokens":{"stripe":%q}}`, amount, ref, token)
}

// The walk-through of the README: one card payment through Stripe.
func TestCardPaymentEndToEnd(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "p.db")
	ti := apptest.StartSandbox(t, dsn, nil)

	st, body := ti.Do(t, "POST", "/v1/payments", card("o-1", 1999, "pm_card_visa"), "Idempotency-Key", "k1")
	if st != 201 {
		t.Fatalf("create: got %d %s", st, body)
	}
	p := decodePayment(t, body)
	if p.Status != payrouter.StatusSucceeded || p.Provider != "stripe" || len(p.Attempts) != 1 || p.AmountCaptured != 1999 {
		t.Fatalf("got status=%s provider=%s attempts=%d captured=%d", p.Status, p.Provider, len(p.Attempts), p.AmountCaptured)
	}
	if p.Route.Rule != "cards" || p.Route.RulesVersion == "" {
		t.Errorf("route = %+v, want rule cards with a version", p.Route)
	}

	st2, body2 := ti.Do(t, "POST", "/v1/payments", card("o-1", 1999, "pm_card_visa"), "Idempotency-Key", "k1")
	if st2 != 201 || string(body2) != string(body) {
		t.Fatalf("replay: got %d, identical=%v", st2, string(body2) == string(body))
	}
	st3, body3 := ti.Do(t, "POST", "/v1/payments", card("o-1", 2000, "pm_card_visa"), "Idempotency-Key", "k1")
	if st3 != 422 || !strings.Contains(string(body3), "idempotency_conflict") {
		t.Fatalf("different body: got %d %s, want 422 idempotency_conflict", st3, body3)
	}
	st4, body4 := ti.Do(t, "POST", "/v1/payments", card("o-1", 1999, "pm_card_visa"), "Idempotency-Key", "k2")
	if st4 != 409 || !strings.Contains(string(body4), "duplicate_reference") {
		t.Fatalf("same reference, new key: got %d %s, want 409 duplicate_reference", st4, body4)
	}

	st5, body5 := ti.Do(t, "POST", "/v1/payments", card("o-2", 500, "pm_card_chargeDeclined"), "Idempotency-Key", "k3")
	d := decodePayment(t, body5)
	if st5 != 201 || d.Status != payrouter.StatusFailed || d.Failure == nil || d.Failure.Code == "" {
		t.Fatalf("decline: got %d status=%s failure=%+v", st5, d.Status, d.Failure)
	}
	if len(d.Attempts) != 1 {
		t.Errorf("a decline must not fail over: %d attempts", len(d.Attempts))
	}

	l := ledger(t, ti, "stripe")
	charged := 0
	for _, e := range l {
		if e.Status == "succeeded" {
			charged++
		}
	}
	if charged != 1 {
		t.Fatalf("stripe ledger has %d succeeded charges, want 1: %+v", charged, l)
	}

	// Restart on the same file: every payment is still there.
	ti.Stop()
	ti2 := apptest.StartSandbox(t, dsn, nil)
	for _, id := range []string{p.ID, d.ID} {
		st, b := ti2.Do(t, "GET", "/v1/payments/"+id, nil)
		if st != 200 || decodePayment(t, b).ID != id {
			t.Fatalf("after restart GET %s: %d %s", id, st, b)
		}
	}
	st6, body6 := ti2.Do(t, "POST", "/v1/payments", card("o-1", 1999, "pm_card_visa"), "Idempotency-Key", "k1")
	if st6 != 201 || string(body6) != string(body) {
		t.Fatalf("replay after restart: got %d identical=%v", st6, string(body6) == string(body))
	}
}

func TestConcurrentSameKeyChargesOnce(t *testing.T) {
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), nil)
	var wg sync.WaitGroup
	statuses := make([]int, 50)
	bodies := make([]string, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, b := ti.Do(t, "POST", "/v1/payments", card("c-1", 1000, "pm_card_visa"), "Idempotency-Key", "same")
			statuses[i], bodies[i] = st, string(b)
		}()
	}
	wg.Wait()
	var first string
	for i, st := range statuses {
		switch st {
		case 201:
			if first == "" {
				first = bodies[i]
			} else if bodies[i] != first {
				t.Errorf("two different 201 bodies for one key")
			}
		case 409: // still in progress: the merchant retries
		default:
			t.Errorf("request %d: status %d %s", i, st, bodies[i])
		}
	}
	if n := len(ledger(t, ti, "stripe")); n != 1 {
		t.Fatalf("stripe ledger has %d charges, want exactly 1", n)
	}
}

func TestMerchantIsolationAndAuth(t *testing.T) {
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), func(c *config.Config) {
		c.Merchants = append(c.Merchants, config.Merchant{ID: "other", APIKeys: []config.APIKey{config.PlainKey("sk_other")}, WebhookSecret: "x"})
	})
	_, body := ti.Do(t, "POST", "/v1/payments", card("iso-1", 1000, "pm_card_visa"))
	p := decodePayment(t, body)
	if st, _ := ti.Do(t, "GET", "/v1/payments/"+p.ID, nil, "Authorization", "Bearer sk_other"); st != 404 {
		t.Errorf("other merchant GET: got %d, want 404", st)
	}
	if st, b := ti.Do(t, "GET", "/v1/payments?reference=iso-1", nil, "Authorization", "Bearer sk_other"); st != 200 || strings.Contains(string(b), p.ID) {
		t.Errorf("other merchant list: got %d %s", st, b)
	}
	if st, _ := ti.Do(t, "POST", "/v1/payments/"+p.ID+"/refunds", `{}`, "Authorization", "Bearer sk_other"); st != 404 {
		t.Errorf("other merchant refund: got %d, want 404", st)
	}
	for _, auth := range []string{"", "Bearer nope", "Basic x"} {
		if st, _ := ti.Do(t, "GET", "/v1/payments/"+p.ID, nil, "Authorization", auth); st != 401 {
			t.Errorf("auth %q: got %d, want 401", auth, st)
		}
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), nil)
	cases := []struct {
		name, body, param, code string
	}{
		{"malformed", `{"amount":`, "", "json_invalid"},
		{"float amount", `{"amount":19.99,"currency":"USD","method":"card","reference":"b","payment_method_tokens":{"stripe":"pm_card_visa"}}`, "amount", ""},
		{"string amount", `{"amount":"1999","currency":"USD","method":"card","reference":"b","payment_method_tokens":{"stripe":"pm_card_visa"}}`, "amount", ""},
		{"negative", `{"amount":-5,"currency":"USD","method":"card","reference":"b","payment_method_tokens":{"stripe":"pm_card_visa"}}`, "amount", ""},
		{"zero", `{"amount":0,"currency":"USD","method":"card","reference":"b","payment_method_tokens":{"stripe":"pm_card_visa"}}`, "amount", ""},
		{"overflow", `{"amount":99999999999999999999,"currency":"USD","method":"card","reference":"b","payment_method_tokens":{"stripe":"pm_card_visa"}}`, "amount", ""},
		{"exponent", `{"amount":1e3,"currency":"USD","method":"card","reference":"b","payment_method_tokens":{"stripe":"pm_card_visa"}}`, "amount", ""},
		{"unknown currency", `{"amount":100,"currency":"XYZ","method":"card","reference":"b","payment_method_tokens":{"stripe":"pm_card_visa"}}`, "currency", ""},
		{"unknown method", `{"amount":100,"currency":"USD","method":"cash","reference":"b"}`, "method", ""},
		{"wrong type", `{"amount":100,"currency":"USD","method":"card","reference":"b","metadata":{"a":1}}`, "metadata.a", ""},
		{"unknown field", `{"amount":100,"currency":"USD","method":"card","reference":"b","cardnumber":"x"}`, "cardnumber", ""},
		{"raw card", `{"amount":100,"currency":"USD","method":"card","reference":"b","payment_method_tokens":{"stripe":"4242 4242 4242 4242"}}`, "payment_method_tokens.stripe", "raw_card_data"},
		{"raw card in metadata", `{"amount":100,"currency":"USD","method":"card","reference":"b","metadata":{"note":"4111-1111-1111-1111"},"payment_method_tokens":{"stripe":"pm_card_visa"}}`, "metadata.note", "raw_card_data"},
		{"missing reference", `{"amount":100,"currency":"USD","method":"card","payment_method_tokens":{"stripe":"pm_card_visa"}}`, "reference", ""},
		{"card without token", `{"amount":100,"currency":"USD","method":"card","reference":"b"}`, "payment_method_tokens", ""},
		{"trailing data", `{"amount":100,"currency":"USD","method":"card","reference":"b","payment_method_tokens":{"stripe":"pm_card_visa"}} {}`, "", "json_invalid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, b := ti.Do(t, "POST", "/v1/payments", c.body)
			var e struct {
				Error payrouter.Error `json:"error"`
			}
			_ = json.Unmarshal(b, &e)
			if st != 400 || e.Error.Type != payrouter.ErrInvalidRequest {
				t.Fatalf("got %d %s, want 400 invalid_request", st, b)
			}
			if c.param != "" && e.Error.Param != c.param {
				t.Errorf("param = %q, want %q", e.Error.Param, c.param)
			}
			if c.code != "" && e.Error.Code != c.code {
				t.Errorf("code = %q, want %q", e.Error.Code, c.code)
			}
			if strings.Contains(string(b), "4242 4242") || strings.Contains(string(b), "4111-1111") {
				t.Errorf("the error echoes card data: %s", b)
			}
		})
	}
	if l := ledger(t, ti, "stripe"); len(l) != 0 {
		t.Errorf("bad input reached the provider: %+v", l)
	}
	_, b := ti.Do(t, "GET", "/v1/payments", nil)
	if !strings.Contains(string(b), `"data":[]`) {
		t.Errorf("bad input stored payments: %s", b)
	}
}

func TestCaptureCancelRefund(t *testing.T) {
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), nil)
	create := func(ref string, capture string) payrouter.Payment {
		t.Helper()
		body := fmt.Sprintf(`{"amount":10000,"currency":"USD","method":"card","reference":%q,"capture":%q,"payment_method_tokens":{"stripe":"pm_card_visa"}}`, ref, capture)
		st, b := ti.Do(t, "POST", "/v1/payments", body)
		if st != 201 {
			t.Fatalf("create: %d %s", st, b)
		}
		return decodePayment(t, b)
	}
	p := create("m-1", "manual")
	if p.Status != payrouter.StatusAuthorized {
		t.Fatalf("manual capture: status %s, want authorized", p.Status)
	}
	if st, b := ti.Do(t, "POST", "/v1/payments/"+p.ID+"/refunds", `{"amount":100}`); st != 409 {
		t.Errorf("refund before capture: got %d %s, want 409 invalid_state", st, b)
	}
	if st, b := ti.Do(t, "POST", "/v1/payments/"+p.ID+"/capture", `{"amount":20000}`); st != 400 {
		t.Errorf("capture above authorized: got %d %s", st, b)
	}
	st, b := ti.Do(t, "POST", "/v1/payments/"+p.ID+"/capture", `{"amount":8000}`)
	c := decodePayment(t, b)
	if st != 200 || c.Status != payrouter.StatusSucceeded || c.AmountCaptured != 8000 {
		t.Fatalf("partial capture: %d status=%s captured=%d", st, c.Status, c.AmountCaptured)
	}
	if st, _ := ti.Do(t, "POST", "/v1/payments/"+p.ID+"/cancel", nil); st != 409 {
		t.Errorf("cancel after capture: got %d, want 409", st)
	}
	if st, b := ti.Do(t, "POST", "/v1/payments/"+p.ID+"/refunds", `{"amount":9000}`); st != 400 {
		t.Errorf("refund above captured: got %d %s, want 400", st, b)
	}
	st, b = ti.Do(t, "POST", "/v1/payments/"+p.ID+"/refunds", `{"amount":3000,"reason":"requested_by_customer"}`)
	var rr struct {
		Refund  payrouter.Refund  `json:"refund"`
		Payment payrouter.Payment `json:"payment"`
	}
	_ = json.Unmarshal(b, &rr)
	if st != 201 || rr.Refund.Status != payrouter.RefundSucceeded || rr.Payment.Status != payrouter.StatusPartiallyRefunded || rr.Payment.AmountRefunded != 3000 {
		t.Fatalf("partial refund: %d %s", st, b)
	}
	st, b = ti.Do(t, "POST", "/v1/payments/"+p.ID+"/refunds", `{}`)
	_ = json.Unmarshal(b, &rr)
	if st != 201 || rr.Payment.Status != payrouter.StatusRefunded || rr.Payment.AmountRefunded != 8000 {
		t.Fatalf("full refund of the rest: %d %s", st, b)
	}

	q := create("m-2", "manual")
	st, b = ti.Do(t, "POST", "/v1/payments/"+q.ID+"/cancel", nil)
	if cq := decodePayment(t, b); st != 200 || cq.Status != payrouter.StatusCanceled {
		t.Fatalf("cancel: %d %s", st, b)
	}

	// Exactly one terminal event per payment.
	_, b = ti.Do(t, "GET", "/v1/events?limit=1000", nil)
	var evs struct {
		Data []payrouter.Event `json:"data"`
	}
	_ = json.Unmarshal(b, &evs)
	terminal := map[string]int{}
	for _, e := range evs.Data {
		if e.Type == payrouter.EventSuccess || e.Type == payrouter.EventFailed {
			terminal[e.PaymentID]++
		}
	}
	if terminal[p.ID] != 1 || terminal[q.ID] != 1 {
		t.Errorf("terminal events: %v, want one each for %s and %s", terminal, p.ID, q.ID)
	}
}

func TestListPagination(t *testing.T) {
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), nil)
	for i := range 3 {
		if st, b := ti.Do(t, "POST", "/v1/payments", card(fmt.Sprintf("pg-%d", i), 100, "pm_card_visa")); st != 201 {
			t.Fatalf("create: %d %s", st, b)
		}
	}
	var page struct {
		Data    []payrouter.Payment `json:"data"`
		HasMore bool                `json:"has_more"`
	}
	_, b := ti.Do(t, "GET", "/v1/payments?limit=2", nil)
	if err := json.Unmarshal(b, &page); err != nil || len(page.Data) != 2 || !page.HasMore {
		t.Fatalf("first page: %d items, has_more=%v (%v)", len(page.Data), page.HasMore, err)
	}
	_, b = ti.Do(t, "GET", "/v1/payments?limit=2&starting_after="+page.Data[1].ID, nil)
	if err := json.Unmarshal(b, &page); err != nil || len(page.Data) != 1 || page.HasMore || page.Data[0].Reference != "pg-0" {
		t.Fatalf("second page: %+v has_more=%v", page.Data, page.HasMore)
	}
	// Back from the last page: the payments just newer than the cursor, newest first.
	_, b = ti.Do(t, "GET", "/v1/payments?limit=1&ending_before="+page.Data[0].ID, nil)
	if err := json.Unmarshal(b, &page); err != nil || len(page.Data) != 1 || !page.HasMore || page.Data[0].Reference != "pg-1" {
		t.Fatalf("ending_before pg-0: %+v has_more=%v", page.Data, page.HasMore)
	}
	_, b = ti.Do(t, "GET", "/v1/payments?limit=5&ending_before="+page.Data[0].ID, nil)
	if err := json.Unmarshal(b, &page); err != nil || len(page.Data) != 1 || page.HasMore || page.Data[0].Reference != "pg-2" {
		t.Fatalf("ending_before pg-1: %+v has_more=%v", page.Data, page.HasMore)
	}
	if st, _ := ti.Do(t, "GET", "/v1/payments?starting_after=a&ending_before=b", nil); st != 400 {
		t.Errorf("both cursors: got %d, want 400", st)
	}

	// Events: starting_after (after is its alias) and ending_before.
	var evs struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
		HasMore bool `json:"has_more"`
	}
	ids := func(path string) ([]string, bool) {
		t.Helper()
		st, b := ti.Do(t, "GET", path, nil)
		if st != 200 {
			t.Fatalf("%s: %d %s", path, st, b)
		}
		evs.Data = nil
		if err := json.Unmarshal(b, &evs); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range evs.Data {
			out = append(out, e.ID)
		}
		return out, evs.HasMore
	}
	all, _ := ids("/v1/events")
	if len(all) < 3 {
		t.Fatalf("events: %v", all)
	}
	got, more := ids("/v1/events?limit=1&starting_after=" + all[0])
	got2, _ := ids("/v1/events?limit=1&after=" + all[0])
	if len(got) != 1 || got[0] != all[1] || !more || len(got2) != 1 || got2[0] != all[1] {
		t.Errorf("starting_after/after %s: %v %v, want [%s]", all[0], got, got2, all[1])
	}
	last := all[len(all)-1]
	got, more = ids("/v1/events?limit=2&ending_before=" + last)
	if want := all[len(all)-3 : len(all)-1]; strings.Join(got, ",") != strings.Join(want, ",") || more != (len(all) > 3) {
		t.Errorf("ending_before %s: %v more=%v, want %v", last, got, more, want)
	}

	if st, _ := ti.Do(t, "GET", "/v1/payments?limit=101", nil); st != 400 {
		t.Errorf("limit 101: got %d, want 400", st)
	}
	if st, _ := ti.Do(t, "GET", "/v1/payments?status=bogus", nil); st != 400 {
		t.Errorf("bad status filter: got %d, want 400", st)
	}
}
