package approval

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payrouter/payrouter"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const card, idr = payrouter.MethodCard, payrouter.Currency("IDR")

func record(t *Tracker, p string, ok, n int) {
	for i := 0; i < n; i++ {
		t.Record(p, card, idr, i < ok)
	}
}

func TestWindowSlides(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	tr := New(c.now)
	record(tr, "stripe", 3, 4)
	c.add(5 * time.Minute)
	record(tr, "stripe", 1, 2)
	tr.Record("stripe", card, "USD", true) // another currency: its own count
	tr.Record("xendit", card, idr, false)  // another provider

	check := func(window time.Duration, wantOK, wantN int64) {
		t.Helper()
		ok, n := tr.Approval("stripe", card, idr, window)
		if ok != wantOK || n != wantN {
			t.Errorf("window %s: %d of %d, want %d of %d", window, ok, n, wantOK, wantN)
		}
	}
	check(15*time.Minute, 4, 6)
	check(time.Minute, 1, 2) // only the recent bucket
	c.add(11 * time.Minute)  // the first four are 16 min old
	check(15*time.Minute, 1, 2)
	c.add(Span) // everything aged out, and the ring slots are reused
	check(15*time.Minute, 0, 0)
	record(tr, "stripe", 0, 1)
	check(15*time.Minute, 0, 1)
	if ok, n := tr.Approval("nobody", card, idr, time.Hour); ok != 0 || n != 0 {
		t.Errorf("unknown key %d of %d", ok, n)
	}
}

func TestApprovalDoesNotAllocate(t *testing.T) {
	tr := New(nil)
	record(tr, "stripe", 5, 10)
	if a := testing.AllocsPerRun(100, func() { tr.Approval("stripe", card, idr, 15*time.Minute) }); a != 0 {
		t.Errorf("Approval allocates %v times", a)
	}
}

func redisClient(t *testing.T) *redis.Client {
	t.Helper()
	url := os.Getenv("PAYROUTER_TEST_REDIS")
	if url == "" {
		t.Skip("PAYROUTER_TEST_REDIS is not set (e.g. redis://127.0.0.1:6379/0): skipping the shared approval counter tests")
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func prefix(t *testing.T) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "test:" + hex.EncodeToString(b) + ":"
}

func TestSharedBetweenInstances(t *testing.T) {
	rdb := redisClient(t)
	ctx := context.Background()
	c := &clock{t: time.Now()}
	p := prefix(t)
	a, b := New(c.now), New(c.now)
	a.Share(rdb, p, time.Second, nil)
	b.Share(rdb, p, time.Second, nil)
	record(a, "stripe", 7, 10)
	record(b, "stripe", 1, 10)
	// Before any sync each sees only itself.
	if ok, n := a.Approval("stripe", card, idr, 15*time.Minute); ok != 7 || n != 10 {
		t.Fatalf("a before sync: %d of %d", ok, n)
	}
	for _, tr := range []*Tracker{a, b, a} {
		if err := tr.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for name, tr := range map[string]*Tracker{"a": a, "b": b} {
		if ok, n := tr.Approval("stripe", card, idr, 15*time.Minute); ok != 8 || n != 20 {
			t.Errorf("%s after sync: %d of %d, want 8 of 20 (both instances)", name, ok, n)
		}
	}
	// A sync sends each count once.
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, n := a.Approval("stripe", card, idr, 15*time.Minute); ok != 8 || n != 20 {
		t.Errorf("after a second sync: %d of %d, want 8 of 20", ok, n)
	}
}

func TestRedisDownFallsBackToLocal(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 50 * time.Millisecond})
	defer rdb.Close()
	c := &clock{t: time.Now()}
	tr := New(c.now)
	tr.Share(rdb, "x:", 100*time.Millisecond, nil)
	record(tr, "stripe", 2, 4)
	if err := tr.Sync(context.Background()); err == nil {
		t.Fatal("sync to a closed port succeeded")
	}
	if ok, n := tr.Approval("stripe", card, idr, 15*time.Minute); ok != 2 || n != 4 {
		t.Errorf("with Redis down: %d of %d, want this instance's 2 of 4", ok, n)
	}
	// The unsent counts are kept for the next sync.
	if got := tr.sync.pending[pendingKey{key{"stripe", card, idr}, tr.bucket()}]; got != [2]int64{2, 4} {
		t.Errorf("pending %v, want [2 4]", got)
	}
}

func TestStaleSharedReadFallsBack(t *testing.T) {
	rdb := redisClient(t)
	c := &clock{t: time.Now()}
	tr := New(c.now)
	tr.Share(rdb, prefix(t), time.Second, nil)
	if err := tr.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	record(tr, "stripe", 1, 1)
	if _, n := tr.Approval("stripe", card, idr, 15*time.Minute); n != 0 {
		t.Errorf("fresh shared read (before the next sync) answered %d attempts, want 0", n)
	}
	c.add(5 * time.Second) // three sync periods without a successful read
	if _, n := tr.Approval("stripe", card, idr, 15*time.Minute); n != 1 {
		t.Errorf("stale shared read: %d attempts, want the local 1", n)
	}
}

func TestSnapshot(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	tr := New(c.now)
	record(tr, "xendit", 9, 10)
	record(tr, "stripe", 1, 4)
	tr.Record("stripe", card, "USD", true)
	got := tr.Snapshot(15 * time.Minute)
	want := []Stat{{"stripe", card, "IDR", 1, 4}, {"xendit", card, "IDR", 9, 10}, {"stripe", card, "USD", 1, 1}}
	if len(got) != len(want) {
		t.Fatalf("Snapshot = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Snapshot[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	c.add(time.Hour + time.Minute)
	if got := tr.Snapshot(15 * time.Minute); len(got) != 0 {
		t.Errorf("after the window: %+v, want none", got)
	}
}
