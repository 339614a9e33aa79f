package events_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/events"
)

// testRedis connects to PAYROUTER_TEST_REDIS and returns a stream name
// unique to this test, deleted at cleanup.
func testRedis(tb testing.TB) (*redis.Client, string) {
	tb.Helper()
	url := os.Getenv("PAYROUTER_TEST_REDIS")
	if url == "" {
		tb.Skip("PAYROUTER_TEST_REDIS is unset; set it (e.g. redis://127.0.0.1:6379/0) to run the Redis Streams tests")
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatalf("PAYROUTER_TEST_REDIS: %v", err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		tb.Fatalf("redis at PAYROUTER_TEST_REDIS: %v", err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	stream := "payrouter:test:" + tb.Name() + ":" + hex.EncodeToString(b)
	tb.Cleanup(func() {
		rdb.Del(context.Background(), stream)
		rdb.Close()
	})
	return rdb, stream
}

func streamEntries(t *testing.T, rdb *redis.Client, stream string) []redis.XMessage {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func TestPublisherAddsEveryEventOnce(t *testing.T) {
	ctx := context.Background()
	rdb, stream := testRedis(t)
	st := openStore(t)
	p1 := pay(t, st, "m1", 1)
	pay(t, st, "m2", 2)

	pub := events.NewPublisher(st, rdb, events.PublisherOptions{Stream: stream, MaxLen: 1000})
	if n, err := pub.Publish(ctx); n != 4 || err != nil {
		t.Fatalf("Publish = %d, %v; want 4", n, err)
	}
	msgs := streamEntries(t, rdb, stream)
	evs, _ := st.ListEvents(ctx, "", 0, 100)
	if len(msgs) != len(evs) {
		t.Fatalf("stream has %d entries, want %d", len(msgs), len(evs))
	}
	for i, e := range evs {
		v := msgs[i].Values
		want := map[string]string{
			events.FieldEventID: e.ID, events.FieldType: string(e.Type), events.FieldPaymentID: e.PaymentID,
			events.FieldMerchant: e.MerchantID, events.FieldData: string(e.Data),
		}
		for k, w := range want {
			if v[k] != w {
				t.Errorf("entry %d field %s = %v, want %v", i, k, v[k], w)
			}
		}
	}
	if msgs[0].Values[events.FieldPaymentID] != p1.ID {
		t.Errorf("first entry is %v, want the oldest event (payment %s)", msgs[0].Values, p1.ID)
	}

	// Nothing new: nothing added. A new event: only it is added.
	if n, err := pub.Publish(ctx); n != 0 || err != nil {
		t.Fatalf("Publish again = %d, %v; want 0", n, err)
	}
	pay(t, st, "m1", 3)
	// A restarted publisher (new value, same store) resumes from the cursor.
	pub2 := events.NewPublisher(st, rdb, events.PublisherOptions{Stream: stream})
	if n, err := pub2.Publish(ctx); n != 2 || err != nil {
		t.Fatalf("Publish after restart = %d, %v; want the 2 new events", n, err)
	}
	if got := len(streamEntries(t, rdb, stream)); got != 6 {
		t.Errorf("stream has %d entries, want 6 (no duplicates)", got)
	}
}

// A crash after XADD but before the cursor write: on start the publisher
// finds its last event at the stream's tail and does not add it again.
func TestPublisherResumesFromStreamTail(t *testing.T) {
	ctx := context.Background()
	rdb, stream := testRedis(t)
	st := openStore(t)
	pay(t, st, "m1", 1)
	pub := events.NewPublisher(st, rdb, events.PublisherOptions{Stream: stream})
	if _, err := pub.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	pay(t, st, "m1", 2)
	// Simulate the crash: the two new events reach the stream, the cursor
	// stays behind.
	evs, _ := st.ListEvents(ctx, "", 2, 10)
	for _, e := range evs {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{
			events.FieldEventID, e.ID, events.FieldPaymentID, e.PaymentID}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if c, _ := st.Cursor(ctx, pub.CursorName()); c != 2 {
		t.Fatalf("cursor = %d, want 2", c)
	}
	pay(t, st, "m1", 3)
	restarted := events.NewPublisher(st, rdb, events.PublisherOptions{Stream: stream})
	if n, err := restarted.Publish(ctx); n != 2 || err != nil {
		t.Fatalf("Publish after the crash = %d, %v; want only the 2 events never added", n, err)
	}
	seen := map[string]int{}
	for _, m := range streamEntries(t, rdb, stream) {
		seen[m.Values[events.FieldEventID].(string)]++
	}
	for seq := int64(1); seq <= 6; seq++ {
		if n := seen[payrouter.EventID(seq)]; n != 1 {
			t.Errorf("event %d is in the stream %d times, want once", seq, n)
		}
	}
}

// A stream whose tail is not this store's (another database, or a wiped
// one) must not make the publisher skip events.
func TestPublisherIgnoresForeignTail(t *testing.T) {
	ctx := context.Background()
	rdb, stream := testRedis(t)
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{
		events.FieldEventID, payrouter.EventID(500), events.FieldPaymentID, "pay_elsewhere"}}).Err(); err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	pay(t, st, "m1", 1)
	if n, err := events.NewPublisher(st, rdb, events.PublisherOptions{Stream: stream}).Publish(ctx); n != 2 || err != nil {
		t.Fatalf("Publish = %d, %v; want this store's 2 events", n, err)
	}
}

func TestPublisherTrimsApproximately(t *testing.T) {
	ctx := context.Background()
	rdb, stream := testRedis(t)
	st := openStore(t)
	for i := range 300 {
		pay(t, st, "m1", i)
	}
	pub := events.NewPublisher(st, rdb, events.PublisherOptions{Stream: stream, MaxLen: 100, Batch: 50})
	if n, err := pub.Publish(ctx); n != 600 || err != nil {
		t.Fatalf("Publish = %d, %v; want 600", n, err)
	}
	n, err := rdb.XLen(ctx, stream).Result()
	if err != nil {
		t.Fatal(err)
	}
	// MAXLEN ~ trims whole macro nodes (100 entries by default), so the
	// length stays near, and at least, 100.
	if n < 100 || n > 300 {
		t.Errorf("stream length %d after MAXLEN ~ 100, want about 100", n)
	}
	msgs, _ := rdb.XRevRangeN(ctx, stream, "+", "-", 1).Result()
	if len(msgs) != 1 || msgs[0].Values[events.FieldEventID] != payrouter.EventID(600) {
		t.Errorf("tail = %v, want the newest event", msgs)
	}
}

// Redis down: Publish fails, nothing is lost; the cursor does not move.
func TestPublisherRedisDown(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	pay(t, st, "m1", 1)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer rdb.Close()
	pub := events.NewPublisher(st, rdb, events.PublisherOptions{Stream: "x"})
	if n, err := pub.Publish(ctx); err == nil || n != 0 {
		t.Fatalf("Publish with Redis down = %d, %v; want an error", n, err)
	}
	if c, _ := st.Cursor(ctx, pub.CursorName()); c != 0 {
		t.Errorf("cursor moved to %d while Redis was down", c)
	}
}
