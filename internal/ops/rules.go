package ops

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/rules"
)

// VersionName is how a stored version is named in the API and in
// route.rules_version: "v3".
func VersionName(n int64) string { return "v" + strconv.FormatInt(n, 10) }

// ParseVersion reads "v3" or "3".
func ParseVersion(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimPrefix(s, "v"), 10, 64)
	if err != nil || n <= 0 {
		return 0, payrouter.Errorf(payrouter.ErrNotFound, "resource_missing", "no rule version %q", s)
	}
	return n, nil
}

// Problem is one finding of a check, positioned in the version's YAML.
type Problem struct {
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Rule    string `json:"rule,omitempty"`
	Message string `json:"message"`
}

// Check is the outcome of checking a version's YAML.
type Check struct {
	Errors   []Problem `json:"errors"`
	Warnings []Problem `json:"warnings"`
}

// OK reports whether the version may go live.
func (c Check) OK() bool { return len(c.Errors) == 0 }

// CheckError is a version refused by its check (422).
type CheckError struct{ Check Check }

func (e *CheckError) Error() string {
	var b strings.Builder
	b.WriteString("rules refused by check:")
	for _, p := range e.Check.Errors {
		fmt.Fprintf(&b, " %d:%d: %s;", p.Line, p.Col, p.Message)
	}
	return b.String()
}

// checkYAML parses and checks text; cfg is nil when it does not parse.
func (s *Service) checkYAML(text string) (*rules.Config, Check) {
	c := Check{Errors: []Problem{}, Warnings: []Problem{}}
	add := func(f rules.Finding) {
		p := Problem{Line: f.Line, Col: f.Col, Rule: f.Rule, Message: f.Message}
		if f.Severity == rules.SeverityWarning {
			c.Warnings = append(c.Warnings, p)
		} else {
			c.Errors = append(c.Errors, p)
		}
	}
	cfg, err := rules.Parse("rules.yaml", []byte(text))
	if err != nil {
		var re *rules.Error
		if errors.As(err, &re) {
			for _, f := range re.Findings {
				f.Severity = rules.SeverityError
				add(f)
			}
		} else {
			c.Errors = append(c.Errors, Problem{Line: 1, Message: err.Error()})
		}
		return nil, c
	}
	if len(cfg.Rules) == 0 && cfg.Default == nil {
		c.Errors = append(c.Errors, Problem{Line: 1, Message: "no rules and no default section: every payment would fail with no_route"})
	}
	for _, f := range rules.Check(cfg, s.caps) {
		add(f)
	}
	return cfg, c
}

// CheckYAML checks text without storing anything (viewer).
func (s *Service) CheckYAML(a Actor, text string) (Check, error) {
	if err := need(a, Viewer); err != nil {
		return Check{}, err
	}
	_, c := s.checkYAML(text)
	return c, nil
}

