package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/payrouter/payrouter/internal/store"
)

var (
	_ store.RuleVersions       = (*Store)(nil)
	_ store.AuditLog           = (*Store)(nil)
	_ store.BreakerOverrides   = (*Store)(nil)
	_ store.AnomalyResolutions = (*Store)(nil)
)

// --- rule versions ---

const ruleCols = `version, state, yaml, created_at, created_by, reason, activated_at, shadow`

func scanRuleVersion(sc interface{ Scan(...any) error }) (*store.RuleVersion, error) {
	var (
		v      store.RuleVersion
		shadow int
	)
	if err := sc.Scan(&v.Version, &v.State, &v.YAML, timeDest{&v.CreatedAt}, &v.CreatedBy, &v.Reason,
		nullTimeDest{&v.ActivatedAt}, &shadow); err != nil {
		return nil, err
	}
	v.Shadow = shadow != 0
	return &v, nil
}

// CreateRuleVersion stores v as the next version number. Two concurrent
// creators may pick the same number; the loser retries.
func (s *Store) CreateRuleVersion(ctx context.Context, v *store.RuleVersion) error {
	if v.State == "" {
		v.State = store.RuleDraft
	}
	if v.CreatedAt.IsZero() {
		v.CreatedAt = time.Now()
	}
	var err error
	for try := 0; try < 5; try++ {
		err = s.inTx(ctx, "create rule version", func(ctx context.Context, tx *sql.Tx) error {
			var n int64
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM rule_versions`).Scan(&n); err != nil {
				return fmt.Errorf("store: create rule version: %w", err)
			}
			v.Version = n + 1
			_, err := tx.ExecContext(ctx, s.q(`INSERT INTO rule_versions (`+ruleCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, 0)
				ON CONFLICT (version) DO NOTHING`), v.Version, v.State, v.YAML, s.t(v.CreatedAt), v.CreatedBy, v.Reason, s.nt(v.ActivatedAt))
			if err != nil {
				return fmt.Errorf("store: create rule version: %w", err)
			}
			var got string
			// Ours only if every field we wrote is there (a concurrent
			// creator may have taken the number with the same YAML).
			if err := tx.QueryRowContext(ctx, s.q(`SELECT created_by FROM rule_versions WHERE version = ? AND yaml = ? AND created_at = ? AND created_by = ? AND reason = ?`),
				v.Version, v.YAML, s.t(v.CreatedAt), v.CreatedBy, v.Reason).Scan(&got); err != nil {
				if errors.Is(err, sql.ErrNoRows) {
					return store.ErrVersionConflict
				}
				return fmt.Errorf("store: create rule version: %w", err)
			}
			return nil
		})
		if !errors.Is(err, store.ErrVersionConflict) {
			return err
		}
	}
	return err
}

// SeedRuleVersion stores v as version 1, active, unless a version exists.
func (s *Store) SeedRuleVersion(ctx context.Context, v *store.RuleVersion) (bool, error) {
	if v.CreatedAt.IsZero() {
		v.CreatedAt = time.Now()
	}
	v.Version, v.State = 1, store.RuleActive
	at := v.CreatedAt
	v.ActivatedAt = &at
	var n int64
	err := s.inTx(ctx, "seed rule version", func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO rule_versions (`+ruleCols+`) VALUES (1, ?, ?, ?, ?, ?, ?, 0)
			ON CONFLICT (version) DO NOTHING`), v.State, v.YAML, s.t(v.CreatedAt), v.CreatedBy, v.Reason, s.t(at))
		if err != nil {
			return fmt.Errorf("store: seed rule version: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n == 1, err
}

// GetRuleVersion reads one version.
func (s *Store) GetRuleVersion(ctx context.Context, version int64) (*store.RuleVersion, error) {
	v, err := scanRuleVersion(s.w.QueryRowContext(ctx, s.q(`SELECT `+ruleCols+` FROM rule_versions WHERE version = ?`), version))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notExist(fmt.Sprintf("rule version %d", version))
	}
	if err != nil {
		return nil, fmt.Errorf("store: get rule version: %w", err)
	}
	return v, nil
}

// ListRuleVersions lists every version, newest first.
func (s *Store) ListRuleVersions(ctx context.Context) ([]store.RuleVersion, error) {
	return s.ruleVersions(ctx, `SELECT `+ruleCols+` FROM rule_versions ORDER BY version DESC`)
}

func (s *Store) ruleVersions(ctx context.Context, query string, args ...any) ([]store.RuleVersion, error) {
	rows, err := s.w.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list rule versions: %w", err)
	}
	defer rows.Close()
	var out []store.RuleVersion
	for rows.Next() {
		v, err := scanRuleVersion(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list rule versions: %w", err)
		}
		out = append(out, *v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list rule versions: %w", err)
	}
	return out, nil
}

// ActiveRuleVersion returns the active and the shadow version. It reads the
// writer pool: an instance polling must see an activation at once.
func (s *Store) ActiveRuleVersion(ctx context.Context) (*store.RuleVersion, *store.RuleVersion, error) {
	vs, err := s.ruleVersions(ctx, `SELECT `+ruleCols+` FROM rule_versions WHERE state = 'active' OR shadow = 1`)
	if err != nil {
		return nil, nil, err
	}
	var active, shadow *store.RuleVersion
	for i := range vs {
		if vs[i].State == store.RuleActive {
			active = &vs[i]
		}
		if vs[i].Shadow {
			shadow = &vs[i]
		}
	}
	if active == nil {
		return nil, shadow, notExist("active rule version")
	}
	return active, shadow, nil
}

// ActivateRuleVersion makes version the active one.
func (s *Store) ActivateRuleVersion(ctx context.Context, version int64, now time.Time) error {
	return s.inTx(ctx, "activate rule version", func(ctx context.Context, tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM rule_versions WHERE version = ?`), version).Scan(&n); err != nil {
			return fmt.Errorf("store: activate rule version: %w", err)
		}
		if n == 0 {
			return notExist(fmt.Sprintf("rule version %d", version))
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE rule_versions SET state = 'retired' WHERE state = 'active' AND version <> ?`), version); err != nil {
			return fmt.Errorf("store: activate rule version: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE rule_versions SET state = 'active', activated_at = ?, shadow = 0 WHERE version = ?`), s.t(now), version); err != nil {
			return fmt.Errorf("store: activate rule version: %w", err)
		}
		return nil
	})
}

