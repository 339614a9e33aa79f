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

// OpsStore is what the ops control plane needs of a store.
type OpsStore interface {
	store.Store
	store.RuleVersions
	store.AuditLog
	store.BreakerOverrides
	store.AnomalyResolutions
	store.StatsReader
}

// RunOps checks the ops parts of a store: rule versions, audit, breaker
// overrides, anomaly resolutions and stats.
func RunOps(t *testing.T, open func(t *testing.T) OpsStore) {
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

	t.Run("rule versions", func(t *testing.T) {
		s := open(t)
		if _, _, err := s.ActiveRuleVersion(ctx); !errors.Is(err, payrouter.ErrNotExist) {
			t.Fatalf("active before seed: %v, want ErrNotExist", err)
		}
		for i, want := range []bool{true, false} {
			ok, err := s.SeedRuleVersion(ctx, &store.RuleVersion{YAML: fmt.Sprintf("seed %d", i), CreatedBy: "config", Reason: "seed", CreatedAt: at})
			if err != nil || ok != want {
				t.Fatalf("seed %d: %v, %v; want %v", i, ok, err, want)
			}
		}
		// Concurrent creators get distinct numbers, even with the same YAML.
		var wg sync.WaitGroup
		got := make([]int64, 6)
		for i := range got {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v := &store.RuleVersion{YAML: "same", CreatedBy: fmt.Sprintf("ops-%d", i), Reason: "r", CreatedAt: at}
				if err := s.CreateRuleVersion(ctx, v); err != nil {
					t.Errorf("create %d: %v", i, err)
				}
				got[i] = v.Version
			}()
		}
		wg.Wait()
		seen := map[int64]bool{}
		for _, v := range got {
			if v < 2 || v > 7 || seen[v] {
				t.Fatalf("concurrent versions %v, want 2..7 once each", got)
			}
			seen[v] = true
		}
		vs, err := s.ListRuleVersions(ctx)
		if err != nil || len(vs) != 7 || vs[0].Version != 7 || vs[6].Version != 1 || vs[6].State != store.RuleActive || vs[0].State != store.RuleDraft {
			t.Fatalf("list %+v (%v)", vs, err)
		}
		if err := s.ShadowRuleVersion(ctx, 3); err != nil {
			t.Fatal(err)
		}
		if err := s.ActivateRuleVersion(ctx, 2, at.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		active, shadow, err := s.ActiveRuleVersion(ctx)
		if err != nil || active.Version != 2 || active.ActivatedAt == nil || !active.ActivatedAt.Equal(at.Add(time.Minute)) || shadow == nil || shadow.Version != 3 {
			t.Fatalf("active %+v shadow %+v (%v)", active, shadow, err)
		}
		if err := s.ActivateRuleVersion(ctx, 3, at); err != nil { // activating the shadow ends the shadow
			t.Fatal(err)
		}
		active, shadow, _ = s.ActiveRuleVersion(ctx)
		if active.Version != 3 || shadow != nil {
			t.Fatalf("after activating the shadow: active %d shadow %+v", active.Version, shadow)
		}
		for n, want := range map[int64]string{1: store.RuleRetired, 2: store.RuleRetired, 3: store.RuleActive, 4: store.RuleDraft} {
			v, err := s.GetRuleVersion(ctx, n)
			if err != nil || v.State != want {
				t.Errorf("v%d: %+v (%v), want %s", n, v, err, want)
			}
		}
		if err := s.ActivateRuleVersion(ctx, 99, at); !errors.Is(err, payrouter.ErrNotExist) {
			t.Errorf("activate missing: %v", err)
		}
		if _, err := s.GetRuleVersion(ctx, 99); !errors.Is(err, payrouter.ErrNotExist) {
			t.Errorf("get missing: %v", err)
		}
	})

	t.Run("audit", func(t *testing.T) {
		s := open(t)
		for i := range 3 {
			e := &store.AuditEntry{At: at.Add(time.Duration(i) * time.Second), Actor: "ops-admin", Action: fmt.Sprintf("a%d", i), Object: "o", Reason: "r",
				Before: []byte(`{"x":1}`)}
			if err := s.AppendAudit(ctx, e); err != nil || e.ID == 0 {
				t.Fatalf("append: %v id %d", err, e.ID)
			}
		}
		es, err := s.ListAudit(ctx, 2)
		if err != nil || len(es) != 2 || es[0].Action != "a2" || string(es[0].Before) != `{"x":1}` || string(es[0].After) != "null" || !es[0].At.Equal(at.Add(2*time.Second)) {
			t.Fatalf("list %+v (%v)", es, err)
		}
	})

	t.Run("overrides, resolutions, stats", func(t *testing.T) {
		s := open(t)
		o := store.BreakerOverride{Provider: "stripe", Method: "card", Reason: "a", Actor: "x", At: at}
		if err := s.SetBreakerOverride(ctx, o); err != nil {
			t.Fatal(err)
		}
		o.Reason = "b"
		if err := s.SetBreakerOverride(ctx, o); err != nil {
			t.Fatal(err)
		}
		os, err := s.ListBreakerOverrides(ctx)
		if err != nil || len(os) != 1 || os[0].Reason != "b" {
			t.Fatalf("overrides %+v (%v)", os, err)
		}
		if err := s.ClearBreakerOverride(ctx, "stripe", "card"); err != nil {
			t.Fatal(err)
		}
		if os, _ := s.ListBreakerOverrides(ctx); len(os) != 0 {
			t.Fatalf("after clear %+v", os)
		}

		a1, a2 := &store.Anomaly{Kind: store.AnomalyOrphan, Detail: "1"}, &store.Anomaly{Kind: store.AnomalyOrphan, Detail: "2"}
		for _, a := range []*store.Anomaly{a1, a2} {
			if err := s.RecordAnomaly(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.ResolveAnomaly(ctx, store.AnomalyResolution{AnomalyID: 999, Note: "n"}); !errors.Is(err, payrouter.ErrNotExist) {
			t.Fatalf("resolve missing: %v", err)
		}
		for i, want := range []bool{true, false} {
			ok, err := s.ResolveAnomaly(ctx, store.AnomalyResolution{AnomalyID: a1.ID, Note: fmt.Sprintf("n%d", i), Actor: "op", ResolvedAt: at})
			if err != nil || ok != want {
				t.Fatalf("resolve %d: %v %v", i, ok, err)
			}
		}
		res, err := s.AnomalyResolutions(ctx, []int64{a1.ID, a2.ID})
		if err != nil || len(res) != 1 || res[a1.ID].Note != "n0" {
			t.Fatalf("resolutions %+v (%v)", res, err)
		}

		p := newPayment("ops-stats", 1)
		if err := s.CreatePayment(ctx, p); err != nil {
			t.Fatal(err)
		}
		st, err := s.Stats(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if st.AnomaliesOpen != 1 || st.InboxBacklog != 0 || st.DeliveriesDead != 0 || len(st.Payments) != 1 || st.Payments[0].N != 1 ||
			st.Payments[0].Status != string(p.Status) || st.Payments[0].Provider != p.Provider {
			t.Fatalf("stats %+v", st)
		}
	})
}
