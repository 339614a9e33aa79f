package recon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/providers"
)

// RunStore is what the service keeps runs in (store.Store implements it).
type RunStore interface {
	CreateReconRun(ctx context.Context, run *store.ReconRun) (*store.ReconRun, bool, error)
	FinishReconRun(ctx context.Context, id, status, errText string, summary []byte, lines []store.ReconLine, at time.Time) error
	GetReconRun(ctx context.Context, id string) (*store.ReconRun, error)
	ListReconRuns(ctx context.Context, provider string, limit int) ([]store.ReconRun, error)
	UpdateReconLine(ctx context.Context, runID string, n int, fn func(l *store.ReconLine) error) (*store.ReconLine, error)
}

// Auditor writes the audit entry of a mutating ops call (the ops API's
// audit log: {id, at, actor, action, object, reason, before, after}).
type Auditor interface {
	Audit(ctx context.Context, e AuditEntry) error
}

// AuditEntry is one audited change.
type AuditEntry struct {
	At     time.Time
	Actor  string // the ops key id
	Action string // reconciliation.run.start | reconciliation.line.acknowledge | reconciliation.line.resolve
	Object string // "rcn_…" or "rcn_…/lines/3"
	Reason string
	Before any
	After  any
}

// Service runs and keeps reconciliation runs: one provider and period per
// run, persisted with its lines, which finance acknowledges or resolves.
type Service struct {
	Store  RunStore
	Ledger Ledger
	// Sources are the settlement listers by provider name.
	Sources map[string]providers.SettlementLister
	// Configured are the configured provider names (a configured provider
	// without a source is refused by name, never skipped).
	Configured []string
	// SettleAfter is a provider's default settle-after (its configured
	// payout delay; 0 in sandbox).
	SettleAfter func(provider string) time.Duration
	// Tolerance per line and RunTolerance per run, in minor units
	// (Options).
	Tolerance, RunTolerance int64
	// Fee is the routing fee model (see Options.Fee).
	Fee func(provider string, method payrouter.Method, cur payrouter.Currency, amount int64) (int64, bool)
	// Audit receives the audit entries of starts and line changes; nil
	// writes none (the CLI, whose actor is the shell).
	Audit Auditor
	Now   func() time.Time
}

// StartRequest starts (or finds) the run of one provider and period.
type StartRequest struct {
	Provider    string
	From, To    time.Time
	SettleAfter *time.Duration
	Actor       string
	Reason      string
}

// Line states.
const (
	StateOpen         = "open"
	StateAcknowledged = "acknowledged"
	StateResolved     = "resolved"
)

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// invalid is a *payrouter.Error of type invalid_request naming param.
func invalid(param, format string, args ...any) error {
	return payrouter.InvalidParam(param, format, args...)
}

// Start returns the run of req's provider and period, creating and running
// it when there is none (a failed run is run again). created is true when
// this call ran it. The run is computed synchronously: when Start returns
// with created, its status is done or failed.
func (s *Service) Start(ctx context.Context, req StartRequest) (*store.ReconRun, bool, error) {
	if req.Provider != "" && contains(s.Configured, req.Provider) && s.Sources[req.Provider] == nil {
		return nil, false, payrouter.Errorf(payrouter.ErrInvalidState, "no_settlement_source",
			"%s has no settlement source here: reconcile it with `payrouter reconcile --settlements %s=export.csv --save`", req.Provider, req.Provider)
	}
	return s.StartWith(ctx, req, func(ctx context.Context, from, to time.Time) ([]Entry, error) {
		return Fetch(ctx, map[string]providers.SettlementLister{req.Provider: s.Sources[req.Provider]}, from, to)
	})
}