// ShadowRuleVersion makes version the only shadowed one; 0 clears.
func (s *Store) ShadowRuleVersion(ctx context.Context, version int64) error {
	return s.inTx(ctx, "shadow rule version", func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE rule_versions SET shadow = 0 WHERE shadow = 1`)); err != nil {
			return fmt.Errorf("store: shadow rule version: %w", err)
		}
		if version == 0 {
			return nil
		}
		res, err := tx.ExecContext(ctx, s.q(`UPDATE rule_versions SET shadow = 1 WHERE version = ?`), version)
		if err != nil {
			return fmt.Errorf("store: shadow rule version: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notExist(fmt.Sprintf("rule version %d", version))
		}
		return nil
	})
}

// --- audit ---

// AppendAudit stores e and sets its ID.
func (s *Store) AppendAudit(ctx context.Context, e *store.AuditEntry) error {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	raw := func(b []byte) string {
		if len(b) == 0 {
			return "null"
		}
		return string(b)
	}
	return s.inTx(ctx, "append audit", func(ctx context.Context, tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, s.q(`INSERT INTO audit_log (at, actor, action, object, reason, before, after)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`), s.t(e.At), e.Actor, e.Action, e.Object, e.Reason, raw(e.Before), raw(e.After)).Scan(&e.ID)
		if err != nil {
			return fmt.Errorf("store: append audit: %w", err)
		}
		return nil
	})
}

// ListAudit lists entries newest first.
func (s *Store) ListAudit(ctx context.Context, limit int) ([]store.AuditEntry, error) {
	rows, err := s.w.QueryContext(ctx, s.q(`SELECT id, at, actor, action, object, reason, before, after
		FROM audit_log ORDER BY id DESC LIMIT ?`), clamp(limit, 100, 10000))
	if err != nil {
		return nil, fmt.Errorf("store: list audit: %w", err)
	}
	defer rows.Close()
	out := []store.AuditEntry{}
	for rows.Next() {
		var (
			e             store.AuditEntry
			before, after string
		)
		if err := rows.Scan(&e.ID, timeDest{&e.At}, &e.Actor, &e.Action, &e.Object, &e.Reason, &before, &after); err != nil {
			return nil, fmt.Errorf("store: list audit: %w", err)
		}
		e.Before, e.After = []byte(before), []byte(after)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list audit: %w", err)
	}
	return out, nil
}

// --- breaker overrides ---

// SetBreakerOverride stores o, replacing the one for its provider × method.
func (s *Store) SetBreakerOverride(ctx context.Context, o store.BreakerOverride) error {
	if o.At.IsZero() {
		o.At = time.Now()
	}
	return s.inTx(ctx, "set breaker override", func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO breaker_overrides (provider, method, reason, actor, at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (provider, method) DO UPDATE SET reason = excluded.reason, actor = excluded.actor, at = excluded.at`),
			o.Provider, o.Method, o.Reason, o.Actor, s.t(o.At))
		if err != nil {
			return fmt.Errorf("store: set breaker override: %w", err)
		}
		return nil
	})
}

