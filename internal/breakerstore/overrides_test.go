package breakerstore

import (
	"context"
	"testing"
	"time"

	"github.com/payrouter/payrouter/internal/store"
)

// Two instances sharing a Redis (and prefix) see one another's overrides.
func TestOverridesShared(t *testing.T) {
	a, url := testStore(t)
	b := open(t, url, a.prefix)
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	if err := a.SetBreakerOverride(ctx, store.BreakerOverride{Provider: "stripe", Method: "card", Reason: "maintenance", Actor: "ops-operator", At: at}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetBreakerOverride(ctx, store.BreakerOverride{Provider: "midtrans", Method: "*", Reason: "outage", Actor: "ops-admin", At: at}); err != nil {
		t.Fatal(err)
	}
	got, err := b.ListBreakerOverrides(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Provider != "midtrans" || got[0].Method != "*" || got[1].Reason != "maintenance" || !got[1].At.Equal(at) {
		t.Fatalf("b sees %+v", got)
	}
	if err := b.ClearBreakerOverride(ctx, "stripe", "card"); err != nil {
		t.Fatal(err)
	}
	got, err = a.ListBreakerOverrides(ctx)
	if err != nil || len(got) != 1 || got[0].Provider != "midtrans" {
		t.Fatalf("after clear, a sees %+v (%v)", got, err)
	}
}
