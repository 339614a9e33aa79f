// Package events carries payrouter's event stream (the outbox the store
// writes in the same transaction as each state change) to its consumers:
// signed merchant webhooks with retries and a dead letter (Dispatcher), a
// Redis Stream (Publisher), and the `payrouter events tail|redeliver`
// commands. Every consumer follows the stream with a cursor kept in the
// store, so a restart resumes where it stopped and skips nothing.
package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
	"github.com/payrouter/payrouter/webhooksig"
)

// WebhookCursor is the store cursor of the merchant webhook dispatcher.
const WebhookCursor = "webhooks"

// Endpoint is where a merchant receives its webhooks. Secret signs them.
type Endpoint struct {
	URL    string
	Secret string
}

// Options tune a Dispatcher. Zero values take the defaults in brackets.
type Options struct {
	// Endpoints maps merchant id to its webhook endpoint. Events of
	// merchants not listed here (no webhook_url) are not delivered.
	Endpoints map[string]Endpoint
	// RetryFor is how long a failing delivery is retried before it is
	// dead-lettered [24h]. The last attempt is made at the end of the
	// window, so retries span at least RetryFor.
	RetryFor time.Duration
	// BaseDelay and MaxDelay bound the exponential backoff: the wait after
	// the n-th failed attempt is uniform in [0, min(MaxDelay,
	// BaseDelay·2^(n-1))] ("full jitter"), so a merchant coming back up is
	// not hit by every retry at once [10s, 1h].
	BaseDelay, MaxDelay time.Duration
	// Timeout bounds one POST [10s].
	Timeout time.Duration
	// Concurrency is how many POSTs run at once [8].
	Concurrency int
	// Poll is how often the stream and the retry queue are checked [1s].
	Poll time.Duration
	// Batch is how many events or deliveries one round handles [200].
	Batch int
	// HTTPClient sends the webhooks [a client that does not follow redirects].
	HTTPClient *http.Client
	Log        *slog.Logger
	// Now is the clock [time.Now]; Jitter returns a uniform duration in
	// [0, max] [math/rand/v2]. Both for tests.
	Now    func() time.Time
	Jitter func(max time.Duration) time.Duration
}

// DeliveryStore is what the dispatcher and the events commands use of the
// store: the outbox, their cursor and the deliveries.
type DeliveryStore interface {
	store.Events
	store.Cursors
	store.Deliveries
}

// Dispatcher delivers each event to its merchant's webhook_url, signed
// (webhooksig), at least once: it follows the stream from the store's
// WebhookCursor, records a pending delivery per event in the same
// transaction that advances the cursor, and then works the deliveries due,
// retrying failures with backoff until RetryFor has passed. Deliveries of
// one merchant may arrive out of order (retries overtake); merchants order
// by event id, and the pull API (GET /v1/events) keeps per-payment order.
// Several dispatchers may share one store: deliveries are leased when
// claimed. Safe for concurrent use.
type Dispatcher struct {
	st   DeliveryStore
	opts Options
	log  *slog.Logger
}