// VersionSummary is one version in the list.
type VersionSummary struct {
	Version   string    `json:"version"`
	State     string    `json:"state"`
	Shadow    bool      `json:"shadow,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	Reason    string    `json:"reason"`
}

// RulesList is GET /ops/v1/rules.
type RulesList struct {
	Active   string           `json:"active"`
	Source   string           `json:"source"` // store | file
	Versions []VersionSummary `json:"versions"`
}

func summary(v *store.RuleVersion) VersionSummary {
	return VersionSummary{Version: VersionName(v.Version), State: v.State, Shadow: v.Shadow, CreatedAt: v.CreatedAt, CreatedBy: v.CreatedBy, Reason: v.Reason}
}

// Rules lists the versions, newest first.
func (s *Service) Rules(ctx context.Context, a Actor) (RulesList, error) {
	if err := need(a, Viewer); err != nil {
		return RulesList{}, err
	}
	vs, err := s.c.Versions.ListRuleVersions(ctx)
	if err != nil {
		return RulesList{}, err
	}
	out := RulesList{Active: s.c.Live.Load().Version(), Source: "file", Versions: []VersionSummary{}}
	if s.c.RulesFromStore {
		out.Source = "store"
	}
	for i := range vs {
		out.Versions = append(out.Versions, summary(&vs[i]))
	}
	return out, nil
}

// CreateRequest is POST /ops/v1/rules/versions.
type CreateRequest struct {
	YAML   string `json:"yaml"`
	Reason string `json:"reason"`
}

// Created is a new draft with its check.
type Created struct {
	Version string `json:"version"`
	State   string `json:"state"`
	Check   Check  `json:"check"`
}

// CreateVersion stores a draft (admin). YAML that fails its check is
// refused with a *CheckError and nothing is stored.
func (s *Service) CreateVersion(ctx context.Context, a Actor, r CreateRequest) (*Created, error) {
	if err := need(a, Admin); err != nil {
		return nil, err
	}
	if err := needReason(r.Reason); err != nil {
		return nil, err
	}
	_, c := s.checkYAML(r.YAML)
	if !c.OK() {
		return nil, &CheckError{Check: c}
	}
	v := &store.RuleVersion{State: store.RuleDraft, YAML: r.YAML, CreatedAt: s.c.Now(), CreatedBy: a.ID, Reason: r.Reason}
	if err := s.c.Versions.CreateRuleVersion(ctx, v); err != nil {
		return nil, err
	}
	name := VersionName(v.Version)
	if err := s.audit(ctx, a, "rules.create", "rules/"+name, r.Reason, nil, map[string]any{"version": name, "state": v.State}); err != nil {
		return nil, err
	}
	return &Created{Version: name, State: v.State, Check: c}, nil
}

// VersionDetail is GET /ops/v1/rules/versions/{v}.
type VersionDetail struct {
	VersionSummary
	YAML  string         `json:"yaml"`
	Check Check          `json:"check"`
	Diff  []rules.Change `json:"diff"` // against the active version
}

func (s *Service) version(ctx context.Context, v string) (*store.RuleVersion, error) {
	n, err := ParseVersion(v)
	if err != nil {
		return nil, err
	}
	return s.c.Versions.GetRuleVersion(ctx, n)
}

// Version reads one version with its check and its diff to the active one.
func (s *Service) Version(ctx context.Context, a Actor, v string) (*VersionDetail, error) {
	if err := need(a, Viewer); err != nil {
		return nil, err
	}
	rv, err := s.version(ctx, v)
	if err != nil {
		return nil, err
	}
	cfg, c := s.checkYAML(rv.YAML)
	d := &VersionDetail{VersionSummary: summary(rv), YAML: rv.YAML, Check: c, Diff: []rules.Change{}}
	if cfg != nil {
		if live := s.c.Live.Load().Config(); live != nil {
			if ch := rules.Diff(live, cfg); ch != nil {
				d.Diff = ch
			}
		}
	}
	return d, nil
}

// compiledVersion reads version v and compiles it.
func (s *Service) compiledVersion(ctx context.Context, v string) (*store.RuleVersion, *rules.RuleSet, error) {
	rv, err := s.version(ctx, v)
	if err != nil {
		return nil, nil, err
	}
	set, err := s.compile(rv)
	if err != nil {
		return nil, nil, err
	}
	return rv, set, nil
}

func (s *Service) compile(rv *store.RuleVersion) (*rules.RuleSet, error) {
	cfg, c := s.checkYAML(rv.YAML)
	if cfg == nil {
		return nil, &CheckError{Check: c}
	}
	set, err := rules.Compile(cfg, s.caps)
	if err != nil {
		_, c := s.checkYAML(rv.YAML)
		return nil, &CheckError{Check: c}
	}
	return set.Named(VersionName(rv.Version)), nil
}

// ReplayRequest is POST …/replay: since is RFC 3339 or a duration ("168h").
type ReplayRequest struct {
	Since string `json:"since"`
}

// Share is the first-choice traffic of one rule × provider, old and new.
type Share struct {
	Rule     string `json:"rule"`
	Provider string `json:"provider"`
	Old      int    `json:"old"`
	New      int    `json:"new"`
}

// FeeDelta is the expected fees of one currency, old and new (minor units).
type FeeDelta struct {
	Currency payrouter.Currency `json:"currency"`
	Old      int64              `json:"old"`
	New      int64              `json:"new"`
	Delta    int64              `json:"delta"`
}

// ReplayResult is the outcome of a replay.
type ReplayResult struct {
	Since    time.Time         `json:"since"`
	From     string            `json:"from"` // the active version
	To       string            `json:"to"`
	Payments int               `json:"payments"`
	Changed  int               `json:"changed"`
	Shares   []Share           `json:"shares"`
	Fees     []FeeDelta        `json:"fees"`
	Rows     []rules.ReplayRow `json:"rows"` // fees per rule × provider × currency
	Moves    []rules.Move      `json:"moves"`
}

// Replay routes the payments created since r.Since through the active
// version and v and compares (viewer: it only computes).
func (s *Service) Replay(ctx context.Context, a Actor, v string, r ReplayRequest) (*ReplayResult, error) {
	if err := need(a, Viewer); err != nil {
		return nil, err
	}
	since, err := s.parseSince(r.Since)
	if err != nil {
		return nil, err
	}
	_, set, err := s.compiledVersion(ctx, v)
	if err != nil {
		return nil, err
	}
	rep := rules.NewReplay(s.c.Live.Load(), set)
	if err := s.c.Payments.ScanPayments(ctx, since, func(p *payrouter.Payment) error { rep.Add(p); return ctx.Err() }); err != nil {
		return nil, err
	}
	rr := rep.Report()
	out := &ReplayResult{Since: since, From: rr.OldVersion, To: rr.NewVersion, Payments: rr.Total, Changed: rr.Changed,
		Shares: []Share{}, Fees: []FeeDelta{}, Rows: rr.Rows, Moves: rr.Moves}
	fees := map[payrouter.Currency]*FeeDelta{}
	var curs []payrouter.Currency
	for _, row := range rr.Rows {
		out.Shares = append(out.Shares, Share{Rule: row.Rule, Provider: row.Provider, Old: row.Old.Count, New: row.New.Count})
		for side, m := range []map[payrouter.Currency]int64{row.Old.Fees, row.New.Fees} {
			for c, f := range m {
				fd := fees[c]
				if fd == nil {
					fd = &FeeDelta{Currency: c}
					fees[c] = fd
					curs = append(curs, c)
				}
				if side == 0 {
					fd.Old += f
				} else {
					fd.New += f
				}
			}
		}
	}
	sortCurrencies(curs)
	for _, c := range curs {
		fd := fees[c]
		fd.Delta = fd.New - fd.Old
		out.Fees = append(out.Fees, *fd)
	}
	return out, nil
}

func sortCurrencies(cs []payrouter.Currency) {
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && cs[j] < cs[j-1]; j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}

func (s *Service) parseSince(v string) (time.Time, error) {
	if v == "" {
		return s.c.Now().Add(-7 * 24 * time.Hour), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return s.c.Now().Add(-d), nil
	}
	if strings.HasSuffix(v, "d") {
		if n, err := strconv.Atoi(strings.TrimSuffix(v, "d")); err == nil && n > 0 {
			return s.c.Now().Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	return time.Time{}, payrouter.InvalidParam("since", "must be an RFC 3339 time or a duration such as 168h or 7d")
}

// ReasonRequest is the body of a mutation that needs only a reason.
type ReasonRequest struct {
	Reason string `json:"reason"`
}

// Activated is the outcome of an activation.
type Activated struct {
	Version  string `json:"version"`
	State    string `json:"state"`
	Previous string `json:"previous"`
}

// Activate makes v the active version on every instance sharing the store
// (admin); activating an older version is the rollback.
func (s *Service) Activate(ctx context.Context, a Actor, v string, reason string) (*Activated, error) {
	if err := need(a, Admin); err != nil {
		return nil, err
	}
	if err := needReason(reason); err != nil {
		return nil, err
	}
	if !s.c.RulesFromStore {
		return nil, payrouter.Errorf(payrouter.ErrInvalidState, "rules_source_file",
			"ops.rules_source is file: the config file's rules route; set it to store to activate versions")
	}
	rv, set, err := s.compiledVersion(ctx, v)
	if err != nil {
		return nil, err
	}
	s.syncMu.Lock()
	prev := s.c.Live.Load().Version()
	if err := s.c.Versions.ActivateRuleVersion(ctx, rv.Version, s.c.Now()); err != nil {
		s.syncMu.Unlock()
		return nil, err
	}
	s.apply(rv.Version, set)
	s.syncMu.Unlock()
	name := VersionName(rv.Version)
	if err := s.audit(ctx, a, "rules.activate", "rules/"+name, reason, map[string]string{"active": prev}, map[string]string{"active": name}); err != nil {
		return nil, err
	}
	return &Activated{Version: name, State: store.RuleActive, Previous: prev}, nil
}

func (s *Service) apply(n int64, set *rules.RuleSet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loaded = n
	s.c.Live.Swap(set)
	if s.shadow == n {
		s.shadow = 0
		s.c.Live.SetShadow(nil)
	}
}

// Shadow evaluates v beside the active version on live traffic (admin):
// decisions are recorded, never acted on.
func (s *Service) Shadow(ctx context.Context, a Actor, v string, reason string) (*ShadowReport, error) {
	if err := need(a, Admin); err != nil {
		return nil, err
	}
	if err := needReason(reason); err != nil {
		return nil, err
	}
	rv, set, err := s.compiledVersion(ctx, v)
	if err != nil {
		return nil, err
	}
	s.syncMu.Lock()
	if err := s.c.Versions.ShadowRuleVersion(ctx, rv.Version); err != nil {
		s.syncMu.Unlock()
		return nil, err
	}
	s.mu.Lock()
	prev := s.shadow
	s.shadow = rv.Version
	s.c.Shadow.Reset(set.Version())
	s.c.Live.SetShadow(set)
	s.mu.Unlock()
	s.syncMu.Unlock()
	before := map[string]any{"shadow": nil}
	if prev != 0 {
		before["shadow"] = VersionName(prev)
	}
	if err := s.audit(ctx, a, "rules.shadow", "rules/"+VersionName(rv.Version), reason, before, map[string]string{"shadow": VersionName(rv.Version)}); err != nil {
		return nil, err
	}
	rep := s.c.Shadow.Report()
	return &rep, nil
}

// ShadowReport returns what shadowing v has recorded on this instance.
func (s *Service) ShadowReport(ctx context.Context, a Actor, v string) (*ShadowReport, error) {
	if err := need(a, Viewer); err != nil {
		return nil, err
	}
	rv, err := s.version(ctx, v)
	if err != nil {
		return nil, err
	}
	rep := s.c.Shadow.Report()
	if rep.Version != VersionName(rv.Version) {
		rep = ShadowReport{Version: VersionName(rv.Version), Samples: []ShadowSample{}}
	}
	return &rep, nil
}

// Sync loads the store's active (and shadow) version into Live when it
// changed: what every instance runs every second or so, so an activation
// anywhere routes here within the poll interval. A version that no longer
// compiles here (a provider removed from this instance's config) is
// refused and logged; the live rules stay.
func (s *Service) Sync(ctx context.Context) error {
	if !s.c.RulesFromStore {
		return nil
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	active, shadow, err := s.c.Versions.ActiveRuleVersion(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	loaded, shadowing := s.loaded, s.shadow
	s.mu.Unlock()
	if active.Version != loaded {
		set, err := s.compile(active)
		if err != nil {
			return fmt.Errorf("ops: active rules %s do not compile here: %w", VersionName(active.Version), err)
		}
		s.apply(active.Version, set)
		s.c.Log.Info("rules version activated", "version", set.Version())
	}
	var want int64
	if shadow != nil {
		want = shadow.Version
	}
	if want != shadowing {
		var set *rules.RuleSet
		if shadow != nil {
			if set, err = s.compile(shadow); err != nil {
				return err
			}
		}
		s.mu.Lock()
		s.shadow = want
		if set != nil {
			s.c.Shadow.Reset(set.Version())
			s.c.Live.SetShadow(set)
		} else {
			s.c.Live.SetShadow(nil)
		}
		s.mu.Unlock()
	}
	return nil
}

// RunSync calls Sync every interval until ctx is done.
func (s *Service) RunSync(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Sync(ctx); err != nil && ctx.Err() == nil {
				s.c.Log.Warn("ops: rules sync", "err", err)
			}
		}
	}
}

// Seed stores the config file's rules as version 1 when the store has no
// version yet, then loads the active version: start-up with
// rules_source store. fileYAML is the whole config file; only its rules,
// default and fees sections are kept.
func (s *Service) Seed(ctx context.Context, fileYAML []byte) error {
	if !s.c.RulesFromStore {
		return nil
	}
	text, err := RulesSections(fileYAML)
	if err != nil {
		return err
	}
	if _, err := s.c.Versions.SeedRuleVersion(ctx, &store.RuleVersion{YAML: text, CreatedAt: s.c.Now(), CreatedBy: "config",
		Reason: "seeded from the config file"}); err != nil {
		return err
	}
	return s.Sync(ctx)
}

// RulesSections extracts the rules, default and fees sections of a config
// file as YAML of their own: the sections' own lines, verbatim (comments
// and layout kept), in file order.
func RulesSections(data []byte) (string, error) {
	text, _, err := RulesSectionsMapped(data)
	return text, err
}

// RulesSectionsMapped is RulesSections with a map from a line of the
// extracted text back to the line of data it came from, so that findings
// can name the file's own positions.
func RulesSectionsMapped(data []byte) (string, func(line int) int, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return "", nil, fmt.Errorf("ops: config file: %w", err)
	}
	ident := func(l int) int { return l }
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return "", ident, nil
	}
	top := doc.Content[0]
	lines := strings.SplitAfter(string(data), "\n")
	if top.Style&yaml.FlowStyle != 0 {
		// {rules: …, default: …} on one line: no line ranges to copy.
		return "", nil, errors.New("ops: config file: a flow-style top level is not supported; write one section per line")
	}
	var b strings.Builder
	var starts [][2]int // [extracted first line, original first line]
	out := 1
	for i := 0; i+1 < len(top.Content); i += 2 {
		k := top.Content[i]
		switch k.Value {
		case "rules", "default", "fees":
		default:
			continue
		}
		from := k.Line // 1-based
		to := len(lines)
		if i+2 < len(top.Content) {
			to = top.Content[i+2].Line - 1
		}
		starts = append(starts, [2]int{out, from})
		for l := from; l <= to && l <= len(lines); l++ {
			b.WriteString(lines[l-1])
			out++
		}
		if !strings.HasSuffix(b.String(), "\n") {
			b.WriteString("\n")
		}
	}
	back := func(line int) int {
		orig := line
		for _, st := range starts {
			if line >= st[0] {
				orig = st[1] + line - st[0]
			}
		}
		return orig
	}
	return b.String(), back, nil
}

// CasesRequest is POST …/test: a cases file (the `payrouter rules test`
// format) as text.
type CasesRequest struct {
	Cases string `json:"cases"`
}

// CaseOutcome is one case's result.
type CaseOutcome struct {
	Name       string   `json:"name"`
	Line       int      `json:"line"`
	Pass       bool     `json:"pass"`
	Rule       string   `json:"rule"`
	Candidates []string `json:"candidates"`
	Failures   []string `json:"failures,omitempty"`
}

// CasesResult is the outcome of running cases against a version.
type CasesResult struct {
	Version string        `json:"version"`
	Passed  int           `json:"passed"`
	Failed  int           `json:"failed"`
	Cases   []CaseOutcome `json:"cases"`
}

// TestCases runs routing cases against version v (viewer: it only
// computes). Cases that do not parse are a *CheckError naming line:col.
func (s *Service) TestCases(ctx context.Context, a Actor, v string, r CasesRequest) (*CasesResult, error) {
	if err := need(a, Viewer); err != nil {
		return nil, err
	}
	_, set, err := s.compiledVersion(ctx, v)
	if err != nil {
		return nil, err
	}
	cases, err := rules.ParseCases("cases.yaml", []byte(r.Cases))
	if err != nil {
		var re *rules.Error
		if errors.As(err, &re) {
			c := Check{Errors: []Problem{}, Warnings: []Problem{}}
			for _, f := range re.Findings {
				c.Errors = append(c.Errors, Problem{Line: f.Line, Col: f.Col, Message: f.Message})
			}
			return nil, &CheckError{Check: c}
		}
		return nil, payrouter.InvalidParam("cases", "%v", err)
	}
	out := &CasesResult{Version: set.Version(), Cases: []CaseOutcome{}}
	for _, res := range rules.RunCases(set, cases) {
		out.Cases = append(out.Cases, CaseOutcome{Name: res.Case.Name, Line: res.Case.Pos.Line, Pass: res.Pass,
			Rule: res.Got.Rule, Candidates: rules.CandidateNames(&res.Got), Failures: res.Failures})
		if res.Pass {
			out.Passed++
		} else {
			out.Failed++
		}
	}
	return out, nil
}
