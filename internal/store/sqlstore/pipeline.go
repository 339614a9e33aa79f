package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
)

// Pipelined payment writes (Dialect.Pipeline; PostgreSQL).
//
// Over a connection to a database server every statement is a round trip,
// and when the server shares the CPU with the router each one costs a
// wake-up and a few syscalls on both sides. The router's two writes per
// payment were 5 and 7 round trips (BEGIN, claim, payment, attempt, COMMIT;
// BEGIN, payment, attempt, event seq, event, idempotency completion,
// COMMIT). With a Pipeline they send their statements together:
// CreatePaymentClaiming is one round trip, one implicit transaction (a
// statement's error rolls back all of them); UpdatePaymentWith's optimistic
// path (opts.Current) is two: BEGIN and the statements, then COMMIT — or,
// when the version moved, ROLLBACK and the locked path as before. Event
// seqs are computed in the database (Pipeline.InsertEvent): the client
// cannot know its transaction's id before sending.

// Stmt is one statement of a pipelined write, in the dialect's placeholders.
type Stmt struct {
	Query string
	Args  []any
}

// Pipeline sends a write's statements in one round trip.
type Pipeline interface {
	// Exec runs stmts in one transaction, sent together, and returns each
	// one's rows affected. On an error nothing is written.
	Exec(ctx context.Context, stmts []Stmt) ([]int64, error)
	// ExecCommitIf begins a transaction and runs stmts in one round trip,
	// then commits when commit(rows affected) is true, else rolls back.
	// rows holds the results of the statements that succeeded (fewer than
	// stmts after an error); on an error nothing is written.
	ExecCommitIf(ctx context.Context, stmts []Stmt, commit func(rows []int64) bool) (rows []int64, committed bool, err error)
	// InsertEvent is the statement inserting the i-th event (from 0) of the
	// pipelined transaction, its seq and id drawn in the database as
	// NextSeqs would draw them for the first events of a transaction. vals
	// are the columns after seq and id (see Store.eventValues).
	InsertEvent(i int, vals []any) (Stmt, error)
	// MaxEvents is how many events one transaction may insert.
	MaxEvents() int
	// IsTakenKey reports whether err is a unique violation of the
	// idempotency table's primary key (qClaimOrFail on a taken key).
	IsTakenKey(err error) bool
}

// StmtError is the failure of statement Index of a pipelined write, which
// then wrote nothing; Index -1: of the transaction itself (connection,
// begin, commit), whose outcome may be unknown.
type StmtError struct {
	Index int
	Err   error
}

func (e *StmtError) Error() string { return fmt.Sprintf("statement %d: %v", e.Index, e.Err) }
func (e *StmtError) Unwrap() error { return e.Err }

// qClaimOrFail is qClaimIdempotencyLinked without ON CONFLICT: in a
// pipeline nothing can look at a claim's row count before the payment
// insert runs, so a taken key must fail the transaction instead.
const qClaimOrFail = `INSERT INTO idempotency (merchant_id, key, request_hash, payment_id, status, created_at)
	VALUES (?, ?, ?, ?, 0, ?)`

// pipelined reports whether the hot writes are pipelined (a group commit,
// where there is one, already shares their round trips).
func (s *Store) pipelined() bool { return s.d.Pipeline != nil && s.gc == nil }

// pipeWrite is a pipelined write being built: statements and, for each,
// what its error is about. Its events' statements are made by stmts, which
// numbers them from an offset: a pipelined group commit (pipegroup.go)
// puts several writes' events in one transaction.
type pipeWrite struct {
	s      *Store
	stmts  []Stmt // an event's: Query "", Args its values (eventValues)
	whats  []string
	events int
	// guarded: statement 0 must affect one row, else nothing may be
	// committed (the optimistic update's version check).
	guarded bool
	key     string // the payment id: a group orders its locks by it
}

func (w *pipeWrite) add(what, query string, args ...any) {
	w.stmts = append(w.stmts, Stmt{w.s.q(query), args})
	w.whats = append(w.whats, what)
}

func (w *pipeWrite) children(p *payrouter.Payment, oldA []payrouter.Attempt, oldR []payrouter.Refund) {
	for _, c := range w.s.childWrites(p, oldA, oldR) {
		w.add(c.what, c.query, c.args...)
	}
}

func (w *pipeWrite) addEvents(p *payrouter.Payment, events []payrouter.Event) {
	now := time.Now()
	for _, e := range events {
		w.stmts = append(w.stmts, Stmt{Args: w.s.eventValues(p, e, now)})
		w.whats = append(w.whats, "insert event")
	}
	w.events += len(events)
}