// NewDispatcher returns a dispatcher over st.
func NewDispatcher(st DeliveryStore, opts Options) *Dispatcher {
	if opts.RetryFor <= 0 {
		opts.RetryFor = 24 * time.Hour
	}
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = 10 * time.Second
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = time.Hour
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Batch <= 0 {
		opts.Batch = 200
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{
			// A redirect would turn the POST into a GET elsewhere: treat it
			// as a failed attempt instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Jitter == nil {
		opts.Jitter = func(max time.Duration) time.Duration { return rand.N(max + 1) }
	}
	return &Dispatcher{st: st, opts: opts, log: opts.Log}
}

// Run feeds and delivers every Poll until ctx is done.
func (d *Dispatcher) Run(ctx context.Context) {
	t := time.NewTicker(d.opts.Poll)
	defer t.Stop()
	for {
		if _, err := d.Feed(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("webhook dispatcher: reading the event stream failed", "err", err)
		}
		if _, err := d.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("webhook dispatcher: delivering failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Feed reads the events after the dispatcher's cursor and records a
// pending delivery for each event whose merchant has an endpoint, moving
// the cursor in the same transaction. It returns how many deliveries it
// queued. Idempotent: an event is queued at most once.
func (d *Dispatcher) Feed(ctx context.Context) (int, error) {
	queued := 0
	for {
		after, err := d.st.Cursor(ctx, WebhookCursor)
		if err != nil {
			return queued, err
		}
		evs, err := d.st.ListEvents(ctx, "", after, d.opts.Batch)
		if err != nil {
			return queued, err
		}
		if len(evs) == 0 {
			return queued, nil
		}
		now := d.opts.Now().UTC()
		var ds []store.Delivery
		for _, e := range evs {
			if _, ok := d.opts.Endpoints[e.MerchantID]; ok {
				ds = append(ds, store.Delivery{Seq: e.Seq, MerchantID: e.MerchantID, NextAt: now, CreatedAt: now, UpdatedAt: now})
			}
		}
		if err := d.st.EnqueueDeliveries(ctx, WebhookCursor, evs[len(evs)-1].Seq, ds); err != nil {
			return queued, err
		}
		queued += len(ds)
		if len(evs) < d.opts.Batch {
			return queued, nil
		}
	}
}

// DeliverDue claims the deliveries due now and attempts each once,
// Concurrency at a time. It returns how many were delivered.
func (d *Dispatcher) DeliverDue(ctx context.Context) (int, error) {
	// The lease outlives one attempt comfortably: a dispatcher that dies
	// mid-attempt only delays the retry by this much.
	lease := d.opts.Timeout + time.Minute
	claimed, err := d.st.ClaimDeliveries(ctx, d.opts.Now().UTC(), lease, d.opts.Batch)
	if err != nil || len(claimed) == 0 {
		return 0, err
	}
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		delivered int
		errs      []error
		sem       = make(chan struct{}, d.opts.Concurrency)
	)
	for i := range claimed {
		sem <- struct{}{}
		wg.Add(1)
		go func(dl *store.Delivery) {
			defer func() { <-sem; wg.Done() }()
			ok, err := d.attempt(ctx, dl)
			mu.Lock()
			defer mu.Unlock()
			if ok {
				delivered++
			}
			if err != nil {
				errs = append(errs, err)
			}
		}(&claimed[i])
	}
	wg.Wait()
	return delivered, errors.Join(errs...)
}

// attempt POSTs one claimed delivery and records the outcome. It returns
// whether the merchant accepted it; the error is the store's only (a
// failed POST is an outcome, not an error).
func (d *Dispatcher) attempt(ctx context.Context, dl *store.Delivery) (bool, error) {
	ev, err := d.st.GetEvent(ctx, "", dl.Seq)
	if err != nil {
		return false, fmt.Errorf("delivery of event %d: %w", dl.Seq, err)
	}
	dl.Attempts++
	ep, ok := d.opts.Endpoints[dl.MerchantID]
	var status int
	var failure string
	if !ok {
		// The merchant's webhook_url was removed since the event was queued.
		failure = "merchant has no webhook_url"
	} else {
		status, failure = d.post(ctx, ep, ev)
	}
	now := d.opts.Now().UTC()
	dl.LastStatus, dl.LastError, dl.UpdatedAt = status, failure, now
	switch deadline := dl.CreatedAt.Add(d.opts.RetryFor); {
	case failure == "":
		dl.Status, dl.DeliveredAt = store.DeliveryDelivered, &now
	case !ok || !now.Before(deadline):
		dl.Status = store.DeliveryDead
		d.log.Warn("merchant webhook dead-lettered", "merchant", dl.MerchantID, "event", ev.ID, "attempts", dl.Attempts, "last_error", failure)
	default:
		dl.NextAt = now.Add(d.backoff(dl.Attempts))
		if dl.NextAt.After(deadline) {
			dl.NextAt = deadline // one last try at the end of the window
		}
	}
	if ctx.Err() != nil && failure != "" {
		// Shutting down mid-attempt says nothing about the merchant: leave
		// the lease to expire and the attempt to be made again.
		return false, nil
	}
	if _, err := d.st.FinishDelivery(context.WithoutCancel(ctx), dl); err != nil {
		return false, err
	}
	return failure == "", nil
}

// backoff is the full-jitter wait after the n-th failed attempt (n ≥ 1),
// at least a tenth of BaseDelay so a flapping endpoint is never hammered.
func (d *Dispatcher) backoff(n int) time.Duration {
	ceil := d.opts.MaxDelay
	if n-1 < 40 { // beyond that the shift overflows; MaxDelay applies anyway
		if c := d.opts.BaseDelay << (n - 1); c > 0 && c < ceil {
			ceil = c
		}
	}
	return max(d.opts.BaseDelay/10, d.opts.Jitter(ceil))
}

// Body is the JSON a merchant receives for an event (docs/architecture.md, Events: id, type,
// created_at, payment_id, data).
func Body(ev *payrouter.Event) ([]byte, error) { return json.Marshal(ev) }

// post sends one signed webhook. It returns the HTTP status (0 without a
// response) and "" on a 2xx, else why it failed — never the secret, the
// URL (it may carry a token) or the merchant's response body.
func (d *Dispatcher) post(ctx context.Context, ep Endpoint, ev *payrouter.Event) (int, string) {
	body, err := Body(ev)
	if err != nil {
		return 0, "encode event: " + err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return 0, "invalid webhook_url"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "payrouter-webhooks/1")
	req.Header.Set("Payrouter-Event-Id", ev.ID)
	req.Header.Set(webhooksig.Header, webhooksig.HeaderValue(ep.Secret, d.opts.Now(), body))
	resp, err := d.opts.HTTPClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, fmt.Sprintf("no answer within %s", d.opts.Timeout)
		}
		return 0, "request failed: " + transportReason(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // reuse the connection
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	return resp.StatusCode, ""
}

// transportReason is the innermost cause of a transport error, without the
// *url.Error wrapper that would repeat the URL.
func transportReason(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

// Redeliver queues event seq of merchantID ("" = any merchant, for ops) for
// delivery again now, with a fresh retry window, whatever its state
// (delivered, dead, pending). It returns payrouter.ErrNotExist for an
// unknown event (or another merchant's) and an invalid_state *payrouter.Error
// when the event's merchant has no webhook_url. Idempotent.
func (d *Dispatcher) Redeliver(ctx context.Context, merchantID string, seq int64) (*store.Delivery, error) {
	return Redeliver(ctx, d.st, d.opts.Endpoints, merchantID, seq, d.opts.Now().UTC())
}

// Redeliver is Dispatcher.Redeliver for callers without a dispatcher (the
// CLI): the running server's dispatcher picks the delivery up.
func Redeliver(ctx context.Context, st DeliveryStore, endpoints map[string]Endpoint, merchantID string, seq int64, now time.Time) (*store.Delivery, error) {
	ev, err := st.GetEvent(ctx, merchantID, seq)
	if err != nil {
		if errors.Is(err, payrouter.ErrNotExist) {
			return nil, &payrouter.Error{Type: payrouter.ErrNotFound, Code: "resource_missing", Message: "no such event"}
		}
		return nil, err
	}
	if _, ok := endpoints[ev.MerchantID]; !ok {
		return nil, &payrouter.Error{Type: payrouter.ErrInvalidState, Code: "webhook_url_missing",
			Message: "the merchant has no webhook_url configured; events can be read with GET /v1/events"}
	}
	return st.Redeliver(ctx, ev.MerchantID, seq, now)
}
