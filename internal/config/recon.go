package config

import (
	"fmt"
	"time"
)

// Reconciliation configures settlement reconciliation (internal/recon).
type Reconciliation struct {
	// Tolerance in minor units per line: amount and fee deltas at most
	// this large count as matched (default 0: to the unit).
	Tolerance int64 `yaml:"tolerance"`
	// RunTolerance > 0 bounds the total the per-line tolerance may absorb
	// in one run (default 0: no bound).
	RunTolerance int64 `yaml:"run_tolerance"`
	// Providers tunes each provider (by provider name).
	Providers map[string]ReconProvider `yaml:"providers"`
}

// ReconProvider is one provider's settlement timing and schedule.
type ReconProvider struct {
	// SettleAfter: how old a capture must be before a missing settlement
	// line counts (the provider's payout delay). Default 72h; 0 in sandbox
	// unless SandboxDelay is set.
	SettleAfter *Duration `yaml:"settle_after"`
	// SandboxDelay (sandbox): the simulator settles captures this long
	// after capture (T+N); default 0, at once.
	SandboxDelay Duration `yaml:"sandbox_delay"`
	// Every > 0 schedules a run of the previous period of this length,
	// aligned to it (24h: yesterday, UTC), on the instance.
	Every Duration `yaml:"every"`
}

// ReconSettleAfter is provider's settle-after with its default.
func (c *Config) ReconSettleAfter(provider string) time.Duration {
	p := c.Reconciliation.Providers[provider]
	switch {
	case p.SettleAfter != nil:
		return time.Duration(*p.SettleAfter)
	case c.Sandbox:
		return time.Duration(p.SandboxDelay)
	}
	return 72 * time.Hour
}

func (r *Reconciliation) check(c *Config) error {
	if r.Tolerance < 0 || r.RunTolerance < 0 {
		return fmt.Errorf("reconciliation.tolerance and run_tolerance must not be negative")
	}
	for name, p := range r.Providers {
		if _, ok := c.Providers[name]; !ok {
			return fmt.Errorf("reconciliation.providers.%s: no such provider", name)
		}
		if (p.SettleAfter != nil && *p.SettleAfter < 0) || p.SandboxDelay < 0 || p.Every < 0 {
			return fmt.Errorf("reconciliation.providers.%s: durations must not be negative", name)
		}
	}
	return nil
}
