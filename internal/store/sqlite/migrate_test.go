package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/internal/store/sqlstore"
)

// TestMigration5OnExistingData: a database from before migration 5 keeps
// its idempotency records under the create's scope, and a reference its
// outage-failed payment held becomes free while others stay taken.
func TestMigration5OnExistingData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old := fstest.MapFS{}
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() >= "0005" {
			continue
		}
		b, err := fs.ReadFile(migrations, "migrations/"+e.Name())
		if err != nil {
			t.Fatal(err)
		}
		old["migrations/"+e.Name()] = &fstest.MapFile{Data: b}
	}
	db, err := sql.Open("sqlite", path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	if err := sqlstore.Migrate(ctx, old, "migrations", nil, func(ctx context.Context) (*sql.Tx, error) { return db.BeginTx(ctx, nil) }); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMicro()
	payment := `INSERT INTO payments (id, merchant_id, reference, status, amount, currency, method, provider,
		provider_payment_id, amount_captured, amount_refunded, created_at, updated_at, data)
		VALUES (?, 'm1', ?, 'failed', 100, 'USD', 'card', '', '', 0, 0, ?, ?, ?)`
	attempt := `INSERT INTO attempts (payment_id, idx, n, provider, provider_payment_id, idempotency_key, status,
		error_class, error_code, error_message, expected_fee, latency_ms, started_at)
		VALUES (?, 0, 1, 'stripe', ?, 'k', ?, ?, '', '', 0, 0, ?)`
	outage := `{"route":{"rule":"","rules_version":"","strategy":"","candidates":null,"reason":""},"failure":{"code":"provider_unavailable"},"metadata":null,"tokens":null}`
	declined := strings.Replace(outage, "provider_unavailable", "card_declined", 1)
	for _, q := range []struct {
		query string
		args  []any
	}{
		{payment, []any{"pay_outage", "r-outage", now, now, outage}},
		{attempt, []any{"pay_outage", "", "failed", "unavailable", now}},
		{payment, []any{"pay_ambiguous", "r-ambiguous", now, now, outage}},
		{attempt, []any{"pay_ambiguous", "", "ambiguous", "ambiguous", now}},
		{payment, []any{"pay_declined", "r-declined", now, now, declined}},
		{attempt, []any{"pay_declined", "ch_1", "failed", "declined", now}},
		{`INSERT INTO idempotency (merchant_id, key, request_hash, payment_id, status, body, created_at)
			VALUES ('m1', 'k1', 'h', 'pay_outage', 201, x'7b7d', ?)`, []any{now}},
	} {
		if _, err := db.ExecContext(ctx, q.query, q.args...); err != nil {
			t.Fatalf("%s: %v", q.query, err)
		}
	}
	db.Close()

	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rec, err := s.GetIdempotencyKey(ctx, "m1", "POST /v1/payments k1")
	if err != nil || rec.Status != 201 || rec.PaymentID != "pay_outage" {
		t.Errorf("old record under the create's scope = %+v, %v", rec, err)
	}
	for _, tt := range []struct {
		ref  string
		free bool
	}{{"r-outage", true}, {"r-ambiguous", false}, {"r-declined", false}} {
		p := &payrouter.Payment{ID: "pay_new_" + tt.ref, MerchantID: "m1", Status: payrouter.StatusProcessing, Amount: 100,
			Currency: "USD", Method: payrouter.MethodCard, Reference: tt.ref, CreatedAt: time.Now(), UpdatedAt: time.Now()}
		err := s.CreatePayment(ctx, p)
		if tt.free && err != nil {
			t.Errorf("reference %s: %v, want it free", tt.ref, err)
		}
		if !tt.free && !errors.Is(err, store.ErrDuplicateReference) {
			t.Errorf("reference %s: %v, want ErrDuplicateReference", tt.ref, err)
		}
	}
}
