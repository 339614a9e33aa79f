package recon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/payrouter/payrouter/providers"
)

// Env is what the command needs from the wiring: the ledger and the
// configured providers' settlement listers (a provider whose adapter has
// no SettlementLister is in Configured but not in Listers).
type Env struct {
	Ledger     Ledger
	Listers    map[string]providers.SettlementLister
	Configured []string
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
	out := fs.String("out", "", "directory for report.csv and report.json")
	server := fs.String("server", "", "sandbox: base URL of the running payrouter whose simulators to ask (default from server.listen)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "reconcile: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "reconcile: "+format+"\n", a...)
		return 2
	}
	now := time.Now
	if deps.Now != nil {
		now = deps.Now
	}
	t0 := now()
	from, err := parseWhen(*fromS, t0)
	if err != nil {
		return fail("--from: %v", err)
	}
	to, err := parseWhen(*toS, t0)
	if err != nil {
		return fail("--to: %v", err)
	}
	if !from.Before(to) {
		return fail("--from %s is not before --to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if *tol < 0 || *settleAfter < 0 || *lookback < 0 {
		return fail("--tolerance, --settle-after and --lookback must not be negative")
	}
	csvFiles := map[string]string{}
	for _, f := range files {
		name, path, ok := strings.Cut(f, "=")
		if !ok || name == "" || path == "" {
			return fail("--settlements %q: want provider=file.csv", f)
		}
		if _, dup := csvFiles[name]; dup {
			return fail("--settlements: %s given twice", name)
		}
		csvFiles[name] = path
	}

	env, closeEnv, err := deps.Open(ctx, *configPath, *server)
	if err != nil {
		return fail("%v", err)
	}
	defer closeEnv()

	selected := []string(provs)
	if len(selected) == 0 {
		if len(csvFiles) > 0 {
			for n := range csvFiles {
				selected = append(selected, n)
			}
		} else {
			for _, n := range env.Configured {
				if env.Listers[n] != nil {
					selected = append(selected, n)
				}
			}
		}
	}
	sort.Strings(selected)
	want := map[string]bool{}
	for _, n := range selected {
		want[n] = true
	}
	for n := range csvFiles {
		if !want[n] {
			return fail("--settlements %s: provider not selected by --provider", n)
		}
	}
	var entries []Entry
	listers := map[string]providers.SettlementLister{}
	var reconciled []string
	for _, n := range selected {
		if path, ok := csvFiles[n]; ok {
			es, skipped, err := readCSV(path, n, *minor, from, to)
			if err != nil {
				return fail("%v", err)
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
				fmt.Fprintf(stderr, "reconcile: %s: its API lists no settlements; give --settlements %s=file.csv (skipped)\n", n, n)
				continue
			}
			return fail("--provider %s: not a configured provider (have %s)", n, strings.Join(env.Configured, ", "))
		}
		listers[n] = l
		reconciled = append(reconciled, n)
	}
	if len(reconciled) == 0 {
		return fail("no provider to reconcile: give --provider with a settlement API or --settlements provider=file.csv")
	}
	// Progress on a terminal only: piped or redirected, stderr stays quiet.
	progress := func(format string, a ...any) {}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		progress = func(format string, a ...any) { fmt.Fprintf(stderr, "reconcile: "+format+"\n", a...) }
	}
	if len(listers) > 0 {
		progress("asking %d provider API(s) for settlements from %s to %s…", len(listers), from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	api, err := Fetch(ctx, listers, from, to)
	if err != nil {
		return fail("%v", err)
	}
	entries = append(entries, api...)
	progress("%d settlement lines; joining them with the ledger…", len(entries))
	rep, err := Run(ctx, env.Ledger, entries, Options{From: from, To: to, Lookback: *lookback, SettleAfter: *settleAfter,
		Tolerance: *tol, Providers: reconciled}, now())
	if err != nil {
		return fail("%v", err)
	}
	if err := rep.WriteSummary(stdout); err != nil {
		return fail("%v", err)
	}
	if *out != "" {
		if err := rep.WriteFiles(*out); err != nil {
			return fail("%v", err)
		}
	}
	if rep.Discrepancies > 0 {
		return 1
	}
	return 0
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
func readCSV(path, provider string, minor bool, from, to time.Time) ([]Entry, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	all, err := ParseCSV(f, path, provider, minor)
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
