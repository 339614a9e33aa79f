package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestLocalBudgetPerMerchant(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	l := New(map[string]Limit{"demo": {Rate: 2, Burst: 3}, "free": {Rate: 0}}, Options{Now: clk.Now})
	ctx := context.Background()
	for i := range 3 {
		if d := l.Allow(ctx, "demo"); !d.Allowed || d.Shared {
			t.Fatalf("request %d within the burst: %+v", i, d)
		}
	}
	d := l.Allow(ctx, "demo")
	if d.Allowed {
		t.Fatal("4th request in the same instant allowed; burst is 3")
	}
	if d.RetryAfter <= 0 || d.RetryAfter > 500*time.Millisecond {
		t.Errorf("RetryAfter = %s, want (0, 500ms] at 2 rps", d.RetryAfter)
	}
	// Another merchant's budget is its own; an unlimited one is never refused.
	for range 100 {
		if !l.Allow(ctx, "free").Allowed || !l.Allow(ctx, "unknown").Allowed {
			t.Fatal("unlimited merchant refused")
		}
	}
	clk.Advance(d.RetryAfter)
	if !l.Allow(ctx, "demo").Allowed {
		t.Error("refused after waiting RetryAfter")
	}
	if l.Allow(ctx, "demo").Allowed {
		t.Error("a second request after one refill allowed")
	}
}

func testRedis(t *testing.T) *redis.Client {
	t.Helper()
	url := os.Getenv("PAYROUTER_TEST_REDIS")
	if url == "" {
		t.Skip("PAYROUTER_TEST_REDIS is not set (e.g. redis://127.0.0.1:6379/0): skipping the shared rate limit tests")
	}
	rdb, err := Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func TestRedisSharesTheBudgetBetweenInstances(t *testing.T) {
	rdb := testRedis(t)
	prefix := fmt.Sprintf("payrouter-test:%s:%d:", t.Name(), time.Now().UnixNano())
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), "*"+prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})
	// Per minute, so the budget does not refill during the test.
	limits := map[string]Limit{"demo": {Rate: 6, Burst: 6, Period: time.Minute}}
	var errs atomic.Int32
	opts := Options{Redis: rdb, Prefix: prefix, Timeout: 2 * time.Second, OnError: func(error) { errs.Add(1) }}
	a, b := New(limits, opts), New(limits, opts)
	ctx := context.Background()
	if err := a.Warm(ctx); err != nil {
		t.Fatalf("Warm: %v", err)
	}
	allowed := 0
	for i := range 12 {
		l := a
		if i%2 == 1 {
			l = b
		}
		d := l.Allow(ctx, "demo")
		if !d.Shared {
			t.Fatalf("request %d decided locally; Redis errors: %d", i, errs.Load())
		}
		if d.Allowed {
			allowed++
		} else if d.RetryAfter <= 0 {
			t.Errorf("refused without RetryAfter: %+v", d)
		}
	}
	// Each instance alone would allow 6: together they must allow 6, not 12.
	if allowed != 6 {
		t.Fatalf("two instances allowed %d of 12 requests, want 6 (one shared budget)", allowed)
	}
}

func TestRedisDownFallsBackToLocal(t *testing.T) {
	// A port nobody listens on: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	rdb, _ := Open("redis://" + addr + "/0")
	defer rdb.Close()
	var errs atomic.Int32
	var last atomic.Value
	l := New(map[string]Limit{"demo": {Rate: 1, Burst: 2, Period: time.Minute}},
		Options{Redis: rdb, OnError: func(err error) { errs.Add(1); last.Store(err) }})
	ctx := context.Background()
	if err := l.Warm(ctx); err == nil {
		t.Error("Warm against a closed port: nil error")
	}
	got := []bool{l.Allow(ctx, "demo").Allowed, l.Allow(ctx, "demo").Allowed, l.Allow(ctx, "demo").Allowed}
	if !got[0] || !got[1] || got[2] {
		t.Fatalf("local fallback decisions = %v, want allow, allow, refuse (burst 2)", got)
	}
	// Redis is asked once (Warm aside), then skipped for RetryRedis.
	if errs.Load() != 1 {
		t.Errorf("Redis asked %d times while down, want 1 then skipped", errs.Load())
	}
	if err, _ := last.Load().(error); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("OnError got %v", err)
	}
}

// A Redis that accepts connections and never answers must not hold a
// request longer than the limiter's timeout.
func TestRedisHangingDoesNotStall(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns sync.WaitGroup
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() { defer conns.Done(); <-stop; _ = c.Close() }()
		}
	}()
	rdb := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), ContextTimeoutEnabled: true, MaxRetries: -1,
		ReadTimeout: time.Minute, WriteTimeout: time.Minute})
	defer rdb.Close()
	var errs atomic.Int32
	l := New(map[string]Limit{"demo": {Rate: 10, Burst: 10}}, Options{Redis: rdb, Timeout: 50 * time.Millisecond,
		OnError: func(error) { errs.Add(1) }})
	done := make(chan Decision, 1)
	go func() { done <- l.Allow(context.Background(), "demo") }()
	select {
	case d := <-done:
		if !d.Allowed || d.Shared {
			t.Errorf("decision = %+v, want allowed by the local bucket", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Allow still waiting on a Redis that never answers")
	}
	if errs.Load() != 1 {
		t.Errorf("OnError called %d times, want 1", errs.Load())
	}
}
