package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
)

// makeEvents creates n payments (alternating merchants m1, m2), each with one
// event, and returns the events oldest first.
func makeEvents(t *testing.T, s store.Store, n int) []payrouter.Event {
	t.Helper()
	for i := range n {
		m := []string{"m1", "m2"}[i%2]
		p := newPayment(m, 100+i)
		p.Advance(payrouter.StatusRequiresAction, at(time.Duration(i)*time.Second))
		create(t, s, p)
	}
	evs := settledEvents(t, s, "", 0, 1000, n)
	if len(evs) != n {
		t.Fatalf("made %d events, want %d", len(evs), n)
	}
	return evs
}

func testCursors(t *testing.T, s store.Store) {
	ctx := context.Background()
	if got, err := s.Cursor(ctx, "webhooks"); got != 0 || err != nil {
		t.Fatalf("Cursor(never set) = %d, %v; want 0, nil", got, err)
	}
	steps := []struct {
		name      string
		cursor    string
		advanceTo int64
		want      int64
	}{
		{"first set", "webhooks", 5, 5},
		{"forward", "webhooks", 9, 9},
		{"never back", "webhooks", 3, 9},
		{"same value", "webhooks", 9, 9},
		{"independent names", "redis:payrouter:events", 2, 2},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := s.AdvanceCursor(ctx, st.cursor, st.advanceTo); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Cursor(ctx, st.cursor); got != st.want || err != nil {
				t.Errorf("Cursor(%s) = %d, %v; want %d", st.cursor, got, err, st.want)
			}
		})
	}
	if got, _ := s.Cursor(ctx, "webhooks"); got != 9 {
		t.Errorf("Cursor(webhooks) = %d after another cursor moved, want 9", got)
	}
	if err := s.AdvanceCursor(ctx, "", 1); err == nil {
		t.Error("AdvanceCursor with an empty name: got nil error")
	}
}

