package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Group commit.
//
// With one writer connection (SQLite), every write transaction pays one
// commit — one fsync with synchronous=FULL — and the writes queue behind
// each other's fsync, so throughput is capped at 1/fsync whatever the
// concurrency. The group committer keeps the same durability (a write
// returns only after the transaction holding it has committed) but lets
// many writes share one commit: a single goroutine takes every queued write,
// runs each inside its own SAVEPOINT of one transaction (so one write's
// error rolls back only that write), commits once and then answers every
// caller. Batches form by themselves: while one commit syncs, the next
// writes queue up. No write waits for a timer.

// ErrClosed is returned by writes submitted after Close.
var ErrClosed = errors.New("store: closed")

// writeFunc is one queued write. It runs on the committer's goroutine and
// must only use tx (the writer connection is held by the batch).
type writeFunc func(ctx context.Context, tx *sql.Tx) error

const (
	opQueued int32 = iota
	opRunning
	opCanceled
)

type writeOp struct {
	fn    writeFunc
	rerun bool // fn may run again after a rollback of its batch
	state atomic.Int32
	err   error // fn's
	txErr error // the batch's: begin, savepoint, commit
	pnc   any   // a panic of fn, re-raised in the caller's goroutine
	done  chan struct{}
}

type seqCache struct {
	ok   bool
	last int64
}

type groupCommitter struct {
	begin    func(ctx context.Context) (*sql.Tx, error)
	exec     func(ctx context.Context, tx *sql.Tx, query string) error // through prepared statements
	maxBatch int

	// seq caches the batch's last event sequence number, so only the
	// batch's first event-writing write asks the database (its MAX(seq)):
	// the batch holds the write lock from BEGIN to COMMIT, so nobody else
	// can draw numbers meanwhile. Used only on the committer's goroutine;
	// reset at every batch and restored when a write is rolled back, so
	// numbers stay gap-free.
	seq seqCache

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool
	queue  chan *writeOp
	exited chan struct{}
}

func newGroupCommitter(begin func(ctx context.Context) (*sql.Tx, error), maxBatch int,
	exec func(ctx context.Context, tx *sql.Tx, query string) error) *groupCommitter {
	g := &groupCommitter{begin: begin, exec: exec, maxBatch: maxBatch, queue: make(chan *writeOp, maxBatch), exited: make(chan struct{})}
	go g.loop()
	return g
}

// do queues fn and waits until the transaction that ran it has committed
// or failed. fnErr is fn's own error (its writes were rolled back); txErr
// is the batch's (nothing of fn was committed), or ctx's error when ctx
// ended while fn was still queued (fn never ran). Once fn has started, do
// waits for the commit, so a caller never sees an error for a write that
// was committed. A panic in fn is re-raised here.
//
// With rerun, fn may be run more than once (each run starts from the
// state before the previous one, as its batch was rolled back): the batch
// then skips the savepoints (see run).
func (g *groupCommitter) do(ctx context.Context, fn writeFunc, rerun bool) (fnErr, txErr error) {
	// A context already done never queues (select would pick at random
	// between it and a free queue slot).
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	op := &writeOp{fn: fn, rerun: rerun, done: make(chan struct{})}
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return nil, ErrClosed
	}
	select {
	case g.queue <- op:
	case <-ctx.Done():
		g.mu.RUnlock()
		return nil, ctx.Err()
	}
	g.mu.RUnlock()
	select {
	case <-op.done:
	case <-ctx.Done():
		if op.state.CompareAndSwap(opQueued, opCanceled) {
			return nil, ctx.Err()
		}
		<-op.done
	}
	if op.pnc != nil {
		panic(op.pnc)
	}
	return op.err, op.txErr
}

// close stops accepting writes, finishes the queued ones and waits for the
// committer's goroutine to exit.
func (g *groupCommitter) close() {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.queue)
	}
	g.mu.Unlock()
	<-g.exited
}

func (g *groupCommitter) loop() {
	defer close(g.exited)
	batch := make([]*writeOp, 0, g.maxBatch)
	for {
		op, ok := <-g.queue
		if !ok {
			return
		}
		batch = append(batch[:0], op)
		open := true
	fill:
		for len(batch) < g.maxBatch {
			select {
			case op, ok := <-g.queue:
				if !ok {
					open = false
					break fill
				}
				batch = append(batch, op)
			default:
				break fill
			}
		}
		g.run(batch)
		clear(batch)
		if !open {
			return
		}
	}
}

