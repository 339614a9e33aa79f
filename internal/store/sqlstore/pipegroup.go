package sqlstore

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Pipelined group commit (Dialect.PipelineGroup; PostgreSQL).
//
// Beyond its statements, every transaction costs the server a fixed amount
// of work (begin, xid, snapshot, commit record, locks), and on a machine
// where the server shares the CPU with the router that was about half of a
// small write's cost. A few committer goroutines therefore take the
// pipelined writes queued while they were busy and send them as one
// transaction: BEGIN and every write's statements in one round trip, then
// COMMIT. A write that fails or finds its version moved rolls the whole
// group back, and then every write of the group runs again on its own
// (pipeline.go), where its error or staleness is its alone: failures are
// rare (a taken key, a used reference, a concurrent update), so isolation
// costs nothing in the common case. Writes are rerunnable by construction:
// a rolled-back group wrote nothing. The group's events are numbered one
// after another in its transaction's seq block (at most seqsPerXact events
// per transaction, see Pipeline.InsertEvent), and its updates take their
// row locks in payment id order, so two groups updating the same payments
// cannot deadlock on them.

type pipeOp struct {
	w     *pipeWrite
	state atomic.Int32 // opQueued, opRunning, opCanceled
	done  bool         // committed in a group
	err   error        // the group's outcome is unknown (commit failed)
	ready chan struct{}
}

type pipeGroup struct {
	pl       Pipeline
	maxBatch int
	maxEvts  int

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool
	queue  chan *pipeOp
	wg     sync.WaitGroup
}

// pipeGroupTimeout bounds one group's round trips: its writes' callers
// cannot cancel it once it runs (their writes share its transaction).
const pipeGroupTimeout = 30 * time.Second

func newPipeGroup(pl Pipeline, workers, maxBatch, maxEvents int) *pipeGroup {
	g := &pipeGroup{pl: pl, maxBatch: maxBatch, maxEvts: maxEvents, queue: make(chan *pipeOp, workers*maxBatch)}
	for range workers {
		g.wg.Add(1)
		go g.loop()
	}
	return g
}

// do queues w for a group. done: w was committed (with the others queued
// meanwhile). !done with a nil error: nothing of w was written (its group
// was rolled back, or it did not fit); the caller runs it on its own. An error means the group's
// commit failed and w may or may not be committed. A nil g does nothing.
func (g *pipeGroup) do(ctx context.Context, w *pipeWrite) (done bool, err error) {
	if g == nil {
		return false, nil
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	op := &pipeOp{w: w, ready: make(chan struct{})}
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return false, ErrClosed
	}
	select {
	case g.queue <- op:
	case <-ctx.Done():
		g.mu.RUnlock()
		return false, ctx.Err()
	}
	g.mu.RUnlock()
	select {
	case <-op.ready:
	case <-ctx.Done():
		if op.state.CompareAndSwap(opQueued, opCanceled) {
			return false, ctx.Err()
		}
		<-op.ready
	}
	return op.done, op.err
}

func (g *pipeGroup) close() {
	if g == nil {
		return
	}
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.queue)
	}
	g.mu.Unlock()
	g.wg.Wait()
}

func (g *pipeGroup) loop() {
	defer g.wg.Done()
	var batch []*pipeOp
	for {
		op, ok := <-g.queue
		if !ok {
			return
		}
		batch = append(batch[:0], op)
		events := op.w.events
	fill:
		for len(batch) < g.maxBatch {
			select {
			case op, ok := <-g.queue:
				if !ok {
					break fill
				}
				if events+op.w.events > g.maxEvts {
					// Not in this group: alone, it is within the limit or
					// fails on its own.
					g.release(op)
					continue
				}
				batch = append(batch, op)
				events += op.w.events
			default:
				break fill
			}
		}
		g.run(batch)
		clear(batch)
	}
}

// release hands op back to its caller to run on its own.
func (g *pipeGroup) release(op *pipeOp) {
	op.state.CompareAndSwap(opQueued, opRunning)
	close(op.ready)
}

func (g *pipeGroup) run(batch []*pipeOp) {
	ops := batch[:0:0]
	for _, op := range batch {
		if op.state.CompareAndSwap(opQueued, opRunning) {
			ops = append(ops, op)
		}
	}
	defer func() {
		for _, op := range ops {
			close(op.ready)
		}
	}()
	// A write alone runs here too: committers busy with their groups is
	// what lets the next group gather (as in group.go).
	if len(ops) == 0 {
		return
	}
	// Creates first, then updates in payment id order: every group locks
	// the rows it updates in the same order.
	slices.SortStableFunc(ops, func(a, b *pipeOp) int {
		if a.w.guarded != b.w.guarded {
			if a.w.guarded {
				return 1
			}
			return -1
		}
		if !a.w.guarded {
			return 0
		}
		return cmp.Compare(a.w.key, b.w.key)
	})
	var (
		stmts  []Stmt
		guards []int // statement indexes that must affect one row
		offset int
	)
	for _, op := range ops {
		if op.w.guarded {
			guards = append(guards, len(stmts))
		}
		var err error
		if stmts, err = op.w.build(stmts, offset); err != nil {
			return // too many events: each runs (and fails) on its own
		}
		offset += op.w.events
	}
	ctx, cancel := context.WithTimeout(context.Background(), pipeGroupTimeout)
	defer cancel()
	var (
		committed bool
		err       error
	)
	if len(guards) == 0 {
		// Creates only: nothing to check before the commit, so one round
		// trip (an implicit transaction).
		_, err = g.pl.Exec(ctx, stmts)
		committed = err == nil
	} else {
		_, committed, err = g.pl.ExecCommitIf(ctx, stmts, func(rows []int64) bool {
			for _, i := range guards {
				if rows[i] != 1 {
					return false
				}
			}
			return true
		})
	}
	var se *StmtError
	switch {
	case committed:
		for _, op := range ops {
			op.done = true
		}
	case err == nil || (errors.As(err, &se) && se.Index >= 0):
		// Rolled back (a stale update, a failed statement, answered
		// before the commit): each write runs again on its own.
	default:
		for _, op := range ops {
			op.err = err
		}
	}
}
