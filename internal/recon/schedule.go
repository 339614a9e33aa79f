package recon

import (
	"context"
	"log/slog"
	"time"
)

// Schedule is one provider's scheduled reconciliation: every Every, the
// previous period of that length (aligned to it in UTC: 24h runs
// yesterday) is reconciled. Because a provider and period is one run,
// several instances running the same schedule share the run.
type Schedule struct {
	Provider string
	Every    time.Duration
}

// Due is the last complete period of sch at now.
func (sch Schedule) Due(now time.Time) (from, to time.Time) {
	to = now.UTC().Truncate(sch.Every)
	return to.Add(-sch.Every), to
}

// RunDue starts (or finds) the due run of each schedule; errors are
// returned per provider, so one failing provider does not stop the others.
func (s *Service) RunDue(ctx context.Context, schedules []Schedule) map[string]error {
	errs := map[string]error{}
	for _, sch := range schedules {
		from, to := sch.Due(s.now())
		if _, _, err := s.Start(ctx, StartRequest{Provider: sch.Provider, From: from, To: to, Actor: "schedule",
			Reason: "scheduled every " + sch.Every.String()}); err != nil {
			errs[sch.Provider] = err
		}
	}
	return errs
}

// RunSchedules calls RunDue at start and then every check until ctx ends,
// logging failures.
func (s *Service) RunSchedules(ctx context.Context, schedules []Schedule, check time.Duration, log *slog.Logger) {
	if len(schedules) == 0 {
		return
	}
	t := time.NewTicker(check)
	defer t.Stop()
	for {
		for p, err := range s.RunDue(ctx, schedules) {
			log.Error("scheduled reconciliation failed", "provider", p, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
