package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
)

// testReconRuns: a provider and period is one run, also under concurrent
// creates; finishing stores the lines; a line's state changes alone.
func testReconRuns(t *testing.T, s store.Store) {
	ctx := context.Background()
	from, to := at(0), at(24*time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	ids := map[string]bool{}
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, ok, err := s.CreateReconRun(ctx, &store.ReconRun{ID: fmt.Sprintf("rcn_%d", i), Provider: "midtrans", From: from, To: to,
				SettleAfter: time.Hour, CreatedBy: "ops-operator", CreatedAt: at(time.Minute)})
			if err != nil {
				t.Errorf("create: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if ok {
				created++
			}
			ids[r.ID] = true
		}()
	}
	wg.Wait()
	if created != 1 || len(ids) != 1 {
		t.Fatalf("8 concurrent creates of one period: %d created, ids %v; want 1 and one id", created, ids)
	}
	var id string
	for k := range ids {
		id = k
	}
	other, ok, err := s.CreateReconRun(ctx, &store.ReconRun{ID: "rcn_other", Provider: "dana", From: from, To: to, CreatedAt: at(2 * time.Minute)})
	if err != nil || !ok || other.ID != "rcn_other" || other.Status != "running" {
		t.Fatalf("another provider's run: %+v %v %v", other, ok, err)
	}
	lines := []store.ReconLine{{N: 1, Class: "matched", Data: []byte(`{"a":1}`)}, {N: 2, Class: "missing_in_settlement", Data: []byte(`{"a":2}`)}}
	if err := s.FinishReconRun(ctx, id, "done", "", []byte(`{"totals":[]}`), lines, at(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishReconRun(ctx, "rcn_nope", "done", "", nil, nil, at(3*time.Minute)); !errors.Is(err, payrouter.ErrNotExist) {
		t.Errorf("finish a missing run: %v, want ErrNotExist", err)
	}
	got, err := s.GetReconRun(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "done" || got.Provider != "midtrans" || !got.From.Equal(from) || !got.To.Equal(to) || got.SettleAfter != time.Hour ||
		got.FinishedAt == nil || string(got.Summary) != `{"totals":[]}` || len(got.Lines) != 2 || got.Lines[1].State != "open" ||
		string(got.Lines[1].Data) != `{"a":2}` || got.CreatedBy != "ops-operator" {
		t.Fatalf("got %+v", got)
	}
	again, ok, err := s.CreateReconRun(ctx, &store.ReconRun{ID: "rcn_again", Provider: "midtrans", From: from, To: to, CreatedAt: at(time.Hour)})
	if err != nil || ok || again.ID != id || len(again.Lines) != 2 {
		t.Fatalf("the same period again: %+v created=%v %v; want run %s with its lines", again, ok, err, id)
	}
	now := at(4 * time.Minute)
	l, err := s.UpdateReconLine(ctx, id, 2, func(l *store.ReconLine) error {
		l.State, l.Note, l.ActedBy, l.ActedAt = "acknowledged", "bank holiday", "ops-operator", &now
		return nil
	})
	if err != nil || l.State != "acknowledged" {
		t.Fatalf("update: %+v %v", l, err)
	}
	stop := errors.New("stop")
	if _, err := s.UpdateReconLine(ctx, id, 2, func(l *store.ReconLine) error { l.State = "resolved"; return stop }); err != stop {
		t.Errorf("fn error: %v, want it as is", err)
	}
	if _, err := s.UpdateReconLine(ctx, id, 9, func(*store.ReconLine) error { return nil }); !errors.Is(err, payrouter.ErrNotExist) {
		t.Errorf("missing line: %v", err)
	}
	got, _ = s.GetReconRun(ctx, id)
	if l := got.Lines[1]; l.State != "acknowledged" || l.Note != "bank holiday" || l.ActedAt == nil || !l.ActedAt.Equal(now) || got.Lines[0].State != "open" {
		t.Errorf("after update: %+v", got.Lines)
	}
	list, err := s.ListReconRuns(ctx, "", 10)
	if err != nil || len(list) != 2 || list[0].ID != "rcn_other" || list[1].Lines != nil {
		t.Errorf("list: %+v %v", list, err)
	}
	if list, _ := s.ListReconRuns(ctx, "midtrans", 10); len(list) != 1 || list[0].ID != id {
		t.Errorf("list midtrans: %+v", list)
	}
	if _, err := s.GetReconRun(ctx, "rcn_nope"); !errors.Is(err, payrouter.ErrNotExist) {
		t.Errorf("get missing: %v", err)
	}
}
