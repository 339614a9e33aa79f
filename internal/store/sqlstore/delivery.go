package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/payrouter/payrouter/internal/store"
)

// --- event consumers: cursors and merchant webhook deliveries ---

const qAdvanceCursor = `INSERT INTO cursors (name, seq, updated_at) VALUES (?, ?, ?)
	ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at
	WHERE cursors.seq < excluded.seq`

// Cursor returns the named cursor's seq, 0 when it was never set.
func (s *Store) Cursor(ctx context.Context, name string) (int64, error) {
	var seq int64
	err := s.w.QueryRowContext(ctx, s.q(`SELECT seq FROM cursors WHERE name = ?`), name).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: cursor %s: %w", name, err)
	}
	return seq, nil
}

// AdvanceCursor moves the named cursor forward to seq (never back).
func (s *Store) AdvanceCursor(ctx context.Context, name string, seq int64) error {
	if name == "" {
		return errors.New("store: advance cursor: empty name")
	}
	if _, err := s.w.ExecContext(ctx, s.q(qAdvanceCursor), name, seq, s.t(time.Now())); err != nil {
		return fmt.Errorf("store: advance cursor %s: %w", name, err)
	}
	return nil
}

const deliveryCols = `seq, merchant_id, status, attempts, next_at, last_status, last_error,
created_at, updated_at, delivered_at, version`

func scanDelivery(row rowScanner) (store.Delivery, error) {
	var d store.Delivery
	err := row.Scan(&d.Seq, &d.MerchantID, &d.Status, &d.Attempts, timeDest{&d.NextAt}, &d.LastStatus, &d.LastError,
		timeDest{&d.CreatedAt}, timeDest{&d.UpdatedAt}, nullTimeDest{&d.DeliveredAt}, &d.Version)
	return d, err
}

