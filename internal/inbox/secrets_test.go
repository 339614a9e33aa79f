package inbox_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, to create a test schema

	"github.com/payrouter/payrouter/internal/inbox"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/internal/store/postgres"
	"github.com/payrouter/payrouter/internal/store/sqlite"
	"github.com/payrouter/payrouter/providers/xendit"
	"github.com/payrouter/payrouter/router"
)

const xenditToken = "xnd-callback-token-that-must-never-be-stored"

// rawStore is a store whose tables the test reads directly.
type rawStore interface {
	store.Store
	Writer() *sql.DB
}

// stores opens a fresh SQLite store and, when PAYROUTER_TEST_POSTGRES is
// set, a PostgreSQL store in a new schema (dropped afterwards).
func stores(t *testing.T) map[string]rawStore {
	t.Helper()
	ctx := context.Background()
	out := map[string]rawStore{}
	lite, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "p.db"), sqlite.Options{Synchronous: "off"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })
	out["sqlite"] = lite
	dsn := os.Getenv("PAYROUTER_TEST_POSTGRES")
	if dsn == "" {
		t.Log("PAYROUTER_TEST_POSTGRES is unset: PostgreSQL half skipped (set it, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
		return out
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	b := make([]byte, 6)
	rand.Read(b)
	schema := "payrouter_inbox_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`) })
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	pg, err := postgres.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	out["postgres"] = pg
	return out
}

// inboxRows returns every stored column of every inbox row as text.
func inboxRows(t *testing.T, st rawStore) []string {
	t.Helper()
	rows, err := st.Writer().Query(`SELECT provider, event_id, headers, body, parsed, outcome, note FROM inbox`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p, e, h, o, n string
		var b, pa []byte
		if err := rows.Scan(&p, &e, &h, &b, &pa, &o, &n); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Join([]string{p, e, h, string(b), string(pa), o, n}, "\x00"))
	}
	return out
}

// Xendit authenticates its webhooks with X-Callback-Token alone: the token
// (and any Authorization header) never reaches the inbox table, on either
// store, while the signature-like headers kept for audit do.
func TestNoSecretHeaderInInbox(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			parser, err := xendit.New(xendit.Config{Name: "xendit", SecretKey: "xnd_development_x", CallbackToken: xenditToken})
			if err != nil {
				t.Fatal(err)
			}
			in := inbox.New(st, router.New(st, nil, nil, router.Options{}, nil), map[string]inbox.Source{"xendit": {Parser: parser}}, nil)
			body := []byte(`{"event":"payment.succeeded","business_id":"b","created":"2026-12-01T10:00:00Z","data":{"id":"py-1",` +
				`"payment_request_id":"pr-1","reference_id":"pay_x_1","status":"SUCCEEDED","amount":10000,"currency":"IDR"}}`)
			h := http.Header{}
			h.Set("X-Callback-Token", xenditToken)
			h.Set("Authorization", "Basic "+xenditToken)
			h.Set("Webhook-Id", "whk-1")
			h.Set("Content-Type", "application/json")
			if _, err := in.Receive(ctx, "xendit", netip.Addr{}, h, body); err != nil {
				t.Fatalf("Receive: %v", err)
			}
			rows := inboxRows(t, st)
			if len(rows) != 1 {
				t.Fatalf("inbox has %d rows, want 1", len(rows))
			}
			if strings.Contains(rows[0], xenditToken) || strings.Contains(strings.ToLower(rows[0]), "callback-token") ||
				strings.Contains(rows[0], "Authorization") {
				t.Errorf("inbox row holds a secret: %q", rows[0])
			}
			if !strings.Contains(rows[0], "whk-1") {
				t.Errorf("inbox row lost the audit header Webhook-Id: %q", rows[0])
			}
		})
	}
}

// Rows stored by earlier versions (which kept X-Callback-Token) are
// scrubbed by migration 0004, on either store: its UPDATE is run here
// against such a row.
func TestMigrationScrubsStoredTokens(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if ok, err := st.InsertWebhook(ctx, &store.InboxItem{Provider: "xendit", EventID: "old-1", Body: []byte("{}"),
				Headers: map[string]string{"X-Callback-Token": xenditToken, "Authorization": "Basic x", "Webhook-Id": "whk-old"}}); !ok || err != nil {
				t.Fatalf("InsertWebhook = %v, %v", ok, err)
			}
			mig, err := os.ReadFile(filepath.Join("..", "store", name, "migrations", "0004_inbox_recheck.sql"))
			if err != nil {
				t.Fatal(err)
			}
			i := bytes.Index(mig, []byte("UPDATE inbox"))
			if i < 0 {
				t.Fatal("migration 0004 has no UPDATE inbox")
			}
			if _, err := st.Writer().ExecContext(ctx, string(mig[i:])); err != nil {
				t.Fatalf("scrub: %v", err)
			}
			it, err := st.GetWebhook(ctx, "xendit", "old-1")
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := it.Headers["X-Callback-Token"]; ok || it.Headers["Authorization"] != "" || it.Headers["Webhook-Id"] != "whk-old" {
				t.Errorf("headers after the scrub = %v, want only Webhook-Id", it.Headers)
			}
		})
	}
}