// run executes one batch in one transaction and answers its callers.
func (g *groupCommitter) run(batch []*writeOp) {
	ops := batch[:0:0]
	for _, op := range batch {
		if op.state.CompareAndSwap(opQueued, opRunning) {
			ops = append(ops, op)
		}
	}
	if len(ops) == 0 {
		return
	}
	defer func() {
		for _, op := range ops {
			close(op.done)
		}
	}()
	// The batch's statements must not be interrupted by one caller's
	// cancellation: SQLite rolls back the whole transaction on an
	// interrupted write, taking the other callers' writes with it.
	ctx := context.Background()
	g.seq = seqCache{}
	tx, err := g.begin(ctx)
	if err != nil {
		for _, op := range ops {
			op.txErr = fmt.Errorf("begin: %w", err)
		}
		return
	}
	// A lone write needs no savepoint: its error rolls back the transaction.
	// Nor does a batch of writes that may run again: it runs them plainly
	// (two statements less per write) and, only if one fails, rolls the
	// whole batch back and runs it again with a savepoint per write, so the
	// failure undoes only its own write. Failures are rare (a duplicate
	// reference, a taken key, a stale version).
	if len(ops) > 1 && rerunnable(ops) {
		failed := false
		for _, op := range ops {
			op.pnc, op.err = call(ctx, op.fn, tx)
			if op.err != nil || op.pnc != nil {
				failed = true
				break
			}
		}
		if !failed {
			if err := tx.Commit(); err != nil {
				for _, op := range ops {
					op.txErr = fmt.Errorf("commit: %w", err)
				}
			}
			return
		}
		_ = tx.Rollback()
		for _, op := range ops {
			op.pnc, op.err = nil, nil
		}
		g.seq = seqCache{}
		if tx, err = g.begin(ctx); err != nil {
			for _, op := range ops {
				op.txErr = fmt.Errorf("begin: %w", err)
			}
			return
		}
	} else if len(ops) == 1 {
		op := ops[0]
		op.pnc, op.err = call(ctx, op.fn, tx)
		if op.err != nil || op.pnc != nil {
			_ = tx.Rollback()
			return
		}
		if err := tx.Commit(); err != nil {
			op.txErr = fmt.Errorf("commit: %w", err)
		}
		return
	}
	// Each savepoint is released after its write: leaving them nested
	// (one statement less per write) was measured slower, as SQLite's pager
	// checks every open savepoint on each page write.
	for _, op := range ops {
		if err := g.exec(ctx, tx, qSavepoint); err != nil {
			g.abort(tx, ops, fmt.Errorf("savepoint: %w", err))
			return
		}
		seq := g.seq
		op.pnc, op.err = call(ctx, op.fn, tx)
		if op.err != nil || op.pnc != nil {
			g.seq = seq
			if err := g.exec(ctx, tx, qRollbackTo); err != nil {
				g.abort(tx, ops, fmt.Errorf("rollback to savepoint: %w", err))
				return
			}
		}
		if err := g.exec(ctx, tx, qRelease); err != nil {
			g.abort(tx, ops, fmt.Errorf("release savepoint: %w", err))
			return
		}
	}
	if err := tx.Commit(); err != nil {
		for _, op := range ops {
			op.txErr = fmt.Errorf("commit: %w", err)
		}
	}
}

func rerunnable(ops []*writeOp) bool {
	for _, op := range ops {
		if !op.rerun {
			return false
		}
	}
	return true
}

// abort rolls the batch back after a failure that left its transaction
// unusable: every write of the batch, run or not, reports err.
func (g *groupCommitter) abort(tx *sql.Tx, ops []*writeOp, err error) {
	_ = tx.Rollback()
	for _, op := range ops {
		op.txErr = err
	}
}

func call(ctx context.Context, fn writeFunc, tx *sql.Tx) (pnc any, err error) {
	defer func() {
		if r := recover(); r != nil {
			pnc = r
		}
	}()
	return nil, fn(ctx, tx)
}
