package app_test

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/app/apptest"
	"github.com/payrouter/payrouter/internal/config"
)

// TestEveryRouteMatchesTheSpec calls each API route in its main outcomes;
// apptest's client validates every request and response against
// openapi.yaml, so an undocumented field, status or shape fails here.
func TestEveryRouteMatchesTheSpec(t *testing.T) {
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), func(c *config.Config) {
		c.Merchants = append(c.Merchants, config.Merchant{ID: "tiny", WebhookSecret: "x",
			APIKeys: []config.APIKey{config.PlainKey("sk_tiny")}, RateLimit: &config.RateLimit{RPS: 1, Burst: 1}})
	})
	want := func(st int, b []byte, code int, what string) {
		t.Helper()
		if st != code {
			t.Fatalf("%s: got %d %s, want %d", what, st, b, code)
		}
	}
	st, b := ti.Do(t, "POST", "/v1/payments", card("s-1", 1999, "pm_card_visa"), "Idempotency-Key", "s1")
	want(st, b, 201, "card")
	card1 := decodePayment(t, b)
	st, b = ti.Do(t, "POST", "/v1/payments", card("s-1", 1999, "pm_card_visa"), "Idempotency-Key", "s1")
	want(st, b, 201, "replay")
	st, b = ti.Do(t, "POST", "/v1/payments", card("s-1", 1, "pm_card_visa"), "Idempotency-Key", "s1")
	want(st, b, 422, "key reused")
	st, b = ti.Do(t, "POST", "/v1/payments", card("s-1", 1999, "pm_card_visa"))
	want(st, b, 409, "duplicate reference")
	st, b = ti.Do(t, "POST", "/v1/payments", card("s-2", 500, "pm_card_chargeDeclined"))
	want(st, b, 201, "decline")
	st, b = ti.Do(t, "POST", "/v1/payments", `{"amount":1.5}`)
	want(st, b, 400, "bad body")
	for _, body := range []string{
		`{"amount":150000,"currency":"IDR","method":"gopay","reference":"s-3"}`,
		`{"amount":150000,"currency":"IDR","method":"qris","reference":"s-4"}`,
		`{"amount":150000,"currency":"IDR","method":"bank_transfer","bank":"bca","reference":"s-5"}`,
		`{"amount":150000,"currency":"IDR","method":"ovo","reference":"s-6","customer":{"phone":"+628123456789"}}`,
		`{"amount":150000,"currency":"IDR","method":"dana","reference":"s-7","return_url":"https://shop.example/back"}`,
	} {
		st, b = ti.Do(t, "POST", "/v1/payments", body)
		want(st, b, 201, body)
		if p := decodePayment(t, b); p.NextAction == nil {
			t.Errorf("%s: no next_action: %s", body, b)
		}
	}
	st, b = ti.Do(t, "POST", "/v1/payments", `{"amount":100,"currency":"JPY","method":"gopay","reference":"s-8"}`)
	want(st, b, 422, "no route")

	st, b = ti.Do(t, "POST", "/v1/payments", `{"amount":5000,"currency":"USD","method":"card","reference":"s-9","capture":"manual","payment_method_tokens":{"stripe":"pm_card_visa"}}`)
	want(st, b, 201, "manual")
	manual := decodePayment(t, b)
	st, b = ti.Do(t, "POST", "/v1/payments/"+manual.ID+"/capture", `{"amount":3000}`)
	want(st, b, 200, "capture")
	st, b = ti.Do(t, "POST", "/v1/payments/"+manual.ID+"/capture", nil)
	want(st, b, 409, "capture twice")
	st, b = ti.Do(t, "POST", "/v1/payments/"+manual.ID+"/refunds", `{"amount":1000,"reason":"one item"}`)
	want(st, b, 201, "refund")
	st, b = ti.Do(t, "POST", "/v1/payments/"+card1.ID+"/cancel", nil)
	want(st, b, 409, "cancel captured")

	st, b = ti.Do(t, "GET", "/v1/payments/"+card1.ID, nil)
	want(st, b, 200, "get")
	st, b = ti.Do(t, "GET", "/v1/payments/pay_nope", nil)
	want(st, b, 404, "get missing")
	st, b = ti.Do(t, "GET", "/v1/payments?limit=2", nil)
	want(st, b, 200, "list")
	st, b = ti.Do(t, "GET", "/v1/payments?limit=2&starting_after="+card1.ID, nil)
	want(st, b, 200, "list page 2")
	st, b = ti.Do(t, "GET", "/v1/payments?status=nope", nil)
	want(st, b, 400, "list bad status")
	st, b = ti.Do(t, "GET", "/v1/payments", nil, "Authorization", "Bearer wrong")
	want(st, b, 401, "bad key")

	st, b = ti.Do(t, "GET", "/v1/events?limit=3", nil)
	want(st, b, 200, "events")
	var evs struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &evs); err != nil || len(evs.Data) == 0 {
		t.Fatalf("events: %v %s", err, b)
	}
	st, b = ti.Do(t, "GET", "/v1/events?after="+evs.Data[0].ID, nil)
	want(st, b, 200, "events after")
	st, b = ti.Do(t, "POST", "/v1/events/"+evs.Data[0].ID+"/redeliver", nil)
	if st != 202 && st != 409 {
		t.Fatalf("redeliver: %d %s", st, b)
	}

	st, b = ti.Do(t, "POST", "/v1/routing/explain", `{"amount":150000,"currency":"IDR","method":"gopay","reference":"x"}`)
	want(st, b, 200, "explain")
	if !strings.Contains(string(b), `"candidates"`) {
		t.Errorf("explain: %s", b)
	}
	st, b = ti.Do(t, "POST", "/v1/routing/explain", `{"amount":100,"currency":"JPY","method":"gopay","reference":"x"}`)
	want(st, b, 200, "explain without route")

	st, b = ti.Do(t, "GET", "/v1/payments", nil, "Authorization", "Bearer sk_tiny")
	want(st, b, 200, "tiny 1")
	st, b = ti.Do(t, "GET", "/v1/payments", nil, "Authorization", "Bearer sk_tiny")
	want(st, b, 429, "tiny over budget")

	st, b = ti.Do(t, "POST", "/webhooks/stripe", `{"id":"evt_1"}`, "Authorization", "")
	want(st, b, 401, "unsigned webhook")
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		st, b = ti.Do(t, "GET", path, nil, "Authorization", "")
		want(st, b, 200, path)
	}
	if n := ti.Spec.Checked.Load(); n < 30 {
		t.Errorf("the spec validated %d responses; the harness is not seeing the calls", n)
	}
}