// ClearBreakerOverride removes the override of provider × method.
func (s *Store) ClearBreakerOverride(ctx context.Context, provider, method string) error {
	return s.inTx(ctx, "clear breaker override", func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM breaker_overrides WHERE provider = ? AND method = ?`), provider, method); err != nil {
			return fmt.Errorf("store: clear breaker override: %w", err)
		}
		return nil
	})
}

// ListBreakerOverrides lists every override by provider and method.
func (s *Store) ListBreakerOverrides(ctx context.Context) ([]store.BreakerOverride, error) {
	rows, err := s.w.QueryContext(ctx, `SELECT provider, method, reason, actor, at FROM breaker_overrides ORDER BY provider, method`)
	if err != nil {
		return nil, fmt.Errorf("store: list breaker overrides: %w", err)
	}
	defer rows.Close()
	var out []store.BreakerOverride
	for rows.Next() {
		var o store.BreakerOverride
		if err := rows.Scan(&o.Provider, &o.Method, &o.Reason, &o.Actor, timeDest{&o.At}); err != nil {
			return nil, fmt.Errorf("store: list breaker overrides: %w", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list breaker overrides: %w", err)
	}
	return out, nil
}

// --- anomaly resolutions ---

// ResolveAnomaly records r once.
func (s *Store) ResolveAnomaly(ctx context.Context, r store.AnomalyResolution) (bool, error) {
	if r.ResolvedAt.IsZero() {
		r.ResolvedAt = time.Now()
	}
	var n int64
	err := s.inTx(ctx, "resolve anomaly", func(ctx context.Context, tx *sql.Tx) error {
		var c int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM anomalies WHERE id = ?`), r.AnomalyID).Scan(&c); err != nil {
			return fmt.Errorf("store: resolve anomaly: %w", err)
		}
		if c == 0 {
			return notExist(fmt.Sprintf("anomaly %d", r.AnomalyID))
		}
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO anomaly_resolutions (anomaly_id, note, actor, resolved_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (anomaly_id) DO NOTHING`), r.AnomalyID, r.Note, r.Actor, s.t(r.ResolvedAt))
		if err != nil {
			return fmt.Errorf("store: resolve anomaly: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n == 1, err
}

// AnomalyResolutions returns the resolutions of ids.
func (s *Store) AnomalyResolutions(ctx context.Context, ids []int64) (map[int64]store.AnomalyResolution, error) {
	out := map[int64]store.AnomalyResolution{}
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.w.QueryContext(ctx, s.q(`SELECT anomaly_id, note, actor, resolved_at FROM anomaly_resolutions WHERE anomaly_id IN (?`+
		strings.Repeat(", ?", len(ids)-1)+`)`), args...)
	if err != nil {
		return nil, fmt.Errorf("store: anomaly resolutions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r store.AnomalyResolution
		if err := rows.Scan(&r.AnomalyID, &r.Note, &r.Actor, timeDest{&r.ResolvedAt}); err != nil {
			return nil, fmt.Errorf("store: anomaly resolutions: %w", err)
		}
		out[r.AnomalyID] = r
	}
	return out, rows.Err()
}

// --- stats ---

var _ store.StatsReader = (*Store)(nil)

// Stats reads the store-wide figures of /metrics: a few aggregate queries,
// meant to be cached by the caller (seconds), not run per request.
func (s *Store) Stats(ctx context.Context, now time.Time) (*store.Stats, error) {
	st := &store.Stats{Failovers: map[string]int64{}}
	wrap := func(err error) error { return fmt.Errorf("store: stats: %w", err) }
	rows, err := s.r.QueryContext(ctx, `SELECT provider, method, status, COUNT(*) FROM payments GROUP BY provider, method, status`)
	if err != nil {
		return nil, wrap(err)
	}
	for rows.Next() {
		var c store.PaymentCount
		if err := rows.Scan(&c.Provider, &c.Method, &c.Status, &c.N); err != nil {
			rows.Close()
			return nil, wrap(err)
		}
		st.Payments = append(st.Payments, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, wrap(err)
	}
	rows, err = s.r.QueryContext(ctx, `SELECT provider, COUNT(*) FROM attempts WHERE n > 1 GROUP BY provider`)
	if err != nil {
		return nil, wrap(err)
	}
	for rows.Next() {
		var p string
		var n int64
		if err := rows.Scan(&p, &n); err != nil {
			rows.Close()
			return nil, wrap(err)
		}
		st.Failovers[p] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, wrap(err)
	}
	one := func(dst *int64, q string, args ...any) error {
		return s.r.QueryRowContext(ctx, s.q(q), args...).Scan(dst)
	}
	if err := one(&st.ResolverDue, `SELECT COUNT(*) FROM payments WHERE resolve_at IS NOT NULL AND resolve_at <= ?`, s.t(now)); err != nil {
		return nil, wrap(err)
	}
	if err := one(&st.InboxBacklog, `SELECT COUNT(*) FROM inbox WHERE outcome = ''`); err != nil {
		return nil, wrap(err)
	}
	if err := one(&st.DeliveriesPending, `SELECT COUNT(*) FROM deliveries WHERE status = 'pending'`); err != nil {
		return nil, wrap(err)
	}
	if err := one(&st.DeliveriesDead, `SELECT COUNT(*) FROM deliveries WHERE status = 'dead'`); err != nil {
		return nil, wrap(err)
	}
	if err := one(&st.AnomaliesOpen, `SELECT COUNT(*) FROM anomalies WHERE id NOT IN (SELECT anomaly_id FROM anomaly_resolutions)`); err != nil {
		return nil, wrap(err)
	}
	var oldest *time.Time
	if err := s.r.QueryRowContext(ctx, `SELECT MIN(created_at) FROM deliveries WHERE status = 'pending'`).Scan(nullTimeDest{&oldest}); err != nil {
		return nil, wrap(err)
	}
	st.OldestPending = oldest
	return st, nil
}
