package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/cpustat"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/internal/store/sqlite"
	"github.com/payrouter/payrouter/internal/store/sqlstore"
	"github.com/payrouter/payrouter/router"
)

func benchPayment(id string, now time.Time) *payrouter.Payment {
	p := &payrouter.Payment{ID: id, MerchantID: "m1", Status: payrouter.StatusProcessing, Amount: 50000,
		Currency: "IDR", Method: payrouter.MethodQRIS, Reference: id, Provider: "midtrans",
		Capture: payrouter.CaptureAutomatic, CreatedAt: now, UpdatedAt: now,
		Metadata: map[string]string{"order": "42"},
		Attempts: []payrouter.Attempt{{N: 1, Provider: "midtrans", Status: payrouter.AttemptPending,
			StartedAt: now, IdempotencyKey: payrouter.AttemptKey(id, 1)}}}
	p.Advance(payrouter.StatusRequiresAction, now)
	return p
}

// TestGroupCommitIsolatesFailures sends concurrent writes, some of which
// fail (duplicate references, an update whose fn fails): with the writes
// sharing transactions, a failed write must roll back only itself.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "g.db"), sqlite.Options{Synchronous: "off"})
	defer s.Close()
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := s.CreatePayment(ctx, benchPayment("pay_taken", now)); err != nil {
		t.Fatal(err)
	}
	const n = 200
	errFn := errors.New("fn refuses")
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch i % 4 {
			case 0: // duplicate reference: must fail alone
				p := benchPayment(fmt.Sprintf("pay_dup_%03d", i), now)
				p.Reference = "pay_taken"
				errs[i] = s.CreatePayment(ctx, p)
			case 1: // fn error: nothing written
				_, errs[i] = s.UpdatePayment(ctx, "pay_taken", func(p *payrouter.Payment) error {
					p.Description = "must not be stored"
					return errFn
				})
			default:
				errs[i] = s.CreatePayment(ctx, benchPayment(fmt.Sprintf("pay_ok_%03d", i), now))
			}
		}()
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch i % 4 {
		case 0:
			if !errors.Is(err, store.ErrDuplicateReference) {
				t.Errorf("write %d (duplicate reference): err = %v, want ErrDuplicateReference", i, err)
			}
		case 1:
			if err != errFn {
				t.Errorf("write %d (fn error): err = %v, want fn's error as is", i, err)
			}
		default:
			if err != nil {
				t.Errorf("write %d: err = %v, want nil", i, err)
				continue
			}
			ok++
			if _, err := s.GetPayment(ctx, "m1", fmt.Sprintf("pay_ok_%03d", i)); err != nil {
				t.Errorf("payment of write %d not readable: %v", i, err)
			}
		}
	}
	p, err := s.GetPayment(ctx, "m1", "pay_taken")
	if err != nil || p.Description != "" {
		t.Errorf("pay_taken after failed updates: %v, description %q; want unchanged", err, p.Description)
	}
	evs, err := s.ListEvents(ctx, "m1", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(evs), ok+1; got != want {
		t.Errorf("events = %d, want %d (one per created payment)", got, want)
	}
	for i := range evs {
		if evs[i].Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d, want %d: rolled-back writes must not leave gaps", i, evs[i].Seq, i+1)
		}
	}
}

