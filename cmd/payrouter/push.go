package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/payrouter/payrouter/internal/ops"
)

// rulesPush is `payrouter rules push FILE --reason … [--activate]`: the
// file's rules, default and fees become a draft version through a running
// instance's ops API (with rules_source: store, file edits go live this way).
func rulesPush(ctx context.Context, args []string, stdout, stderr writer) int {
	fs := flag.NewFlagSet("rules push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080", "base URL of a running payrouter")
	key := fs.String("key", os.Getenv("PAYROUTER_OPS_KEY"), "admin ops key (default $PAYROUTER_OPS_KEY)")
	reason := fs.String("reason", "", "why (required; kept in the audit log)")
	activate := fs.Bool("activate", false, "activate the new version at once")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: payrouter rules push FILE --reason \"…\" [--activate] [--url URL] [--key KEY]")
		fs.PrintDefaults()
	}
	// Flags may follow the file.
	var file string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		args = fs.Args()
		if len(args) > 0 {
			if file != "" {
				fs.Usage()
				return 2
			}
			file, args = args[0], args[1:]
		}
	}
	if file == "" || *reason == "" || *key == "" {
		fs.Usage()
		return 2
	}
	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "payrouter: %v\n", err)
		return 1
	}
	text, fileLine, err := ops.RulesSectionsMapped(data)
	if err != nil {
		fmt.Fprintf(stderr, "payrouter: %v\n", err)
		return 1
	}
	c := &ops.Client{URL: *url, Key: *key}
	cr, err := c.CreateVersion(ctx, text, *reason)
	if err != nil {
		var ae *ops.APIError
		if errors.As(err, &ae) && ae.Body.Check != nil {
			for _, p := range ae.Body.Check.Errors {
				fmt.Fprintf(stderr, "%s:%d:%d: %s\n", file, fileLine(p.Line), p.Col, p.Message)
			}
			fmt.Fprintf(stderr, "payrouter: %s refused: %d errors; nothing stored\n", file, len(ae.Body.Check.Errors))
			return 1
		}
		fmt.Fprintf(stderr, "payrouter: %v\n", err)
		return 1
	}
	for _, p := range cr.Check.Warnings {
		fmt.Fprintf(stderr, "%s:%d:%d: warning: %s\n", file, fileLine(p.Line), p.Col, p.Message)
	}
	fmt.Fprintf(stdout, "%s: draft\n", cr.Version)
	if *activate {
		act, err := c.Activate(ctx, cr.Version, *reason)
		if err != nil {
			fmt.Fprintf(stderr, "payrouter: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: active (was %s)\n", act.Version, act.Previous)
	}
	return 0
}
