package app_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/app/apptest"
	"github.com/payrouter/payrouter/internal/config"
	"github.com/payrouter/payrouter/internal/sim/stripesim"
	"github.com/payrouter/payrouter/providers"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A provider refusing payrouter's own key (Stripe's real 401 answer, from
// the Stripe simulator holding another key) is loud: the attempt says
// credentials_refused, the payment fails over (nothing was charged), the
// breaker counts it, one log line names the provider, the metric counts
// every refusal and /readyz names the provider. With the right key none of
// this appears.
func TestWrongProviderCredentialsAreVisible(t *testing.T) {
	stripeAPI := httptest.NewServer(stripesim.New(stripesim.Options{SecretKey: "sk_test_the_real_one"}))
	defer stripeAPI.Close()
	for _, tt := range []struct {
		name  string
		key   string
		wrong bool
	}{
		{"wrong key", "sk_test_rotated_away", true},
		{"right key", "sk_test_the_real_one", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logs := &syncBuffer{}
			ti := apptest.StartSandboxLog(t, filepath.Join(t.TempDir(), "p.db"), func(c *config.Config) {
				pc := c.Providers["stripe"]
				pc.BaseURL, pc.SecretKey = stripeAPI.URL, tt.key
				pc.Breaker.MinRequests = 2
				c.Providers["stripe"] = pc
			}, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
			for i := range 3 {
				st, b := ti.Do(t, "POST", "/v1/payments", map[string]any{"amount": 150000, "currency": "IDR", "method": "card",
					"reference":             "cred-" + string(rune('a'+i)),
					"payment_method_tokens": map[string]string{"stripe": "pm_card_visa", "xendit": "tok_sandbox_success"}})
				var p payrouter.Payment
				if err := json.Unmarshal(b, &p); err != nil || st != 201 {
					t.Fatalf("create %d: %d %s", i, st, b)
				}
				want := "stripe"
				if tt.wrong {
					want = "xendit" // failed over: nothing was charged at Stripe
				}
				if p.Status != payrouter.StatusSucceeded || p.Provider != want {
					t.Fatalf("payment %d: %s via %s, want succeeded via %s (attempts %+v)", i, p.Status, p.Provider, want, p.Attempts)
				}
				if tt.wrong && i < 2 && (p.Attempts[0].ErrorClass != string(providers.Unavailable) || !strings.HasPrefix(p.Attempts[0].ErrorCode, providers.CodeCredentialsRefused)) {
					t.Errorf("payment %d: stripe attempt %+v, want unavailable/credentials_refused", i, p.Attempts[0])
				}
			}
			_, metrics := get(t, ti.URL+"/metrics")
			_, ready := get(t, ti.URL+"/readyz")
			refusedLines := strings.Count(logs.String(), "provider refuses payrouter's credentials")
			if !tt.wrong {
				if strings.Contains(metrics, `payrouter_provider_auth_failures_total{provider="stripe"}`) || strings.Contains(ready, "credentials_refused") || refusedLines != 0 {
					t.Fatalf("right key reported as refused: readyz %s, %d log lines", ready, refusedLines)
				}
				return
			}
			// Two refusals opened the breaker (min_requests 2): the third
			// payment skipped Stripe without a call.
			if !strings.Contains(metrics, `payrouter_provider_auth_failures_total{provider="stripe"} 2`) {
				t.Errorf("metrics lack 2 stripe auth failures:\n%s", grepLines(metrics, "auth_failures"))
			}
			if refusedLines != 1 || !strings.Contains(logs.String(), "provider=stripe") {
				t.Errorf("want one log line naming stripe, got %d:\n%s", refusedLines, logs.String())
			}
			if strings.Contains(logs.String(), "sk_test_rotated_away") {
				t.Error("the key reached the log")
			}
			st, ready := get(t, ti.URL+"/readyz")
			var rd struct {
				Ready   bool                                   `json:"ready"`
				Refused map[string]map[string]any              `json:"credentials_refused"`
				Brk     map[string]map[payrouter.Method]string `json:"breakers"`
			}
			if err := json.Unmarshal([]byte(ready), &rd); err != nil {
				t.Fatal(err)
			}
			if st != 200 || !rd.Ready || rd.Refused["stripe"] == nil || rd.Refused["stripe"]["http_status"] != float64(401) {
				t.Errorf("readyz = %d %s; want ready (other providers work) naming stripe with HTTP 401", st, ready)
			}
			if rd.Brk["stripe"][payrouter.MethodCard] != "open" {
				t.Errorf("stripe card breaker = %q, want open (refusals count as provider faults)", rd.Brk["stripe"][payrouter.MethodCard])
			}
		})
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
