package app

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/config"
	"github.com/payrouter/payrouter/internal/recon"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/providers"
)

// SettlementSources are the settlement listers of the built providers: the
// adapters' own APIs (Stripe balance transactions, Xendit transactions)
// and, in sandbox, the simulators' settlement reports of the providers
// whose settlements are dashboard exports (Midtrans, GoPay, OVO, DANA),
// fetched from server (this instance's base URL). Outside sandbox those
// have no lister: their exports are given as files (recon.Env.Formats).
func SettlementSources(cfg *config.Config, b *Built, server string, hc *http.Client) map[string]providers.SettlementLister {
	out := map[string]providers.SettlementLister{}
	formats := recon.Formats()
	server = strings.TrimSuffix(server, "/")
	for name, p := range b.Providers {
		if l, ok := p.(providers.SettlementLister); ok {
			out[name] = l
			continue
		}
		pc := cfg.Providers[name]
		if f, ok := formats[pc.Kind]; ok && cfg.Sandbox && pc.BaseURL == "" {
			base := server
			if cfg.SimURL != "" && !isWallet(pc.Kind) {
				base = strings.TrimSuffix(cfg.SimURL, "/") // served by `payrouter sim`
			}
			out[name] = &recon.ReportClient{Provider: name, Format: f, URL: base + "/sim/" + name + "/_settlement_report", HTTP: hc}
		}
	}
	return out
}

// SettlementFormats maps each configured provider to the dashboard export
// format of its kind, for settlement files.
func SettlementFormats(cfg *config.Config) map[string]recon.Format {
	out := map[string]recon.Format{}
	formats := recon.Formats()
	for _, name := range cfg.ProviderNames() {
		if f, ok := formats[cfg.Providers[name].Kind]; ok {
			out[name] = f
		}
	}
	return out
}

// buildRecon makes the reconciliation service over the store, the
// settlement sources and the live rules' fee model. self is this
// instance's loopback URL (the sandbox reports are fetched from it).
func (a *App) buildRecon(built *Built, self string) {
	cfg := a.Config
	a.Recon = &recon.Service{Store: a.Store, Ledger: a.Store, Configured: cfg.ProviderNames(),
		Sources:     SettlementSources(cfg, built, self, &http.Client{Timeout: 60 * time.Second}),
		SettleAfter: cfg.ReconSettleAfter, Tolerance: cfg.Reconciliation.Tolerance, RunTolerance: cfg.Reconciliation.RunTolerance,
		Fee: func(provider string, m payrouter.Method, cur payrouter.Currency, amount int64) (int64, bool) {
			return a.Rules.Load().ExpectedFee(provider, m, cur, amount)
		}}
	for _, name := range cfg.ProviderNames() {
		if every := cfg.Reconciliation.Providers[name].Every.D(0); every > 0 {
			a.reconSchedules = append(a.reconSchedules, recon.Schedule{Provider: name, Every: every})
		}
	}
}

// reconAudit writes reconciliation's audit entries to the ops audit log.
type reconAudit struct{ log store.AuditLog }

func (r reconAudit) Audit(ctx context.Context, e recon.AuditEntry) error {
	before, _ := json.Marshal(e.Before)
	after, _ := json.Marshal(e.After)
	return r.log.AppendAudit(ctx, &store.AuditEntry{At: e.At, Actor: e.Actor, Action: e.Action, Object: e.Object,
		Reason: e.Reason, Before: before, After: after})
}
