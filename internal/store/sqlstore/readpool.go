package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// maxCachedReads bounds the read statement cache. The store's queries are
// constant strings or a few variants (ListPayments' filters), so the bound
// is only a guard.
const maxCachedReads = 256

// readPool is the read connection pool; with cache, every query it runs is
// prepared once (per connection, by database/sql) and reused.
type readPool struct {
	*sql.DB
	cache bool

	mu    sync.RWMutex
	stmts map[string]*sql.Stmt
}

// stmt returns the prepared statement for query, or nil to run it
// unprepared (no cache, cache full, or preparing failed: the plain call
// then reports the error).
func (p *readPool) stmt(ctx context.Context, query string) *sql.Stmt {
	if !p.cache {
		return nil
	}
	p.mu.RLock()
	st, ok := p.stmts[query]
	p.mu.RUnlock()
	if ok {
		return st
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if st, ok := p.stmts[query]; ok {
		return st
	}
	if len(p.stmts) >= maxCachedReads {
		return nil
	}
	st, err := p.DB.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	if p.stmts == nil {
		p.stmts = map[string]*sql.Stmt{}
	}
	p.stmts[query] = st
	return st
}

// QueryContext is sql.DB's, through the statement cache.
func (p *readPool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return p.DB.QueryContext(ctx, query, args...)
}

// QueryRowContext is sql.DB's, through the statement cache.
func (p *readPool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return p.DB.QueryRowContext(ctx, query, args...)
}

func (p *readPool) closeStmts() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, st := range p.stmts {
		errs = append(errs, st.Close())
	}
	p.stmts = nil
	return errors.Join(errs...)
}

func (p *readPool) close() error {
	return errors.Join(p.closeStmts(), p.DB.Close())
}