func testDeliveries(t *testing.T, s store.Store) {
	ctx := context.Background()
	evs := makeEvents(t, s, 6)
	now := at(time.Hour)

	// Enqueue the first four; the cursor moves in the same transaction.
	var ds []store.Delivery
	for _, e := range evs[:4] {
		ds = append(ds, store.Delivery{Seq: e.Seq, MerchantID: e.MerchantID, NextAt: now, CreatedAt: now, UpdatedAt: now})
	}
	if err := s.EnqueueDeliveries(ctx, "webhooks", evs[3].Seq, ds); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Cursor(ctx, "webhooks"); c != evs[3].Seq {
		t.Errorf("cursor after enqueue = %d, want %d", c, evs[3].Seq)
	}
	// Enqueueing an event again keeps its first delivery (no duplicate, no reset).
	if err := s.EnqueueDeliveries(ctx, "webhooks", evs[3].Seq, ds[:1]); err != nil {
		t.Fatalf("re-enqueue: %v", err)
	}
	// An event with no delivery row still moves the cursor (merchant has no webhook_url).
	if err := s.EnqueueDeliveries(ctx, "webhooks", evs[5].Seq, nil); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Cursor(ctx, "webhooks"); c != evs[5].Seq {
		t.Errorf("cursor after empty enqueue = %d, want %d", c, evs[5].Seq)
	}
	if err := s.EnqueueDeliveries(ctx, "webhooks", evs[5].Seq, []store.Delivery{{Seq: evs[4].Seq}}); err == nil {
		t.Error("enqueue without merchant: got nil error")
	}

	got, err := s.GetDelivery(ctx, "", evs[0].Seq)
	if err != nil {
		t.Fatal(err)
	}
	want := store.Delivery{Seq: evs[0].Seq, MerchantID: "m1", Status: store.DeliveryPending, NextAt: now, CreatedAt: now, UpdatedAt: now}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("GetDelivery = %+v, want %+v", *got, want)
	}
	if _, err := s.GetDelivery(ctx, "m2", evs[0].Seq); !errors.Is(err, payrouter.ErrNotExist) {
		t.Errorf("GetDelivery(other merchant) error = %v, want ErrNotExist", err)
	}
	if _, err := s.GetDelivery(ctx, "", evs[5].Seq); !errors.Is(err, payrouter.ErrNotExist) {
		t.Errorf("GetDelivery(never enqueued) error = %v, want ErrNotExist", err)
	}

	// Nothing is due before now.
	if c, err := s.ClaimDeliveries(ctx, now.Add(-time.Second), time.Minute, 10); err != nil || len(c) != 0 {
		t.Fatalf("claim before due = %d deliveries, %v; want none", len(c), err)
	}
	claimed, err := s.ClaimDeliveries(ctx, now, time.Minute, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 3 || claimed[0].Seq != evs[0].Seq || claimed[2].Seq != evs[2].Seq {
		t.Fatalf("claimed %v, want the first 3 events in seq order", seqsOf(claimed))
	}
	for _, c := range claimed {
		if !c.NextAt.Equal(now.Add(time.Minute)) || c.Version != 1 {
			t.Errorf("claimed %d: next_at %v version %d; want %v, 1", c.Seq, c.NextAt, c.Version, now.Add(time.Minute))
		}
	}
	// Leased rows are not claimed again until the lease ends.
	rest, err := s.ClaimDeliveries(ctx, now.Add(30*time.Second), time.Minute, 10)
	if err != nil || len(rest) != 1 || rest[0].Seq != evs[3].Seq {
		t.Fatalf("second claim = %v, %v; want only %d", seqsOf(rest), err, evs[3].Seq)
	}

	// Outcomes.
	done := claimed[0]
	done.Status, done.Attempts, done.LastStatus, done.UpdatedAt = store.DeliveryDelivered, 1, 200, now.Add(time.Second)
	done.DeliveredAt = ptr(now.Add(time.Second))
	retry := claimed[1]
	retry.Attempts, retry.LastStatus, retry.LastError, retry.NextAt, retry.UpdatedAt = 1, 503, "HTTP 503", now.Add(10*time.Minute), now.Add(time.Second)
	dead := claimed[2]
	dead.Status, dead.Attempts, dead.LastError, dead.UpdatedAt = store.DeliveryDead, 40, "connection refused", now.Add(time.Second)
	for _, d := range []store.Delivery{done, retry, dead} {
		ok, err := s.FinishDelivery(ctx, &d)
		if err != nil || !ok {
			t.Fatalf("FinishDelivery(%d) = %v, %v", d.Seq, ok, err)
		}
		back, err := s.GetDelivery(ctx, d.MerchantID, d.Seq)
		if err != nil || !reflect.DeepEqual(*back, d) {
			t.Errorf("after finish %d:\n got  %+v\n want %+v (%v)", d.Seq, back, d, err)
		}
	}
	// A stale version writes nothing.
	stale := claimed[1]
	stale.Status = store.DeliveryDelivered
	stale.Version--
	if ok, err := s.FinishDelivery(ctx, &stale); ok || err != nil {
		t.Errorf("FinishDelivery(stale version) = %v, %v; want false, nil", ok, err)
	}
	bad := claimed[1]
	bad.Status = "lost"
	if _, err := s.FinishDelivery(ctx, &bad); err == nil {
		t.Error("FinishDelivery(unknown status): got nil error")
	}

	lists := []struct {
		name string
		f    store.DeliveryFilter
		want []int64
	}{
		{"all", store.DeliveryFilter{}, []int64{evs[0].Seq, evs[1].Seq, evs[2].Seq, evs[3].Seq}},
		{"dead", store.DeliveryFilter{Status: store.DeliveryDead}, []int64{evs[2].Seq}},
		{"m2", store.DeliveryFilter{MerchantID: "m2"}, []int64{evs[1].Seq, evs[3].Seq}},
		{"after, limit", store.DeliveryFilter{After: evs[0].Seq, Limit: 2}, []int64{evs[1].Seq, evs[2].Seq}},
		{"none", store.DeliveryFilter{MerchantID: "m9"}, nil},
	}
	for _, l := range lists {
		t.Run("List "+l.name, func(t *testing.T) {
			got, err := s.ListDeliveries(ctx, l.f)
			if err != nil {
				t.Fatal(err)
			}
			if g := seqsOf(got); !reflect.DeepEqual(g, l.want) {
				t.Errorf("ListDeliveries(%+v) = %v, want %v", l.f, g, l.want)
			}
		})
	}

	// Redeliver a dead one: pending, due now, fresh window, version bumped.
	later := now.Add(48 * time.Hour)
	rd, err := s.Redeliver(ctx, "m1", dead.Seq, later)
	if err != nil {
		t.Fatal(err)
	}
	if rd.Status != store.DeliveryPending || rd.Attempts != 0 || !rd.NextAt.Equal(later) || !rd.CreatedAt.Equal(later) ||
		rd.Version != dead.Version+1 || rd.DeliveredAt != nil || rd.LastError != dead.LastError {
		t.Errorf("Redeliver(dead) = %+v", rd)
	}
	// The in-flight attempt of the old version cannot overwrite it.
	if ok, _ := s.FinishDelivery(ctx, &dead); ok {
		t.Error("FinishDelivery with the version before Redeliver succeeded")
	}
	// Redeliver of an event that never had a delivery creates one.
	rd, err = s.Redeliver(ctx, "", evs[5].Seq, later)
	if err != nil || rd.Status != store.DeliveryPending || rd.MerchantID != evs[5].MerchantID || rd.Version != 0 {
		t.Errorf("Redeliver(no delivery yet) = %+v, %v", rd, err)
	}
	if _, err := s.Redeliver(ctx, "m1", evs[1].Seq, later); !errors.Is(err, payrouter.ErrNotExist) {
		t.Errorf("Redeliver(another merchant's event) error = %v, want ErrNotExist", err)
	}
	if _, err := s.Redeliver(ctx, "", evs[5].Seq+1000, later); !errors.Is(err, payrouter.ErrNotExist) {
		t.Errorf("Redeliver(missing event) error = %v, want ErrNotExist", err)
	}
	if d, _ := s.GetDelivery(ctx, "", evs[1].Seq); d.Status != store.DeliveryPending || d.Attempts != 1 {
		t.Errorf("a refused redeliver changed event %d: %+v", evs[1].Seq, d)
	}
}

