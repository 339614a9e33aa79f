package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
)

// DefaultStream is the Redis stream events go to when none is configured.
const DefaultStream = "payrouter:events"

// Stream entry fields. event_id is the dedup key: an event may be added
// twice (a crash between XADD and the cursor write), never skipped.
const (
	FieldEventID   = "event_id"
	FieldType      = "type"
	FieldPaymentID = "payment_id"
	FieldMerchant  = "merchant"
	FieldCreatedAt = "created_at" // RFC 3339, UTC
	FieldData      = "data"       // the payment object, JSON
)

// PublisherOptions tune a Publisher. Zero values take the defaults in
// brackets.
type PublisherOptions struct {
	Stream string // [payrouter:events]
	// MaxLen trims the stream to about this many entries (XADD MAXLEN ~);
	// 0 never trims.
	MaxLen int64
	Batch  int           // events per round [500]
	Poll   time.Duration // [500ms]
	Log    *slog.Logger
}

// Outbox is what a Publisher reads and moves in the store: the events and
// its cursor.
type Outbox interface {
	store.Events
	store.Cursors
}

// Publisher appends every event of the store's stream to a Redis stream,
// in event order, following its own store cursor ("redis:<stream>") so a
// restart resumes without skipping. Delivery is at least once: consumers
// dedupe by the event_id field. Safe for concurrent use; run one per
// store (two would each add every event).
type Publisher struct {
	st     Outbox
	rdb    redis.Cmdable
	opts   PublisherOptions
	cursor string

	mu     sync.Mutex // one round at a time
	synced bool       // the cursor has been reconciled with the stream's tail
}

// NewPublisher returns a publisher from st to rdb.
func NewPublisher(st Outbox, rdb redis.Cmdable, opts PublisherOptions) *Publisher {
	if opts.Stream == "" {
		opts.Stream = DefaultStream
	}
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	if opts.Poll <= 0 {
		opts.Poll = 500 * time.Millisecond
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Publisher{st: st, rdb: rdb, opts: opts, cursor: "redis:" + opts.Stream}
}

// CursorName is the publisher's cursor in the store.
func (p *Publisher) CursorName() string { return p.cursor }

// Run publishes every Poll until ctx is done. Redis being down is logged
// and retried; nothing is lost meanwhile (the events wait in the store).
func (p *Publisher) Run(ctx context.Context) {
	t := time.NewTicker(p.opts.Poll)
	defer t.Stop()
	failing := false
	for {
		_, err := p.Publish(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			p.opts.Log.Error("redis stream publishing failed; retrying", "stream", p.opts.Stream, "err", err)
			failing = true
		case err == nil && failing:
			p.opts.Log.Info("redis stream publishing recovered", "stream", p.opts.Stream)
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Publish adds every event after the cursor to the stream (pipelined
// XADDs) and advances the cursor past what Redis acknowledged. It returns
// how many events it added.
func (p *Publisher) Publish(ctx context.Context) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.synced {
		if err := p.syncTail(ctx); err != nil {
			return 0, err
		}
		p.synced = true
	}
	added := 0
	for {
		after, err := p.st.Cursor(ctx, p.cursor)
		if err != nil {
			return added, err
		}
		evs, err := p.st.ListEvents(ctx, "", after, p.opts.Batch)
		if err != nil || len(evs) == 0 {
			return added, err
		}
		cmds, err := p.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i := range evs {
				pipe.XAdd(ctx, p.args(&evs[i]))
			}
			return nil
		})
		// Advance past the prefix Redis acknowledged, so a partial failure
		// re-adds as little as possible.
		ok := 0
		for _, c := range cmds {
			if c.Err() != nil {
				break
			}
			ok++
		}
		if ok > 0 {
			if cerr := p.st.AdvanceCursor(ctx, p.cursor, evs[ok-1].Seq); cerr != nil {
				return added, cerr
			}
			added += ok
		}
		if err != nil {
			return added, fmt.Errorf("redis: xadd to %s: %w", p.opts.Stream, err)
		}
		if len(evs) < p.opts.Batch {
			return added, nil
		}
	}
}

func (p *Publisher) args(e *payrouter.Event) *redis.XAddArgs {
	a := &redis.XAddArgs{
		Stream: p.opts.Stream,
		Values: []any{
			FieldEventID, e.ID, FieldType, string(e.Type), FieldPaymentID, e.PaymentID,
			FieldMerchant, e.MerchantID, FieldCreatedAt, e.CreatedAt.UTC().Format(time.RFC3339Nano),
			FieldData, string(e.Data),
		},
	}
	if p.opts.MaxLen > 0 {
		a.MaxLen, a.Approx = p.opts.MaxLen, true
	}
	return a
}

// syncTail moves the cursor up to the newest event already in the stream:
// after a crash between XADD and the cursor write, those events are not
// added twice.
func (p *Publisher) syncTail(ctx context.Context) error {
	last, err := p.rdb.XRevRangeN(ctx, p.opts.Stream, "+", "-", 1).Result()
	if err != nil {
		return fmt.Errorf("redis: read the tail of %s: %w", p.opts.Stream, err)
	}
	if len(last) == 0 {
		return nil
	}
	id, _ := last[0].Values[FieldEventID].(string)
	pay, _ := last[0].Values[FieldPaymentID].(string)
	seq, err := payrouter.ParseEventID(id)
	if err != nil {
		return nil // not an event of ours: nothing to skip
	}
	// Only when the tail is this store's event: a stream left over from
	// another (or a wiped) database must not make us skip ours.
	ev, err := p.st.GetEvent(ctx, "", seq)
	if errors.Is(err, payrouter.ErrNotExist) || (err == nil && ev.PaymentID != pay) {
		return nil
	}
	if err != nil {
		return err
	}
	return p.st.AdvanceCursor(ctx, p.cursor, seq)
}
