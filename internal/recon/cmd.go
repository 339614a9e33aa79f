package recon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// Env is what the command needs from the wiring: the ledger and the
// configured providers' settlement listers (a provider whose adapter has
// no SettlementLister is in Configured but not in Listers).
type Env struct {
	Ledger     Ledger
	Listers    map[string]providers.SettlementLister
	Configured []string
	// Formats are the dashboard export formats of the providers whose
	// settlements come as files (by provider name); a --settlements file
	// whose header is that format's is read with it, else as the generic CSV.
	Formats map[string]Format
	// Runs keeps the runs of --save (the store); nil refuses --save.
	Runs RunStore
	// Fee is the routing fee model (Options.Fee).
	Fee func(provider string, method payrouter.Method, cur payrouter.Currency, amount int64) (int64, bool)
}

// Deps opens an Env for a config file; server is the base URL of a running
// sandbox instance whose simulators hold the settlements ("" = derive it
// from the config). close releases the store.
type Deps struct {
	Open func(ctx context.Context, configPath, server string) (env *Env, close func(), err error)
	Now  func() time.Time
}

const cmdUsage = `usage: payrouter reconcile [flags]

Reconciles provider settlements (API, or CSV with --settlements) against the
ledger. Prints a summary per provider × currency; --out writes report.csv and
report.json. Exit status: 0 clean, 1 discrepancies, 2 usage or run error.

`

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// Command runs `payrouter reconcile`. It returns the exit status: 0 when
// every line reconciles within the tolerance, 1 when some does not, 2 for
// bad flags or inputs and when settlements or the ledger cannot be read.
func Command(ctx context.Context, args []string, stdout, stderr io.Writer, deps Deps) int {
	now := time.Now
	if deps.Now != nil {
		now = deps.Now
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "reconcile: %v\n", err)
		return 2
	}
	c, code, err := parseCommand(args, stderr, now())
	if c == nil {
		if err != nil {
			return fail(err)
		}
		return code
	}
	env, closeEnv, err := deps.Open(ctx, c.configPath, c.server)
	if err != nil {
		return fail(err)
	}
	defer closeEnv()

	selected, err := c.selectProviders(env)
	if err != nil {
		return fail(err)
	}
	entries, listers, reconciled, err := c.sources(env, selected, stderr)
	if err != nil {
		return fail(err)
	}
	progress := func(format string, args ...any) {
		if isTerminal(stderr) {
			fmt.Fprintf(stderr, format, args...)
		}
	}
	for _, n := range sortedKeys(listers) {
		progress("reconcile: %s: fetching settlements… ", n)
		api, err := Fetch(ctx, map[string]providers.SettlementLister{n: listers[n]}, c.from, c.to)
		if err != nil {
			progress("failed\n")
			return fail(err)
		}
		progress("%d lines\n", len(api))
		entries = append(entries, api...)
	}
	opts := Options{From: c.from, To: c.to, Lookback: c.lookback, SettleAfter: c.settleAfter,
		Tolerance: c.tolerance, RunTolerance: c.runTolerance, Providers: reconciled, Fee: env.Fee}
	if c.save {
		if env.Runs == nil {
			return fail(errors.New("--save: no store to keep runs in"))
		}
		if err := c.saveRuns(ctx, env, entries, reconciled, progress, stdout, now); err != nil {
			return fail(err)
		}
	}
	rep, err := Run(ctx, env.Ledger, entries, opts, now())
	if err != nil {
		return fail(err)
	}
	if err := rep.WriteSummary(stdout); err != nil {
		return fail(err)
	}
	if c.out != "" {
		if err := rep.WriteFiles(c.out); err != nil {
			return fail(err)
		}
	}
	issues := rep.Discrepancies
	if len(c.bank) > 0 {
		var lines []BankLine
		for _, path := range c.bank {
			ls, err := readBank(path)
			if err != nil {
				return fail(err)
			}
			lines = append(lines, ls...)
		}
		pr := MatchPayouts(Payouts(entries), lines, c.bankWindow)
		fmt.Fprintln(stdout, "\npayouts ↔ bank:")
		if err := pr.WriteSummary(stdout); err != nil {
			return fail(err)
		}
		if c.out != "" {
			if err := writeFile(filepath.Join(c.out, "payouts.csv"), pr.WriteCSV); err != nil {
				return fail(err)
			}
		}
		issues += pr.Discrepancies()
	}
	if issues > 0 {
		return 1
	}
	return 0
}