// testDeliveryConcurrentClaim: dispatchers claiming at once never get the
// same delivery.
func testDeliveryConcurrentClaim(t *testing.T, s store.Store) {
	ctx := context.Background()
	evs := makeEvents(t, s, 40)
	now := at(time.Hour)
	var ds []store.Delivery
	for _, e := range evs {
		ds = append(ds, store.Delivery{Seq: e.Seq, MerchantID: e.MerchantID, NextAt: now})
	}
	if err := s.EnqueueDeliveries(ctx, "webhooks", evs[len(evs)-1].Seq, ds); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		seen  = map[int64]int{}
		wg    sync.WaitGroup
		errCh = make(chan error, 8)
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := s.ClaimDeliveries(ctx, now, time.Hour, 3)
				if err != nil {
					errCh <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, d := range got {
					seen[d.Seq]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errCh)
	for err := range errCh {
		t.Fatal(err)
	}
	if len(seen) != len(evs) {
		t.Errorf("claimed %d distinct deliveries, want %d", len(seen), len(evs))
	}
	for seq, n := range seen {
		if n != 1 {
			t.Errorf("delivery %d claimed %d times, want once", seq, n)
		}
	}
}

func seqsOf(ds []store.Delivery) []int64 {
	var out []int64
	for _, d := range ds {
		out = append(out, d.Seq)
	}
	return out
}

// testEventsBefore pages events backwards (ending_before), for the stores
// that can.
func testEventsBefore(t *testing.T, s store.Store) {
	bl, ok := s.(interface {
		ListEventsBefore(ctx context.Context, merchantID string, before int64, limit int) ([]payrouter.Event, error)
	})
	if !ok {
		t.Skip("this store has no ListEventsBefore")
	}
	evs := makeEvents(t, s, 8) // m1 gets the even ones
	seqs := func(es []payrouter.Event) []int64 {
		var out []int64
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	tests := []struct {
		name     string
		merchant string
		before   int64
		limit    int
		want     []int64
	}{
		{"nearest, oldest first", "", evs[5].Seq, 2, []int64{evs[3].Seq, evs[4].Seq}},
		{"one merchant", "m1", evs[7].Seq, 2, []int64{evs[4].Seq, evs[6].Seq}},
		{"fewer than limit", "", evs[2].Seq, 10, []int64{evs[0].Seq, evs[1].Seq}},
		{"before the first", "", evs[0].Seq, 10, nil},
	}
	for _, tt := range tests {
		got, err := bl.ListEventsBefore(context.Background(), tt.merchant, tt.before, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(seqs(got)) != fmt.Sprint(tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, seqs(got), tt.want)
		}
	}
}
