// Package sqlstore is the database/sql implementation of store.Store that
// the SQLite and PostgreSQL stores share: one set of queries written in the
// common subset of both dialects (ON CONFLICT, RETURNING, row values, partial
// indexes), with the few real differences — placeholders, write locking,
// event sequence numbers, time encoding, constraint errors — supplied by a
// Dialect. Keeping one implementation means the two stores cannot drift.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
)

// Dialect is what differs between the databases.
type Dialect struct {
	// Rebind rewrites the ? placeholders of a query; nil keeps them.
	Rebind func(query string) string
	// BeginWrite starts a transaction that will write. SQLite takes the
	// database write lock here (BEGIN IMMEDIATE on its single writer
	// connection), so a read-modify-write inside it is serialized.
	BeginWrite func(ctx context.Context) (*sql.Tx, error)
	// LockRow is appended to the SELECT that loads a payment to update it
	// (" FOR UPDATE" in PostgreSQL; SQLite's write lock already covers it).
	LockRow string
	// NextSeqs reserves n ascending event sequence numbers inside tx, in
	// commit order: a transaction that commits later never gets a smaller
	// number than one that committed earlier, so a consumer reading
	// "seq > last seen" never skips an event.
	NextSeqs func(ctx context.Context, tx *Tx, n int) ([]int64, error)
	// VisibleEvents, when set, is an SQL condition ListEvents adds: the
	// events a reader may see now without a later commit appearing below
	// them (PostgreSQL: below its transaction-id watermark).
	VisibleEvents string
	// Prepare lists the dialect's own write-path queries (those NextSeqs
	// runs) for Store.Prepare.
	Prepare []string
	// IsDuplicateReference reports whether err violates the unique index
	// payments_merchant_reference_key, and no other constraint.
	IsDuplicateReference func(err error) bool
	// Time converts a UTC, microsecond-truncated time to a query argument.
	Time func(t time.Time) any
	// ChildRows is a scalar subquery: the rows of table matching where as
	// a JSON array (one JSON array of exprs per row, in orderBy order; []
	// for none); Micros is a time column as integer microseconds since the
	// epoch. With them one statement reads a payment with its attempts and
	// refunds (read.go).
	ChildRows func(exprs, table, where, orderBy string) string
	Micros    func(col string) string
	// GroupCommit > 0 runs the hot write path (payments, idempotency,
	// inbox, anomalies) through a group committer that puts up to this many
	// concurrent writes in one transaction, each in its own savepoint, and
	// commits them with one sync (see group.go). For a database with a
	// single writer connection (SQLite); 0 gives every write its own
	// transaction.
	GroupCommit int
	// Pipeline, when set (and without GroupCommit), sends the statements of
	// CreatePaymentClaiming and of UpdatePaymentWith's optimistic path
	// together instead of one round trip each (see pipeline.go).
	Pipeline Pipeline
	// PipelineGroup > 0 (with Pipeline) runs that many committers that
	// send the pipelined writes queued meanwhile, up to PipelineBatch of
	// them, as one transaction (see pipegroup.go).
	PipelineGroup, PipelineBatch int
}

// Store implements store.Store over database/sql.
type Store struct {
	w *sql.DB   // writes, and reads that must see the latest commit
	r *readPool // reads; may be w's pool
	d Dialect

	qLoadForUpdate string
	// One-statement reads of payments with their children (read.go).
	qWhole, qGet, qGetMerchant, qFind string
	gc                                *groupCommitter // nil without Dialect.GroupCommit
	pg                                *pipeGroup      // nil without Dialect.PipelineGroup
	// prepared holds the write path's statements after Prepare, keyed by
	// query text; it is not modified afterwards, so reads need no lock.
	prepared map[string]*sql.Stmt
}

var (
	_ store.Store         = (*Store)(nil)
	_ store.PaymentWriter = (*Store)(nil)
)

// New returns a Store writing through w and reading through r (which may be
// w). The schema must already be migrated (see Migrate). Close closes both.
func New(w, r *sql.DB, d Dialect) *Store {
	if r == nil {
		r = w
	}
	// A separate read pool (SQLite's) caches its statements: parsing a
	// query costs more than running it there (a fifth of the CPU of
	// webhook ingestion, measured). The PostgreSQL driver caches
	// statements itself.
	s := &Store{w: w, r: &readPool{DB: r, cache: r != w}, d: d}
	s.qWhole, s.qGet, s.qGetMerchant, s.qFind = readQueries(d)
	// The load of a read-modify-write. Where the whole transaction holds
	// the write lock (SQLite), one statement reads the row with its
	// children. With a row lock (PostgreSQL) the children are read after
	// the lock is granted: a statement's subqueries keep the snapshot it
	// started with, so a SELECT … FOR UPDATE that waited for a concurrent
	// writer would see that writer's row but not its attempts (lost
	// updates: ConcurrentUpdate in the conformance suite caught it).
	s.qLoadForUpdate = s.qGet
	if d.LockRow != "" {
		s.qLoadForUpdate = `SELECT ` + paymentCols + ` FROM payments WHERE id = ?` + d.LockRow
	}
	if d.GroupCommit > 0 {
		s.gc = newGroupCommitter(d.BeginWrite, d.GroupCommit, func(ctx context.Context, tx *sql.Tx, query string) error {
			_, err := s.txExec(ctx, tx, query)
			return err
		})
	}
	if s.pipelined() && d.PipelineGroup > 0 && d.PipelineBatch > 1 {
		s.pg = newPipeGroup(d.Pipeline, d.PipelineGroup, d.PipelineBatch, d.Pipeline.MaxEvents())
	}
	return s
}

// inTx runs fn in a write transaction: a savepoint of a group commit, or a
// transaction of its own. It returns fn's error as is, or the error of
// beginning or committing wrapped with what; nil means fn's writes are
// committed.
func (s *Store) inTx(ctx context.Context, what string, fn writeFunc) error {
	return s.inTxRerun(ctx, what, false, fn)
}

// inTxRerun is inTx for a fn that may be run more than once (it only
// writes in tx and sets what it reports, from scratch, on every run), which
// lets a group commit skip its savepoints.
func (s *Store) inTxRerun(ctx context.Context, what string, rerun bool, fn writeFunc) error {
	if s.gc != nil {
		fnErr, txErr := s.gc.do(ctx, fn, rerun)
		if fnErr != nil {
			return fnErr
		}
		if txErr != nil {
			return fmt.Errorf("store: %s: %w", what, txErr)
		}
		return nil
	}
	tx, err := s.d.BeginWrite(ctx)
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	defer tx.Rollback()
	if err := fn(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: %s: commit: %w", what, err)
	}
	return nil
}

