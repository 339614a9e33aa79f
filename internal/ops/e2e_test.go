package ops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/app"
	"github.com/payrouter/payrouter/internal/app/apptest"
	"github.com/payrouter/payrouter/internal/config"
	"github.com/payrouter/payrouter/internal/ops"
	"github.com/payrouter/payrouter/internal/store"
)

const (
	admin    = "ok_sandbox_admin"
	operator = "ok_sandbox_operator"
	viewer   = "ok_sandbox_viewer"
	merchant = "sk_sandbox_demo"
)

func call(t *testing.T, ti *apptest.TestInstance, key, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, ti.URL+path, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func must[T any](t *testing.T, want int) func(st int, body []byte) T {
	return func(st int, body []byte) T { return decodeAs[T](t, st, body, want) }
}

func decodeAs[T any](t *testing.T, st int, body []byte, want int) T {
	t.Helper()
	if st != want {
		t.Fatalf("status %d, want %d: %s", st, want, body)
	}
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, body)
	}
	return v
}

func errType(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error payrouter.Error `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return string(e.Error.Type)
}

// cardIDR is a card payment every card provider of the sandbox can take.
func cardIDR(ref string) map[string]any {
	return map[string]any{"amount": 150000, "currency": "IDR", "method": "card", "reference": ref,
		"payment_method_tokens": map[string]string{"stripe": "tok_sandbox_success", "xendit": "tok_sandbox_success", "midtrans": "tok_sandbox_success"}}
}

func pay(t *testing.T, ti *apptest.TestInstance, ref string) payrouter.Payment {
	t.Helper()
	st, b := ti.Do(t, "POST", "/v1/payments", cardIDR(ref), "Idempotency-Key", ref)
	return decodeAs[payrouter.Payment](t, st, b, 201)
}

// xenditFirst is the shipped rules with cards preferring xendit.
func xenditFirst(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(apptest.RepoFile("config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text, err := ops.RulesSections(data)
	if err != nil {
		t.Fatal(err)
	}
	out := strings.Replace(text, "providers: [stripe, xendit, midtrans]", "providers: [xendit, stripe, midtrans]", 1)
	if out == text {
		t.Fatal("fixture: the cards rule was not found in config.yaml")
	}
	return out
}

type setup struct {
	driver, dsn string
	redis       string // "" : breaker overrides in the store
	prefix      string
}

var setups = []struct {
	name string
	make func(t *testing.T) setup
}{
	{"sqlite", func(t *testing.T) setup { return setup{driver: "sqlite", dsn: filepath.Join(t.TempDir(), "p.db")} }},
	{"postgres", func(t *testing.T) setup { return setup{driver: "postgres", dsn: apptest.PostgresDSN(t)} }},
	// Forced-open breakers shared through Redis instead of the store.
	{"sqlite+redis", func(t *testing.T) setup {
		url := os.Getenv("PAYROUTER_TEST_REDIS")
		if url == "" {
			t.Skip("PAYROUTER_TEST_REDIS is unset; set it (e.g. redis://127.0.0.1:6379/0) to run the ops API with Redis")
		}
		return setup{driver: "sqlite", dsn: filepath.Join(t.TempDir(), "p.db"), redis: url,
			prefix: fmt.Sprintf("payrouter-test:ops:%d:", time.Now().UnixNano())}
	}},
}

func start(t *testing.T, s setup) *apptest.TestInstance {
	t.Helper()
	return apptest.StartSandbox(t, s.dsn, func(c *config.Config) {
		c.Store.Driver = s.driver
		c.Redis.URL, c.Redis.BreakerPrefix = s.redis, s.prefix
		c.Ops.PollEvery = config.Duration(200 * time.Millisecond)
	})
}

func TestOpsAPI(t *testing.T) {
	for _, sk := range setups {
		t.Run(sk.name, func(t *testing.T) { testOpsAPI(t, sk.make(t)) })
	}
}

func testOpsAPI(t *testing.T, s setup) {
	a := start(t, s)
	b := start(t, s) // a second instance on the same store

	// Keys: each API refuses the other's.
	if st, body := call(t, a, "", "GET", "/ops/v1/rules", nil); st != 401 || errType(t, body) != "authentication" {
		t.Fatalf("no key: %d %s", st, body)
	}
	if st, body := call(t, a, merchant, "GET", "/ops/v1/rules", nil); st != 401 {
		t.Fatalf("merchant key on /ops: %d %s", st, body)
	}
	if st, body := call(t, a, admin, "GET", "/v1/payments", nil); st != 401 {
		t.Fatalf("ops key on /v1: %d %s", st, body)
	}

	// Version 1 is the config file's.
	rl := must[ops.RulesList](t, 200)(call(t, a, viewer, "GET", "/ops/v1/rules", nil))
	if rl.Active != "v1" || len(rl.Versions) != 1 || rl.Versions[0].State != "active" || rl.Versions[0].CreatedBy != "config" {
		t.Fatalf("rules at start: %+v", rl)
	}
	p1 := pay(t, a, "r1")
	if p1.Provider != "stripe" || p1.Route.RulesVersion != "v1" {
		t.Fatalf("before any change: provider %s route %+v", p1.Provider, p1.Route)
	}

	// Roles: creating a version is admin's.
	good := xenditFirst(t)
	for _, k := range []string{viewer, operator} {
		st, body := call(t, a, k, "POST", "/ops/v1/rules/versions", map[string]string{"yaml": good, "reason": "x"})
		if st != 403 || errType(t, body) != "forbidden" {
			t.Fatalf("create as %s: %d %s, want 403 forbidden", k, st, body)
		}
	}
	// A broken version: 422 with line and column, nothing stored.
	bad := strings.Replace(good, "providers: [xendit, stripe, midtrans]", "providers: [xendit, stripe, nosuch]", 1)
	st, body := call(t, a, admin, "POST", "/ops/v1/rules/versions", map[string]string{"yaml": bad, "reason": "try"})
	refused := must[struct {
		Check ops.Check `json:"check"`
	}](t, 422)(st, body)
	if len(refused.Check.Errors) == 0 || refused.Check.Errors[0].Line == 0 || refused.Check.Errors[0].Col == 0 ||
		!strings.Contains(refused.Check.Errors[0].Message, "nosuch") {
		t.Fatalf("check of a bad version: %+v", refused.Check)
	}
	wantLine := 1 + strings.Count(bad[:strings.Index(bad, "nosuch")], "\n")
	if refused.Check.Errors[0].Line != wantLine {
		t.Errorf("error at line %d, want %d", refused.Check.Errors[0].Line, wantLine)
	}
	if st, _ := call(t, a, admin, "POST", "/ops/v1/rules/versions", map[string]string{"yaml": good}); st != 400 {
		t.Fatalf("create without reason: %d, want 400", st)
	}
	// The fixed version: a draft with a diff against v1.
	cr := must[ops.Created](t, 201)(call(t, a, admin, "POST", "/ops/v1/rules/versions", map[string]string{"yaml": good, "reason": "xendit is cheaper for IDR cards"}))
	if cr.Version != "v2" || cr.State != "draft" {
		t.Fatalf("created %+v", cr)
	}
	vd := must[ops.VersionDetail](t, 200)(call(t, a, viewer, "GET", "/ops/v1/rules/versions/v2", nil))
	if vd.YAML != good || len(vd.Diff) != 1 || vd.Diff[0].Rule != "rule cards" || vd.Diff[0].Kind != "changed" {
		t.Fatalf("version detail diff %+v", vd.Diff)
	}

	// Routing cases against the draft (viewer may): one holds, one fails.
	cases := "- name: IDR card goes to xendit first\n  payment: {amount: 150000, currency: IDR, method: card, tokens: {stripe: t, xendit: t}}\n  expect: {rule: cards, providers: [xendit, stripe]}\n" +
		"- name: still stripe first\n  payment: {amount: 150000, currency: IDR, method: card, tokens: {stripe: t, xendit: t}}\n  expect: {providers: [stripe, xendit]}\n"
	cres := must[ops.CasesResult](t, 200)(call(t, a, viewer, "POST", "/ops/v1/rules/versions/v2/test", map[string]string{"cases": cases}))
	if cres.Passed != 1 || cres.Failed != 1 || !cres.Cases[0].Pass || cres.Cases[1].Pass || cres.Cases[1].Line != 4 {
		t.Fatalf("cases %+v", cres)
	}
	if st, body := call(t, a, viewer, "POST", "/ops/v1/rules/versions/v2/test", map[string]string{"cases": "- name: x\n  payment: {amount: -1}\n"}); st != 422 {
		t.Fatalf("bad cases: %d %s", st, body)
	}

	// Replay (viewer may): the card payment moves from stripe to xendit.
	rr := must[ops.ReplayResult](t, 200)(call(t, a, viewer, "POST", "/ops/v1/rules/versions/v2/replay", map[string]string{"since": "1h"}))
	if rr.Payments != 1 || rr.Changed != 1 {
		t.Fatalf("replay %+v", rr)
	}
	shares := map[string][2]int{}
	for _, s := range rr.Shares {
		shares[s.Rule+"/"+s.Provider] = [2]int{s.Old, s.New}
	}
	if shares["cards/stripe"] != [2]int{1, 0} || shares["cards/xendit"] != [2]int{0, 1} {
		t.Fatalf("replay shares %v", shares)
	}
	if len(rr.Fees) != 1 || rr.Fees[0].Currency != "IDR" || rr.Fees[0].Delta != rr.Fees[0].New-rr.Fees[0].Old {
		t.Fatalf("replay fees %+v", rr.Fees)
	}

	// Shadow: decisions recorded, not acted on.
	if st, _ := call(t, a, operator, "POST", "/ops/v1/rules/versions/v2/shadow", map[string]string{"reason": "watch"}); st != 403 {
		t.Fatalf("shadow as operator: %d", st)
	}
	must[ops.ShadowReport](t, 200)(call(t, a, admin, "POST", "/ops/v1/rules/versions/v2/shadow", map[string]string{"reason": "watch live traffic"}))
	p2 := pay(t, a, "r2")
	if p2.Provider != "stripe" || p2.Route.RulesVersion != "v1" {
		t.Fatalf("shadowing acted: provider %s route %+v", p2.Provider, p2.Route)
	}
	sr := must[ops.ShadowReport](t, 200)(call(t, a, viewer, "GET", "/ops/v1/rules/versions/v2/shadow", nil))
	if sr.Decisions != 1 || sr.Diverged != 1 || len(sr.Samples) != 1 || sr.Samples[0].PaymentID != p2.ID ||
		sr.Samples[0].Shadow.Candidates[0] != "xendit" || sr.Samples[0].Live.Candidates[0] != "stripe" {
		t.Fatalf("shadow report %+v", sr)
	}

	// Activate on a; b routes by it within 5 s.
	if st, _ := call(t, a, admin, "POST", "/ops/v1/rules/versions/v2/activate", map[string]string{}); st != 400 {
		t.Fatalf("activate without reason: %d, want 400", st)
	}
	act := must[ops.Activated](t, 200)(call(t, a, admin, "POST", "/ops/v1/rules/versions/v2/activate", map[string]string{"reason": "go"}))
	if act.Previous != "v1" || act.Version != "v2" {
		t.Fatalf("activated %+v", act)
	}
	if p := pay(t, a, "r3"); p.Provider != "xendit" || p.Route.RulesVersion != "v2" {
		t.Fatalf("after activation on a: provider %s route %+v", p.Provider, p.Route)
	}
	waitVersion(t, b, "v2")
	if p := pay(t, b, "r4"); p.Provider != "xendit" || p.Route.RulesVersion != "v2" {
		t.Fatalf("after activation, on b: provider %s route %+v", p.Provider, p.Route)
	}
	// Rollback: activate v1 again, on b this time.
	must[ops.Activated](t, 200)(call(t, b, admin, "POST", "/ops/v1/rules/versions/v1/activate", map[string]string{"reason": "rollback"}))
	waitVersion(t, a, "v1")
	if p := pay(t, a, "r5"); p.Provider != "stripe" || p.Route.RulesVersion != "v1" {
		t.Fatalf("after rollback: provider %s route %+v", p.Provider, p.Route)
	}
	rl = must[ops.RulesList](t, 200)(call(t, a, viewer, "GET", "/ops/v1/rules", nil))
	states := map[string]string{}
	for _, v := range rl.Versions {
		states[v.Version] = v.State
	}
	if rl.Active != "v1" || states["v1"] != "active" || states["v2"] != "retired" {
		t.Fatalf("after rollback: %+v", rl)
	}

	// Force stripe's cards open on a; payments on b avoid it, saying why.
	if st, _ := call(t, a, viewer, "POST", "/ops/v1/providers/stripe/breaker", map[string]string{"method": "card", "state": "forced_open", "reason": "x"}); st != 403 {
		t.Fatalf("force as viewer: %d", st)
	}
	if st, _ := call(t, a, operator, "POST", "/ops/v1/providers/stripe/breaker", map[string]string{"method": "card", "state": "shut", "reason": "x"}); st != 400 {
		t.Fatalf("bad state: %d", st)
	}
	call3must(t, a, operator, "POST", "/ops/v1/providers/stripe/breaker", map[string]string{"method": "card", "state": "forced_open", "reason": "stripe maintenance"}, 200)
	provs := must[[]ops.ProviderHealth](t, 200)(call(t, a, viewer, "GET", "/ops/v1/providers", nil))
	if m := method(provs, "stripe", "card"); m == nil || m.Breaker != "forced_open" || m.ForcedReason != "stripe maintenance" || m.Calls1h == 0 {
		t.Fatalf("stripe card after forcing: %+v", m)
	}
	if m := method(provs, "xendit", "card"); m == nil || m.Breaker != "closed" {
		t.Fatalf("xendit card: %+v", m)
	}
	waitFor(t, "b to see the forced breaker", func() bool {
		g, _ := b.Router.Provider("stripe")
		ok, _ := g.Allow("card")
		return !ok
	})
	p6 := pay(t, b, "r6")
	if p6.Provider != "xendit" || !strings.Contains(p6.Route.Reason, "stripe: forced open (stripe maintenance)") {
		t.Fatalf("forced open: provider %s reason %q", p6.Provider, p6.Route.Reason)
	}
	call3must(t, a, operator, "POST", "/ops/v1/providers/stripe/breaker", map[string]string{"method": "card", "state": "auto", "reason": "maintenance over"}, 200)
	waitFor(t, "b to see stripe back", func() bool {
		g, _ := b.Router.Provider("stripe")
		ok, _ := g.Allow("card")
		return ok
	})
	if p := pay(t, b, "r7"); p.Provider != "stripe" {
		t.Fatalf("back to auto: provider %s", p.Provider)
	}

	// Anomalies: listed, resolved once with a note.
	an := &store.Anomaly{Kind: store.AnomalyOrphan, Provider: "stripe", Detail: "webhook for an unknown charge"}
	if err := a.Store.RecordAnomaly(context.Background(), an); err != nil {
		t.Fatal(err)
	}
	al := must[ops.List[ops.Anomaly]](t, 200)(call(t, a, viewer, "GET", "/ops/v1/anomalies", nil))
	if len(al.Data) != 1 || al.Data[0].Status != "open" || al.Data[0].ID != an.ID {
		t.Fatalf("anomalies %+v", al)
	}
	path := fmt.Sprintf("/ops/v1/anomalies/%d/resolve", an.ID)
	if st, _ := call(t, a, viewer, "POST", path, map[string]string{"reason": "x"}); st != 403 {
		t.Fatalf("resolve as viewer: %d", st)
	}
	call3must(t, a, operator, "POST", path, map[string]string{"reason": "test charge from the dashboard"}, 200)
	if st, _ := call(t, a, operator, "POST", path, map[string]string{"reason": "again"}); st != 409 {
		t.Fatalf("resolve twice: %d, want 409", st)
	}
	al = must[ops.List[ops.Anomaly]](t, 200)(call(t, a, viewer, "GET", "/ops/v1/anomalies", nil))
	if al.Data[0].Status != "resolved" || al.Data[0].Resolution.Note != "test charge from the dashboard" || al.Data[0].Resolution.Actor != "ops-operator" {
		t.Fatalf("resolved anomaly %+v", al.Data[0])
	}

	// Payment search across merchants: by id, reference and provider id.
	for _, q := range []string{p6.ID, "r6", p6.ProviderPaymentID} {
		pl := must[ops.List[ops.PaymentView]](t, 200)(call(t, a, viewer, "GET", "/ops/v1/payments?q="+q, nil))
		if len(pl.Data) != 1 || pl.Data[0].Payment.ID != p6.ID || pl.Data[0].MerchantID != "demo" || len(pl.Data[0].Payment.Attempts) == 0 || len(pl.Data[0].Events) == 0 {
			t.Fatalf("search %q: %s", q, mustJSON(pl))
		}
	}
	// Redeliver from there (operator) and see it in the audit.
	ev := must[ops.List[ops.PaymentView]](t, 200)(call(t, a, viewer, "GET", "/ops/v1/payments?q="+p6.ID, nil)).Data[0].Events[0]
	if st, _ := call(t, a, viewer, "POST", "/ops/v1/events/"+ev.ID+"/redeliver", map[string]string{"reason": "x"}); st != 403 {
		t.Fatalf("redeliver as viewer: %d", st)
	}
	call3must(t, a, operator, "POST", "/ops/v1/events/"+ev.ID+"/redeliver", map[string]string{"reason": "merchant lost it"}, 200)

	// Audit: every change, newest first, with actor, reason, before/after.
	au := must[ops.List[store.AuditEntry]](t, 200)(call(t, a, viewer, "GET", "/ops/v1/audit", nil))
	var got []string
	for _, e := range au.Data {
		got = append(got, e.Action+" "+e.Object+" by "+e.Actor+": "+e.Reason)
	}
	want := []string{
		"delivery.redeliver " + ev.ID + " by ops-operator: merchant lost it",
		fmt.Sprintf("anomaly.resolve anomaly/%d by ops-operator: test charge from the dashboard", an.ID),
		"breaker.auto stripe/card by ops-operator: maintenance over",
		"breaker.forced_open stripe/card by ops-operator: stripe maintenance",
		"rules.activate rules/v1 by ops-admin: rollback",
		"rules.activate rules/v2 by ops-admin: go",
		"rules.shadow rules/v2 by ops-admin: watch live traffic",
		"rules.create rules/v2 by ops-admin: xendit is cheaper for IDR cards",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if string(au.Data[4].Before) != `{"active":"v2"}` || string(au.Data[4].After) != `{"active":"v1"}` {
		t.Errorf("rollback before/after: %s → %s", au.Data[4].Before, au.Data[4].After)
	}

	// Metrics an alert needs (b has not scraped yet: its store figures are fresh).
	if err := b.Store.RecordAnomaly(context.Background(), &store.Anomaly{Kind: store.AnomalyUnmapped, Provider: "xendit", Detail: "status FOO"}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(b.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	metrics := string(mb)
	for _, want := range []string{
		`payrouter_build_info{goversion="go`,
		`payrouter_http_request_duration_seconds_count{code="201",route="POST /v1/payments"} 3`, // r4, r6, r7 on b
		`payrouter_breaker_state{method="qris",provider="midtrans"} 0`,                          // never used: initialised
		`payrouter_payments{method="card",provider="xendit",status="succeeded"} 3`,              // r3, r4, r6
		`payrouter_payments{method="card",provider="stripe",status="succeeded"} 4`,              // r1, r2, r5, r7
		`payrouter_anomalies_open 1`,
		`payrouter_inbox_backlog 0`,
		`payrouter_resolver_queue_depth 0`,
		// The redelivered event's delivery is pending or, once the
		// dispatcher found no webhook_url, dead: the series, not its value.
		`payrouter_webhook_deliveries{status="dead"} `,
		`payrouter_webhook_deliveries{status="pending"} `,
		`payrouter_webhook_delivery_oldest_pending_seconds`,
		`payrouter_store_stats_ok 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, `route="GET /ops/v1`) {
		t.Errorf("/metrics records ops routes as merchant API requests")
	}
}

