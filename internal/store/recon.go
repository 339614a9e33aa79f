package store

import (
	"context"
	"time"
)

// Reconciliations are persisted reconciliation runs (one provider, one
// period) and their lines. The run's summary and each line's body are
// JSON owned by internal/recon; the store keeps them verbatim and indexes
// what is queried: provider and period (a run's identity), a line's class
// and its finance state.
type Reconciliations interface {
	// CreateReconRun inserts run (status running) unless a run of the same
	// provider, From and To exists; it returns the stored run (with its
	// lines) and whether it was created now. Concurrent creates of one
	// period: exactly one is created.
	CreateReconRun(ctx context.Context, run *ReconRun) (*ReconRun, bool, error)
	// FinishReconRun stores a run's outcome: status (done | failed), error
	// text, summary and lines (replacing any), in one transaction. A
	// missing run is payrouter.ErrNotExist.
	FinishReconRun(ctx context.Context, id, status, errText string, summary []byte, lines []ReconLine, at time.Time) error
	// GetReconRun reads a run with its lines in line order; a missing one
	// is payrouter.ErrNotExist.
	GetReconRun(ctx context.Context, id string) (*ReconRun, error)
	// ListReconRuns lists runs newest first, without their lines;
	// provider "" lists every provider's.
	ListReconRuns(ctx context.Context, provider string, limit int) ([]ReconRun, error)
	// UpdateReconLine loads line n of run id, calls fn and saves its
	// State, Note, ActedBy and ActedAt when fn returns nil (fn's error is
	// returned as is). A missing line is payrouter.ErrNotExist.
	UpdateReconLine(ctx context.Context, runID string, n int, fn func(l *ReconLine) error) (*ReconLine, error)
}

// ReconRun is one reconciliation run.
type ReconRun struct {
	ID          string
	Provider    string
	From, To    time.Time
	SettleAfter time.Duration
	Status      string // running | done | failed
	Error       string
	CreatedBy   string // an ops key id, "cli" or "schedule"
	CreatedAt   time.Time
	FinishedAt  *time.Time
	Summary     []byte // JSON, recon's
	Lines       []ReconLine
}

// ReconLine is one line of a run, with finance's handling of it.
type ReconLine struct {
	RunID   string
	N       int // 1-based, in report order
	Class   string
	State   string // open | acknowledged | resolved
	Note    string
	ActedBy string
	ActedAt *time.Time
	Data    []byte // JSON, recon's Line
}
