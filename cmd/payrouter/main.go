// Command payrouter runs the payment router and its ops tools.
//
//	payrouter serve [--config config.yaml] [--listen :8080]
//	payrouter rules check|test|diff …
//	payrouter route explain --config config.yaml --currency IDR --method gopay --amount 150000
//	payrouter events tail|redeliver …
//	payrouter bench [--duration 20s] …
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/app"
	"github.com/payrouter/payrouter/internal/config"
	"github.com/payrouter/payrouter/internal/rulescmd"
)

const usage = `usage: payrouter <command> [flags]

commands:
  serve            run the router (sandbox by default: no keys needed)
  rules check      static checks of a config's routing rules
  rules test       run routing test cases against a config
  rules diff       compare two rule sets (--replay: over stored payments)
  route explain    show where a payment would go and why
  events tail      follow the event stream
  events redeliver redeliver merchant webhooks
  reconcile        reconcile provider settlements against the ledger
  rules fees       actual fees from settlements against the rules' fee table (--suggest)
  bench            measure router overhead against direct provider calls
  sim              serve the sandbox simulators alone (crash tests; see sim_url)
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, rest := args[0], args[1:]
	if (cmd == "rules" || cmd == "route" || cmd == "events") && len(rest) > 0 {
		cmd, rest = cmd+" "+rest[0], rest[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, rest, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	if f, ok := tools[cmd]; ok {
		return f(ctx, rest, stdout, stderr)
	}
	fmt.Fprintf(stderr, "payrouter: unknown command %q\n\n%s", cmd, usage)
	return 2
}

type writer = io.Writer

// tool is a subcommand besides serve.
type tool = func(ctx context.Context, args []string, stdout, stderr writer) int

// tools lists every subcommand: explicit, no registration.
var tools = map[string]tool{
	"rules check":      rulesTool(rulescmd.Check),
	"rules test":       rulesTool(rulescmd.Test),
	"rules diff":       rulesTool(rulescmd.Diff),
	"route explain":    rulesTool(rulescmd.Explain),
	"events tail":      eventsTail,
	"events redeliver": eventsRedeliver,
	"reconcile":        reconcile,
	"rules fees":       rulesFees,
	"bench":            benchCmd,
	"sim":              simCmd,
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(strings.ToUpper(cfg.Log.Level)))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func serve(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "config.yaml", "config file")
	listen := fs.String("listen", "", "listen address (overrides server.listen)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "payrouter: %v\n", err)
		return 1
	}
	if *listen != "" {
		cfg.Server.Listen = *listen
	}
	log := newLogger(cfg, stderr)
	a, err := app.New(ctx, cfg, app.Options{Log: log, OpenAPI: payrouter.OpenAPI})
	if err != nil {
		fmt.Fprintf(stderr, "payrouter: %v\n", err)
		return 1
	}
	defer a.Close()
	go watchRules(ctx, a, *path)
	if err := a.Serve(ctx); err != nil {
		fmt.Fprintf(stderr, "payrouter: %v\n", err)
		return 1
	}
	return 0
}

// watchRules reloads the rules on SIGHUP and when the file changes.
func watchRules(ctx context.Context, a *app.App, path string) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	last := modTime(path)
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_ = a.ReloadRules()
		case <-t.C:
			if m := modTime(path); !m.Equal(last) {
				last = m
				_ = a.ReloadRules()
			}
		}
	}
}

func modTime(path string) time.Time {
	st, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}
