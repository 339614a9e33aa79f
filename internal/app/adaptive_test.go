package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/app"
	"github.com/payrouter/payrouter/internal/app/apptest"
	"github.com/payrouter/payrouter/internal/config"
	"github.com/payrouter/payrouter/internal/sim"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// adaptiveCards makes the shipped cards rule adaptive over stripe and
// xendit (midtrans gets no token in these payments).
func adaptiveCards(c *config.Config) {
	const shipped = "    strategy: priority\n    providers: [stripe, xendit, midtrans]"
	if !strings.Contains(string(c.Data), shipped) {
		panic("config.yaml's cards rule changed: update adaptiveCards")
	}
	c.Data = []byte(strings.Replace(string(c.Data), shipped,
		"    strategy: adaptive\n    adaptive: {window: 5m, min_samples: 30, explore: 0.05}\n    providers: [stripe, xendit, midtrans]", 1))
}

type cardRun struct {
	first    map[string]int // provider of the first attempt
	approved int
	n        int
	lastWhy  string
}

func payCards(t *testing.T, ti *apptest.TestInstance, prefix string, n int) cardRun {
	t.Helper()
	run := cardRun{first: map[string]int{}}
	for i := 0; i < n; i++ {
		ref := fmt.Sprintf("%s-%d", prefix, i)
		body := map[string]any{"amount": 150000, "currency": "IDR", "method": "card", "reference": ref,
			"payment_method_tokens": map[string]string{"stripe": "tok_sandbox_success", "xendit": "tok_sandbox_success"}}
		st, b := ti.Do(t, "POST", "/v1/payments", body, "Idempotency-Key", ref)
		if st != 201 {
			t.Fatalf("create %s: %d %s", ref, st, b)
		}
		p := decodePayment(t, b)
		if len(p.Attempts) != 1 {
			t.Fatalf("%s: %d attempts, want 1 (a decline never fails over): %s", ref, len(p.Attempts), p.Route.Reason)
		}
		run.first[p.Attempts[0].Provider]++
		if p.Status == payrouter.StatusSucceeded {
			run.approved++
		}
		run.n++
		run.lastWhy = p.Route.Reason
	}
	return run
}

func (r cardRun) share(p string) float64 { return float64(r.first[p]) / float64(r.n) }

// TestAdaptiveRoutingFollowsApproval: stripe (first by priority) declines
// half its charges; adaptive routing moves first attempts to xendit once it
// has min_samples, beats static priority on approval, and gives stripe its
// share back once the fault is gone and the old samples leave the window.
func TestAdaptiveRoutingFollowsApproval(t *testing.T) {
	clk := &testClock{t: time.Now()}
	ti := apptest.StartSandboxWith(t, filepath.Join(t.TempDir(), "p.db"), adaptiveCards, app.Options{Now: clk.now})
	static := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "s.db"), nil)
	decline := sim.Faults{Mode: "decline", ErrorRate: 0.5}
	setFaults(t, ti, "stripe", decline)
	setFaults(t, static, "stripe", decline)

	learn := payCards(t, ti, "learn", 150)
	steady := payCards(t, ti, "steady", 150)
	base := payCards(t, static, "static", 300)
	t.Logf("learning: first %v, approved %d/%d; steady: first %v, approved %d/%d; static priority: approved %d/%d",
		learn.first, learn.approved, learn.n, steady.first, steady.approved, steady.n, base.approved, base.n)
	t.Logf("reason: %s", steady.lastWhy)
	if s := steady.share("stripe"); s >= 0.20 {
		t.Errorf("after min_samples stripe takes %.0f%% of first attempts, want under 20%%", 100*s)
	}
	adaptive := float64(learn.approved+steady.approved) / float64(learn.n+steady.n)
	priority := float64(base.approved) / float64(base.n)
	// Static priority sends everything to stripe (about 50% approved); the
	// margin leaves room for the learning phase and the explore share.
	if adaptive < priority+0.25 {
		t.Errorf("approval adaptive %.1f%% vs static priority %.1f%%: want a margin of at least 25 points", 100*adaptive, 100*priority)
	}
	if !strings.Contains(steady.lastWhy, "adaptive by approval (5m0s): ") || !strings.Contains(steady.lastWhy, "% of ") {
		t.Errorf("route.reason does not give the figures: %s", steady.lastWhy)
	}

	// The explain endpoint shows the live scores behind the order.
	st, ex := ti.Do(t, "POST", "/v1/routing/explain", `{"amount":150000,"currency":"IDR","method":"card","reference":"x","payment_method_tokens":{"stripe":"tok_sandbox_success","xendit":"tok_sandbox_success"}}`)
	if st != 200 || !strings.Contains(string(ex), `"scores":[{"provider":`) || !strings.Contains(string(ex), `"attempts":`) {
		t.Errorf("explain: %d %s, want the live scores", st, ex)
	}

	// The ops API (and the console's Adaptive page) show the same live
	// scores, per rule.
	req, _ := http.NewRequest("GET", ti.URL+"/ops/v1/adaptive", nil)
	req.Header.Set("Authorization", "Bearer ok_sandbox_viewer")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var view struct {
		Data []struct {
			Rule   string `json:"rule"`
			Window string `json:"window"`
			Scores []struct {
				Provider string `json:"provider"`
				Attempts int64  `json:"attempts"`
				RateBP   int64  `json:"rate_bp"`
			} `json:"scores"`
		} `json:"data"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&view)
	resp.Body.Close()
	seen := map[string]int64{}
	for _, r := range view.Data {
		if r.Rule == "cards" && r.Window == "5m0s" {
			for _, sc := range r.Scores {
				seen[sc.Provider] = sc.Attempts
			}
		}
	}
	if resp.StatusCode != 200 || seen["xendit"] == 0 || seen["stripe"] == 0 {
		t.Errorf("GET /ops/v1/adaptive: %d %+v, want the cards rule with stripe's and xendit's counts", resp.StatusCode, view)
	}

	// The fault ends; once the declines are older than the window, stripe
	// (first by priority on equal rates) gets its place back.
	setFaults(t, ti, "stripe", sim.Faults{Mode: "none"})
	clk.add(5*time.Minute + 30*time.Second)
	// Both learn again (Thompson sampling) until each has min_samples;
	// then equal rates rank by priority and stripe is first again.
	relearn := payCards(t, ti, "relearn", 200)
	back := payCards(t, ti, "back", 100)
	t.Logf("relearning: first %v; recovered: first %v, approved %d/%d", relearn.first, back.first, back.approved, back.n)
	if s := back.share("stripe"); s < 0.8 {
		t.Errorf("after the fault ended and both relearned, stripe takes %.0f%% of first attempts, want it back above 80%%", 100*s)
	}
	if relearn.approved+back.approved != relearn.n+back.n {
		t.Errorf("approved %d of %d with no fault", relearn.approved+back.approved, relearn.n+back.n)
	}
}
