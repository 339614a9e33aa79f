package approval

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payrouter/payrouter"
)

// Shared syncs a Tracker's counts through Redis: one hash per bucket
// (`<prefix>approval:<bucket>`, fields `<provider>\x1f<method>\x1f<currency>\x1f{a|n}`,
// expiring after Span), incremented by every instance and read back whole.
type Shared struct {
	rdb    redis.UniversalClient
	prefix string
	every  time.Duration
	log    *slog.Logger

	mu      sync.Mutex
	pending map[pendingKey][2]int64 // approved, attempts not yet sent
}

type pendingKey struct {
	key
	bucket int64
}

// Share makes t share its counts through rdb under prefix, syncing every
// period (1 s when 0) once Run is started.
func (t *Tracker) Share(rdb redis.UniversalClient, prefix string, every time.Duration, log *slog.Logger) *Shared {
	if every <= 0 {
		every = time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t.sync = &Shared{rdb: rdb, prefix: prefix, every: every, log: log, pending: map[pendingKey][2]int64{}}
	return t.sync
}

func (s *Shared) add(k key, b, ok int64) {
	s.mu.Lock()
	v := s.pending[pendingKey{k, b}]
	s.pending[pendingKey{k, b}] = [2]int64{v[0] + ok, v[1] + 1}
	s.mu.Unlock()
}

// Run syncs until ctx ends. A failed sync keeps the unsent counts for the
// next one (they are this instance's own, and still count locally).
func (t *Tracker) Run(ctx context.Context) {
	s := t.sync
	if s == nil {
		return
	}
	tick := time.NewTicker(s.every)
	defer tick.Stop()
	failing := false
	for {
		err := t.Sync(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			s.log.Warn("approval counters: Redis unreachable, ranking on this instance's counts", "err", err)
			failing = true
		case err == nil && failing:
			s.log.Info("approval counters: Redis back, ranking on every instance's counts")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *Shared) bucketKey(b int64) string { return s.prefix + "approval:" + strconv.FormatInt(b, 10) }

func field(k key, suffix string) string {
	return k.provider + "\x1f" + string(k.method) + "\x1f" + string(k.currency) + "\x1f" + suffix
}

// Sync sends this instance's new counts and reads everyone's. Exported for
// tests and for a final flush at shutdown.
func (t *Tracker) Sync(ctx context.Context) error {
	s := t.sync
	s.mu.Lock()
	send := s.pending
	s.pending = map[pendingKey][2]int64{}
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, s.every)
	defer cancel()
	if len(send) > 0 {
		pipe := s.rdb.Pipeline()
		for pk, v := range send {
			bk := s.bucketKey(pk.bucket)
			pipe.HIncrBy(ctx, bk, field(pk.key, "a"), v[0])
			pipe.HIncrBy(ctx, bk, field(pk.key, "n"), v[1])
			pipe.Expire(ctx, bk, Span+2*Bucket)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			// Not sent (or not known to be): put back. A partial send can
			// count twice; approval rates tolerate that, money never sees it.
			s.mu.Lock()
			for pk, v := range send {
				w := s.pending[pk]
				s.pending[pk] = [2]int64{w[0] + v[0], w[1] + v[1]}
			}
			s.mu.Unlock()
			return err
		}
	}

	to := t.bucket()
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, nBuckets)
	for i := range cmds {
		cmds[i] = pipe.HGetAll(ctx, s.bucketKey(to-int64(i)))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	snap := map[key]*ring{}
	for i, cmd := range cmds {
		b := to - int64(i)
		for f, v := range cmd.Val() {
			parts := strings.Split(f, "\x1f")
			n, err := strconv.ParseInt(v, 10, 64)
			if len(parts) != 4 || err != nil {
				continue
			}
			k := key{parts[0], payrouter.Method(parts[1]), payrouter.Currency(parts[2])}
			r := snap[k]
			if r == nil {
				r = &ring{}
				snap[k] = r
			}
			switch parts[3] {
			case "a":
				r.add(b, n, 0)
			case "n":
				r.add(b, 0, n)
			}
		}
	}
	t.shared.Store(&snap)
	t.sharedAt.Store(t.now().UnixNano())
	return nil
}
