package app_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/payrouter/payrouter/internal/app/apptest"
	"github.com/payrouter/payrouter/internal/config"
)

// startOn starts a sandbox on sc's store, with mutate (may be nil).
func startOn(t *testing.T, sc storeCase, mutate func(*config.Config)) *apptest.TestInstance {
	t.Helper()
	return apptest.StartSandbox(t, sc.dsn, func(c *config.Config) {
		if sc.mutate != nil {
			sc.mutate(c)
		}
		if mutate != nil {
			mutate(c)
		}
	})
}

// storeCase is a store to run an end-to-end test on.
type storeCase struct {
	name   string
	dsn    string
	mutate func(*config.Config)
}

// testStores returns SQLite, and PostgreSQL (a fresh schema dropped at
// cleanup) when PAYROUTER_TEST_POSTGRES is set.
func testStores(t *testing.T) []storeCase {
	t.Helper()
	out := []storeCase{{name: "sqlite", dsn: filepath.Join(t.TempDir(), "p.db")}}
	dsn := os.Getenv("PAYROUTER_TEST_POSTGRES")
	if dsn == "" {
		t.Log("PAYROUTER_TEST_POSTGRES is unset: PostgreSQL case skipped")
		return out
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	b := make([]byte, 6)
	rand.Read(b)
	schema := "payrouter_app_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(context.Background(), `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() { _, _ = admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`) })
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("PAYROUTER_TEST_POSTGRES is not a URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return append(out, storeCase{name: "postgres", dsn: u.String(), mutate: func(c *config.Config) { c.Store.Driver = "postgres" }})
}