// StartWith is Start with the settlements read by entries (a settlement
// file given to the CLI) instead of the provider's source.
func (s *Service) StartWith(ctx context.Context, req StartRequest, entries func(ctx context.Context, from, to time.Time) ([]Entry, error)) (*store.ReconRun, bool, error) {
	switch {
	case req.Provider == "":
		return nil, false, invalid("provider", "is required")
	case !contains(s.Configured, req.Provider):
		return nil, false, invalid("provider", "is not a configured provider")
	case req.From.IsZero() || req.To.IsZero():
		return nil, false, invalid("from", "and to are required RFC 3339 times")
	case !req.From.Before(req.To):
		return nil, false, invalid("to", "must be after from")
	case req.SettleAfter != nil && *req.SettleAfter < 0:
		return nil, false, invalid("settle_after", "must not be negative")
	}
	settle := time.Duration(0)
	if s.SettleAfter != nil {
		settle = s.SettleAfter(req.Provider)
	}
	if req.SettleAfter != nil {
		settle = *req.SettleAfter
	}
	run := &store.ReconRun{ID: newRunID(), Provider: req.Provider, From: req.From.UTC(), To: req.To.UTC(), SettleAfter: settle,
		Status: "running", CreatedBy: req.Actor, CreatedAt: s.now()}
	got, created, err := s.Store.CreateReconRun(ctx, run)
	if err != nil {
		return nil, false, err
	}
	if !created && got.Status != "failed" {
		return got, false, nil
	}
	if s.Audit != nil {
		if err := s.Audit.Audit(ctx, AuditEntry{At: s.now(), Actor: req.Actor, Action: "reconciliation.run.start", Object: got.ID,
			Reason: req.Reason, After: map[string]any{"provider": got.Provider, "from": got.From, "to": got.To, "settle_after": got.SettleAfter.String()}}); err != nil {
			return nil, false, fmt.Errorf("recon: audit: %w", err)
		}
	}
	status, errText, summary, lines := "done", "", []byte(nil), []store.ReconLine(nil)
	rep, err := s.compute(ctx, got, entries)
	if err != nil {
		status, errText = "failed", err.Error()
	} else {
		summary, lines, err = encodeRun(rep)
		if err != nil {
			return nil, false, err
		}
	}
	if err := s.Store.FinishReconRun(ctx, got.ID, status, errText, summary, lines, s.now()); err != nil {
		return nil, false, err
	}
	out, err := s.Store.GetReconRun(ctx, got.ID)
	return out, true, err
}

func (s *Service) compute(ctx context.Context, run *store.ReconRun, fetch func(ctx context.Context, from, to time.Time) ([]Entry, error)) (*Report, error) {
	entries, err := fetch(ctx, run.From, run.To)
	if err != nil {
		return nil, err
	}
	settle := run.SettleAfter
	if settle == 0 {
		settle = time.Nanosecond // Options treats 0 as "default 72h"; a run's 0 means at once
	}
	return Run(ctx, s.Ledger, entries, Options{From: run.From, To: run.To, SettleAfter: settle, Tolerance: s.Tolerance, RunTolerance: s.RunTolerance,
		Providers: []string{run.Provider}, Fee: s.Fee}, s.now())
}

func newRunID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "rcn_" + hex.EncodeToString(b[:])
}

// runSummary is what a run keeps besides its lines.
type runSummary struct {
	Tolerance         int64         `json:"tolerance"`
	RunTolerance      int64         `json:"run_tolerance,omitempty"`
	MatchedDeltas     int64         `json:"matched_deltas"`
	ToleranceExceeded bool          `json:"tolerance_exceeded,omitempty"`
	Discrepancies     int           `json:"discrepancies"`
	Classes           map[Class]int `json:"classes"`
}

func encodeRun(rep *Report) ([]byte, []store.ReconLine, error) {
	sum := runSummary{Tolerance: rep.Tolerance, RunTolerance: rep.RunTolerance, MatchedDeltas: rep.MatchedDeltas,
		ToleranceExceeded: rep.ToleranceExceeded, Discrepancies: rep.Discrepancies, Classes: map[Class]int{}}
	lines := make([]store.ReconLine, 0, len(rep.Lines))
	for i, l := range rep.Lines {
		sum.Classes[l.Class]++
		b, err := json.Marshal(l)
		if err != nil {
			return nil, nil, err
		}
		state := StateOpen
		if !l.Class.Discrepancy() {
			state = StateResolved // nothing to do
		}
		lines = append(lines, store.ReconLine{N: i + 1, Class: string(l.Class), State: state, Data: b})
	}
	b, err := json.Marshal(sum)
	return b, lines, err
}

