package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payrouter/payrouter/internal/app"
	"github.com/payrouter/payrouter/internal/approval"
	"github.com/payrouter/payrouter/internal/config"
	"github.com/payrouter/payrouter/internal/rulescmd"
	"github.com/payrouter/payrouter/providers"
	"github.com/payrouter/payrouter/rules"
)

var rulesDeps = rulescmd.Deps{Caps: capsFromConfig, OpenPayments: openPayments, Approvals: sharedApprovals}

func rulesTool(f func(context.Context, []string, writer, writer, rulescmd.Deps) int) tool {
	return func(ctx context.Context, args []string, stdout, stderr writer) int {
		return f(ctx, args, stdout, stderr, rulesDeps)
	}
}

// capsFromConfig builds the configured adapters to ask their capabilities.
// Credentials do not change capabilities, so the sandbox's stand in for
// missing ones: `rules check` works on a production file without secrets.
func capsFromConfig(path string) (map[string]providers.Capabilities, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	cfg.Sandbox = true
	for name, p := range cfg.Providers {
		p.BaseURL = ""
		cfg.Providers[name] = p
	}
	b, err := app.BuildProviders(cfg, "http://127.0.0.1:0", "http://127.0.0.1:0", http.NewServeMux())
	if err != nil {
		return nil, err
	}
	return b.Caps(), nil
}

func openPayments(ctx context.Context, path string) (rulescmd.PaymentScanner, func(), error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return st, func() { _ = st.Close() }, nil
}

// sharedApprovals reads the adaptive strategy's live counters from the
// Redis in the config (redis.url); without Redis the counters live inside
// each instance and only POST /v1/routing/explain can show them.
func sharedApprovals(ctx context.Context, path string) (rules.Approvals, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if cfg.Redis.URL == "" {
		return nil, nil
	}
	opt, err := redis.ParseURL(cfg.Redis.URL)
	if err != nil {
		return nil, fmt.Errorf("redis.url: %w", err)
	}
	opt.DialTimeout, opt.ReadTimeout = time.Second, time.Second
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	t := approval.New(nil)
	t.Share(rdb, cfg.Redis.BreakerPrefix, 2*time.Second, nil)
	if err := t.Sync(ctx); err != nil {
		return nil, fmt.Errorf("reading the approval counters from redis: %w", err)
	}
	return t, nil
}
