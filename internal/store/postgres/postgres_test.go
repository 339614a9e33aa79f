package postgres_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, to create test schemas

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/internal/store/postgres"
	"github.com/payrouter/payrouter/internal/store/storetest"
)

// openFresh opens a store in a new schema of the PAYROUTER_TEST_POSTGRES
// database, dropped at cleanup, so concurrent runs never collide.
func openFresh(t testing.TB) *postgres.Store {
	t.Helper()
	dsn := os.Getenv("PAYROUTER_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("PAYROUTER_TEST_POSTGRES is unset; set it (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL store tests")
	}
	ctx := context.Background()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("open admin connection: %v", err)
	}
	t.Cleanup(func() { admin.Close() })
	b := make([]byte, 6)
	rand.Read(b)
	schema := "payrouter_test_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	s, err := postgres.Open(ctx, withSearchPath(t, dsn, schema))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func withSearchPath(t testing.TB, dsn, schema string) string {
	t.Helper()
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return dsn + " search_path=" + schema
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("PAYROUTER_TEST_POSTGRES is not a URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openFresh(t) })
}

// TestReopen: a second Open of a migrated schema applies nothing and sees the data.
func TestReopen(t *testing.T) {
	s := openFresh(t)
	ctx := context.Background()
	if rec, err := s.ClaimIdempotencyKey(ctx, "m1", "k", "h", testTime); rec != nil || err != nil {
		t.Fatalf("claim = %v, %v", rec, err)
	}
	var search string
	if err := s.Writer().QueryRowContext(ctx, `SELECT current_schema()`).Scan(&search); err != nil {
		t.Fatal(err)
	}
	s2, err := postgres.Open(ctx, withSearchPath(t, os.Getenv("PAYROUTER_TEST_POSTGRES"), search))
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	defer s2.Close()
	if rec, err := s2.ClaimIdempotencyKey(ctx, "m1", "k", "h", testTime); rec == nil || err != nil {
		t.Errorf("claim through the second store = %v, %v; want the existing record", rec, err)
	}
}

var testTime = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// TestEventWatermark: an event of a younger transaction stays hidden from
// ListEvents while an older transaction that may still write an event
// with a smaller seq is running; once that one commits, both are listed in
// seq order. A consumer polling "after=" therefore never moves its cursor
// past an event that appears later (the reason the global advisory lock
// existed). The older transaction writes its event as the store does:
// seq = base + 1024 × its transaction id.
//
// The younger write runs both ways the store writes events: statement by
// statement (UpdatePayment, seqs from nextSeqs) and pipelined
// (UpdatePaymentWith with Current, seqs drawn in the INSERT).
func TestEventWatermark(t *testing.T) {
	now := testTime
	advance := func(p *payrouter.Payment) error {
		_, err := p.Advance(payrouter.StatusSucceeded, now)
		return err
	}
	t.Run("statements", func(t *testing.T) {
		testEventWatermark(t, func(s *postgres.Store, id string) error {
			_, err := s.UpdatePayment(context.Background(), id, advance)
			return err
		})
	})
	t.Run("pipelined", func(t *testing.T) {
		testEventWatermark(t, func(s *postgres.Store, id string) error {
			cur, err := s.GetPayment(context.Background(), "", id)
			if err != nil {
				return err
			}
			_, err = s.UpdatePaymentWith(context.Background(), id, advance, store.UpdateOptions{Current: cur})
			return err
		})
	})
}

func testEventWatermark(t *testing.T, updateYoung func(s *postgres.Store, id string) error) {
	s := openFresh(t)
	ctx := context.Background()
	now := testTime
	mk := func(id string) *payrouter.Payment {
		return &payrouter.Payment{ID: id, MerchantID: "m1", Reference: id, Status: payrouter.StatusProcessing,
			Amount: 1000, Currency: "USD", Method: payrouter.MethodCard, Provider: "stripe",
			Capture: payrouter.CaptureAutomatic, CreatedAt: now, UpdatedAt: now}
	}
	for _, id := range []string{"pay_old", "pay_young"} {
		if err := s.CreatePayment(ctx, mk(id)); err != nil {
			t.Fatal(err)
		}
	}
	old, err := s.Writer().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Rollback()
	var oldSeq int64
	if err := old.QueryRowContext(ctx, `SELECT base + 1024 * pg_current_xact_id()::text::bigint FROM event_seq_base`).Scan(&oldSeq); err != nil {
		t.Fatal(err)
	}
	if err := updateYoung(s, "pay_young"); err != nil {
		t.Fatal(err)
	}
	evs, err := s.ListEvents(ctx, "", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 0 {
		t.Fatalf("ListEvents while an older transaction runs = %v; want nothing (its event could land below)", evs)
	}
	if _, err := old.ExecContext(ctx, `INSERT INTO events (seq, id, merchant_id, payment_id, type, created_at, data)
		VALUES ($1, $2, 'm1', 'pay_old', 'payment_success', now(), 'null')`, oldSeq, payrouter.EventID(oldSeq)); err != nil {
		t.Fatal(err)
	}
	if err := old.Commit(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(evs) < 2 && time.Now().Before(deadline) {
		if evs, err = s.ListEvents(ctx, "", 0, 100); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // poll: other sessions' transactions may hold the watermark a moment
	}
	if len(evs) != 2 || evs[0].PaymentID != "pay_old" || evs[1].PaymentID != "pay_young" {
		t.Fatalf("events after the older commit = %+v; want pay_old's then pay_young's", evs)
	}
}

// TestPipelinedEvents: events written by the pipelined paths (a create
// with pending events, an optimistic update with two) get seqs in their
// transaction's block (base + 1024 × xid + i, consecutive within it) and
// ids as payrouter.EventID makes them.
func TestPipelinedEvents(t *testing.T) {
	s := openFresh(t)
	ctx := context.Background()
	now := testTime
	p := &payrouter.Payment{ID: "pay_1", MerchantID: "m1", Reference: "r1", Status: payrouter.StatusProcessing,
		Amount: 1000, Currency: "USD", Method: payrouter.MethodCard, Provider: "stripe",
		Capture: payrouter.CaptureAutomatic, CreatedAt: now, UpdatedAt: now}
	if _, err := p.Advance(payrouter.StatusRequiresAction, now); err != nil {
		t.Fatal(err)
	}
	claim := store.IdempotencyClaim{MerchantID: "m1", Key: "k1", RequestHash: "h1", Now: now}
	if rec, err := s.CreatePaymentClaiming(ctx, p, claim); rec != nil || err != nil {
		t.Fatalf("CreatePaymentClaiming = %v, %v", rec, err)
	}
	saved, err := s.UpdatePaymentWith(ctx, p.ID, func(q *payrouter.Payment) error {
		if _, err := q.Advance(payrouter.StatusAuthorized, now); err != nil {
			return err
		}
		_, err := q.Advance(payrouter.StatusSucceeded, now)
		return err
	}, store.UpdateOptions{Current: p})
	if err != nil {
		t.Fatalf("UpdatePaymentWith: %v", err)
	}
	if saved.Revision() != 2 {
		t.Errorf("revision after the update = %d, want 2", saved.Revision())
	}
	var base int64
	if err := s.Writer().QueryRowContext(ctx, `SELECT base FROM event_seq_base`).Scan(&base); err != nil {
		t.Fatal(err)
	}
	var evs []payrouter.Event
	for deadline := time.Now().Add(10 * time.Second); len(evs) < 3 && time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if evs, err = s.ListEvents(ctx, "m1", 0, 100); err != nil {
			t.Fatal(err)
		}
	}
	if len(evs) != 3 {
		t.Fatalf("events = %+v; want the create's and the update's two", evs)
	}
	for _, e := range evs {
		if e.ID != payrouter.EventID(e.Seq) || e.PaymentID != p.ID || (e.Seq-base)%1024 > 1 {
			t.Errorf("event %+v: want id %s, payment %s, index 0 or 1 in its transaction's block", e, payrouter.EventID(e.Seq), p.ID)
		}
	}
	if (evs[0].Seq-base)%1024 != 0 || evs[2].Seq != evs[1].Seq+1 || (evs[1].Seq-base)/1024 == (evs[0].Seq-base)/1024 {
		t.Errorf("seqs %d, %d, %d: want the create's first in its block, the update's two consecutive in another", evs[0].Seq, evs[1].Seq, evs[2].Seq)
	}
}

// TestPipelineGroupIsolation: concurrent pipelined writes share group
// transactions; a write that fails (a used reference, a taken key) or is
// stale (its Current is outdated) must fail or retry alone, and every other
// write of its group must be committed as if it had run on its own.
func TestPipelineGroupIsolation(t *testing.T) {
	s := openFresh(t)
	ctx := context.Background()
	now := testTime
	mk := func(i int) *payrouter.Payment {
		id := fmt.Sprintf("pay_%03d", i)
		return &payrouter.Payment{ID: id, MerchantID: "m1", Reference: "ref_" + id, Status: payrouter.StatusProcessing,
			Amount: 1000, Currency: "USD", Method: payrouter.MethodCard, Provider: "stripe",
			Capture: payrouter.CaptureAutomatic, CreatedAt: now, UpdatedAt: now,
			Attempts: []payrouter.Attempt{{N: 1, Provider: "stripe", Status: payrouter.AttemptPending, StartedAt: now, IdempotencyKey: id + "_1"}}}
	}
	claim := func(key string) store.IdempotencyClaim {
		return store.IdempotencyClaim{MerchantID: "m1", Key: key, RequestHash: "h", Now: now}
	}
	owner := mk(999)
	if rec, err := s.CreatePaymentClaiming(ctx, owner, claim("taken")); rec != nil || err != nil {
		t.Fatalf("create owner = %v, %v", rec, err)
	}

	const n = 90
	var wg sync.WaitGroup
	start := make(chan struct{})
	created := make([]*payrouter.Payment, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, key := mk(i), fmt.Sprintf("k%03d", i)
			switch i % 6 {
			case 0:
				p.Reference = owner.Reference
			case 1:
				key = "taken"
			}
			<-start
			rec, err := s.CreatePaymentClaiming(ctx, p, claim(key))
			switch i % 6 {
			case 0:
				if !errors.Is(err, store.ErrDuplicateReference) {
					t.Errorf("create %s with a used reference = %v, %v; want ErrDuplicateReference", p.ID, rec, err)
				}
			case 1:
				if err != nil || rec == nil || rec.PaymentID != owner.ID {
					t.Errorf("create %s with a taken key = %+v, %v; want the owner's record", p.ID, rec, err)
				}
			default:
				if rec != nil || err != nil {
					t.Errorf("create %s = %+v, %v; want nil, nil", p.ID, rec, err)
				}
				created[i] = p
			}
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	// Updates: every third one with an outdated Current (bumped by a
	// plain update first), so its group's guard fails and it reruns alone.
	for i, p := range created {
		if p != nil && i%3 == 0 {
			if _, err := s.UpdatePayment(ctx, p.ID, func(q *payrouter.Payment) error { q.Description = "bumped"; return nil }); err != nil {
				t.Fatal(err)
			}
		}
	}
	start = make(chan struct{})
	for i, p := range created {
		if p == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			saved, err := s.UpdatePaymentWith(ctx, p.ID, func(q *payrouter.Payment) error {
				q.Attempts[0].Status = payrouter.AttemptSucceeded
				_, err := q.Advance(payrouter.StatusSucceeded, now)
				return err
			}, store.UpdateOptions{Current: p, Complete: &store.IdempotencyCompletion{MerchantID: "m1", Key: fmt.Sprintf("k%03d", i), Status: 201,
				Render: func(q *payrouter.Payment) ([]byte, error) { return []byte(q.ID), nil }}})
			if err != nil {
				t.Errorf("update %s: %v", p.ID, err)
				return
			}
			want := int64(2)
			if i%3 == 0 {
				want = 3
			}
			if saved.Revision() != want {
				t.Errorf("update %s: revision %d, want %d", p.ID, saved.Revision(), want)
			}
		}()
	}
	close(start)
	wg.Wait()

	for i, p := range created {
		if p == nil {
			continue
		}
		got, err := s.GetPayment(ctx, "m1", p.ID)
		if err != nil {
			t.Fatalf("get %s: %v", p.ID, err)
		}
		if got.Status != payrouter.StatusSucceeded || got.Attempts[0].Status != payrouter.AttemptSucceeded || (i%3 == 0) != (got.Description == "bumped") {
			t.Errorf("%s stored as %s, attempt %s, description %q", p.ID, got.Status, got.Attempts[0].Status, got.Description)
		}
		rec, err := s.GetIdempotencyKey(ctx, "m1", fmt.Sprintf("k%03d", i))
		if err != nil || rec.Status != 201 || string(rec.Body) != p.ID {
			t.Errorf("key of %s = %+v, %v; want completed with its body", p.ID, rec, err)
		}
	}
	for i := 0; i < n; i += 6 {
		if _, err := s.GetPayment(ctx, "m1", mk(i).ID); !errors.Is(err, payrouter.ErrNotExist) {
			t.Errorf("payment %s with a used reference was stored (%v)", mk(i).ID, err)
		}
	}
	var evs []payrouter.Event
	want := 0
	for _, p := range created {
		if p != nil {
			want++
		}
	}
	for deadline := time.Now().Add(10 * time.Second); len(evs) < want && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		var err error
		if evs, err = s.ListEvents(ctx, "m1", 0, 1000); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for i, e := range evs {
		if e.ID != payrouter.EventID(e.Seq) || (i > 0 && e.Seq <= evs[i-1].Seq) || seen[e.PaymentID] {
			t.Errorf("event %d: %+v (ids from seqs, ascending, one per payment)", i, e)
		}
		seen[e.PaymentID] = true
	}
	if len(evs) != want {
		t.Errorf("%d events, want %d (one success per updated payment)", len(evs), want)
	}
}
