package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
)

// Checkpoints.
//
// In WAL mode a commit appends the pages it changed to the WAL, and a
// checkpoint copies them back into the database file (and syncs it). By
// default SQLite runs that checkpoint inside the commit that crosses 1,000
// WAL pages: on the single writer's goroutine, so every write queued
// behind that commit waits for the copy. Here a goroutine of its own runs
// a PASSIVE checkpoint (it never blocks the writer or the readers) every
// checkpointEvery on a connection of its own, so the copying overlaps the
// writes, on the other core. Durability does not change: a commit is
// durable once it is in the (synced) WAL; a checkpoint only moves it.
const (
	checkpointEvery = 100 * time.Millisecond
	// walBacklog (pages) is the writer's own auto-checkpoint threshold,
	// left as a safety net should the checkpointer fall behind.
	walBacklog = 20_000
)

type checkpointer struct {
	db   *sql.DB
	stop chan struct{}
	wg   sync.WaitGroup
}

func startCheckpointer(path string, pragmas []string) (*checkpointer, error) {
	db, err := openDB(path, pragmas, false, false)
	if err != nil {
		return nil, fmt.Errorf("checkpointer: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	c := &checkpointer{db: db, stop: make(chan struct{})}
	c.wg.Add(1)
	go c.run()
	return c, nil
}

func (c *checkpointer) run() {
	defer c.wg.Done()
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			// A failure (a lock held by another process, say) is retried at
			// the next tick; the writer's own threshold is the backstop.
			_, _ = c.db.ExecContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`)
		}
	}
}

func (c *checkpointer) close() error {
	if c == nil {
		return nil
	}
	close(c.stop)
	c.wg.Wait()
	return c.db.Close()
}
