package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Migrate applies the numbered migrations NNNN_name.sql in dir of fsys that
// are not yet recorded in schema_migrations, each in its own transaction
// with its version row, in version order. begin starts a transaction that
// excludes concurrent migrators (SQLite: BEGIN IMMEDIATE; PostgreSQL: an
// advisory lock taken by the caller). Migrations are applied once: a
// recorded version is never re-run, so a released file must not change.
func Migrate(ctx context.Context, fsys fs.FS, dir string, rebind func(string) string,
	begin func(ctx context.Context) (*sql.Tx, error)) error {
	if rebind == nil {
		rebind = func(q string) string { return q }
	}
	if err := createMigrationsTable(ctx, begin); err != nil {
		return err
	}
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	type migration struct {
		version int
		name    string
	}
	var ms []migration
	seen := map[int]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return fmt.Errorf("store: migrate: %s: want NNNN_name.sql", name)
		}
		if prev, dup := seen[v]; dup {
			return fmt.Errorf("store: migrate: %s and %s share version %d", prev, name, v)
		}
		seen[v] = name
		ms = append(ms, migration{v, name})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for _, m := range ms {
		body, err := fs.ReadFile(fsys, path.Join(dir, m.name))
		if err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
		if err := applyMigration(ctx, m.version, m.name, string(body), rebind, begin); err != nil {
			return err
		}
	}
	return nil
}

func applyMigration(ctx context.Context, version int, name, body string, rebind func(string) string,
	begin func(ctx context.Context) (*sql.Tx, error)) error {
	tx, err := begin(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate %s: %w", name, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, rebind(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), version).Scan(&n); err != nil {
		return fmt.Errorf("store: migrate %s: %w", name, err)
	}
	if n > 0 {
		return nil // applied already (maybe by a concurrent migrator)
	}
	if _, err := tx.ExecContext(ctx, body); err != nil {
		return fmt.Errorf("store: migrate %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, rebind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
		version, name, time.Now().UTC().Format(time.RFC3339)); err != nil {
		return fmt.Errorf("store: migrate %s: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: migrate %s: commit: %w", name, err)
	}
	return nil
}

func createMigrationsTable(ctx context.Context, begin func(ctx context.Context) (*sql.Tx, error)) error {
	tx, err := begin(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER NOT NULL PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
}
