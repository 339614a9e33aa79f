// Package postgres is the PostgreSQL store, through pgx/v5's database/sql
// driver. It shares its queries with the SQLite store (package sqlstore);
// what differs is row locking (SELECT … FOR UPDATE), how event sequence
// numbers are drawn (see nextSeqs) and the schema's types.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/payrouter/payrouter/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the PostgreSQL store.Store. Its methods are those of
// sqlstore.Store.
type Store struct {
	*sqlstore.Store
}

// maxConns bounds the connection pool; concurrent updates of one payment
// queue on its row lock, not on the pool.
const maxConns = 20

// Open connects to the database at dsn (a postgres:// URL or key=value
// string; search_path may be given as a parameter) and applies the embedded
// migrations to the current schema.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message does not echo the password.
		return nil, fmt.Errorf("postgres: parse dsn: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)

	var schema string
	if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	// Advisory locks are database-wide; keying them by schema lets several
	// payrouter schemas share a database without contending.
	migrateKey, eventsKey := lockKey("payrouter/migrate/"+schema), lockKey("payrouter/events/"+schema)

	migrateBegin := func(ctx context.Context) (*sql.Tx, error) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return nil, err
		}
		// Two nodes starting at once: one migrates, the other waits and then
		// finds the versions recorded.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateKey); err != nil {
			tx.Rollback()
			return nil, err
		}
		return tx, nil
	}
	if err := sqlstore.Migrate(ctx, migrations, "migrations", rebind, migrateBegin); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}

	st := sqlstore.New(db, db, sqlstore.Dialect{
		Rebind:     rebind,
		BeginWrite: func(ctx context.Context) (*sql.Tx, error) { return db.BeginTx(ctx, nil) },
		LockRow:    " FOR UPDATE",
		NextSeqs: func(ctx context.Context, tx *sqlstore.Tx, n int) ([]int64, error) {
			return nextSeqs(ctx, tx, eventsKey, n)
		},
		IsDuplicateReference: isDuplicateReference,
		Time:                 func(t time.Time) any { return t },
	})
	return &Store{st}, nil
}

// nextSeqs draws n numbers from event_seq while holding a transaction-scoped
// advisory lock until commit.
//
// Why the lock: a sequence hands numbers out when nextval runs, not when the
// transaction commits. Without it, transaction A could draw 10 and B draw
// 11, B commit, a consumer polling "events after 9" see 11 and move its
// cursor past 10 — and A's event 10, committed a moment later, would never
// be delivered. With the lock, the next event-writing transaction cannot draw
// a number until the previous one has committed (PostgreSQL releases
// transaction locks after the commit is visible), so seq order is commit
// order and after=seq polling never skips. The price is that event-writing
// transactions serialize from this point to their commit; the store inserts
// events last, right before COMMIT, to keep that window short. Numbers
// drawn by a transaction that rolls back leave gaps, which is harmless.
func nextSeqs(ctx context.Context, tx *sqlstore.Tx, key int64, n int) ([]int64, error) {
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, key); err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT nextval('event_seq') FROM generate_series(1, $1)`, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	seqs := make([]int64, 0, n)
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		seqs = append(seqs, s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(seqs) != n {
		return nil, fmt.Errorf("got %d sequence numbers, want %d", len(seqs), n)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return seqs, nil
}

// isDuplicateReference: unique_violation (23505) on the reference index,
// and only that one.
func isDuplicateReference(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "23505" && e.ConstraintName == "payments_merchant_reference_key"
}

// rebind turns the shared queries' ? placeholders into $1, $2, …. The
// shared queries contain no ? inside literals.
func rebind(q string) string {
	n := strings.Count(q, "?")
	if n == 0 {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 2*n)
	i := 0
	for _, r := range q {
		if r == '?' {
			i++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(i))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func lockKey(s string) int64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return int64(h.Sum64())
}