// autocommit runs the statements of fn, written with ? placeholders: in a
// group commit when there is one (through the prepared statements), else
// directly on the writer pool, each statement committing by itself (fn
// must then be correct without a transaction, as a single statement is).
// Errors are as inTx's.
func (s *Store) autocommit(ctx context.Context, what string, fn func(ctx context.Context, q querier) error) error {
	if s.gc != nil {
		return s.inTxRerun(ctx, what, true, func(ctx context.Context, tx *sql.Tx) error { return fn(ctx, &Tx{s, tx}) })
	}
	return fn(ctx, writerPool{s})
}

// writerPool runs ?-placeholder queries on the writer pool.
type writerPool struct{ s *Store }

func (p writerPool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return p.s.w.ExecContext(ctx, p.s.q(query), args...)
}

func (p writerPool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return p.s.w.QueryContext(ctx, p.s.q(query), args...)
}

func (p writerPool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return p.s.w.QueryRowContext(ctx, p.s.q(query), args...)
}

// Writer returns the database used for writes (tests, benchmarks, tools).
func (s *Store) Writer() *sql.DB { return s.w }

// Page sizes. The API's limits (100 payments, 1000 events) are enforced
// here too, so a caller cannot ask the database for an unbounded result;
// one more row than the API's maximum is allowed because the API asks for
// limit+1 to learn has_more.
const (
	DefaultListLimit  = 20
	MaxListLimit      = 101
	DefaultEventLimit = 100
	MaxEventLimit     = 1001
	scanBatch         = 100
)

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) q(query string) string {
	if s.d.Rebind == nil {
		return query
	}
	return s.d.Rebind(query)
}

// t converts a time for storage: UTC, truncated to the microsecond that
// both databases keep, so what is read back equals what was stored.
func (s *Store) t(t time.Time) any { return s.d.Time(t.UTC().Truncate(time.Microsecond)) }

func (s *Store) nt(t *time.Time) any {
	if t == nil {
		return nil
	}
	return s.t(*t)
}

func notExist(what string) error { return fmt.Errorf("store: %s: %w", what, payrouter.ErrNotExist) }

// --- payments ---

const paymentCols = `id, merchant_id, reference, status, amount, currency, method, provider,
provider_payment_id, amount_captured, amount_refunded, created_at, updated_at, resolve_at, expires_at, data, version`

// paymentDoc is the part of a Payment kept in the data JSON column: every
// field that is not a column of its own and not a child table. The
// conformance suite fills every Payment field, so a field added to Payment
// and forgotten here fails it.
type paymentDoc struct {
	Description string                `json:"description,omitempty"`
	Customer    *payrouter.Customer   `json:"customer,omitempty"`
	Country     string                `json:"country,omitempty"`
	Capture     payrouter.CaptureMode `json:"capture,omitempty"`
	ReturnURL   string                `json:"return_url,omitempty"`
	Metadata    map[string]string     `json:"metadata"`
	Bank        string                `json:"bank,omitempty"`
	Checkout    string                `json:"checkout,omitempty"`
	NextAction  *payrouter.NextAction `json:"next_action,omitempty"`
	Route       payrouter.Route       `json:"route"`
	Failure     *payrouter.Failure    `json:"failure,omitempty"`
	Tokens      map[string]string     `json:"tokens"`
}

func paymentArgs(s *Store, p *payrouter.Payment) ([]any, error) {
	doc, err := json.Marshal(paymentDoc{
		Description: p.Description, Customer: p.Customer, Country: p.Country, Capture: p.Capture,
		ReturnURL: p.ReturnURL, Metadata: p.Metadata, Bank: p.Bank, Checkout: p.Checkout, NextAction: p.NextAction,
		Route: p.Route, Failure: p.Failure, Tokens: p.Tokens,
	})
	if err != nil {
		return nil, fmt.Errorf("store: encode payment %s: %w", p.ID, err)
	}
	return []any{p.ID, p.MerchantID, p.Reference, string(p.Status), p.Amount, string(p.Currency),
		string(p.Method), p.Provider, p.ProviderPaymentID, p.AmountCaptured, p.AmountRefunded,
		s.t(p.CreatedAt), s.t(p.UpdatedAt), s.nt(p.ResolveAt), s.nt(p.ExpiresAt), string(doc), referenceFree(p)}, nil
}

// referenceFree is the reference_free column: 1 takes the payment out of
// the unique (merchant, reference) index, so the merchant may use the
// reference again (see payrouter.Payment.ReferenceReusable). The index
// itself makes two concurrent creates with a freed reference race-free:
// the new payments are not free, so one insert wins.
func referenceFree(p *payrouter.Payment) int {
	if p.ReferenceReusable() {
		return 1
	}
	return 0
}

type rowScanner interface{ Scan(dest ...any) error }

// scanPayment scans paymentCols, then the columns of extra.
func scanPayment(row rowScanner, extra ...any) (*payrouter.Payment, error) {
	var (
		p                        payrouter.Payment
		status, currency, method string
		doc                      []byte
		created, updated         time.Time
		resolveAt, expiresAt     *time.Time
		version                  int64
	)
	err := row.Scan(append([]any{&p.ID, &p.MerchantID, &p.Reference, &status, &p.Amount, &currency, &method,
		&p.Provider, &p.ProviderPaymentID, &p.AmountCaptured, &p.AmountRefunded,
		timeDest{&created}, timeDest{&updated}, nullTimeDest{&resolveAt}, nullTimeDest{&expiresAt}, &doc, &version}, extra...)...)
	if err != nil {
		return nil, err
	}
	var d paymentDoc
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("store: decode payment %s: %w", p.ID, err)
	}
	p.Status, p.Currency, p.Method = payrouter.Status(status), payrouter.Currency(currency), payrouter.Method(method)
	p.CreatedAt, p.UpdatedAt, p.ResolveAt, p.ExpiresAt = created, updated, resolveAt, expiresAt
	p.Description, p.Customer, p.Country, p.Capture = d.Description, d.Customer, d.Country, d.Capture
	p.ReturnURL, p.Metadata, p.Bank, p.NextAction = d.ReturnURL, d.Metadata, d.Bank, d.NextAction
	p.Route, p.Failure, p.Tokens, p.Checkout = d.Route, d.Failure, d.Tokens, d.Checkout
	p.SetRevision(version)
	return &p, nil
}

const attemptCols = `payment_id, idx, n, provider, provider_payment_id, idempotency_key, status,
error_class, error_code, error_message, expected_fee, latency_ms, started_at`

const refundCols = `payment_id, idx, id, amount, reason, status, provider_refund_id, failure_code, created_at`

