// Package rulescmd implements the routing-rules subcommands of payrouter:
// `rules check`, `rules test`, `rules diff` and `route explain`. Each
// command is a function taking its arguments (after the subcommand name),
// output streams and Deps, and returning the process exit code:
// 0 success, 1 the command's verdict is negative (findings with errors,
// failing cases), 2 usage or I/O error. cmd/payrouter wires them.
package rulescmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/payrouter/payrouter/internal/cliflag"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
	"github.com/payrouter/payrouter/rules"
)

// PaymentScanner is the part of store.Store a replay needs.
type PaymentScanner interface {
	// ScanPayments calls fn for every payment created at or after since,
	// oldest first.
	ScanPayments(ctx context.Context, since time.Time, fn func(*payrouter.Payment) error) error
}

// Deps are what the commands need from the wiring.
type Deps struct {
	// Caps returns the capabilities of the providers configured in the
	// config file at cfgPath, by provider name. Nil: provider checks are
	// skipped and every provider is assumed capable.
	Caps func(cfgPath string) (map[string]providers.Capabilities, error)
	// OpenPayments opens the store configured in cfgPath; the func closes
	// it. Needed by `rules diff --replay` only.
	OpenPayments func(ctx context.Context, cfgPath string) (PaymentScanner, func(), error)
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Approvals reads the adaptive strategy's live counters for the config
	// at cfgPath (nil, nil: none to read). Used by `route explain`.
	Approvals func(ctx context.Context, cfgPath string) (rules.Approvals, error)
}

func (d Deps) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d Deps) caps(cfgPath string) (map[string]providers.Capabilities, error) {
	if d.Caps == nil {
		return nil, nil
	}
	c, err := d.Caps(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("provider capabilities from %s: %w", cfgPath, err)
	}
	return c, nil
}

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func newFlags(name string, stderr io.Writer, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: payrouter %s\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// loadRules reads and parses a rules file; a parse error is printed as one
// line per problem.
func loadRules(path string, stderr io.Writer) (*rules.Config, int) {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "payrouter: %v\n", err)
		return nil, exitUsage
	}
	cfg, err := rules.Parse(path, data)
	if err != nil {
		printError(stderr, err)
		return nil, exitFail
	}
	return cfg, exitOK
}

func printError(w io.Writer, err error) {
	var e *rules.Error
	if errors.As(err, &e) {
		for _, f := range e.Findings {
			fmt.Fprintln(w, f)
		}
		return
	}
	fmt.Fprintf(w, "payrouter: %v\n", err)
}

// Check is `payrouter rules check [--json] config.yaml`: one line per
// finding (`file:line:col: severity: rule "x": message`) on stdout, a
// summary on stderr; exit 1 when any finding is an error.
func Check(ctx context.Context, args []string, stdout, stderr io.Writer, deps Deps) int {
	fs := newFlags("rules check", stderr, "rules check [--json] config.yaml")
	asJSON := fs.Bool("json", false, "print the findings as JSON")
	pos, err := cliflag.Parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0 // --help: the usage is printed
	}
	if err != nil || len(pos) != 1 {
		if err == nil {
			fs.Usage()
		}
		return exitUsage
	}
	path := pos[0]
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "payrouter: %v\n", err)
		return exitUsage
	}
	var findings []rules.Finding
	cfg, err := rules.Parse(path, data)
	var perr *rules.Error
	switch {
	case errors.As(err, &perr):
		findings = perr.Findings
	case err != nil:
		fmt.Fprintf(stderr, "payrouter: %v\n", err)
		return exitUsage
	default:
		caps, err := deps.caps(path)
		if err != nil {
			fmt.Fprintf(stderr, "payrouter: %v\n", err)
			return exitUsage
		}
		findings = rules.Check(cfg, caps)
	}
	errs, warns := 0, 0
	for _, f := range findings {
		if f.Severity == rules.SeverityError {
			errs++
		} else {
			warns++
		}
	}
	if *asJSON {
		if findings == nil {
			findings = []rules.Finding{}
		}
		writeJSON(stdout, findings)
	} else {
		for _, f := range findings {
			fmt.Fprintln(stdout, f)
		}
	}
	if cfg != nil && errs == 0 {
		if rs, err := rules.Compile(cfg, nil); err == nil {
			fmt.Fprintf(stderr, "%s: %d rules%s, version %s: %s, %s\n", path, len(cfg.Rules), plusDefault(cfg), rs.Version(), plural(errs, "error"), plural(warns, "warning"))
		}
	} else {
		fmt.Fprintf(stderr, "%s: %s, %s\n", path, plural(errs, "error"), plural(warns, "warning"))
	}
	if errs > 0 {
		return exitFail
	}
	return exitOK
}

