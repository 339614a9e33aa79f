package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/payrouter/payrouter/internal/store"
)

var _ store.Reconciliations = (*Store)(nil)

const reconRunCols = `id, provider, from_at, to_at, settle_after, status, error, created_by, created_at, finished_at, summary`

// CreateReconRun inserts run unless its provider and period already have
// one (the unique index decides, so concurrent creates agree).
func (s *Store) CreateReconRun(ctx context.Context, run *store.ReconRun) (*store.ReconRun, bool, error) {
	if run.ID == "" || run.Provider == "" {
		return nil, false, errors.New("store: create recon run: id and provider are required")
	}
	if run.CreatedAt.IsZero() {
		run.CreatedAt = time.Now()
	}
	if run.Status == "" {
		run.Status = "running"
	}
	var created bool
	err := s.inTx(ctx, "create recon run", func(ctx context.Context, tx *sql.Tx) error {
		q := &Tx{s, tx}
		res, err := q.ExecContext(ctx, `INSERT INTO recon_runs (`+reconRunCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?) ON CONFLICT (provider, from_at, to_at) DO NOTHING`,
			run.ID, run.Provider, s.t(run.From), s.t(run.To), int64(run.SettleAfter), run.Status, run.Error, run.CreatedBy,
			s.t(run.CreatedAt), string(orEmptyJSON(run.Summary)))
		if err != nil {
			return fmt.Errorf("store: create recon run: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("store: create recon run: %w", err)
		}
		created = n == 1
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	if created {
		got, err := s.getReconRun(ctx, s.w, "id = ?", run.ID)
		return got, true, err
	}
	got, err := s.getReconRun(ctx, s.w, "provider = ? AND from_at = ? AND to_at = ?", run.Provider, s.t(run.From), s.t(run.To))
	return got, false, err
}

func orEmptyJSON(b []byte) []byte {
	if len(b) == 0 {
		return []byte("{}")
	}
	return b
}

// FinishReconRun stores the outcome and lines of a run.
func (s *Store) FinishReconRun(ctx context.Context, id, status, errText string, summary []byte, lines []store.ReconLine, at time.Time) error {
	return s.inTx(ctx, "finish recon run", func(ctx context.Context, tx *sql.Tx) error {
		q := &Tx{s, tx}
		res, err := q.ExecContext(ctx, `UPDATE recon_runs SET status = ?, error = ?, summary = ?, finished_at = ? WHERE id = ?`,
			status, errText, string(orEmptyJSON(summary)), s.t(at), id)
		if err != nil {
			return fmt.Errorf("store: finish recon run: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			if err != nil {
				return fmt.Errorf("store: finish recon run: %w", err)
			}
			return notExist("finish recon run " + id)
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM recon_lines WHERE run_id = ?`, id); err != nil {
			return fmt.Errorf("store: finish recon run: %w", err)
		}
		for _, l := range lines {
			state := l.State
			if state == "" {
				state = "open"
			}
			if _, err := q.ExecContext(ctx, `INSERT INTO recon_lines (run_id, n, class, state, note, acted_by, acted_at, data)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, id, l.N, l.Class, state, l.Note, l.ActedBy, s.nt(l.ActedAt), string(orEmptyJSON(l.Data))); err != nil {
				return fmt.Errorf("store: finish recon run: line %d: %w", l.N, err)
			}
		}
		return nil
	})
}

// GetReconRun reads a run and its lines.
func (s *Store) GetReconRun(ctx context.Context, id string) (*store.ReconRun, error) {
	return s.getReconRun(ctx, s.w, "id = ?", id)
}

type rowQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (s *Store) getReconRun(ctx context.Context, db rowQuerier, where string, args ...any) (*store.ReconRun, error) {
	runs, err := s.queryReconRuns(ctx, db, `SELECT `+reconRunCols+` FROM recon_runs WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	if len(runs) == 0 {
		return nil, notExist("get recon run")
	}
	r := &runs[0]
	rows, err := db.QueryContext(ctx, s.q(`SELECT run_id, n, class, state, note, acted_by, acted_at, data FROM recon_lines
		WHERE run_id = ? ORDER BY n`), r.ID)
	if err != nil {
		return nil, fmt.Errorf("store: get recon run: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		l, err := scanReconLine(rows)
		if err != nil {
			return nil, fmt.Errorf("store: get recon run: %w", err)
		}
		r.Lines = append(r.Lines, *l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: get recon run: %w", err)
	}
	return r, nil
}

func scanReconLine(rows interface{ Scan(...any) error }) (*store.ReconLine, error) {
	var (
		l    store.ReconLine
		data string
	)
	if err := rows.Scan(&l.RunID, &l.N, &l.Class, &l.State, &l.Note, &l.ActedBy, nullTimeDest{&l.ActedAt}, &data); err != nil {
		return nil, err
	}
	l.Data = []byte(data)
	return &l, nil
}

func (s *Store) queryReconRuns(ctx context.Context, db rowQuerier, query string, args ...any) ([]store.ReconRun, error) {
	rows, err := db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: recon runs: %w", err)
	}
	defer rows.Close()
	var out []store.ReconRun
	for rows.Next() {
		var (
			r       store.ReconRun
			settle  int64
			summary string
		)
		if err := rows.Scan(&r.ID, &r.Provider, timeDest{&r.From}, timeDest{&r.To}, &settle, &r.Status, &r.Error, &r.CreatedBy,
			timeDest{&r.CreatedAt}, nullTimeDest{&r.FinishedAt}, &summary); err != nil {
			return nil, fmt.Errorf("store: recon runs: %w", err)
		}
		r.SettleAfter, r.Summary = time.Duration(settle), []byte(summary)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: recon runs: %w", err)
	}
	return out, nil
}

// ListReconRuns lists runs newest first; limit <= 0 means 100.
func (s *Store) ListReconRuns(ctx context.Context, provider string, limit int) ([]store.ReconRun, error) {
	return s.queryReconRuns(ctx, s.r, `SELECT `+reconRunCols+` FROM recon_runs WHERE (? = '' OR provider = ?)
		ORDER BY created_at DESC, id DESC LIMIT ?`, provider, provider, clamp(limit, 100, 1000))
}

// UpdateReconLine changes one line's finance state.
func (s *Store) UpdateReconLine(ctx context.Context, runID string, n int, fn func(l *store.ReconLine) error) (*store.ReconLine, error) {
	var out *store.ReconLine
	err := s.inTx(ctx, "update recon line", func(ctx context.Context, tx *sql.Tx) error {
		q := &Tx{s, tx}
		rows, err := q.QueryContext(ctx, `SELECT run_id, n, class, state, note, acted_by, acted_at, data FROM recon_lines
			WHERE run_id = ? AND n = ?`+s.d.LockRow, runID, n)
		if err != nil {
			return fmt.Errorf("store: update recon line: %w", err)
		}
		var l *store.ReconLine
		if rows.Next() {
			l, err = scanReconLine(rows)
		}
		rows.Close()
		if err != nil {
			return fmt.Errorf("store: update recon line: %w", err)
		}
		if l == nil {
			return notExist(fmt.Sprintf("recon line %s/%d", runID, n))
		}
		if err := fn(l); err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, `UPDATE recon_lines SET state = ?, note = ?, acted_by = ?, acted_at = ? WHERE run_id = ? AND n = ?`,
			l.State, l.Note, l.ActedBy, s.nt(l.ActedAt), runID, n); err != nil {
			return fmt.Errorf("store: update recon line: %w", err)
		}
		out = l
		return nil
	})
	return out, err
}
