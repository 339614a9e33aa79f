package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/payrouter/payrouter/internal/store/sqlstore"
)

// pipeline is the sqlstore.Pipeline of PostgreSQL: a pgx.Batch on the pool's
// connection (database/sql's Raw), its statements sent together with one
// Sync. pgx prepares and caches each statement on its connection, as it
// does for database/sql's queries.
type pipeline struct {
	db *sql.DB
	// qInsertEvent inserts the i-th event ($1) of the transaction; see
	// nextSeqs for the numbering and payrouter.EventID for the id, which
	// the expression reproduces (zero-padded to 16 digits).
	qInsertEvent string
}

func newPipeline(db *sql.DB, base int64) *pipeline {
	return &pipeline{db: db, qInsertEvent: fmt.Sprintf(`INSERT INTO events (seq, id, merchant_id, payment_id, type, created_at, data)
	SELECT x.seq, 'evt_' || repeat('0', greatest(0, 16 - length(x.seq::text))) || x.seq::text, $2::text, $3::text, $4::text, $5::timestamptz, $6::json
	FROM (SELECT %d::bigint + %d::bigint * pg_current_xact_id()::text::bigint + $1::bigint AS seq) x`, base, seqsPerXact)}
}

func (pl *pipeline) InsertEvent(i int, vals []any) (sqlstore.Stmt, error) {
	if i >= seqsPerXact {
		return sqlstore.Stmt{}, fmt.Errorf("more than %d events in one transaction", seqsPerXact)
	}
	return sqlstore.Stmt{Query: pl.qInsertEvent, Args: append([]any{i}, vals...)}, nil
}

func (pl *pipeline) MaxEvents() int { return seqsPerXact }

func (pl *pipeline) IsTakenKey(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "23505" && e.ConstraintName == "idempotency_pkey"
}

// raw runs fn on a pool connection. A connection left in a transaction or
// broken by fn is discarded by the driver when it returns to the pool.
func (pl *pipeline) raw(ctx context.Context, fn func(c *pgx.Conn) error) error {
	conn, err := pl.db.Conn(ctx)
	if err != nil {
		return &sqlstore.StmtError{Index: -1, Err: err}
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error { return fn(dc.(*stdlib.Conn).Conn()) })
}

// Exec: without BEGIN, the statements before the batch's Sync run as one
// implicit transaction, committed at the Sync (rolled back at the first
// error): the whole write is one round trip.
func (pl *pipeline) Exec(ctx context.Context, stmts []sqlstore.Stmt) ([]int64, error) {
	rows := make([]int64, 0, len(stmts))
	err := pl.raw(ctx, func(c *pgx.Conn) error {
		b := &pgx.Batch{}
		for _, st := range stmts {
			b.Queue(st.Query, st.Args...)
		}
		br := c.SendBatch(ctx, b)
		for i := range stmts {
			tag, err := br.Exec()
			if err != nil {
				br.Close()
				// Only the server's answer to statement i proves the
				// implicit transaction did not commit; a broken connection
				// may have lost the answers to a commit.
				var pe *pgconn.PgError
				if !errors.As(err, &pe) {
					i = -1
				}
				return &sqlstore.StmtError{Index: i, Err: err}
			}
			rows = append(rows, tag.RowsAffected())
		}
		// The commit's error, if any, comes before the Sync's answer.
		if err := br.Close(); err != nil {
			return &sqlstore.StmtError{Index: -1, Err: err}
		}
		return nil
	})
	return rows, err
}

// ExecCommitIf: BEGIN and the statements in one round trip, COMMIT or
// ROLLBACK in a second.
func (pl *pipeline) ExecCommitIf(ctx context.Context, stmts []sqlstore.Stmt, commit func(rows []int64) bool) ([]int64, bool, error) {
	rows := make([]int64, 0, len(stmts))
	committed := false
	err := pl.raw(ctx, func(c *pgx.Conn) error {
		b := &pgx.Batch{}
		b.BeginTx(pgx.TxOptions{})
		for _, st := range stmts {
			b.Queue(st.Query, st.Args...)
		}
		br := c.SendBatch(ctx, b)
		tx := br.Tx()
		defer tx.Rollback(context.WithoutCancel(ctx)) // no-op once committed
		if _, err := br.Exec(); err != nil {
			br.Close()
			return &sqlstore.StmtError{Index: -1, Err: fmt.Errorf("begin: %w", err)}
		}
		for i := range stmts {
			tag, err := br.Exec()
			if err != nil {
				br.Close()
				return &sqlstore.StmtError{Index: i, Err: err}
			}
			rows = append(rows, tag.RowsAffected())
		}
		if err := br.Close(); err != nil {
			return &sqlstore.StmtError{Index: -1, Err: err}
		}
		if !commit(rows) {
			return nil
		}
		if err := tx.Commit(ctx); err != nil {
			return &sqlstore.StmtError{Index: -1, Err: fmt.Errorf("commit: %w", err)}
		}
		committed = true
		return nil
	})
	return rows, committed, err
}