// TestSpecExamplesMatchResponses creates the request examples of
// POST /v1/payments in sandbox and compares the answers with the response
// examples: the same keys, and the same values wherever a value does not
// depend on the run (ids, times and latencies do).
func TestSpecExamplesMatchResponses(t *testing.T) {
	var doc struct {
		Paths map[string]struct {
			Post struct {
				RequestBody struct {
					Content map[string]struct {
						Examples map[string]struct {
							Value map[string]any `yaml:"value"`
						} `yaml:"examples"`
					} `yaml:"content"`
				} `yaml:"requestBody"`
			} `yaml:"post"`
		} `yaml:"paths"`
		Components struct {
			Examples map[string]struct {
				Value map[string]any `yaml:"value"`
			} `yaml:"examples"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(payrouter.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	reqs := doc.Paths["/v1/payments"].Post.RequestBody.Content["application/json"].Examples
	pairs := map[string]string{"card": "CardPayment", "gopay": "GoPayPayment"}
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), nil)
	for req, resp := range pairs {
		t.Run(req, func(t *testing.T) {
			body, ok := reqs[req]
			example, ok2 := doc.Components.Examples[resp]
			if !ok || !ok2 {
				t.Fatalf("spec has no request example %q or response example %q", req, resp)
			}
			st, b := ti.Do(t, "POST", "/v1/payments", body.Value)
			if st != 201 {
				t.Fatalf("example request: %d %s", st, b)
			}
			var got map[string]any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			compareExample(t, "", jsonRoundTrip(t, example.Value), got)
		})
	}
}

// volatile are the fields whose values differ per run.
var volatile = map[string]bool{"id": true, "provider_payment_id": true, "created_at": true, "updated_at": true,
	"started_at": true, "expires_at": true, "latency_ms": true, "rules_version": true, "url": true, "reason": true}

func compareExample(t *testing.T, path string, want, got any) {
	t.Helper()
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			t.Errorf("%s: example has an object, response %v", path, got)
			return
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				t.Errorf("%s.%s: in the response, not in the example", path, k)
			}
		}
		for k, v := range w {
			gv, ok := g[k]
			if !ok {
				t.Errorf("%s.%s: in the example, not in the response", path, k)
				continue
			}
			compareExample(t, path+"."+k, v, gv)
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			t.Errorf("%s: example %v, response %v", path, w, got)
			return
		}
		for i := range w {
			compareExample(t, path+"["+strconv.Itoa(i)+"]", w[i], g[i])
		}
	default:
		name := path[strings.LastIndex(path, ".")+1:]
		if !volatile[name] && !reflect.DeepEqual(want, got) {
			t.Errorf("%s: example %v, response %v", path, want, got)
		}
	}
}

// jsonRoundTrip turns a YAML-decoded value into what encoding/json makes
// of it (numbers as float64), to compare with a decoded response.
func jsonRoundTrip(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
