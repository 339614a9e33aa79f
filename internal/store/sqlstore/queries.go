package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// The queries of the write path, shared by both dialects (? placeholders).
const (
	qInsertPayment = `INSERT INTO payments (` + paymentCols + `, reference_free)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)`
	// id and merchant_id are immutable; every save bumps version.
	qUpdatePayment = `UPDATE payments SET reference = ?, status = ?, amount = ?,
		currency = ?, method = ?, provider = ?, provider_payment_id = ?, amount_captured = ?,
		amount_refunded = ?, created_at = ?, updated_at = ?, resolve_at = ?, expires_at = ?, data = ?,
		reference_free = ?, version = version + 1
		WHERE id = ?`
	// qUpdatePaymentIfVersion saves a payment only if nobody saved it since
	// the caller read it (optimistic concurrency).
	qUpdatePaymentIfVersion = qUpdatePayment + ` AND version = ?`
	// qUpdatePaymentLean is qUpdatePayment for the usual update, which
	// changes neither the reference, nor created_at, nor reference_free:
	// SQLite rewrites the entries of every index a SET column belongs to,
	// changed or not, so leaving them out spares three indexes (and their
	// pages in the WAL) per update.
	qUpdatePaymentLean = `UPDATE payments SET status = ?, amount = ?,
		currency = ?, method = ?, provider = ?, provider_payment_id = ?, amount_captured = ?,
		amount_refunded = ?, updated_at = ?, resolve_at = ?, expires_at = ?, data = ?,
		version = version + 1
		WHERE id = ?`
	qUpdatePaymentLeanIfVersion = qUpdatePaymentLean + ` AND version = ?`
	qUpsertAttempt              = `INSERT INTO attempts (` + attemptCols + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (payment_id, idx) DO UPDATE SET n = excluded.n, provider = excluded.provider,
		provider_payment_id = excluded.provider_payment_id, idempotency_key = excluded.idempotency_key,
		status = excluded.status, error_class = excluded.error_class, error_code = excluded.error_code,
		error_message = excluded.error_message, expected_fee = excluded.expected_fee,
		latency_ms = excluded.latency_ms, started_at = excluded.started_at`
	qDeleteAttempts = `DELETE FROM attempts WHERE payment_id = ? AND idx >= ?`
	qUpsertRefund   = `INSERT INTO refunds (` + refundCols + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (payment_id, idx) DO UPDATE SET id = excluded.id, amount = excluded.amount,
		reason = excluded.reason, status = excluded.status, provider_refund_id = excluded.provider_refund_id,
		failure_code = excluded.failure_code, created_at = excluded.created_at`
	qDeleteRefunds = `DELETE FROM refunds WHERE payment_id = ? AND idx >= ?`
	// A locked load's children where the row lock comes first (see
	// Store.qLoadForUpdate).
	qLoadAttempts = `SELECT ` + attemptCols + ` FROM attempts WHERE payment_id = ? ORDER BY idx`
	qLoadRefunds  = `SELECT ` + refundCols + ` FROM refunds WHERE payment_id = ? ORDER BY idx`
	qInsertEvent  = `INSERT INTO events (seq, id, merchant_id, payment_id, type, created_at, data)
		VALUES (?, ?, ?, ?, ?, ?, ?)`
	qClaimIdempotency = `INSERT INTO idempotency (merchant_id, key, request_hash, payment_id, status, created_at)
		VALUES (?, ?, ?, '', 0, ?) ON CONFLICT (merchant_id, key) DO NOTHING`
	qClaimIdempotencyLinked = `INSERT INTO idempotency (merchant_id, key, request_hash, payment_id, status, created_at)
		VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (merchant_id, key) DO NOTHING`
	qGetIdempotency = `SELECT merchant_id, key, request_hash, payment_id, status, body, created_at
		FROM idempotency WHERE merchant_id = ? AND key = ?`
	qCompleteIdempotency = `UPDATE idempotency SET status = ?, body = ? WHERE merchant_id = ? AND key = ?`
	// The inbox's and anomalies' writes (group-committed under SQLite).
	qInsertWebhook = `INSERT INTO inbox (provider, event_id, headers, body, parsed, received_at, outcome, note, processed_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (provider, event_id) DO NOTHING RETURNING id`
	qFinishWebhook = `UPDATE inbox SET outcome = ?, note = ?, processed_at = ? WHERE id = ?`
	qRetryWebhook  = `UPDATE inbox SET attempts = attempts + 1, note = ?, next_at = ? WHERE id = ? AND outcome = ''`
	qRecordAnomaly = `INSERT INTO anomalies (kind, payment_id, provider, detail, created_at)
		VALUES (?, ?, ?, ?, ?) RETURNING id`
	// The group committer's savepoint statements (prepared with it).
	qSavepoint  = `SAVEPOINT gc`
	qRelease    = `RELEASE gc`
	qRollbackTo = `ROLLBACK TO gc`
)

func placeholders(n int) string {
	return "(" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
}

// Prepare prepares the write path's statements on the writer pool, so that
// transactions reuse them instead of parsing SQL each time (SQLite spends
// about half of a write transaction in its parser otherwise). Call it once,
// before use: with SQLite's single writer connection, preparing during a
// transaction would wait for the connection the transaction holds.
func (s *Store) Prepare(ctx context.Context) error {
	prepared := map[string]*sql.Stmt{}
	queries := append([]string{qInsertPayment, qUpdatePayment, qUpsertAttempt, qDeleteAttempts, qUpsertRefund,
		qDeleteRefunds, qInsertEvent, s.qLoadForUpdate, qLoadAttempts, qLoadRefunds,
		qUpdatePaymentIfVersion, qUpdatePaymentLean, qUpdatePaymentLeanIfVersion, qClaimIdempotencyLinked, qGetIdempotency, qCompleteIdempotency}, s.d.Prepare...)
	if s.gc != nil {
		// Only group commit runs these in transactions; elsewhere they run
		// on the pool and a statement prepared on one connection would not help.
		queries = append(queries, qClaimIdempotency, qSavepoint, qRelease, qRollbackTo,
			qInsertWebhook, qFinishWebhook, qRetryWebhook, qRecordAnomaly)
	}
	for _, q := range queries {
		st, err := s.w.PrepareContext(ctx, s.q(q))
		if err != nil {
			for _, st := range prepared {
				st.Close()
			}
			return fmt.Errorf("store: prepare: %w", err)
		}
		prepared[q] = st
	}
	s.prepared = prepared
	return nil
}

func (s *Store) closePrepared() error {
	var errs []error
	for _, st := range s.prepared {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// stmt is Prepare's statement for a query run in a write transaction, or
// nil to run it unprepared. (Statements cannot be prepared lazily here: under
// group commit the batch holds the only writer connection.)
func (s *Store) stmt(query string) *sql.Stmt { return s.prepared[query] }

func (s *Store) txExec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if st := s.stmt(query); st != nil {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, s.q(query), args...)
}

func (s *Store) txQueryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	if st := s.stmt(query); st != nil {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, s.q(query), args...)
}

// query runs query on q, through a prepared statement when q is a
// transaction and the query is prepared.
func (s *Store) query(ctx context.Context, q querier, query string, args ...any) (*sql.Rows, error) {
	if tx, ok := q.(*sql.Tx); ok {
		if st := s.stmt(query); st != nil {
			return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
		}
	}
	return q.QueryContext(ctx, s.q(query), args...)
}

// Tx is a write transaction handed to a Dialect: its queries use the
// prepared statements when Prepare has prepared them.
type Tx struct {
	s  *Store
	tx *sql.Tx
}

// ExecContext runs a statement in the transaction.
func (t *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.s.txExec(ctx, t.tx, query, args...)
}

// QueryRowContext runs a query returning one row in the transaction.
func (t *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.s.txQueryRow(ctx, t.tx, query, args...)
}

// QueryContext runs a query in the transaction.
func (t *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.s.query(ctx, t.tx, query, args...)
}