// build appends w's statements to out, its events numbered from offset in
// their transaction.
func (w *pipeWrite) build(out []Stmt, offset int) ([]Stmt, error) {
	i := offset
	for _, st := range w.stmts {
		if st.Query == "" {
			ev, err := w.s.d.Pipeline.InsertEvent(i, st.Args)
			if err != nil {
				return out, err
			}
			i++
			st = ev
		}
		out = append(out, st)
	}
	return out, nil
}

// err wraps a pipeline's error as the statement-by-statement path would.
func (w *pipeWrite) err(p *payrouter.Payment, op string, err error) error {
	var se *StmtError
	if !errors.As(err, &se) || se.Index < 0 || se.Index >= len(w.whats) {
		return fmt.Errorf("store: %s payment %s: %w", op, p.ID, err)
	}
	switch what := w.whats[se.Index]; what {
	case "payment":
		if w.s.d.IsDuplicateReference(se.Err) {
			return fmt.Errorf("store: %s payment %s (reference %q): %w", op, p.ID, p.Reference, store.ErrDuplicateReference)
		}
		return fmt.Errorf("store: %s payment %s: %w", op, p.ID, se.Err)
	case "claim idempotency key", "complete idempotency key":
		return fmt.Errorf("store: %s payment %s: %s: %w", op, p.ID, what, se.Err)
	default:
		return fmt.Errorf("store: payment %s: %s: %w", p.ID, what, se.Err)
	}
}

// createClaimingPipelined is CreatePaymentClaiming in one round trip (or
// a share of a group's).
func (s *Store) createClaimingPipelined(ctx context.Context, p *payrouter.Payment, c store.IdempotencyClaim, args []any, events []payrouter.Event) (*store.IdempotencyRecord, error) {
	w := &pipeWrite{s: s, key: p.ID}
	w.add("claim idempotency key", qClaimOrFail, c.MerchantID, c.Key, c.RequestHash, p.ID, s.t(c.Now))
	w.add("payment", qInsertPayment, args...)
	w.children(p, nil, nil)
	w.addEvents(p, events)
	if done, err := s.pg.do(ctx, w); err != nil {
		return nil, fmt.Errorf("store: create payment %s: %w", p.ID, err)
	} else if done {
		p.SetRevision(1)
		return nil, nil
	}
	stmts, err := w.build(nil, 0)
	if err != nil {
		return nil, fmt.Errorf("store: payment %s: event seq: %w", p.ID, err)
	}
	// As in ClaimIdempotencyKey: a record released between our failed
	// claim and our read is gone, so claim again.
	for range 5 {
		_, err := s.d.Pipeline.Exec(ctx, stmts)
		if err == nil {
			p.SetRevision(1)
			return nil, nil
		}
		var se *StmtError
		if !errors.As(err, &se) || se.Index != 0 || !s.d.Pipeline.IsTakenKey(se.Err) {
			return nil, w.err(p, "create", err)
		}
		// Taken: nothing was written; report the owner's record.
		rec, err := s.getIdempotency(ctx, writerPool{s}, c.MerchantID, c.Key)
		if errors.Is(err, payrouter.ErrNotExist) {
			continue
		}
		return rec, err
	}
	return nil, errors.New("store: create payment: idempotency record keeps disappearing")
}

// updateFastPipelined writes fast (UpdatePaymentWith's optimistic path) in
// two round trips (or a share of a group's). done is false, with nothing
// written, when the stored version is no longer fast's: the caller then
// takes the locked path.
func (s *Store) updateFastPipelined(ctx context.Context, id string, fast *fastUpdate, c *store.IdempotencyCompletion) (done bool, err error) {
	w := &pipeWrite{s: s, key: id, guarded: true}
	q, args := updateStatement(fast.old, fast.p, fast.args, id, true)
	w.add("payment", q, append(args, fast.rev)...)
	w.children(fast.p, fast.oldA, fast.oldR)
	w.addEvents(fast.p, fast.events)
	if c != nil {
		body := fast.body
		if body == nil {
			body = []byte{}
		}
		w.add("complete idempotency key", qCompleteIdempotency, c.Status, body, c.MerchantID, c.Key)
	}
	if done, err := s.pg.do(ctx, w); err != nil {
		return false, fmt.Errorf("store: update payment %s: %w", id, err)
	} else if done {
		fast.p.SetRevision(fast.rev + 1)
		return true, nil
	}
	stmts, err := w.build(nil, 0)
	if err != nil {
		return false, fmt.Errorf("store: payment %s: event seq: %w", id, err)
	}
	rows, committed, err := s.d.Pipeline.ExecCommitIf(ctx, stmts, func(rows []int64) bool { return rows[0] == 1 })
	if len(rows) > 0 && rows[0] == 0 {
		// Stale: whatever the statements after the update did (or failed
		// at) was rolled back.
		return false, nil
	}
	if err != nil {
		return false, w.err(fast.p, "update", err)
	}
	if !committed {
		return false, nil
	}
	fast.p.SetRevision(fast.rev + 1)
	return true, nil
}
