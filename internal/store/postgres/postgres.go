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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// Pipelined group commit (sqlstore.Dialect.PipelineGroup): committers,
// and writes per transaction. A few committers keep the server's two
// cores busy while each sends one group; the cap bounds a group's locks
// and the work a rolled-back group repeats.
const (
	pipelineGroup = 3
	pipelineBatch = 32
)

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
	migrateKey := lockKey("payrouter/migrate/" + schema)

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
	var base int64
	if err := db.QueryRowContext(ctx, `SELECT base FROM event_seq_base`).Scan(&base); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: event seq base: %w", err)
	}

	st := sqlstore.New(db, db, sqlstore.Dialect{
		Rebind:     (&rebinder{}).rebind,
		BeginWrite: func(ctx context.Context) (*sql.Tx, error) { return db.BeginTx(ctx, nil) },
		LockRow:    " FOR UPDATE",
		NextSeqs: func(ctx context.Context, tx *sqlstore.Tx, n int) ([]int64, error) {
			return nextSeqs(ctx, tx, base, n)
		},
		VisibleEvents:        visibleEvents(base),
		IsDuplicateReference: isDuplicateReference,
		Time:                 func(t time.Time) any { return t },
		ChildRows: func(exprs, table, where, orderBy string) string {
			return `(SELECT coalesce(json_agg(json_build_array(` + exprs + `) ORDER BY ` + orderBy + `), '[]'::json) FROM ` +
				table + ` WHERE ` + where + `)`
		},
		// extract(epoch …) is exact numeric since PostgreSQL 14 (a double before,
		// still exact to the microsecond for today's dates once rounded).
		Micros:        func(col string) string { return `(extract(epoch FROM ` + col + `) * 1000000)::bigint` },
		Pipeline:      newPipeline(db, base),
		PipelineGroup: pipelineGroup,
		PipelineBatch: pipelineBatch,
	})
	return &Store{st}, nil
}

// Event sequence numbers: commit order without a global lock.
//
// A sequence hands numbers out when nextval runs, not when the transaction
// commits: transaction A could draw 10 and B 11, B commit, a consumer
// polling "events after 9" see 11 and move its cursor past 10, and A's
// event, committed a moment later, would never be delivered. The store
// used to take one advisory lock from the event insert to the commit, so
// every event-writing transaction of every instance sharing the database
// queued on it.
//
// Instead an event's seq is base + seqsPerXact × xid + i, with xid its
// transaction's id (pg_current_xact_id(), a 64-bit xid8 that never wraps)
// and i its index within the transaction: seq order is transaction-id
// order. Readers (ListEvents) return only seqs below base + seqsPerXact ×
// pg_snapshot_xmin(pg_current_snapshot()), the oldest transaction id still
// running, in the same statement as the read. Every transaction with a
// smaller id has finished (and, if committed, is visible in that snapshot);
// every transaction running or yet to start has an id at least xmin, so its
// events sort above everything returned. A consumer's cursor therefore never
// passes an event that becomes visible later. The price: a long-running
// write transaction anywhere in the cluster delays (never loses) events
// until it ends. base (migration 0004) lifts the numbers above the seqs
// drawn from event_seq before.
const seqsPerXact = 1024

// qXactSeq returns the transaction's first seq and the highest seq it has
// already used (0: none), so that several event inserts in one transaction
// continue the numbering.
const qXactSeq = `SELECT x.first, COALESCE((SELECT MAX(seq) FROM events WHERE seq >= x.first AND seq < x.first + $2), 0)
	FROM (SELECT $1::bigint + $2::bigint * pg_current_xact_id()::text::bigint AS first) x`

func nextSeqs(ctx context.Context, tx *sqlstore.Tx, base int64, n int) ([]int64, error) {
	var first, used int64
	if err := tx.QueryRowContext(ctx, qXactSeq, base, seqsPerXact).Scan(&first, &used); err != nil {
		return nil, err
	}
	next := first
	if used != 0 {
		next = used + 1
	}
	if next+int64(n) > first+seqsPerXact {
		return nil, fmt.Errorf("more than %d events in one transaction", seqsPerXact)
	}
	seqs := make([]int64, n)
	for i := range seqs {
		seqs[i] = next + int64(i)
	}
	return seqs, nil
}

// visibleEvents is ListEvents' extra condition: only events of
// transactions older than the oldest one still running (see nextSeqs).
func visibleEvents(base int64) string {
	return fmt.Sprintf(`seq < %d + %d * pg_snapshot_xmin(pg_current_snapshot())::text::bigint`, base, seqsPerXact)
}

// isDuplicateReference: unique_violation (23505) on the reference index,
// and only that one.
func isDuplicateReference(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "23505" && e.ConstraintName == "payments_merchant_reference_key"
}

// rebinder caches rebind's results, one per store: the write path
// rebinds the same few queries for every payment (1 % of the router's CPU
// in a profile). The queries are the store's own, so the set is small; the
// cap only guards against a caller building unbounded variants.
type rebinder struct {
	m sync.Map
	n atomic.Int32
}

const maxRebound = 4096

func (c *rebinder) rebind(q string) string {
	if r, ok := c.m.Load(q); ok {
		return r.(string)
	}
	r := rebind(q)
	if c.n.Load() < maxRebound {
		if _, loaded := c.m.LoadOrStore(q, r); !loaded {
			c.n.Add(1)
		}
	}
	return r
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