func call3must(t *testing.T, ti *apptest.TestInstance, key, m, path string, body any, want int) {
	t.Helper()
	if st, b := call(t, ti, key, m, path, body); st != want {
		t.Fatalf("%s %s: %d, want %d: %s", m, path, st, want, b)
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func method(ps []ops.ProviderHealth, p, m string) *ops.MethodHealth {
	for _, x := range ps {
		if x.Name != p {
			continue
		}
		for i := range x.Methods {
			if string(x.Methods[i].Method) == m {
				return &x.Methods[i]
			}
		}
	}
	return nil
}

func waitVersion(t *testing.T, ti *apptest.TestInstance, v string) {
	t.Helper()
	waitFor(t, "rules "+v, func() bool { return ti.Rules.Load().Version() == v })
}

// waitFor polls cond for up to 5 s: the contract's bound for activation.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 5s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMerchantKeyMayNotBeAnOpsKey(t *testing.T) {
	data, err := os.ReadFile(apptest.RepoFile("config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(apptest.RepoFile("config.yaml"), data, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store.DSN = filepath.Join(t.TempDir(), "p.db")
	cfg.Ops.Keys = append(cfg.Ops.Keys, config.OpsKey{ID: "clash", Key: "sk_sandbox_demo", Role: "viewer"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, err = app.New(context.Background(), cfg, app.Options{Listener: ln})
	if err == nil || !strings.Contains(err.Error(), "also ops key clash") {
		t.Fatalf("app.New = %v, want the clash refused", err)
	}
}