// command is a parsed and checked `payrouter reconcile` command line.
type command struct {
	configPath, server, out string
	from, to                time.Time
	provs                   []string
	csvFiles                map[string]string // provider → CSV path
	minor                   bool
	settleAfter, lookback   time.Duration
	tolerance               int64
	save                    bool
	runTolerance            int64
	bank                    []string
	bankWindow              int
}

// parseCommand parses args at t0. A nil command ends the command with code
// (flag errors and -h are reported by the flag set) or with err (a bad
// value).
func parseCommand(args []string, stderr io.Writer, t0 time.Time) (*command, int, error) {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, cmdUsage); fs.PrintDefaults() }
	configPath := fs.String("config", "config.yaml", "config file")
	fromS := fs.String("from", "168h", "window start: RFC 3339 time, or a duration before now")
	toS := fs.String("to", "0s", "window end (exclusive): RFC 3339 time, or a duration before now")
	var provs, files multiFlag
	fs.Var(&provs, "provider", "reconcile this provider (repeatable; default: every provider with a settlement source)")
	fs.Var(&files, "settlements", "provider=file.csv: read that provider's settlements from a CSV file instead of its API (repeatable)")
	minor := fs.Bool("minor-units", false, "CSV amounts are integer minor units instead of major-unit decimals")
	settleAfter := fs.Duration("settle-after", 72*time.Hour, "a captured payment older than this must have settled")
	lookback := fs.Duration("lookback", 30*24*time.Hour, "also join settlements to payments created this long before --from")
	tol := fs.Int64("tolerance", 0, "minor units per line within which amounts and fees count as matched")
	runTol := fs.Int64("run-tolerance", 0, "minor units the per-line tolerance may absorb in total (0: no bound)")
	out := fs.String("out", "", "directory for report.csv and report.json")
	var bank multiFlag
	fs.Var(&bank, "bank", "bank statement (CAMT.053 .xml, or CSV booking_date,amount,currency,reference): match provider payouts to its credits (repeatable)")
	bankWindow := fs.Int("bank-window", 5, "days after a payout date within which a credit of its amount counts as that payout")
	save := fs.Bool("save", false, "keep one run per provider in the store (what the ops API lists); the same provider and period again is the same run")
	server := fs.String("server", "", "sandbox: base URL of the running payrouter whose simulators to ask (default from server.listen)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, 0, nil
		}
		return nil, 2, nil
	}
	if fs.NArg() > 0 {
		return nil, 2, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c := &command{configPath: *configPath, server: *server, out: *out, provs: provs, minor: *minor,
		settleAfter: *settleAfter, lookback: *lookback, tolerance: *tol, csvFiles: map[string]string{}, save: *save, runTolerance: *runTol, bank: bank, bankWindow: *bankWindow}
	var err error
	if c.from, err = parseWhen(*fromS, t0); err != nil {
		return nil, 2, fmt.Errorf("--from: %v", err)
	}
	if c.to, err = parseWhen(*toS, t0); err != nil {
		return nil, 2, fmt.Errorf("--to: %v", err)
	}
	if !c.from.Before(c.to) {
		return nil, 2, fmt.Errorf("--from %s is not before --to %s", c.from.Format(time.RFC3339), c.to.Format(time.RFC3339))
	}
	if c.tolerance < 0 || c.runTolerance < 0 || c.settleAfter < 0 || c.lookback < 0 {
		return nil, 2, errors.New("--tolerance, --run-tolerance, --settle-after and --lookback must not be negative")
	}
	for _, f := range files {
		name, path, ok := strings.Cut(f, "=")
		if !ok || name == "" || path == "" {
			return nil, 2, fmt.Errorf("--settlements %q: want provider=file.csv", f)
		}
		if _, dup := c.csvFiles[name]; dup {
			return nil, 2, fmt.Errorf("--settlements: %s given twice", name)
		}
		c.csvFiles[name] = path
	}
	return c, 0, nil
}

// selectProviders is --provider, or by default every provider given a CSV
// file, or else every configured provider whose API lists settlements;
// sorted.
func (c *command) selectProviders(env *Env) ([]string, error) {
	selected := slices.Clone(c.provs)
	if len(selected) == 0 {
		if len(c.csvFiles) > 0 {
			for n := range c.csvFiles {
				selected = append(selected, n)
			}
		} else {
			// Every configured provider: one without a source is an error
			// (sources), never silently left out.
			selected = append(selected, env.Configured...)
		}
	}
	sort.Strings(selected)
	for n := range c.csvFiles {
		if !slices.Contains(selected, n) {
			return nil, fmt.Errorf("--settlements %s: provider not selected by --provider", n)
		}
	}
	return selected, nil
}