func plusDefault(cfg *rules.Config) string {
	if cfg.Default != nil {
		return " and a default"
	}
	return ", no default"
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// compile loads, parses and compiles a rules file with the capabilities
// of the providers configured in capsPath.
func compile(path, capsPath string, deps Deps, stderr io.Writer) (*rules.RuleSet, int) {
	cfg, code := loadRules(path, stderr)
	if code != exitOK {
		return nil, code
	}
	caps, err := deps.caps(capsPath)
	if err != nil {
		fmt.Fprintf(stderr, "payrouter: %v\n", err)
		return nil, exitUsage
	}
	rs, err := rules.Compile(cfg, caps)
	if err != nil {
		printError(stderr, err)
		return nil, exitFail
	}
	return rs, exitOK
}

// Test is `payrouter rules test config.yaml cases.yaml`: it routes every
// case and prints a pass/fail table; exit 1 when any case fails.
func Test(ctx context.Context, args []string, stdout, stderr io.Writer, deps Deps) int {
	fs := newFlags("rules test", stderr, "rules test config.yaml cases.yaml")
	pos, err := cliflag.Parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0 // --help: the usage is printed
	}
	if err != nil || len(pos) != 2 {
		if err == nil {
			fs.Usage()
		}
		return exitUsage
	}
	rs, code := compile(pos[0], pos[0], deps, stderr)
	if code != exitOK {
		return code
	}
	data, err := os.ReadFile(pos[1])
	if err != nil {
		fmt.Fprintf(stderr, "payrouter: %v\n", err)
		return exitUsage
	}
	cases, err := rules.ParseCases(pos[1], data)
	if err != nil {
		printError(stderr, err)
		return exitFail
	}
	results := rules.RunCases(rs, cases)
	tw := tabwriter.NewWriter(newTrimmed(stdout), 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RESULT\tCASE\tLINE\tRULE\tPROVIDERS\tDETAIL")
	failed := 0
	for _, r := range results {
		verdict := "PASS"
		if !r.Pass {
			verdict = "FAIL"
			failed++
		}
		provs := strings.Join(rules.CandidateNames(&r.Got), ", ")
		if provs == "" {
			provs = "-"
		}
		rule := r.Got.Rule
		if rule == "" {
			rule = "(none)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", verdict, r.Case.Name, r.Case.Pos.Line, rule, provs, strings.Join(r.Failures, "; "))
	}
	_ = tw.Flush()
	fmt.Fprintf(stdout, "%d passed, %d failed (rules version %s)\n", len(results)-failed, failed, rs.Version())
	if failed > 0 {
		return exitFail
	}
	return exitOK
}

// multiFlag collects repeated key=value flags.
type multiFlag struct {
	m    map[string]string
	name string
}

func (f *multiFlag) String() string { return "" }

func (f *multiFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	if f.m == nil {
		f.m = map[string]string{}
	}
	f.m[k] = v
	return nil
}

// Explain is `payrouter route explain --config config.yaml --currency IDR
// --method gopay --amount 150000 [--country ID] [--merchant demo]
// [--metadata k=v]… [--token provider=tok]… [--capture manual]
// [--provider pin] [--id pay_x] [--json]`: the matched rule, the rules
// considered, the candidates with expected fees and the dropped ones with
// why. The amount is an integer in minor units of the currency.
func Explain(ctx context.Context, args []string, stdout, stderr io.Writer, deps Deps) int {
	fs := newFlags("route explain", stderr, "route explain --config config.yaml --currency IDR --method gopay --amount 150000 [flags]")
	cfgPath := fs.String("config", "config.yaml", "config file with the rules")
	currency := fs.String("currency", "", "payment currency (IDR, USD, …)")
	method := fs.String("method", "", "payment method (card, gopay, ovo, dana, shopeepay, qris, bank_transfer)")
	amount := fs.String("amount", "", "amount in minor units of the currency (IDR 150000 = Rp 150.000; USD 1000 = $10.00)")
	country := fs.String("country", "", "customer country, ISO 3166-1 alpha-2")
	merchant := fs.String("merchant", "", "merchant id")
	id := fs.String("id", "pay_explain", "payment id (weighted rules hash it)")
	capture := fs.String("capture", "automatic", "capture mode: automatic or manual")
	pin := fs.String("provider", "", "pin one provider")
	asJSON := fs.Bool("json", false, "print the explanation as JSON")
	meta := &multiFlag{name: "metadata"}
	tokens := &multiFlag{name: "token"}
	fs.Var(meta, "metadata", "metadata key=value (repeatable)")
	fs.Var(tokens, "token", "card token provider=token (repeatable)")
	pos, err := cliflag.Parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0 // --help: the usage is printed
	}
	if err != nil {
		return exitUsage
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "payrouter: unexpected argument %q\n", pos[0])
		fs.Usage()
		return exitUsage
	}
	in := rules.Input{PaymentID: *id, MerchantID: *merchant, Country: strings.ToUpper(*country), Metadata: meta.m, Tokens: tokens.m, Pinned: *pin}
	var problems []string
	if c, err := payrouter.ParseCurrency(*currency); err != nil {
		problems = append(problems, "--currency: "+err.Error())
	} else {
		in.Currency = c
	}
	if m := payrouter.Method(*method); !m.Valid() {
		problems = append(problems, fmt.Sprintf("--method: unknown method %q", *method))
	} else {
		in.Method = m
	}
	if n, err := payrouter.ParseAmount([]byte(*amount)); err != nil {
		problems = append(problems, "--amount "+err.Error())
	} else {
		in.Amount = n
	}
	switch c := payrouter.CaptureMode(*capture); c {
	case payrouter.CaptureAutomatic, payrouter.CaptureManual:
		in.Capture = c
	default:
		problems = append(problems, fmt.Sprintf("--capture must be automatic or manual, got %q", *capture))
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintf(stderr, "payrouter: %s\n", p)
		}
		return exitUsage
	}
	rs, code := compile(*cfgPath, *cfgPath, deps, stderr)
	if code != exitOK {
		return code
	}
	if deps.Approvals != nil {
		ap, err := deps.Approvals(ctx, *cfgPath)
		if err != nil {
			// Still explain: the order without live figures.
			fmt.Fprintf(stderr, "payrouter: no live adaptive scores: %v\n", err)
		}
		in.Approvals = ap
	}
	e := rs.Explain(&in)
	if *asJSON {
		writeJSON(stdout, e)
		return exitOK
	}
	printExplanation(stdout, &e)
	return exitOK
}

