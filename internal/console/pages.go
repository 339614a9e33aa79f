package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/ops"
	"github.com/payrouter/payrouter/internal/recon"
)

// pages are the console's GET pages; the nav ones form the menu.
var pages = []page{
	{path: "/console", title: "Overview", view: "overview", nav: true, load: (*Console).overview},
	{path: "/console/providers", title: "Providers", view: "providers", nav: true, load: (*Console).providers},
	{path: "/console/rules", title: "Rules", view: "rules", nav: true, load: (*Console).rules},
	{path: "/console/adaptive", title: "Adaptive", view: "adaptive", nav: true, load: (*Console).adaptive},
	{path: "/console/rules/{v}", title: "Rule version", view: "version", load: (*Console).version},
	{path: "/console/payments", title: "Payments", view: "payments", nav: true, load: (*Console).payments},
	{path: "/console/anomalies", title: "Anomalies", view: "anomalies", nav: true, load: (*Console).anomalies},
	{path: "/console/reconciliation", title: "Reconciliation", view: "reconciliation", nav: true, load: (*Console).reconRuns},
	{path: "/console/reconciliation/{id}", title: "Reconciliation run", view: "reconrun", load: (*Console).reconRun},
	{path: "/console/deliveries", title: "Deliveries", view: "deliveries", nav: true, load: (*Console).deliveries},
	{path: "/console/audit", title: "Audit", view: "audit", nav: true, load: (*Console).audit},
}

// actions are the console's forms.
var actions = []action{
	{path: "/console/rules", run: (*Console).saveRules},
	{path: "/console/rules/{v}/replay", run: (*Console).replay},
	{path: "/console/rules/{v}/test", run: (*Console).testCases},
	{path: "/console/rules/{v}/shadow", run: (*Console).shadow},
	{path: "/console/rules/{v}/activate", run: (*Console).activate},
	{path: "/console/providers/{name}/breaker", run: (*Console).breaker},
	{path: "/console/anomalies/{id}/resolve", run: (*Console).resolve},
	{path: "/console/reconciliation", run: (*Console).reconStart},
	{path: "/console/reconciliation/{id}/lines/{n}/{action}", run: (*Console).reconAct},
	{path: "/console/events/{id}/redeliver", run: (*Console).redeliver},
}

func withMsg(path, msg string) string { return path + "?msg=" + url.QueryEscape(msg) }

// --- overview ---

type overviewData struct {
	Rules     ops.RulesList
	Open      int
	Unhealthy []string
	Dead      int
	Pending   int
	Providers int
}

func (c *Console) overview(r *http.Request, a ops.Actor) (any, error) {
	ctx := r.Context()
	var d overviewData
	var err error
	if d.Rules, err = c.svc.Rules(ctx, a); err != nil {
		return nil, err
	}
	if d.Open, err = c.svc.OpenAnomalies(ctx); err != nil {
		return nil, err
	}
	ps, err := c.svc.Providers(ctx, a)
	if err != nil {
		return nil, err
	}
	d.Providers = len(ps)
	for _, p := range ps {
		for _, m := range p.Methods {
			if m.Breaker != "closed" {
				d.Unhealthy = append(d.Unhealthy, p.Name+"/"+string(m.Method)+": "+m.Breaker)
			}
		}
	}
	for status, n := range map[string]*int{"dead": &d.Dead, "pending": &d.Pending} {
		l, err := c.svc.Deliveries(ctx, a, status, 1000)
		if err != nil {
			return nil, err
		}
		*n = len(l.Data)
	}
	au, err := c.svc.Audit(ctx, a, 8)
	if err != nil {
		return nil, err
	}
	return map[string]any{"O": d, "Audit": au.Data}, nil
}

// --- providers ---

type providerRow struct {
	ops.ProviderHealth
	Series []ops.Window
}

func (c *Console) providers(r *http.Request, a ops.Actor) (any, error) {
	ps, err := c.svc.Providers(r.Context(), a)
	if err != nil {
		return nil, err
	}
	rows := make([]providerRow, len(ps))
	for i, p := range ps {
		s, err := c.svc.Series(a, p.Name, "")
		if err != nil {
			return nil, err
		}
		rows[i] = providerRow{ProviderHealth: p, Series: s}
	}
	return rows, nil
}

func (c *Console) breaker(r *http.Request, a ops.Actor) (string, string, any, error) {
	name := r.PathValue("name")
	req := ops.BreakerRequest{Method: r.PostFormValue("method"), State: r.PostFormValue("state"), Reason: r.PostFormValue("reason")}
	if _, err := c.svc.SetBreaker(r.Context(), a, name, req); err != nil {
		return "", "", nil, err
	}
	return withMsg("/console/providers", name+"/"+req.Method+": "+req.State), "", nil, nil
}

// --- adaptive routing: the live scores ---

func (c *Console) adaptive(r *http.Request, a ops.Actor) (any, error) {
	return c.svc.Adaptive(r.Context(), a)
}

// --- reconciliation (internal/recon; the same service as the ops API) ---

