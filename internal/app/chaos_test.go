package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/app/apptest"
	"github.com/payrouter/payrouter/internal/config"
	"github.com/payrouter/payrouter/internal/sim"
)

// Chaos tests: faults injected at the sandbox simulators, the promise
// checked against every simulator's ledger — a payment goes through
// elsewhere when a provider is down, and nobody is ever charged twice.

var cardProviders = []string{"stripe", "xendit", "midtrans"}

// cardsFirst rewrites the shipped cards rule so that first is tried first,
// then the other card providers in their usual order.
func cardsFirst(first string) func(*config.Config) {
	return func(c *config.Config) {
		order := []string{first}
		for _, p := range cardProviders {
			if p != first {
				order = append(order, p)
			}
		}
		const shipped = "providers: [stripe, xendit, midtrans]"
		if !strings.Contains(string(c.Data), shipped) {
			panic("config.yaml's cards rule changed: update cardsFirst")
		}
		c.Data = []byte(strings.Replace(string(c.Data), shipped, "providers: ["+strings.Join(order, ", ")+"]", 1))
	}
}

// fastResolver makes the resolver loop and its backoff short.
func fastResolver(c *config.Config) {
	c.Router.ResolveEvery = config.Duration(50 * time.Millisecond)
	c.Router.ResolveBackoff = config.Duration(50 * time.Millisecond)
}

func chain(fs ...func(*config.Config)) func(*config.Config) {
	return func(c *config.Config) {
		for _, f := range fs {
			f(c)
		}
	}
}

// payBody is a payment of method that can go to any provider: cards carry
// a token for every card provider, so they may fail over.
func payBody(ref, method string) map[string]any {
	b := map[string]any{"amount": 150000, "currency": "IDR", "method": method, "reference": ref,
		"customer":   map[string]string{"name": "Budi", "phone": "+6281234567890", "email": "budi@example.com"},
		"return_url": "https://merchant.example/return"}
	if method == "card" {
		toks := map[string]string{}
		for _, p := range cardProviders {
			toks[p] = "tok_sandbox_success"
		}
		b["payment_method_tokens"] = toks
	}
	return b
}

func pay(t *testing.T, ti *apptest.TestInstance, ref, method string) payrouter.Payment {
	t.Helper()
	st, b := ti.Do(t, "POST", "/v1/payments", payBody(ref, method), "Idempotency-Key", ref)
	if st != 201 {
		t.Fatalf("create %s: got %d %s, want 201", ref, st, b)
	}
	return decodePayment(t, b)
}

func setFaults(t *testing.T, ti *apptest.TestInstance, provider string, f sim.Faults) {
	t.Helper()
	s := ti.Sims[provider]
	if s == nil {
		t.Fatalf("no simulator %s", provider)
	}
	if err := s.SetFaults(f); err != nil {
		t.Fatal(err)
	}
}

