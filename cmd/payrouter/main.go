// Command payrouter runs the payment router and its ops tools.
//
//	payrouter serve [--config config.yaml] [--listen :8080]
//	payrouter rules check|test|diff|push …
//	payrouter route explain --config config.yaml --currency IDR --method gopay --amount 150000
//	payrouter events tail|redeliver …
//	payrouter bench [--duration 20s] …
//	payrouter keys hash < key.txt
//	payrouter healthcheck [--url http://127.0.0.1:8080/healthz]
//	payrouter version
package main

import (
	"context"
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
	"github.com/payrouter/payrouter/internal/gctune"
	"github.com/payrouter/payrouter/internal/rulescmd"
)

const usage = `usage: payrouter <command> [flags]

commands:
  serve            run the router (sandbox by default: no keys needed)
  rules check      static checks of a config's routing rules
  rules test       run routing test cases against a config
  rules diff       compare two rule sets (--replay: over stored payments)
  rules push       store a file's rules as a new version (rules_source: store)
  route explain    show where a payment would go and why
  events tail      follow the event stream
  events redeliver redeliver merchant webhooks
  reconcile        reconcile provider settlements against the ledger
  rules fees       actual fees from settlements against the rules' fee table (--suggest)
  bench            measure router overhead against direct provider calls
  sim              serve the sandbox simulators alone (crash tests; see sim_url)
  keys hash        print the sha256:… form of an API key read on stdin (for api_keys)
  healthcheck      GET /healthz of a running payrouter; exit 0 when it answers 200
  version          print the module version, commit and Go version

Run 'payrouter <command> --help' for a command's flags.
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
	if groups[cmd] {
		if len(rest) == 0 || isHelp(rest[0]) {
			w, code := stderr, 2
			if len(rest) > 0 {
				w, code = stdout, 0
			}
			fmt.Fprintf(w, "usage: payrouter %s <command> [flags]\n\n%s", cmd, groupUsage(cmd))
			return code
		}
		cmd, rest = cmd+" "+rest[0], rest[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, rest, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "version", "--version":
		return version(stdout)
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
	"rules push":       rulesPush,
	"route explain":    rulesTool(rulescmd.Explain),
	"events tail":      eventsTail,
	"events redeliver": eventsRedeliver,
	"reconcile":        reconcile,
	"rules fees":       rulesFees,
	"bench":            benchCmd,
	"sim":              simCmd,
	"keys hash":        keysHash,
	"healthcheck":      healthcheck,
}

// groups are the commands that take a subcommand.
var groups = map[string]bool{"rules": true, "route": true, "events": true, "keys": true}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" || a == "help" }

// groupUsage lists a group's lines of the main usage.
func groupUsage(group string) string {
	var b strings.Builder
	b.WriteString("commands:\n")
	for _, line := range strings.Split(usage, "\n") {
		if strings.HasPrefix(line, "  "+group+" ") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(strings.ToUpper(cfg.Log.Level)))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.JSONLogs() {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func serve(ctx context.Context, args []string, stderr io.Writer) int {
	fs := newFlags("serve", "serve [--config config.yaml] [--listen :8080]", stderr)
	path := fs.String("config", "config.yaml", "config file")
	listen := fs.String("listen", "", "listen address (overrides server.listen)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		// A stray word ("serve serve …" from an ENTRYPOINT plus a command)
		// used to stop flag parsing silently and run the wrong config.
		fmt.Fprintf(stderr, "payrouter serve: unexpected argument %q (serve takes only flags)\n", fs.Arg(0))
		fs.Usage()
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
	gc := gctune.Apply(gctune.Settings{GCPercent: cfg.Server.GCPercent, MemoryLimitMB: cfg.Server.MemoryLimitMB}, gctune.Env{})
	log.Info("garbage collector", "gc_percent", gc.GCPercent, "memory_limit_mb", gc.MemoryLimit>>20, "limit_from", gc.Source)
	a, err := app.New(ctx, cfg, app.Options{Log: log, OpenAPI: payrouter.OpenAPI})
	if err != nil {
		fmt.Fprintf(stderr, "payrouter: %v\n", err)
		return 1
	}
	defer a.Close()
	go watchConfig(ctx, a, *path)
	if err := a.Serve(ctx); err != nil {
		fmt.Fprintf(stderr, "payrouter: %v\n", err)
		return 1
	}
	return 0
}

// watchConfig reloads the rules on SIGHUP and when the file changes, and
// the TLS certificate on SIGHUP.
func watchConfig(ctx context.Context, a *app.App, path string) {
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
			if err := a.ReloadTLS(); err != nil {
				a.Log.Error("tls certificate reload refused; keeping the current one", "err", err)
			} else if a.Config.Server.TLS.Enabled() {
				a.Log.Info("tls certificate reloaded")
			}
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