// RunView is a run as the ops API shows it (DESIGN "reconciliation runs").
type RunView struct {
	ID                string        `json:"id"`
	Provider          string        `json:"provider"`
	From              time.Time     `json:"from"`
	To                time.Time     `json:"to"`
	SettleAfter       string        `json:"settle_after"`
	Status            string        `json:"status"`
	Error             string        `json:"error,omitempty"`
	CreatedBy         string        `json:"created_by"`
	CreatedAt         time.Time     `json:"created_at"`
	FinishedAt        *time.Time    `json:"finished_at,omitempty"`
	Tolerance         int64         `json:"tolerance"`
	RunTolerance      int64         `json:"run_tolerance,omitempty"`
	MatchedDeltas     int64         `json:"matched_deltas"`
	ToleranceExceeded bool          `json:"tolerance_exceeded,omitempty"`
	Discrepancies     int           `json:"discrepancies"`
	Classes           map[Class]int `json:"classes"`
	Totals            []RunTotal    `json:"totals"`
	Lines             []LineView    `json:"lines,omitempty"`
}

// RunTotal is one provider × currency of a run: count = lines, gross =
// settled amounts (refunds and chargebacks negative), fee = settled fees,
// net = gross − fee; integers in minor units of currency.
type RunTotal struct {
	Provider string             `json:"provider"`
	Currency payrouter.Currency `json:"currency"`
	Count    int                `json:"count"`
	Gross    int64              `json:"gross"`
	Fee      int64              `json:"fee"`
	Net      int64              `json:"net"`
}

// LineView is one line of a run: the DESIGN's fields (expected, settled,
// fee_expected, fee_settled in minor units) plus its number, finance
// state and, for missing_in_settlement, its age.
type LineView struct {
	N                 int                `json:"n"`
	Class             Class              `json:"class"`
	Type              string             `json:"type"`
	Currency          payrouter.Currency `json:"currency"`
	ProviderPaymentID string             `json:"provider_payment_id"`
	PaymentID         string             `json:"payment_id"`
	RefundID          string             `json:"refund_id"`
	OrderID           string             `json:"order_id,omitempty"`
	PayoutBatch       string             `json:"payout_batch,omitempty"`
	Expected          int64              `json:"expected"`
	Settled           int64              `json:"settled"`
	FeeExpected       int64              `json:"fee_expected"`
	FeeSettled        int64              `json:"fee_settled"`
	AmountDelta       int64              `json:"amount_delta"`
	FeeDelta          int64              `json:"fee_delta"`
	SettledAt         *time.Time         `json:"settled_at,omitempty"`
	Source            string             `json:"source"`
	Detail            string             `json:"detail,omitempty"`
	State             string             `json:"state"`
	Note              string             `json:"note,omitempty"`
	ActedBy           string             `json:"acted_by,omitempty"`
	ActedAt           *time.Time         `json:"acted_at,omitempty"`
	// AgeDays: a missing_in_settlement line's age, in whole days since
	// the period ended (how long the money has been owed).
	AgeDays *int `json:"age_days,omitempty"`
}

// View renders a stored run; withLines includes its lines.
func View(r *store.ReconRun, withLines bool, now time.Time) (*RunView, error) {
	v := &RunView{ID: r.ID, Provider: r.Provider, From: r.From, To: r.To, SettleAfter: r.SettleAfter.String(), Status: r.Status,
		Error: r.Error, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, FinishedAt: r.FinishedAt, Totals: []RunTotal{}}
	var sum runSummary
	if len(r.Summary) > 0 {
		if err := json.Unmarshal(r.Summary, &sum); err != nil {
			return nil, fmt.Errorf("recon: run %s summary: %w", r.ID, err)
		}
	}
	v.Tolerance, v.Discrepancies, v.Classes = sum.Tolerance, sum.Discrepancies, sum.Classes
	v.RunTolerance, v.MatchedDeltas, v.ToleranceExceeded = sum.RunTolerance, sum.MatchedDeltas, sum.ToleranceExceeded
	if v.Classes == nil {
		v.Classes = map[Class]int{}
	}
	idx := map[[2]string]int{}
	for _, sl := range r.Lines {
		lv, err := lineView(sl, r.To, now)
		if err != nil {
			return nil, err
		}
		k := [2]string{r.Provider, string(lv.Currency)}
		i, ok := idx[k]
		if !ok {
			i = len(v.Totals)
			idx[k] = i
			v.Totals = append(v.Totals, RunTotal{Provider: r.Provider, Currency: lv.Currency})
		}
		t := &v.Totals[i]
		t.Count++
		t.Gross += lv.Settled
		t.Fee += lv.FeeSettled
		t.Net = t.Gross - t.Fee
		if withLines {
			v.Lines = append(v.Lines, *lv)
		}
	}
	sort.Slice(v.Totals, func(i, j int) bool { return v.Totals[i].Currency < v.Totals[j].Currency })
	if withLines && v.Lines == nil {
		v.Lines = []LineView{}
	}
	return v, nil
}

