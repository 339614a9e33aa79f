package recon_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payrouter/payrouter/internal/recon"
	"github.com/payrouter/payrouter/internal/store/sqlite"
	"github.com/payrouter/payrouter/providers"
)

type listerFunc func(ctx context.Context, from, to time.Time) ([]providers.Settlement, error)

func (f listerFunc) Settlements(ctx context.Context, from, to time.Time) ([]providers.Settlement, error) {
	return f(ctx, from, to)
}

// A 24h schedule reconciles yesterday (UTC) once however often it is
// checked, and the next day's check makes the next day's run.
func TestScheduleRunsThePreviousPeriodOnce(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 12, 1, 10, 30, 0, 0, time.UTC)
	var asked [][2]time.Time
	svc := &recon.Service{Store: st, Ledger: st, Configured: []string{"dana"}, Now: func() time.Time { return now },
		Sources: map[string]providers.SettlementLister{"dana": listerFunc(func(_ context.Context, from, to time.Time) ([]providers.Settlement, error) {
			asked = append(asked, [2]time.Time{from, to})
			return nil, nil
		})}}
	sch := []recon.Schedule{{Provider: "dana", Every: 24 * time.Hour}}
	for range 3 {
		if errs := svc.RunDue(ctx, sch); len(errs) != 0 {
			t.Fatal(errs)
		}
		now = now.Add(time.Hour)
	}
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if len(asked) != 1 || !asked[0][0].Equal(day.Add(-24*time.Hour)) || !asked[0][1].Equal(day) {
		t.Fatalf("settlements asked for %v, want once for 30 Nov", asked)
	}
	now = now.Add(24 * time.Hour)
	svc.RunDue(ctx, sch)
	runs, err := st.ListReconRuns(ctx, "dana", 10)
	if err != nil || len(runs) != 2 || runs[0].CreatedBy != "schedule" || !runs[0].From.Equal(day) || runs[0].Status != "done" {
		t.Fatalf("runs %+v %v", runs, err)
	}
}

// A run whose settlements cannot be read is kept as failed with the
// error; the same period again runs it again (same id) once the source
// answers.
func TestFailedRunIsRunAgain(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	down := true
	svc := &recon.Service{Store: st, Ledger: st, Configured: []string{"dana", "ovo"},
		Sources: map[string]providers.SettlementLister{"dana": listerFunc(func(context.Context, time.Time, time.Time) ([]providers.Settlement, error) {
			if down {
				return nil, providers.Errorf(providers.Unavailable, "down", "settlement report: HTTP 503")
			}
			return nil, nil
		})}}
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	req := recon.StartRequest{Provider: "dana", From: from, To: from.AddDate(0, 1, 0), Actor: "ops-operator", Reason: "month end"}
	r1, created, err := svc.Start(ctx, req)
	if err != nil || !created || r1.Status != "failed" || r1.Error == "" {
		t.Fatalf("first run: %+v %v %v", r1, created, err)
	}
	down = false
	r2, created, err := svc.Start(ctx, req)
	if err != nil || !created || r2.ID != r1.ID || r2.Status != "done" || r2.Error != "" {
		t.Fatalf("again: %+v %v %v", r2, created, err)
	}
	if _, _, err := svc.Start(ctx, recon.StartRequest{Provider: "ovo", From: from, To: from.AddDate(0, 1, 0)}); err == nil ||
		!strings.Contains(err.Error(), "no settlement source") {
		t.Errorf("a provider without a source: %v", err)
	}
	for _, bad := range []recon.StartRequest{{Provider: "paypal", From: from, To: from.Add(time.Hour)}, {Provider: "dana", From: from, To: from},
		{Provider: "dana"}} {
		if _, _, err := svc.Start(ctx, bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
