package app

import (
	"context"
	"time"

	"github.com/payrouter/payrouter/internal/config"
)

// PurgeIdempotency deletes the Idempotency-Key records older than
// idempotency.retention every idempotency.purge_every (and once at start)
// until ctx is done. Every instance may run it: the purge is one DELETE.
func (a *App) PurgeIdempotency(ctx context.Context) {
	retention := a.Config.Idempotency.Retention.D(config.MinIdempotencyRetention)
	every := a.Config.Idempotency.PurgeEvery.D(time.Hour)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := a.Store.PurgeIdempotencyKeys(ctx, time.Now().Add(-retention)); err != nil {
			if ctx.Err() != nil {
				return
			}
			a.Log.Error("idempotency purge failed", "err", err)
		} else if n > 0 {
			a.Log.Info("idempotency keys purged", "count", n, "retention", retention.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
