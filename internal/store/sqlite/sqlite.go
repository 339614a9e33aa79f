// Package sqlite is the embedded store: a single SQLite file, in WAL
// mode, through modernc.org/sqlite (pure Go, no cgo: the default build) or,
// built with -tags sqlite_cgo, mattn/go-sqlite3 (C SQLite through cgo). All writes go through
// one connection that begins its transactions with BEGIN IMMEDIATE, so they
// are serialized — which makes UpdatePayment's read-modify-write safe and
// event sequence numbers follow commit order — while reads use a separate
// pool of read-only connections that WAL lets run beside the writer.
//
// Concurrent writes are group-committed (see Options.GroupCommit): one
// goroutine runs the queued writes, each in its own savepoint, in one
// transaction and commits them with one sync, so throughput is no longer
// one payment write per fsync while every write still returns only once
// it is durable.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/payrouter/payrouter/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tune the SQLite store. The zero value is durable and sensible.
type Options struct {
	// Synchronous is SQLite's PRAGMA synchronous: "full" (the default) syncs
	// the WAL on every commit, so a committed payment survives power loss;
	// "normal" syncs only at checkpoints (a commit survives a crash of the
	// process but may be lost on power loss); "off" never syncs (benchmarks
	// and throwaway data only).
	Synchronous string
	// BusyTimeout is how long a connection waits for a lock held by another
	// process before failing with SQLITE_BUSY (default 5s).
	BusyTimeout time.Duration
	// MaxReaders caps the read connection pool (default max(4, GOMAXPROCS)).
	MaxReaders int
	// GroupCommit caps how many concurrent writes share one transaction and
	// one commit (default 256). Each write still returns only after its
	// commit, so durability is that of Synchronous; a negative value gives
	// every write a transaction of its own (for comparison).
	GroupCommit int
}

// Store is the SQLite store.Store. Its methods are those of sqlstore.Store.
type Store struct {
	*sqlstore.Store
	ckpt *checkpointer
}

// Close stops the checkpointer, then closes the store.
func (s *Store) Close() error {
	err := s.ckpt.close()
	return errors.Join(err, s.Store.Close())
}

// Open opens (creating it and its parent directory when missing) the SQLite
// database file at path dsn and applies the embedded migrations. dsn is a
// plain file path; ":memory:" and query parameters are refused, because the
// store needs several connections to one file.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if dsn == "" || dsn == ":memory:" || strings.ContainsAny(dsn, "?#") || strings.HasPrefix(dsn, "file:") {
		return nil, fmt.Errorf("sqlite: dsn %q: want a plain file path", dsn)
	}
	sync, err := synchronous(opts.Synchronous)
	if err != nil {
		return nil, err
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = 5 * time.Second
	}
	readers := opts.MaxReaders
	if readers <= 0 {
		readers = max(4, runtime.GOMAXPROCS(0))
	}
	if dir := filepath.Dir(dsn); dir != "" {
		// 0700: the database holds merchants' provider card tokens.
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("sqlite: create directory for %s: %w", dsn, err)
		}
	}

	pragmas := []string{
		fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()),
		"foreign_keys(1)",
		"synchronous(" + sync + ")",
	}
	writerPragmas := append(slices.Clone(pragmas),
		"journal_mode(WAL)",
		// The group committer's savepoints keep a sub-journal of the pages
		// each write changes; on a temporary file that is a write syscall
		// per page (measured at about half of the writer's CPU at c=512).
		// In memory it costs a copy. It is scratch space for rolling back a
		// savepoint, not part of durability: the WAL is.
		"temp_store(MEMORY)",
		// Checkpoints run on a goroutine of their own (see checkpointer),
		// off the writer's serial path; the writer checkpoints itself only
		// if that one falls this far behind.
		fmt.Sprintf("wal_autocheckpoint(%d)", walBacklog))
	// BEGIN IMMEDIATE (immediate) takes the write lock when the transaction
	// starts, not at its first write, so a read-modify-write cannot be
	// overtaken by another process and fail with SQLITE_BUSY mid-transaction.
	w, err := openDB(dsn, writerPragmas, true, false)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", dsn, err)
	}
	// One writer connection: writes queue in database/sql instead of
	// spinning on SQLITE_BUSY.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	begin := func(ctx context.Context) (*sql.Tx, error) { return w.BeginTx(ctx, nil) }
	if err := sqlstore.Migrate(ctx, migrations, "migrations", nil, begin); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", dsn, err)
	}

	r, err := openDB(dsn, pragmas, false, true)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", dsn, err)
	}
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)

	st := sqlstore.New(w, r, sqlstore.Dialect{
		BeginWrite:           begin,
		NextSeqs:             nextSeqs,
		Prepare:              []string{qLastSeq},
		IsDuplicateReference: isDuplicateReference,
		Time:                 func(t time.Time) any { return t.UnixMicro() },
		// The rows reach json_group_array in the order of the subquery,
		// which the primary key (payment_id, idx) gives without a sort (an
		// ORDER BY inside the aggregate would build a temporary table); the
		// decoder places rows by their idx whatever the order.
		ChildRows: func(exprs, table, where, orderBy string) string {
			return `(SELECT json_group_array(json_array(` + exprs + `)) FROM (SELECT * FROM ` + table +
				` WHERE ` + where + ` ORDER BY ` + orderBy + `))`
		},
		Micros:      func(col string) string { return col }, // stored as microseconds
		GroupCommit: groupCommit(opts.GroupCommit),
	})
	if err := st.Ping(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", dsn, err)
	}
	if err := st.Prepare(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", dsn, err)
	}
	ckpt, err := startCheckpointer(dsn, pragmas)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", dsn, err)
	}
	return &Store{Store: st, ckpt: ckpt}, nil
}

func groupCommit(n int) int {
	switch {
	case n < 0:
		return 0
	case n == 0:
		return 256
	}
	return n
}

func synchronous(s string) (string, error) {
	switch strings.ToLower(s) {
	case "", "full":
		return "FULL", nil
	case "normal":
		return "NORMAL", nil
	case "off":
		return "OFF", nil
	}
	return "", fmt.Errorf("sqlite: synchronous %q: want full, normal or off", s)
}

const qLastSeq = `SELECT COALESCE(MAX(seq), 0) FROM events`

// nextSeqs hands out MAX(seq)+1…: every write transaction holds SQLite's
// single write lock from BEGIN IMMEDIATE to COMMIT, so numbers are assigned
// in commit order and never skipped. (Events are never deleted, so the
// maximum never goes back.)
func nextSeqs(ctx context.Context, tx *sqlstore.Tx, n int) ([]int64, error) {
	var last int64
	if err := tx.QueryRowContext(ctx, qLastSeq).Scan(&last); err != nil {
		return nil, err
	}
	seqs := make([]int64, n)
	for i := range seqs {
		seqs[i] = last + int64(i) + 1
	}
	return seqs, nil
}