type reconRunsData struct {
	Enabled   bool
	Runs      []recon.RunView
	Providers []string
	From, To  string
}

func (c *Console) reconRuns(r *http.Request, a ops.Actor) (any, error) {
	d := reconRunsData{Enabled: c.Recon != nil}
	if c.Recon == nil {
		return d, nil
	}
	runs, err := c.Recon.List(r.Context(), r.URL.Query().Get("provider"), 50)
	if err != nil {
		return nil, err
	}
	d.Runs, d.Providers = runs, c.Recon.Configured
	// The default period: yesterday, UTC.
	today := c.now().UTC().Truncate(24 * time.Hour)
	d.From, d.To = today.Add(-24*time.Hour).Format(time.RFC3339), today.Format(time.RFC3339)
	return d, nil
}

func (c *Console) reconRun(r *http.Request, a ops.Actor) (any, error) {
	if c.Recon == nil {
		return nil, payrouter.Errorf(payrouter.ErrNotFound, "resource_missing", "reconciliation is not configured")
	}
	return c.Recon.Get(r.Context(), r.PathValue("id"))
}

// needOperator: starting runs and acting on lines is the operator's.
func needOperator(a ops.Actor) error {
	if a.Role < ops.Operator {
		return &payrouter.Error{Type: ops.ErrForbidden, Code: "forbidden",
			Message: "ops key " + a.ID + " is " + a.Role.String() + "; this needs operator"}
	}
	return nil
}

func (c *Console) reconStart(r *http.Request, a ops.Actor) (string, string, any, error) {
	if err := needOperator(a); err != nil {
		return "", "", nil, err
	}
	if c.Recon == nil {
		return "", "", nil, payrouter.Errorf(payrouter.ErrInvalidState, "reconciliation_off", "reconciliation is not configured")
	}
	from, err1 := time.Parse(time.RFC3339, r.PostFormValue("from"))
	to, err2 := time.Parse(time.RFC3339, r.PostFormValue("to"))
	if err1 != nil || err2 != nil {
		return "", "", nil, payrouter.InvalidParam("from", "from and to are RFC 3339 times like 2026-12-01T00:00:00Z")
	}
	run, _, err := c.Recon.Start(r.Context(), recon.StartRequest{Provider: r.PostFormValue("provider"), From: from, To: to,
		Actor: a.ID, Reason: r.PostFormValue("reason")})
	if err != nil {
		return "", "", nil, err
	}
	return "/console/reconciliation/" + run.ID, "", nil, nil
}

