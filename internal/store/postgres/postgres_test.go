package postgres_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, to create test schemas

	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/internal/store/postgres"
	"github.com/payrouter/payrouter/internal/store/storetest"
)

// openFresh opens a store in a new schema of the PAYROUTER_TEST_POSTGRES
// database, dropped at cleanup, so concurrent runs never collide.
func openFresh(t *testing.T) *postgres.Store {
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

func withSearchPath(t *testing.T, dsn, schema string) string {
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
