package app

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/breakerstore"
	"github.com/payrouter/payrouter/internal/console"
	"github.com/payrouter/payrouter/internal/ops"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/providers"
	"github.com/payrouter/payrouter/router"
)

// opsStore is what the ops control plane needs of the store beyond the
// payments it reads: both SQL stores have it.
type opsStore interface {
	store.RuleVersions
	store.AuditLog
	store.BreakerOverrides
	store.AnomalyResolutions
}

// wireOps builds the ops service (rule versions, health, forced-open
// breakers, audit), hooks it into the guarded providers and the live
// rules, seeds and loads the stored rules, and mounts /ops/v1 on mux.
func (a *App) wireOps(ctx context.Context, mux *http.ServeMux, guarded map[string]*router.Guarded) error {
	cfg := a.Config
	os, ok := a.Store.(opsStore)
	if !ok {
		return fmt.Errorf("store %T cannot hold rule versions and the audit log", a.Store)
	}
	var kcs []ops.KeyConfig
	for _, k := range cfg.Ops.Keys {
		kcs = append(kcs, ops.KeyConfig{ID: k.ID, Key: k.Key, Role: k.Role})
	}
	keys, err := ops.NewKeys(kcs)
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.Path, err)
	}
	// A key is either a merchant's or an ops key, never both: each API
	// must refuse the other's keys.
	for i, m := range cfg.Merchants {
		for _, k := range m.APIKeys {
			if a, clash := keys.Holds(k.Digest); clash {
				return fmt.Errorf("%s: merchants[%d] (%s): an api key is also ops key %s", cfg.Path, i, m.ID, a.ID)
			}
		}
	}
	var overrides store.BreakerOverrides = os
	if cfg.Redis.URL != "" {
		bs, err := breakerstore.Open(cfg.Redis.URL, cfg.Redis.BreakerPrefix)
		if err != nil {
			return fmt.Errorf("%s: %w", cfg.Path, err)
		}
		a.closers = append(a.closers, func() { _ = bs.Close() })
		overrides = bs
	}
	forced := ops.NewForced(overrides)
	if err := forced.Refresh(ctx); err != nil {
		a.Log.Warn("ops: breaker overrides unreadable at start; retrying in the background", "err", err)
	}
	health := ops.NewHealth()
	var provs []ops.Provider
	for name, g := range guarded {
		g.Forced = forced.Allow(name)
		prev := g.Observe
		g.Observe = func(p string, m payrouter.Method, op string, c providers.Class, d time.Duration) {
			if prev != nil {
				prev(p, m, op, c, d)
			}
			health.Observe(p, m, op, c, d)
		}
		kind := cfg.Providers[name].Kind
		if kind == "" {
			kind = name
		}
		provs = append(provs, ops.Provider{Name: name, Kind: kind, Caps: g.Capabilities()})
		var ms []payrouter.Method
		for m := range g.Capabilities().Methods {
			ms = append(ms, m)
		}
		a.Metrics.InitBreakers(name, ms)
	}
	sort.Slice(provs, func(i, j int) bool { return provs[i].Name < provs[j].Name })
	var merchants []string
	for _, m := range cfg.Merchants {
		merchants = append(merchants, m.ID)
	}
	shadow := ops.NewShadowLog()
	a.Rules.OnShadow = shadow.Observe
	svc := ops.New(ops.Config{
		Versions: os, Audit: os, Overrides: overrides, Resolutions: os, Payments: a.Store,
		Live: a.Rules, Forced: forced, Health: health, Shadow: shadow, Approvals: a.Approvals,
		Breakers: func(p string, m payrouter.Method) string {
			g, ok := guarded[p]
			if !ok {
				return "closed"
			}
			return breakerName(g.BreakerState(m))
		},
		Providers: provs, Merchants: merchants, RulesFromStore: cfg.Ops.RulesSource == "store", Log: a.Log,
	})
	if err := svc.Seed(ctx, cfg.Data); err != nil {
		return fmt.Errorf("%s: rules from the store: %w", cfg.Path, err)
	}
	a.Ops, a.OpsKeys, a.Health = svc, keys, health
	a.Metrics.RegisterBuildInfo()
	if sr, ok := a.Store.(store.StatsReader); ok {
		a.Metrics.WatchStore(sr, 10*time.Second, func(err error) { a.Log.Warn("metrics: store figures", "err", err) })
	}
	every := cfg.Ops.PollEvery.D(time.Second)
	a.background = append(a.background,
		func(ctx context.Context) { svc.RunSync(ctx, every) },
		func(ctx context.Context) {
			forced.Run(ctx, every, func(err error) { a.Log.Warn("ops: breaker overrides", "err", err) })
		})
	oh := &ops.Handler{Service: svc, Keys: keys, Log: a.Log}
	oh.Mount(mux)
	// Reconciliation runs are ops endpoints too: the same keys, roles and
	// audit log.
	if a.Recon != nil {
		a.Recon.Audit = reconAudit{os}
		mux.Handle("/ops/v1/reconciliation/", a.Recon.Handler(oh.Access))
	}
	con, err := console.New(svc, keys, a.Log)
	if err != nil {
		return err
	}
	con.Recon = a.Recon
	con.Mount(mux)
	return nil
}

// breakerName is the API's name of a gobreaker state.
func breakerName(s gobreaker.State) string {
	return strings.ReplaceAll(s.String(), "-", "_")
}
