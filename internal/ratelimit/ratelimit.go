// Package ratelimit holds each merchant's API budget. With Redis the budget
// is shared by every instance (GCRA in one Lua script, go-redis/redis_rate);
// without it, or while Redis does not answer, each instance keeps its own
// token bucket (golang.org/x/time/rate). A Redis outage never fails or
// stalls a request: a call that errs or exceeds its short timeout falls
// back to the local bucket, and Redis is left alone for a while before it
// is asked again.
package ratelimit

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// Limit is a budget: Rate requests per Period sustained, bursts up to
// Burst. Rate 0 means unlimited.
type Limit struct {
	Rate   int
	Burst  int
	Period time.Duration // default one second
}

func (l Limit) period() time.Duration {
	if l.Period <= 0 {
		return time.Second
	}
	return l.Period
}

// Options tune a Limiter.
type Options struct {
	// Redis shares the budgets; nil keeps them local.
	Redis redis.UniversalClient
	// Prefix prefixes the Redis keys ("payrouter:" by default): instances
	// with the same prefix share budgets.
	Prefix string
	// Timeout bounds one Redis call (default 100ms); RetryRedis is how
	// long Redis is skipped after it failed (default 5s).
	Timeout, RetryRedis time.Duration
	// OnError hears every Redis failure (logging); may be nil.
	OnError func(error)
	// Now is the clock of the local buckets (tests); default time.Now.
	Now func() time.Time
}

// Limiter decides per merchant. Build it once with every merchant's limit;
// it is safe for concurrent use.
type Limiter struct {
	opts   Options
	limits map[string]Limit
	local  map[string]*rate.Limiter
	shared *redis_rate.Limiter
	// skipUntil (unix nanos): Redis failed; use the local buckets until then.
	skipUntil atomic.Int64
}

// New returns a Limiter for the merchants in limits; a merchant not in
// limits is not limited.
func New(limits map[string]Limit, opts Options) *Limiter {
	if opts.Prefix == "" {
		opts.Prefix = "payrouter:"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 100 * time.Millisecond
	}
	if opts.RetryRedis <= 0 {
		opts.RetryRedis = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	l := &Limiter{opts: opts, limits: map[string]Limit{}, local: map[string]*rate.Limiter{}}
	for id, lim := range limits {
		if lim.Rate <= 0 {
			continue
		}
		burst := max(lim.Burst, 1)
		lim.Burst = burst
		l.limits[id] = lim
		every := lim.period() / time.Duration(lim.Rate)
		l.local[id] = rate.NewLimiter(rate.Every(every), burst)
	}
	if opts.Redis != nil {
		l.shared = redis_rate.NewLimiter(opts.Redis)
	}
	return l
}

// Decision is one request's verdict.
type Decision struct {
	Allowed bool
	// RetryAfter: when denied, how long until one request fits again.
	RetryAfter time.Duration
	// Shared: decided by the budget in Redis (false: this instance's own).
	Shared bool
}

// Allow spends one request of merchant's budget, if there is one left.
func (l *Limiter) Allow(ctx context.Context, merchant string) Decision {
	lim, ok := l.limits[merchant]
	if !ok {
		return Decision{Allowed: true}
	}
	now := l.opts.Now()
	if l.shared != nil && now.UnixNano() >= l.skipUntil.Load() {
		if d, err := l.allowShared(ctx, merchant, lim); err == nil {
			return d
		} else {
			l.skipUntil.Store(now.Add(l.opts.RetryRedis).UnixNano())
			if l.opts.OnError != nil {
				l.opts.OnError(err)
			}
		}
	}
	r := l.local[merchant].ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return Decision{RetryAfter: d}
	}
	return Decision{Allowed: true}
}

func (l *Limiter) allowShared(ctx context.Context, merchant string, lim Limit) (Decision, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.Timeout)
	defer cancel()
	res, err := l.shared.Allow(ctx, l.opts.Prefix+"merchant:"+merchant,
		redis_rate.Limit{Rate: lim.Rate, Burst: lim.Burst, Period: lim.period()})
	if err != nil {
		return Decision{}, fmt.Errorf("ratelimit: redis: %w", err)
	}
	if res.Allowed > 0 {
		return Decision{Allowed: true, Shared: true}, nil
	}
	return Decision{RetryAfter: res.RetryAfter, Shared: true}, nil
}

// Warm connects to Redis and loads the limiter's script, so the first
// requests do not pay for it (and fall back to local budgets because of
// it). Without Redis it does nothing; an error leaves the limiter working
// (locally until Redis answers).
func (l *Limiter) Warm(ctx context.Context) error {
	if l.shared == nil {
		return nil
	}
	// n = 0 reads a budget without spending it, loading the script.
	_, err := l.shared.AllowN(ctx, l.opts.Prefix+"warmup", redis_rate.PerSecond(1), 0)
	if err != nil {
		return fmt.Errorf("ratelimit: redis: %w", err)
	}
	return nil
}

// Open returns a go-redis client for the limiter on url, with timeouts short
// enough that a Redis outage costs a request at most a few milliseconds.
// It does not connect; the only error is a malformed url.
func Open(url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis.url: %w", err)
	}
	opt.DialTimeout = 200 * time.Millisecond
	opt.ReadTimeout = 100 * time.Millisecond
	opt.WriteTimeout = 100 * time.Millisecond
	opt.ContextTimeoutEnabled = true
	opt.MaxRetries = -1 // a retry would only spend the request's time
	return redis.NewClient(opt), nil
}
