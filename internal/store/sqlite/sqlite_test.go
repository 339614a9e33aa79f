package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/internal/store/sqlite"
	"github.com/payrouter/payrouter/internal/store/storetest"
)

func open(tb testing.TB, path string, opts sqlite.Options) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), path, opts)
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := open(t, filepath.Join(t.TempDir(), "sub", "dir", "payrouter.db"), sqlite.Options{})
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	})
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "payrouter.db")
	s := open(t, path, sqlite.Options{})
	now := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)
	p := &payrouter.Payment{ID: "pay_1", MerchantID: "m1", Status: payrouter.StatusProcessing, Amount: 50000,
		Currency: "IDR", Method: payrouter.MethodQRIS, Reference: "r1", CreatedAt: now, UpdatedAt: now}
	p.Advance(payrouter.StatusRequiresAction, now)
	if err := s.CreatePayment(ctx, p); err != nil {
		t.Fatal(err)
	}
	if rec, err := s.ClaimIdempotencyKey(ctx, "m1", "k", "h", now); rec != nil || err != nil {
		t.Fatalf("claim = %v, %v", rec, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// Opening again re-applies nothing and finds the data.
	s = open(t, path, sqlite.Options{Synchronous: "normal"})
	defer s.Close()
	got, err := s.GetPayment(ctx, "m1", "pay_1")
	if err != nil {
		t.Fatalf("GetPayment after reopen: %v", err)
	}
	if got.Status != payrouter.StatusRequiresAction || !got.CreatedAt.Equal(now) {
		t.Errorf("after reopen: status %s created %v, want requires_action %v", got.Status, got.CreatedAt, now)
	}
	evs, err := s.ListEvents(ctx, "m1", 0, 10)
	if err != nil || len(evs) != 1 {
		t.Errorf("events after reopen = %d, %v; want 1", len(evs), err)
	}
	if rec, err := s.ClaimIdempotencyKey(ctx, "m1", "k", "h", now); rec == nil || err != nil {
		t.Errorf("claim after reopen = %v, %v; want the existing record", rec, err)
	}
	// The next event continues the sequence.
	if _, err := s.UpdatePayment(ctx, "pay_1", func(p *payrouter.Payment) error {
		_, err := p.Advance(payrouter.StatusSucceeded, now)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	evs, err = s.ListEvents(ctx, "m1", 0, 10)
	if err != nil || len(evs) != 2 || evs[1].Seq != evs[0].Seq+1 {
		t.Errorf("events after update = %+v, %v; want two consecutive", evs, err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		dsn  string
		opts sqlite.Options
	}{
		{"empty", "", sqlite.Options{}},
		{"memory", ":memory:", sqlite.Options{}},
		{"query", filepath.Join(dir, "x.db") + "?_pragma=foo", sqlite.Options{}},
		{"uri", "file:" + filepath.Join(dir, "x.db"), sqlite.Options{}},
		{"synchronous", filepath.Join(dir, "x.db"), sqlite.Options{Synchronous: "extra-safe"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := sqlite.Open(context.Background(), tt.dsn, tt.opts)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q, %+v) = nil error, want an error", tt.dsn, tt.opts)
			}
		})
	}
}

func TestDuplicateReferenceIsNotOtherConstraints(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "p.db"), sqlite.Options{})
	defer s.Close()
	now := time.Now()
	p := &payrouter.Payment{ID: "pay_1", MerchantID: "m1", Reference: "r", CreatedAt: now, UpdatedAt: now}
	if err := s.CreatePayment(ctx, p); err != nil {
		t.Fatal(err)
	}
	q := *p
	q.Reference = "other"
	err := s.CreatePayment(ctx, &q)
	if err == nil || errors.Is(err, store.ErrDuplicateReference) {
		t.Errorf("duplicate id: error = %v, want a non-reference error", err)
	}
}

// BenchmarkCreateAndUpdatePayment measures the store writes of one payment:
// its creation (payment, attempt, event) and one update (status, attempt,
// event), each its own transaction, at each synchronous level — the cost of
// durable commits.
func BenchmarkCreateAndUpdatePayment(b *testing.B) {
	for _, sync := range []string{"full", "normal", "off"} {
		b.Run("synchronous="+sync, func(b *testing.B) {
			ctx := context.Background()
			s := open(b, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{Synchronous: sync})
			defer s.Close()
			now := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				id := fmt.Sprintf("pay_%09d", i)
				p := &payrouter.Payment{ID: id, MerchantID: "m1", Status: payrouter.StatusProcessing, Amount: 50000,
					Currency: "IDR", Method: payrouter.MethodGoPay, Reference: id, Provider: "midtrans",
					Capture: payrouter.CaptureAutomatic, CreatedAt: now, UpdatedAt: now,
					Metadata: map[string]string{"order": "42"},
					Attempts: []payrouter.Attempt{{N: 1, Provider: "midtrans", Status: payrouter.AttemptRequiresAction,
						StartedAt: now, IdempotencyKey: payrouter.AttemptKey(id, 1)}}}
				p.Advance(payrouter.StatusRequiresAction, now)
				if err := s.CreatePayment(ctx, p); err != nil {
					b.Fatal(err)
				}
				if _, err := s.UpdatePayment(ctx, id, func(p *payrouter.Payment) error {
					p.Attempts[0].Status = payrouter.AttemptSucceeded
					_, err := p.Advance(payrouter.StatusSucceeded, now)
					return err
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestPragmas(t *testing.T) {
	tests := []struct {
		sync     string
		wantSync int
	}{{"", 2}, {"full", 2}, {"NORMAL", 1}, {"off", 0}}
	for _, tt := range tests {
		t.Run("synchronous="+tt.sync, func(t *testing.T) {
			s := open(t, filepath.Join(t.TempDir(), "p.db"), sqlite.Options{Synchronous: tt.sync})
			defer s.Close()
			var sync, fk int
			var mode string
			db := s.Writer()
			if err := db.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil {
				t.Fatal(err)
			}
			if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
				t.Fatal(err)
			}
			if err := db.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil {
				t.Fatal(err)
			}
			if sync != tt.wantSync || mode != "wal" || fk != 1 {
				t.Errorf("synchronous=%d journal_mode=%s foreign_keys=%d, want %d wal 1", sync, mode, fk, tt.wantSync)
			}
		})
	}
}