// readyBreaker reads one breaker's state from /readyz.
func readyBreaker(t *testing.T, ti *apptest.TestInstance, provider, method string) string {
	t.Helper()
	resp, err := http.Get(ti.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Breakers map[string]map[string]string `json:"breakers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r.Breakers[provider][method]
}

var attemptSuffix = regexp.MustCompile(`_a[0-9]+$`)

// charged reports whether a ledger status means the customer's money was
// taken or held (captured, settled, authorised, or since refunded).
func charged(status string) bool {
	switch strings.ToLower(status) {
	case "succeeded", "capture", "settlement", "authorize", "requires_capture", "awaiting_capture",
		"refund", "partial_refund", "refunded", "partially_refunded":
		return true
	}
	return false
}

// payable reports whether a ledger entry still waits for the customer.
func payable(status string) bool {
	switch strings.ToLower(status) {
	case "pending", "requires_action", "requires_payment_method", "requires_confirmation":
		return true
	}
	return false
}

// ledgerCharge is one ledger entry with where it is.
type ledgerCharge struct {
	provider string
	entry    sim.LedgerEntry
}

// ledgersByPayment reads every simulator's ledger and groups the entries
// by payment id (the order reference minus its attempt suffix).
func ledgersByPayment(t *testing.T, ledgerOf func(provider string) []sim.LedgerEntry, providers []string) map[string][]ledgerCharge {
	t.Helper()
	out := map[string][]ledgerCharge{}
	for _, p := range providers {
		for _, e := range ledgerOf(p) {
			id := attemptSuffix.ReplaceAllString(e.Reference, "")
			out[id] = append(out[id], ledgerCharge{p, e})
		}
	}
	return out
}

// checkLedgers asserts the promise for every payment: at most one charge
// across all providers, exactly one (at its provider) when it succeeded,
// none when it failed, and no attempt left payable at a provider other
// than the payment's own. Every charge belongs to a payment we have.
func checkLedgers(t *testing.T, byPayment map[string][]ledgerCharge, payments map[string]*payrouter.Payment) (charges int) {
	t.Helper()
	for id, entries := range byPayment {
		p := payments[id]
		n := 0
		for _, c := range entries {
			if charged(c.entry.Status) {
				n++
				if p != nil && c.provider != p.Provider {
					t.Errorf("payment %s (%s via %s) charged at %s (%s)", id, p.Status, p.Provider, c.provider, c.entry.Status)
				}
			}
			if p != nil && payable(c.entry.Status) && (c.provider != p.Provider || c.entry.ID != p.ProviderPaymentID) {
				t.Errorf("payment %s (%s via %s): stray attempt still open at %s: %+v", id, p.Status, p.Provider, c.provider, c.entry)
			}
		}
		charges += n
		switch {
		case p == nil:
			if n > 0 {
				t.Errorf("%d charges for %s, a payment the store does not have", n, id)
			}
		case n > 1:
			t.Errorf("payment %s charged %d times: %+v; attempts %+v; reason %q", id, n, entries, p.Attempts, p.Route.Reason)
		case p.Status == payrouter.StatusSucceeded && n != 1:
			t.Errorf("payment %s succeeded with %d charges", id, n)
		case p.Status.Failed() && n != 0:
			t.Errorf("payment %s is %s but charged %d times: %+v", id, p.Status, n, entries)
		}
	}
	for id, p := range payments {
		if p.Status == payrouter.StatusSucceeded && len(byPayment[id]) == 0 {
			t.Errorf("payment %s succeeded with no ledger entry", id)
		}
	}
	return charges
}

func storedPayments(t *testing.T, ti *apptest.TestInstance, ids []string) map[string]*payrouter.Payment {
	t.Helper()
	out := map[string]*payrouter.Payment{}
	for _, id := range ids {
		p, err := ti.Store.GetPayment(context.Background(), "", id)
		if err != nil {
			t.Fatalf("payment %s: %v", id, err)
		}
		out[id] = p
	}
	return out
}

// scanPayments reads the payments ids from the store in one scan.
func scanPayments(t *testing.T, ti *apptest.TestInstance, ids []string) map[string]*payrouter.Payment {
	t.Helper()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	out := map[string]*payrouter.Payment{}
	err := ti.Store.ScanPayments(context.Background(), time.Time{}, func(p *payrouter.Payment) error {
		if want[p.ID] {
			out[p.ID] = p
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(want) {
		t.Fatalf("store has %d of the %d payments created", len(out), len(want))
	}
	return out
}

type downCase struct{ faulty, method, next string }

// Every provider, each with a method another provider also takes.
var downCases = []downCase{
	{"stripe", "card", "xendit"}, {"xendit", "card", "stripe"}, {"midtrans", "card", "stripe"},
	{"midtrans", "qris", "xendit"}, {"gopay", "gopay", "midtrans"}, {"ovo", "ovo", "xendit"}, {"dana", "dana", "xendit"},
}

func notFailed(t *testing.T, p payrouter.Payment) {
	t.Helper()
	switch p.Status {
	case payrouter.StatusSucceeded, payrouter.StatusRequiresAction, payrouter.StatusProcessing:
	default:
		t.Fatalf("payment %s: status %s (failure %+v, reason %q), want it taken", p.ID, p.Status, p.Failure, p.Route.Reason)
	}
}

// down → failover to the next candidate; the breaker opens after the
// threshold (then the candidate is skipped without a call and the skip is
// in route.reason), half-opens after open_for, and a successful probe
// closes it once the provider is back.
func TestChaosDownFailsOverAndBreakerCycles(t *testing.T) {
	const minRequests = 3
	const openFor = 700 * time.Millisecond
	for _, c := range downCases {
		t.Run(c.faulty+"/"+c.method, func(t *testing.T) {
			ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), chain(cardsFirst(c.faulty), func(cfg *config.Config) {
				for name, pc := range cfg.Providers {
					pc.Breaker = config.Breaker{FailureRatio: 0.5, MinRequests: minRequests, OpenFor: config.Duration(openFor)}
					cfg.Providers[name] = pc
				}
			}))
			g, _ := ti.Router.Provider(c.faulty)
			m := payrouter.Method(c.method)
			setFaults(t, ti, c.faulty, sim.Faults{Mode: "down"})
			var ids []string
			for i := range minRequests {
				p := pay(t, ti, fmt.Sprintf("down-%d", i), c.method)
				ids = append(ids, p.ID)
				notFailed(t, p)
				if p.Provider != c.next || len(p.Attempts) != 2 {
					t.Fatalf("payment %d: provider %s with %d attempts (%s), want failover to %s", i, p.Provider, len(p.Attempts), p.Route.Reason, c.next)
				}
				if a := p.Attempts[0]; a.Provider != c.faulty || a.ErrorClass != "unavailable" || a.Status != payrouter.AttemptFailed {
					t.Errorf("first attempt = %+v, want %s failed unavailable", a, c.faulty)
				}
				if got := strings.Count(p.Route.Reason, c.faulty+": unavailable"); got != 1 {
					t.Errorf("route.reason %q names the failover %d times, want once", p.Route.Reason, got)
				}
			}
			if got := g.BreakerState(m); got != gobreaker.StateOpen {
				t.Fatalf("after %d failures breaker is %s, want open", minRequests, got)
			}
			if got := readyBreaker(t, ti, c.faulty, c.method); got != "open" {
				t.Errorf("/readyz breakers.%s.%s = %q, want open", c.faulty, c.method, got)
			}
			before := len(ledger(t, ti, c.faulty))
			p := pay(t, ti, "down-open", c.method)
			ids = append(ids, p.ID)
			notFailed(t, p)
			if p.Provider != c.next || len(p.Attempts) != 1 {
				t.Errorf("with the breaker open: provider %s with %d attempts, want %s alone", p.Provider, len(p.Attempts), c.next)
			}
			if want := c.faulty + ": breaker open"; !strings.Contains(p.Route.Reason, want) {
				t.Errorf("route.reason %q does not say %q", p.Route.Reason, want)
			}

			setFaults(t, ti, c.faulty, sim.Faults{Mode: "none"})
			// gobreaker has no clock to inject: its open period runs on
			// time.Now. Poll until it half-opens, bounded generously (not a
			// speed assertion).
			openedAt := time.Now()
			got := readyBreaker(t, ti, c.faulty, c.method)
			for got == "open" && time.Since(openedAt) < openFor+10*time.Second {
				time.Sleep(10 * time.Millisecond)
				got = readyBreaker(t, ti, c.faulty, c.method)
			}
			if got != "half-open" {
				t.Errorf("after open_for: /readyz says %q, want half-open", got)
			}
			p = pay(t, ti, "down-probe", c.method)
			ids = append(ids, p.ID)
			notFailed(t, p)
			if p.Provider != c.faulty || len(p.Attempts) != 1 {
				t.Errorf("probe: provider %s with %d attempts (%s), want %s", p.Provider, len(p.Attempts), p.Route.Reason, c.faulty)
			}
			if got := g.BreakerState(m); got != gobreaker.StateClosed {
				t.Errorf("after a successful probe breaker is %s, want closed", got)
			}
			if after := len(ledger(t, ti, c.faulty)); after != before+1 {
				t.Errorf("%s ledger grew by %d, want 1 (the probe): down refuses before processing", c.faulty, after-before)
			}
			checkLedgers(t, ledgersByPayment(t, func(p string) []sim.LedgerEntry { return ledger(t, ti, p) }, []string{c.faulty, c.next}), storedPayments(t, ti, ids))
		})
	}
}

// slow beyond the attempt timeout on a card: the outcome is unknown, so no
// other provider is tried; the payment stays processing until the
// resolver learns the truth at the same provider.
func TestChaosSlowCardNeverChargesElsewhere(t *testing.T) {
	for _, prov := range cardProviders {
		t.Run(prov, func(t *testing.T) {
			ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), chain(cardsFirst(prov), fastResolver, func(c *config.Config) {
				pc := c.Providers[prov]
				pc.Timeout = config.Duration(200 * time.Millisecond)
				c.Providers[prov] = pc
			}))
			setFaults(t, ti, prov, sim.Faults{Mode: "slow", LatencyMS: 1500})
			p := pay(t, ti, "slow-1", "card")
			if p.Status != payrouter.StatusProcessing || p.Provider != prov || len(p.Attempts) != 1 {
				t.Fatalf("got %s via %q with %d attempts (%s), want processing at %s alone", p.Status, p.Provider, len(p.Attempts), p.Route.Reason, prov)
			}
			if a := p.Attempts[0]; a.ErrorClass != "ambiguous" {
				t.Errorf("attempt = %+v, want ambiguous", a)
			}
			all := func(p string) []sim.LedgerEntry { return ledger(t, ti, p) }
			if n := len(ledgersByPayment(t, all, cardProviders)[p.ID]); n != 0 {
				t.Fatalf("while slow: %d ledger entries, want none", n)
			}
			setFaults(t, ti, prov, sim.Faults{Mode: "none"})
			got := waitStatus(t, ti, p.ID, payrouter.StatusSucceeded)
			if got.Provider != prov || len(got.Attempts) != 1 {
				t.Errorf("resolved via %s with %d attempts, want %s alone", got.Provider, len(got.Attempts), prov)
			}
			if n := checkLedgers(t, ledgersByPayment(t, all, cardProviders), storedPayments(t, ti, []string{p.ID})); n != 1 {
				t.Errorf("%d charges, want 1", n)
			}
		})
	}
}

// drop_after_charge: the provider charges and the answer is lost. The
// router must find that charge, not make another one.
func TestChaosDropAfterChargeChargesOnce(t *testing.T) {
	for _, prov := range cardProviders {
		t.Run(prov, func(t *testing.T) {
			ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), chain(cardsFirst(prov), fastResolver))
			setFaults(t, ti, prov, sim.Faults{Mode: "drop_after_charge"})
			p := pay(t, ti, "drop-1", "card")
			if p.Provider != prov {
				t.Fatalf("went to %q (%s), want %s: an ambiguous card never fails over", p.Provider, p.Route.Reason, prov)
			}
			got := waitStatus(t, ti, p.ID, payrouter.StatusSucceeded)
			setFaults(t, ti, prov, sim.Faults{Mode: "none"})
			all := func(p string) []sim.LedgerEntry { return ledger(t, ti, p) }
			if n := checkLedgers(t, ledgersByPayment(t, all, cardProviders), storedPayments(t, ti, []string{got.ID})); n != 1 {
				t.Errorf("%d charges across all ledgers, want exactly 1", n)
			}
		})
	}
}

// flaky at 30% on every provider a payment may use, many payments at once:
// every payment ends terminal (customer-action ones after the customer
// pays), none is charged at two providers, every charge is a payment's.
func TestChaosFlakyNeverChargesTwice(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 200
	}
	provs := []string{"stripe", "xendit", "midtrans"}
	ti := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "p.db"), chain(fastResolver, func(c *config.Config) {
		c.Router.Deadline = config.Duration(10 * time.Second)
		c.Store.Synchronous = "off" // durability is the crash test's subject, not this one's
	}))
	for _, p := range provs {
		setFaults(t, ti, p, sim.Faults{Mode: "flaky", ErrorRate: 0.3})
	}
	type result struct {
		status int
		p      payrouter.Payment
		body   string
	}
	results := make([]result, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				method := "card"
				if i%8 == 7 {
					method = "qris"
				}
				ref := fmt.Sprintf("flaky-%d", i)
				st, b := ti.Do(t, "POST", "/v1/payments", payBody(ref, method), "Idempotency-Key", ref)
				results[i] = result{status: st, body: string(b)}
				if st == 201 {
					_ = json.Unmarshal(b, &results[i].p)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d payments in %s", n, time.Since(start).Round(time.Millisecond))
	for _, p := range provs {
		setFaults(t, ti, p, sim.Faults{Mode: "none"})
	}

	var ids []string
	counts := map[string]int{}
	for i, r := range results {
		switch r.status {
		case 201:
			ids = append(ids, r.p.ID)
			counts["created "+string(r.p.Status)]++
		case 503:
			// Every candidate's breaker open: refused before any call.
			if !strings.Contains(r.body, "provider_unavailable") {
				t.Errorf("payment %d: 503 %s", i, r.body)
			}
			counts["refused 503"]++
		default:
			t.Errorf("payment %d: status %d %s", i, r.status, r.body)
		}
	}
	// The customer pays what waits for them.
	created := time.Now()
	sem := make(chan struct{}, 16)
	for _, r := range results {
		if r.status == 201 && r.p.Status == payrouter.StatusRequiresAction {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				simPay(t, ti, r.p.Provider, r.p.ProviderPaymentID, "success")
			}()
		}
	}
	wg.Wait()
	t.Logf("customers paid in %s", time.Since(created).Round(time.Millisecond))
	// Everything settles: payments terminal, no attempt left unresolved or
	// open at a provider the payment did not end with. The resolver's loop
	// runs all along; its schedule backs off with a payment's age, so the
	// test also drives Resolve on what is left, as a later pass would.
	ps := map[string]*payrouter.Payment{}
	pending := ids
	deadline := time.Now().Add(40 * time.Second)
	for len(pending) > 0 {
		var still []string
		for id, p := range scanPayments(t, ti, pending) {
			ps[id] = p
			if !settled(p) {
				still = append(still, id)
				if err := ti.Router.Resolve(context.Background(), p); err != nil {
					t.Logf("resolve %s: %v", id, err)
				}
			}
		}
		pending = still
		if testing.Verbose() {
			t.Logf("settle pass: %d left at %s", len(pending), time.Since(created).Round(time.Millisecond))
		}
		if len(pending) > 0 && time.Now().After(deadline) {
			for _, id := range pending {
				p := ps[id]
				t.Errorf("not settled: %s %s via %s attempts %+v", p.ID, p.Status, p.Provider, p.Attempts)
			}
			t.Fatalf("%d of %d payments not settled", len(pending), len(ps))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("settled %s after the last payment", time.Since(created).Round(time.Millisecond))
	final := map[string]int{}
	for _, p := range ps {
		final[string(p.Status)]++
	}
	all := func(p string) []sim.LedgerEntry { return ledger(t, ti, p) }
	charges := checkLedgers(t, ledgersByPayment(t, all, provs), ps)
	t.Logf("at creation %v; final %v; %d charges", counts, final, charges)
	if final[string(payrouter.StatusSucceeded)] < len(ps)/2 {
		t.Errorf("only %d of %d payments succeeded at 30%% faults with failover", final[string(payrouter.StatusSucceeded)], len(ps))
	}
}

// settled: terminal, and every attempt's outcome known (a stray attempt
// canceled at its provider).
func settled(p *payrouter.Payment) bool {
	if !p.Status.Terminal() {
		return false
	}
	for _, a := range p.Attempts {
		switch a.Status {
		case payrouter.AttemptPending, payrouter.AttemptAmbiguous:
			return false
		case payrouter.AttemptRequiresAction, payrouter.AttemptProcessing:
			if a.Provider != p.Provider || a.ProviderPaymentID != p.ProviderPaymentID {
				return false
			}
		}
	}
	return true
}

// Two router instances sharing Redis: tripping a breaker through one makes
// the other skip that provider without calling it, and /readyz of the
// other says so.
func TestChaosBreakerSharedThroughRedis(t *testing.T) {
	url := os.Getenv("PAYROUTER_TEST_REDIS")
	if url == "" {
		t.Skip("PAYROUTER_TEST_REDIS is not set (e.g. redis://127.0.0.1:6379/0): skipping the shared-breaker test")
	}
	prefix := fmt.Sprintf("payrouter-test:%s:%d:", t.Name(), time.Now().UnixNano())
	mutate := chain(cardsFirst("stripe"), func(c *config.Config) {
		c.Redis.URL, c.Redis.BreakerPrefix = url, prefix
		for name, pc := range c.Providers {
			pc.Breaker = config.Breaker{FailureRatio: 0.5, MinRequests: 3, OpenFor: config.Duration(time.Minute)}
			c.Providers[name] = pc
		}
	})
	t.Cleanup(func() { deleteKeys(t, url, prefix) })
	a := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "a.db"), mutate)
	b := apptest.StartSandbox(t, filepath.Join(t.TempDir(), "b.db"), mutate)

	setFaults(t, a, "stripe", sim.Faults{Mode: "down"})
	for i := range 3 {
		p := pay(t, a, fmt.Sprintf("a-%d", i), "card")
		if p.Provider != "xendit" || len(p.Attempts) != 2 {
			t.Fatalf("instance a: payment %d via %s with %d attempts, want failover to xendit", i, p.Provider, len(p.Attempts))
		}
	}
	if got := readyBreaker(t, a, "stripe", "card"); got != "open" {
		t.Fatalf("instance a: stripe/card breaker %q, want open", got)
	}

	// b's own stripe simulator is healthy: only the shared breaker can
	// keep b away from it.
	p := pay(t, b, "b-1", "card")
	if p.Provider != "xendit" || len(p.Attempts) != 1 {
		t.Errorf("instance b: via %s with %d attempts (%s), want xendit alone", p.Provider, len(p.Attempts), p.Route.Reason)
	}
	if !strings.Contains(p.Route.Reason, "stripe: breaker open") {
		t.Errorf("instance b: route.reason %q does not say stripe's breaker is open", p.Route.Reason)
	}
	if n := len(ledger(t, b, "stripe")); n != 0 {
		t.Errorf("instance b called stripe: %d ledger entries", n)
	}
	if got := readyBreaker(t, b, "stripe", "card"); got != "open" {
		t.Errorf("instance b: /readyz stripe/card %q, want open", got)
	}
}

func deleteKeys(t *testing.T, url, prefix string) {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx := context.Background()
	if keys, err := rdb.Keys(ctx, prefix+"*").Result(); err == nil && len(keys) > 0 {
		rdb.Del(ctx, keys...)
	}
}