func (c *Console) reconAct(r *http.Request, a ops.Actor) (string, string, any, error) {
	if err := needOperator(a); err != nil {
		return "", "", nil, err
	}
	if c.Recon == nil {
		return "", "", nil, payrouter.Errorf(payrouter.ErrInvalidState, "reconciliation_off", "reconciliation is not configured")
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil {
		return "", "", nil, payrouter.Errorf(payrouter.ErrNotFound, "resource_missing", "no line %q", r.PathValue("n"))
	}
	id := r.PathValue("id")
	if _, err := c.Recon.Act(r.Context(), id, n, r.PathValue("action"), r.PostFormValue("reason"), a.ID); err != nil {
		return "", "", nil, err
	}
	return withMsg("/console/reconciliation/"+id, "line "+r.PathValue("n")+": "+r.PathValue("action")+"d"), "", nil, nil
}

// --- rules ---

type rulesData struct {
	List   ops.RulesList
	YAML   string
	Check  *ops.Check
	Reason string
}

func (c *Console) activeYAML(ctx context.Context, a ops.Actor, l ops.RulesList) string {
	if d, err := c.svc.Version(ctx, a, l.Active); err == nil {
		return d.YAML
	}
	return ""
}

func (c *Console) rules(r *http.Request, a ops.Actor) (any, error) {
	l, err := c.svc.Rules(r.Context(), a)
	if err != nil {
		return nil, err
	}
	return rulesData{List: l, YAML: c.activeYAML(r.Context(), a, l)}, nil
}

// saveRules checks the editor's YAML (op=check) or saves it as a draft.
func (c *Console) saveRules(r *http.Request, a ops.Actor) (string, string, any, error) {
	ctx := r.Context()
	text, reason := r.PostFormValue("yaml"), r.PostFormValue("reason")
	l, err := c.svc.Rules(ctx, a)
	if err != nil {
		return "", "", nil, err
	}
	d := rulesData{List: l, YAML: text, Reason: reason}
	if r.PostFormValue("op") == "check" {
		ck, err := c.svc.CheckYAML(a, text)
		if err != nil {
			return "", "", nil, err
		}
		d.Check = &ck
		return "", "rules", d, nil
	}
	cr, err := c.svc.CreateVersion(ctx, a, ops.CreateRequest{YAML: text, Reason: reason})
	var ce *ops.CheckError
	if errors.As(err, &ce) {
		d.Check = &ce.Check
		return "", "rules", d, err
	}
	if err != nil {
		return "", "", nil, err
	}
	return withMsg("/console/rules/"+cr.Version, cr.Version+" saved as a draft"), "", nil, nil
}

type versionData struct {
	V          *ops.VersionDetail
	Active     string
	Replay     *ops.ReplayResult
	Shadow     *ops.ShadowReport
	Since      string
	Cases      string
	Tested     *ops.CasesResult
	CasesCheck *ops.Check
}

func (c *Console) versionData(r *http.Request, a ops.Actor) (*versionData, error) {
	ctx := r.Context()
	v, err := c.svc.Version(ctx, a, r.PathValue("v"))
	if err != nil {
		return nil, err
	}
	l, err := c.svc.Rules(ctx, a)
	if err != nil {
		return nil, err
	}
	d := &versionData{V: v, Active: l.Active, Since: "7d"}
	if v.Shadow {
		if d.Shadow, err = c.svc.ShadowReport(ctx, a, v.Version); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (c *Console) version(r *http.Request, a ops.Actor) (any, error) { return c.versionData(r, a) }

func (c *Console) replay(r *http.Request, a ops.Actor) (string, string, any, error) {
	d, err := c.versionData(r, a)
	if err != nil {
		return "", "", nil, err
	}
	d.Since = r.PostFormValue("since")
	d.Replay, err = c.svc.Replay(r.Context(), a, d.V.Version, ops.ReplayRequest{Since: d.Since})
	if err != nil {
		return "", "", nil, err
	}
	return "", "version", d, nil
}

func (c *Console) testCases(r *http.Request, a ops.Actor) (string, string, any, error) {
	d, err := c.versionData(r, a)
	if err != nil {
		return "", "", nil, err
	}
	d.Cases = r.PostFormValue("cases")
	d.Tested, err = c.svc.TestCases(r.Context(), a, d.V.Version, ops.CasesRequest{Cases: d.Cases})
	var ce *ops.CheckError
	if errors.As(err, &ce) {
		d.CasesCheck = &ce.Check
		return "", "version", d, err
	}
	if err != nil {
		return "", "", nil, err
	}
	return "", "version", d, nil
}

func (c *Console) shadow(r *http.Request, a ops.Actor) (string, string, any, error) {
	v := r.PathValue("v")
	if _, err := c.svc.Shadow(r.Context(), a, v, r.PostFormValue("reason")); err != nil {
		return "", "", nil, err
	}
	return withMsg("/console/rules/"+v, v+" is shadowing live traffic"), "", nil, nil
}

func (c *Console) activate(r *http.Request, a ops.Actor) (string, string, any, error) {
	v := r.PathValue("v")
	act, err := c.svc.Activate(r.Context(), a, v, r.PostFormValue("reason"))
	if err != nil {
		return "", "", nil, err
	}
	return withMsg("/console/rules/"+act.Version, act.Version+" is active (was "+act.Previous+")"), "", nil, nil
}

// --- payments, anomalies, deliveries, audit ---

func (c *Console) payments(r *http.Request, a ops.Actor) (any, error) {
	q := r.URL.Query().Get("q")
	l, err := c.svc.SearchPayments(r.Context(), a, q)
	if err != nil {
		return nil, err
	}
	return map[string]any{"Q": q, "Payments": l.Data}, nil
}

func (c *Console) anomalies(r *http.Request, a ops.Actor) (any, error) {
	l, err := c.svc.Anomalies(r.Context(), a, 200)
	return l.Data, err
}

func (c *Console) resolve(r *http.Request, a ops.Actor) (string, string, any, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return "", "", nil, payrouter.Errorf(payrouter.ErrNotFound, "resource_missing", "no anomaly %q", r.PathValue("id"))
	}
	if err := c.svc.ResolveAnomaly(r.Context(), a, id, r.PostFormValue("reason")); err != nil {
		return "", "", nil, err
	}
	return withMsg("/console/anomalies", "anomaly "+r.PathValue("id")+" resolved"), "", nil, nil
}

func (c *Console) deliveries(r *http.Request, a ops.Actor) (any, error) {
	status := r.URL.Query().Get("status")
	l, err := c.svc.Deliveries(r.Context(), a, status, 200)
	if err != nil {
		return nil, err
	}
	return map[string]any{"Status": status, "Deliveries": l.Data}, nil
}

func (c *Console) redeliver(r *http.Request, a ops.Actor) (string, string, any, error) {
	seq, err := ops.EventSeq(r.PathValue("id"))
	if err != nil {
		return "", "", nil, err
	}
	if _, err := c.svc.Redeliver(r.Context(), a, seq, r.PostFormValue("reason")); err != nil {
		return "", "", nil, err
	}
	back := r.PostFormValue("back")
	if back == "" || safeNext(back) != back {
		back = "/console/deliveries"
	}
	sep := "?"
	if u, err := url.Parse(back); err == nil && u.RawQuery != "" {
		sep = "&"
	}
	return back + sep + "msg=" + url.QueryEscape(payrouter.EventID(seq)+" queued for redelivery"), "", nil, nil
}

func (c *Console) audit(r *http.Request, a ops.Actor) (any, error) {
	l, err := c.svc.Audit(r.Context(), a, 200)
	return l.Data, err
}