// CreatePayment inserts p with its attempts, refunds and pending events in
// one transaction. It returns store.ErrDuplicateReference when the merchant
// already has a payment with p.Reference. p.PendingEvents is drained even
// when the transaction fails.
func (s *Store) CreatePayment(ctx context.Context, p *payrouter.Payment) error {
	if p.ID == "" || p.MerchantID == "" {
		return errors.New("store: create payment: id and merchant id are required")
	}
	args, err := paymentArgs(s, p)
	if err != nil {
		return err
	}
	events := p.PendingEvents()
	return s.inTx(ctx, "create payment "+p.ID, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := s.txExec(ctx, tx, qInsertPayment, args...); err != nil {
			if s.d.IsDuplicateReference(err) {
				return fmt.Errorf("store: create payment %s (reference %q): %w", p.ID, p.Reference, store.ErrDuplicateReference)
			}
			return fmt.Errorf("store: create payment %s: %w", p.ID, err)
		}
		if err := s.writeChildren(ctx, tx, p, nil, nil); err != nil {
			return err
		}
		if err := s.insertEvents(ctx, tx, p, events); err != nil {
			return err
		}
		p.SetRevision(1)
		return nil
	})
}

// CreatePaymentClaiming claims c's idempotency key (linked to p.ID) and
// creates p in one transaction: see store.PaymentWriter. It returns the
// existing record, writing nothing, when the key is taken;
// store.ErrDuplicateReference, writing nothing, for a used reference.
// p.PendingEvents is drained even when nothing is written.
func (s *Store) CreatePaymentClaiming(ctx context.Context, p *payrouter.Payment, c store.IdempotencyClaim) (*store.IdempotencyRecord, error) {
	if p.ID == "" || p.MerchantID == "" {
		return nil, errors.New("store: create payment: id and merchant id are required")
	}
	if c.MerchantID == "" || c.Key == "" {
		return nil, errors.New("store: create payment: idempotency merchant and key are required")
	}
	args, err := paymentArgs(s, p)
	if err != nil {
		return nil, err
	}
	events := p.PendingEvents()
	if s.pipelined() {
		return s.createClaimingPipelined(ctx, p, c, args, events)
	}
	// As in ClaimIdempotencyKey: a record released between our failed
	// insert and our read is gone, so claim again.
	for range 5 {
		var rec *store.IdempotencyRecord
		err := s.inTxRerun(ctx, "create payment "+p.ID, true, func(ctx context.Context, tx *sql.Tx) error {
			rec = nil
			res, err := s.txExec(ctx, tx, qClaimIdempotencyLinked, c.MerchantID, c.Key, c.RequestHash, p.ID, s.t(c.Now))
			if err != nil {
				return fmt.Errorf("store: create payment %s: claim idempotency key: %w", p.ID, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("store: create payment %s: claim idempotency key: %w", p.ID, err)
			} else if n == 0 {
				// Taken: write nothing (the savepoint or transaction holds
				// no change), report the owner's record.
				rec, err = s.getIdempotency(ctx, &Tx{s, tx}, c.MerchantID, c.Key)
				return err
			}
			if _, err := s.txExec(ctx, tx, qInsertPayment, args...); err != nil {
				if s.d.IsDuplicateReference(err) {
					return fmt.Errorf("store: create payment %s (reference %q): %w", p.ID, p.Reference, store.ErrDuplicateReference)
				}
				return fmt.Errorf("store: create payment %s: %w", p.ID, err)
			}
			if err := s.writeChildren(ctx, tx, p, nil, nil); err != nil {
				return err
			}
			return s.insertEvents(ctx, tx, p, events)
		})
		if errors.Is(err, payrouter.ErrNotExist) {
			continue
		}
		if err == nil && rec == nil {
			p.SetRevision(1)
		}
		return rec, err
	}
	return nil, errors.New("store: create payment: idempotency record keeps disappearing")
}

// UpdatePayment loads payment id under the write lock, calls fn and, when
// fn returns nil, writes the payment, its changed and new attempts and
// refunds and its pending events in one transaction. An error from fn is
// returned as is and nothing is written. A missing payment is
// payrouter.ErrNotExist. fn may not change the payment's id or merchant.
func (s *Store) UpdatePayment(ctx context.Context, id string, fn func(p *payrouter.Payment) error) (*payrouter.Payment, error) {
	return s.UpdatePaymentWith(ctx, id, fn, store.UpdateOptions{})
}

// UpdatePaymentWith is UpdatePayment with options: see
// store.PaymentWriter and store.UpdateOptions. With opts.Current at the
// stored version, fn (and the response rendering) runs on a copy of
// Current before the write, outside the writer, and the write is one
// conditional UPDATE (version = Current's) plus the changed children; if
// the version moved (a concurrent update) or fn fails on the copy, the
// store reloads and runs fn again inside the transaction, so the result is
// always fn applied to the latest payment.
func (s *Store) UpdatePaymentWith(ctx context.Context, id string, fn func(p *payrouter.Payment) error, opts store.UpdateOptions) (*payrouter.Payment, error) {
	if c := opts.Complete; c != nil && (c.Status == 0 || c.Render == nil || c.Key == "") {
		return nil, errors.New("store: update payment: completion needs a key, a status and a renderer")
	}
	var fast *fastUpdate
	if cur := opts.Current; cur != nil && cur.ID == id && cur.Revision() > 0 {
		fast = s.prepareFast(cur, fn, opts.Complete)
	}
	if fast != nil && s.pipelined() {
		done, err := s.updateFastPipelined(ctx, id, fast, opts.Complete)
		if err != nil {
			return nil, err
		}
		if done {
			return fast.p, nil
		}
		fast = nil // the version moved: the locked path below
	}
	var p *payrouter.Payment
	// With Current, fn may already run twice (documented); p is set anew
	// on every run.
	err := s.inTxRerun(ctx, "update payment "+id, opts.Current != nil, func(ctx context.Context, tx *sql.Tx) error {
		if fast != nil {
			q, args := updateStatement(fast.old, fast.p, fast.args, id, true)
			res, err := s.txExec(ctx, tx, q, append(args, fast.rev)...)
			if err != nil {
				if s.d.IsDuplicateReference(err) {
					return fmt.Errorf("store: update payment %s (reference %q): %w", id, fast.p.Reference, store.ErrDuplicateReference)
				}
				return fmt.Errorf("store: update payment %s: %w", id, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("store: update payment %s: %w", id, err)
			}
			if n == 1 {
				// Current was the stored payment: its children are the
				// stored ones.
				if err := s.writeChildren(ctx, tx, fast.p, fast.oldA, fast.oldR); err != nil {
					return err
				}
				if err := s.insertEvents(ctx, tx, fast.p, fast.events); err != nil {
					return err
				}
				if err := s.complete(ctx, tx, opts.Complete, fast.body); err != nil {
					return err
				}
				fast.p.SetRevision(fast.rev + 1)
				p = fast.p
				return nil
			}
			// Stale: fall through to the load path.
		}
		var err error
		p, err = s.updateLoaded(ctx, tx, id, fn, opts.Complete)
		return err
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// fastUpdate is fn applied to a copy of the caller's current payment,
// ready to be written if the stored version has not moved.
type fastUpdate struct {
	old    keyCols // the caller's current payment's
	p      *payrouter.Payment
	rev    int64
	args   []any
	events []payrouter.Event
	oldA   []payrouter.Attempt
	oldR   []payrouter.Refund
	body   []byte
}

// prepareFast runs fn (and render) on a copy of cur; nil when they fail
// (the load path then runs them on the stored payment and its error counts).
func (s *Store) prepareFast(cur *payrouter.Payment, fn func(p *payrouter.Payment) error, c *store.IdempotencyCompletion) *fastUpdate {
	cp := *cur
	cp.Attempts, cp.Refunds = slices.Clone(cur.Attempts), slices.Clone(cur.Refunds)
	_ = cp.PendingEvents() // events already written with cur are not this update's
	if err := fn(&cp); err != nil {
		return nil
	}
	if cp.ID != cur.ID || cp.MerchantID != cur.MerchantID {
		return nil
	}
	args, err := paymentArgs(s, &cp)
	if err != nil {
		return nil
	}
	f := &fastUpdate{old: keyColsOf(cur), p: &cp, rev: cur.Revision(), args: args, events: cp.PendingEvents(), oldA: cur.Attempts, oldR: cur.Refunds}
	if c != nil {
		if f.body, err = c.Render(&cp); err != nil {
			return nil
		}
	}
	return f
}

// updateLoaded is UpdatePayment's transaction body: load id under the write
// lock, call fn, write what changed, complete the idempotency record.
func (s *Store) updateLoaded(ctx context.Context, tx *sql.Tx, id string, fn func(p *payrouter.Payment) error, c *store.IdempotencyCompletion) (*payrouter.Payment, error) {
	p, err := s.loadForUpdate(ctx, tx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notExist("payment " + id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: update payment %s: load: %w", id, err)
	}
	merchant, rev := p.MerchantID, p.Revision()
	old := keyColsOf(p)
	oldAttempts, oldRefunds := slices.Clone(p.Attempts), slices.Clone(p.Refunds)
	if err := fn(p); err != nil {
		return nil, err
	}
	if p.ID != id || p.MerchantID != merchant {
		return nil, fmt.Errorf("store: update payment %s: id or merchant changed", id)
	}
	args, err := paymentArgs(s, p)
	if err != nil {
		return nil, err
	}
	var body []byte
	if c != nil {
		if body, err = c.Render(p); err != nil {
			return nil, fmt.Errorf("store: update payment %s: render response: %w", id, err)
		}
	}
	q, qargs := updateStatement(old, p, args, id, false)
	if _, err := s.txExec(ctx, tx, q, qargs...); err != nil {
		if s.d.IsDuplicateReference(err) {
			return nil, fmt.Errorf("store: update payment %s (reference %q): %w", id, p.Reference, store.ErrDuplicateReference)
		}
		return nil, fmt.Errorf("store: update payment %s: %w", id, err)
	}
	if err := s.writeChildren(ctx, tx, p, oldAttempts, oldRefunds); err != nil {
		return nil, err
	}
	if err := s.insertEvents(ctx, tx, p, p.PendingEvents()); err != nil {
		return nil, err
	}
	if err := s.complete(ctx, tx, c, body); err != nil {
		return nil, err
	}
	p.SetRevision(rev + 1)
	return p, nil
}

// updateStatement is the UPDATE that saves p over old, with its arguments
// (args: paymentArgs(p)) up to the id; with ifVersion the caller appends
// the expected version. id and merchant_id (args[0:2]) never change; the
// lean statement leaves out the columns of the reference and creation-time
// indexes when they did not change either.
func updateStatement(old keyCols, p *payrouter.Payment, args []any, id string, ifVersion bool) (string, []any) {
	if old != keyColsOf(p) {
		q := qUpdatePayment
		if ifVersion {
			q = qUpdatePaymentIfVersion
		}
		return q, append(slices.Clip(args[2:]), id)
	}
	q := qUpdatePaymentLean
	if ifVersion {
		q = qUpdatePaymentLeanIfVersion
	}
	// Without reference (2), created_at (11) and reference_free (16).
	out := make([]any, 0, 14)
	out = append(out, args[3:11]...)
	out = append(out, args[12:16]...)
	return q, append(out, id)
}

// keyCols are a payment's indexed columns that an update rarely changes.
type keyCols struct {
	reference string
	created   int64 // µs
	free      int
}

func keyColsOf(p *payrouter.Payment) keyCols {
	return keyCols{p.Reference, p.CreatedAt.UnixMicro(), referenceFree(p)}
}

// complete stores an idempotent response in tx; a missing record stays
// missing.
func (s *Store) complete(ctx context.Context, tx *sql.Tx, c *store.IdempotencyCompletion, body []byte) error {
	if c == nil {
		return nil
	}
	if body == nil {
		body = []byte{}
	}
	if _, err := s.txExec(ctx, tx, qCompleteIdempotency, c.Status, body, c.MerchantID, c.Key); err != nil {
		return fmt.Errorf("store: complete idempotency key: %w", err)
	}
	return nil
}

// writeChildren upserts the attempts and refunds that differ from the
// loaded ones (rows are keyed by their position in the slice) and deletes
// rows beyond the new length.
func (s *Store) writeChildren(ctx context.Context, tx *sql.Tx, p *payrouter.Payment, oldA []payrouter.Attempt, oldR []payrouter.Refund) error {
	for _, w := range s.childWrites(p, oldA, oldR) {
		if _, err := s.txExec(ctx, tx, w.query, w.args...); err != nil {
			return fmt.Errorf("store: payment %s: %s: %w", p.ID, w.what, err)
		}
	}
	return nil
}

// childWrite is one statement of writeChildren (? placeholders).
type childWrite struct {
	query string
	args  []any
	what  string // for its error
}

// childWrites lists writeChildren's statements, so a pipelined write can
// send them with the rest of its transaction.
func (s *Store) childWrites(p *payrouter.Payment, oldA []payrouter.Attempt, oldR []payrouter.Refund) []childWrite {
	var ws []childWrite
	for i, a := range p.Attempts {
		if i < len(oldA) && oldA[i] == a {
			continue
		}
		ws = append(ws, childWrite{qUpsertAttempt, []any{p.ID, i, a.N, a.Provider, a.ProviderPaymentID, a.IdempotencyKey, string(a.Status),
			a.ErrorClass, a.ErrorCode, a.ErrorMessage, a.ExpectedFee, a.LatencyMS, s.t(a.StartedAt)}, fmt.Sprintf("write attempt %d", i)})
	}
	if len(oldA) > len(p.Attempts) {
		ws = append(ws, childWrite{qDeleteAttempts, []any{p.ID, len(p.Attempts)}, "delete attempts"})
	}
	for i, r := range p.Refunds {
		if i < len(oldR) && oldR[i] == r {
			continue
		}
		ws = append(ws, childWrite{qUpsertRefund, []any{p.ID, i, r.ID, r.Amount, r.Reason, string(r.Status), r.ProviderRefundID,
			r.FailureCode, s.t(r.CreatedAt)}, fmt.Sprintf("write refund %d", i)})
	}
	if len(oldR) > len(p.Refunds) {
		ws = append(ws, childWrite{qDeleteRefunds, []any{p.ID, len(p.Refunds)}, "delete refunds"})
	}
	return ws
}

// insertEvents writes the payment's pending events with fresh sequence
// numbers; ID is derived from Seq, a zero CreatedAt becomes now.
func (s *Store) insertEvents(ctx context.Context, tx *sql.Tx, p *payrouter.Payment, events []payrouter.Event) error {
	if len(events) == 0 {
		return nil
	}
	seqs, err := s.nextSeqs(ctx, tx, len(events))
	if err != nil {
		return fmt.Errorf("store: payment %s: event seq: %w", p.ID, err)
	}
	now := time.Now()
	for i, e := range events {
		args := append([]any{seqs[i], payrouter.EventID(seqs[i])}, s.eventValues(p, e, now)...)
		if _, err := s.txExec(ctx, tx, qInsertEvent, args...); err != nil {
			return fmt.Errorf("store: payment %s: insert event: %w", p.ID, err)
		}
	}
	return nil
}

// eventValues are an event's columns after seq and id: merchant, payment,
// type, created_at (a zero one becomes now) and data.
func (s *Store) eventValues(p *payrouter.Payment, e payrouter.Event, now time.Time) []any {
	if e.CreatedAt.IsZero() {
		e.CreatedAt = now
	}
	if e.PaymentID == "" {
		e.PaymentID = p.ID
	}
	if e.MerchantID == "" {
		e.MerchantID = p.MerchantID
	}
	data := e.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	return []any{e.MerchantID, e.PaymentID, string(e.Type), s.t(e.CreatedAt), string(data)}
}

// nextSeqs reserves n event sequence numbers in tx: from the group
// committer's cache when this is not the batch's first (see
// groupCommitter.seq), else from the dialect.
func (s *Store) nextSeqs(ctx context.Context, tx *sql.Tx, n int) ([]int64, error) {
	if s.gc == nil || !s.gc.seq.ok {
		seqs, err := s.d.NextSeqs(ctx, &Tx{s, tx}, n)
		if err != nil || s.gc == nil {
			return seqs, err
		}
		s.gc.seq = seqCache{ok: true, last: seqs[len(seqs)-1]}
		return seqs, nil
	}
	seqs := make([]int64, n)
	for i := range seqs {
		seqs[i] = s.gc.seq.last + int64(i) + 1
	}
	s.gc.seq.last = seqs[n-1]
	return seqs, nil
}

// loadForUpdate reads payment id with its children in tx, under the write
// lock (see qLoadForUpdate).
func (s *Store) loadForUpdate(ctx context.Context, tx *sql.Tx, id string) (*payrouter.Payment, error) {
	if s.d.LockRow == "" {
		return scanPaymentWhole(s.txQueryRow(ctx, tx, s.qLoadForUpdate, id))
	}
	p, err := scanPayment(s.txQueryRow(ctx, tx, s.qLoadForUpdate, id))
	if err != nil {
		return nil, err
	}
	if err := s.loadChildren(ctx, tx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// loadChildren fills p's attempts and refunds with two queries in tx.
func (s *Store) loadChildren(ctx context.Context, tx *sql.Tx, p *payrouter.Payment) error {
	// "attempts": [] even for a payment without any (a hosted checkout
	// before the customer chooses), as the API promises.
	p.Attempts = []payrouter.Attempt{}
	rows, err := s.query(ctx, tx, qLoadAttempts, p.ID)
	if err != nil {
		return fmt.Errorf("store: load attempts: %w", err)
	}
	for rows.Next() {
		var (
			a         payrouter.Attempt
			pid       string
			idx       int
			status    string
			startedAt time.Time
		)
		if err := rows.Scan(&pid, &idx, &a.N, &a.Provider, &a.ProviderPaymentID, &a.IdempotencyKey, &status,
			&a.ErrorClass, &a.ErrorCode, &a.ErrorMessage, &a.ExpectedFee, &a.LatencyMS, timeDest{&startedAt}); err != nil {
			rows.Close()
			return fmt.Errorf("store: load attempts: %w", err)
		}
		a.Status, a.StartedAt = payrouter.AttemptStatus(status), startedAt
		p.Attempts = append(p.Attempts, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: load attempts: %w", err)
	}

	rows, err = s.query(ctx, tx, qLoadRefunds, p.ID)
	if err != nil {
		return fmt.Errorf("store: load refunds: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			r         payrouter.Refund
			pid       string
			idx       int
			status    string
			createdAt time.Time
		)
		if err := rows.Scan(&pid, &idx, &r.ID, &r.Amount, &r.Reason, &status, &r.ProviderRefundID,
			&r.FailureCode, timeDest{&createdAt}); err != nil {
			return fmt.Errorf("store: load refunds: %w", err)
		}
		r.Status, r.CreatedAt = payrouter.RefundStatus(status), createdAt
		p.Refunds = append(p.Refunds, r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: load refunds: %w", err)
	}
	return nil
}

// queryPayments reads payments with their children, one statement:
// rest (WHERE, ORDER BY, LIMIT) follows the aggregate SELECT of read.go.
func (s *Store) queryPayments(ctx context.Context, rest string, args ...any) ([]*payrouter.Payment, error) {
	rows, err := s.r.QueryContext(ctx, s.q(s.qWhole+rest), args...)
	if err != nil {
		return nil, fmt.Errorf("store: query payments: %w", err)
	}
	defer rows.Close()
	var ps []*payrouter.Payment
	for rows.Next() {
		p, err := scanPaymentWhole(rows)
		if err != nil {
			return nil, fmt.Errorf("store: scan payment: %w", err)
		}
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: query payments: %w", err)
	}
	return ps, nil
}

// GetPayment reads payment id; merchantID "" skips the merchant check.
// A missing payment, or another merchant's, is payrouter.ErrNotExist. One
// statement reads the row with its attempts and refunds, so they are of one
// version (read.go).
func (s *Store) GetPayment(ctx context.Context, merchantID, id string) (*payrouter.Payment, error) {
	query, args := s.qGet, []any{id}
	if merchantID != "" {
		query, args = s.qGetMerchant, append(args, merchantID)
	}
	p, err := scanPaymentWhole(s.r.QueryRowContext(ctx, s.q(query), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notExist("payment " + id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get payment %s: %w", id, err)
	}
	return p, nil
}

// FindPayment finds the payment one of whose attempts at provider has
// providerPaymentID as its provider payment id or as its idempotency key
// (the order id adapters send). No match is payrouter.ErrNotExist.
func (s *Store) FindPayment(ctx context.Context, provider, providerPaymentID string) (*payrouter.Payment, error) {
	if provider == "" || providerPaymentID == "" {
		return nil, notExist("payment with empty provider id")
	}
	p, err := scanPaymentWhole(s.r.QueryRowContext(ctx, s.q(s.qFind), provider, providerPaymentID, provider, providerPaymentID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notExist(fmt.Sprintf("payment for %s %s", provider, providerPaymentID))
	}
	if err != nil {
		return nil, fmt.Errorf("store: find payment %s %s: %w", provider, providerPaymentID, err)
	}
	return p, nil
}

// ListPayments lists payments newest first (created_at, then id), filtered
// by merchant ("" = every merchant), reference and status. Limit defaults
// to 20 and is capped at 100. Before is a payment id: only payments listed
// after it are returned; an unknown cursor yields an empty list.
func (s *Store) ListPayments(ctx context.Context, f store.ListFilter) ([]*payrouter.Payment, error) {
	var (
		where []string
		args  []any
	)
	if f.MerchantID != "" {
		where, args = append(where, "merchant_id = ?"), append(args, f.MerchantID)
	}
	if f.Reference != "" {
		where, args = append(where, "reference = ?"), append(args, f.Reference)
	}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, string(f.Status))
	}
	if f.Before != "" {
		where = append(where, "(created_at, id) < (SELECT c.created_at, c.id FROM payments c WHERE c.id = ?)")
		args = append(args, f.Before)
	}
	order := " ORDER BY created_at DESC, id DESC LIMIT ?"
	if f.After != "" {
		where = append(where, "(created_at, id) > (SELECT c.created_at, c.id FROM payments c WHERE c.id = ?)")
		args = append(args, f.After)
		order = " ORDER BY created_at, id LIMIT ?" // the nearest to the cursor, reversed below
	}
	rest := ""
	if len(where) > 0 {
		rest = " WHERE " + strings.Join(where, " AND ")
	}
	rest += order
	args = append(args, clamp(f.Limit, DefaultListLimit, MaxListLimit))
	ps, err := s.queryPayments(ctx, rest, args...)
	if f.After != "" {
		slices.Reverse(ps)
	}
	return ps, err
}

func clamp(n, def, max int) int {
	if n <= 0 {
		return def
	}
	return min(n, max)
}

// DuePayments lists payments with ResolveAt at or before now, oldest
// ResolveAt first; limit <= 0 means 100.
func (s *Store) DuePayments(ctx context.Context, now time.Time, limit int) ([]*payrouter.Payment, error) {
	return s.queryPayments(ctx, ` WHERE resolve_at IS NOT NULL AND resolve_at <= ? ORDER BY resolve_at, id LIMIT ?`,
		s.t(now), clamp(limit, 100, 10000))
}

// ScanPayments calls fn for every payment created at or after since, oldest
// first, reading in pages so no query stays open while fn runs. An error
// from fn stops the scan and is returned as is.
func (s *Store) ScanPayments(ctx context.Context, since time.Time, fn func(*payrouter.Payment) error) error {
	// (created_at, id) > (since, "") is created_at >= since for non-empty ids.
	lastT, lastID := since, ""
	for {
		ps, err := s.queryPayments(ctx, ` WHERE (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?`, s.t(lastT), lastID, scanBatch)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if err := fn(p); err != nil {
				return err
			}
		}
		if len(ps) < scanBatch {
			return nil
		}
		last := ps[len(ps)-1]
		lastT, lastID = last.CreatedAt, last.ID
	}
}

// --- events ---

const eventCols = `seq, id, merchant_id, payment_id, type, created_at, data`

func scanEvent(row rowScanner) (payrouter.Event, error) {
	var (
		e       payrouter.Event
		typ     string
		created time.Time
		data    []byte
	)
	if err := row.Scan(&e.Seq, &e.ID, &e.MerchantID, &e.PaymentID, &typ, timeDest{&created}, &data); err != nil {
		return e, err
	}
	e.Type, e.CreatedAt, e.Data = payrouter.EventType(typ), created, json.RawMessage(data)
	return e, nil
}

// ListEventsBefore lists the limit events with Seq < before nearest to it,
// oldest first, of one merchant ("" = all): the page before a cursor.
func (s *Store) ListEventsBefore(ctx context.Context, merchantID string, before int64, limit int) ([]payrouter.Event, error) {
	query, args := `SELECT `+eventCols+` FROM events WHERE seq < ?`, []any{before}
	if merchantID != "" {
		query, args = query+` AND merchant_id = ?`, append(args, merchantID)
	}
	query += ` ORDER BY seq DESC LIMIT ?`
	args = append(args, clamp(limit, DefaultEventLimit, MaxEventLimit))
	evs, err := s.listEvents(ctx, query, args...)
	slices.Reverse(evs)
	return evs, err
}

// ListEvents lists events with Seq > after, oldest first, of one merchant
// ("" = all). limit defaults to 100 and is capped at 1000.
func (s *Store) ListEvents(ctx context.Context, merchantID string, after int64, limit int) ([]payrouter.Event, error) {
	query, args := `SELECT `+eventCols+` FROM events WHERE seq > ?`, []any{after}
	if s.d.VisibleEvents != "" {
		query += ` AND ` + s.d.VisibleEvents
	}
	if merchantID != "" {
		query, args = query+` AND merchant_id = ?`, append(args, merchantID)
	}
	query += ` ORDER BY seq LIMIT ?`
	args = append(args, clamp(limit, DefaultEventLimit, MaxEventLimit))
	return s.listEvents(ctx, query, args...)
}

func (s *Store) listEvents(ctx context.Context, query string, args ...any) ([]payrouter.Event, error) {
	rows, err := s.r.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list events: %w", err)
	}
	defer rows.Close()
	var out []payrouter.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list events: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list events: %w", err)
	}
	return out, nil
}

// GetEvent reads event seq of merchantID ("" = any merchant); a missing
// event, or another merchant's, is payrouter.ErrNotExist.
func (s *Store) GetEvent(ctx context.Context, merchantID string, seq int64) (*payrouter.Event, error) {
	query, args := `SELECT `+eventCols+` FROM events WHERE seq = ?`, []any{seq}
	if merchantID != "" {
		query, args = query+` AND merchant_id = ?`, append(args, merchantID)
	}
	e, err := scanEvent(s.r.QueryRowContext(ctx, s.q(query), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notExist(fmt.Sprintf("event %d", seq))
	}
	if err != nil {
		return nil, fmt.Errorf("store: get event %d: %w", seq, err)
	}
	return &e, nil
}

// --- idempotency ---

// ClaimIdempotencyKey inserts a running record for (merchantID, key); it
// returns nil when the caller now owns the key, else the existing record.
// The unique primary key makes concurrent claims race-free: exactly one
// INSERT … ON CONFLICT DO NOTHING inserts.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, merchantID, key, requestHash string, now time.Time) (*store.IdempotencyRecord, error) {
	// A record released between our failed insert and our read is gone:
	// try again, a few times, rather than report a record that is not there.
	// (With group commit, the insert and the read run in one transaction
	// and the record cannot disappear in between.)
	for range 5 {
		var rec *store.IdempotencyRecord
		err := s.autocommit(ctx, "claim idempotency key", func(ctx context.Context, q querier) error {
			res, err := q.ExecContext(ctx, qClaimIdempotency, merchantID, key, requestHash, s.t(now))
			if err != nil {
				return fmt.Errorf("store: claim idempotency key: %w", err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("store: claim idempotency key: %w", err)
			} else if n == 1 {
				return nil
			}
			rec, err = s.getIdempotency(ctx, q, merchantID, key)
			return err
		})
		if errors.Is(err, payrouter.ErrNotExist) {
			continue
		}
		return rec, err
	}
	return nil, errors.New("store: claim idempotency key: record keeps disappearing")
}

func (s *Store) getIdempotency(ctx context.Context, q querier, merchantID, key string) (*store.IdempotencyRecord, error) {
	var (
		r       store.IdempotencyRecord
		created time.Time
	)
	err := q.QueryRowContext(ctx, qGetIdempotency, merchantID, key).
		Scan(&r.MerchantID, &r.Key, &r.RequestHash, &r.PaymentID, &r.Status, &r.Body, timeDest{&created})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notExist("idempotency key")
	}
	if err != nil {
		return nil, fmt.Errorf("store: read idempotency key: %w", err)
	}
	r.CreatedAt = created
	return &r, nil
}

func (s *Store) execOne(ctx context.Context, what, query string, args ...any) error {
	return s.autocommit(ctx, what, func(ctx context.Context, q querier) error {
		res, err := q.ExecContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("store: %s: %w", what, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("store: %s: %w", what, err)
		}
		if n == 0 {
			return notExist(what)
		}
		return nil
	})
}

// execN runs one write statement and returns the rows it affected.
func (s *Store) execN(ctx context.Context, what, query string, args ...any) (int64, error) {
	var n int64
	err := s.autocommit(ctx, what, func(ctx context.Context, q querier) error {
		res, err := q.ExecContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("store: %s: %w", what, err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return fmt.Errorf("store: %s: %w", what, err)
		}
		return nil
	})
	return n, err
}

// CompleteIdempotencyKey stores the response (status != 0) to replay. A
// missing record is payrouter.ErrNotExist.
func (s *Store) CompleteIdempotencyKey(ctx context.Context, merchantID, key string, status int, body []byte) error {
	if status == 0 {
		return errors.New("store: complete idempotency key: status 0 means running")
	}
	if body == nil {
		body = []byte{}
	}
	return s.execOne(ctx, "complete idempotency key", qCompleteIdempotency, status, body, merchantID, key)
}

// ReleaseIdempotencyKey deletes a running record so the merchant may retry.
// A completed record is kept (its response must still replay); releasing a
// missing or completed key is a no-op.
func (s *Store) ReleaseIdempotencyKey(ctx context.Context, merchantID, key string) error {
	_, err := s.execN(ctx, "release idempotency key", `DELETE FROM idempotency WHERE merchant_id = ? AND key = ? AND status = 0`, merchantID, key)
	return err
}

// TakeOverIdempotencyKey re-claims a running record created before
// staleBefore by moving its created time to now, in one conditional UPDATE,
// so of concurrent callers exactly one gets true. The payment link stays.
func (s *Store) TakeOverIdempotencyKey(ctx context.Context, merchantID, key string, staleBefore, now time.Time) (bool, error) {
	n, err := s.execN(ctx, "take over idempotency key", `UPDATE idempotency SET created_at = ?
		WHERE merchant_id = ? AND key = ? AND status = 0 AND created_at < ?`, s.t(now), merchantID, key, s.t(staleBefore))
	return n == 1, err
}

// GetIdempotencyKey reads a record (through the readers: a claim is
// committed before its claimer can act on it); a missing one is
// payrouter.ErrNotExist.
func (s *Store) GetIdempotencyKey(ctx context.Context, merchantID, key string) (*store.IdempotencyRecord, error) {
	return s.getIdempotency(ctx, readerPool{s}, merchantID, key)
}

// readerPool runs ?-placeholder queries on the reader pool (reads only).
type readerPool struct{ s *Store }

func (p readerPool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return nil, errors.New("store: write through the reader pool")
}

func (p readerPool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return p.s.r.QueryContext(ctx, p.s.q(query), args...)
}

func (p readerPool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return p.s.r.QueryRowContext(ctx, p.s.q(query), args...)
}

// PurgeIdempotencyKeys deletes records created (or taken over) before t,
// running or completed, and returns how many. A running record that old
// has no live owner (a request's deadline is seconds): without it a retry
// claims the key afresh, and the operation's own guards (the reference,
// refund ids derived from the key) still keep it from running twice.
func (s *Store) PurgeIdempotencyKeys(ctx context.Context, before time.Time) (int64, error) {
	return s.execN(ctx, "purge idempotency keys", `DELETE FROM idempotency WHERE created_at < ?`, s.t(before))
}

// --- inbox ---

// InsertWebhook stores w in the inbox and sets w.ID (and ReceivedAt, when
// zero). It returns false and stores nothing when (provider, event id) is
// already there.
func (s *Store) InsertWebhook(ctx context.Context, w *store.InboxItem) (bool, error) {
	if w.Provider == "" || w.EventID == "" {
		return false, errors.New("store: insert webhook: provider and event id are required")
	}
	headers, err := json.Marshal(w.Headers)
	if err != nil {
		return false, fmt.Errorf("store: insert webhook: %w", err)
	}
	if w.ReceivedAt.IsZero() {
		w.ReceivedAt = time.Now()
	}
	var processed *time.Time
	if w.Outcome != "" {
		now := time.Now()
		processed = &now
	}
	var id int64
	err = s.autocommit(ctx, "insert webhook", func(ctx context.Context, q querier) error {
		return q.QueryRowContext(ctx, qInsertWebhook,
			w.Provider, w.EventID, string(headers), w.Body, w.Parsed, s.t(w.ReceivedAt), w.Outcome, w.Note, s.nt(processed)).Scan(&id)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: insert webhook: %w", err)
	}
	w.ID = id
	return true, nil
}

const inboxColumns = `id, provider, event_id, headers, body, parsed, received_at, outcome, note, attempts, next_at`

// PendingWebhooks lists unprocessed inbox items, oldest first, due or not;
// limit <= 0 means 100.
func (s *Store) PendingWebhooks(ctx context.Context, limit int) ([]store.InboxItem, error) {
	return s.listWebhooks(ctx, "pending webhooks", `SELECT `+inboxColumns+`
		FROM inbox WHERE outcome = '' ORDER BY id LIMIT ?`, clamp(limit, 100, 10000))
}

// DueWebhooks lists unprocessed inbox items whose next check is due at
// now (NextAt zero or not after now), oldest first; limit <= 0 means 100.
func (s *Store) DueWebhooks(ctx context.Context, now time.Time, limit int) ([]store.InboxItem, error) {
	return s.listWebhooks(ctx, "due webhooks", `SELECT `+inboxColumns+`
		FROM inbox WHERE outcome = '' AND (next_at IS NULL OR next_at <= ?) ORDER BY id LIMIT ?`, s.t(now), clamp(limit, 100, 10000))
}

// GetWebhook reads the inbox item of (provider, event id);
// payrouter.ErrNotExist when there is none.
func (s *Store) GetWebhook(ctx context.Context, provider, eventID string) (*store.InboxItem, error) {
	// From the read pool: every webhook asks, and under SQLite the writer's
	// one connection is busy with the group commit. A committed item is
	// visible there at once.
	items, err := s.listWebhooksOn(ctx, s.r, "get webhook", `SELECT `+inboxColumns+`
		FROM inbox WHERE provider = ? AND event_id = ?`, provider, eventID)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, payrouter.ErrNotExist
	}
	return &items[0], nil
}

// RetryWebhook keeps inbox item id pending, counts one more attempt and
// makes it due again at next. A missing item is payrouter.ErrNotExist.
func (s *Store) RetryWebhook(ctx context.Context, id int64, note string, next time.Time) error {
	return s.execOne(ctx, fmt.Sprintf("retry webhook %d", id),
		qRetryWebhook, note, s.t(next), id)
}

func (s *Store) listWebhooks(ctx context.Context, what, query string, args ...any) ([]store.InboxItem, error) {
	return s.listWebhooksOn(ctx, s.w, what, query, args...)
}

func (s *Store) listWebhooksOn(ctx context.Context, q querier, what, query string, args ...any) ([]store.InboxItem, error) {
	rows, err := q.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	defer rows.Close()
	var out []store.InboxItem
	for rows.Next() {
		var (
			w        store.InboxItem
			headers  []byte
			received time.Time
			next     *time.Time
		)
		if err := rows.Scan(&w.ID, &w.Provider, &w.EventID, &headers, &w.Body, &w.Parsed, timeDest{&received}, &w.Outcome, &w.Note,
			&w.Attempts, nullTimeDest{&next}); err != nil {
			return nil, fmt.Errorf("store: %s: %w", what, err)
		}
		if err := json.Unmarshal(headers, &w.Headers); err != nil {
			return nil, fmt.Errorf("store: %s: headers of %d: %w", what, w.ID, err)
		}
		w.ReceivedAt = received
		if next != nil {
			w.NextAt = *next
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	return out, nil
}

// FinishWebhook marks inbox item id processed with a non-empty outcome. A
// missing item is payrouter.ErrNotExist.
func (s *Store) FinishWebhook(ctx context.Context, id int64, outcome, note string, now time.Time) error {
	if outcome == "" {
		return errors.New("store: finish webhook: empty outcome")
	}
	return s.execOne(ctx, fmt.Sprintf("finish webhook %d", id),
		qFinishWebhook, outcome, note, s.t(now), id)
}

// --- anomalies ---

// RecordAnomaly stores a and sets a.ID (and CreatedAt, when zero).
func (s *Store) RecordAnomaly(ctx context.Context, a *store.Anomaly) error {
	if a.Kind == "" {
		return errors.New("store: record anomaly: empty kind")
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = time.Now()
	}
	var id int64
	err := s.autocommit(ctx, "record anomaly", func(ctx context.Context, q querier) error {
		return q.QueryRowContext(ctx, qRecordAnomaly, a.Kind, a.PaymentID, a.Provider, a.Detail, s.t(a.CreatedAt)).Scan(&id)
	})
	a.ID = id
	if err != nil {
		return fmt.Errorf("store: record anomaly: %w", err)
	}
	return nil
}

// ListAnomalies lists anomalies newest first; limit <= 0 means 100.
func (s *Store) ListAnomalies(ctx context.Context, limit int) ([]store.Anomaly, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT id, kind, payment_id, provider, detail, created_at
		FROM anomalies ORDER BY id DESC LIMIT ?`), clamp(limit, 100, 10000))
	if err != nil {
		return nil, fmt.Errorf("store: list anomalies: %w", err)
	}
	defer rows.Close()
	var out []store.Anomaly
	for rows.Next() {
		var (
			a       store.Anomaly
			created time.Time
		)
		if err := rows.Scan(&a.ID, &a.Kind, &a.PaymentID, &a.Provider, &a.Detail, timeDest{&created}); err != nil {
			return nil, fmt.Errorf("store: list anomalies: %w", err)
		}
		a.CreatedAt = created
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list anomalies: %w", err)
	}
	return out, nil
}

// Ping checks both connection pools.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	if s.r.DB != s.w {
		if err := s.r.PingContext(ctx); err != nil {
			return fmt.Errorf("store: ping readers: %w", err)
		}
	}
	return nil
}

// Close finishes the queued writes, then closes the connection pools.
// Writes after Close fail with ErrClosed.
func (s *Store) Close() error {
	if s.gc != nil {
		s.gc.close()
	}
	s.pg.close()
	err := s.closePrepared()
	if s.r.DB != s.w {
		err = errors.Join(err, s.r.close())
	}
	return errors.Join(err, s.w.Close())
}
