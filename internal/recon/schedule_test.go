package recon_test

import (
	"context"
	"path/filepath"
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