// TestGroupCommitRerunIsolatesFailures: the router's writes
// (CreatePaymentClaiming, UpdatePaymentWith on a held copy) may run again,
// so their batches run without savepoints and are rerun with them when one
// fails. A failed write (duplicate reference, taken key) must still roll
// back only itself, every other write of its batch commits exactly once,
// and event seqs stay gap-free.
func TestGroupCommitRerunIsolatesFailures(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "g.db"), sqlite.Options{Synchronous: "off"})
	defer s.Close()
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	claim := func(key string) store.IdempotencyClaim {
		return store.IdempotencyClaim{MerchantID: "m1", Key: key, RequestHash: "h", Now: now}
	}
	if rec, err := s.CreatePaymentClaiming(ctx, benchPayment("pay_taken", now), claim("key_taken")); rec != nil || err != nil {
		t.Fatal(rec, err)
	}
	const n = 300
	var wg sync.WaitGroup
	errs := make([]error, n)
	recs := make([]*store.IdempotencyRecord, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("pay_%03d", i)
			p := benchPayment(id, now)
			switch i % 3 {
			case 0: // duplicate reference: fails alone, its key stays free
				p.Reference = "pay_taken"
				recs[i], errs[i] = s.CreatePaymentClaiming(ctx, p, claim("key_"+id))
			case 1: // taken key: the owner's record, nothing written
				recs[i], errs[i] = s.CreatePaymentClaiming(ctx, p, claim("key_taken"))
			default: // created, then saved on the held copy, completing the key
				if recs[i], errs[i] = s.CreatePaymentClaiming(ctx, p, claim("key_"+id)); errs[i] != nil || recs[i] != nil {
					return
				}
				_, errs[i] = s.UpdatePaymentWith(ctx, id, func(p *payrouter.Payment) error {
					p.Attempts[0].Status = payrouter.AttemptSucceeded
					_, err := p.Advance(payrouter.StatusSucceeded, now)
					return err
				}, store.UpdateOptions{Current: p, Complete: &store.IdempotencyCompletion{MerchantID: "m1", Key: "key_" + id,
					Status: 201, Render: func(q *payrouter.Payment) ([]byte, error) { return []byte(q.ID), nil }}})
			}
		}()
	}
	wg.Wait()
	ok := 0
	for i := range n {
		id := fmt.Sprintf("pay_%03d", i)
		_, getErr := s.GetPayment(ctx, "m1", id)
		switch i % 3 {
		case 0:
			if !errors.Is(errs[i], store.ErrDuplicateReference) || !errors.Is(getErr, payrouter.ErrNotExist) {
				t.Errorf("%s (duplicate reference): err = %v, get = %v; want ErrDuplicateReference and no payment", id, errs[i], getErr)
			}
			if rec, err := s.ClaimIdempotencyKey(ctx, "m1", "key_"+id, "h", now); rec != nil || err != nil {
				t.Errorf("%s: key after a refused create = %+v, %v; want free", id, rec, err)
			}
		case 1:
			if errs[i] != nil || recs[i] == nil || recs[i].PaymentID != "pay_taken" || !errors.Is(getErr, payrouter.ErrNotExist) {
				t.Errorf("%s (taken key): rec = %+v, err = %v, get = %v; want pay_taken's record and no payment", id, recs[i], errs[i], getErr)
			}
		default:
			if errs[i] != nil || recs[i] != nil || getErr != nil {
				t.Errorf("%s: err = %v, rec = %+v, get = %v; want created and saved", id, errs[i], recs[i], getErr)
				continue
			}
			ok++
			if rec, err := s.ClaimIdempotencyKey(ctx, "m1", "key_"+id, "h", now); err != nil || rec == nil || rec.Running() || string(rec.Body) != id {
				t.Errorf("%s: key = %+v, %v; want completed with its response", id, rec, err)
			}
		}
	}
	evs, err := s.ListEvents(ctx, "m1", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	// pay_taken's requires_action, and two per saved payment.
	if got, want := len(evs), 1+2*ok; got != want {
		t.Errorf("events = %d, want %d (each committed write's, once)", got, want)
	}
	for i := range evs {
		if evs[i].Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d, want %d: rolled-back writes must not leave gaps", i, evs[i].Seq, i+1)
		}
	}
}

// TestGroupCommitSerializesUpdates: concurrent read-modify-writes of one
// payment, batched together, each see the previous one's result.
func TestGroupCommitSerializesUpdates(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "g.db"), sqlite.Options{Synchronous: "off"})
	defer s.Close()
	now := time.Now()
	if err := s.CreatePayment(ctx, benchPayment("pay_1", now)); err != nil {
		t.Fatal(err)
	}
	const n = 100
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.UpdatePayment(ctx, "pay_1", func(p *payrouter.Payment) error {
				p.AmountCaptured++
				return nil
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	p, err := s.GetPayment(ctx, "", "pay_1")
	if err != nil {
		t.Fatal(err)
	}
	if p.AmountCaptured != n {
		t.Errorf("AmountCaptured = %d after %d concurrent increments, want %d", p.AmountCaptured, n, n)
	}
}

// TestGroupCommitPanicAndCancel: a panicking fn panics in its caller (not
// in the committer), a write whose context is already done is not run,
// and the store keeps working.
func TestGroupCommitPanicAndCancel(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "g.db"), sqlite.Options{Synchronous: "off"})
	now := time.Now()
	if err := s.CreatePayment(ctx, benchPayment("pay_1", now)); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want the fn's panic \"boom\"", r)
			}
		}()
		_, _ = s.UpdatePayment(ctx, "pay_1", func(p *payrouter.Payment) error { panic("boom") })
	}()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.CreatePayment(canceled, benchPayment("pay_2", now)); !errors.Is(err, context.Canceled) {
		t.Errorf("create with a canceled context: %v, want context.Canceled", err)
	}
	if _, err := s.UpdatePayment(ctx, "pay_1", func(p *payrouter.Payment) error { p.Description = "after"; return nil }); err != nil {
		t.Errorf("update after a panic: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePayment(ctx, benchPayment("pay_3", now)); !errors.Is(err, sqlstore.ErrClosed) {
		t.Errorf("create after Close: %v, want ErrClosed", err)
	}
}