// sources reads the CSV files of the selected providers and picks the
// settlement APIs of the others; reconciled are the providers that have a
// source (a configured provider without one is skipped with a note).
func (c *command) sources(env *Env, selected []string, stderr io.Writer) (entries []Entry, listers map[string]providers.SettlementLister, reconciled []string, err error) {
	listers = map[string]providers.SettlementLister{}
	for _, n := range selected {
		if path, ok := c.csvFiles[n]; ok {
			es, skipped, err := readCSV(path, n, env.Formats[n], c.minor, c.from, c.to)
			if err != nil {
				return nil, nil, nil, err
			}
			if skipped > 0 {
				fmt.Fprintf(stderr, "reconcile: %s: %d rows settled outside the window were skipped\n", path, skipped)
			}
			entries = append(entries, es...)
			reconciled = append(reconciled, n)
			continue
		}
		l := env.Listers[n]
		if l == nil {
			if contains(env.Configured, n) {
				return nil, nil, nil, fmt.Errorf("%s: no settlement source: give --settlements %s=file.csv (its dashboard export)", n, n)
			}
			return nil, nil, nil, fmt.Errorf("--provider %s: not a configured provider (have %s)", n, strings.Join(env.Configured, ", "))
		}
		listers[n] = l
		reconciled = append(reconciled, n)
	}
	if len(reconciled) == 0 {
		return nil, nil, nil, errors.New("no provider to reconcile: give --provider with a settlement API or --settlements provider=file.csv")
	}
	return entries, listers, reconciled, nil
}

// saveRuns keeps one run per reconciled provider through the service (the
// ops API's runs), each over that provider's entries.
func (c *command) saveRuns(ctx context.Context, env *Env, entries []Entry, reconciled []string, progress func(string, ...any), stdout io.Writer, now func() time.Time) error {
	svc := &Service{Store: env.Runs, Ledger: env.Ledger, Configured: env.Configured, Tolerance: c.tolerance, RunTolerance: c.runTolerance, Fee: env.Fee, Now: now,
		SettleAfter: func(string) time.Duration { return c.settleAfter }}
	for _, n := range reconciled {
		var mine []Entry
		for _, e := range entries {
			if e.Provider == n {
				mine = append(mine, e)
			}
		}
		progress("reconcile: %s: saving run… ", n)
		run, created, err := svc.StartWith(ctx, StartRequest{Provider: n, From: c.from, To: c.to, Actor: "cli", Reason: "payrouter reconcile --save"},
			func(context.Context, time.Time, time.Time) ([]Entry, error) { return mine, nil })
		if err != nil {
			progress("failed\n")
			return err
		}
		state := "new"
		if !created {
			state = "existing"
		}
		progress("done\n")
		fmt.Fprintf(stdout, "run %s: %s %s, %s to %s, %s (%d lines)\n", run.ID, state, n, run.From.Format(time.RFC3339), run.To.Format(time.RFC3339), run.Status, len(run.Lines))
	}
	return nil
}

// readBank reads a bank statement: CAMT.053 when it is XML, else CSV.
func readBank(path string) ([]BankLine, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(strings.TrimSpace(strings.TrimPrefix(string(b), "\ufeff")), "<") {
		return ParseCAMT053(strings.NewReader(string(b)), path)
	}
	return ParseBankCSV(strings.NewReader(string(b)), path)
}

// isTerminal reports whether w is a terminal (progress is shown there
// only, so piped output stays quiet).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// readCSV parses one settlement file and keeps the rows settled in
// [from, to), counting the others.
func readCSV(path, provider string, format Format, minor bool, from, to time.Time) ([]Entry, int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	var all []Entry
	if first, _, _ := strings.Cut(string(b), "\n"); format.Name != "" && strings.Contains(first, format.Columns["ppid"]) {
		all, err = format.Parse(strings.NewReader(string(b)), path, provider)
	} else {
		all, err = ParseCSV(strings.NewReader(string(b)), path, provider, minor)
	}
	if err != nil {
		return nil, 0, err
	}
	var in []Entry
	for _, e := range all {
		if e.SettledAt.Before(from) || !e.SettledAt.Before(to) {
			continue
		}
		in = append(in, e)
	}
	return in, len(all) - len(in), nil
}

// parseWhen reads an RFC 3339 time or a duration before now ("168h").
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a non-negative duration", s)
	}
	return now.Add(-d), nil
}
