package ops

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
)

// Forced caches the forced-open breakers of the shared backend (Redis when
// configured, else the store) so that routing asks memory, not the
// network, per candidate. Refresh polls it; a change made through this
// instance applies at once, one made elsewhere within the poll interval.
type Forced struct {
	src store.BreakerOverrides
	cur atomic.Pointer[map[string]store.BreakerOverride]
}

// NewForced returns a cache over src.
func NewForced(src store.BreakerOverrides) *Forced {
	f := &Forced{src: src}
	m := map[string]store.BreakerOverride{}
	f.cur.Store(&m)
	return f
}

// Refresh reloads the overrides; on error the last known ones stay.
func (f *Forced) Refresh(ctx context.Context) error {
	os, err := f.src.ListBreakerOverrides(ctx)
	if err != nil {
		return err
	}
	m := make(map[string]store.BreakerOverride, len(os))
	for _, o := range os {
		m[o.Provider+"/"+o.Method] = o
	}
	f.cur.Store(&m)
	return nil
}

// Run refreshes every interval until ctx is done.
func (f *Forced) Run(ctx context.Context, every time.Duration, onErr func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := f.Refresh(ctx); err != nil && ctx.Err() == nil && onErr != nil {
				onErr(err)
			}
		}
	}
}

// Lookup returns the override forcing provider × m open (a "*" override
// covers every method).
func (f *Forced) Lookup(provider string, m payrouter.Method) (store.BreakerOverride, bool) {
	cur := *f.cur.Load()
	if o, ok := cur[provider+"/"+string(m)]; ok {
		return o, true
	}
	o, ok := cur[provider+"/*"]
	return o, ok
}

// Allow is router.Guarded's Forced hook for provider.
func (f *Forced) Allow(provider string) func(payrouter.Method) (bool, string) {
	return func(m payrouter.Method) (bool, string) {
		if o, ok := f.Lookup(provider, m); ok {
			return false, "forced open (" + o.Reason + ")"
		}
		return true, ""
	}
}