func lineView(sl store.ReconLine, periodEnd, now time.Time) (*LineView, error) {
	var l Line
	if err := json.Unmarshal(sl.Data, &l); err != nil {
		return nil, fmt.Errorf("recon: line %s/%d: %w", sl.RunID, sl.N, err)
	}
	lv := &LineView{N: sl.N, Class: l.Class, Type: l.Type, Currency: l.Currency, ProviderPaymentID: l.ProviderPaymentID,
		PaymentID: l.PaymentID, RefundID: l.RefundID, OrderID: l.OrderID, PayoutBatch: l.Batch, Expected: l.LedgerAmount,
		Settled: l.SettledAmount, FeeExpected: l.ExpectedFee, FeeSettled: l.SettledFee, AmountDelta: l.AmountDelta,
		FeeDelta: l.FeeDelta, SettledAt: l.SettledAt, Source: l.Source, Detail: l.Detail, State: sl.State, Note: sl.Note,
		ActedBy: sl.ActedBy, ActedAt: sl.ActedAt}
	if l.Class == MissingInSettlement && sl.State != StateResolved {
		d := int(now.Sub(periodEnd) / (24 * time.Hour))
		if d < 0 {
			d = 0
		}
		lv.AgeDays = &d
	}
	return lv, nil
}

// Get reads one run with its lines.
func (s *Service) Get(ctx context.Context, id string) (*RunView, error) {
	r, err := s.Store.GetReconRun(ctx, id)
	if err != nil {
		return nil, err
	}
	return View(r, true, s.now())
}

// List lists runs newest first, with totals but without lines.
func (s *Service) List(ctx context.Context, provider string, limit int) ([]RunView, error) {
	runs, err := s.Store.ListReconRuns(ctx, provider, limit)
	if err != nil {
		return nil, err
	}
	out := make([]RunView, 0, len(runs))
	for i := range runs {
		full, err := s.Store.GetReconRun(ctx, runs[i].ID) // totals need the lines
		if err != nil {
			return nil, err
		}
		v, err := View(full, false, s.now())
		if err != nil {
			return nil, err
		}
		out = append(out, *v)
	}
	return out, nil
}

// ErrLineState: the line cannot take that action (a resolved line is
// final; a matched line needs nothing).
var ErrLineState = payrouter.Errorf(payrouter.ErrInvalidState, "line_state", "the line is already resolved")

// Act acknowledges ("acknowledge": seen, being worked on) or resolves
// ("resolve": closed, with the note saying how) line n of run id, audited.
// note is required. Acknowledging an acknowledged line again only updates
// its note.
func (s *Service) Act(ctx context.Context, id string, n int, action, note, actor string) (*LineView, error) {
	if note == "" {
		return nil, invalid("reason", "is required")
	}
	var state string
	switch action {
	case "acknowledge":
		state = StateAcknowledged
	case "resolve":
		state = StateResolved
	default:
		return nil, invalid("action", "must be acknowledge or resolve")
	}
	run, err := s.Store.GetReconRun(ctx, id)
	if err != nil {
		return nil, err
	}
	var before store.ReconLine
	now := s.now()
	l, err := s.Store.UpdateReconLine(ctx, id, n, func(l *store.ReconLine) error {
		before = *l
		if l.State == StateResolved {
			return ErrLineState
		}
		l.State, l.Note, l.ActedBy, l.ActedAt = state, note, actor, &now
		return nil
	})
	if err != nil {
		return nil, err
	}
	if s.Audit != nil {
		err := s.Audit.Audit(ctx, AuditEntry{At: now, Actor: actor, Action: "reconciliation.line." + action,
			Object: fmt.Sprintf("%s/lines/%d", id, n), Reason: note,
			Before: map[string]any{"state": before.State, "note": before.Note}, After: map[string]any{"state": l.State, "note": l.Note}})
		if err != nil {
			return nil, fmt.Errorf("recon: audit: %w", err)
		}
	}
	return lineView(*l, run.To, now)
}
