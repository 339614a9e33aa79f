package events_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payrouter/payrouter/internal/events"
)

// consume reads stream as consumer of group until ctx is done: first its
// own entries delivered before a crash but never acknowledged, then new
// ones. Each entry is acknowledged after handle returns nil, so one whose
// handling failed is read again. payrouter may add an event twice, so
// handle must be idempotent per event id (e.g. an INSERT with a unique key
// on it, ignoring a conflict, in the transaction that does the work). It is
// what Example_consumerGroup shows.
func consume(ctx context.Context, rdb *redis.Client, stream, group, consumer string,
	handle func(eventID string, fields map[string]any) error) error {
	err := rdb.XGroupCreateMkStream(ctx, stream, group, "0").Err() // "0": from the start; "$": only new
	if err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {     // BUSYGROUP: the group exists
		return err
	}
	start := "0" // our pending entries first
	for ctx.Err() == nil {
		res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: group, Consumer: consumer, Streams: []string{stream, start}, Count: 100, Block: time.Second,
		}).Result()
		if errors.Is(err, redis.Nil) || (err == nil && len(res) == 0) {
			continue // nothing new within Block
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		msgs := res[0].Messages
		if start == "0" && len(msgs) == 0 {
			start = ">" // pending entries done: now new ones
			continue
		}
		failed := false
		for _, m := range msgs {
			id, _ := m.Values[events.FieldEventID].(string)
			if err := handle(id, m.Values); err != nil {
				failed = true // not acknowledged: stays in our pending list
				continue
			}
			if err := rdb.XAck(ctx, stream, group, m.ID).Err(); err != nil {
				return err
			}
		}
		if failed {
			// Retry our pending entries after a pause. (Entries of a consumer
			// that died for good are taken over with XAUTOCLAIM.)
			start = "0"
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// Example_consumerGroup consumes payrouter's Redis stream (redis.url set in
// config.yaml) with a consumer group: run one such process per worker with
// a distinct consumer name; each event goes to one of them.
func Example_consumerGroup() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()

	done := map[string]bool{} // in production: a unique index on event_id
	err := consume(ctx, rdb, events.DefaultStream, "billing", "worker-1", func(id string, f map[string]any) error {
		if done[id] {
			return nil // a duplicate: already handled
		}
		// f[events.FieldData] is the payment object, JSON.
		fmt.Println(id, f[events.FieldType], f[events.FieldPaymentID], f[events.FieldMerchant])
		done[id] = true
		return nil
	})
	if err != nil {
		fmt.Println("consumer stopped:", err)
	}
}

// TestConsumerGroupExample runs the example's consumer against events the
// publisher added, with one event added twice: two consumers of one group
// handle every event exactly once and acknowledge everything.
func TestConsumerGroupExample(t *testing.T) {
	ctx := context.Background()
	rdb, stream := testRedis(t)
	st := openStore(t)
	for i := range 20 {
		pay(t, st, "m1", i)
	}
	if _, err := events.NewPublisher(st, rdb, events.PublisherOptions{Stream: stream}).Publish(ctx); err != nil {
		t.Fatal(err)
	}
	// The duplicate a crash between XADD and the cursor write leaves.
	dup, _ := rdb.XRangeN(ctx, stream, "-", "+", 1).Result()
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: dup[0].Values}).Err(); err != nil {
		t.Fatal(err)
	}

	var (
		mu      sync.Mutex
		handled = map[string]int{}
		dups    int
		failed  bool
	)
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, c := range []string{"w1", "w2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- consume(cctx, rdb, stream, "billing", c, func(id string, f map[string]any) error {
				mu.Lock()
				defer mu.Unlock()
				if !failed {
					failed = true // one failure: the entry must come back
					return errors.New("handler failed")
				}
				if f[events.FieldType] == "" || f[events.FieldData] == "" {
					t.Errorf("entry of %s lacks type or data: %v", id, f)
				}
				if handled[id] > 0 {
					dups++ // the unique key on event_id says: done already
					return nil
				}
				handled[id]++
				return nil
			})
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := rdb.XPending(ctx, stream, "billing").Result()
		mu.Lock()
		n := len(handled)
		mu.Unlock()
		if err == nil && n == 40 && p.Count == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("handled %d of 40 events, pending %+v (%v)", n, p, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("consumer: %v", err)
		}
	}
	if dups != 1 {
		t.Errorf("saw %d duplicate entries, want the 1 added", dups)
	}
	rdb.XGroupDestroy(ctx, stream, "billing")
}