func collectDeliveries(rows *sql.Rows, what string) ([]store.Delivery, error) {
	defer rows.Close()
	var out []store.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("store: %s: %w", what, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	return out, nil
}

// deliveryChunk bounds the rows of one multi-row INSERT (11 parameters
// each), well under both databases' parameter limits.
const deliveryChunk = 200

// EnqueueDeliveries inserts ds as pending (ON CONFLICT DO NOTHING: an event
// keeps its first delivery) and advances cursor to upTo, in one
// transaction. Every d needs Seq and MerchantID; zero NextAt, CreatedAt and
// UpdatedAt become now.
func (s *Store) EnqueueDeliveries(ctx context.Context, cursor string, upTo int64, ds []store.Delivery) error {
	if cursor == "" {
		return errors.New("store: enqueue deliveries: empty cursor name")
	}
	now := time.Now()
	tx, err := s.d.BeginWrite(ctx)
	if err != nil {
		return fmt.Errorf("store: enqueue deliveries: %w", err)
	}
	defer tx.Rollback()
	for start := 0; start < len(ds); start += deliveryChunk {
		chunk := ds[start:min(start+deliveryChunk, len(ds))]
		rows := make([]string, len(chunk))
		args := make([]any, 0, 11*len(chunk))
		for i, d := range chunk {
			if d.Seq <= 0 || d.MerchantID == "" {
				return fmt.Errorf("store: enqueue deliveries: event seq and merchant are required (seq %d)", d.Seq)
			}
			or := func(t time.Time) any {
				if t.IsZero() {
					return s.t(now)
				}
				return s.t(t)
			}
			rows[i] = placeholders(11)
			args = append(args, d.Seq, d.MerchantID, store.DeliveryPending, d.Attempts, or(d.NextAt), d.LastStatus,
				d.LastError, or(d.CreatedAt), or(d.UpdatedAt), nil, 0)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO deliveries (`+deliveryCols+`) VALUES `+
			strings.Join(rows, ", ")+` ON CONFLICT (seq) DO NOTHING`), args...); err != nil {
			return fmt.Errorf("store: enqueue deliveries: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.q(qAdvanceCursor), cursor, upTo, s.t(now)); err != nil {
		return fmt.Errorf("store: enqueue deliveries: cursor %s: %w", cursor, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: enqueue deliveries: commit: %w", err)
	}
	return nil
}

// ClaimDeliveries leases up to limit (default 100, at most 1000) pending
// deliveries due at now, oldest due first: their NextAt becomes now+lease
// and their Version is bumped, in one statement. The due condition is
// repeated outside the subquery so that, in PostgreSQL, a dispatcher that
// waited on another's row locks re-checks it and skips rows just claimed.
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.Delivery, error) {
	if lease <= 0 {
		return nil, errors.New("store: claim deliveries: lease must be positive")
	}
	rows, err := s.w.QueryContext(ctx, s.q(`UPDATE deliveries SET next_at = ?, version = version + 1
		WHERE status = 'pending' AND next_at <= ? AND seq IN (
			SELECT seq FROM deliveries WHERE status = 'pending' AND next_at <= ? ORDER BY next_at, seq LIMIT ?)
		RETURNING `+deliveryCols), s.t(now.Add(lease)), s.t(now), s.t(now), clamp(limit, 100, MaxEventLimit))
	if err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %w", err)
	}
	out, err := collectDeliveries(rows, "claim deliveries")
	if err != nil {
		return nil, err
	}
	// RETURNING has no order; hand them out oldest event first.
	slices.SortFunc(out, func(a, b store.Delivery) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// FinishDelivery writes d's outcome when d.Version is still current.
func (s *Store) FinishDelivery(ctx context.Context, d *store.Delivery) (bool, error) {
	switch d.Status {
	case store.DeliveryPending, store.DeliveryDelivered, store.DeliveryDead:
	default:
		return false, fmt.Errorf("store: finish delivery %d: unknown status %q", d.Seq, d.Status)
	}
	if d.UpdatedAt.IsZero() {
		d.UpdatedAt = time.Now()
	}
	res, err := s.w.ExecContext(ctx, s.q(`UPDATE deliveries SET status = ?, attempts = ?, next_at = ?, last_status = ?,
		last_error = ?, updated_at = ?, delivered_at = ? WHERE seq = ? AND version = ?`),
		d.Status, d.Attempts, s.t(d.NextAt), d.LastStatus, d.LastError, s.t(d.UpdatedAt), s.nt(d.DeliveredAt), d.Seq, d.Version)
	if err != nil {
		return false, fmt.Errorf("store: finish delivery %d: %w", d.Seq, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: finish delivery %d: %w", d.Seq, err)
	}
	return n == 1, nil
}

// Redeliver upserts a pending delivery for event seq due at now, with a
// fresh retry window (CreatedAt = now, Attempts = 0); the last error is
// kept for the record until the next attempt.
func (s *Store) Redeliver(ctx context.Context, merchantID string, seq int64, now time.Time) (*store.Delivery, error) {
	where, args := `seq = ?`, []any{s.t(now), s.t(now), s.t(now), seq}
	if merchantID != "" {
		where, args = where+` AND merchant_id = ?`, append(args, merchantID)
	}
	// WHERE before ON CONFLICT also keeps SQLite from reading ON as a join.
	rows, err := s.w.QueryContext(ctx, s.q(`INSERT INTO deliveries (`+deliveryCols+`)
		SELECT seq, merchant_id, 'pending', 0, ?, 0, '', ?, ?, NULL, 0 FROM events WHERE `+where+`
		ON CONFLICT (seq) DO UPDATE SET status = 'pending', attempts = 0, next_at = excluded.next_at,
			created_at = excluded.created_at, updated_at = excluded.updated_at, delivered_at = NULL,
			version = deliveries.version + 1
		RETURNING `+deliveryCols), args...)
	if err != nil {
		return nil, fmt.Errorf("store: redeliver event %d: %w", seq, err)
	}
	ds, err := collectDeliveries(rows, fmt.Sprintf("redeliver event %d", seq))
	if err != nil {
		return nil, err
	}
	if len(ds) == 0 {
		return nil, notExist(fmt.Sprintf("event %d", seq))
	}
	return &ds[0], nil
}

// GetDelivery reads the delivery of event seq (merchantID "" = any).
func (s *Store) GetDelivery(ctx context.Context, merchantID string, seq int64) (*store.Delivery, error) {
	query, args := `SELECT `+deliveryCols+` FROM deliveries WHERE seq = ?`, []any{seq}
	if merchantID != "" {
		query, args = query+` AND merchant_id = ?`, append(args, merchantID)
	}
	d, err := scanDelivery(s.w.QueryRowContext(ctx, s.q(query), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notExist(fmt.Sprintf("delivery of event %d", seq))
	}
	if err != nil {
		return nil, fmt.Errorf("store: get delivery %d: %w", seq, err)
	}
	return &d, nil
}

// ListDeliveries lists deliveries with seq > f.After, ascending, filtered
// by merchant and status. Limit defaults to 100 and is capped at 1000.
func (s *Store) ListDeliveries(ctx context.Context, f store.DeliveryFilter) ([]store.Delivery, error) {
	query, args := `SELECT `+deliveryCols+` FROM deliveries WHERE seq > ?`, []any{f.After}
	if f.MerchantID != "" {
		query, args = query+` AND merchant_id = ?`, append(args, f.MerchantID)
	}
	if f.Status != "" {
		query, args = query+` AND status = ?`, append(args, f.Status)
	}
	query += ` ORDER BY seq LIMIT ?`
	args = append(args, clamp(f.Limit, DefaultEventLimit, MaxEventLimit))
	rows, err := s.r.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list deliveries: %w", err)
	}
	return collectDeliveries(rows, "list deliveries")
}