// BenchmarkParallelPaymentWrites measures the four durable writes of one
// API payment (claim key, create, update, complete key) from many
// goroutines at once, with and without group commit: the store's
// throughput ceiling for the router.
func BenchmarkParallelPaymentWrites(b *testing.B) {
	for _, sync := range []string{"full", "off"} {
		for _, gc := range []int{-1, 0} {
			name := fmt.Sprintf("synchronous=%s/group_commit=%v", sync, gc == 0)
			b.Run(name, func(b *testing.B) {
				ctx := context.Background()
				s := open(b, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{Synchronous: sync, GroupCommit: gc})
				defer s.Close()
				now := time.Now()
				var seq atomic.Int64
				b.SetParallelism(16) // 16 × GOMAXPROCS writers
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						id := fmt.Sprintf("pay_%09d", seq.Add(1))
						if _, err := s.ClaimIdempotencyKey(ctx, "m1", id, "h", now); err != nil {
							b.Error(err)
							return
						}
						if err := s.CreatePayment(ctx, benchPayment(id, now)); err != nil {
							b.Error(err)
							return
						}
						if _, err := s.UpdatePayment(ctx, id, func(p *payrouter.Payment) error {
							p.Attempts[0].Status = payrouter.AttemptSucceeded
							_, err := p.Advance(payrouter.StatusSucceeded, now)
							return err
						}); err != nil {
							b.Error(err)
							return
						}
						if err := s.CompleteIdempotencyKey(ctx, "m1", id, 201, []byte(`{}`)); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "payments/s")
			})
		}
	}
}

// BenchmarkRouterWritePath is the router's durable write path for one
// idempotent payment, with as many writers as payments in flight at c=512:
// CreatePaymentClaiming (key + payment + attempt + event) then
// UpdatePaymentWith on the held copy, completing the key (payment +
// attempt + event + response).
func BenchmarkRouterWritePath(b *testing.B) {
	for _, w := range []int{32, 512} {
		for _, ids := range []string{"ordered", "random"} {
			for _, sync := range []string{"full", "off"} {
				name := fmt.Sprintf("writers=%d/ids=%s/synchronous=%s", w, ids, sync)
				b.Run(name, func(b *testing.B) { benchWritePath(b, w, ids == "ordered", sync) })
			}
		}
	}
}

// benchWritePath is the router's write path as the API drives it: with
// the client's random idempotency key and reference, a payment id from
// router.NewID (ordered) or fully random (what NewID was before), the
// provider's random payment id written by the update.
func benchWritePath(b *testing.B, writers int, ordered bool, sync string) {
	ctx := context.Background()
	s := open(b, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{Synchronous: sync})
	defer s.Close()
	now := time.Now()
	b.SetParallelism(max(1, writers/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpustat.Process()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := router.NewID("pay_")
			if !ordered {
				id = "pay_" + randText(24)
			}
			key := randText(32)
			p := benchPayment(id, now)
			p.Reference = randText(16)
			rec, err := s.CreatePaymentClaiming(ctx, p, store.IdempotencyClaim{MerchantID: "m1", Key: key, RequestHash: "h", Now: now})
			if err != nil || rec != nil {
				b.Errorf("create = %v, %v", rec, err)
				return
			}
			ppid := "pi_" + randText(24)
			_, err = s.UpdatePaymentWith(ctx, id, func(p *payrouter.Payment) error {
				p.Attempts[0].Status = payrouter.AttemptSucceeded
				p.Attempts[0].ProviderPaymentID = ppid
				p.ProviderPaymentID = ppid
				_, err := p.Advance(payrouter.StatusSucceeded, now)
				return err
			}, store.UpdateOptions{Current: p, Complete: &store.IdempotencyCompletion{MerchantID: "m1", Key: key, Status: 201,
				Render: func(*payrouter.Payment) ([]byte, error) { return []byte(`{}`), nil }}})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "payments/s")
	b.ReportMetric(float64((cpustat.Process()-cpu0).Microseconds())/float64(b.N), "cpu-µs/payment")
}

func randText(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return string(b)
}
