package breakerstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
)

// testStore returns a Store on PAYROUTER_TEST_REDIS with a key prefix no
// other test uses, and deletes its keys afterwards.
func testStore(t *testing.T) (*Store, string) {
	t.Helper()
	url := os.Getenv("PAYROUTER_TEST_REDIS")
	if url == "" {
		t.Skip("PAYROUTER_TEST_REDIS is not set (e.g. redis://127.0.0.1:6379/0): skipping the Redis breaker store tests")
	}
	prefix := fmt.Sprintf("payrouter-test:%s:%d:", t.Name(), time.Now().UnixNano())
	s := open(t, url, prefix)
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := s.rdb.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			s.rdb.Del(ctx, keys...)
		}
	})
	return s, url
}

func open(t *testing.T, url, prefix string) *Store {
	t.Helper()
	s, err := Open(url, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("redis at %s: %v", url, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestLockIsExclusiveAndTokenChecked(t *testing.T) {
	a, url := testStore(t)
	b := open(t, url, a.prefix)
	b.lockWait = 100 * time.Millisecond

	if err := a.Lock("m"); err != nil {
		t.Fatal(err)
	}
	if err := b.Lock("m"); !errors.Is(err, ErrLocked) {
		t.Fatalf("second holder: got %v, want ErrLocked", err)
	}
	// b never held it: its Unlock must not release a's lock.
	if err := b.Unlock("m"); err != nil {
		t.Fatal(err)
	}
	if err := b.Lock("m"); !errors.Is(err, ErrLocked) {
		t.Fatalf("after a foreign unlock: got %v, want still locked", err)
	}
	// Re-entrant for its holder.
	if err := a.Lock("m"); err != nil {
		t.Fatalf("re-entry: %v", err)
	}
	if err := a.Unlock("m"); err != nil {
		t.Fatal(err)
	}
	if err := b.Lock("m"); !errors.Is(err, ErrLocked) {
		t.Fatalf("after the inner unlock: got %v, want still locked", err)
	}
	if err := a.Unlock("m"); err != nil {
		t.Fatal(err)
	}
	if err := b.Lock("m"); err != nil {
		t.Fatalf("after the holder's unlock: %v", err)
	}
	_ = b.Unlock("m")
}

func TestLockExpiresWhenHolderDies(t *testing.T) {
	a, url := testStore(t)
	a.lockTTL = 150 * time.Millisecond
	b := open(t, url, a.prefix)
	if err := a.Lock("m"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := b.Lock("m"); err != nil { // waits for the TTL, within lockWait
		t.Fatalf("after the holder's TTL: %v", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("got the lock after %s, before the TTL", d)
	}
	// a's late unlock must not release b's lock (token check).
	if err := a.Unlock("m"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := a.rdb.Exists(context.Background(), a.prefix+"m").Result(); ok != 1 {
		t.Errorf("a stale holder's unlock deleted the new holder's lock")
	}
}

func TestGetSetData(t *testing.T) {
	s, _ := testStore(t)
	if b, err := s.GetData("x"); err != nil || b != nil {
		t.Fatalf("missing key: got %q, %v; want nil, nil", b, err)
	}
	if err := s.SetData("x", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if b, err := s.GetData("x"); err != nil || string(b) != "v" {
		t.Fatalf("got %q, %v; want v", b, err)
	}
}

var errDown = errors.New("provider down")

func settings() gobreaker.Settings {
	return gobreaker.Settings{
		MaxRequests: 1, Timeout: 300 * time.Millisecond,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.TotalFailures >= 3 },
	}
}

// Two stores stand for two router instances: failures through one open
// the breaker for both; after the open period a probe through the other
// closes it for both.
func TestBreakerSharedBetweenInstances(t *testing.T) {
	s1, url := testStore(t)
	s2 := open(t, url, s1.prefix)
	b1 := s1.NewBreaker("stripe/card", settings(), nil)
	b2 := s2.NewBreaker("stripe/card", settings(), nil)

	for i := range 3 {
		if _, err := b1.Execute(func() (any, error) { return nil, errDown }); !errors.Is(err, errDown) {
			t.Fatalf("call %d: got %v, want the call's own error", i, err)
		}
	}
	if got := b2.State(); got != gobreaker.StateOpen {
		t.Fatalf("other instance sees %s, want open", got)
	}
	called := false
	if _, err := b2.Execute(func() (any, error) { called = true; return nil, nil }); !errors.Is(err, gobreaker.ErrOpenState) || called {
		t.Fatalf("other instance: err %v, called %v; want ErrOpenState without a call", err, called)
	}
	// gobreaker has no clock to inject: its open period (300ms) runs on
	// time.Now. Poll until it half-opens, bounded generously.
	deadline := time.Now().Add(10 * time.Second)
	for b1.State() == gobreaker.StateOpen && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := b1.State(); got != gobreaker.StateHalfOpen {
		t.Fatalf("after the open period: %s, want half-open", got)
	}
	if _, err := b2.Execute(func() (any, error) { return "ok", nil }); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if got := b1.State(); got != gobreaker.StateClosed {
		t.Fatalf("after a good probe elsewhere: %s, want closed", got)
	}
}

// Concurrent calls through two instances: no call waits on another's
// provider call (the lock is not held across it), and every outcome is
// counted once.
func TestBreakerDoesNotSerializeCalls(t *testing.T) {
	s1, url := testStore(t)
	s2 := open(t, url, s1.prefix)
	st := settings()
	st.ReadyToTrip = func(gobreaker.Counts) bool { return false }
	bs := []*Breaker{s1.NewBreaker("x/card", st, nil), s2.NewBreaker("x/card", st, nil)}
	// Every call blocks until all n are inside at once: if Execute held
	// its lock across the call, only one would ever get in.
	const n = 20
	var wg sync.WaitGroup
	var inside atomic.Int32
	release := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = bs[i%2].Execute(func() (any, error) { inside.Add(1); <-release; return nil, errDown })
		}()
	}
	deadline := time.Now().Add(10 * time.Second) // a hang guard, not a speed bound
	for inside.Load() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	got := inside.Load()
	close(release)
	wg.Wait()
	if got != n {
		t.Errorf("%d of %d calls were inside their provider call at once: calls are serialized", got, n)
	}
	data, err := s1.GetData(stateKey("x/card"))
	if err != nil {
		t.Fatal(err)
	}
	var shared gobreaker.SharedState
	if err := json.Unmarshal(data, &shared); err != nil {
		t.Fatal(err)
	}
	if shared.Counts.TotalFailures != n {
		t.Errorf("shared failures = %d, want %d (lost updates?)", shared.Counts.TotalFailures, n)
	}
}

// With Redis unreachable the breaker runs locally: calls go through and a
// local trip still protects this instance.
func TestBreakerFallsBackWhenRedisIsDown(t *testing.T) {
	s := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond}), "x:")
	var errs int
	b := s.NewBreaker("p/card", settings(), func(error) { errs++ })
	out, err := b.Execute(func() (any, error) { return "paid", nil })
	if err != nil || out != "paid" {
		t.Fatalf("got %v, %v; want the call to go through", out, err)
	}
	for range 3 {
		_, _ = b.Execute(func() (any, error) { return nil, errDown })
	}
	if got := b.State(); got != gobreaker.StateOpen {
		t.Errorf("local fallback state %s, want open", got)
	}
	if errs == 0 {
		t.Errorf("the Redis failure was not reported")
	}
}