func printExplanation(w io.Writer, e *rules.Explanation) {
	fmt.Fprintf(w, "payment:    %s %s by %s", e.Currency, payrouter.FormatDecimal(e.Amount, e.Currency.Exponent()), e.Method)
	if e.Capture == payrouter.CaptureManual {
		fmt.Fprint(w, ", manual capture")
	}
	if e.Pinned != "" {
		fmt.Fprintf(w, ", pinned to %s", e.Pinned)
	}
	fmt.Fprintln(w)
	rule := e.Rule
	if rule == "" {
		rule = "(none)"
	}
	fmt.Fprintf(w, "rule:       %s (%s, rules version %s)\n", rule, orDash(e.Strategy), e.RulesVersion)
	fmt.Fprintf(w, "reason:     %s\n", e.Reason)
	fmt.Fprintln(w, "considered:")
	tw := tabwriter.NewWriter(newTrimmed(w), 0, 0, 2, ' ', 0)
	for _, c := range e.Considered {
		mark := "no "
		if c.Matched {
			mark = "YES"
		}
		fmt.Fprintf(tw, "  %s\t%s\tline %d\t%s\n", mark, c.Rule, c.Line, c.Why)
	}
	_ = tw.Flush()
	if e.NotShown > 0 {
		fmt.Fprintf(w, "  … and %d more rules that did not match\n", e.NotShown)
	}
	fmt.Fprintln(w, "candidates:")
	if len(e.Candidates) == 0 {
		fmt.Fprintln(w, "  none: the payment would fail with no_route")
	}
	for i, c := range e.Candidates {
		fee := "expected fee unknown (no fee entry)"
		if c.ExpectedFee != nil {
			fee = "expected fee " + money(e.Currency, *c.ExpectedFee)
		}
		fmt.Fprintf(tw, "  %d.\t%s\t%s", i+1, c.Provider, fee)
		if c.Weight > 0 {
			fmt.Fprintf(tw, "\tweight %d", c.Weight)
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
	if len(e.Scores) > 0 {
		fmt.Fprintln(w, "scores (adaptive, live):")
		for _, s := range e.Scores {
			rate := "no samples"
			if s.Attempts > 0 {
				rate = fmt.Sprintf("%d%% approved of %d", s.Approved*100/s.Attempts, s.Attempts)
			}
			fmt.Fprintf(tw, "  %s\t%s\n", s.Provider, rate)
		}
		_ = tw.Flush()
	}
	if len(e.Dropped) > 0 {
		fmt.Fprintln(w, "dropped:")
		for _, d := range e.Dropped {
			fmt.Fprintf(tw, "  %s\t%s\n", d.Provider, d.Why)
		}
		_ = tw.Flush()
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// money renders minor units as "IDR 3000" or "USD 3.20".
func money(c payrouter.Currency, minor int64) string {
	exp := 0
	if c.Valid() {
		exp = c.Exponent()
	}
	return string(c) + " " + payrouter.FormatDecimal(minor, exp)
}

// Diff is `payrouter rules diff old.yaml new.yaml [--replay] [--config
// config.yaml] [--since 168h] [--json]`. Without --replay it lists the
// structural changes. With --replay it routes every payment stored since
// now-since (store and providers from --config, default new.yaml) through
// both rule sets and prints, per rule and provider, the traffic and
// expected fees per currency, old vs new.
func Diff(ctx context.Context, args []string, stdout, stderr io.Writer, deps Deps) int {
	fs := newFlags("rules diff", stderr, "rules diff old.yaml new.yaml [--replay [--config config.yaml] [--since 168h]] [--json]")
	replay := fs.Bool("replay", false, "replay stored payments through both rule sets")
	cfgPath := fs.String("config", "", "config file with the store and providers (default: new.yaml)")
	since := fs.Duration("since", 168*time.Hour, "replay payments created in this window before now")
	asJSON := fs.Bool("json", false, "print as JSON")
	pos, err := cliflag.Parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0 // --help: the usage is printed
	}
	if err != nil || len(pos) != 2 {
		if err == nil {
			fs.Usage()
		}
		return exitUsage
	}
	if *cfgPath == "" {
		*cfgPath = pos[1]
	}
	if !*replay {
		oldCfg, code := loadRules(pos[0], stderr)
		if code != exitOK {
			return code
		}
		newCfg, code := loadRules(pos[1], stderr)
		if code != exitOK {
			return code
		}
		changes := rules.Diff(oldCfg, newCfg)
		if *asJSON {
			if changes == nil {
				changes = []rules.Change{}
			}
			writeJSON(stdout, changes)
			return exitOK
		}
		oldRS, err1 := rules.Compile(oldCfg, nil)
		newRS, err2 := rules.Compile(newCfg, nil)
		if err1 == nil && err2 == nil {
			fmt.Fprintf(stdout, "rules version %s → %s\n", oldRS.Version(), newRS.Version())
		}
		if len(changes) == 0 {
			fmt.Fprintln(stdout, "no routing changes")
		}
		for _, c := range changes {
			fmt.Fprintln(stdout, c)
		}
		return exitOK
	}
	if *since <= 0 {
		fmt.Fprintln(stderr, "payrouter: --since must be positive")
		return exitUsage
	}
	oldRS, code := compile(pos[0], *cfgPath, deps, stderr)
	if code != exitOK {
		return code
	}
	newRS, code := compile(pos[1], *cfgPath, deps, stderr)
	if code != exitOK {
		return code
	}
	if deps.OpenPayments == nil {
		fmt.Fprintln(stderr, "payrouter: --replay needs a store, and none is wired")
		return exitUsage
	}
	scanner, closeFn, err := deps.OpenPayments(ctx, *cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "payrouter: open store from %s: %v\n", *cfgPath, err)
		return exitUsage
	}
	defer closeFn()
	now := deps.now()
	from := now.Add(-*since)
	rp := rules.NewReplay(oldRS, newRS)
	prog := newProgress(stderr, from, now)
	err = scanner.ScanPayments(ctx, from, func(p *payrouter.Payment) error {
		rp.Add(p)
		prog.update(rp.Total(), p.CreatedAt)
		return ctx.Err()
	})
	prog.finish(rp.Total())
	if err != nil {
		fmt.Fprintf(stderr, "payrouter: replay: %v\n", err)
		return exitUsage
	}
	rep := rp.Report()
	if *asJSON {
		writeJSON(stdout, rep)
		return exitOK
	}
	printReplay(stdout, &rep, from)
	return exitOK
}

func share(n, total int) string {
	if total == 0 {
		return "-"
	}
	tenths := (n*1000 + total/2) / total
	return fmt.Sprintf("%d.%d%%", tenths/10, tenths%10)
}

func signed(n int64) string {
	if n > 0 {
		return "+" + strconv.FormatInt(n, 10)
	}
	return strconv.FormatInt(n, 10)
}

func signedMoney(c payrouter.Currency, n int64) string {
	s := money(c, n)
	if n > 0 {
		return string(c) + " +" + strings.TrimPrefix(s, string(c)+" ")
	}
	return s
}

func printReplay(w io.Writer, rep *rules.ReplayReport, from time.Time) {
	fmt.Fprintf(w, "replayed %d payments created since %s (rules %s → %s)\n", rep.Total, from.UTC().Format(time.RFC3339), rep.OldVersion, rep.NewVersion)
	fmt.Fprintf(w, "%d payments (%s) would change rule or first provider\n\n", rep.Changed, share(rep.Changed, rep.Total))
	if rep.Total == 0 {
		return
	}
	// Names left-aligned in one padded cell, numbers right-aligned.
	wr, wp := len("RULE"), len("PROVIDER")
	for _, r := range rep.Rows {
		wr, wp = max(wr, len(r.Rule)), max(wp, len(r.Provider))
	}
	key := func(a, b string) string { return fmt.Sprintf("%-*s  %-*s", wr, a, wp, b) }
	tw := tabwriter.NewWriter(newTrimmed(w), 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tOLD\tSHARE\tNEW\tSHARE\tΔ\t\n", key("RULE", "PROVIDER"))
	for _, r := range rep.Rows {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t\n", key(r.Rule, r.Provider), r.Old.Count, share(r.Old.Count, rep.Total),
			r.New.Count, share(r.New.Count, rep.Total), signed(int64(r.New.Count-r.Old.Count)))
	}
	_ = tw.Flush()

	fmt.Fprintln(w, "\nexpected fees of the first provider, per currency (UNKNOWN: payments without a fee entry):")
	fmt.Fprintf(tw, "%s\tCURRENCY\tOLD FEES\tNEW FEES\tΔ\tUNKNOWN OLD/NEW\t\n", key("RULE", "PROVIDER"))
	type tot struct{ old, new int64 }
	totals := map[payrouter.Currency]*tot{}
	for _, r := range rep.Rows {
		curs := map[payrouter.Currency]bool{}
		for c := range r.Old.Fees {
			curs[c] = true
		}
		for c := range r.New.Fees {
			curs[c] = true
		}
		list := make([]string, 0, len(curs))
		for c := range curs {
			list = append(list, string(c))
		}
		sort.Strings(list)
		for _, cs := range list {
			c := payrouter.Currency(cs)
			o, n := r.Old.Fees[c], r.New.Fees[c]
			if totals[c] == nil {
				totals[c] = &tot{}
			}
			totals[c].old += o
			totals[c].new += n
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d\t\n", key(r.Rule, r.Provider), c, money(c, o), money(c, n), signedMoney(c, n-o), r.Old.UnknownFee, r.New.UnknownFee)
		}
		if len(list) == 0 && (r.Old.UnknownFee > 0 || r.New.UnknownFee > 0) {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t%d/%d\t\n", key(r.Rule, r.Provider), r.Old.UnknownFee, r.New.UnknownFee)
		}
	}
	curs := make([]string, 0, len(totals))
	for c := range totals {
		curs = append(curs, string(c))
	}
	sort.Strings(curs)
	for _, cs := range curs {
		c := payrouter.Currency(cs)
		t := totals[c]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\t\n", key("TOTAL", ""), c, money(c, t.old), money(c, t.new), signedMoney(c, t.new-t.old))
	}
	_ = tw.Flush()

	if len(rep.Moves) > 0 {
		fmt.Fprintln(w, "\nlargest moves (old rule/provider → new rule/provider):")
		mw := tabwriter.NewWriter(newTrimmed(w), 0, 0, 2, ' ', 0)
		for i, m := range rep.Moves {
			if i == 10 {
				fmt.Fprintf(mw, "  … %d more\n", len(rep.Moves)-10)
				break
			}
			fmt.Fprintf(mw, "  %s/%s\t→ %s/%s\t%d\n", m.From.Rule, m.From.Provider, m.To.Rule, m.To.Provider, m.Count)
		}
		_ = mw.Flush()
	}
}

// progress draws a progress bar on stderr once a replay passes
// progressFrom payments. Payments come oldest first, so the position in
// the time window is the fraction done, without counting first. On a
// terminal the bar is redrawn in place at most every 100 ms; otherwise a
// line is written at most every 5 s.
type progress struct {
	w        io.Writer
	tty      bool
	from, to time.Time
	last     time.Time
	shown    bool
	every    time.Duration
	minCount int
}

const progressFrom = 10_000

func newProgress(w io.Writer, from, to time.Time) *progress {
	p := &progress{w: w, tty: isTerminal(w), from: from, to: to, minCount: progressFrom, every: 5 * time.Second}
	if p.tty {
		p.every = 100 * time.Millisecond
	}
	return p
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *progress) update(n int, at time.Time) {
	if n < p.minCount || n%1024 != 0 {
		return
	}
	now := time.Now()
	if p.shown && now.Sub(p.last) < p.every {
		return
	}
	p.last, p.shown = now, true
	p.draw(n, at)
}

func (p *progress) draw(n int, at time.Time) {
	pct := 100
	if span := p.to.Sub(p.from); span > 0 && at.Before(p.to) {
		pct = int(int64(at.Sub(p.from)) * 100 / int64(span))
		pct = max(0, min(pct, 100))
	}
	const width = 30
	bar := strings.Repeat("#", pct*width/100) + strings.Repeat(".", width-pct*width/100)
	if p.tty {
		fmt.Fprintf(p.w, "\r[%s] %3d%% %d payments", bar, pct, n)
	} else {
		fmt.Fprintf(p.w, "replay: [%s] %3d%% %d payments\n", bar, pct, n)
	}
}

func (p *progress) finish(n int) {
	if !p.shown {
		return
	}
	p.draw(n, p.to)
	if p.tty {
		fmt.Fprintln(p.w)
	}
}

// trimmed drops the trailing spaces tabwriter pads short last cells with:
// it holds a line back until its newline arrives. Every table line ends
// with a newline, so nothing is left pending after a Flush.
type trimmed struct {
	w       io.Writer
	pending []byte
}

func newTrimmed(w io.Writer) *trimmed { return &trimmed{w: w} }

func (t *trimmed) Write(p []byte) (int, error) {
	t.pending = append(t.pending, p...)
	for {
		i := bytes.IndexByte(t.pending, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := append(bytes.TrimRight(t.pending[:i], " "), '\n')
		if _, err := t.w.Write(line); err != nil {
			return 0, err
		}
		t.pending = t.pending[i+1:]
	}
}
